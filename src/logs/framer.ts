/**
 * Splits a byte stream into records and packs their MAC inputs into batches
 * without a JS object per record: one contiguous run of
 * `streamId | u64 seq | kind | payload` inputs plus an offsets array, which
 * is what the backend's packed batch calls take.
 *
 * A record is the bytes up to and including its delimiter (the last record
 * may lack one), so the records partition the file exactly: CR of a CRLF
 * ending belongs to its record, and so does the final newline (its presence
 * or absence is therefore signed too). A record longer than RAW_RECORD_MAX
 * bytes is hashed incrementally, never buffered, so memory stays constant
 * whatever the record or file size.
 *
 * Memory is one SharedArrayBuffer, laid out once:
 *
 *   [ stream id | offsets and starts of each slot | input 0 | input 1 | slot 0 | … | slot S-1 ]
 *
 * Shared memory, so that an async batch is hashed where it lies: the native
 * pool threads read a batch's data and offsets from its slot (pinned until
 * the batch settles) instead of the backend copying them per batch
 * (docs/performance.md, "The log pipeline on shared memory"). The arena is
 * the library's own memory and only the framer writes it: a caller's chunk
 * is copied into an input area before it is framed, never handed to the
 * pool, and nothing writes a batch's slot from close() until release(), so
 * the bytes a batch is hashed over are the bytes framed, whatever happens to
 * the log or the caller's buffers meanwhile.
 *
 * The log's bytes are framed from an input area: a file reader reads straight
 * into one (inputArea) while the other is framed; any other chunk is copied
 * into input 0 first. Each record is then copied into its batch's slot: for
 * a one-byte delimiter by a WebAssembly kernel (assembly/log-framer.ts) whose
 * memory this buffer is, else by a JavaScript loop of Buffer.indexOf and
 * copyWithin (which, unlike set() from a view of the input, creates no
 * object per record). The kernel takes about half the CPU of the loop, and
 * the JS thread is the pipeline's critical path (docs/performance.md, "Logs").
 * A batch occupies its slot until release():
 * push(), flush() and end() are generators that frame one batch at a time,
 * so a consumer that submits (or releases) each batch before taking the next
 * never holds more than `slots` batches.
 */
import { createHash, type Hash } from 'node:crypto';
import { endianness } from 'node:os';
import { FRAMER_WASM_BASE64 } from './framer-binary.js';
import {
  KIND_DIGEST,
  KIND_RAW,
  MAC_INPUT_PREFIX,
  PREFIX_KIND,
  PREFIX_N,
  RAW_RECORD_MAX,
  nodeDigestName,
  type DigestName,
} from './format.js';

export interface RecordBatch {
  /** Index (0-based) of the first record in the whole stream. */
  first: number;
  count: number;
  /** Packed MAC inputs; the seq field holds the record index. Valid until release(). */
  data: Buffer;
  /** count + 1 entries into `data`. */
  offsets: Uint32Array;
  /** Byte offset in the log where each record starts. */
  starts: Float64Array;
  /** Byte offset in the log just after the last record. */
  end: number;
  /** The framer's slot holding this batch. */
  readonly slot: number;
}

/** Byte offset in the log just after record i of the batch (0-based within the batch). */
export function recordEnd(batch: RecordBatch, i: number): number {
  return i + 1 < batch.count ? batch.starts[i + 1]! : batch.end;
}

/**
 * Batch and read sizes. Every batch and every read costs a hand-off to
 * another thread and back (tens of microseconds of CPU in a VM), so they are
 * large: 16,384 records of 200 bytes are 3.7 MB of MAC input.
 */
export const DEFAULT_BATCH_RECORDS = 16_384;
const DEFAULT_BATCH_BYTES = 4 << 20;
const DEFAULT_INPUT_BYTES = 2 << 20;

