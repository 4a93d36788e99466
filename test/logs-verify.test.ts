/**
 * Log signing and verification (src/logs): every tamper kind is reported
 * exactly, and an intact log never gives an issue. An independent oracle
 * (node:crypto, written from docs/log-format.md) checks the sidecar bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createMacKey } from '../src/mac/key.js';
import { engineFromMacKey } from '../src/logs/engine.js';
import { signLog } from '../src/logs/sign.js';
import { verifyLog, type VerifyReport } from '../src/logs/verify.js';
import type { Framing } from '../src/logs/format.js';
import { blocks, headerBytes, chainedSidecar, v1Sidecar } from './log-oracle.js';
import { random } from './support/random.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const material = random.bytes(32);
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000001';
const engine = engineFromMacKey(createMacKey('HMAC_SHA_256', material), ARN, 'HMAC_SHA_256');
const otherEngine = engineFromMacKey(createMacKey('HMAC_SHA_256', random.bytes(32)), ARN, 'HMAC_SHA_256');

let fileNo = 0;
/** A version-3 checkpoint entry of HMAC_SHA_256: magic, index, records, log bytes, time, epoch, digest, MAC. */
const ENTRY = 48 + 32 + 32;
function chunks(buf: Buffer, size = 7): Readable {
  // small, uneven chunks exercise records and delimiters split across reads
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

async function sign(log: Buffer, framing?: Framing, chunk?: number): Promise<string> {
  const sidecar = join(dir, `s${fileNo++}.mac`);
  await signLog(chunk ? chunks(log, chunk) : Readable.from([log]), sidecar, { engine, framing, batchSize: 16 });
  return sidecar;
}

async function verify(log: Buffer, sidecar: string, eng = engine, chunk?: number): Promise<VerifyReport> {
  return verifyLog(chunk ? chunks(log, chunk) : Readable.from([log]), sidecar, {
    engine: eng,
    batchSize: 16,
    window: 64,
  });
}

function lines(n: number, tag = 'rec'): string[] {
  return Array.from({ length: n }, (_, i) => `${tag} ${i + 1} ${'x'.repeat(i % 13)}\n`);
}
const join_ = (ls: string[]) => Buffer.from(ls.join(''));

function summary(r: VerifyReport) {
  return r.issues.map((i) => ({ kind: i.kind, line: i.line, signedRecord: i.signedRecord, count: i.count }));
}

describe('intact logs verify with no issue', () => {
  const cases: [string, Buffer][] = [
    ['empty file', Buffer.alloc(0)],
    ['one record', Buffer.from('only\n')],
    ['one record, no trailing newline', Buffer.from('only')],
    ['no trailing newline', Buffer.from('a\nb\nc')],
    ['CRLF', Buffer.from('a\r\nb\r\n\r\nc\r\n')],
    ['blank lines', Buffer.from('\n\n\n')],
    ['binary bytes', Buffer.concat([random.bytes(5000), Buffer.from('\n'), Buffer.from([0, 255, 13, 10, 0])])],
    [
      'records of 4096 and 4097 bytes',
      Buffer.from(`${'a'.repeat(4095)}\n${'b'.repeat(4096)}\n${'c'.repeat(4070)}\n${'d'.repeat(4071)}\n`),
    ],
    ['a record of 100 KiB', Buffer.from(`${'z'.repeat(100 * 1024)}\nshort\n`)],
    ['many records across batches', join_(lines(200))],
  ];
  it.each(cases)('%s', async (_name, log) => {
    for (const chunk of [undefined, 7, 4099]) {
      const sc = await sign(log, undefined, chunk);
      const r = await verify(log, sc, engine, chunk);
      expect(summary(r)).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.records).toBe(r.signedRecords);
      expect(r.verified).toBe(r.records);
    }
  });

  it('delimiter framing (multi-byte, split across chunks) and ndjson', async () => {
    const log = Buffer.from('one\r\n\r\ntwo\r\n\r\nthree');
    const sc = await sign(log, { type: 'delimiter', delimiter: Buffer.from('\r\n\r\n') }, 3);
    const r = await verify(log, sc, engine, 2);
    expect(r.ok).toBe(true);
    expect(r.records).toBe(3);
    const nd = Buffer.from('{"a":1}\n{"b":[2]}\n\n');
    const sc2 = await sign(nd, { type: 'ndjson' });
    expect((await verify(nd, sc2)).ok).toBe(true);
    await expect(sign(Buffer.from('{"a":1}\nnot json\n'), { type: 'ndjson' })).rejects.toThrow(
      /line 2 is not valid JSON/,
    );
  });
});

