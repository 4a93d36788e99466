/**
 * Verifies a log against its sidecar in constant memory and classifies every
 * difference.
 *
 * Fast path: record j is assumed to be signed record `j + d` (d starts at 0
 * and changes only when records were inserted or deleted); a whole batch is
 * checked in one packed verify call on the worker threads. A batch with any
 * failure goes through the aligner, record by record:
 *
 *  - `e` is the next signed sequence number expected. A record that matches
 *    `e` is in order.
 *  - Otherwise the record is tried against the candidates that could explain
 *    it: the signed records skipped earlier and not yet seen (`missing`, the
 *    last W of them) and the next W signed records. Because every MAC binds
 *    its sequence number, a match tells exactly which signed record this is.
 *      · matches a missing one          → reordered (moved later)
 *      · matches one ahead, and the next
 *        record matches `e`             → reordered (moved earlier)
 *      · matches one ahead              → jump: the records in between were
 *                                         deleted (or are found later as moved)
 *      · matches nothing                → joins the pending "run"
 *  - When a match ends a run, the run's records are paired with the skipped
 *    signed records of the gap: pairs are "modified", surplus records are
 *    "inserted", surplus signed records "deleted" (reported once they are
 *    more than W behind, so that a later reorder can still claim them).
 *  - At the end, signed records never seen after the last match are "log
 *    truncated"; records beyond a truncated sidecar are "unsigned".
 *
 * A record is only ever reported against evidence (a MAC that does not
 * verify at its expected place), so an intact log gives no issue at all.
 * Limits (documented in docs/log-format.md): moves and deletions farther than
 * the window W are reported as modified/inserted/deleted instead of
 * reordered; after long failure runs the exhaustive search is sampled.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { assertLogInput, assertPath, logChunks, type FilePath, type LogInput } from './input.js';
import { assertKeyOptions, engineFor, type KeyOptions } from './kms-engine.js';
import {
  MAC_INPUT_PREFIX,
  SidecarFormatError,
  TRAILER_FIXED,
  TRAILER_MAGIC,
  decodeHeader,
  framingDelimiter,
  headerMacInput,
  readU64,
  trailerMacInput,
  writePrefix,
} from './format.js';
import { RecordFramer, type RecordBatch } from './framer.js';
import type { Progress } from './sign.js';

export type IssueKind =
  | 'modified'
  | 'inserted'
  | 'deleted'
  | 'reordered'
  | 'log-truncated'
  | 'unsigned'
  | 'sidecar-truncated'
  | 'sidecar-trailer'
  | 'sidecar-header'
  | 'wrong-key'
  | 'foreign-sidecar';

export const ISSUE_KINDS: readonly IssueKind[] = [
  'modified',
  'inserted',
  'deleted',
  'reordered',
  'log-truncated',
  'unsigned',
  'sidecar-truncated',
  'sidecar-trailer',
  'sidecar-header',
  'wrong-key',
  'foreign-sidecar',
];

export interface VerifyIssue {
  kind: IssueKind;
  /** 1-based line (record) number in the log as it is now; first of `count`. */
  line?: number;
  /** 1-based number of the record as signed (its sequence number + 1); first of `count`. */
  signedRecord?: number;
  /** Byte offset of `line` in the log. */
  offset?: number;
  /** How many consecutive lines / signed records this issue covers. */
  count: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Records in the log as it is now. */
  records: number;
  /** Records the sidecar covers (trailer count, or what a truncated sidecar still holds). */
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
  onIssue?: (issue: VerifyIssue) => void;
  onProgress?: (p: Progress) => void;
}

interface Rec {
  index: number;
  start: number;
  kind: number;
  payload: Buffer;
  /** Seq the fast path checked this record against, and its result. */
  hintSeq: number;
  hintOk: boolean;
}

const HEADER_READ = 12 + 2048 + 64;

/** Reads the header and validates the trailer; returns where the records are and how many. */
async function openSidecar(fh: FileHandle, size: number) {
  const head = Buffer.alloc(Math.min(size, HEADER_READ));
  await fh.read(head, 0, head.length, 0);
  const { header, headerBytes, macOffset } = decodeHeader(head);
  const L = header.macLength;
  const streamId = Buffer.from(header.streamId, 'hex');
  const headerMac = head.subarray(macOffset, macOffset + L);
  const recordsAt = macOffset + L;
  return { header, headerBytes, headerMac, recordsAt, streamId, L };
}