/** The kernel's exports (assembly/log-framer.ts). */
interface Kernel {
  memory: WebAssembly.Memory;
  packedEnd: WebAssembly.Global;
  packedCount: WebAssembly.Global;
  packRecords(
    at: number,
    len: number,
    p: number,
    w: number,
    limit: number,
    count: number,
    maxCount: number,
    seq: number,
    offsets: number,
    starts: number,
    base: number,
    logAt: number,
    delimiter: number,
    streamId: number,
    rawMax: number,
  ): number;
}

let kernelModule: WebAssembly.Module | null | undefined;

/**
 * A kernel instance whose memory holds at least `bytes`, or null where it
 * cannot run: no WebAssembly, SIMD128 or shared memory (e.g. --jitless), or a
 * big-endian host (the typed-array views of its memory would read its
 * little-endian numbers wrong). The JavaScript loop does the same work there.
 * The kernel's memory is shared (scripts/build-wasm.js: --sharedMemory), so
 * its buffer is a SharedArrayBuffer, which grows in place and is never
 * detached.
 */
function kernelWithMemory(bytes: number): { kernel: Kernel; arena: SharedArrayBuffer } | null {
  if (kernelModule === undefined) {
    kernelModule = null;
    if (typeof WebAssembly === 'object' && endianness() === 'LE') {
      try {
        kernelModule = new WebAssembly.Module(Buffer.from(FRAMER_WASM_BASE64, 'base64'));
      } catch {
        // the JavaScript loop
      }
    }
  }
  if (!kernelModule) return null;
  const k = new WebAssembly.Instance(kernelModule).exports as unknown as Kernel;
  try {
    k.memory.grow(Math.ceil((bytes - k.memory.buffer.byteLength) / 65536));
  } catch {
    return null; // more than the kernel's maximum memory
  }
  const arena: unknown = k.memory.buffer;
  return arena instanceof SharedArrayBuffer ? { kernel: k, arena } : null;
}

/**
 * The memory of the last framer disposed of, for the next framer of that
 * size and kind. A process that signs or verifies log after log then writes
 * into memory it has touched before: fresh memory is page-faulted in as the
 * first batches are framed (about 20 µs a page in a VM, 16 MiB at the
 * default sizes), which would hold up the event loop at the start of every
 * log.
 */
let spare: { size: number; kernel: Kernel | null; arena: SharedArrayBuffer } | null = null;

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** Checks a complete record (whole bytes, only for records <= RAW_RECORD_MAX): `buf[start..end)`. NDJSON framing uses it. */
export type RecordCheck = (buf: Buffer, start: number, end: number, index: number) => void;

export interface FramerOptions {
  streamId: Uint8Array;
  delimiter: Uint8Array;
  digest: DigestName;
  /** Records per batch (default DEFAULT_BATCH_RECORDS). */
  batchSize?: number;
  /** Bytes of MAC input per batch (default 4 MiB; at least enough for one record of RAW_RECORD_MAX bytes). */
  batchBytes?: number;
  /** Batches the consumer may hold at once (framed, not yet released; default 2). */
  slots?: number;
  /** Bytes per input area (default 2 MiB): the largest read a file reader makes. */
  inputBytes?: number;
  checkRecord?: RecordCheck;
  /** Where the input starts in the log: record index and byte offset (a signer resuming after its last checkpoint). */
  start?: { records: number; bytes: number };
}

export class RecordFramer {
  private readonly delim: Buffer;
  private readonly d0: number;
  private readonly digest: 'sha256' | 'sha512';
  private readonly digestLength: number;
  private readonly batchSize: number;
  private readonly batchBytes: number;
  private readonly inputBytes: number;
  private readonly checkRecord: RecordCheck | undefined;
  /** The stream id as four big-endian words: written with DataView, far cheaper per record than a copy. */
  private readonly sid0: number;
  private readonly sid1: number;
  private readonly sid2: number;
  private readonly sid3: number;