describe('sidecar bytes match an independent node:crypto implementation of docs/log-format.md (test/log-oracle.ts)', () => {
  it.each([
    [
      'digest rule at 4071/4072 bytes, no final newline',
      Buffer.from(`${'a'.repeat(4070)}\n${'b'.repeat(4071)}\nlast`),
      2,
    ],
    ['a block per record', join_(lines(5)), 1],
    ['an exact number of blocks', join_(lines(9)), 3],
    ['an empty log: one checkpoint for zero records', Buffer.alloc(0), 4],
  ] as const)('%s', async (_name, log, every) => {
    const sidecar = join(dir, `oracle${fileNo++}.mac`);
    await signLog(log, sidecar, { engine, batchSize: 2, checkpointEvery: every });
    const sc = readFileSync(sidecar);
    const head = sc.subarray(0, 12 + sc.readUInt32BE(8));
    expect(JSON.parse(head.subarray(12).toString())).toMatchObject({
      version: 3,
      checkpointEvery: every,
      previous: null,
      heartbeatMs: null,
      keys: 'kms',
    });
    const times = blocks(sc).map((b) => b.time);
    expect(sc.equals(chainedSidecar(log, material, head, every, (k) => times[k]!))).toBe(true);
  });

  it("batched writes: blocks that straddle the writer's buffers, checkpoints written after their block went to the disk", async () => {
    // 40,000 MACs (1.25 MiB) in blocks of 7,000: some blocks begin in one write buffer and end in the next
    const log = join_(lines(40_000));
    const sidecar = join(dir, `oracle${fileNo++}.mac`);
    await signLog(log, sidecar, { engine, checkpointEvery: 7000 });
    const sc = readFileSync(sidecar);
    const head = sc.subarray(0, 12 + sc.readUInt32BE(8));
    const times = blocks(sc).map((b) => b.time);
    expect(times.length).toBe(6);
    expect(sc.equals(chainedSidecar(log, material, head, 7000, (k) => times[k]!))).toBe(true);
  });
});

describe('version-2 sidecars (written by earlier releases) still verify', () => {
  const sid = randomBytes(16);
  const base = lines(45);
  const head = headerBytes({
    format: 'kms-hmac-log',
    version: 2,
    keyArn: ARN,
    macAlgorithm: 'HMAC_SHA_256',
    macLength: 32,
    framing: { type: 'line' },
    streamId: sid.toString('hex'),
    digest: 'SHA-256',
    rawRecordMax: 4071,
    createdAt: '2026-01-01T00:00:00.000Z',
    checkpointEvery: 10,
    previous: null,
  });
  const v2 = join(dir, 'v2.mac');
  const full = chainedSidecar(join_(base), material, head, 10, (k) => 1767225600000 + k * 1000);
  writeFileSync(v2, full);

  it('intact: ok, version 2, its checkpoints', async () => {
    const r = await verify(join_(base), v2);
    expect(summary(r)).toEqual([]);
    expect(r).toMatchObject({ ok: true, version: 2, closed: true, records: 45, checkpoint: { index: 4, records: 45 } });
  });

  it('tampering, and a sidecar cut inside its last block (a crash) as before', async () => {
    const t = [...base];
    t[7] = 'changed\n';
    expect(summary(await verify(join_(t), v2))).toEqual([{ kind: 'modified', line: 8, signedRecord: 8, count: 1 }]);
    const cut = join(dir, 'v2-cut.mac');
    writeFileSync(cut, full.subarray(0, full.length - 56 - 7));
    const r = await verify(join_(base), cut);
    expect(r).toMatchObject({ tampered: false, closed: false, signedRecords: 40 });
    expect(summary(r)).toEqual([{ kind: 'unsigned', line: 41, signedRecord: undefined, count: 5 }]);
  });
});

