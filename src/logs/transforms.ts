/**
 * Object-mode Transform streams for pipelines that never touch files.
 *
 *   createSignStream:   record (Buffer | Uint8Array | string) → { seq, record, mac }
 *   createVerifyStream: { record, mac, seq? }                 → { seq, record, mac, valid, problem? }
 *
 * Here a string is a record's text (UTF-8): these streams carry records, not
 * logs, so there is no path to confuse it with. The verifier checks each
 * record at its position in the stream (firstSeq, firstSeq + 1, …): a record
 * dropped, repeated or moved fails, and a `seq` carried by the input is only
 * compared with the position, never trusted.
 *
 * Each MAC is the sidecar format's record MAC (docs/log-format.md): it binds
 * the stream id and the record's sequence number, and a record longer than
 * 4071 bytes is MACed as its digest. Records are MACed in packed batches on
 * the worker threads, a few batches in flight; the writable side is held back
 * while that many batches are pending and the readable side's backpressure is
 * respected by Transform. A partial batch is flushed after `flushMs` of
 * silence so a slow source still gets its MACs promptly.
 *
 * The sign stream also keeps the checkpoint chain of the sidecar format:
 * every `checkpointEvery` records (and every `checkpointIntervalMs` while
 * records wait) it emits a 'checkpoint' event, after the records it seals
 * were pushed, with the same object `sign --checkpoints-out` ships (verify it
 * with anchorVerifies). Its `logBytes` counts record bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AnchorCheck, type ShippedCheckpoint } from './anchor-check.js';
import type { CheckpointAnchor } from './anchors.js';
import { assertPath, type FilePath } from './input.js';
import { IssueLog, isTampering, type VerifyIssue } from './issues.js';
import { CheckpointChain, checkpointSettings, type CheckpointOptions } from './checkpoint.js';
import type { MacEngine } from './engine.js';
import { macEqual } from './engine.js';
import { SIDECAR_VERSION, digestFor, newLogId, newStreamId, recordMacInput, type DigestName } from './format.js';
import { assertKeyOptions, engineFor, type KeyOptions } from './kms-engine.js';

/** The key (an engine, or a client + keyId: see KeyOptions) and the stream's parameters. */
export interface RecordStreamOptions extends KeyOptions {
  /** 16 bytes (or 32 hex digits). Sign: random by default. Verify: required. */
  streamId?: Uint8Array | string;
  /** First sequence number (default 0): continue a stream across restarts. */
  firstSeq?: number;
  batchSize?: number;
  inflight?: number;
  flushMs?: number;
}

export interface SignStreamOptions extends RecordStreamOptions, CheckpointOptions {
  /** Each checkpoint, after the records it seals were pushed (also emitted as 'checkpoint'); awaited. */
  onCheckpoint?: (c: CheckpointAnchor) => void | Promise<void>;
  /**
   * The last checkpoint of an earlier run of this stream, to continue its
   * chain: the stream id, `firstSeq` and `logId` default to (and must match) its own.
   */
  chainFrom?: CheckpointAnchor;
  /** The id of the log (32 hex digits) every checkpoint names; random by default (chainFrom's when continuing). */
  logId?: string;
  /** A name for the log, carried by every checkpoint (informational, as a sidecar's log path). */
  log?: string;
}

export interface SignedRecord {
  seq: number;
  record: Buffer;
  mac: Buffer;
}

export interface VerifiedRecord extends SignedRecord {
  /** `seq` is the record's position in the stream, whatever the input carried. */
  valid: boolean;
  /**
   * Why it is not valid: `order` — the input carried a `seq` other than the
   * record's position (`claimedSeq`); `mac` — the MAC does not verify at the
   * record's position (the record was changed, or records before it were
   * dropped, added or moved).
   */
  problem?: 'order' | 'mac';
  claimedSeq?: number;
}

export interface VerifyStreamOptions extends RecordStreamOptions {
  /** Fail the stream (KMSInvalidMacException) at the first invalid record instead of passing `valid: false`. */
  failFast?: boolean;
  /**
   * The checkpoint lines the sign stream's checkpoints were shipped to (a
   * file): the records must agree with every shipped checkpoint of the
   * stream and reach the newest; the stream must be there at all. What is
   * found is emitted as 'issue' events (VerifyIssue, as verifyLog reports:
   * anchor-missing, anchor-mismatch, anchor-invalid, fork, signer-silent)
   * and kept in `issues`; with failFast, a tampering issue fails the stream.
   */
  checkpoints?: FilePath;
  /** With `checkpoints`: the longest silence allowed between shipped checkpoints (ms); record streams declare no heartbeat. */
  maxGapMs?: number;
}

