/**
 * The shipped checkpoints as the authority (issue 22): `verify --checkpoints`
 * against an intruder on the signing host who holds the key. The signer is
 * the real CLI (`sign --follow … --checkpoints-out`) in a child process, fed
 * by test/fixtures/log-writer.mjs; the attacks are done the way the issue
 * tried them, with the CLI.
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './cli-run.js';
import { BIN, WRITER, jsonLines, start, until, type Proc } from './log-procs.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-anchors-'));
const env = { KMS_HMAC_KEYSTORE: join(dir, 'keystore.db'), KMS_HMAC_PASSPHRASE: 'anchors test passphrase' };
const p = (n: string) => join(dir, n);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]): Promise<CliRun> => runCli(args, { cwd: dir, env });

beforeAll(async () => {
  expect((await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--alias', 'alias/live'])).code).toBe(0);
});

const writer = (log: string) => start(WRITER, [log, '--line', '120', '--burst', '20', '--every', '5'], dir);
const follower = (log: string, shipped: string, ...args: string[]) =>
  start(
    BIN,
    [
      'sign',
      '--follow',
      log,
      '--key-id',
      'alias/live',
      '--json',
      '--checkpoint-every',
      '500',
      '--checkpoint-interval',
      '0.2',
      '--checkpoints-out',
      shipped,
      ...args,
    ],
    dir,
    env,
  );
const signedBy = (f: Proc) =>
  (jsonLines(f)
    .filter((e) => e.event === 'checkpoint')
    .at(-1)?.records as number | undefined) ?? 0;

async function stop(proc: Proc): Promise<void> {
  proc.child.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
}

/** The first `n` lines of `log`, written to `to`. */
function firstLines(log: string, n: number, to: string): void {
  const text = readFileSync(log);
  let at = 0;
  for (let i = 0; i < n; i++) at = text.indexOf(10, at) + 1;
  writeFileSync(to, text.subarray(0, at));
}

async function verify(log: string, shipped: string, ...args: string[]) {
  const r = await cli(['verify', log, '--key-id', 'alias/live', '--checkpoints', shipped, '--json', ...args]);
  return { code: r.code, report: JSON.parse(r.stdout), stderr: r.stderr };
}

describe('the cut-and-re-sign attack: a cut log signed afresh with the key', () => {
  it('without a rotation: the fresh stream is in none of the shipped checkpoints (anchor-missing, naming the streams shipped for the log)', async () => {
    const log = p('app.log');
    const shipped = p('cps.jsonl');
    writeFileSync(log, '');
    const w = writer(log);
    const f = follower(log, shipped);
    await until('3,000 records signed and shipped', () => signedBy(f) >= 3000);
    const streamId = jsonLines(f).find((e) => e.event === 'start')!.streamId as string;

    // the intruder: the first 1,000 lines, signed afresh with the key (a new sidecar, a new stream)
    firstLines(log, 1000, p('cut.log'));
    expect((await cli(['sign', 'cut.log', '--key-id', 'alias/live'])).code).toBe(0);
    const r = await verify(p('cut.log'), shipped);
    expect(r.code).toBe(1);
    expect(r.report.ok).toBe(false);
    expect(r.report.counts['anchor-missing']).toBe(1);
    expect(r.report.issues.find((i: { kind: string }) => i.kind === 'anchor-missing').message).toContain(streamId);

    // and put in the log's place, under its name
    await stop(w);
    await stop(f);
    copyFileSync(p('cut.log'), log);
    copyFileSync(p('cut.log.mac'), `${log}.mac`);
    const inPlace = await verify(log, shipped);
    expect(inPlace.code).toBe(1);
    expect(inPlace.report.counts['anchor-missing']).toBe(1);
  });

  it('with a rotation in between: the cut of the new file, and the cut of the rotated one, signed afresh', async () => {
    const log = p('rot.log');
    const shipped = p('rot.jsonl');
    writeFileSync(log, '');
    const w = writer(log);
    const f = follower(log, shipped);
    await until('1,500 records signed', () => signedBy(f) >= 1500);
    renameSync(log, p('rot.log-1'));
    w.child.kill('SIGHUP'); // the writer reopens rot.log
    await until('rotated', () => jsonLines(f).some((e) => e.event === 'rotate'));
    const before = signedBy(f);
    await until('1,500 more signed', () => signedBy(f) >= before + 1500);
    await stop(w);
    await stop(f);
    expect((await verify(log, shipped)).code).toBe(0);
    expect((await verify(p('rot.log-1'), shipped)).code).toBe(0);

    firstLines(log, 300, p('rot-cut.log'));
    expect((await cli(['sign', 'rot-cut.log', '--key-id', 'alias/live'])).code).toBe(0);
    const cutNew = await verify(p('rot-cut.log'), shipped);
    expect(cutNew.code).toBe(1);
    expect(cutNew.report.counts['anchor-missing']).toBe(1);

    firstLines(p('rot.log-1'), 300, p('rot-1-cut.log'));
    expect((await cli(['sign', 'rot-1-cut.log', '--key-id', 'alias/live'])).code).toBe(0);
    const cutOld = await verify(p('rot-1-cut.log'), shipped);
    expect(cutOld.code).toBe(1);
    expect(cutOld.report.counts['anchor-missing']).toBe(1);
  });
});