describe('version-1 sidecars (written by earlier releases) still verify', () => {
  const sid = random.bytes(16);
  const base = lines(60);
  const v1 = join(dir, 'v1.mac');
  writeFileSync(v1, v1Sidecar(join_(base), material, sid, ARN));

  it('intact: ok, version 1, no checkpoint', async () => {
    const r = await verify(join_(base), v1);
    expect(summary(r)).toEqual([]);
    expect(r).toMatchObject({
      ok: true,
      version: 1,
      checkpoint: null,
      closed: true,
      records: 60,
      verified: 60,
      signedBytes: join_(base).length,
    });
  });

  it('tampering and truncation are reported as before', async () => {
    const t = [...base];
    t[4] = 'changed\n';
    t.splice(20, 1);
    t.push('appended\n');
    const r = await verify(join_(t), v1);
    expect(summary(r)).toEqual([
      { kind: 'modified', line: 5, signedRecord: 5, count: 1 },
      { kind: 'deleted', line: 21, signedRecord: 21, count: 1 },
      { kind: 'inserted', line: 60, signedRecord: undefined, count: 1 },
    ]);
    const full = readFileSync(v1);
    const cut = join(dir, 'v1-cut.mac');
    writeFileSync(cut, full.subarray(0, full.length - 56 - 32 * 10));
    const c = await verify(join_(base), cut);
    expect(summary(c)).toEqual([
      { kind: 'sidecar-truncated', line: undefined, signedRecord: undefined, count: 1 },
      { kind: 'unsigned', line: 51, signedRecord: undefined, count: 10 },
    ]);
    expect(c.tampered).toBe(true);
  });
});