function toBuf(x: Buffer | Uint8Array | string, what: string): Buffer {
  if (typeof x === 'string') return Buffer.from(x, 'utf8');
  if (!(x instanceof Uint8Array)) throw new TypeError(`${what} must be a Buffer, Uint8Array or string`);
  return Buffer.isBuffer(x) ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function streamIdOf(s: Uint8Array | string | undefined, required: boolean): Buffer {
  if (s === undefined) {
    if (required)
      throw new TypeError('createVerifyStream: streamId is required (the stream id the records were signed with)');
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
  private emission: Promise<void> = Promise.resolve();
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
    assertKeyOptions(opts, verify ? 'createVerifyStream' : 'createSignStream');
  }

  /** The key ARN once resolved. */
  get keyArn(): string | undefined {
    return this.engine?.keyArn;
  }

  protected async ready(): Promise<MacEngine> {
    if (this.engine) return this.engine;
    this.enginePromise ??= engineFor(this.opts, 'record stream');
    this.engine = await this.enginePromise;
    this.digest = digestFor(this.engine.algorithm);
    return this.engine;
  }

  /** The record carried by an input chunk (checked: a TypeError for anything else). */
  protected abstract recordOf(item: In): Buffer;
  protected abstract run(
    engine: MacEngine,
    data: Buffer,
    offsets: Uint32Array,
    items: In[],
    seqs: number[],
    records: Buffer[],
  ): Promise<Out[]>;

  private records: Buffer[] = [];

  override _transform(chunk: In, _enc: BufferEncoding, cb: TransformCallback): void {
    this.ready()
      .then(async () => {
        const record = this.recordOf(chunk);
        const seq = this.seq++;
        this.batch.inputs.push(recordMacInput(this.sid, seq, record, this.digest));
        this.batch.items.push(chunk);
        this.batch.seqs.push(seq);
        this.records.push(record);
        if (this.batch.inputs.length >= this.batchSize) this.submit();
        else this.arm();
        // backpressure towards the writer: at most `inflight` batches pending
        while (this.done.length > this.inflight) await this.done[0];
      })
      .then(
        () => cb(),
        (err: Error) => cb(err),
      );
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
    this.enqueue(async () => {
      const outs = await p;
      for (const o of outs) this.push(o);
      await this.afterEmit(outs);
    });
    const settled = this.emission.finally(() => {
      this.done.shift();
    });
    this.done.push(settled);
  }

  /** Runs `fn` after everything already queued for emission; a failure destroys the stream. */
  protected enqueue(fn: () => Promise<void>): void {
    this.emission = this.emission.then(fn).catch((err: Error) => {
      this.destroy(err);
    });
  }

  /** After a batch's records were pushed, in order. */
  protected async afterEmit(_outs: Out[]): Promise<void> {}

  /** Once every record was pushed, before the stream ends. */
  protected async finish(): Promise<void> {}

  override _flush(cb: TransformCallback): void {
    this.submit();
    this.enqueue(() => this.finish());
    this.emission.then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    cb(err);
  }
}

class SignStream extends BatchingTransform<Buffer | Uint8Array | string, SignedRecord> {
  private checkpoints: CheckpointChain | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private readonly firstSeq: number;
  /** The id of the log the stream's checkpoints name (hex). */
  readonly logId: string;

  constructor(private readonly sopts: SignStreamOptions) {
    const from = sopts.chainFrom;
    if (from) {
      if (sopts.streamId !== undefined && streamIdOf(sopts.streamId, false).toString('hex') !== from.streamId)
        throw new RangeError('createSignStream: streamId differs from chainFrom.streamId');
      if (sopts.firstSeq !== undefined && sopts.firstSeq !== from.records)
        throw new RangeError('createSignStream: firstSeq differs from chainFrom.records');
      if (sopts.logId !== undefined && from.logId !== undefined && sopts.logId !== from.logId)
        throw new RangeError('createSignStream: logId differs from chainFrom.logId');
    }
    super(from ? { ...sopts, streamId: from.streamId, firstSeq: from.records } : sopts, false);
    checkpointSettings(sopts);
    this.firstSeq = this.seq;
    const logId = sopts.logId ?? from?.logId ?? newLogId();
    if (!/^[0-9a-f]{32}$/.test(logId)) throw new RangeError('createSignStream: logId must be 32 hex digits');
    this.logId = logId;
  }

  protected recordOf(item: Buffer | Uint8Array | string): Buffer {
    return toBuf(item, 'createSignStream: a record');
  }

  protected async run(
    engine: MacEngine,
    data: Buffer,
    offsets: Uint32Array,
    _items: unknown[],
    seqs: number[],
    records: Buffer[],
  ) {
    const macs = Buffer.from(await engine.macPacked(data, offsets));
    const L = engine.macLength;
    // one buffer: afterEmit hands consecutive MACs to the checkpoint chain as one span
    return records.map((record, i) => ({ seq: seqs[i]!, record, mac: macs.subarray(i * L, (i + 1) * L) }));
  }

  private chain(): CheckpointChain {
    if (this.checkpoints) return this.checkpoints;
    const engine = this.engine!;
    const from = this.sopts.chainFrom;
    const head = from
      ? { index: from.checkpoint, records: from.records, logBytes: from.logBytes, mac: Buffer.from(from.mac, 'base64') }
      : { index: -1, records: this.firstSeq, logBytes: 0, mac: Buffer.alloc(engine.macLength) }; // a stream's chain starts from zeros
    this.checkpoints = new CheckpointChain(engine.keyArn, this.sid, digestFor(engine.algorithm), head, this.sopts, {
      version: SIDECAR_VERSION,
      heartbeat: false,
    });
    return this.checkpoints;
  }

  protected override async afterEmit(outs: SignedRecord[]): Promise<void> {
    const chain = this.chain();
    const L = this.engine!.macLength;
    let bytes = chain.logBytes;
    for (let i = 0; i < outs.length; ) {
      const take = Math.min(chain.room, outs.length - i);
      const first = outs[i]!.mac;
      for (let k = i; k < i + take; k++) bytes += outs[k]!.record.length;
      chain.add(Buffer.from(first.buffer, first.byteOffset, take * L), take, bytes);
      i += take;
      if (chain.room === 0) await this.seal();
    }
    if (chain.due()) await this.seal();
    this.armCheckpoint();
  }

  protected override async finish(): Promise<void> {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    if (this.checkpoints && this.checkpoints.pending > 0) await this.seal();
  }

  private async seal(): Promise<void> {
    const sealed = await this.chain().seal(this.engine!, 0);
    const anchor: CheckpointAnchor = {
      ...sealed.anchor,
      logId: this.logId,
      ...(this.sopts.log ? { log: this.sopts.log } : {}),
    };
    this.emit('checkpoint', anchor);
    await this.sopts.onCheckpoint?.(anchor);
  }

  /** A checkpoint for records that wait while no more come. */
  private armCheckpoint(): void {
    const wait = this.checkpoints?.dueIn() ?? Infinity;
    if (this.checkpointTimer || wait === Infinity) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      this.enqueue(async () => {
        if (this.checkpoints?.due()) await this.seal();
        this.armCheckpoint();
      });
    }, wait);
    this.checkpointTimer.unref();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    super._destroy(err, cb);
  }
}

