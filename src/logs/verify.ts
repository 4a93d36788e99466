/**
 * Verifies a log against its sidecar in constant memory and names every
 * difference. This is the driver: it reads the sidecar (sidecar-reader.ts)
 * and the log, batches records, and checks each batch in one packed verify
 * call on the worker threads at the place the alignment expects it (record j
 * is signed record j + d; d changes only when records were added or
 * removed). A batch that verifies in order is done; the records of any other
 * go to the Aligner (aligner.ts), which works out what happened.
 */
import type { MacEngine } from './engine.js';
import { AnchorCheck } from './anchors.js';
import { Aligner, type AlignRecord, type Matcher } from './aligner.js';
import {
  MAC_INPUT_PREFIX,
  PREFIX_KIND,
  PREFIX_N,
  SidecarFormatError,
  framingDelimiter,
  writePrefix,
  writeU64,
} from './format.js';
import { DEFAULT_BATCH_RECORDS, RecordFramer, type RecordBatch } from './framer.js';
import { assertLogInput, assertPath, logChunks, type FilePath, type LogInput } from './input.js';
import { IssueLog, type IssueKind, type VerifyIssue } from './issues.js';
import { assertKeyOptions, engineFor, type KeyOptions } from './kms-engine.js';
import {
  MacWindow,
  headerVerifies,
  macSource,
  openSidecar,
  scanSidecar,
  type SidecarFile,
  type SidecarState,
} from './sidecar-reader.js';
import type { Progress } from './sign.js';

export { ISSUE_KINDS, describe, isTampering } from './issues.js';
export type { IssueKind, VerifyIssue } from './issues.js';

export interface VerifyReport {
  /** Every record verified and nothing else to report. */
  ok: boolean;
  /** Evidence of tampering: any issue but records not signed yet (`unsigned`). */
  tampered: boolean;
  /** Records in the log as it is now. */
  records: number;
  /** Records the sidecar covers: through its last checkpoint that verifies (v2), or its trailer's count (v1). */
  signedRecords: number;
  bytes: number;
  signedBytes: number | null;
  /** Records found in order at their signed place. */
  verified: number;
  /** Records (or signed records for deleted / log-truncated) per issue kind. */
  counts: Record<IssueKind, number>;
  issues: VerifyIssue[];
  /** True when more issues were found than `maxIssues` kept. */
  issuesTruncated: boolean;
  keyArn: string;
  macAlgorithm: string;
  framing: string;
  streamId: string;
  /** Sidecar format version. */
  version: number;
  /** Version 2: the last checkpoint that verifies — the log is signed through it. */
  checkpoint: { index: number; records: number; logBytes: number; time: string } | null;
  /** The signer finished the sidecar: a trailer that verifies. */
  closed: boolean;
  /** Bytes after the last checkpoint that a crash left unfinished (ignored: their records are unsigned). */
  tornBytes: number;
  /** Version 2: the sidecar this one continues after a log rotation. */
  previous: { streamId: string; checkpoint: number; records: number } | null;
  /** With `checkpoints`: how many of this stream's checkpoints were shipped, and the newest. */
  anchors?: AnchorCheck['summary'];
  elapsedMs: number;
}

/**
 * The key to trust is required (KeyOptions): the key a sidecar names is never
 * used to check it, since whoever edits a log can sign it again with a key of
 * their own. A sidecar made with any other key is reported as `wrong-key`.
 */
export interface VerifyLogOptions extends KeyOptions {
  /** Alignment window W (default 1024). */
  window?: number;
  /** Issues kept in the report (default 1000; counts are always complete). */
  maxIssues?: number;
  batchSize?: number;
  inflight?: number;
  /** Checkpoint lines shipped by `sign --checkpoints-out` (a file): the sidecar must reach the newest one of its stream and agree with each. */
  checkpoints?: FilePath;
  onIssue?: (issue: VerifyIssue) => void;
  onProgress?: (p: Progress) => void;
}

/**
 * Verifies a log against the sidecar at `sidecarPath` with the key `opts`
 * names. `input` is a file path (string or URL), the log's bytes, a byte
 * stream or an async iterable of byte chunks (see input.ts).
 */
