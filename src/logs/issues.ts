/**
 * What a verification finds, and how it is reported: issue kinds, the
 * merging of consecutive issues into ranges, the cap on issues listed (counts
 * stay complete), and one line of text per issue.
 */

export type IssueKind =
  // records
  | 'modified'
  | 'inserted'
  | 'deleted'
  | 'reordered'
  | 'log-truncated'
  | 'unsigned'
  // the sidecar
  | 'sidecar-truncated'
  | 'sidecar-trailer'
  | 'sidecar-header'
  | 'sidecar-checkpoint'
  | 'wrong-key'
  | 'foreign-sidecar'
  // checkpoints shipped elsewhere (verify --checkpoints)
  | 'anchor-missing'
  | 'anchor-mismatch'
  | 'anchor-invalid'
  | 'fork'
  | 'signer-silent'
  | 'clock-backwards';

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
  'sidecar-checkpoint',
  'wrong-key',
  'foreign-sidecar',
  'anchor-missing',
  'anchor-mismatch',
  'anchor-invalid',
  'fork',
  'signer-silent',
  'clock-backwards',
];

/**
 * What is not covered, as opposed to what was changed: records the sidecar
 * does not cover yet (`unsigned`: written after its last checkpoint, while
 * the signer runs or after it stopped), a window in which no shipped
 * checkpoint vouches for the log (`signer-silent`: a signer stopped or
 * crashed — or stopped by an intruder), and a signer clock that went back
 * (`clock-backwards`). Each makes a verification not OK; none proves an edit.
 */
const NOT_COVERED: ReadonlySet<IssueKind> = new Set(['unsigned', 'signer-silent', 'clock-backwards']);

/** Every other kind is evidence of tampering. */
export function isTampering(kind: IssueKind): boolean {
  return !NOT_COVERED.has(kind);
}

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
  /** signer-silent, clock-backwards: the window (ISO 8601); a silence still going on has no `to`. */
  from?: string;
  to?: string;
  message: string;
}

/** An issue as found, before merging; `message` defaults to describe(). */
export type FoundIssue = Omit<VerifyIssue, 'message'> & { message?: string };

/** Collects issues: merges runs of one kind into ranges, keeps at most `max`, counts all. */
export class IssueLog {
  readonly counts = Object.fromEntries(ISSUE_KINDS.map((k) => [k, 0])) as Record<IssueKind, number>;
  readonly issues: VerifyIssue[] = [];
  truncated = false;
  private pending: VerifyIssue | null = null;

  constructor(
    private readonly max: number,
    private readonly onIssue?: (issue: VerifyIssue) => void,
  ) {}

  add(i: FoundIssue): void {
    this.counts[i.kind] += i.count;
    const p = this.pending;
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
    this.flush();
    const issue = { ...i, message: '' };
    issue.message = i.message || describe(issue);
    this.pending = issue;
  }

  get tampered(): boolean {
    return ISSUE_KINDS.some((k) => isTampering(k) && this.counts[k] > 0);
  }

  get clean(): boolean {
    return ISSUE_KINDS.every((k) => this.counts[k] === 0);
  }

  /** The issues in log order (sidecar-level issues first). */
  done(): VerifyIssue[] {
    this.flush();
    const at = (i: VerifyIssue) =>
      i.kind === 'log-truncated' ? Infinity : i.line === undefined ? -1 : i.kind === 'deleted' ? i.line - 0.5 : i.line;
    return this.issues.sort((a, b) => at(a) - at(b));
  }

  private flush(): void {
    if (!this.pending) return;
    this.onIssue?.(this.pending);
    if (this.issues.length < this.max) this.issues.push(this.pending);
    else this.truncated = true;
    this.pending = null;
  }
}

function range(first: number | undefined, count: number): string {
  if (first === undefined) return '';
  return count === 1 ? `${first}` : `${first}-${first + count - 1}`;
}

/** One line of human text for a record-level issue (sidecar-level issues carry their own message). */
export function describe(i: VerifyIssue): string {
  const lines = (i.count === 1 ? 'line ' : 'lines ') + range(i.line, i.count);
  const signed = (i.count === 1 ? 'signed record #' : 'signed records #') + range(i.signedRecord, i.count);
  switch (i.kind) {
    case 'modified':
      return `${lines}: modified (was ${signed})`;
    case 'inserted':
      return `${lines}: inserted (not in the signed log)`;
    case 'unsigned':
      return `${lines}: unsigned (after the last record the sidecar covers)`;
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