class EntryReader {
  private buf: Buffer = Buffer.alloc(0);
  private lo = 0;
  private hi = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly at: number,
    private readonly L: number,
    readonly n: number,
    private readonly span: number,
  ) {}
  /** Entries [lo, hi) read in one positional read (clipped to [0, n)). */
  async range(lo: number, hi: number): Promise<Buffer> {
    lo = Math.max(0, lo);
    hi = Math.min(this.n, hi);
    if (hi <= lo) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe((hi - lo) * this.L);
    const { bytesRead } = await this.fh.read(out, 0, out.length, this.at + lo * this.L);
    if (bytesRead !== out.length) throw new Error('sidecar changed while being read');
    return out;
  }
  private ra: Buffer = Buffer.alloc(0);
  private raLo = 0;
  private raHi = 0;
  /**
   * Entries [lo, hi) for the sequential fast path: served from a read-ahead
   * buffer of 64 Ki entries, so the sidecar costs one read per 16 batches
   * (reads share libuv's thread pool with everything else).
   */
  async sequential(lo: number, hi: number): Promise<Buffer> {
    lo = Math.max(0, lo);
    hi = Math.min(this.n, hi);
    if (hi <= lo) return Buffer.alloc(0);
    if (lo < this.raLo || hi > this.raHi) {
      this.ra = await this.range(lo, Math.max(hi, lo + 65536));
      this.raLo = lo;
      this.raHi = Math.min(this.n, Math.max(hi, lo + 65536));
    }
    return this.ra.subarray((lo - this.raLo) * this.L, (hi - this.raLo) * this.L);
  }
  /** Makes [lo, hi) available to get(). */
  async ensure(lo: number, hi: number): Promise<void> {
    lo = Math.max(0, lo);
    hi = Math.min(this.n, hi);
    if (lo >= this.lo && hi <= this.hi) return;
    const nhi = Math.min(this.n, Math.max(hi, lo + this.span));
    this.buf = await this.range(lo, nhi);
    this.lo = lo;
    this.hi = nhi;
  }
  get(seq: number): Buffer {
    return this.buf.subarray((seq - this.lo) * this.L, (seq - this.lo + 1) * this.L);
  }
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
  const W = Math.max(8, opts.window ?? 1024);
  const maxIssues = opts.maxIssues ?? 1000;
  const fh = await open(sidecarPath, 'r');
  try {
    const size = (await fh.stat()).size;
    const sc = await openSidecar(fh, size);
    const { header, streamId, L, recordsAt } = sc;
    const engine = await engineFor(opts, 'verifyLog', header.macAlgorithm);

    const counts = Object.fromEntries(ISSUE_KINDS.map((k) => [k, 0])) as Record<IssueKind, number>;
    const issues: VerifyIssue[] = [];
    let issuesTruncated = false;
    let pending: VerifyIssue | null = null;
    const flushIssue = (): void => {
      if (!pending) return;
      opts.onIssue?.(pending);
      if (issues.length < maxIssues) issues.push(pending);
      else issuesTruncated = true;
      pending = null;
    };
    const issue = (i: VerifyIssue): void => {
      counts[i.kind] += i.count;
      const p = pending;
      const bySeq = i.kind === 'deleted' || i.kind === 'log-truncated';
      if (
        p &&
        p.kind === i.kind &&
        (p.kind === 'inserted' || p.kind === 'unsigned' || p.kind === 'modified' || bySeq) &&
        (bySeq ? i.line === p.line : p.line === undefined ? i.line === undefined : i.line === p.line + p.count) &&
        (p.signedRecord === undefined ? i.signedRecord === undefined : i.signedRecord === p.signedRecord + p.count)
      ) {
        p.count += i.count;
        p.message = describe(p);
        return;
      }
      flushIssue();
      pending = { ...i, message: i.message || describe(i) };
    };

    const base = {
      keyArn: header.keyArn,
      macAlgorithm: header.macAlgorithm,
      framing: header.framing.type,
      streamId: header.streamId,
    };
    const finish = (records: number, bytes: number, n: number, signedBytes: number | null, verified: number): VerifyReport => {
      flushIssue();
      // found in stream order; reported in log order (sidecar-level issues first)
      const at = (i: VerifyIssue) =>
        i.kind === 'log-truncated' ? Infinity : i.line === undefined ? -1 : i.kind === 'deleted' ? i.line - 0.5 : i.line;
      issues.sort((a, b) => at(a) - at(b));
      const ok = ISSUE_KINDS.every((k) => counts[k] === 0);
      return { ok, records, signedRecords: n, bytes, signedBytes, verified, counts, issues, issuesTruncated, ...base, elapsedMs: performance.now() - t0 };
    };

    // the key: only the one the caller trusts
    if (engine.keyArn !== header.keyArn || engine.algorithm !== header.macAlgorithm) {
      issue({
        kind: 'wrong-key',
        count: 1,
        message:
          `the sidecar was made with key ${header.keyArn} (${header.macAlgorithm}), not the expected key ${engine.keyArn} (${engine.algorithm}): ` +
          'whoever can change the log can sign it again with a key of their own, so a sidecar made with any other key is not trusted',
      });
      return finish(0, 0, 0, null, 0);
    }

    // header MAC
    if (!(await engine.verify(headerMacInput(streamId, sc.headerBytes), sc.headerMac)) || sc.headerMac.length !== L) {
      issue({
        kind: 'sidecar-header',
        count: 1,
        message: `the sidecar header MAC does not verify with key ${engine.keyArn}: the sidecar was signed with another key, or its header was altered`,
      });
      return finish(0, 0, 0, null, 0);
    }

    // trailer
    let n: number;
    let signedBytes: number | null = null;
    let sidecarTruncated = false;
    const T = TRAILER_FIXED + L;
    const tail = Buffer.alloc(Math.max(0, Math.min(T, size - recordsAt)));
    if (tail.length) await fh.read(tail, 0, tail.length, size - tail.length);
    if (tail.length === T && tail.subarray(0, 8).equals(TRAILER_MAGIC)) {
      const count = readU64(tail, 8);
      const logBytes = readU64(tail, 16);
      const consistent = recordsAt + count * L + T === size;
      const macOk = consistent && (await engine.verify(trailerMacInput(streamId, count, logBytes), tail.subarray(TRAILER_FIXED)));
      if (macOk) {
        n = count;
        signedBytes = logBytes;
      } else {
        n = Math.floor((size - recordsAt - T) / L);
        issue({
          kind: 'sidecar-trailer',
          count: 1,
          message: `the sidecar trailer does not verify (it says ${count} records; the sidecar holds ${n}): the trailer or the sidecar length was altered`,
        });
      }
    } else {
      sidecarTruncated = true;
      n = Math.floor((size - recordsAt) / L);
      // a partly cut trailer starts at an entry boundary: drop it
      for (let k = Math.max(0, n - Math.ceil(T / L) - 1); k < n; k++) {
        const at = recordsAt + k * L;
        const m = Buffer.alloc(8);
        if (at + 8 <= size) {
          await fh.read(m, 0, 8, at);
          if (m.equals(TRAILER_MAGIC)) {
            n = k;
            break;
          }
        }
      }
      issue({
        kind: 'sidecar-truncated',
        count: 1,
        message: `the sidecar is truncated: its trailer is missing, so it covers only the first ${n} records and the signed record count is unknown`,
      });
    }

    const reader = new EntryReader(fh, recordsAt, L, n, 4 * W + (opts.batchSize ?? 4096));

    // ---- aligner state
    let e = 0;
    let verified = 0;
    let matchedAny = false;
    let foreign = false;
    let searchBudget = 50_000_000;
    const missing: number[] = []; // ascending seqs < e, skipped; entries may be stale (see missingSet)
    /** seq → the line before which it was expected (where it went missing). */
    const missingSet = new Map<number, number>();
    const ahead = new Set<number>();
    const run: Rec[] = [];
    let deferred: Rec | null = null;
    const RUN_MAX = W;
    const FULL_SEARCH_RUN = 16;

    const lineOf = (r: Rec) => ({ line: r.index + 1, offset: r.start });

    const advance = (to: number): void => {
      e = to;
      while (ahead.has(e)) ahead.delete(e++);
      while (missing.length && missing[0]! < e - W) {
        const s = missing.shift()!;
        const before = missingSet.get(s);
        if (missingSet.delete(s)) issue({ kind: 'deleted', line: before, signedRecord: s + 1, count: 1, message: '' });
      }
    };

    const unmatchedRecord = (r: Rec): void => {
      if (e >= n && sidecarTruncated) issue({ kind: 'unsigned', ...lineOf(r), count: 1, message: '' });
      else issue({ kind: 'inserted', ...lineOf(r), count: 1, message: '' });
    };

    /** Pairs the run with the unmatched signed records in [e, o) and moves e past o. */
    const resolveRun = (o: number, at: Rec | null): void => {
      let k = 0;
      for (let s = e; s < o; s++) {
        if (ahead.delete(s)) continue;
        const r = run[k];
        if (r) {
          issue({ kind: 'modified', ...lineOf(r), signedRecord: s + 1, count: 1, message: '' });
          k++;
        } else {
          missing.push(s);
          missingSet.set(s, at ? at.index + 1 : 0);
        }
      }
      for (; k < run.length; k++) unmatchedRecord(run[k]!);
      run.length = 0;
      advance(o + 1);
    };

    /** Which of `seqs` the record was signed as (first match), or -1. */
    const tryMatch = async (r: Rec, seqs: number[]): Promise<number> => {
      const cand: number[] = [];
      for (const s of seqs) {
        if (s < 0 || s >= n) continue;
        if (s === r.hintSeq) {
          if (r.hintOk) return s;
          continue;
        }
        cand.push(s);
      }
      if (!cand.length) return -1;
      searchBudget -= cand.length;
      let lo = Infinity;
      let hi = -Infinity;
      for (const s of cand) {
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      }
      await reader.ensure(lo, hi + 1);
      const stride = MAC_INPUT_PREFIX + r.payload.length;
      const data = Buffer.allocUnsafe(stride * cand.length);
      const offsets = new Uint32Array(cand.length + 1);
      const macs = Buffer.allocUnsafe(L * cand.length);
      for (let i = 0; i < cand.length; i++) {
        writePrefix(data, i * stride, streamId, cand[i]!, r.kind);
        r.payload.copy(data, i * stride + MAC_INPUT_PREFIX);
        offsets[i + 1] = (i + 1) * stride;
        reader.get(cand[i]!).copy(macs, i * L);
      }
      // a few candidates: on this thread (a worker round trip costs more than the MACs)
      const res = cand.length <= 64 ? engine.verifyPackedSync(data, offsets, macs) : await engine.verifyPacked(data, offsets, macs);
      for (let i = 0; i < cand.length; i++) if (res[i] === 1) return cand[i]!;
      return -1;
    };

    const find = async (r: Rec): Promise<number> => {
      if (e < n && (await tryMatch(r, [e])) === e) return e;
      const cheap = foreign || searchBudget <= 0 || (run.length >= FULL_SEARCH_RUN && run.length % 64 !== 0);
      if (cheap) {
        const p = e + run.length;
        return p !== e && !ahead.has(p) ? tryMatch(r, [p]) : -1;
      }
      // likely places first, on this thread: the next record (a swap or a single deletion), where the
      // current run would put it, and the records skipped earlier (a move) — then the whole window
      const likely: number[] = [];
      for (const s of [e + 1, e + run.length, e + run.length + 1]) if (s > e && !ahead.has(s) && !likely.includes(s)) likely.push(s);
      let pending = 0;
      for (let i = missing.length - 1; i >= 0 && pending < 32; i--) {
        if (missingSet.has(missing[i]!)) {
          likely.push(missing[i]!);
          pending++;
        }
      }
      const hit = await tryMatch(r, likely);
      if (hit >= 0) return hit;
      const seqs: number[] = [];
      for (let i = missing.length - 1; i >= 0; i--) if (missingSet.has(missing[i]!) && !likely.includes(missing[i]!)) seqs.push(missing[i]!);
      for (let s = e + 1; s < Math.min(n, e + 1 + W); s++) if (!ahead.has(s) && !likely.includes(s)) seqs.push(s);
      return tryMatch(r, seqs);
    };

    let processed = 0;
    const step = async (r: Rec, next: Rec | null): Promise<void> => {
      processed++;
      const o = await find(r);
      if (o >= 0) {
        matchedAny = true;
        foreign = false;
      } else if (!matchedAny && !foreign && n > 0 && processed >= Math.min(256, n)) {
        // nothing matched yet: probably a sidecar of another log; stop the window search (it would find
        // nothing) until something matches. Reported at the end only if nothing ever matched.
        foreign = true;
      }
      if (o < 0) {
        run.push(copyRec(r));
        if (run.length > RUN_MAX) {
          const head = run.shift()!;
          if (e < n) {
            issue({ kind: 'modified', ...lineOf(head), signedRecord: e + 1, count: 1, message: '' });
            advance(e + 1);
          } else unmatchedRecord(head);
        }
        return;
      }
      if (o === e) {
        resolveRun(o, r);
        verified++;
        return;
      }
      if (o < e) {
        missingSet.delete(o);
        issue({ kind: 'reordered', ...lineOf(r), signedRecord: o + 1, count: 1, message: '' });
        return;
      }
      if (run.length === 0 && next && e < n && (await tryMatch(next, [e])) === e) {
        ahead.add(o);
        issue({ kind: 'reordered', ...lineOf(r), signedRecord: o + 1, count: 1, message: '' });
        return;
      }
      resolveRun(o, r);
      verified++;
    };

    // ---- fast path and batching
    const framer = new RecordFramer({
      streamId,
      delimiter: framingDelimiter(header.framing),
      digest: header.digest,
      batchSize: opts.batchSize,
    });
    const inflight = Math.max(1, opts.inflight ?? 2);
    type Job = { batch: RecordBatch; d: number; res: Promise<Uint8Array> };
    const queue: Job[] = [];
    let d = 0; // current assumption: record j is signed record j + d
    let bytesDone = 0;

    const submit = async (batch: RecordBatch): Promise<Job> => {
      if (d !== 0) {
        for (let i = 0; i < batch.count; i++) {
          writePrefix(batch.data, batch.offsets[i]!, streamId, batch.first + i + d, batch.data[batch.offsets[i]! + 24]!);
        }
      }
      const lo = batch.first + d;
      const have = await reader.sequential(lo, lo + batch.count);
      let macs = have;
      if (have.length !== batch.count * L) {
        // the assumed range runs off either end of the sidecar: the missing MACs are zeros (never valid)
        macs = Buffer.alloc(batch.count * L);
        have.copy(macs, Math.max(0, -lo) * L);
      }
      const res = engine.verifyPacked(batch.data, batch.offsets, macs);
      res.catch(() => {});
      return { batch, d, res };
    };

    const handle = async (job: Job, atEnd: boolean): Promise<void> => {
      const { batch } = job;
      const res = await job.res;
      const clean = run.length === 0 && deferred === null && ahead.size === 0 && job.d === e - batch.first;
      let all = clean && batch.first + job.d + batch.count <= n;
      if (all) for (let i = 0; i < batch.count; i++) if (res[i] !== 1) { all = false; break; }
      if (all) {
        matchedAny = true;
        processed += batch.count;
        verified += batch.count;
        advance(e + batch.count);
      } else {
        for (let i = 0; i < batch.count; i++) {
          const o = batch.offsets[i]!;
          const r: Rec = {
            index: batch.first + i,
            start: batch.starts[i]!,
            kind: batch.data[o + 24]!,
            payload: batch.data.subarray(o + MAC_INPUT_PREFIX, batch.offsets[i + 1]!),
            hintSeq: batch.first + i + job.d,
            hintOk: res[i] === 1,
          };
          if (deferred) await step(deferred, r);
          deferred = copyRec(r);
        }
        // the peek is only needed for a record that does not match where expected
        const last = deferred;
        if (last && run.length === 0 && last.hintOk && last.hintSeq === e && !ahead.has(e)) {
          deferred = null;
          await step(last, null);
        }
      }
      if (atEnd && deferred) {
        await step(deferred, null);
        deferred = null;
      }
      // the next unprocessed record is expected at e + run.length (a run is most often a modified stretch)
      d = e + run.length - (deferred ? deferred.index : batch.first + batch.count);
      framer.release(batch); // the aligner copied what it keeps
      bytesDone = batch.end;
      opts.onProgress?.({ records: batch.first + batch.count, bytes: bytesDone });
    };

    const pump = async (batches: RecordBatch[], atEnd: boolean): Promise<void> => {
      for (let b = 0; b < batches.length; b++) {
        queue.push(await submit(batches[b]!));
        while (queue.length > inflight) await handle(queue.shift()!, false);
      }
      if (atEnd) while (queue.length) await handle(queue.shift()!, queue.length === 0);
    };

    for await (const chunk of logChunks(input, 'verifyLog')) await pump(framer.push(chunk), false);
    await pump(framer.end(), true);
    if (deferred) {
      await step(deferred, null);
      deferred = null;
    }
    if (!matchedAny && n > 0 && framer.records > 0) {
      issue({
        kind: 'foreign-sidecar',
        count: 1,
        message: `no record of this log matches the sidecar: it was made for another log (stream ${header.streamId}), or every record was changed`,
      });
    }

    // end of log: pair the run with what is left, the rest was cut off
    let k = 0;
    const tailSeqs: number[] = [];
    for (let s = e; s < n; s++) if (!ahead.has(s)) tailSeqs.push(s);
    for (; k < run.length && k < tailSeqs.length; k++) {
      issue({ kind: 'modified', ...lineOf(run[k]!), signedRecord: tailSeqs[k]! + 1, count: 1, message: '' });
    }
    const extraRecords = run.slice(k);
    const extraSeqs = tailSeqs.slice(k);
    for (const r of extraRecords) unmatchedRecord(r);
    run.length = 0;
    for (const s of missing) {
      const before = missingSet.get(s);
      if (missingSet.delete(s)) issue({ kind: 'deleted', line: before, signedRecord: s + 1, count: 1, message: '' });
    }
    for (const s of extraSeqs) issue({ kind: 'log-truncated', signedRecord: s + 1, count: 1, message: '' });
    return finish(framer.records, framer.bytes, n, signedBytes, verified);
  } catch (err) {
    if (err instanceof SidecarFormatError && err.damaged) {
      return {
        ok: false,
        records: 0,
        signedRecords: 0,
        bytes: 0,
        signedBytes: null,
        verified: 0,
        counts: { ...(Object.fromEntries(ISSUE_KINDS.map((k) => [k, 0])) as Record<IssueKind, number>), 'sidecar-header': 1 },
        issues: [{ kind: 'sidecar-header', count: 1, message: err.message }],
        issuesTruncated: false,
        keyArn: '',
        macAlgorithm: '',
        framing: '',
        streamId: '',
        elapsedMs: performance.now() - t0,
      };
    }
    throw err;
  } finally {
    await fh.close();
  }
}

function copyRec(r: Rec): Rec {
  return { ...r, payload: Buffer.from(r.payload) };
}

function range(first: number | undefined, count: number): string {
  if (first === undefined) return '';
  return count === 1 ? `${first}` : `${first}-${first + count - 1}`;
}

/** One line of human text for an issue. */
export function describe(i: VerifyIssue): string {
  const lines = (i.count === 1 ? 'line ' : 'lines ') + range(i.line, i.count);
  const signed = (i.count === 1 ? 'signed record #' : 'signed records #') + range(i.signedRecord, i.count);
  switch (i.kind) {
    case 'modified':
      return `${lines}: modified (was ${signed})`;
    case 'inserted':
      return `${lines}: inserted (not in the signed log)`;
    case 'unsigned':
      return `${lines}: not covered (the sidecar is truncated)`;
    case 'deleted':
      return `${signed}: deleted (missing before line ${i.line})`;
    case 'reordered':
      return `line ${i.line}: reordered (it is signed record #${i.signedRecord})`;
    case 'log-truncated':
      return `log truncated: ${signed} missing at the end`;
    default:
      return i.message;
  }
}