  private readonly kernel: Kernel | null;
  private readonly size: number;
  /** Where the input areas start in the arena; the stream id is at 0. */
  private readonly inputAt: number;
  private readonly arena: SharedArrayBuffer;
  private readonly u8: Uint8Array;
  private readonly buf: Buffer;
  private readonly dv: DataView;
  private readonly slotOffsets: Uint32Array[] = [];
  private readonly slotStarts: Float64Array[] = [];
  /** Where each slot's offsets and starts are in the arena (for the kernel). */
  private readonly offsetsAt: number[] = [];
  private readonly startsAt: number[] = [];
  private readonly free: number[] = [];
  private readonly inUse: boolean[] = [];
  private disposed = false;

  /** Records seen so far (index of the next record). */
  records: number;
  /** Log bytes seen so far. */
  bytes: number;
  /** Log bytes up to the end of the last complete record. */
  framed: number;

  // the open batch: its slot, where it starts in the arena, where the next input goes, records in it
  private slot = -1;
  private base = 0;
  private pos = 0;
  private n = 0;
  private first = 0;

  // the record under construction (it spans input chunks): its bytes wait in the open batch at pos + MAC_INPUT_PREFIX,
  // or, once longer than RAW_RECORD_MAX, in `hash`
  private partialLen = 0;
  private recStart = 0;
  private hash: Hash | null = null;
  /** The last (delimiter length - 1) bytes of the record under construction (multi-byte delimiters only). */
  private tail = Buffer.alloc(0);

  constructor(opts: FramerOptions) {
    this.delim = Buffer.from(opts.delimiter);
    this.d0 = this.delim[0]!;
    this.digest = nodeDigestName(opts.digest);
    this.digestLength = this.digest === 'sha256' ? 32 : 64;
    this.batchSize = opts.batchSize ?? DEFAULT_BATCH_RECORDS;
    this.batchBytes = Math.max(opts.batchBytes ?? DEFAULT_BATCH_BYTES, MAC_INPUT_PREFIX + RAW_RECORD_MAX);
    this.inputBytes = opts.inputBytes ?? DEFAULT_INPUT_BYTES;
    this.checkRecord = opts.checkRecord;
    this.records = opts.start?.records ?? 0;
    this.bytes = this.framed = this.recStart = opts.start?.bytes ?? 0;
    const sv = new DataView(opts.streamId.buffer, opts.streamId.byteOffset, 16);
    this.sid0 = sv.getUint32(0);
    this.sid1 = sv.getUint32(4);
    this.sid2 = sv.getUint32(8);
    this.sid3 = sv.getUint32(12);
    const slots = Math.max(1, opts.slots ?? 2) + 1; // and the open batch
    const offsetsBytes = align8((this.batchSize + 1) * 4);
    this.inputAt = align8(16 + slots * (offsetsBytes + this.batchSize * 8));
    this.size = this.inputAt + 2 * this.inputBytes + slots * this.batchBytes;
    const wantKernel = this.delim.length === 1 && !this.checkRecord;
    if (spare?.size === this.size && (spare.kernel !== null) === wantKernel) {
      ({ kernel: this.kernel, arena: this.arena } = spare);
      spare = null;
    } else {
      const k = wantKernel ? kernelWithMemory(this.size) : null;
      this.kernel = k?.kernel ?? null;
      this.arena = k?.arena ?? new SharedArrayBuffer(this.size);
    }
    this.u8 = new Uint8Array(this.arena);
    this.buf = Buffer.from(this.arena);
    this.dv = new DataView(this.arena);
    this.u8.set(opts.streamId.subarray(0, 16), 0);
    for (let s = slots - 1; s >= 0; s--) {
      this.offsetsAt[s] = 16 + s * offsetsBytes;
      this.startsAt[s] = 16 + slots * offsetsBytes + s * this.batchSize * 8;
      this.slotOffsets[s] = new Uint32Array(this.arena, this.offsetsAt[s], this.batchSize + 1);
      this.slotStarts[s] = new Float64Array(this.arena, this.startsAt[s], this.batchSize);
      this.free.push(s);
      this.inUse[s] = false;
    }
    this.open();
  }

  /** Whether the WebAssembly kernel frames the records (a one-byte delimiter, no record check, a little-endian host). */
  get framedByKernel(): boolean {
    return this.kernel !== null;
  }

