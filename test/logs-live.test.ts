/**
 * `kms-hmac sign --follow` as a service runs it: a child process signing a
 * log that another process (test/fixtures/log-writer.mjs) appends 200-byte
 * lines to in bursts. Killed with SIGKILL at random moments and restarted,
 * rotated by rename and by copytruncate the way logrotate does it, and
 * attacked with and without shipped checkpoints. Needs the built CLI (dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMacKey } from '../src/mac/key.js';
import { engineFromMacKey, type MacEngine } from '../src/logs/engine.js';
import { verifyLog } from '../src/logs/verify.js';
import { runCli, type CliRun } from './cli-run.js';
import { blocks } from './log-oracle.js';
import { random } from './support/random.js';
import { track } from './support/process-group.js';

const BIN = fileURLToPath(new URL('../bin/kms-hmac.js', import.meta.url));
const WRITER = fileURLToPath(new URL('./fixtures/log-writer.mjs', import.meta.url));
const KILLS = Number(process.env.KMS_HMAC_TEST_KILLS ?? 50);

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-live-'));
const KS = join(dir, 'keystore.json');
const env = { KMS_HMAC_KEYSTORE: KS };
const p = (n: string) => join(dir, n);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]): Promise<CliRun> => runCli(args, { cwd: dir, env });
let engine: MacEngine;

beforeAll(async () => {
  // a key with known material, so the test can verify in-process while the signer runs
  const material = random.bytes(32);
  const created = await cli([
    'keys',
    'create',
    '--key-spec',
    'HMAC_256',
    '--origin',
    'EXTERNAL',
    '--alias',
    'alias/live',
  ]);
  const md = JSON.parse(created.stdout).KeyMetadata;
  expect((await cli(['keys', 'import', '--key-id', md.KeyId, '--material-hex', material.toString('hex')])).code).toBe(
    0,
  );
  engine = engineFromMacKey(createMacKey('HMAC_SHA_256', material), md.Arn, 'HMAC_SHA_256');
});

interface Proc {
  child: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

function start(cmd: string, args: string[]): Proc {
  const child = track(
    spawn(process.execPath, [cmd, ...args], {
      cwd: dir,
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const out: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    out.push(...parts);
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL' && err) process.stderr.write(`[${cmd}] ${err}\n`);
      resolve(code);
    }),
  );
  return { child, out, exited };
}

const writer = (log: string, ...args: string[]) => start(WRITER, [log, '--line', '200', ...args]);
const follower = (log: string, ...args: string[]) =>
  start(BIN, [
    'sign',
    '--follow',
    log,
    '--key-id',
    'alias/live',
    '--json',
    '--checkpoint-every',
    '500',
    '--checkpoint-interval',
    '0.1',
    // these tests are about a kms-keyed sidecar (one stream, resumed after each kill); forward-secure: logs-forward-secure.test.ts
    '--no-forward-secure',
    ...args,
  ]);

const events = (f: Proc) =>
  f.out.map((l) => JSON.parse(l) as { event: string; records?: number; [k: string]: unknown });
const signedBy = (f: Proc) =>
  events(f)
    .filter((e) => e.event === 'checkpoint')
    .at(-1)?.records ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Stops a writer: how many lines it wrote. */
async function stopWriter(w: Proc): Promise<number> {
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
  return JSON.parse(w.out[0]!).lines as number;
}

/** Lets a follower sign `lines` records, then stops it with SIGTERM: exit 0. */
async function finish(f: Proc, lines: number): Promise<void> {
  await until(`${lines} signed`, () => signedBy(f) >= lines);
  f.child.kill('SIGTERM');
  expect(await f.exited).toBe(0);
  expect(events(f).at(-1)).toMatchObject({ event: 'stop' });
}