describe('tampering is reported exactly', () => {
  const base = lines(40);
  let sc: string;
  const signed = async () => (sc ??= await sign(join_(base)));

  it('modified record', async () => {
    const t = [...base];
    t[9] = 'rec 10 CHANGED\n';
    const r = await verify(join_(t), await signed());
    expect(r.ok).toBe(false);
    expect(summary(r)).toEqual([{ kind: 'modified', line: 10, signedRecord: 10, count: 1 }]);
  });

  it('CRLF changed to LF on one line is a modification', async () => {
    const crlf = Buffer.from('a\r\nb\r\nc\r\n');
    const s = await sign(crlf);
    const r = await verify(Buffer.from('a\r\nb\nc\r\n'), s);
    expect(summary(r)).toEqual([{ kind: 'modified', line: 2, signedRecord: 2, count: 1 }]);
  });

  it('inserted record', async () => {
    const t = [...base];
    t.splice(5, 0, 'evil\n');
    const r = await verify(join_(t), await signed());
    expect(summary(r)).toEqual([{ kind: 'inserted', line: 6, signedRecord: undefined, count: 1 }]);
  });

  it('several inserted records in a row, and at the start', async () => {
    const t = [...base];
    t.splice(20, 0, 'x1\n', 'x2\n', 'x3\n');
    t.unshift('first\n');
    const r = await verify(join_(t), await signed());
    expect(summary(r)).toEqual([
      { kind: 'inserted', line: 1, signedRecord: undefined, count: 1 },
      { kind: 'inserted', line: 22, signedRecord: undefined, count: 3 },
    ]);
  });

  it('deleted records', async () => {
    const t = [...base];
    t.splice(12, 3);
    t.splice(0, 1);
    const r = await verify(join_(t), await signed());
    expect(summary(r)).toEqual([
      { kind: 'deleted', line: 1, signedRecord: 1, count: 1 },
      { kind: 'deleted', line: 12, signedRecord: 13, count: 3 },
    ]);
  });

  it('reordered records: swap, move earlier, move later', async () => {
    const swap = [...base];
    [swap[3], swap[4]] = [swap[4]!, swap[3]!];
    const r1 = await verify(join_(swap), await signed());
    expect(r1.counts.reordered).toBe(1);
    expect(r1.issues.length).toBe(1);
    expect(r1.issues[0]).toMatchObject({ kind: 'reordered' });

    const earlier = [...base];
    const [moved] = earlier.splice(30, 1);
    earlier.splice(2, 0, moved!);
    const r2 = await verify(join_(earlier), await signed());
    expect(summary(r2)).toEqual([{ kind: 'reordered', line: 3, signedRecord: 31, count: 1 }]);

    const later = [...base];
    const [m2] = later.splice(2, 1);
    later.splice(30, 0, m2!);
    const r3 = await verify(join_(later), await signed());
    expect(summary(r3)).toEqual([{ kind: 'reordered', line: 31, signedRecord: 3, count: 1 }]);
  });

  it('truncated log (cut at a record boundary and inside a record)', async () => {
    const r = await verify(join_(base.slice(0, 30)), await signed());
    expect(summary(r)).toEqual([{ kind: 'log-truncated', line: undefined, signedRecord: 31, count: 10 }]);
    const cut = join_(base);
    const r2 = await verify(cut.subarray(0, cut.length - 3), await signed());
    expect(summary(r2)).toEqual([{ kind: 'modified', line: 40, signedRecord: 40, count: 1 }]);
  });

  it('removing or adding the final newline is a modification', async () => {
    const log = Buffer.from('a\nb\n');
    const r = await verify(Buffer.from('a\nb'), await sign(log));
    expect(summary(r)).toEqual([{ kind: 'modified', line: 2, signedRecord: 2, count: 1 }]);
  });

  it('a sidecar cut short looks like a signer that crashed: records after its last whole checkpoint are unsigned, not tampered', async () => {
    const log = join_(base);
    const sidecar = join(dir, 'blocks.mac');
    await signLog(log, sidecar, { engine, batchSize: 16, checkpointEvery: 10 });
    const full = readFileSync(sidecar);
    const block = ENTRY + 10 * 32;
    const trailer = 56;
    for (const [cut, through] of [
      [10, 40], // inside the trailer: every checkpoint is whole
      [trailer, 40], // just the trailer: an open sidecar
      [trailer + 7, 30], // inside the last block
      [trailer + block, 30], // at a block boundary
      [trailer + block + 100, 20],
    ]) {
      const p = join(dir, `cut${cut}.mac`);
      writeFileSync(p, full.subarray(0, full.length - cut!));
      const r = await verify(log, p);
      expect(r.closed).toBe(false);
      expect(r.tampered, `cut ${cut}`).toBe(false);
      expect(r.signedRecords).toBe(through);
      expect(r.checkpoint).toMatchObject({ index: through! / 10 - 1, records: through });
      expect(r.verified).toBe(through);
      expect(summary(r)).toEqual(
        through === 40 ? [] : [{ kind: 'unsigned', line: through! + 1, signedRecord: undefined, count: 40 - through! }],
      );
    }
  });

  it('a damaged checkpoint, or a record MAC changed in the sidecar, breaks the chain', async () => {
    const log = join_(base);
    const sidecar = join(dir, 'chain.mac');
    await signLog(log, sidecar, { engine, batchSize: 16, checkpointEvery: 2 }); // 20 blocks
    const full = readFileSync(sidecar);
    const at = (k: number) => blocks(full)[k]!.at;
    const damaged = (name: string, edit: (b: Buffer) => void) => {
      const b = Buffer.from(full);
      edit(b);
      writeFileSync(join(dir, name), b);
      return verify(log, join(dir, name));
    };
    const r1 = await damaged('chain-time.mac', (b) => (b[at(1) + 39] ^= 1)); // checkpoint 1's time
    expect(r1.issues.map((i) => i.kind)).toEqual(['sidecar-checkpoint']);
    expect(r1.issues[0]!.message).toMatch(/checkpoint 1 \(records through 4\) does not verify/);
    const r2 = await damaged('chain-mac.mac', (b) => (b[at(5) + ENTRY + 32] ^= 1)); // the MAC of record 12
    expect(summary(r2)).toEqual([
      { kind: 'sidecar-checkpoint', line: undefined, signedRecord: undefined, count: 1 },
      { kind: 'modified', line: 12, signedRecord: 12, count: 1 },
    ]);
    // checkpoint 1's record count: the blocks after it no longer parse, far more than a crash leaves
    const r3 = await damaged('chain-count.mac', (b) => (b[at(1) + 23] ^= 1));
    expect(r3.tampered).toBe(true);
    expect(r3.issues[0]!.message).toMatch(/after its checkpoint 0 .* more than a crash can leave/);
  });

  it('damage in the last blocks of a sidecar without its trailer cannot be told from a crash: unsigned, not tampered (the documented limit)', async () => {
    const log = join_(base);
    const sidecar = join(dir, 'tail.mac');
    await signLog(log, sidecar, { engine, batchSize: 16, checkpointEvery: 2 });
    const full = readFileSync(sidecar);
    const b = blocks(full);
    const open = Buffer.from(full.subarray(0, b.at(-1)!.end)); // no trailer: a signer that was still running
    open[b.at(-2)!.end - 1] ^= 1; // a MAC in the second-to-last block, as a power cut before fdatasync could leave it
    writeFileSync(join(dir, 'tail-damaged.mac'), open);
    const r = await verify(log, join(dir, 'tail-damaged.mac'));
    expect(r).toMatchObject({ tampered: false, signedRecords: 36, checkpoint: { index: 17 } });
    expect(r.tornBytes).toBe(2 * (ENTRY + 64));
    expect(summary(r)).toEqual([{ kind: 'unsigned', line: 37, signedRecord: undefined, count: 4 }]);
  });

  it('trailer altered (count changed)', async () => {
    const full = Buffer.from(readFileSync(await signed()));
    full[full.length - 32 - 9] ^= 1;
    const p = join(dir, 'trailer.mac');
    writeFileSync(p, full);
    const r = await verify(join_(base), p);
    expect(r.issues.map((i) => i.kind)).toEqual(['sidecar-trailer']);
  });

  it('records spliced in from another signed log', async () => {
    const other = lines(40, 'other');
    await sign(join_(other));
    const t = [...base];
    t.splice(10, 2, base[10]!.replace('rec', 'rec'), other[11]!);
    const r = await verify(join_(t), await signed());
    expect(summary(r)).toEqual([{ kind: 'modified', line: 12, signedRecord: 12, count: 1 }]);
  });

  it('sidecar from another log', async () => {
    const otherSc = await sign(join_(lines(40, 'other')));
    const r = await verify(join_(base), otherSc);
    expect(r.ok).toBe(false);
    expect(r.issues[0]!.kind).toBe('foreign-sidecar');
    expect(r.verified).toBe(0);
  });

  it('the same log signed twice gets different stream ids: sidecars are not interchangeable for splicing', async () => {
    const a = readFileSync(await sign(join_(base)));
    const b = readFileSync(await sign(join_(base)));
    expect(a.equals(b)).toBe(false);
  });

  it('the same key ARN with other material: the header MAC fails', async () => {
    const r = await verify(join_(base), await signed(), otherEngine);
    expect(r.issues.map((i) => i.kind)).toEqual(['sidecar-header']);
    expect(r.issues[0]!.message).toMatch(/header MAC does not verify/);
  });

  it('a damaged header', async () => {
    const full = Buffer.from(readFileSync(await signed()));
    full[20] ^= 1;
    const p = join(dir, 'hdr.mac');
    writeFileSync(p, full);
    const r = await verify(join_(base), p);
    expect(r.issues.map((i) => i.kind)).toEqual(['sidecar-header']);
  });

  it('a mix of every kind at once, far apart', async () => {
    const big = lines(600);
    const s = await sign(join_(big));
    const t = [...big];
    t[50] = 'changed\n'; // line 51 modified
    t.splice(200, 2); // signed 201-202 deleted
    t.splice(300, 0, 'ins\n'); // inserted at line 301
    const [mv] = t.splice(400, 1); // signed 403 moved later
    t.splice(420, 0, mv!);
    const r = await verify(join_(t), s);
    expect(summary(r)).toEqual([
      { kind: 'modified', line: 51, signedRecord: 51, count: 1 },
      { kind: 'deleted', line: 201, signedRecord: 201, count: 2 },
      { kind: 'inserted', line: 301, signedRecord: undefined, count: 1 },
      { kind: 'reordered', line: 421, signedRecord: 402, count: 1 },
    ]);
  });
});

