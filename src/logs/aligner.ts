/**
 * Aligns the records of a log with the records its sidecar signed and names
 * every difference. Synchronous and free of I/O: records and match results
 * in, issues out. The driver (verify.ts) reads, batches and checks MACs; it
 * hands over only the records its fast path could not settle.
 *
 * Because every record MAC binds its sequence number, a record that verifies
 * against seq `s` *is* signed record `s`. The aligner keeps `e`, the next
 * signed seq expected, and for a record that does not match `e` asks the
 * matcher about the candidates that could explain it: the signed records
 * skipped earlier and not yet seen (`missing`, the last W of them) and the
 * next W signed records.
 *
 *   · matches a missing one                 → reordered (moved later)
 *   · matches one ahead, and the next
 *     record matches `e`                    → reordered (moved earlier)
 *   · matches one ahead                     → jump: the records in between
 *                                             were deleted (or are found
 *                                             later, as moved)
 *   · matches nothing                       → joins the pending "run"
 *
 * When a match ends a run, the run's records are paired with the skipped
 * signed records of the gap: pairs are "modified", surplus records
 * "inserted", surplus signed records "deleted" (reported once they are more
 * than W behind, so that a later reorder can still claim them). At the end,
 * signed records never seen after the last match are "log truncated";
 * records after the last signed one are "unsigned" (or "inserted" when the
 * sidecar says the log ended there).
 *
 * A record is only ever reported against evidence (a MAC that does not verify
 * at its expected place), so an intact log gives no issue at all. Limits
 * (docs/log-format.md): moves and deletions farther than W are reported as
 * modified/inserted/deleted instead of reordered; after long runs of
 * failures the exhaustive search is sampled, and it stops after a budget of
 * candidate MACs.
 */
import type { FoundIssue } from './issues.js';

export interface AlignRecord {
  /** 0-based record number in the log. */
  index: number;
  /** Byte offset of the record in the log. */
  start: number;
  /** For the matcher: the MAC input's kind byte and payload (raw record or its digest). */
  kind: number;
  payload: Buffer;
  /** The seq the driver's batch check tried this record at, and whether it verified there. */
  hintSeq: number;
  hintOk: boolean;
}

/** The first of `seqs` (all signed, never empty) whose MAC verifies for the record, or -1. */
export type Matcher = (record: AlignRecord, seqs: readonly number[]) => number;

export interface AlignerOptions {
  /** Signed records: seqs 0 .. signed-1 exist. */
  signed: number;
  /** W: how far a moved or deleted record is searched for. */
  window: number;
  /** Records after the last signed one: `unsigned` (true) or `inserted` (the sidecar says the log ended there). */
  unsignedTail: boolean;
  match: Matcher;
  issue: (i: FoundIssue) => void;
}

/** After this many unmatched records in a row, the full search runs on every 64th record only. */
const FULL_SEARCH_RUN = 16;
/** Candidate MACs the search may spend in all; then classification continues positionally. */
const SEARCH_BUDGET = 50_000_000;
/** Records after which, if none has matched, the sidecar is probably another log's: stop searching until one does. */
const FOREIGN_AFTER = 256;

export class Aligner {
  /** Records found in order at their signed place. */
  verified = 0;
  /** Whether any record matched a signed record. */
  matchedAny = false;

  private readonly n: number;
  private readonly W: number;
  private e = 0;
  private foreign = false;
  private budget = SEARCH_BUDGET;
  private processed = 0;
  /** Ascending seqs < e that were skipped; entries may be stale (see missingSet). */
  private readonly missing: number[] = [];
  /** seq → the line before which it was expected (where it went missing). */
  private readonly missingSet = new Map<number, number>();
  /** Seqs > e already seen (moved earlier). */
  private readonly ahead = new Set<number>();
  /** Consecutive records that matched nothing yet (copies). */
  private readonly run: AlignRecord[] = [];
  /** The last record pushed (a copy): processed when the next one arrives, which may be needed as a peek. */
  private deferred: AlignRecord | null = null;

  constructor(private readonly opts: AlignerOptions) {
    this.n = opts.signed;
    this.W = Math.max(8, opts.window);
  }