describe('sign --follow', () => {
  it(`kill -9 at random moments, ${KILLS} times: each restart resumes the same sidecar, and every checkpointed record verifies at every kill`, {
    timeout: 10 * 60_000,
  }, async () => {
    const log = p('kill.log');
    writeFileSync(log, '');
    const w = writer(log, '--burst', '10', '--every', '10');
    let signed = 0;
    let resumed = 0;
    let streamId = '';
    const t0 = Date.now();
    const shipped = p('kill.checkpoints');
    for (let i = 0; i < KILLS; i++) {
      const f = follower(log, '--checkpoints-out', shipped);
      // one time in five while it starts or checks the signed prefix; else while it follows
      if (i % 5 === 0) await sleep(random.float() * 500);
      else {
        await until('started', () => events(f).some((e) => e.event === 'start'));
        await sleep(20 + random.float() * 280);
      }
      f.child.kill('SIGKILL');
      await f.exited;
      if (!existsSync(`${log}.mac`)) {
        expect(signed, `kill ${i}: the sidecar vanished`).toBe(0); // killed before the first sidecar was published
        continue;
      }
      const start = events(f).find((e) => e.event === 'start');
      if (start?.resumed) {
        resumed++;
        expect((start.resumed as { records: number }).records, `restart ${i}`).toBe(signed);
      }
      // a checkpoint is shipped only once it is on disk: the shipped lines never run ahead of the sidecar
      const r = await verifyLog(log, `${log}.mac`, {
        engine,
        ...(existsSync(shipped) ? { checkpoints: shipped } : {}),
      });
      expect(r.tampered, `kill ${i}: ${JSON.stringify(r.issues.slice(0, 3))}`).toBe(false);
      expect(r.verified, `kill ${i}`).toBe(r.signedRecords); // every record up to the last checkpoint
      expect(r.signedRecords, `kill ${i}: nothing signed is lost`).toBeGreaterThanOrEqual(signed);
      expect(r.counts.unsigned).toBe(r.records - r.signedRecords); // the rest is unsigned, not tampered
      signed = r.signedRecords;
      streamId ||= r.streamId;
      expect(r.streamId).toBe(streamId); // one sidecar throughout: resumed, never started over
    }
    const loopMs = Date.now() - t0;
    expect(resumed).toBeGreaterThanOrEqual(Math.floor(KILLS * 0.7)); // most restarts continued a sidecar
    expect(signed).toBeGreaterThan(KILLS * 50); // and signing went on between kills
    const lines = await stopWriter(w);
    const f = follower(log, '--checkpoints-out', shipped);
    await finish(f, lines);
    // each restart here takes longer than 3 x the 0.1 s heartbeat: the silences are real (signer-silent), and allowed
    const v = await cli([
      'verify',
      log,
      '--key-id',
      'alias/live',
      '--checkpoints',
      shipped,
      '--max-gap',
      '600',
      '--json',
    ]);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, closed: true, records: lines, verified: lines, streamId });
    console.log(
      `${KILLS} kills in ${(loopMs / 1000).toFixed(1)} s (${resumed} restarts resumed); ${lines} lines signed, ${signed} of them checkpointed before the last kill`,
    );
  });

  it('logrotate by rename while lines are written (mv, then the writer reopens on SIGHUP): two sidecars, chained, both verify', async () => {
    const log = p('app.log');
    writeFileSync(log, '');
    const shipped = p('app.checkpoints');
    const w = writer(log, '--burst', '10', '--every', '5');
    const f = follower(log, '--checkpoints-out', shipped);
    await until('signing', () => signedBy(f) > 200);
    renameSync(log, p('app.log-20260101'));
    w.child.kill('SIGHUP'); // postrotate: the application reopens its log
    await until('rotated', () => events(f).some((e) => e.event === 'rotate'));
    const lines = await stopWriter(w);
    const rotated = events(f).find((e) => e.event === 'rotate')!;
    expect(rotated).toMatchObject({
      how: 'rename',
      rotatedLog: p('app.log-20260101'),
      sidecar: p('app.log-20260101.mac'),
    });
    await finish(f, lines - (rotated.records as number));
    const old = await cli([
      'verify',
      p('app.log-20260101'),
      '--key-id',
      'alias/live',
      '--checkpoints',
      shipped,
      '--json',
    ]);
    const cur = await cli(['verify', log, '--key-id', 'alias/live', '--checkpoints', shipped, '--json']);
    expect([old.code, cur.code]).toEqual([0, 0]);
    const [o, c] = [JSON.parse(old.stdout), JSON.parse(cur.stdout)];
    expect(c.previous).toMatchObject({ streamId: o.streamId, records: o.records });
    expect(o.records + c.records).toBe(lines);
  });

  it('logrotate copytruncate while lines are written (cp, then truncate): a new segment; the copy verifies except what copytruncate lost', async () => {
    const log = p('ct.log');
    writeFileSync(log, '');
    const w = writer(log, '--burst', '10', '--every', '5');
    const f = follower(log);
    await until('signing', () => signedBy(f) > 200);
    copyFileSync(log, p('ct.log.1'));
    truncateSync(log, 0);
    await until('rotated', () => events(f).some((e) => e.event === 'rotate'));
    await sleep(300);
    const lines = await stopWriter(w);
    const rotated = events(f).find((e) => e.event === 'rotate')!;
    expect(rotated).toMatchObject({ how: 'truncate', rotatedLog: p('ct.log.1'), sidecar: p('ct.log.1.mac') });
    await until('caught up', () => events(f).filter((e) => e.event === 'start').length === 2);
    f.child.kill('SIGTERM');
    expect(await f.exited).toBe(0);
    const copy = JSON.parse((await cli(['verify', p('ct.log.1'), '--key-id', 'alias/live', '--json'])).stdout);
    expect(copy.verified).toBeGreaterThan(200);
    const kinds = Object.entries(copy.counts as Record<string, number>)
      .filter(([, n]) => n > 0)
      .map(([k]) => k);
    expect(
      kinds.every((k) => k === 'log-truncated' || k === 'unsigned'),
      JSON.stringify(copy.issues),
    ).toBe(true);
    const cur = await cli(['verify', log, '--key-id', 'alias/live', '--json']);
    expect(cur.code).toBe(0);
    expect(JSON.parse(cur.stdout)).toMatchObject({ ok: true, previous: { streamId: copy.streamId } });
    // every line written is in the copy or the live log, except those copytruncate lost between cp and truncate
    expect(copy.records + JSON.parse(cur.stdout).records).toBeLessThanOrEqual(lines);
  });
});

