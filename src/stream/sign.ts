/**
 * Signs a log into a sidecar (format.ts) in constant memory: the framer packs
 * up to `batchSize` records per batch, up to `inflight` batches are MACed at
 * once on the worker threads while the next batch is framed, and results are
 * written in order. The sidecar is written to a temporary file and renamed
 * into place only when complete, so a crash never leaves a plausible but
 * partial sidecar.
 */
import { createTemp, pathString } from './atomic-file.js';
import { assertLogInput, assertPath, logChunks, type FilePath, type LogInput } from './input.js';
import { assertKeyOptions, engineFor, type KeyOptions } from './kms-engine.js';
import {
  RAW_RECORD_MAX,
  SIDECAR_FORMAT,
  SIDECAR_VERSION,
  digestFor,
  encodeHeader,
  encodeTrailerFixed,
  framingDelimiter,
  headerMacInput,
  newStreamId,
  trailerMacInput,
  type Framing,
  type SidecarHeader,
} from './format.js';
import { RecordFramer, type RecordBatch } from './framer.js';

export interface Progress {
  records: number;
  bytes: number;
}

export interface SignLogOptions extends KeyOptions {
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

export function ndjsonCheck(framing: Framing): ((rec: Buffer, index: number) => void) | undefined {
  if (framing.type !== 'ndjson') return undefined;
  return (rec, index) => {
    let end = rec.length;
    if (end > 0 && rec[end - 1] === 0x0a) end--;
    if (end > 0 && rec[end - 1] === 0x0d) end--;
    if (end === 0) return; // blank lines are records too, but carry no JSON
    try {
      JSON.parse(rec.toString('utf8', 0, end));
    } catch {
      throw new LogInputError(`line ${index + 1} is not valid JSON (framing ndjson)`);
    }
  };
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
  const engine = await engineFor(opts, 'signLog');
  const framing = opts.framing ?? { type: 'line' };
  const streamId = Buffer.from(opts.streamId ?? newStreamId());
  const digest = digestFor(engine.algorithm);
  const header: SidecarHeader = {
    format: SIDECAR_FORMAT,
    version: SIDECAR_VERSION,
    keyArn: engine.keyArn,
    macAlgorithm: engine.algorithm,
    macLength: engine.macLength,
    framing,
    streamId: streamId.toString('hex'),
    digest,
    rawRecordMax: RAW_RECORD_MAX,
    createdAt: (opts.createdAt ?? new Date()).toISOString(),
  };
  const headerBytes = encodeHeader(header);
  const headerMac = await engine.mac(headerMacInput(streamId, headerBytes));

  const tmp = await createTemp(sidecarPath);
  const { fh } = tmp;
  let ok = false;
  try {
    await fh.write(headerBytes);
    await fh.write(headerMac);
    const framer = new RecordFramer({
      streamId,
      delimiter: framingDelimiter(framing),
      digest,
      batchSize: opts.batchSize,
      checkRecord: ndjsonCheck(framing),
    });
    const inflight = Math.max(1, opts.inflight ?? 2);
    const queue: { batch: RecordBatch; macs: Promise<Uint8Array> }[] = [];
    let done = 0;
    const drain = async (keep: number): Promise<void> => {
      while (queue.length > keep) {
        const { batch, macs } = queue.shift()!;
        const m = await macs;
        framer.release(batch);
        await fh.write(m, 0, batch.count * engine.macLength);
        done += batch.count;
        opts.onProgress?.({ records: done, bytes: batch.end });
      }
    };
    const submit = async (batches: RecordBatch[]): Promise<void> => {
      for (const batch of batches) {
        const macs = engine.macPacked(batch.data, batch.offsets);
        macs.catch(() => {}); // observed in drain; avoid an unhandled rejection meanwhile
        queue.push({ batch, macs });
        await drain(inflight);
      }
    };
    for await (const chunk of logChunks(input, 'signLog')) await submit(framer.push(chunk));
    await submit(framer.end());
    await drain(0);
    const trailer = encodeTrailerFixed(framer.records, framer.bytes);
    const trailerMac = await engine.mac(trailerMacInput(streamId, framer.records, framer.bytes));
    await fh.write(trailer);
    await fh.write(trailerMac);
    await tmp.commit();
    ok = true;
    return {
      records: framer.records,
      bytes: framer.bytes,
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
