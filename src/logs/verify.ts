/**
 * Verifies a log against its sidecar in constant memory and names every
 * difference. This is the driver: it reads the sidecar (sidecar-reader.ts)
 * and the log, batches records, and checks each batch in one packed verify
 * call on the worker threads at the place the alignment expects it (record j
 * is signed record j + d; d changes only when records were added or
 * removed). A batch that verifies in order is done; the records of any other
 * go to the Aligner (aligner.ts), which works out what happened.
 */
import { resolve } from 'node:path';
import { pathString } from './atomic-file.js';
import { AnchorCheck, type SidecarStream } from './anchor-check.js';
import { Aligner, type AlignRecord, type Matcher } from './aligner.js';
import {
  MAC_INPUT_PREFIX,
  PREFIX_KIND,
  PREFIX_N,
  PREFIX_STREAM_ID,
  SidecarFormatError,
  framingDelimiter,
  headerMacInput,
  writePrefix,
  writeU64,
} from './format.js';
import { DEFAULT_BATCH_RECORDS, RecordFramer, type RecordBatch } from './framer.js';
import { assertLogInput, assertPath, logChunks, type FilePath, type LogInput } from './input.js';
import { IssueLog, type IssueKind, type VerifyIssue } from './issues.js';
import { kmsStreamKeys, type StreamKeys } from './keys.js';
import { assertKeyOptions, engineFor, isRemoteEngine, type KeyOptions } from './kms-engine.js';
import {
  MacWindow,
  firstSegment,
  keyRuns,
  macSource,
  openSidecar,
  scanSidecar,
  type KeyRun,
  type SegmentState,
  type SidecarFile,
  type SidecarState,
} from './sidecar-reader.js';
import { LogInputError, type Progress } from './sign.js';

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
  /** Version 2+: the sidecar this one continues after a log rotation. */
  previous: { streamId: string; checkpoint: number; records: number } | null;
  /** Version 3: the log's id, how the stream's MACs are keyed, and the streams the sidecar holds (several after forward-secure restarts). */
  logId?: string;
  keys?: 'kms' | 'forward-secure';
  streams?: { streamId: string; records: number; checkpoint: number | null; closed: boolean }[];
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
  /**
   * Checkpoint lines shipped by `sign --checkpoints-out` (a file): the
   * authority (anchor-check.ts). The sidecar's streams must be there, reach
   * the newest checkpoint shipped of each and agree with every one; the
   * log's streams must form one chain; silences longer than `maxGapMs` are
   * reported. A forward-secure sidecar can only be verified with them: its
   * keys come from the nonce shipped there.
   */
  checkpoints?: FilePath;
  /** With `checkpoints`: the longest silence allowed between shipped checkpoints (ms); default 3 × the heartbeat the stream declares. */
  maxGapMs?: number;
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
  let anchors: AnchorCheck | null = null;
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
    const forward = header.keys === 'forward-secure';
    if (forward && opts.checkpoints === undefined)
      throw new LogInputError(
        `${String(sidecarPath)} is forward-secure: its keys are derived from a nonce that only its shipped checkpoints hold; verify it with them (checkpoints, --checkpoints)`,
      );
    if (!forward && isRemoteEngine(engine))
      throw new LogInputError(
        `${String(sidecarPath)} is MACed with the KMS key itself, record by record: it cannot be verified through a remote KMS (kms); use a client or an engine with the key`,
      );
    if (opts.checkpoints !== undefined) {
      const logPath = typeof input === 'string' || input instanceof URL ? resolve(pathString(input)) : undefined;
      anchors = new AnchorCheck({ engine, issues, maxGapMs: opts.maxGapMs, logPath });
      await anchors.load(opts.checkpoints, header);
    }
    const trusted = kmsStreamKeys(engine);
    const keysFor = async (seg: SegmentState): Promise<StreamKeys | null> =>
      seg.header.keys === 'forward-secure' ? (anchors?.keysFor(seg.header) ?? null) : trusted;
    const first = await keysFor(firstSegment(sf));
    if (first === null) {
      // a forward-secure stream whose nonce was not shipped: nothing in it can be checked
      anchors!.finish([{ streamId: header.streamId, header, last: null, closed: false }]);
      return report(issues, t0, sf, null, null, anchors!.summary);
    }
    if (!(await first.engineFor(0).verify(headerMacInput(sf.streamId, sf.headerBytes), sf.headerMac))) {
      issues.add({
        kind: 'sidecar-header',
        count: 1,
        message: `the sidecar header MAC does not verify with key ${engine.keyArn}: the header was altered`,
      });
      return report(issues, t0, sf, null, null, anchors?.summary);
    }
    const state = await scanSidecar(
      sf,
      keysFor,
      issues,
      anchors ? (c, seg) => anchors!.visit(seg.header.streamId, c) : undefined,
    );
    anchors?.finish(sidecarStreams(sf, state));
    const keys = new Map<SegmentState, StreamKeys>();
    for (const seg of state.segments) {
      const k = await keysFor(seg);
      if (k === null) return report(issues, t0, sf, state, null, anchors?.summary); // (anchor-missing, reported)
      keys.set(seg, k);
    }
    const log = await alignLog(input, sf, state, (seg) => keys.get(seg) ?? trusted, issues, opts);
    return report(issues, t0, sf, state, log, anchors?.summary);
  } finally {
    anchors?.destroy();
    await sf.fh.close();
  }
}

