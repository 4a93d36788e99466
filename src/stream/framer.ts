/**
 * Splits a byte stream into records and packs their MAC inputs into batches
 * without a JS object per record: one contiguous buffer of
 * `streamId | u64 seq | kind | payload` inputs plus an offsets array, which
 * is what the backend's packed batch calls take.
 *
 * A record is the bytes up to and including its delimiter (the last record
 * may lack one), so the records partition the file exactly: CR of a CRLF
 * ending belongs to its record, and so does the final newline (its presence
 * or absence is therefore signed too). A record longer than RAW_RECORD_MAX
 * bytes is hashed incrementally, never buffered, so memory stays constant
 * whatever the record or file size.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  KIND_DIGEST,
  KIND_RAW,
  MAC_INPUT_PREFIX,
  PREFIX_KIND,
  PREFIX_N,
  PREFIX_STREAM_ID,
  RAW_RECORD_MAX,
  nodeDigestName,
  type DigestName,
} from './format.js';

export interface RecordBatch {
  /** Index (0-based) of the first record in the whole stream. */
  first: number;
  count: number;
  /** Packed MAC inputs; the seq field holds the record index. */
  data: Buffer;
  /** count + 1 entries into `data`. */
  offsets: Uint32Array;
  /** Byte offset in the log where each record starts. */
  starts: Float64Array;
  /** Byte offset in the log just after the last record. */
  end: number;
}

/** Byte offset in the log just after record i of the batch (0-based within the batch). */
export function recordEnd(batch: RecordBatch, i: number): number {
  return i + 1 < batch.count ? batch.starts[i + 1]! : batch.end;
}

export interface FramerOptions {
  streamId: Uint8Array;
  delimiter: Uint8Array;
  digest: DigestName;
  /** Records per batch (default 4096). */
  batchSize?: number;
  /** Bytes of MAC input per batch (default 1 MiB; at least 4096). */
  batchBytes?: number;
  /** Called with each complete record (whole bytes, only for records <= RAW_RECORD_MAX) — used for NDJSON checks. */
  checkRecord?: (record: Buffer, index: number, start: number) => void;
  /** Where the input starts in the log: record index and byte offset (a signer resuming after its last checkpoint). */
  start?: { records: number; bytes: number };
}

export class RecordFramer {
  private readonly delim: Buffer;
  private readonly d0: number;
  private readonly digest: 'sha256' | 'sha512';
  private readonly batchSize: number;
  private readonly batchBytes: number;
  private readonly checkRecord: FramerOptions['checkRecord'];

  /** Records seen so far (index of the next record). */
  records: number;
  /** Log bytes seen so far. */
  bytes: number;
  /** Log bytes up to the end of the last complete record. */
  framed: number;

  // record under construction (spans chunks)
  private partial: Buffer[] = [];
  private partialLen = 0;
  private hash: Hash | null = null;
  private recStart = 0;
  /** last delimiter-length - 1 bytes of the record under construction (multi-byte delimiters only). */
  private tail = Buffer.alloc(0);

  /** The stream id as four big-endian words: written with DataView, far cheaper per record than set(). */
  private readonly sidWords: [number, number, number, number];

  // batch under construction
  private data!: Buffer;
  private view!: DataView;
  private bytesView!: Uint8Array;
  private offsets!: Uint32Array;
  private starts!: Float64Array;
  private n = 0;
  private pos = 0;
  private first = 0;
  private out: RecordBatch[] = [];
  /** Batch buffers handed back with release(): reused instead of allocating (and page-faulting) 1 MiB per batch. */
  private readonly pool: { data: Buffer; offsets: Uint32Array; starts: Float64Array }[] = [];

  constructor(opts: FramerOptions) {
    this.delim = Buffer.from(opts.delimiter);
    this.d0 = this.delim[0]!;
    this.digest = nodeDigestName(opts.digest);
    this.batchSize = opts.batchSize ?? 4096;
    this.batchBytes = Math.max(opts.batchBytes ?? 1 << 20, MAC_INPUT_PREFIX + RAW_RECORD_MAX);
    this.checkRecord = opts.checkRecord;
    this.records = opts.start?.records ?? 0;
    this.bytes = this.framed = this.recStart = opts.start?.bytes ?? 0;
    const sv = new DataView(opts.streamId.buffer, opts.streamId.byteOffset, 16);
    this.sidWords = [sv.getUint32(0), sv.getUint32(4), sv.getUint32(8), sv.getUint32(12)];
    this.newBatch();
  }

  private newBatch(): void {
    const reused = this.pool.pop();
    this.data = reused?.data ?? Buffer.allocUnsafeSlow(this.batchBytes);
    this.view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    this.bytesView = new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    this.offsets = reused?.offsets ?? new Uint32Array(this.batchSize + 1);
    this.starts = reused?.starts ?? new Float64Array(this.batchSize);
    this.n = 0;
    this.pos = 0;
    this.first = this.records;
  }

  private closeBatch(): void {
    if (this.n === 0) return;
    this.out.push({
      first: this.first,
      count: this.n,
      data: this.data,
      offsets: this.offsets.subarray(0, this.n + 1),
      starts: this.starts.subarray(0, this.n),
      end: this.framed,
    });
    this.newBatch();
  }