describe('randomised single tampering: exactly one issue of the right kind, never a false alarm', () => {
  it('200 random cases on a 300-record log', async () => {
    const base = lines(300, 'fz');
    const sc = await sign(join_(base));
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let k = 0; k < 200; k++) {
      const t = [...base];
      const op = ['modify', 'insert', 'delete', 'move', 'none'][k % 5]!;
      const i = rnd(300);
      let expected: Record<string, number> = {};
      if (op === 'modify') {
        t[i] = `forged ${k}\n`;
        expected = { modified: 1 };
      } else if (op === 'insert') {
        t.splice(i, 0, `inserted ${k}\n`);
        expected = { inserted: 1 };
      } else if (op === 'delete') {
        t.splice(i, 1);
        expected = i === 299 ? { 'log-truncated': 1 } : { deleted: 1 };
      } else if (op === 'move') {
        let j = rnd(300);
        if (j === i) j = (i + 1) % 300;
        const [m] = t.splice(i, 1);
        t.splice(j, 0, m!);
        expected = { reordered: 1 };
      }
      const r = await verifyLog(Readable.from([join_(t)]), sc, { engine, batchSize: 16 }); // default window (1024) covers the log
      const got = Object.fromEntries(Object.entries(r.counts).filter(([, v]) => v > 0));
      expect(got, `${op} at ${i} (case ${k})`).toEqual(expected);
      expect(r.ok).toBe(op === 'none');
    }
  });

  it('a move farther than the window is still caught, as a deletion plus an insertion (documented limit)', async () => {
    const base = lines(300, 'w');
    const sc = await sign(join_(base));
    const t = [...base];
    const [m] = t.splice(10, 1);
    t.splice(200, 0, m!);
    const r = await verify(join_(t), sc); // window 64
    expect(summary(r)).toEqual([
      { kind: 'deleted', line: 11, signedRecord: 11, count: 1 },
      { kind: 'inserted', line: 201, signedRecord: undefined, count: 1 },
    ]);
  });

  it('the first 300 records changed, the rest intact: modified, not "another log"', async () => {
    const base = lines(1000, 'head');
    const sc = await sign(join_(base));
    const t = base.map((l, i) => (i < 300 ? l.replace('head', 'HEAD') : l));
    const r = await verify(join_(t), sc);
    expect(summary(r)).toEqual([{ kind: 'modified', line: 1, signedRecord: 1, count: 300 }]);
  });
});