function sidecarStreams(sf: SidecarFile, state: SidecarState): SidecarStream[] {
  if (state.segments.length === 0)
    return [{ streamId: sf.header.streamId, header: null, last: null, closed: state.closed }];
  return state.segments.map((seg) => ({
    streamId: seg.header.streamId,
    header: seg.header.version >= 3 ? seg.header : null,
    headerBytes: seg.headerBytes,
    last: seg.last ? { index: seg.last.index, records: seg.last.records, timeMs: seg.last.timeMs } : null,
    closed: seg.closed,
  }));
}

/** Streams the log through the fast path and the aligner; returns what it saw. */
async function alignLog(
  input: LogInput,
  sf: SidecarFile,
  state: SidecarState,
  keysOf: (seg: SegmentState) => StreamKeys,
  issues: IssueLog,
  opts: VerifyLogOptions,
) {
  const { header, streamId, macLength: L } = sf;
  const n = state.signed;
  const window = new MacWindow(macSource(sf, state, keysOf, issues), n);
  const keys = new KeyMap(keyRuns(state, keysOf, sf));

  /** Which of `seqs` the record was signed as: a few MACs, on this thread (a worker round trip costs more). */
  const match: Matcher = (r, seqs) => {
    const stride = MAC_INPUT_PREFIX + r.payload.length;
    // the candidates in order, a packed call for each run of them under one key
    for (let a = 0; a < seqs.length; ) {
      const run = keys.at(seqs[a]!);
      let b = a + 1;
      while (b < seqs.length && keys.at(seqs[b]!) === run) b++;
      const m = b - a;
      const data = Buffer.allocUnsafe(stride * m);
      const offsets = new Uint32Array(m + 1);
      const macs = Buffer.allocUnsafe(L * m);
      for (let i = 0; i < m; i++) {
        writePrefix(data, i * stride, run.streamId, seqs[a + i]!, r.kind);
        r.payload.copy(data, i * stride + MAC_INPUT_PREFIX);
        offsets[i + 1] = (i + 1) * stride;
        window.get(seqs[a + i]!).copy(macs, i * L);
      }
      const res = run.engine.verifyPackedSync(data, offsets, macs);
      for (let i = 0; i < m; i++) if (res[i] === 1) return seqs[a + i]!;
      a = b;
    }
    return -1;
  };
  const aligner = new Aligner({
    signed: n,
    window: opts.window ?? 1024,
    // a version-2+ sidecar covers what was signed so far; so does a cut version-1 sidecar
    unsignedTail: header.version >= 2 || state.truncated,
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
    const res = keys.verify(batch, lo, streamId, window.macs(lo, batch.count, scratch), results);
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
    ...(h?.logId
      ? {
          logId: h.logId,
          keys: h.keys,
          streams: (state?.segments ?? []).map((seg) => ({
            streamId: seg.header.streamId,
            records: seg.last?.records ?? seg.start.records,
            checkpoint: seg.last?.index ?? null,
            closed: seg.closed,
          })),
        }
      : {}),
    ...(anchors ? { anchors } : {}),
    elapsedMs: performance.now() - t0,
  };
}

/**
 * Which key checks which signed record: the runs of keyRuns(), one for a
 * kms-keyed sidecar (then a batch is one packed call, as it always was), one
 * per stream and key epoch for a forward-secure one.
 */
class KeyMap {
  constructor(private readonly runs: KeyRun[]) {}

  /** The run holding seq `s`. */
  at(s: number): KeyRun {
    const { runs } = this;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[mid]!.seq <= s) lo = mid;
      else hi = mid - 1;
    }
    return runs[lo]!;
  }

  /**
   * Verifies a batch whose record i is checked as signed record `lo + i`:
   * split where the key changes, each part under its stream id (written into
   * the records' MAC inputs when it is not the framer's) and its key.
   */
  async verify(
    batch: RecordBatch,
    lo: number,
    framerStream: Buffer,
    macs: Buffer,
    results: Uint8Array,
  ): Promise<Uint8Array> {
    const { data, offsets, count } = batch;
    const first = this.at(lo);
    if (this.at(lo + count - 1) === first && first.streamId.equals(framerStream))
      return first.engine.verifyPacked(data, offsets, macs, results); // one key: one call, as for a kms-keyed sidecar
    const L = first.engine.macLength;
    const parts: Promise<Uint8Array>[] = [];
    for (let a = 0; a < count; ) {
      const run = this.at(lo + a);
      let b = a + 1;
      while (b < count && this.at(lo + b) === run) b++;
      if (!run.streamId.equals(framerStream))
        for (let i = a; i < b; i++) data.set(run.streamId, offsets[i]! + PREFIX_STREAM_ID);
      const base = offsets[a]!;
      const sub = new Uint32Array(b - a + 1);
      for (let i = a; i <= b; i++) sub[i - a] = offsets[i]! - base;
      parts.push(
        run.engine.verifyPacked(
          data.subarray(base, offsets[b]!),
          sub,
          macs.subarray(a * L, b * L),
          results.subarray(a, b),
        ),
      );
      a = b;
    }
    await Promise.all(parts);
    return results.subarray(0, count);
  }
}
