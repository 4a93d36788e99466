/**
 * Signs a log into a sidecar (format.ts) in constant memory. The work is
 * staged, and the stages overlap: reading (the next read runs while the last
 * chunk is framed), framing (RecordFramer packs up to `batchSize` records per
 * batch), MACing (up to `inflight` batches at once on the worker threads
 * while the next batch is framed) and writing (SidecarWriter, in order, about
 * a mebibyte per write, behind the rest). signLog signs a finished file;
 * followLog (follow.ts) drives the same pipeline over a growing one.
 *
 * signLog writes the sidecar to a temporary file and renames it into place
 * only when complete, so a crash never leaves a plausible but partial sidecar.
 */
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Anchor } from './anchors.js';
import { createTemp, pathString } from './atomic-file.js';
import { secretBuffer, type MacEngine } from './engine.js';
import {
  MAX_PERIOD_MS,
  RAW_RECORD_MAX,
  SIDECAR_FORMAT,
  SIDECAR_VERSION,
  digestFor,
  framingDelimiter,
  newLogId,
  newStreamId,
  type ChainLink,
  type Framing,
  type SidecarHeader,
} from './format.js';
import { DEFAULT_BATCH_RECORDS, RecordFramer, type RecordBatch, type RecordCheck } from './framer.js';
import { assertLogInput, assertPath, logChunks, type FilePath, type LogInput, type ReadAreas } from './input.js';
import { DEFAULT_EPOCH_MS, forwardSecureKeys, kmsKeys, type SigningKeys } from './keys.js';
import { assertKeyOptions, engineFor, isRemoteEngine, type KeyOptions } from './kms-engine.js';
import { checkpointSettings } from './checkpoint.js';
import { SidecarWriter, type SidecarCheckpointOptions } from './sidecar-writer.js';

export interface Progress {
  records: number;
  bytes: number;
}

/** How a new stream's MACs are keyed (keys.ts). */
export interface ForwardSecureOptions {
  /**
   * Forward-secure epoch keys: the KMS key makes the stream's seed only (one
   * GenerateMac), and each epoch's keys are destroyed when the next begins.
   * The seed's nonce is shipped in the stream line and kept nowhere else, so
   * `onCheckpoint` is required, and the sidecar verifies only with the lines
   * shipped. Default false.
   */
  forwardSecure?: boolean;
  /** How long a key epoch lasts at most (ms; default 15 minutes, at most a day). */
  epochMs?: number;
}

export interface SignLogOptions extends KeyOptions, SidecarCheckpointOptions, ForwardSecureOptions {
  framing?: Framing;
  /** The log's id (32 hex digits) the sidecar and its shipped lines carry; random by default. */
  logId?: string;
  /** The log's path as shipped lines name it (default: the input path, made absolute). */
  log?: string;
  /** 16 bytes; random by default. */
  streamId?: Uint8Array;
  batchSize?: number;
  /** Batches MACed concurrently (default 2). */
  inflight?: number;
  onProgress?: (p: Progress) => void;
  createdAt?: Date;
}

export interface SignSummary {
  records: number;
  bytes: number;
  /** Checkpoints in the sidecar. */
  checkpoints: number;
  streamId: string;
  logId: string;
  keys: 'kms' | 'forward-secure';
  keyArn: string;
  macAlgorithm: string;
  framing: Framing['type'];
  sidecar: string;
  elapsedMs: number;
}

export class LogInputError extends Error {
  override name = 'LogInputError';
}

export function ndjsonCheck(framing: Framing): RecordCheck | undefined {
  if (framing.type !== 'ndjson') return undefined;
  return (buf, start, end, index) => {
    if (end > start && buf[end - 1] === 0x0a) end--;
    if (end > start && buf[end - 1] === 0x0d) end--;
    if (end === start) return; // blank lines are records too, but carry no JSON
    try {
      JSON.parse(buf.toString('utf8', start, end));
    } catch {
      throw new LogInputError(`line ${index + 1} is not valid JSON (framing ndjson)`);
    }
  };
}

/** What a new stream's header states, besides what the key gives. */
export interface StreamSetup {
  framing: Framing;
  streamId?: Uint8Array;
  checkpointEvery: number;
  previous?: ChainLink | null;
  logInode?: string;
  createdAt?: Date;
  logId?: string;
  /** The heartbeat a live log's signer promises (ms), or null. */
  heartbeatMs?: number | null;
  /** Forward-secure epochs of this length (ms), or null: the KMS key MACs everything. */
  epochMs?: number | null;
}