export async function verifyLog(input: LogInput, sidecarPath: FilePath, opts: VerifyLogOptions): Promise<VerifyReport> {
  const t0 = performance.now();
  assertLogInput(input, 'verifyLog');
  assertPath(sidecarPath, 'verifyLog: the sidecar');
  assertKeyOptions(opts, 'verifyLog');
  if (opts.checkpoints !== undefined) assertPath(opts.checkpoints, 'verifyLog: checkpoints');
  const issues = new IssueLog(opts.maxIssues ?? 1000, opts.onIssue);
  let sf: SidecarFile;
  try {
    sf = await openSidecar(sidecarPath);
  } catch (err) {
    if (!(err instanceof SidecarFormatError && err.damaged)) throw err;
    issues.add({ kind: 'sidecar-header', count: 1, message: err.message });
    return report(issues, t0, null, null, null);
  }
  try {
    const { header } = sf;
    const engine = await engineFor(opts, 'verifyLog', header.macAlgorithm);
    if (engine.keyArn !== header.keyArn || engine.algorithm !== header.macAlgorithm) {
      issues.add({
        kind: 'wrong-key',
        count: 1,
        message:
          `the sidecar was made with key ${header.keyArn} (${header.macAlgorithm}), not the expected key ${engine.keyArn} (${engine.algorithm}): ` +
          'whoever can change the log can sign it again with a key of their own, so a sidecar made with any other key is not trusted',
      });
      return report(issues, t0, sf, null, null);
    }
    if (!(await headerVerifies(sf, engine))) {
      issues.add({
        kind: 'sidecar-header',
        count: 1,
        message: `the sidecar header MAC does not verify with key ${engine.keyArn}: the header was altered`,
      });
      return report(issues, t0, sf, null, null);
    }
    const anchors = opts.checkpoints === undefined ? null : new AnchorCheck(header.streamId, engine, issues);
    await anchors?.load(opts.checkpoints!);
    const state = await scanSidecar(sf, engine, issues, anchors ? (c) => anchors.visit(c) : undefined);
    anchors?.finish(state);
    const log = await alignLog(input, sf, state, engine, issues, opts);
    return report(issues, t0, sf, state, log, anchors?.summary);
  } finally {
    await sf.fh.close();
  }
}