describe('attacks on a live log, with and without shipped checkpoints', () => {
  const log = p('target.log');
  const sidecar = `${log}.mac`;
  const shipped = p('target.checkpoints');
  let lines = 0;

  beforeAll(async () => {
    writeFileSync(log, '');
    const w = writer(log, '--burst', '50', '--every', '5');
    const f = follower(log, '--checkpoints-out', shipped);
    await until('a few checkpoints', () => signedBy(f) >= 1500);
    // an older pair, as an attacker would keep it: the sidecar first, then the log it covers, cut at its last checkpoint
    const old = readFileSync(sidecar);
    const oldBlocks = blocks(old);
    writeFileSync(p('old.log.mac'), old.subarray(0, oldBlocks.at(-1)!.end));
    writeFileSync(p('old.log'), readFileSync(log).subarray(0, oldBlocks.at(-1)!.logBytes));
    await until('more checkpoints', () => signedBy(f) >= oldBlocks.at(-1)!.records + 2000);
    lines = await stopWriter(w);
    await finish(f, lines);
  }, 120_000);

  const verify = async (l: string, s: string, withCheckpoints: boolean) => {
    const r = await cli([
      'verify',
      l,
      '--sidecar',
      s,
      '--key-id',
      'alias/live',
      '--json',
      ...(withCheckpoints ? ['--checkpoints', shipped] : []),
    ]);
    return {
      code: r.code,
      report: JSON.parse(r.stdout) as {
        ok: boolean;
        tampered: boolean;
        counts: Record<string, number>;
        issues: { kind: string; message: string }[];
      },
    };
  };

  it('the intact pair verifies with its shipped checkpoints', async () => {
    const r = await verify(log, sidecar, true);
    expect(r.code).toBe(0);
    expect(r.report).toMatchObject({ ok: true, records: lines });
  });

  it('log and sidecar cut together at a checkpoint: undetectable from the two files, detected with --checkpoints', async () => {
    const sc = readFileSync(sidecar);
    const b = blocks(sc);
    const at = b[Math.floor(b.length / 2)]!;
    writeFileSync(p('cut.log'), readFileSync(log).subarray(0, at.logBytes));
    writeFileSync(p('cut.log.mac'), sc.subarray(0, at.end));
    const without = await verify(p('cut.log'), p('cut.log.mac'), false);
    expect(without.code).toBe(0); // a consistent, open pair: what a crash would leave
    const withAnchors = await verify(p('cut.log'), p('cut.log.mac'), true);
    expect(withAnchors.code).toBe(1);
    expect(withAnchors.report.counts['anchor-missing']).toBe(1);
    expect(withAnchors.report.issues[0]!.message).toMatch(
      new RegExp(`checkpoint ${b.at(-1)!.index} .* was shipped, but the sidecar ends at checkpoint ${at.index}`),
    );
  });

  it('an older log and sidecar pair put back: undetectable from the two files, detected with --checkpoints', async () => {
    const without = await verify(p('old.log'), p('old.log.mac'), false);
    expect(without.code).toBe(0);
    const withAnchors = await verify(p('old.log'), p('old.log.mac'), true);
    expect(withAnchors.code).toBe(1);
    expect(withAnchors.report.tampered).toBe(true);
    expect(withAnchors.report.issues.map((i) => i.kind)).toContain('anchor-missing');
  });

  it('one line edited: detected with or without shipped checkpoints', async () => {
    const text = readFileSync(log);
    const at = text.indexOf('\n', 200 * 777) + 1;
    text[at + 20] ^= 0x20;
    writeFileSync(p('edited.log'), text);
    for (const anchors of [false, true]) {
      const r = await verify(p('edited.log'), sidecar, anchors);
      expect(r.code).toBe(1);
      expect(r.report.counts).toMatchObject({ modified: 1 });
      expect(r.report.issues.find((i) => i.kind === 'modified')!.message).toBe(
        'line 779: modified (was signed record #779)',
      );
    }
  });

  it('a shipped line forged or altered: anchor-invalid', async () => {
    const forged = readFileSync(shipped, 'utf8').split('\n').filter(Boolean);
    const last = JSON.parse(forged.at(-2)!); // the last checkpoint line (the very last is the close)
    forged.push(JSON.stringify({ ...last, checkpoint: last.checkpoint + 5, records: last.records + 100 }));
    writeFileSync(p('forged.checkpoints'), `${forged.join('\n')}\n`);
    const r = await cli(['verify', log, '--key-id', 'alias/live', '--checkpoints', p('forged.checkpoints'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).counts['anchor-invalid']).toBe(1);
  });
});