  /**
   * Appends one complete record's MAC input; `src[a..b)` is the record when
   * `digest` is null. `start` and `end` are its offsets in the log.
   */
  private emit(src: Buffer, a: number, b: number, digest: Buffer | null, start: number, end: number): void {
    const payload = digest ? digest.length : b - a;
    if (this.n === this.batchSize || this.pos + MAC_INPUT_PREFIX + payload > this.data.length) this.closeBatch();
    const p = this.pos;
    // the hot path: ~5 M records/s per core depend on these few lines (see bench/logs.js)
    const v = this.view;
    const w = this.sidWords;
    const seq = this.records;
    const sid = p + PREFIX_STREAM_ID;
    v.setUint32(sid, w[0]);
    v.setUint32(sid + 4, w[1]);
    v.setUint32(sid + 8, w[2]);
    v.setUint32(sid + 12, w[3]);
    v.setUint32(p + PREFIX_N, seq > 0xffffffff ? Math.floor(seq / 0x1_0000_0000) : 0);
    v.setUint32(p + PREFIX_N + 4, seq >>> 0);
    this.bytesView[p + PREFIX_KIND] = digest ? KIND_DIGEST : KIND_RAW;
    if (digest) this.bytesView.set(digest, p + MAC_INPUT_PREFIX);
    else this.bytesView.set(new Uint8Array(src.buffer, src.byteOffset + a, b - a), p + MAC_INPUT_PREFIX);
    this.starts[this.n] = start;
    this.n++;
    this.pos = p + MAC_INPUT_PREFIX + payload;
    this.offsets[this.n] = this.pos;
    this.records++;
    this.framed = end;
  }

  private append(chunk: Buffer, a: number, b: number): void {
    if (b <= a) return;
    const len = b - a;
    if (this.hash) this.hash.update(chunk.subarray(a, b));
    else if (this.partialLen + len > RAW_RECORD_MAX) {
      this.hash = createHash(this.digest);
      for (const p of this.partial) this.hash.update(p);
      this.hash.update(chunk.subarray(a, b));
      this.partial = [];
    } else this.partial.push(Buffer.from(chunk.subarray(a, b))); // copy: chunk buffers may be reused by the source
    this.partialLen += len;
    if (this.delim.length > 1) {
      const t = Buffer.concat([this.tail, chunk.subarray(a, b)]);
      this.tail = Buffer.from(t.subarray(Math.max(0, t.length - (this.delim.length - 1))));
    }
  }

  private finishPartial(): void {
    const start = this.recStart;
    const end = start + this.partialLen;
    if (this.hash) {
      const d = this.hash.digest();
      this.hash = null;
      this.emit(d, 0, 0, d, start, end);
    } else {
      const rec = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialLen);
      this.checkRecord?.(rec, this.records, start);
      this.emit(rec, 0, rec.length, null, start, end);
    }
    this.partial = [];
    this.partialLen = 0;
    this.tail = Buffer.alloc(0);
  }

  /**
   * Hands a batch's buffers back for reuse once nothing refers to them any
   * more (its MACs are computed and nothing kept a view into `data`).
   */
  release(batch: RecordBatch): void {
    if (this.pool.length >= 4 || batch.data.length !== this.batchBytes) return;
    this.pool.push({ data: batch.data, offsets: new Uint32Array(batch.offsets.buffer, 0, this.batchSize + 1), starts: new Float64Array(batch.starts.buffer, 0, this.batchSize) });
  }

  /**
   * Feeds bytes; returns the batches completed so far. `chunk` is not kept
   * (bytes of an unfinished record are copied), so the caller may reuse it.
   */
  push(chunk: Buffer): RecordBatch[] {
    const base = this.bytes;
    const dl = this.delim.length;
    let pos = 0;
    if (dl > 1 && this.partialLen > 0) {
      // a delimiter may straddle the previous chunk and this one
      for (let k = Math.min(dl - 1, this.tail.length); k >= 1; k--) {
        if (
          this.tail.subarray(this.tail.length - k).equals(this.delim.subarray(0, k)) &&
          chunk.length >= dl - k &&
          chunk.subarray(0, dl - k).equals(this.delim.subarray(k))
        ) {
          this.append(chunk, 0, dl - k);
          this.finishPartial();
          pos = dl - k;
          this.recStart = base + pos;
          break;
        }
      }
    }
    const check = this.checkRecord;
    for (;;) {
      const idx = dl === 1 ? chunk.indexOf(this.d0, pos) : chunk.indexOf(this.delim, pos);
      if (idx < 0) {
        if (pos < chunk.length) {
          if (this.partialLen === 0) this.recStart = base + pos;
          this.append(chunk, pos, chunk.length);
        }
        break;
      }
      const end = idx + dl;
      if (this.partialLen === 0) {
        const len = end - pos;
        if (len <= RAW_RECORD_MAX) {
          if (check) check(chunk.subarray(pos, end), this.records, base + pos);
          this.emit(chunk, pos, end, null, base + pos, base + end);
        } else {
          const d = createHash(this.digest).update(chunk.subarray(pos, end)).digest();
          this.emit(d, 0, 0, d, base + pos, base + end);
        }
      } else {
        this.append(chunk, pos, end);
        this.finishPartial();
      }
      pos = end;
    }
    this.bytes = base + chunk.length;
    const out = this.out;
    this.out = [];
    return out;
  }

  /** Ends the input: the unterminated last record (if any) and the final partial batch. */
  end(): RecordBatch[] {
    if (this.partialLen > 0) this.finishPartial();
    return this.flush();
  }

  /**
   * The complete records framed so far, as batches, without ending the input:
   * an unterminated record stays pending (a live log's writer may be in the
   * middle of it).
   */
  flush(): RecordBatch[] {
    this.closeBatch();
    const out = this.out;
    this.out = [];
    return out;
  }
}
