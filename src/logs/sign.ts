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
import { createTemp, pathString } from './atomic-file.js';
import type { MacEngine } from './engine.js';
import {
  RAW_RECORD_MAX,
  SIDECAR_FORMAT,
  SIDECAR_VERSION,
  digestFor,
  framingDelimiter,
  newStreamId,
  type ChainLink,
  type Framing,
  type SidecarHeader,
} from './format.js';
import { DEFAULT_BATCH_RECORDS, RecordFramer, type RecordBatch, type RecordCheck } from './framer.js';
import { assertLogInput, assertPath, logChunks, type FilePath, type LogInput, type ReadAreas } from './input.js';
import { assertKeyOptions, engineFor, type KeyOptions } from './kms-engine.js';
import { checkpointSettings } from './checkpoint.js';
import { SidecarWriter, type SidecarCheckpointOptions } from './sidecar-writer.js';

export interface Progress {
  records: number;
  bytes: number;
}

export interface SignLogOptions extends KeyOptions, SidecarCheckpointOptions {
  framing?: Framing;
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

/** The header of a new version-2 sidecar. */
export function newHeader(
  engine: MacEngine,
  opts: {
    framing: Framing;
    streamId?: Uint8Array;
    checkpointEvery: number;
    previous?: ChainLink | null;
    logInode?: string;
    createdAt?: Date;
  },
): SidecarHeader {
  const streamId = Buffer.from(opts.streamId ?? newStreamId());
  if (streamId.length !== 16) throw new RangeError('streamId must be 16 bytes');
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
  };
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
    private readonly engine: MacEngine,
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
    for (let i = 0; i < this.inflight; i++) this.outs.push(new Uint8Array(batchSize * engine.macLength));
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
    const macs = this.engine.macPacked(batch.data, batch.offsets, out);
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
  const engine = await engineFor(opts, 'signLog');
  const framing = opts.framing ?? { type: 'line' };
  const isPath = typeof input === 'string' || input instanceof URL;
  const header = newHeader(engine, {
    framing,
    streamId: opts.streamId,
    checkpointEvery: every,
    createdAt: opts.createdAt,
    logInode: isPath ? await inodeOf(input) : undefined,
  });
  const tmp = await createTemp(sidecarPath);
  let ok = false;
  try {
    const writer = await SidecarWriter.create(tmp.fh, header, { ...opts, engine, durable: false });
    const pipeline = new SignPipeline(engine, header, writer, {
      batchSize: opts.batchSize,
      inflight: opts.inflight,
      checkNdjson: true,
      onProgress: opts.onProgress,
    });
    for await (const chunk of logChunks(input, 'signLog', pipeline.readAreas)) {
      await pipeline.push(chunk);
      if (writer.due()) await writer.checkpoint();
    }
    await pipeline.end();
    await writer.close();
    await tmp.commit();
    ok = true;
    const { framer } = pipeline;
    return {
      records: framer.records,
      bytes: framer.bytes,
      checkpoints: writer.chainHead.index + 1,
      streamId: header.streamId,
      keyArn: engine.keyArn,
      macAlgorithm: engine.algorithm,
      framing: framing.type,
      sidecar: pathString(sidecarPath),
      elapsedMs: performance.now() - t0,
    };
  } finally {
    if (!ok) await tmp.discard();
  }
}
