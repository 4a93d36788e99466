/** RecordFramer: records split exactly as a reference split, whatever the chunking and delimiter. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAC_INPUT_PREFIX, RAW_RECORD_MAX } from '../src/logs/format.js';
import { RecordFramer, recordEnd, type RecordBatch } from '../src/logs/framer.js';
import { random } from './support/random.js';

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

interface FrameOptions {
  batchSize?: number;
  batchBytes?: number;
  inputBytes?: number;
  slots?: number;
  /** Read into the framer's input areas (as signLog does with a file) instead of pushing chunks of our own. */
  inPlace?: boolean;
  /** Call flush() now and then: it closes a batch of the complete records and keeps an unfinished one. */
  flushes?: boolean;
  /** Check each record, as NDJSON framing does. */
  check?: boolean;
}

function frame(data: Buffer, delim: Buffer, chunkSizes: () => number, o: FrameOptions = {}) {
  const sid = random.bytes(16);
  const slots = o.slots ?? 2;
  const checked: number[] = [];
  const f = new RecordFramer({
    streamId: sid,
    delimiter: delim,
    digest: 'SHA-256',
    batchSize: o.batchSize ?? 7,
    batchBytes: o.batchBytes,
    inputBytes: o.inputBytes,
    slots,
    checkRecord: o.check ? (_buf, start, end, index) => void checked.push(index, end - start) : undefined,
  });
  const got: { kind: number; payload: Buffer; start: number; seq: number }[] = [];
  // hold up to `slots` batches, as a pipeline with that many in flight does; a batch's bytes must survive until released
  const held: RecordBatch[] = [];
  const settle = (b: RecordBatch) => {
    for (let i = 0; i < b.count; i++) {
      const m = b.data.subarray(b.offsets[i]!, b.offsets[i + 1]!);
      expect(m.subarray(0, 16).equals(sid)).toBe(true);
      got.push({
        kind: m[24]!,
        payload: Buffer.from(m.subarray(MAC_INPUT_PREFIX)),
        start: b.starts[i]!,
        seq: Number(m.readBigUInt64BE(16)),
      });
    }
    expect(b.end).toBe(b.count ? recordEnd(b, b.count - 1) : b.end);
    f.release(b);
  };
  const take = (bs: Iterable<RecordBatch>) => {
    for (const b of bs) {
      held.push(b);
      while (held.length > slots - 1) settle(held.shift()!);
    }
  };
  let k = 0;
  for (let p = 0; p < data.length; ) {
    let n = Math.max(1, chunkSizes());
    if (o.inPlace) {
      k ^= 1;
      const area = f.inputArea(k as 0 | 1);
      n = Math.min(n, area.length);
      data.copy(area, 0, p, p + n);
      take(f.push(area.subarray(0, Math.min(n, data.length - p))));
    } else take(f.push(Buffer.from(data.subarray(p, p + n))));
    p += n;
    if (o.flushes && random.float() < 0.2) take(f.flush());
  }
  take(f.end());
  while (held.length) settle(held.shift()!);
  if (o.check) {
    // every raw record was checked, once, in order, with its bytes
    const raw = got.flatMap((g) => (g.kind === 0 ? [g.seq, g.payload.length] : []));
    expect(checked).toEqual(raw);
  }
  return { got, records: f.records, bytes: f.bytes };
}

/** Data whose alphabet makes delimiters (and near-misses) frequent, plus records around and far beyond the digest threshold. */
function randomLog(): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 200; i++) {
    const r = random.float();
    if (r < 0.02)
      parts.push(Buffer.alloc(4071 + random.int(3), 0x61)); // around the digest threshold
    else if (r < 0.03) parts.push(random.bytes(10_000));
    else parts.push(Buffer.from(Array.from({ length: random.int(12) }, () => 'ab\n\r\0x'[random.int(6)]).join('')));
  }
  return Buffer.concat(parts);
}