  /** Input area `i` (0 or 1): read the log into it and push() the bytes read, without a copy. */
  inputArea(i: 0 | 1): Buffer {
    const at = this.inputAt + i * this.inputBytes;
    return this.buf.subarray(at, at + this.inputBytes);
  }

  /**
   * Frames `chunk`, yielding each batch as it fills. `chunk` must stay
   * unchanged until the iteration ends (bytes of an unfinished record are
   * copied, so it may be reused after).
   */
  *push(chunk: Uint8Array): Generator<RecordBatch> {
    this.assertLive();
    if (
      chunk.buffer === this.arena &&
      chunk.byteOffset >= this.inputAt &&
      chunk.byteOffset + chunk.byteLength <= this.inputAt + 2 * this.inputBytes
    ) {
      yield* this.frameInput(chunk.byteOffset, chunk.byteLength);
      return;
    }
    for (let a = 0; a < chunk.byteLength; a += this.inputBytes) {
      const piece = chunk.subarray(a, a + this.inputBytes);
      this.u8.set(piece, this.inputAt);
      yield* this.frameInput(this.inputAt, piece.byteLength);
    }
  }

  /** Ends the input: the unterminated last record (if any), then the final partial batch. */
  *end(): Generator<RecordBatch> {
    this.assertLive();
    if (this.partialLen > 0) this.finishPartial();
    yield* this.flush();
  }

  /**
   * The complete records framed so far, as a batch, without ending the input:
   * an unterminated record stays pending (a live log's writer may be in the
   * middle of it).
   */
  *flush(): Generator<RecordBatch> {
    if (this.n > 0) yield this.close();
  }

  /**
   * Gives the framer's memory to the next framer once nothing uses it: every
   * batch released and no view of an input area or a batch kept. The framer
   * must not be used after (its counts may still be read).
   */
  dispose(): void {
    if (this.disposed) return;
    if (this.inUse.some((used, s) => used && s !== this.slot))
      throw new Error('internal: RecordFramer disposed of while a batch is held');
    this.disposed = true;
    spare = { size: this.size, kernel: this.kernel, arena: this.arena };
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('internal: RecordFramer used after dispose()');
  }

  /** Hands a batch's slot back once nothing uses its data, offsets or starts any more. */
  release(batch: RecordBatch): void {
    if (!this.inUse[batch.slot]) return;
    this.inUse[batch.slot] = false;
    this.free.push(batch.slot);
  }

  /** Takes a free slot for the next batch. */
  private open(): void {
    const slot = this.free.pop();
    if (slot === undefined)
      throw new Error(
        'internal: RecordFramer has no free batch slot (a consumer holds more batches than it asked slots for)',
      );
    this.inUse[slot] = true;
    this.slot = slot;
    this.base = this.pos = this.inputAt + 2 * this.inputBytes + slot * this.batchBytes;
    this.n = 0;
    this.first = this.records;
    this.slotOffsets[slot]![0] = 0;
  }

  /** Closes the open batch and opens the next; an unfinished record's bytes move along with it. */
  private close(): RecordBatch {
    const { slot, n } = this;
    const batch: RecordBatch = {
      first: this.first,
      count: n,
      data: this.buf.subarray(this.base, this.pos),
      offsets: this.slotOffsets[slot]!.subarray(0, n + 1),
      starts: this.slotStarts[slot]!.subarray(0, n),
      end: this.framed,
      slot,
    };
    const from = this.pos + MAC_INPUT_PREFIX;
    this.open();
    if (this.partialLen > 0 && !this.hash)
      this.u8.copyWithin(this.pos + MAC_INPUT_PREFIX, from, from + this.partialLen);
    return batch;
  }

  /** Whether the open batch has room for one more record of `payload` bytes. */
  private fits(payload: number): boolean {
    return this.n < this.batchSize && this.pos + MAC_INPUT_PREFIX + payload <= this.base + this.batchBytes;
  }

