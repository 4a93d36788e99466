/**
 * The log pipeline on shared memory: the framer's arena is a
 * SharedArrayBuffer, so the pool threads hash framed records where they lie.
 * What must hold (docs/performance.md, "The log pipeline on shared memory"):
 * the engine gets every batch in the library's own shared memory and never a
 * caller's buffer; a batch's bytes do not change from submission until its
 * MACs settle, whatever the caller or another writer of the log does
 * meanwhile; and the sidecars are byte for byte what they were.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNativeBinding } from '../src/backend/native.js';
import { createMacKey } from '../src/mac/key.js';
import { engineFromMacKey, type MacEngine } from '../src/logs/engine.js';
import { RecordFramer, type RecordBatch } from '../src/logs/framer.js';
import { signLog } from '../src/logs/sign.js';
import { verifyLog } from '../src/logs/verify.js';
import { blocks, chainedSidecar } from './log-oracle.js';
import { random } from './support/random.js';

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/5a1e0b8e-0000-4000-8000-000000000025';
const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-shared-arena-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const p = (name: string) => join(dir, name);

/** Lines of random printable text and random lengths (1–600 bytes, newline included). */
function randomLog(records: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < records; i++) {
    const line = random.bytes(random.int(600));
    for (let j = 0; j < line.length; j++) line[j] = 0x20 + (line[j]! % 0x5e);
    parts.push(line, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

interface Seen {
  calls: number;
  sharedData: number;
  sharedOffsets: number;
  sharedOut: number;
  /** Batches whose bytes or offsets were not the same when they settled as when they were submitted. */
  changed: number;
  /** Batches whose data lay in one of the caller's buffers. */
  callers: number;
  /** The most batches in flight at once (framing goes on meanwhile). */
  maxInFlight: number;
}

/**
 * An engine that records what it is given, snapshots each batch at the call
 * and compares it once the batch has settled, and settles late (`delayMs`),
 * so the pipeline frames and reads on while batches are in flight.
 */
function watchingEngine(inner: MacEngine, callerBuffers: Set<ArrayBufferLike>, delayMs: number) {
  const seen: Seen = {
    calls: 0,
    sharedData: 0,
    sharedOffsets: 0,
    sharedOut: 0,
    changed: 0,
    callers: 0,
    maxInFlight: 0,
  };
  let inFlight = 0;
  const watch = async (
    data: Uint8Array,
    offsets: Uint32Array,
    out: Uint8Array | undefined,
    run: () => Promise<Uint8Array>,
  ) => {
    seen.calls++;
    if (data.buffer instanceof SharedArrayBuffer) seen.sharedData++;
    if (offsets.buffer instanceof SharedArrayBuffer) seen.sharedOffsets++;
    if (out?.buffer instanceof SharedArrayBuffer) seen.sharedOut++;
    if (callerBuffers.has(data.buffer)) seen.callers++;
    const bytes = Buffer.from(data);
    const offs = offsets.slice();
    const result = run();
    seen.maxInFlight = Math.max(seen.maxInFlight, ++inFlight);
    await sleep(delayMs);
    const r = await result;
    inFlight--;
    if (!bytes.equals(data) || !offs.every((o, i) => o === offsets[i])) seen.changed++;
    return r;
  };
  const engine: MacEngine = {
    ...inner,
    macPacked: (data, offsets, out) => watch(data, offsets, out, () => inner.macPacked(data, offsets, out)),
    verifyPacked: (data, offsets, macs, results) =>
      watch(data, offsets, results, () => inner.verifyPacked(data, offsets, macs, results)),
  };
  return { engine, seen };
}

describe('the log pipeline on shared memory', () => {
  it("the framer's arena is a SharedArrayBuffer, framed by the WebAssembly kernel and by the JavaScript loop", () => {
    const sid = random.bytes(16);
    const log = randomLog(300);
    for (const checkRecord of [undefined, () => {}]) {
      const framer = new RecordFramer({
        streamId: sid,
        delimiter: Buffer.from('\n'),
        digest: 'SHA-256',
        checkRecord,
        batchSize: 100,
      });
      expect(framer.framedByKernel).toBe(checkRecord === undefined);
      expect(framer.inputArea(0).buffer).toBeInstanceOf(SharedArrayBuffer);
      const counts: number[] = [];
      const take = (batches: Iterable<RecordBatch>) => {
        for (const b of batches) {
          expect(b.data.buffer).toBeInstanceOf(SharedArrayBuffer);
          expect(b.offsets.buffer).toBe(b.data.buffer);
          counts.push(b.count);
          framer.release(b);
        }
      };
      take(framer.push(log));
      take(framer.end());
      expect(counts).toEqual([100, 100, 100]);
      framer.dispose();
    }
  });

  it.each(['native', 'wasm-simd'] as const)(
    "%s: the signer hashes in the library's shared memory only: a caller reusing its chunk buffer at once changes nothing, and the sidecar is the oracle's",
    async (backend) => {
      const key = random.bytes(32);
      const inner = engineFromMacKey(createMacKey('HMAC_SHA_256', key, { backend }), ARN, 'HMAC_SHA_256');
      const log = randomLog(3000);
      // the caller's one buffer, refilled with the next bytes as soon as the pipeline has taken a chunk
      const reused = Buffer.alloc(7919);
      const callers = new Set<ArrayBufferLike>([reused.buffer]);
      async function* chunks() {
        for (let at = 0; at < log.length; at += reused.length) {
          const n = log.copy(reused, 0, at, at + reused.length);
          yield reused.subarray(0, n);
          reused.fill(0x2a); // what a batch in the caller's memory would now be hashed over
        }
      }
      const { engine, seen } = watchingEngine(inner, callers, 2);
      await signLog(chunks(), p(`reused-${backend}.mac`), { engine, batchSize: 512, checkpointEvery: 1000 });
      expect(seen.calls).toBeGreaterThanOrEqual(Math.ceil(3000 / 512));
      expect(seen).toMatchObject({
        sharedData: seen.calls,
        sharedOffsets: seen.calls,
        sharedOut: seen.calls,
        callers: 0,
        changed: 0,
        maxInFlight: 2, // the framer frames batch n + 1 while n and n - 1 are hashed and written
      });
      // byte for byte the sidecar of the independent implementation of the format
      const sidecar = readFileSync(p(`reused-${backend}.mac`));
      const head = sidecar.subarray(0, 12 + sidecar.readUInt32BE(8));
      const times = blocks(sidecar).map((b) => b.time);
      expect(sidecar.equals(chainedSidecar(log, key, head, 1000, (k) => times[k]!))).toBe(true);
      expect((await verifyLog(log, p(`reused-${backend}.mac`), { engine: inner })).ok).toBe(true);
    },
  );

  it('the native pool hashes the batches where they were framed: sign and verify copy nothing of a batch but its offsets', async () => {
    const binding = loadNativeBinding();
    const key = createMacKey('HMAC_SHA_256', random.bytes(32), { backend: 'native' });
    const inner = engineFromMacKey(key, ARN, 'HMAC_SHA_256');
    const records = 60_000; // 200-byte lines: full default batches (16,384 records, 3.7 MB), which go to the pool
    const log = Buffer.alloc(records * 200, 0x61);
    for (let i = 199; i < log.length; i += 200) log[i] = 0x0a;
    writeFileSync(p('pool.log'), log);
    const batches = Math.ceil(records / 16_384);
    for (const op of ['sign', 'verify'] as const) {
      const before = binding.batchStats();
      if (op === 'sign') await signLog(p('pool.log'), p('pool.mac'), { engine: inner });
      else expect((await verifyLog(p('pool.log'), p('pool.mac'), { engine: inner })).ok).toBe(true);
      const after = binding.batchStats();
      expect(after.poolBatches - before.poolBatches, op).toBeGreaterThanOrEqual(batches - 1);
      // the offsets (4 bytes a record), and for verify the expected MACs (ArrayBuffers: copied), never the records
      const macs = op === 'verify' ? records * 32 : 0;
      expect(after.bytesCopied - before.bytesCopied, op).toBeLessThanOrEqual(4 * (records + batches) + macs + 4096);
    }
  });

  it('a verifier reading a log that is being rewritten hashes the bytes it framed: no batch changes in flight, and no crash', async () => {
    const inner = engineFromMacKey(createMacKey('HMAC_SHA_256', random.bytes(32)), ARN, 'HMAC_SHA_256');
    const log = randomLog(20_000);
    writeFileSync(p('live.log'), log);
    await signLog(p('live.log'), p('live.mac'), { engine: inner, batchSize: 512 });
    const { engine, seen } = watchingEngine(inner, new Set(), 1);
    // another writer overwrites random stretches of the log with random bytes while it is verified
    const fh = await open(p('live.log'), 'r+');
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 10_000; i++) {
        await fh.write(random.bytes(1 + random.int(4096)), 0, undefined, random.int(log.length));
        await sleep(0);
      }
    })();
    try {
      const r = await verifyLog(p('live.log'), p('live.mac'), { engine, batchSize: 512 });
      expect(typeof r.ok).toBe('boolean'); // whatever it finds, it reports
    } finally {
      writing = false;
      await writer;
      await fh.close();
    }
    expect(seen.calls).toBeGreaterThan(0);
    expect(seen).toMatchObject({
      sharedData: seen.calls,
      sharedOffsets: seen.calls,
      sharedOut: seen.calls,
      changed: 0,
      maxInFlight: 2,
    });
    // and once the writer has stopped, the verifier reads the log as it now is
    writeFileSync(p('live.log'), log);
    expect((await verifyLog(p('live.log'), p('live.mac'), { engine: inner, batchSize: 512 })).ok).toBe(true);
  });
});
