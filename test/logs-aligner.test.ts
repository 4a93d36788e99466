/**
 * The Aligner on synthetic sequences: no files, no MACs. A record "is" the
 * signed record it carries (or none: a forgery); the matcher answers from
 * that, as a MAC check would. Each case states what happened to the log and
 * exactly which issues must come out.
 */
import { describe, expect, it } from 'vitest';
import { Aligner, type AlignRecord } from '../src/logs/aligner.js';
import { IssueLog } from '../src/logs/issues.js';

const FORGED = -1;

interface Run {
  issues: { kind: string; line?: number; signedRecord?: number; count: number }[];
  verified: number;
  matchedAny: boolean;
  matcherCalls: number;
}

/**
 * Feeds a log whose record i is signed record `log[i]` (FORGED: none) to an
 * aligner over `signed` signed records. With `hints`, every record comes with
 * the driver's batch check at its own index (as when d = 0).
 */
function align(
  log: number[],
  signed: number,
  opts: { window?: number; unsignedTail?: boolean; hints?: boolean } = {},
): Run {
  const issues = new IssueLog(10_000);
  let matcherCalls = 0;
  const aligner = new Aligner({
    signed,
    window: opts.window ?? 16,
    unsignedTail: opts.unsignedTail ?? false,
    issue: (i) => issues.add(i),
    match: (r, seqs) => {
      matcherCalls++;
      const truth = r.payload.readInt32BE(0);
      for (const s of seqs) if (s === truth) return s;
      return -1;
    },
  });
  log.forEach((truth, i) => {
    const payload = Buffer.alloc(4);
    payload.writeInt32BE(truth);
    const r: AlignRecord = {
      index: i,
      start: i * 10,
      kind: 0,
      payload,
      hintSeq: opts.hints ? i : -1,
      hintOk: opts.hints ? truth === i : false,
    };
    aligner.push(r);
  });
  aligner.end();
  return {
    issues: issues.done().map(({ kind, line, signedRecord, count }) => ({ kind, line, signedRecord, count })),
    verified: aligner.verified,
    matchedAny: aligner.matchedAny,
    matcherCalls,
  };
}

const seq = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('Aligner: one change at a time', () => {
  it('an intact log: no issue, every record verified, and with hints no MAC is recomputed', () => {
    expect(align(seq(50), 50)).toMatchObject({ issues: [], verified: 50 });
    expect(align(seq(50), 50, { hints: true })).toMatchObject({ issues: [], verified: 50, matcherCalls: 0 });
    expect(align([], 0)).toMatchObject({ issues: [], verified: 0, matchedAny: false });
  });

  it('modified records, alone and in a run', () => {
    const log = seq(30);
    log[4] = FORGED;
    log.splice(10, 3, FORGED, FORGED, FORGED);
    expect(align(log, 30).issues).toEqual([
      { kind: 'modified', line: 5, signedRecord: 5, count: 1 },
      { kind: 'modified', line: 11, signedRecord: 11, count: 3 },
    ]);
  });

  it('inserted records, at the start, inside, and at the end of a log the sidecar says is complete', () => {
    const log = [FORGED, ...seq(10), FORGED, FORGED, ...seq(10, 10), FORGED];
    expect(align(log, 20).issues).toEqual([
      { kind: 'inserted', line: 1, signedRecord: undefined, count: 1 },
      { kind: 'inserted', line: 12, signedRecord: undefined, count: 2 },
      { kind: 'inserted', line: 24, signedRecord: undefined, count: 1 },
    ]);
  });

  it('deleted records report the line they were missing before', () => {
    const log = seq(30).filter((s) => s !== 0 && (s < 12 || s > 14));
    expect(align(log, 30).issues).toEqual([
      { kind: 'deleted', line: 1, signedRecord: 1, count: 1 },
      { kind: 'deleted', line: 12, signedRecord: 13, count: 3 },
    ]);
  });

  it('reordered: a swap, a move earlier, a move later', () => {
    const swap = seq(20);
    [swap[3], swap[4]] = [swap[4]!, swap[3]!];
    const r = align(swap, 20);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]!.kind).toBe('reordered');

    const earlier = seq(20);
    earlier.splice(2, 0, ...earlier.splice(15, 1));
    expect(align(earlier, 20).issues).toEqual([{ kind: 'reordered', line: 3, signedRecord: 16, count: 1 }]);

    const later = seq(20);
    later.splice(15, 0, ...later.splice(2, 1));
    expect(align(later, 20).issues).toEqual([{ kind: 'reordered', line: 16, signedRecord: 3, count: 1 }]);
  });

  it('the log cut short: log-truncated as one range, skipping records seen earlier', () => {
    expect(align(seq(25), 30).issues).toEqual([{ kind: 'log-truncated', line: undefined, signedRecord: 26, count: 5 }]);
    // signed record 28 moved to the top, then the log cut after 24: 26-27 and 29-30 are missing at the end
    const log = [27, ...seq(25)];
    expect(align(log, 30, { window: 64 }).issues).toEqual([
      { kind: 'reordered', line: 1, signedRecord: 28, count: 1 },
      { kind: 'log-truncated', line: undefined, signedRecord: 26, count: 2 },
      { kind: 'log-truncated', line: undefined, signedRecord: 29, count: 2 },
    ]);
  });

  it('records after the last signed one: unsigned (a sidecar still being written), or inserted (a sidecar that says the log ended)', () => {
    const log = [...seq(10), FORGED, FORGED, FORGED];
    expect(align(log, 10, { unsignedTail: true }).issues).toEqual([
      { kind: 'unsigned', line: 11, signedRecord: undefined, count: 3 },
    ]);
    expect(align(log, 10, { unsignedTail: false }).issues).toEqual([
      { kind: 'inserted', line: 11, signedRecord: undefined, count: 3 },
    ]);
    // nothing signed yet: everything unsigned, and no record "matched"
    expect(align([FORGED, FORGED], 0, { unsignedTail: true })).toMatchObject({
      issues: [{ kind: 'unsigned', line: 1, count: 2 }],
      matchedAny: false,
    });
  });

  it('a run longer than the window is paired positionally: modified, not a cascade of inserted + deleted', () => {
    const log = seq(100).map((s) => (s >= 10 && s < 60 ? FORGED : s));
    expect(align(log, 100, { window: 8 }).issues).toEqual([
      { kind: 'modified', line: 11, signedRecord: 11, count: 50 },
    ]);
  });

  it('a move farther than the window is caught as a deletion and an insertion (the documented limit)', () => {
    const log = seq(100);
    log.splice(80, 0, ...log.splice(5, 1));
    expect(align(log, 100, { window: 8 }).issues).toEqual([
      { kind: 'deleted', line: 6, signedRecord: 6, count: 1 },
      { kind: 'inserted', line: 81, signedRecord: undefined, count: 1 },
    ]);
  });

  it('nothing matches at all: matchedAny stays false (the driver reports foreign-sidecar)', () => {
    const r = align(
      Array.from({ length: 300 }, () => FORGED),
      300,
      { window: 8 },
    );
    expect(r.matchedAny).toBe(false);
    expect(r.verified).toBe(0);
  });
});

