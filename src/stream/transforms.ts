/**
 * Object-mode Transform streams for pipelines that never touch files.
 *
 *   createSignStream:   record (Buffer | Uint8Array | string) → { seq, record, mac }
 *   createVerifyStream: { record, mac, seq? }                 → { seq, record, mac, valid }
 *
 * Each MAC is the sidecar format's record MAC (docs/log-format.md): it binds
 * the stream id and the record's sequence number, and a record longer than
 * 4071 bytes is MACed as its digest. Records are MACed in packed batches on
 * the worker threads, a few batches in flight; the writable side is held back
 * while that many batches are pending and the readable side's backpressure is
 * respected by Transform. A partial batch is flushed after `flushMs` of
 * silence so a slow source still gets its MACs promptly.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { MacAlgorithm } from '../backend/types.js';
import type { KmsHmacClient } from '../client.js';
import type { MacEngine } from './engine.js';
import { macEqual } from './engine.js';
import { digestFor, newStreamId, recordMacInput, type DigestName } from './format.js';
import { engineFromClient } from './kms-engine.js';

export interface RecordStreamOptions {
  /** An engine (see engineFromMacKey / engineFromClient), or a client + keyId. */
  engine?: MacEngine;
  client?: KmsHmacClient;
  keyId?: string;
  algorithm?: MacAlgorithm;
  /** 16 bytes (or 32 hex digits). Sign: random by default. Verify: required. */
  streamId?: Uint8Array | string;
  /** First sequence number (default 0): continue a stream across restarts. */
  firstSeq?: number;
  batchSize?: number;
  inflight?: number;
  flushMs?: number;
}

export interface SignedRecord {
  seq: number;
  record: Buffer;
  mac: Buffer;
}

export interface VerifiedRecord extends SignedRecord {
  valid: boolean;
}

export interface VerifyStreamOptions extends RecordStreamOptions {
  /** Fail the stream (KMSInvalidMacException) at the first invalid record instead of passing `valid: false`. */
  failFast?: boolean;
}

function toBuf(x: Buffer | Uint8Array | string): Buffer {
  if (typeof x === 'string') return Buffer.from(x, 'utf8');
  return Buffer.isBuffer(x) ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function streamIdOf(s: Uint8Array | string | undefined, required: boolean): Buffer {
  if (s === undefined) {
    if (required) throw new TypeError('createVerifyStream: streamId is required (the stream id the records were signed with)');
    return newStreamId();
  }
  const b = typeof s === 'string' ? Buffer.from(s, 'hex') : Buffer.from(s);
  if (b.length !== 16) throw new RangeError('streamId must be 16 bytes (32 hex digits)');
  return b;
}

abstract class BatchingTransform<In, Out> extends Transform {
  /** Hex stream id bound into every MAC. */
  readonly streamId: string;
  protected readonly sid: Buffer;
  protected engine: MacEngine | undefined;
  protected digest: DigestName = 'SHA-256';
  protected seq: number;
  private readonly opts: RecordStreamOptions;
  private readonly batchSize: number;
  private readonly inflight: number;
  private readonly flushMs: number;
  private batch: { inputs: Buffer[]; items: In[]; seqs: number[] } = { inputs: [], items: [], seqs: [] };
  /** Emission of each submitted batch, in order; resolved once its records are pushed. */
  private readonly done: Promise<void>[] = [];
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private enginePromise: Promise<MacEngine> | undefined;

  constructor(opts: RecordStreamOptions, verify: boolean) {
    super({ objectMode: true, highWaterMark: opts.batchSize ?? 4096 });
    this.opts = opts;
    this.sid = streamIdOf(opts.streamId, verify);
    this.streamId = this.sid.toString('hex');
    this.seq = opts.firstSeq ?? 0;
    this.batchSize = opts.batchSize ?? 4096;
    this.inflight = opts.inflight ?? 2;
    this.flushMs = opts.flushMs ?? 20;
    if (!opts.engine && !(opts.client && opts.keyId)) throw new TypeError('pass an engine, or a client and a keyId');
  }

  /** The key ARN once resolved. */
  get keyArn(): string | undefined {
    return this.engine?.keyArn;
  }

  protected async ready(): Promise<MacEngine> {
    if (this.engine) return this.engine;
    this.enginePromise ??= this.opts.engine
      ? Promise.resolve(this.opts.engine)
      : engineFromClient(this.opts.client!, this.opts.keyId!, this.opts.algorithm);
    this.engine = await this.enginePromise;
    this.digest = digestFor(this.engine.algorithm);
    return this.engine;
  }

  protected abstract input(item: In, seq: number): { record: Buffer; seq: number; item: In };
  protected abstract run(engine: MacEngine, data: Buffer, offsets: Uint32Array, items: In[], seqs: number[], records: Buffer[]): Promise<Out[]>;

  private records: Buffer[] = [];

  override _transform(chunk: In, _enc: BufferEncoding, cb: TransformCallback): void {
    this.ready()
      .then(async () => {
        const { record, seq, item } = this.input(chunk, this.seq);
        this.seq = seq + 1;
        this.batch.inputs.push(recordMacInput(this.sid, seq, record, this.digest));
        this.batch.items.push(item);
        this.batch.seqs.push(seq);
        this.records.push(record);
        if (this.batch.inputs.length >= this.batchSize) this.submit();
        else this.arm();
        // backpressure towards the writer: at most `inflight` batches pending
        while (this.done.length > this.inflight) await this.done[0];
      })
      .then(() => cb(), (err: Error) => cb(err));
  }

  private arm(): void {
    if (this.timer || this.flushMs <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.submit();
    }, this.flushMs);
    this.timer.unref();
  }

  private submit(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const { inputs, items, seqs } = this.batch;
    if (!inputs.length) return;
    const records = this.records;
    this.batch = { inputs: [], items: [], seqs: [] };
    this.records = [];
    const offsets = new Uint32Array(inputs.length + 1);
    for (let i = 0; i < inputs.length; i++) offsets[i + 1] = offsets[i]! + inputs[i]!.length;
    const p = this.run(this.engine!, Buffer.concat(inputs), offsets, items, seqs, records);
    p.catch(() => {});
    // results are pushed strictly in submission order
    const emitted = this.chain.then(async () => {
      for (const o of await p) this.push(o);
    });
    this.chain = emitted.catch((err: Error) => {
      this.destroy(err);
    }).finally(() => {
      this.done.shift();
    });
    this.done.push(this.chain);
  }

  override _flush(cb: TransformCallback): void {
    this.submit();
    this.chain.then(() => cb(), (err: Error) => cb(err));
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    cb(err);
  }
}