  /** Frames arena bytes [at, at + len), the next bytes of the log. */
  private *frameInput(at: number, len: number): Generator<RecordBatch> {
    const view = this.buf.subarray(at, at + len);
    let p = 0;
    if (this.partialLen > 0) p = this.continuePartial(view, at);
    while (p < len) {
      p = this.frameRecords(view, at, p);
      if (p === len) break;
      // stopped: the batch is full, or the next record is too long to pack as it is, or it continues in the next input
      const idx = view.indexOf(this.delim, p);
      const long = idx >= 0 && idx + this.delim.length - p > RAW_RECORD_MAX;
      // the room the next record needs: its digest, its bytes, or (unfinished) the most a packed record can take
      if (!this.fits(long ? this.digestLength : idx < 0 ? RAW_RECORD_MAX : idx + this.delim.length - p)) {
        yield this.close();
        continue;
      }
      if (long) {
        p = this.emitDigest(view, p, idx + this.delim.length);
        continue;
      }
      this.recStart = this.bytes + p;
      this.append(at + p, at + len);
      p = len;
    }
    this.bytes += len;
  }

  /**
   * The hot loop: packs whole records of `view` (at `at` in the arena) from
   * `p` while they fit in the open batch and are at most RAW_RECORD_MAX
   * bytes; returns where it stopped.
   */
  private frameRecords(view: Buffer, at: number, p: number): number {
    const k = this.kernel;
    if (!k) return this.frameRecordsJs(view, at, p);
    const end = k.packRecords(
      at,
      view.length,
      p,
      this.pos,
      this.base + this.batchBytes,
      this.n,
      this.batchSize,
      this.records,
      this.offsetsAt[this.slot]!,
      this.startsAt[this.slot]!,
      this.base,
      this.bytes,
      this.d0,
      0,
      RAW_RECORD_MAX,
    );
    const n = k.packedCount.value as number;
    this.records += n - this.n;
    this.n = n;
    this.pos = k.packedEnd.value as number;
    this.framed = this.bytes + end;
    return end;
  }

  /** frameRecords in JavaScript: any delimiter, and the record check. */
  private frameRecordsJs(view: Buffer, at: number, p: number): number {
    const { u8, dv, d0, checkRecord: check, sid0, sid1, sid2, sid3 } = this;
    const multi = this.delim.length > 1 ? this.delim : null;
    const dl = this.delim.length;
    const offsets = this.slotOffsets[this.slot]!;
    const starts = this.slotStarts[this.slot]!;
    const base = this.base;
    const limit = base + this.batchBytes;
    const batchSize = this.batchSize;
    const logAt = this.bytes;
    let n = this.n;
    let w = this.pos;
    let seq = this.records;
    while (n < batchSize) {
      const idx = multi ? view.indexOf(multi, p) : view.indexOf(d0, p);
      if (idx < 0) break;
      const end = idx + dl;
      const len = end - p;
      if (len > RAW_RECORD_MAX || w + MAC_INPUT_PREFIX + len > limit) break;
      dv.setUint32(w, sid0);
      dv.setUint32(w + 4, sid1);
      dv.setUint32(w + 8, sid2);
      dv.setUint32(w + 12, sid3);
      dv.setUint32(w + PREFIX_N, seq > 0xffffffff ? Math.floor(seq / 0x1_0000_0000) : 0);
      dv.setUint32(w + PREFIX_N + 4, seq >>> 0);
      u8[w + PREFIX_KIND] = KIND_RAW;
      u8.copyWithin(w + MAC_INPUT_PREFIX, at + p, at + end);
      if (check) check(this.buf, w + MAC_INPUT_PREFIX, w + MAC_INPUT_PREFIX + len, seq);
      starts[n] = logAt + p;
      w += MAC_INPUT_PREFIX + len;
      n++;
      offsets[n] = w - base;
      seq++;
      p = end;
    }
    this.n = n;
    this.pos = w;
    this.records = seq;
    this.framed = logAt + p;
    return p;
  }