describe('Aligner: driver API', () => {
  it('inOrder (the fast path), clean, exhausted, beyond, seqOffset', () => {
    const issues = new IssueLog(100);
    const a = new Aligner({ signed: 10, window: 8, unsignedTail: true, issue: (i) => issues.add(i), match: () => -1 });
    expect(a.clean).toBe(true);
    a.inOrder(10);
    expect(a.expected).toBe(10);
    expect(a.exhausted).toBe(true);
    a.beyond(10, 100, 4);
    a.beyond(14, 140, 2);
    a.end();
    expect(issues.done().map(({ kind, line, count }) => ({ kind, line, count }))).toEqual([
      { kind: 'unsigned', line: 11, count: 6 },
    ]);
    expect(a.verified).toBe(10);

    const b = new Aligner({ signed: 10, window: 8, unsignedTail: false, issue: () => {}, match: () => -1 });
    const rec = (index: number, hintOk: boolean): AlignRecord => ({
      index,
      start: index,
      kind: 0,
      payload: Buffer.alloc(1),
      hintSeq: index,
      hintOk,
    });
    b.push(rec(0, false)); // deferred: needs the next record as a peek
    expect(b.clean).toBe(false);
    expect(b.seqOffset(1)).toBe(0); // record 0 is still expected at seq 0
    b.push(rec(1, true));
    b.settle(); // record 1 is in order at e: settled now, the fast path may take over
    expect(b.reach().lo).toBeLessThanOrEqual(b.expected - 8);
  });
});

describe('Aligner: randomised', () => {
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };

  it('2000 logs with one random change: exactly the issue of that change; never a false alarm', () => {
    for (let k = 0; k < 2000; k++) {
      const n = 20 + rnd(200);
      const log = seq(n);
      const op = ['modify', 'insert', 'delete', 'move', 'none'][k % 5]!;
      const i = rnd(n);
      let expected: Record<string, number> = {};
      if (op === 'modify') {
        log[i] = FORGED;
        expected = { modified: 1 };
      } else if (op === 'insert') {
        log.splice(i, 0, FORGED);
        expected = { inserted: 1 };
      } else if (op === 'delete') {
        log.splice(i, 1);
        expected = i === n - 1 ? { 'log-truncated': 1 } : { deleted: 1 };
      } else if (op === 'move') {
        // within the window, forward or (at the end) backward
        const dist = 1 + rnd(30);
        const j = i + dist < n ? i + dist : i - dist >= 0 ? i - dist : i === 0 ? 1 : i - 1;
        log.splice(j, 0, ...log.splice(i, 1));
        expected = { reordered: 1 };
      }
      const r = align(log, n, { window: 64, hints: k % 2 === 0 });
      const counts: Record<string, number> = {};
      for (const x of r.issues) counts[x.kind] = (counts[x.kind] ?? 0) + x.count;
      expect(counts, `${op} at ${i} of ${n} (case ${k})`).toEqual(expected);
      if (op === 'none') expect(r.verified).toBe(n);
    }
  });

  it('intact logs of every length, with and without hints: no issue', () => {
    for (let n = 0; n < 300; n += 7) {
      expect(align(seq(n), n, { hints: true }).issues).toEqual([]);
      expect(align(seq(n), n, { window: 8 }).issues).toEqual([]);
    }
  });
});