function expectFramed(data: Buffer, delim: Buffer, { got, records, bytes }: ReturnType<typeof frame>) {
  const ref = reference(data, delim);
  expect(records).toBe(ref.length);
  expect(bytes).toBe(data.length);
  expect(got.length).toBe(ref.length);
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

describe('RecordFramer', () => {
  const delims = ['\n', '\r\n', 'ab', 'aba', '\0\0\0'].map((d) => Buffer.from(d));
  it.each(delims.map((d) => [JSON.stringify(d.toString()), d] as const))(
    'delimiter %s, random data and chunking',
    (_n, delim) => {
      for (let round = 0; round < 14; round++) {
        const data = randomLog();
        const maxChunk = [1, 2, 3, 5, 64, 5000, 1 << 20][round % 7]!;
        expectFramed(
          data,
          delim,
          frame(data, delim, () => 1 + random.int(maxChunk)),
        );
      }
    },
  );

  it('the WebAssembly kernel and the JavaScript loop frame a one-byte delimiter alike', () => {
    // a record check makes the framer use the JavaScript loop, whatever the delimiter
    const sid = random.bytes(16);
    expect(new RecordFramer({ streamId: sid, delimiter: Buffer.from('\n'), digest: 'SHA-256' }).framedByKernel).toBe(
      true,
    );
    expect(
      new RecordFramer({ streamId: sid, delimiter: Buffer.from('\n'), digest: 'SHA-256', checkRecord: () => {} })
        .framedByKernel,
    ).toBe(false);
    expect(new RecordFramer({ streamId: sid, delimiter: Buffer.from('\r\n'), digest: 'SHA-256' }).framedByKernel).toBe(
      false,
    );
    for (let round = 0; round < 10; round++) {
      const data = randomLog();
      for (const check of [false, true]) {
        expectFramed(
          data,
          Buffer.from('\n'),
          frame(data, Buffer.from('\n'), () => 1 + random.int(5000), { check, batchSize: 50 }),
        );
      }
    }
  });

  it('any input area, batch and slot size; reads into the input areas; flush() between chunks keeps an unfinished record', () => {
    for (let round = 0; round < 60; round++) {
      const delim = random.pick(delims);
      const data = randomLog();
      const o: FrameOptions = {
        inputBytes: random.pick([1, 16, 100, 4096, 1 << 16]),
        batchBytes: random.pick([MAC_INPUT_PREFIX + RAW_RECORD_MAX, 9000, 1 << 16]),
        batchSize: random.pick([1, 3, 50, 4096]),
        slots: random.pick([1, 2, 3]),
        inPlace: random.float() < 0.5,
        flushes: random.float() < 0.5,
        check: random.float() < 0.3,
      };
      const maxChunk = random.pick([3, 64, 5000, 1 << 16]);
      expectFramed(
        data,
        delim,
        frame(data, delim, () => 1 + random.int(maxChunk), o),
      );
    }
  });

  it('a batch holds at most batchSize records and batchBytes bytes', () => {
    const counts = (line: string) => {
      const f = new RecordFramer({
        streamId: random.bytes(16),
        delimiter: Buffer.from('\n'),
        digest: 'SHA-256',
        batchSize: 10,
        batchBytes: 5000,
      });
      const out: number[] = [];
      const take = (bs: Iterable<RecordBatch>) => {
        for (const b of bs) {
          expect(b.data.length).toBeLessThanOrEqual(5000);
          expect(b.offsets[b.count]).toBe(b.data.length);
          out.push(b.count);
          f.release(b);
        }
      };
      take(f.push(Buffer.from(line.repeat(30))));
      take(f.end());
      return out;
    };
    expect(counts(`${'x'.repeat(9)}\n`)).toEqual([10, 10, 10]);
    expect(counts(`${'x'.repeat(999)}\n`)).toEqual([4, 4, 4, 4, 4, 4, 4, 2]); // 5 x (25 + 1000) > 5000
  });

  it('a consumer that holds more batches than it asked slots for gets an error, never a batch overwritten under it', () => {
    const f = new RecordFramer({
      streamId: random.bytes(16),
      delimiter: Buffer.from('\n'),
      digest: 'SHA-256',
      batchSize: 1,
      slots: 2,
    });
    const held: RecordBatch[] = [];
    expect(() => {
      for (const b of f.push(Buffer.from('a\nb\nc\nd\n'))) held.push(b);
    }).toThrow(/no free batch slot/);
    expect(held.map((b) => b.data.subarray(MAC_INPUT_PREFIX).toString())).toEqual(['a\n', 'b\n']);
  });
  it('dispose() hands the memory to the next framer of that size, only once every batch is back; a disposed framer refuses input', () => {
    const opts = {
      streamId: random.bytes(16),
      delimiter: Buffer.from('\n'),
      digest: 'SHA-256',
      batchSize: 2,
      batchBytes: 8192,
      inputBytes: 4096,
      slots: 1,
    } as const;
    const f = new RecordFramer(opts);
    const [held] = [...f.push(Buffer.from('a\nb\nc\n'))]; // a and b; c waits in the open batch
    expect(() => f.dispose()).toThrow(/while a batch is held/);
    f.release(held!);
    const rest = [...f.end()];
    rest.forEach((b) => f.release(b));
    f.dispose();
    expect(() => [...f.push(Buffer.from('d\n'))]).toThrow(/after dispose/);
    expect(f.records).toBe(3); // the counts stay readable

    const g = new RecordFramer(opts);
    expect(g.inputArea(0).buffer).toBe(f.inputArea(0).buffer);
    expect(new RecordFramer(opts).inputArea(0).buffer).not.toBe(g.inputArea(0).buffer); // one spare, taken once
    const other = new RecordFramer({ ...opts, inputBytes: 8192 });
    expect(other.inputArea(0).buffer).not.toBe(g.inputArea(0).buffer);
    // the reused memory frames as fresh memory does
    const got = [...g.push(Buffer.from('x\ny\n')), ...g.end()].flatMap((b) =>
      Array.from({ length: b.count }, (_, i) =>
        b.data.subarray(b.offsets[i]! + MAC_INPUT_PREFIX, b.offsets[i + 1]!).toString(),
      ),
    );
    expect(got).toEqual(['x\n', 'y\n']);
  });
});
