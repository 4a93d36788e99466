/**
 * followLog in-process: live signing with checkpoints, stopping and resuming,
 * a sidecar torn by a crash, refusing a log changed while stopped, rotation
 * by rename and by copytruncate (live and while stopped), shipped
 * checkpoints. The kill -9 loop and the CLI run in logs-live.test.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMacKey } from '../src/mac/key.js';
import { anchorLine, type Anchor } from '../src/logs/anchors.js';
import { engineFromMacKey } from '../src/logs/engine.js';
import { FollowError, followLog, type FollowEvent, type FollowOptions } from '../src/logs/follow.js';
import { verifyLog } from '../src/logs/verify.js';
import { random } from './support/random.js';
import { chainedSidecar, headerBytes } from './log-oracle.js';

const root = mkdtempSync(join(tmpdir(), 'kms-hmac-follow-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-0000000000f0';
const material = random.bytes(32);
const engine = engineFromMacKey(createMacKey('HMAC_SHA_256', material), ARN, 'HMAC_SHA_256');

const line = (n: number) => `${String(n).padStart(8, '0')} ${'x'.repeat(40)}\n`;
const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => line(from + i)).join('');

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a follower; `stop()` aborts it and returns its summary. */
function follow(log: string, extra: Partial<FollowOptions> = {}) {
  const events: FollowEvent[] = [];
  const anchors: Anchor[] = [];
  const ac = new AbortController();
  const done = followLog(log, {
    engine,
    checkpointEvery: 10,
    checkpointIntervalMs: 50,
    pollMs: 20,
    rotateGraceMs: 100,
    signal: ac.signal,
    onEvent: (e) => events.push(e),
    onCheckpoint: (a) => {
      anchors.push(a);
    },
    ...extra,
  });
  done.catch(() => {});
  const signed = () => {
    const cps = events.filter((e) => e.type === 'checkpoint');
    return cps.length ? (cps[cps.length - 1] as Extract<FollowEvent, { type: 'checkpoint' }>).anchor.records : 0;
  };
  return {
    events,
    anchors,
    done,
    signed,
    stop: async () => {
      ac.abort();
      return done;
    },
  };
}

const workDir = () => mkdtempSync(join(root, 'w'));