/** The header of a new stream (version 3). */
export function newHeader(
  engine: Pick<MacEngine, 'keyArn' | 'algorithm' | 'macLength'>,
  opts: StreamSetup,
): SidecarHeader {
  const streamId = Buffer.from(opts.streamId ?? newStreamId());
  if (streamId.length !== 16) throw new RangeError('streamId must be 16 bytes');
  const logId = opts.logId ?? newLogId();
  if (!/^[0-9a-f]{32}$/.test(logId)) throw new RangeError('logId must be 32 hex digits');
  return {
    format: SIDECAR_FORMAT,
    version: SIDECAR_VERSION,
    keyArn: engine.keyArn,
    macAlgorithm: engine.algorithm,
    macLength: engine.macLength,
    framing: opts.framing,
    streamId: streamId.toString('hex'),
    digest: digestFor(engine.algorithm),
    rawRecordMax: RAW_RECORD_MAX,
    createdAt: (opts.createdAt ?? new Date()).toISOString(),
    checkpointEvery: opts.checkpointEvery,
    previous: opts.previous ?? null,
    ...(opts.logInode !== undefined ? { logInode: opts.logInode } : {}),
    logId,
    heartbeatMs: opts.heartbeatMs ?? null,
    keys: opts.epochMs ? 'forward-secure' : 'kms',
    ...(opts.epochMs ? { epochMs: opts.epochMs } : {}),
  };
}

/** Checks forwardSecure / epochMs; the epoch length, or null for a kms-keyed stream. */
export function epochSetting(o: ForwardSecureOptions, caller: string): number | null {
  if (o.epochMs !== undefined && !(Number.isSafeInteger(o.epochMs) && o.epochMs >= 100 && o.epochMs <= MAX_PERIOD_MS))
    throw new RangeError(`${caller}: epochMs must be a whole number of milliseconds from 100 to ${MAX_PERIOD_MS}`);
  return o.forwardSecure ? (o.epochMs ?? DEFAULT_EPOCH_MS) : null;
}

/**
 * A new stream's header and keys. Forward-secure: a fresh nonce and seed
 * (one MAC with the KMS key); the caller hands `nonce` to SidecarWriter.create,
 * which ships it and wipes it.
 */
export async function newStream(
  engine: MacEngine,
  setup: StreamSetup,
): Promise<{ header: SidecarHeader; keys: SigningKeys; nonce?: Buffer }> {
  const streamId = Buffer.from(setup.streamId ?? newStreamId());
  const header = newHeader(engine, { ...setup, streamId });
  if (!setup.epochMs) {
    if (isRemoteEngine(engine))
      throw new TypeError(
        'a key reached through a remote KMS (kms) signs forward-secure streams only: their records are MACed with keys derived from one GenerateMac',
      );
    return { header, keys: kmsKeys(engine) };
  }
  const { keys, nonce } = await forwardSecureKeys(engine, streamId, setup.epochMs);
  return { header, keys, nonce };
}

export interface PipelineOptions {
  batchSize?: number;
  /** Batches MACed concurrently (default 2). */
  inflight?: number;
  /** Where the input starts in the log (a resumed signer). */
  start?: { records: number; bytes: number };
  /** Reject a record that is not JSON under ndjson framing (a live log's signer signs it anyway: one bad line must not stop it for good). */
  checkNdjson: boolean;
  onProgress?: (p: Progress) => void;
}

/** The inode of a file (decimal), as a header's `logInode`. */
export async function inodeOf(path: FilePath): Promise<string> {
  return String((await stat(path, { bigint: true })).ino);
}

/**
 * The signer's stages: the framer packs records into batches (from areas
 * the log is read into while the previous chunk is framed); up to
 * `inflight` batches are MACed at once on the worker threads, into MAC
 * buffers of the pipeline's own, while the next is framed; the writer takes
 * the MACs in order. Nothing is allocated per record or per batch's data.
 */
export class SignPipeline {
  readonly framer: RecordFramer;
  private readonly inflight: number;
  private readonly queue: { batch: RecordBatch; out: Uint8Array; macs: Promise<Uint8Array> }[] = [];
  /** MAC buffers not in use, one per batch in flight. */
  private readonly outs: Uint8Array[] = [];

  constructor(
    private readonly keys: SigningKeys,
    header: SidecarHeader,
    private readonly writer: SidecarWriter,
    private readonly opts: PipelineOptions,
  ) {
    this.inflight = Math.max(1, opts.inflight ?? 2);
    const batchSize = opts.batchSize ?? DEFAULT_BATCH_RECORDS;
    this.framer = new RecordFramer({
      streamId: Buffer.from(header.streamId, 'hex'),
      delimiter: framingDelimiter(header.framing),
      digest: header.digest,
      batchSize,
      checkRecord: opts.checkNdjson ? ndjsonCheck(header.framing) : undefined,
      start: opts.start,
      slots: this.inflight + 1, // in flight, and one waiting for its turn
    });
    for (let i = 0; i < this.inflight; i++) this.outs.push(new Uint8Array(batchSize * header.macLength));
  }

  /** The areas to read the log into (see RecordFramer.inputArea). */
  get readAreas(): ReadAreas {
    return [this.framer.inputArea(0), this.framer.inputArea(1)];
  }

  async push(chunk: Uint8Array): Promise<void> {
    for (const batch of this.framer.push(chunk)) await this.submit(batch);
  }