type VerifyIn = { record: Buffer | Uint8Array | string; mac: Uint8Array; seq?: number };

class VerifyStream extends BatchingTransform<VerifyIn, VerifiedRecord> {
  /** With `checkpoints`: what the check against them found. */
  readonly issues: VerifyIssue[] = [];
  private anchors: Promise<AnchorCheck> | undefined;
  private shipped: ShippedCheckpoint[] = [];
  /** The next shipped checkpoint to compare, the MACs since the one before, and the last one the records reached. */
  private next = 0;
  private blockDigest: Hash | undefined;
  private reached: ShippedCheckpoint | null = null;
  private readonly log: IssueLog;

  constructor(private readonly vopts: VerifyStreamOptions) {
    super(vopts, true);
    if (vopts.checkpoints !== undefined) assertPath(vopts.checkpoints, 'createVerifyStream: checkpoints');
    this.log = new IssueLog(1000, (i) => {
      this.issues.push(i);
      this.emit('issue', i);
    });
  }

  /** The shipped checkpoints, loaded and verified once the key is known. */
  private check(): Promise<AnchorCheck> {
    this.anchors ??= (async () => {
      const check = new AnchorCheck({ engine: this.engine!, issues: this.log, maxGapMs: this.vopts.maxGapMs });
      await check.load(this.vopts.checkpoints!, { streamId: this.streamId });
      this.shipped = check.checkpointsOf(this.streamId);
      this.blockDigest = this.newDigest();
      return check;
    })();
    return this.anchors;
  }

  private readonly firstSeq = this.seq;
  /** The record the MACs in blockDigest start from. */
  private digestFrom = this.seq;

  private newDigest(): Hash {
    return createHash(this.digest === 'SHA-512' ? 'sha512' : 'sha256');
  }