  /** The next signed seq expected. */
  get expected(): number {
    return this.e;
  }

  /** Nothing pending: the next records may be checked by the driver's fast path at `expected`. */
  get clean(): boolean {
    return this.run.length === 0 && this.deferred === null && this.ahead.size === 0;
  }

  /** Every signed record is accounted for: all further records are beyond the signed end. */
  get exhausted(): boolean {
    return this.e >= this.n && this.clean && this.missingSet.size === 0;
  }

  /** The seqs the matcher may be asked about by the next push/settle/end: [lo, hi). */
  reach(): { lo: number; hi: number } {
    return { lo: this.e - this.W - 1, hi: this.e + this.W + 2 };
  }

  /**
   * Where the driver should expect the record `nextIndex` (the first it has not
   * handed over yet): as the difference seq − index. A pending run most often
   * is a modified stretch, so the records after it are expected after it.
   */
  seqOffset(nextIndex: number): number {
    return this.e + this.run.length - (this.deferred ? this.deferred.index : nextIndex);
  }

  /** The driver's fast path found `count` records in order at `expected` (only when clean). */
  inOrder(count: number): void {
    this.matchedAny = true;
    this.processed += count;
    this.verified += count;
    this.advance(this.e + count);
  }

  /** `count` records from `index` (at byte `start`) when exhausted: nothing can match them. */
  beyond(index: number, start: number, count: number): void {
    this.processed += count;
    this.opts.issue({ kind: this.opts.unsignedTail ? 'unsigned' : 'inserted', line: index + 1, offset: start, count });
  }

  /** The next record of the log (copied: the caller may reuse its buffers). */
  push(r: AlignRecord): void {
    if (this.deferred) this.step(this.deferred, r);
    this.deferred = copyRecord(r);
  }

  /**
   * At the end of a batch: settles the deferred record now if it is in order
   * (it needs no peek at the next one), so the next batch can take the fast path.
   */
  settle(): void {
    const last = this.deferred;
    if (last && this.run.length === 0 && last.hintOk && last.hintSeq === this.e && !this.ahead.has(this.e)) {
      this.deferred = null;
      this.step(last, null);
    }
  }

  /** The log has ended: resolves what is pending and reports what was never seen. */
  end(): void {
    if (this.deferred) {
      this.step(this.deferred, null);
      this.deferred = null;
    }
    // pair the run with the signed records left, in order
    let k = 0;
    let s = this.e;
    for (; s < this.n && k < this.run.length; s++) {
      if (this.ahead.has(s)) continue;
      this.modified(this.run[k++]!, s);
    }
    for (; k < this.run.length; k++) this.unmatched(this.run[k]!);
    this.run.length = 0;
    for (const m of this.missing) this.deleted(m);
    // the rest was cut off, except records seen earlier (moved)
    const seen = [...this.ahead].filter((a) => a >= s).sort((a, b) => a - b);
    for (const a of [...seen, this.n]) {
      if (a > s) this.opts.issue({ kind: 'log-truncated', signedRecord: s + 1, count: Math.min(a, this.n) - s });
      s = a + 1;
    }
  }

  private step(r: AlignRecord, next: AlignRecord | null): void {
    this.processed++;
    const o = this.find(r);
    if (o >= 0) {
      this.matchedAny = true;
      this.foreign = false;
    } else if (!this.matchedAny && !this.foreign && this.n > 0 && this.processed >= Math.min(FOREIGN_AFTER, this.n)) {
      // nothing matched yet: probably a sidecar of another log; stop the window search (it would find
      // nothing) until something matches
      this.foreign = true;
    }
    if (o < 0) {
      this.run.push(r);
      if (this.run.length > this.W) {
        const head = this.run.shift()!;
        if (this.e < this.n) {
          this.modified(head, this.e);
          this.advance(this.e + 1);
        } else this.unmatched(head);
      }
      return;
    }
    if (o < this.e) {
      this.missingSet.delete(o);
      this.reordered(r, o);
      return;
    }
    if (o > this.e && this.run.length === 0 && next && this.e < this.n && this.tryMatch(next, [this.e]) === this.e) {
      this.ahead.add(o);
      this.reordered(r, o);
      return;
    }
    this.resolveRun(o, r);
    this.verified++;
  }