  /** Writes the prefix of the next record at `pos` (the payload is there already, or written by the caller). */
  private prefix(kind: number): void {
    const { dv, pos: w } = this;
    const seq = this.records;
    dv.setUint32(w, this.sid0);
    dv.setUint32(w + 4, this.sid1);
    dv.setUint32(w + 8, this.sid2);
    dv.setUint32(w + 12, this.sid3);
    dv.setUint32(w + PREFIX_N, seq > 0xffffffff ? Math.floor(seq / 0x1_0000_0000) : 0);
    dv.setUint32(w + PREFIX_N + 4, seq >>> 0);
    this.u8[w + PREFIX_KIND] = kind;
  }

  /** Completes the record at `pos` whose payload (`payload` bytes) is in place; it started at log byte `start` and ends at `end`. */
  private emitted(payload: number, start: number, end: number): void {
    this.slotStarts[this.slot]![this.n] = start;
    this.pos += MAC_INPUT_PREFIX + payload;
    this.n++;
    this.slotOffsets[this.slot]![this.n] = this.pos - this.base;
    this.records++;
    this.framed = end;
  }

  /** Packs the digest of the record view[p..end) (the open batch has room); returns `end`. */
  private emitDigest(view: Buffer, p: number, end: number): number {
    const d = createHash(this.digest).update(view.subarray(p, end)).digest();
    this.prefix(KIND_DIGEST);
    this.u8.set(d, this.pos + MAC_INPUT_PREFIX);
    this.emitted(d.length, this.bytes + p, this.bytes + end);
    return end;
  }

  /** Adds arena bytes [a, b) to the record under construction. */
  private append(a: number, b: number): void {
    if (b <= a) return;
    const len = b - a;
    const at = this.pos + MAC_INPUT_PREFIX;
    if (!this.hash && this.partialLen + len > RAW_RECORD_MAX) {
      this.hash = createHash(this.digest).update(this.buf.subarray(at, at + this.partialLen));
    }
    if (this.hash) this.hash.update(this.buf.subarray(a, b));
    else this.u8.copyWithin(at + this.partialLen, a, b);
    this.partialLen += len;
    if (this.delim.length > 1) {
      const t = Buffer.concat([this.tail, this.buf.subarray(a, b)]);
      this.tail = Buffer.from(t.subarray(Math.max(0, t.length - (this.delim.length - 1))));
    }
  }

  /** Packs the record under construction (the open batch has room: it was kept when the record began). */
  private finishPartial(): void {
    const start = this.recStart;
    const end = start + this.partialLen;
    if (this.hash) {
      const d = this.hash.digest();
      this.prefix(KIND_DIGEST);
      this.u8.set(d, this.pos + MAC_INPUT_PREFIX);
      this.emitted(d.length, start, end);
    } else {
      this.prefix(KIND_RAW);
      const at = this.pos + MAC_INPUT_PREFIX;
      this.checkRecord?.(this.buf, at, at + this.partialLen, this.records);
      this.emitted(this.partialLen, start, end);
    }
    this.hash = null;
    this.partialLen = 0;
    this.tail = Buffer.alloc(0);
  }

  /** Continues the record under construction with the start of `view` (at `at`); returns where framing goes on. */
  private continuePartial(view: Buffer, at: number): number {
    const dl = this.delim.length;
    // a multi-byte delimiter may straddle the previous input and this one
    for (let k = Math.min(dl - 1, this.tail.length); k >= 1; k--) {
      if (
        this.tail.subarray(this.tail.length - k).equals(this.delim.subarray(0, k)) &&
        view.length >= dl - k &&
        view.subarray(0, dl - k).equals(this.delim.subarray(k))
      ) {
        this.append(at, at + dl - k);
        this.finishPartial();
        return dl - k;
      }
    }
    const idx = view.indexOf(this.delim);
    const end = idx < 0 ? view.length : idx + dl;
    this.append(at, at + end);
    if (idx >= 0) this.finishPartial();
    return end;
  }
}
