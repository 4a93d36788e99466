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
const checkpointsOf = (f: Proc) => jsonLines(f).filter((e) => e.event === 'checkpoint');
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

describe('forks: a second signer on the same log and sink', () => {
  for (const mode of ['forward-secure', 'kms-keyed'] as const) {
    it(`${mode}: the same sidecar taken over by a second signer; the first goes on until it sees it`, async () => {
      const log = p(`fork-${mode}.log`);
      const shipped = p(`fork-${mode}.jsonl`);
      writeFileSync(log, '');
      const flag = mode === 'kms-keyed' ? ['--no-forward-secure'] : [];
      const w = writer(log);
      const a = follower(log, shipped, ...flag);
      await until('A signing', () => signedBy(a) >= 1000);
      const started = (f: Proc) => jsonLines(f).some((e) => e.event === 'start');
      let b = follower(log, shipped, ...flag);
      for (let attempt = 1; attempt < 5; attempt++) {
        await until('B started or refused', () => started(b) || b.child.exitCode !== null);
        if (started(b)) break;
        // B read the sidecar in the middle of one of A's appends and refused it as changed (a
        // refusal is safe: nothing is signed); the intruder's second signer simply tries again
        expect(b.stderr()).toMatch(/Not continuing/);
        b = follower(log, shipped, ...flag);
      }
      await until('B started', () => started(b));
      // a signer stops when it sees the sidecar grow behind its back, but cannot see every case: both may go on
      const shippedAfter = checkpointsOf(a).length;
      await until(
        'both signed on, or one gave up',
        () =>
          a.child.exitCode !== null ||
          b.child.exitCode !== null ||
          (checkpointsOf(b).length >= 3 && checkpointsOf(a).length >= shippedAfter + 3),
        30_000,
      );
      const aGaveUp = a.child.exitCode !== null; // A saw B and stopped on its own
      await stop(w);
      for (const f of [a, b]) if (f.child.exitCode === null) f.child.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
      const r = await verify(log, shipped, '--max-gap', '600');
      // A that saw B and stopped, with B chained to its head, leaves one chain, as a restart does: only
      // signers that both signed on make a fork
      if (aGaveUp && r.code === 0) return;
      expect(r.code).toBe(1);
      expect(r.report.tampered).toBe(true);
      expect(r.report.counts.fork, JSON.stringify(r.report.issues)).toBeGreaterThanOrEqual(1);
    });
  }

  it('a second signer with a sidecar of its own: two logs at one path, the one left open is a fork', async () => {
    const log = p('two.log');
    const shipped = p('two.jsonl');
    writeFileSync(log, '');
    const w = writer(log);
    const a = follower(log, shipped);
    await until('A signing', () => signedBy(a) >= 500);
    const b = follower(log, shipped, '--out', p('two.log.b.mac'));
    await until('B signing', () => signedBy(b) >= 500);
    a.child.kill('SIGKILL'); // the first one left open
    await a.exited;
    await stop(w);
    await stop(b);
    const r = await verify(log, shipped, '--sidecar', p('two.log.b.mac'), '--max-gap', '600');
    expect(r.code).toBe(1);
    const fork = r.report.issues.find((i: { kind: string }) => i.kind === 'fork');
    expect(fork?.message).toMatch(/at the same path .* was left open/);
  });
});

describe('heartbeats: a stopped signer shows as signer-silent, with its window', () => {
  it('killed: silent from its last checkpoint until now; restarted: the window it was down', async () => {
    const log = p('quiet.log');
    const shipped = p('quiet.jsonl');
    writeFileSync(log, 'one line\n');
    // nobody writes: only heartbeats (every 0.2 s) reach the sink
    const a = follower(log, shipped);
    await until('heartbeats', () => jsonLines(a).filter((e) => e.event === 'checkpoint').length >= 5);
    const beats = jsonLines(a).filter((e) => e.event === 'checkpoint');
    expect(beats.at(-1)!.records).toBe(1); // no new record, still a checkpoint
    a.child.kill('SIGKILL');
    await a.exited;
    await new Promise((r) => setTimeout(r, 1500));
    const dead = await verify(log, shipped);
    expect(dead.code).toBe(1);
    expect(dead.report.tampered).toBe(false);
    const silent = dead.report.issues.find((i: { kind: string }) => i.kind === 'signer-silent');
    expect(silent.message).toMatch(/silent from .* until now/);
    expect(silent.to).toBeUndefined();
    const since = Date.parse(silent.from);

    const b = follower(log, shipped);
    await until('restarted', () => jsonLines(b).filter((e) => e.event === 'checkpoint').length >= 3);
    await stop(b);
    const back = await verify(log, shipped);
    expect(back.code).toBe(1);
    const windows = back.report.issues.filter((i: { kind: string }) => i.kind === 'signer-silent');
    expect(windows).toHaveLength(1);
    expect(Date.parse(windows[0].from)).toBe(since);
    expect(Date.parse(windows[0].to) - since).toBeGreaterThan(1500);
    // a wider gap allowed: the same log verifies
    expect((await verify(log, shipped, '--max-gap', '60')).code).toBe(0);
  });
});