/** Streams the log through the fast path and the aligner; returns what it saw. */
async function alignLog(
  input: LogInput,
  sf: SidecarFile,
  state: SidecarState,
  engine: MacEngine,
  issues: IssueLog,
  opts: VerifyLogOptions,
) {
  const { header, streamId, macLength: L } = sf;
  const n = state.signed;
  const window = new MacWindow(macSource(sf, state, engine, issues), n);

  /** Which of `seqs` the record was signed as: a few MACs, on this thread (a worker round trip costs more). */
  const match: Matcher = (r, seqs) => {
    const stride = MAC_INPUT_PREFIX + r.payload.length;
    const data = Buffer.allocUnsafe(stride * seqs.length);
    const offsets = new Uint32Array(seqs.length + 1);
    const macs = Buffer.allocUnsafe(L * seqs.length);
    for (let i = 0; i < seqs.length; i++) {
      writePrefix(data, i * stride, streamId, seqs[i]!, r.kind);
      r.payload.copy(data, i * stride + MAC_INPUT_PREFIX);
      offsets[i + 1] = (i + 1) * stride;
      window.get(seqs[i]!).copy(macs, i * L);
    }
    const res = engine.verifyPackedSync(data, offsets, macs);
    for (let i = 0; i < seqs.length; i++) if (res[i] === 1) return seqs[i]!;
    return -1;
  };
  const aligner = new Aligner({
    signed: n,
    window: opts.window ?? 1024,
    // a version-2 sidecar covers what was signed so far; so does a cut version-1 sidecar
    unsignedTail: header.version === 2 || state.truncated,
    match,
    issue: (i) => issues.add(i),
  });
  /** The matcher reads MACs from the window: make sure it holds every seq the next step may ask about. */
  const reachable = async (): Promise<void> => {
    const { lo, hi } = aligner.reach();
    if (!window.covers(lo, hi)) await window.load(Math.max(0, lo), hi, lo);
  };

  // the stages overlap as in signing: the next read while a chunk is framed, up to `inflight` batches verified on
  // the worker threads while the next is framed; a batch's records stay in the framer until it is handled
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_RECORDS;
  const inflight = Math.max(1, opts.inflight ?? 2);
  const framer = new RecordFramer({
    streamId,
    delimiter: framingDelimiter(header.framing),
    digest: header.digest,
    batchSize,
    slots: inflight + 1,
  });
  type Job = { batch: RecordBatch; d: number; results: Uint8Array; res: Promise<Uint8Array> };
  const resultsPool: Uint8Array[] = Array.from({ length: inflight }, () => new Uint8Array(batchSize));
  const scratch = Buffer.allocUnsafe(batchSize * L);
  let d = 0; // the fast path's assumption: record j is signed record j + d

  const submit = async (batch: RecordBatch): Promise<Job> => {
    if (d !== 0)
      for (let i = 0; i < batch.count; i++) writeU64(batch.data, batch.offsets[i]! + PREFIX_N, batch.first + i + d);
    const lo = batch.first + d;
    await window.load(lo, lo + batch.count, aligner.reach().lo);
    const results = resultsPool.pop()!;
    // the engine copies its inputs before it returns: the window's own bytes can go as they are
    const res = engine.verifyPacked(batch.data, batch.offsets, window.macs(lo, batch.count, scratch), results);
    res.catch(() => {}); // observed in handle
    return { batch, d, results, res };
  };

  const handle = async ({ batch, d: jd, results, res: pending }: Job): Promise<void> => {
    const res = await pending;
    if (aligner.exhausted) aligner.beyond(batch.first, batch.starts[0]!, batch.count);
    else {
      let inOrder = aligner.clean && jd === aligner.expected - batch.first && batch.first + jd + batch.count <= n;
      for (let i = 0; inOrder && i < batch.count; i++) inOrder = res[i] === 1;
      if (inOrder) aligner.inOrder(batch.count);
      else {
        for (let i = 0; i < batch.count; i++) {
          const o = batch.offsets[i]!;
          const r: AlignRecord = {
            index: batch.first + i,
            start: batch.starts[i]!,
            kind: batch.data[o + PREFIX_KIND]!,
            payload: batch.data.subarray(o + MAC_INPUT_PREFIX, batch.offsets[i + 1]!),
            hintSeq: batch.first + i + jd,
            hintOk: res[i] === 1,
          };
          await reachable();
          aligner.push(r);
        }
        aligner.settle();
      }
    }
    d = aligner.seqOffset(batch.first + batch.count);
    resultsPool.push(results);
    framer.release(batch); // the aligner copied what it keeps
    opts.onProgress?.({ records: batch.first + batch.count, bytes: batch.end });
  };

  const queue: Job[] = [];
  const pump = async (batches: Iterable<RecordBatch>): Promise<void> => {
    for (const batch of batches) {
      while (queue.length >= inflight) await handle(queue.shift()!);
      queue.push(await submit(batch));
    }
  };
  for await (const chunk of logChunks(input, 'verifyLog', [framer.inputArea(0), framer.inputArea(1)]))
    await pump(framer.push(chunk));
  await pump(framer.end());
  while (queue.length) await handle(queue.shift()!);
  framer.dispose(); // every batch handled: its memory goes to the next framer
  await reachable();
  aligner.end();
  if (!aligner.matchedAny && n > 0 && framer.records > 0) {
    issues.add({
      kind: 'foreign-sidecar',
      count: 1,
      message: `no record of this log matches the sidecar: it was made for another log (stream ${header.streamId}), or every record was changed`,
    });
  }
  await window.drain(); // every checkpoint checked, even past the end of a cut log
  return { records: framer.records, bytes: framer.bytes, verified: aligner.verified };
}

function report(
  issues: IssueLog,
  t0: number,
  sf: SidecarFile | null,
  state: SidecarState | null,
  log: { records: number; bytes: number; verified: number } | null,
  anchors?: AnchorCheck['summary'],
): VerifyReport {
  const list = issues.done();
  const h = sf?.header;
  const last = state?.last;
  const prev = h?.previous;
  return {
    ok: issues.clean,
    tampered: issues.tampered,
    records: log?.records ?? 0,
    signedRecords: state?.signed ?? 0,
    bytes: log?.bytes ?? 0,
    signedBytes: state?.signedBytes ?? null,
    verified: log?.verified ?? 0,
    counts: issues.counts,
    issues: list,
    issuesTruncated: issues.truncated,
    keyArn: h?.keyArn ?? '',
    macAlgorithm: h?.macAlgorithm ?? '',
    framing: h?.framing.type ?? '',
    streamId: h?.streamId ?? '',
    version: h?.version ?? 0,
    checkpoint: last
      ? { index: last.index, records: last.records, logBytes: last.logBytes, time: new Date(last.timeMs).toISOString() }
      : null,
    closed: state?.closed ?? false,
    tornBytes: state?.tornBytes ?? 0,
    previous: prev ? { streamId: prev.streamId, checkpoint: prev.checkpoint, records: prev.records } : null,
    ...(anchors ? { anchors } : {}),
    elapsedMs: performance.now() - t0,
  };
}