describe('followLog', () => {
  it('signs lines as they are appended, checkpoint by checkpoint; stopping writes the trailer', async () => {
    const d = workDir();
    const log = join(d, 'app.log');
    writeFileSync(log, lines(0, 25));
    const f = follow(log);
    await until('25 signed', () => f.signed() === 25);
    appendFileSync(log, lines(25, 30));
    await until('55 signed', () => f.signed() === 55);
    appendFileSync(log, 'an unterminated line');
    const s = await f.stop();
    expect(s).toMatchObject({ records: 55, segments: 1, sidecar: `${log}.mac` });
    expect(f.events[0]).toMatchObject({ type: 'start', resumed: null, previous: null });
    // checkpoints every 10 records, or after 50 ms for fewer
    const cps = f.anchors.filter((a) => a.type === 'checkpoint');
    expect(cps.map((a) => a.checkpoint)).toEqual(cps.map((_, i) => i));
    expect(cps.slice(0, 2).map((a) => a.records)).toEqual([10, 20]);
    expect(f.anchors.at(-1)).toMatchObject({ type: 'close', records: 55 });
    for (const e of f.events) if (e.type === 'checkpoint') expect(e.lagBytes).toBeGreaterThanOrEqual(0);

    const r = await verifyLog(log, `${log}.mac`, { engine });
    // the unterminated line is not signed: the writer may still be writing it
    expect(r).toMatchObject({ tampered: false, closed: true, signedRecords: 55, verified: 55, version: 3 });
    expect(r.issues.map((i) => [i.kind, i.line])).toEqual([['unsigned', 56]]);
    writeFileSync(join(d, 'shipped'), f.anchors.map(anchorLine).join(''));
    appendFileSync(log, '\n');
    const full = await verifyLog(log, `${log}.mac`, { engine, checkpoints: join(d, 'shipped') });
    expect(full.counts.unsigned).toBe(1);
    expect(full.anchors).toMatchObject({ shipped: cps.length, newest: { checkpoint: cps.length - 1 } });
  });

  it('polling alone (no fs.watch) keeps up too', async () => {
    const d = workDir();
    const log = join(d, 'p.log');
    writeFileSync(log, '');
    const f = follow(log, { watch: false });
    for (let i = 0; i < 5; i++) {
      appendFileSync(log, lines(i * 7, 7));
      await until(`${(i + 1) * 7} signed`, () => f.signed() === (i + 1) * 7);
    }
    expect((await f.stop()).records).toBe(35);
  });

  it('a restart resumes the same sidecar and chain (after a stop, and after a crash tore the last block)', async () => {
    const d = workDir();
    const log = join(d, 'r.log');
    writeFileSync(log, lines(0, 40));
    const a = follow(log);
    await until('40', () => a.signed() === 40);
    const first = await a.stop();

    appendFileSync(log, lines(40, 15));
    const b = follow(log);
    await until('55', () => b.signed() === 55);
    await b.stop();
    expect(b.events[0]).toMatchObject({
      type: 'start',
      // after the first run's last checkpoint: 3 (40 records in blocks of 10), or a heartbeat after it if the machine
      // stalled for a heartbeat interval before the stop
      resumed: { checkpoint: first.checkpoints - 1, records: 40 },
      streamId: first.streamId,
    });
    expect(first.checkpoints).toBeGreaterThanOrEqual(4);

    // a crash while writing: the trailer gone and the last block cut short
    const sc = `${log}.mac`;
    const full = readFileSync(sc);
    writeFileSync(sc, full.subarray(0, full.length - 56 - 30));
    const torn = await verifyLog(log, sc, { engine });
    expect(torn).toMatchObject({ tampered: false, closed: false });
    expect(torn.tornBytes).toBeGreaterThan(0);
    expect(torn.counts.unsigned).toBe(55 - torn.signedRecords);

    appendFileSync(log, lines(55, 5));
    const c = follow(log);
    await until('60', () => c.signed() === 60);
    await c.stop();
    expect(c.events[0]).toMatchObject({ type: 'start', resumed: { records: torn.signedRecords } });
    const r = await verifyLog(log, sc, { engine });
    expect(r).toMatchObject({ ok: true, closed: true, records: 60, verified: 60, streamId: first.streamId });
  });

  it('refuses to continue over a log changed while it was stopped, and leaves the sidecar as it was', async () => {
    const d = workDir();
    const log = join(d, 'e.log');
    writeFileSync(log, lines(0, 30));
    const a = follow(log);
    await until('30', () => a.signed() === 30);
    await a.stop();
    const before = readFileSync(`${log}.mac`);
    writeFileSync(log, lines(0, 30).replace(line(12), line(12).replace('x', 'Y')) + lines(30, 3));
    const b = follow(log);
    await expect(b.done).rejects.toThrow(FollowError);
    await expect(b.done).rejects.toThrow(/no longer holds the records its sidecar signed \(line 13: modified/);
    expect(readFileSync(`${log}.mac`).equals(before)).toBe(true);

    const other = engineFromMacKey(
      createMacKey('HMAC_SHA_256', random.bytes(32)),
      ARN.replace('f0', 'f1'),
      'HMAC_SHA_256',
    );
    await expect(followLog(log, { engine: other })).rejects.toThrow(/was made with key .*f0 .*not .*f1/);
  });

  it('rename rotation while lines are written: the old sidecar is closed next to the rotated file; the new one continues the chain', async () => {
    const d = workDir();
    const log = join(d, 'app.log');
    writeFileSync(log, '');
    const f = follow(log);
    let n = 0;
    const writer = setInterval(() => {
      appendFileSync(log, lines(n, 3));
      n += 3;
    }, 5);
    await until('some signed', () => f.signed() > 30);
    renameSync(log, join(d, 'app.log-20260101'));
    const rotatedAt = n;
    await until('rotated', () => f.events.some((e) => e.type === 'rotate'));
    await until('new segment signed', () => f.events.filter((e) => e.type === 'start').length === 2 && f.signed() > 10);
    clearInterval(writer);
    await until('all signed', () => f.signed() + rotatedAtRecords(f) >= n);
    const s = await f.stop();
    const rot = f.events.find((e) => e.type === 'rotate') as Extract<FollowEvent, { type: 'rotate' }>;
    expect(rot).toMatchObject({
      how: 'rename',
      rotatedLog: join(d, 'app.log-20260101'),
      sidecar: join(d, 'app.log-20260101.mac'),
      whileStopped: false,
    });
    const old = await verifyLog(join(d, 'app.log-20260101'), join(d, 'app.log-20260101.mac'), { engine });
    expect(old).toMatchObject({ ok: true, closed: true });
    expect(old.records).toBeGreaterThanOrEqual(rotatedAt);
    const cur = await verifyLog(log, `${log}.mac`, { engine });
    expect(cur).toMatchObject({ ok: true, closed: true, previous: { streamId: old.streamId, records: old.records } });
    expect(old.records + cur.records).toBe(n);
    expect(s.segments).toBe(2);
  });

  it('copytruncate while lines are written: the truncation starts a new segment; the copy verifies up to what was lost', async () => {
    const d = workDir();
    const log = join(d, 'ct.log');
    writeFileSync(log, '');
    const f = follow(log);
    let n = 0;
    const writer = setInterval(() => {
      appendFileSync(log, lines(n, 2));
      n += 2;
    }, 5);
    await until('some signed', () => f.signed() > 30);
    // what logrotate's copytruncate does: copy, then truncate in place
    writeFileSync(join(d, 'ct.log.1'), readFileSync(log));
    truncateSync(log, 0);
    await until('rotated', () => f.events.some((e) => e.type === 'rotate'));
    await until('new segment signed', () => f.signed() > 10 && f.events.filter((e) => e.type === 'start').length === 2);
    clearInterval(writer);
    await new Promise((r) => setTimeout(r, 200));
    await f.stop();
    const rot = f.events.find((e) => e.type === 'rotate') as Extract<FollowEvent, { type: 'rotate' }>;
    expect(rot).toMatchObject({ how: 'truncate', rotatedLog: join(d, 'ct.log.1'), sidecar: join(d, 'ct.log.1.mac') });
    const copy = await verifyLog(join(d, 'ct.log.1'), join(d, 'ct.log.1.mac'), { engine });
    // lines written between the copy and the truncation are lost from both files (copytruncate's known gap);
    // lines copied but not read before the truncation are unsigned: nothing else may differ
    const kinds = Object.entries(copy.counts)
      .filter(([, v]) => v > 0)
      .map(([k]) => k);
    expect(
      kinds.every((k) => k === 'log-truncated' || k === 'unsigned'),
      JSON.stringify(copy.issues),
    ).toBe(true);
    expect(copy.verified).toBeGreaterThan(30);
    const cur = await verifyLog(log, `${log}.mac`, { engine });
    expect(cur).toMatchObject({ ok: true, closed: true, previous: { streamId: copy.streamId } });
  });

  it('a rotation while stopped: the old sidecar is closed and set aside, a new one chained to it', async () => {
    const d = workDir();
    const log = join(d, 's.log');
    writeFileSync(log, lines(0, 20));
    const a = follow(log);
    await until('20', () => a.signed() === 20);
    const first = await a.stop();
    renameSync(log, join(d, 's.log.1'));
    writeFileSync(log, lines(100, 4));
    const b = follow(log);
    await until('4', () => b.signed() === 4);
    await b.stop();
    expect(b.events.find((e) => e.type === 'rotate')).toMatchObject({
      how: 'rename',
      whileStopped: true,
      rotatedLog: join(d, 's.log.1'),
      sidecar: join(d, 's.log.1.mac'),
    });
    expect((await verifyLog(join(d, 's.log.1'), join(d, 's.log.1.mac'), { engine })).ok).toBe(true);
    expect(await verifyLog(log, `${log}.mac`, { engine })).toMatchObject({
      ok: true,
      previous: { streamId: first.streamId },
    });

    // truncated while stopped (copytruncate): the old sidecar cannot be matched to a copy by inode: kept under its stream id
    truncateSync(log, 0);
    appendFileSync(log, lines(200, 3));
    const c = follow(log);
    await until('3', () => c.signed() === 3);
    await c.stop();
    const rot = c.events.find((e) => e.type === 'rotate') as Extract<FollowEvent, { type: 'rotate' }>;
    expect(rot).toMatchObject({ how: 'truncate', whileStopped: true, rotatedLog: null });
    expect(existsSync(rot.sidecar)).toBe(true);
    expect(rot.sidecar).toMatch(/s\.log\.[0-9a-f]{32}\.mac$/);
    expect((await verifyLog(log, `${log}.mac`, { engine })).ok).toBe(true);
  });

  it('stopped after a rotation, before the new file appears: the old segment is finished and set aside', async () => {
    const d = workDir();
    const log = join(d, 'gone.log');
    writeFileSync(log, lines(0, 12));
    const f = follow(log);
    await until('12', () => f.signed() === 12);
    renameSync(log, join(d, 'gone.log-1'));
    await until('rotated', () => f.events.some((e) => e.type === 'rotate'));
    const s = await f.stop();
    expect(s).toMatchObject({ sidecar: join(d, 'gone.log-1.mac'), records: 12, segments: 1 });
    expect((await verifyLog(join(d, 'gone.log-1'), s.sidecar, { engine })).ok).toBe(true);
    expect(existsSync(`${log}.mac`)).toBe(false);
  });

  it('bad options are TypeErrors / RangeErrors', async () => {
    await expect(followLog(42 as never, { engine })).rejects.toThrow(TypeError);
    await expect(followLog('x.log', {} as never)).rejects.toThrow(/name the key/);
    await expect(followLog('x.log', { engine, checkpointEvery: 0 })).rejects.toThrow(RangeError);
    await expect(followLog('x.log', { engine, checkpointEvery: 2_000_000 })).rejects.toThrow(RangeError);
    await expect(followLog('x.log', { engine, checkpointIntervalMs: -1 })).rejects.toThrow(RangeError);
    expect(statSync(root).isDirectory()).toBe(true);
  });

  it('a version-2 sidecar (an earlier release) is continued as version 2, and forward-secure needs a sink', async () => {
    const d = workDir();
    const log = join(d, 'v2.log');
    writeFileSync(log, lines(0, 25));
    const head = headerBytes({
      format: 'kms-hmac-log',
      version: 2,
      keyArn: ARN,
      macAlgorithm: 'HMAC_SHA_256',
      macLength: 32,
      framing: { type: 'line' },
      streamId: randomBytes(16).toString('hex'),
      digest: 'SHA-256',
      rawRecordMax: 4071,
      createdAt: '2026-01-01T00:00:00.000Z',
      checkpointEvery: 10,
      previous: null,
    });
    writeFileSync(
      `${log}.mac`,
      chainedSidecar(readFileSync(log), material, head, 10, (k) => 1767225600000 + k),
    );
    appendFileSync(log, lines(25, 12));
    const f = follow(log);
    await until('37', () => f.signed() === 37);
    await f.stop();
    expect(f.events[0]).toMatchObject({ type: 'start', resumed: { records: 25 }, keys: 'kms' });
    const r = await verifyLog(log, `${log}.mac`, { engine });
    expect(r).toMatchObject({ ok: true, version: 2, closed: true, records: 37, verified: 37 });
    await expect(followLog(log, { engine, forwardSecure: true })).rejects.toThrow(/forwardSecure needs onCheckpoint/);
  });

  it('heartbeats with no record; a clock that goes back shows as clock-backwards in the shipped checkpoints', async () => {
    const d = workDir();
    const log = join(d, 'clock.log');
    writeFileSync(log, lines(0, 3));
    const real = Date.now.bind(Date);
    let back = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => real() - back);
    try {
      const f = follow(log);
      const beats = () => f.anchors.filter((a) => a.type === 'checkpoint').length;
      await until('heartbeats', () => beats() >= 4);
      expect(f.anchors.filter((a) => a.type === 'checkpoint').at(-1)).toMatchObject({ records: 3 }); // no new record
      back = 400; // the clock steps back: the next block sealed by its record count says so
      appendFileSync(log, lines(3, 12));
      await until('15 signed', () => f.signed() === 15);
      await f.stop();
      writeFileSync(join(d, 'shipped'), f.anchors.map(anchorLine).join(''));
    } finally {
      clock.mockRestore();
    }
    const r = await verifyLog(log, `${log}.mac`, { engine, checkpoints: join(d, 'shipped'), maxGapMs: 60_000 });
    expect(r.tampered).toBe(false);
    expect(r.counts['clock-backwards']).toBe(1);
    expect(r.issues.find((i) => i.kind === 'clock-backwards')!.message).toMatch(/clock went back from .* to /);
  });
});

function rotatedAtRecords(f: ReturnType<typeof follow>): number {
  const r = f.events.find((e) => e.type === 'rotate') as Extract<FollowEvent, { type: 'rotate' }> | undefined;
  return r?.records ?? 0;
}