  /** Which signed record `r` is, searching the likely places first; -1 if none. */
  private find(r: AlignRecord): number {
    const { e, n, run, ahead, missing, missingSet } = this;
    if (e < n && this.tryMatch(r, [e]) === e) return e;
    const cheap = this.foreign || this.budget <= 0 || (run.length >= FULL_SEARCH_RUN && run.length % 64 !== 0);
    if (cheap) {
      const p = e + run.length;
      return p !== e && !ahead.has(p) ? this.tryMatch(r, [p]) : -1;
    }
    // the next record (a swap or a single deletion), where the current run would put it, and the
    // records skipped earlier (a move) — then the whole window
    const likely: number[] = [];
    for (const s of [e + 1, e + run.length, e + run.length + 1])
      if (s > e && !ahead.has(s) && !likely.includes(s)) likely.push(s);
    let recent = 0;
    for (let i = missing.length - 1; i >= 0 && recent < 32; i--) {
      if (missingSet.has(missing[i]!)) {
        likely.push(missing[i]!);
        recent++;
      }
    }
    const hit = this.tryMatch(r, likely);
    if (hit >= 0) return hit;
    const seqs: number[] = [];
    for (let i = missing.length - 1; i >= 0; i--)
      if (missingSet.has(missing[i]!) && !likely.includes(missing[i]!)) seqs.push(missing[i]!);
    for (let s = e + 1; s < Math.min(n, e + 1 + this.W); s++) if (!ahead.has(s) && !likely.includes(s)) seqs.push(s);
    return this.tryMatch(r, seqs);
  }

  /** The first of `seqs` the record was signed as, or -1; the driver's hint saves a MAC. */
  private tryMatch(r: AlignRecord, seqs: readonly number[]): number {
    const cand: number[] = [];
    for (const s of seqs) {
      if (s < 0 || s >= this.n) continue;
      if (s === r.hintSeq) {
        if (r.hintOk) return s;
        continue;
      }
      cand.push(s);
    }
    if (!cand.length) return -1;
    this.budget -= cand.length;
    return this.opts.match(r, cand);
  }

  /** Pairs the run with the unmatched signed records in [e, o) and moves e past o. */
  private resolveRun(o: number, at: AlignRecord): void {
    let k = 0;
    for (let s = this.e; s < o; s++) {
      if (this.ahead.delete(s)) continue;
      const r = this.run[k];
      if (r) {
        this.modified(r, s);
        k++;
      } else {
        this.missing.push(s);
        this.missingSet.set(s, at.index + 1);
      }
    }
    for (; k < this.run.length; k++) this.unmatched(this.run[k]!);
    this.run.length = 0;
    this.advance(o + 1);
  }

  private advance(to: number): void {
    this.e = to;
    while (this.ahead.has(this.e)) this.ahead.delete(this.e++);
    while (this.missing.length && this.missing[0]! < this.e - this.W) this.deleted(this.missing.shift()!);
  }

  private deleted(s: number): void {
    const before = this.missingSet.get(s);
    if (this.missingSet.delete(s)) this.opts.issue({ kind: 'deleted', line: before, signedRecord: s + 1, count: 1 });
  }

  private modified(r: AlignRecord, s: number): void {
    this.opts.issue({ kind: 'modified', line: r.index + 1, offset: r.start, signedRecord: s + 1, count: 1 });
  }

  private reordered(r: AlignRecord, s: number): void {
    this.opts.issue({ kind: 'reordered', line: r.index + 1, offset: r.start, signedRecord: s + 1, count: 1 });
  }

  private unmatched(r: AlignRecord): void {
    const kind = this.e >= this.n && this.opts.unsignedTail ? 'unsigned' : 'inserted';
    this.opts.issue({ kind, line: r.index + 1, offset: r.start, count: 1 });
  }
}

function copyRecord(r: AlignRecord): AlignRecord {
  return { ...r, payload: Buffer.from(r.payload) };
}