  /** Every complete record so far reaches the writer; an unterminated last record stays pending. */
  async flush(): Promise<void> {
    for (const batch of this.framer.flush()) await this.submit(batch);
    await this.drain(0);
  }

  /** The input has ended: the last record, terminated or not, too. The framer's memory goes to the next pipeline. */
  async end(): Promise<void> {
    for (const batch of this.framer.end()) await this.submit(batch);
    await this.drain(0);
    this.framer.dispose();
  }

  private async submit(batch: RecordBatch): Promise<void> {
    await this.drain(this.inflight - 1);
    const out = this.outs.pop()!;
    // the current epoch's key: an epoch ends only once the pipeline is drained (SidecarWriter.endEpoch)
    const macs = this.keys.engine.macPacked(batch.data, batch.offsets, out);
    macs.catch(() => {}); // observed in drain; avoid an unhandled rejection meanwhile
    this.queue.push({ batch, out, macs });
  }

  private async drain(keep: number): Promise<void> {
    while (this.queue.length > keep) {
      const { batch, out, macs } = this.queue.shift()!;
      await this.writer.add(batch, await macs);
      this.outs.push(out);
      this.framer.release(batch);
      this.opts.onProgress?.({ records: batch.first + batch.count, bytes: batch.end });
    }
  }
}

/**
 * Signs a log and writes its sidecar to `sidecarPath`. `input` is a file path
 * (string or URL), the log's bytes, a byte stream or an async iterable of
 * byte chunks (see input.ts); the key is named by `opts` (KeyOptions).
 */
export async function signLog(input: LogInput, sidecarPath: FilePath, opts: SignLogOptions): Promise<SignSummary> {
  const t0 = performance.now();
  assertLogInput(input, 'signLog');
  assertPath(sidecarPath, 'signLog: the sidecar');
  assertKeyOptions(opts, 'signLog');
  const { every } = checkpointSettings(opts);
  const epochMs = epochSetting(opts, 'signLog');
  if (epochMs !== null && !opts.onCheckpoint)
    throw new TypeError(
      "signLog: forwardSecure needs onCheckpoint: the stream's nonce is shipped there, and kept nowhere else",
    );
  const engine = await engineFor(opts, 'signLog');
  const framing = opts.framing ?? { type: 'line' };
  const isPath = typeof input === 'string' || input instanceof URL;
  const { header, keys, nonce } = await newStream(engine, {
    framing,
    streamId: opts.streamId,
    checkpointEvery: every,
    createdAt: opts.createdAt,
    logInode: isPath ? await inodeOf(input) : undefined,
    logId: opts.logId,
    epochMs,
  });
  // a finished file's lines are shipped once its sidecar is in place: a sign that fails ships nothing
  const shipped: Anchor[] = [];
  const collect = (a: Anchor) => {
    if (a.type !== 'stream' || !Buffer.isBuffer(a.nonce)) return void shipped.push(a);
    const nonce = secretBuffer(a.nonce.length); // the writer wipes its own once this returns
    nonce.set(a.nonce);
    shipped.push({ ...a, nonce });
  };
  const log = opts.log ?? (isPath ? resolve(pathString(input)) : undefined);
  const tmp = await createTemp(sidecarPath);
  let ok = false;
  try {
    const writer = await SidecarWriter.create(
      tmp.fh,
      header,
      { ...opts, onCheckpoint: opts.onCheckpoint && collect, keys, durable: false, identity: identity(log) },
      0,
      nonce,
    );
    await writer.begin();
    const pipeline = new SignPipeline(keys, header, writer, {
      batchSize: opts.batchSize,
      inflight: opts.inflight,
      checkNdjson: true,
      onProgress: opts.onProgress,
    });
    for await (const chunk of logChunks(input, 'signLog', pipeline.readAreas)) {
      await pipeline.push(chunk);
      if (writer.epochDueIn() === 0) {
        await pipeline.flush();
        await writer.endEpoch();
      }
      if (writer.due()) await writer.checkpoint();
    }
    await pipeline.end();
    await writer.close();
    await tmp.commit();
    ok = true;
    for (const a of shipped) await opts.onCheckpoint!(a);
    const { framer } = pipeline;
    return {
      records: framer.records,
      bytes: framer.bytes,
      checkpoints: writer.chainHead.index + 1,
      streamId: header.streamId,
      logId: header.logId!,
      keys: header.keys!,
      keyArn: engine.keyArn,
      macAlgorithm: engine.algorithm,
      framing: framing.type,
      sidecar: pathString(sidecarPath),
      elapsedMs: performance.now() - t0,
    };
  } finally {
    keys.destroy();
    for (const a of shipped) if (a.type === 'stream' && Buffer.isBuffer(a.nonce)) a.nonce.fill(0);
    if (!ok) await tmp.discard();
  }
}

/** What every shipped line says of where the log is: this host, and its path when it has one. */
export function identity(log: string | undefined): { host: string; log?: string } {
  return { host: hostname(), ...(log !== undefined ? { log } : {}) };
}