class SignStream extends BatchingTransform<Buffer | Uint8Array | string, SignedRecord> {
  protected input(item: Buffer | Uint8Array | string, seq: number) {
    return { record: toBuf(item), seq, item };
  }
  protected async run(engine: MacEngine, data: Buffer, offsets: Uint32Array, _items: unknown[], seqs: number[], records: Buffer[]) {
    const macs = Buffer.from(await engine.macPacked(data, offsets));
    const L = engine.macLength;
    return records.map((record, i) => ({ seq: seqs[i]!, record, mac: macs.subarray(i * L, (i + 1) * L) }));
  }
}

type VerifyIn = { record: Buffer | Uint8Array | string; mac: Uint8Array; seq?: number };

class VerifyStream extends BatchingTransform<VerifyIn, VerifiedRecord> {
  constructor(private readonly vopts: VerifyStreamOptions) {
    super(vopts, true);
  }
  protected input(item: VerifyIn, seq: number) {
    if (!item || !(item.mac instanceof Uint8Array)) throw new TypeError('createVerifyStream: each chunk must be { record, mac, seq? }');
    return { record: toBuf(item.record), seq: item.seq ?? seq, item };
  }
  protected async run(engine: MacEngine, data: Buffer, offsets: Uint32Array, items: VerifyIn[], seqs: number[], records: Buffer[]) {
    const L = engine.macLength;
    const macs = Buffer.alloc(items.length * L);
    items.forEach((it, i) => {
      if (it.mac.length === L) macs.set(it.mac, i * L);
    });
    const res = await engine.verifyPacked(data, offsets, macs);
    return records.map((record, i) => {
      const mac = toBuf(items[i]!.mac);
      const valid = res[i] === 1 && mac.length === L && macEqual(mac, macs.subarray(i * L, (i + 1) * L));
      if (!valid && this.vopts.failFast) {
        const err = new Error(`record ${seqs[i]} does not verify`);
        err.name = 'KMSInvalidMacException';
        throw err;
      }
      return { seq: seqs[i]!, record, mac, valid };
    });
  }
}

/** Records in, `{ seq, record, mac }` out. `stream.streamId` is the (hex) stream id to verify with later. */
export function createSignStream(options: RecordStreamOptions): Transform & { readonly streamId: string; readonly keyArn: string | undefined } {
  return new SignStream(options, false);
}

/** `{ record, mac, seq? }` in, `{ seq, record, mac, valid }` out. */
export function createVerifyStream(options: VerifyStreamOptions): Transform & { readonly streamId: string; readonly keyArn: string | undefined } {
  return new VerifyStream(options);
}