  /**
   * Each shipped checkpoint the records now reach (`count` records seen): its
   * digest must be that of the MACs since the one before it (when this run
   * saw them all: a run that continues a stream starts at a checkpoint).
   */
  private compare(count: number): void {
    while (this.next < this.shipped.length && this.shipped[this.next]!.records <= count) {
      const c = this.shipped[this.next]!;
      const start = this.next > 0 ? this.shipped[this.next - 1]!.records : c.index === 0 ? this.firstSeq : null;
      this.next++;
      if (c.records > this.firstSeq && start === this.digestFrom && this.blockDigest!.digest('base64') !== c.digest) {
        this.log.add({
          kind: 'anchor-mismatch',
          count: 1,
          message: `checkpoint ${c.index} (record ${c.records}) was shipped over other MACs than the records verified here: records or MACs were changed, added or removed`,
        });
      }
      if (c.records >= this.firstSeq) {
        this.blockDigest = this.newDigest();
        this.digestFrom = c.records;
      }
      this.reached = c;
    }
  }

  protected override async afterEmit(outs: VerifiedRecord[]): Promise<void> {
    if (this.vopts.checkpoints === undefined) return;
    await this.check();
    const L = this.engine!.macLength;
    for (const o of outs) {
      this.blockDigest!.update(o.mac.length === L ? o.mac : Buffer.alloc(L));
      this.compare(o.seq + 1);
    }
  }

  protected override async finish(): Promise<void> {
    if (this.vopts.checkpoints === undefined) return;
    const check = await this.check();
    this.compare(this.seq);
    const r = this.reached;
    check.finish([
      {
        streamId: this.streamId,
        header: null,
        last: r ? { index: r.index, records: r.records, timeMs: r.timeMs } : null,
        closed: false,
      },
    ]);
    check.destroy();
    this.log.done();
    const bad = this.issues.find((i) => isTampering(i.kind));
    if (bad && this.vopts.failFast) {
      const err = new Error(bad.message);
      err.name = 'KMSInvalidMacException';
      throw err;
    }
  }
  protected recordOf(item: VerifyIn): Buffer {
    if (!item || !(item.mac instanceof Uint8Array))
      throw new TypeError('createVerifyStream: each chunk must be { record, mac, seq? }');
    if (item.seq !== undefined && typeof item.seq !== 'number')
      throw new TypeError('createVerifyStream: seq must be a number');
    return toBuf(item.record, 'createVerifyStream: record');
  }
  protected async run(
    engine: MacEngine,
    data: Buffer,
    offsets: Uint32Array,
    items: VerifyIn[],
    seqs: number[],
    records: Buffer[],
  ) {
    const L = engine.macLength;
    const macs = Buffer.alloc(items.length * L);
    items.forEach((it, i) => {
      if (it.mac.length === L) macs.set(it.mac, i * L);
    });
    const res = await engine.verifyPacked(data, offsets, macs);
    return records.map((record, i): VerifiedRecord => {
      const { seq: claimedSeq, mac: m } = items[i]!;
      const mac = toBuf(m, 'createVerifyStream: mac');
      const seq = seqs[i]!;
      const problem =
        claimedSeq !== undefined && claimedSeq !== seq
          ? 'order'
          : res[i] === 1 && mac.length === L && macEqual(mac, macs.subarray(i * L, (i + 1) * L))
            ? undefined
            : 'mac';
      if (problem && this.vopts.failFast) {
        const err = new Error(
          problem === 'order'
            ? `record ${seq} arrived carrying seq ${claimedSeq}: out of order`
            : `record ${seq} does not verify`,
        );
        err.name = 'KMSInvalidMacException';
        throw err;
      }
      if (!problem) return { seq, record, mac, valid: true };
      return problem === 'order'
        ? { seq, record, mac, valid: false, problem, claimedSeq }
        : { seq, record, mac, valid: false, problem };
    });
  }
}

/**
 * Records in, `{ seq, record, mac }` out, and a 'checkpoint' event every
 * `checkpointEvery` records. `stream.streamId` is the (hex) stream id to
 * verify with later.
 */
export function createSignStream(
  options: SignStreamOptions,
): Transform & { readonly streamId: string; readonly logId: string; readonly keyArn: string | undefined } {
  return new SignStream(options);
}

/** `{ record, mac, seq? }` in, `{ seq, record, mac, valid, problem? }` out; `options.streamId` and the key are required. */
export function createVerifyStream(
  options: VerifyStreamOptions,
): Transform & { readonly streamId: string; readonly keyArn: string | undefined; readonly issues: VerifyIssue[] } {
  return new VerifyStream(options);
}
