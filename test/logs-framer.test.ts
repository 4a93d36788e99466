/** RecordFramer: records split exactly as a reference split, whatever the chunking and delimiter. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAC_INPUT_PREFIX, RAW_RECORD_MAX } from '../src/stream/format.js';
import { RecordFramer, type RecordBatch } from '../src/stream/framer.js';

/** Reference: records end after each (non-overlapping, leftmost) delimiter; a non-empty tail is a record. */
function reference(data: Buffer, delim: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = data.indexOf(delim, pos); i >= 0; i = data.indexOf(delim, pos)) {
    out.push(data.subarray(pos, i + delim.length));
    pos = i + delim.length;
  }
  if (pos < data.length) out.push(data.subarray(pos));
  return out;
}

function frame(data: Buffer, delim: Buffer, chunkSizes: () => number) {
  const sid = randomBytes(16);
  const f = new RecordFramer({ streamId: sid, delimiter: delim, digest: 'SHA-256', batchSize: 7 });
  const got: { kind: number; payload: Buffer; start: number; seq: number }[] = [];
  const take = (bs: Iterable<RecordBatch>) => {
    for (const b of bs) {
      for (let i = 0; i < b.count; i++) {
        const m = b.data.subarray(b.offsets[i]!, b.offsets[i + 1]!);
        expect(m.subarray(0, 16).equals(sid)).toBe(true);
        got.push({ kind: m[24]!, payload: Buffer.from(m.subarray(MAC_INPUT_PREFIX)), start: b.starts[i]!, seq: Number(m.readBigUInt64BE(16)) });
      }
      f.release(b);
    }
  };
  for (let p = 0; p < data.length; ) {
    const n = Math.max(1, chunkSizes());
    take(f.push(Buffer.from(data.subarray(p, p + n))));
    p += n;
  }
  take(f.end());
  return { got, records: f.records, bytes: f.bytes };
}

describe('RecordFramer', () => {
  const delims = ['\n', '\r\n', 'ab', 'aba', '\0\0\0'].map((d) => Buffer.from(d));
  it.each(delims.map((d) => [JSON.stringify(d.toString()), d] as const))('delimiter %s, random data and chunking', (_n, delim) => {
    for (let round = 0; round < 14; round++) {
      // an alphabet that makes delimiters (and near-misses) frequent, plus some long records
      const parts: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const r = Math.random();
        if (r < 0.02) parts.push(Buffer.alloc(4071 + Math.floor(Math.random() * 3), 0x61)); // around the digest threshold
        else if (r < 0.03) parts.push(randomBytes(10_000));
        else parts.push(Buffer.from(Array.from({ length: Math.floor(Math.random() * 12) }, () => 'ab\n\r\0x'[Math.floor(Math.random() * 6)]).join('')));
      }
      const data = Buffer.concat(parts);
      const ref = reference(data, delim);
      const maxChunk = [1, 2, 3, 5, 64, 5000, 1 << 20][round % 7]!;
      const { got, records, bytes } = frame(data, delim, () => 1 + Math.floor(Math.random() * maxChunk));
      expect(records).toBe(ref.length);
      expect(bytes).toBe(data.length);
      let start = 0;
      ref.forEach((rec, i) => {
        const g = got[i]!;
        expect(g.seq).toBe(i);
        expect(g.start).toBe(start);
        if (rec.length <= RAW_RECORD_MAX) {
          expect(g.kind).toBe(0);
          expect(g.payload.equals(rec)).toBe(true);
        } else {
          expect(g.kind).toBe(1);
          expect(g.payload.equals(createHash('sha256').update(rec).digest())).toBe(true);
        }
        start += rec.length;
      });
    }
  });
});
