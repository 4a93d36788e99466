/**
 * `verify --checkpoints`: the shipped checkpoints (anchors.ts) are the
 * authority over a sidecar, and over the log it belongs to
 * (docs/log-format.md, "Verifying against shipped checkpoints").
 *
 * load() reads the shipped lines and keeps those of the sidecar's log — its
 * log id, and the sidecar's own streams — and a summary of every other log;
 * it verifies every line of the log with the trusted key (a forward-secure
 * stream's keys are re-derived from its shipped nonce: one GenerateMac per
 * stream). keysFor() gives the scan each stream's keys; visit() compares
 * each checkpoint the scan finds with the shipped one; finish() settles:
 *
 *  - anchor-missing: a stream of the sidecar that was not shipped (a log cut
 *    and signed afresh is a new stream: the file holds none of it), a
 *    sidecar that ends below what was shipped for its stream, a trailer
 *    removed, a later segment of the sidecar missing;
 *  - anchor-mismatch: a checkpoint that differs from the one shipped;
 *  - anchor-invalid: a shipped line of the log that does not verify;
 *  - fork: a stream of the log abandoned — no trailer, and no later stream
 *    continues it from its newest checkpoint — or continued twice, or given
 *    two different checkpoints of one index (two signers), or another log
 *    at the same host and path left open (the log started over);
 *  - signer-silent: shipped checkpoints further apart than the maximum gap
 *    (default 3 × the heartbeat the stream declares), and a signer that has
 *    been silent since (a stopped signer: from when, to now);
 *  - clock-backwards: a checkpoint whose time is before the one before it.
 *
 * Pure rules over what was loaded; the only I/O is reading the file and the
 * one GenerateMac per forward-secure stream.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  anchorVerifies,
  parseAnchor,
  streamHeader,
  type CheckpointAnchor,
  type CloseAnchor,
  type StreamAnchor,
} from './anchors.js';
import type { MacEngine } from './engine.js';
import type { SidecarHeader } from './format.js';
import type { FilePath } from './input.js';
import type { IssueLog } from './issues.js';
import { derivedStreamKeys, kmsStreamKeys, type StreamKeys } from './keys.js';

/** A stream of the sidecar being verified, as the scan found it. */
export interface SidecarStream {
  streamId: string;
  /** Its header (version 3; null for a version-2 sidecar or a record stream), and the bytes its MAC covers. */
  header: SidecarHeader | null;
  headerBytes?: Buffer;
  /** Its last checkpoint in the sidecar (index, records, time), or null. */
  last: { index: number; records: number; timeMs: number } | null;
  closed: boolean;
}

/** A shipped checkpoint that verified. */
export interface ShippedCheckpoint {
  index: number;
  mac: string;
  /** DIGEST of the record MACs it seals (base64). */
  digest: string;
  timeMs: number;
  records: number;
  line: number;
}

/** Everything shipped of one stream. */
interface Shipped {
  streamId: string;
  /** Its stream line, once verified: the header (log id, link, heartbeat). */
  start: { anchor: StreamAnchor; header: SidecarHeader; line: number } | null;
  /** Stream lines not yet verified. */
  starts: { anchor: StreamAnchor; line: number }[];
  checkpoints: CheckpointAnchor[];
  closes: CloseAnchor[];
  lines: number[];
  /** After verification: index → the checkpoints shipped (more than one MAC: two signers). */
  verified: Map<number, ShippedCheckpoint[]>;
  closedAt: Set<number>;
  host?: string;
  log?: string;
}

export interface AnchorCheckOptions {
  /** The trusted key. */
  engine: MacEngine;
  issues: IssueLog;
  /** The longest silence allowed between checkpoints (ms); default 3 × the heartbeat the stream declares. */
  maxGapMs?: number;
  /** The path of the log being verified (absolute), to name what the file holds for it. */
  logPath?: string;
  /** The verifier's clock: a signer silent until now (default Date.now). */
  now?: () => number;
}

/** A day: how far a shipped time may lie in the verifier's future before its line is not believed. */
const FUTURE_SLACK_MS = 86_400_000;

export class AnchorCheck {
  private readonly streams = new Map<string, Shipped>();
  private readonly keys = new Map<string, StreamKeys | null>();
  private readonly issues: IssueLog;
  private readonly engine: MacEngine;
  private readonly now: number;
  private logId: string | undefined;
  private sidecarStreams: string[] = [];
  private mismatched = new Set<string>();

  constructor(private readonly opts: AnchorCheckOptions) {
    this.issues = opts.issues;
    this.engine = opts.engine;
    this.now = (opts.now ?? Date.now)();
  }

  /** Shipped, verified checkpoints of the sidecar's streams, and the newest. */
  get summary(): {
    shipped: number;
    newest: { checkpoint: number; records: number; time: string } | null;
    logId: string | null;
    streams: number;
  } {
    let shipped = 0;
    let newest: { checkpoint: number; records: number; time: string } | null = null;
    for (const sid of this.sidecarStreams) {
      const s = this.streams.get(sid);
      if (!s) continue;
      shipped += s.verified.size;
      const n = newestOf(s);
      if (n >= 0) {
        const c = s.verified.get(n)![0]!;
        newest = { checkpoint: n, records: c.records, time: new Date(c.timeMs).toISOString() };
      }
    }
    return { shipped, newest, logId: this.logId ?? null, streams: this.logStreams().length };
  }

  /**
   * Reads the shipped lines, keeping those of the log `first` (the
   * sidecar's first stream; a record stream names no log id: the one its
   * lines carry) belongs to, and verifies them.
   */
  async load(path: FilePath, first: { streamId: string; logId?: string }): Promise<void> {
    this.logId = first.logId;
    this.sidecarStreams = [first.streamId];
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const text of lines) {
      lineNo++;
      const a = parseAnchor(text);
      if (!a) continue;
      let s = this.streams.get(a.streamId);
      if (!s) {
        s = {
          streamId: a.streamId,
          start: null,
          starts: [],
          checkpoints: [],
          closes: [],
          lines: [],
          verified: new Map(),
          closedAt: new Set(),
        };
        this.streams.set(a.streamId, s);
      }
      s.host ??= a.host;
      s.log ??= a.log;
      if (a.streamId === first.streamId) this.logId ??= a.logId;
      // the log's own lines are kept whole; of other logs, the stream line and the newest checkpoint and close
      const ours = a.streamId === first.streamId || (a.logId !== undefined && a.logId === this.logId);
      if (a.type === 'stream') s.starts.push({ anchor: a, line: lineNo });
      else if (a.type === 'checkpoint') {
        if (ours) {
          s.checkpoints.push(a);
          s.lines.push(lineNo);
        } else if (!s.checkpoints[0] || a.checkpoint >= s.checkpoints[0].checkpoint) {
          s.checkpoints[0] = a;
          s.lines[0] = lineNo;
        }
      } else if (ours) s.closes.push(a);
      else if (!s.closes[0] || a.checkpoint >= s.closes[0].checkpoint) s.closes[0] = a;
    }
    // the log's streams first; then, of other logs, only those at the same host and path (a log started over)
    const claimed = (s: Shipped) =>
      s.streamId === first.streamId ||
      s.starts.some((x) => x.anchor.logId === this.logId) ||
      s.checkpoints.some((c) => c.logId === this.logId);
    for (const s of this.streams.values()) if (claimed(s)) await this.verifyStream(s, true);
    const here = this.logStreams().find((s) => s.log !== undefined);
    if (!here) return;
    for (const s of this.streams.values())
      if (!claimed(s) && s.log === here.log && s.host === here.host) await this.verifyStream(s, false);
  }

  /** The keys of a stream of the sidecar: null when it is forward-secure and its nonce was not shipped (or did not verify). */
  async keysFor(header: SidecarHeader): Promise<StreamKeys | null> {
    if (header.keys !== 'forward-secure') return kmsStreamKeys(this.engine);
    if (!this.sidecarStreams.includes(header.streamId)) this.sidecarStreams.push(header.streamId);
    const s = this.streams.get(header.streamId);
    return s?.start && s.start.header.keys === 'forward-secure' ? (this.keys.get(header.streamId) ?? null) : null;
  }

  /** A checkpoint the scan found in stream `streamId` of the sidecar. */
  visit(streamId: string, c: { index: number; records: number; mac: Buffer }): void {
    if (!this.sidecarStreams.includes(streamId)) this.sidecarStreams.push(streamId);
    const shipped = this.streams.get(streamId)?.verified.get(c.index);
    const mac = c.mac.toString('base64');
    if (shipped?.some((x) => x.mac !== mac) && !this.mismatched.has(streamId)) {
      this.mismatched.add(streamId);
      this.issues.add({
        kind: 'anchor-mismatch',
        count: 1,
        message: `checkpoint ${c.index} (record ${c.records}) differs from the one shipped: the log and its sidecar were rewritten or replaced`,
      });
    }
  }

  /** The verified shipped checkpoints of a stream, by index (the first of each). */
  checkpointsOf(streamId: string): ShippedCheckpoint[] {
    const s = this.streams.get(streamId);
    return s ? [...s.verified.values()].map((l) => l[0]!).sort((a, b) => a.index - b.index) : [];
  }

  /** Settles the sidecar (its streams, in order; a record stream is one without a header) against the shipped lines. */
  finish(sidecar: SidecarStream[]): void {
    this.sidecarStreams = sidecar.map((x) => x.streamId);
    this.checkReach(sidecar);
    this.checkDuplicates(sidecar);
    if (sidecar[0]?.header) this.checkForks(sidecar);
    this.checkGaps(sidecar);
  }

  /** Destroys the derived keys. */
  destroy(): void {
    for (const k of this.keys.values()) k?.destroy();
    this.keys.clear();
  }

  // ---------------------------------------------------------------------------------------------

  /** Verifies a stream's lines with its keys; the lines of the log (`ours`) that do not verify are anchor-invalid. */
  private async verifyStream(s: Shipped, ours: boolean): Promise<void> {
    for (const { anchor, line } of s.starts) {
      const h = streamHeader(anchor);
      if (h === null || h.header.keyArn !== this.engine.keyArn || h.header.macAlgorithm !== this.engine.algorithm) {
        if (ours) this.invalid(line, `the stream line of stream ${s.streamId}`);
        continue;
      }
      let keys: StreamKeys | null = null;
      if (h.header.keys === 'forward-secure') {
        if (typeof anchor.nonce !== 'string') {
          if (ours) this.invalid(line, `the stream line of forward-secure stream ${s.streamId} (it has no nonce)`);
          continue;
        }
        keys = await derivedStreamKeys(this.engine, Buffer.from(s.streamId, 'hex'), Buffer.from(anchor.nonce, 'hex'));
      }
      if (await anchorVerifies(anchor, keys ?? this.engine)) {
        s.start = { anchor, header: h.header, line };
        this.keys.set(s.streamId, keys);
        break;
      }
      keys?.destroy();
      if (ours) this.invalid(line, `the stream line of stream ${s.streamId}`);
    }
    const forward = s.start?.header.keys === 'forward-secure';
    // a forward-secure stream's lines verify only with the keys its verified stream line gives
    const keys: MacEngine | StreamKeys | null = forward
      ? this.keys.get(s.streamId)!
      : s.start || ours
        ? this.engine
        : null;
    if (keys === null) return;
    const valid = async (a: CheckpointAnchor | CloseAnchor, what: string, line: number) => {
      const epoch = a.epoch ?? 0;
      // epochs start at 0 and step by one a checkpoint at most: a higher one is forged (and not worth deriving)
      const plausible = !forward || (epoch <= a.checkpoint && epoch <= this.maxEpoch(s));
      if (plausible && (await anchorVerifies(a, keys))) return true;
      if (ours) this.invalid(line, what);
      return false;
    };
    for (let i = 0; i < s.checkpoints.length; i++) {
      const a = s.checkpoints[i]!;
      const line = s.lines[i] ?? 0;
      if (!(await valid(a, `checkpoint ${a.checkpoint} of stream ${s.streamId}`, line))) continue;
      const timeMs = Date.parse(a.time);
      if (timeMs > this.now + FUTURE_SLACK_MS) {
        if (ours) this.invalid(line, `checkpoint ${a.checkpoint} of stream ${s.streamId} (its time is in the future)`);
        continue;
      }
      const list = s.verified.get(a.checkpoint) ?? [];
      if (!list.some((x) => x.mac === a.mac))
        list.push({ index: a.checkpoint, mac: a.mac, digest: a.digest, timeMs, records: a.records, line });
      s.verified.set(a.checkpoint, list);
    }
    for (const a of s.closes) if (await valid(a, `the close of stream ${s.streamId}`, 0)) s.closedAt.add(a.checkpoint);
  }

  /** The highest key epoch a forward-secure stream can have reached by now (its epochs are at least epochMs long). */
  private maxEpoch(s: Shipped): number {
    const h = s.start!.header;
    return Math.floor(Math.max(0, this.now + FUTURE_SLACK_MS - Date.parse(h.createdAt)) / h.epochMs!) + 1;
  }

  private invalid(line: number, what: string): void {
    this.issues.add({
      kind: 'anchor-invalid',
      count: 1,
      message: `shipped ${line ? `line ${line} (${what})` : what} does not verify with the trusted key: the shipped checkpoints were altered`,
    });
  }

  /** The shipped streams of the log (verified stream line naming its log id). */
  private logStreams(): Shipped[] {
    return [...this.streams.values()].filter((s) => s.start?.header.logId === this.logId && this.logId !== undefined);
  }

  /** What the file holds for this log (by log id, else by path, else what it holds at all), for a message. */
  private holdings(): string {
    const streamText = (s: Shipped) => {
      const n = Math.max(newestOf(s), s.checkpoints.at(-1)?.checkpoint ?? -1);
      const c = s.verified.get(n)?.[0];
      return `stream ${s.streamId}${n >= 0 ? ` (through checkpoint ${n}${c ? `, record ${c.records}, ${iso(c.timeMs)}` : ''})` : ''}`;
    };
    const logIdOf = (s: Shipped) => s.start?.header.logId ?? s.starts[0]?.anchor.logId ?? s.checkpoints[0]?.logId;
    const byLog = (set: Shipped[]) => {
      const logs = new Map<string, Shipped[]>();
      for (const s of set) {
        const k = `${s.log ?? '?'} (log id ${logIdOf(s) ?? '-'})`;
        logs.set(k, [...(logs.get(k) ?? []), s]);
      }
      return [...logs]
        .slice(0, 3)
        .map(
          ([k, list]) =>
            `${k}: ${list.slice(0, 3).map(streamText).join(', ')}${list.length > 3 ? ` and ${list.length - 3} more` : ''}`,
        )
        .join('; ');
    };
    const mine = this.logStreams();
    if (mine.length)
      return `The file holds ${mine.length} stream${mine.length > 1 ? 's' : ''} of this log (log id ${this.logId}): ${mine.map(streamText).join(', ')}.`;
    const path = this.opts.logPath;
    const atPath = [...this.streams.values()].filter((s) => path !== undefined && s.log === path);
    if (atPath.length)
      return `The file holds nothing of this log (log id ${this.logId ?? '-'}), but for its path it holds ${byLog(atPath)}.`;
    if (this.streams.size === 0) return 'The file holds no checkpoint at all.';
    return `The file holds nothing of this log (log id ${this.logId ?? '-'})${path ? ` or of ${path}` : ''}; it holds ${byLog([...this.streams.values()])}.`;
  }

  /** The sidecar's streams are shipped, and reach what was shipped of them. */
  private checkReach(sidecar: SidecarStream[]): void {
    const missing: string[] = [];
    for (let i = 0; i < sidecar.length; i++) {
      const seg = sidecar[i]!;
      const s = this.streams.get(seg.streamId);
      const v3 = seg.header !== null;
      if (!s || (v3 ? !s.start : s.verified.size === 0)) {
        missing.push(seg.streamId);
        continue;
      }
      if (seg.headerBytes && s.start && s.start.anchor.header !== seg.headerBytes.toString('base64')) {
        this.issues.add({
          kind: 'anchor-mismatch',
          count: 1,
          message: `the header of stream ${seg.streamId} differs from the one shipped: the sidecar was rewritten`,
        });
      }
      const newest = newestOf(s);
      const last = seg.last;
      if (i === sidecar.length - 1) {
        if (newest >= 0 && (!last || newest > last.index)) {
          const c = s.verified.get(newest)![0]!;
          this.issues.add({
            kind: 'anchor-missing',
            count: 1,
            message:
              `checkpoint ${newest} (record ${c.records}, ${new Date(c.timeMs).toISOString()}) was shipped, but the sidecar ends at ${last ? `checkpoint ${last.index} (record ${last.records})` : 'its header'}: ` +
              'the log and its sidecar were cut, or replaced by an older copy',
          });
        } else if (last && s.closedAt.has(last.index) && !seg.closed) {
          this.issues.add({
            kind: 'anchor-missing',
            count: 1,
            message: `the sidecar was closed at checkpoint ${last.index} (its trailer was shipped), but has no trailer now: it was removed`,
          });
        }
        const next = this.logStreams().find(
          (t) => t.start!.header.previous?.streamId === seg.streamId && t.start!.header.previous?.how === 'restart',
        );
        if (next && newestOf(next) >= 0) {
          this.issues.add({
            kind: 'anchor-missing',
            count: 1,
            message: `stream ${next.streamId} continued this sidecar after a restart (it was shipped through checkpoint ${newestOf(next)}), but the sidecar ends before it: the log and its sidecar were cut, or replaced by an older copy`,
          });
        }
      } else if (newest >= 0 && last && newest > last.index) {
        this.issues.add({
          kind: 'fork',
          count: 1,
          message: `stream ${seg.streamId} was shipped through checkpoint ${newest}, but the sidecar's next stream continues it from checkpoint ${last.index}: two signers, or the sidecar was cut and continued`,
        });
      }
    }
    if (missing.length) {
      const first = missing[0] === sidecar[0]!.streamId;
      this.issues.add({
        kind: 'anchor-missing',
        count: 1,
        message:
          `${first && missing.length === 1 ? "the sidecar's stream" : `stream${missing.length > 1 ? 's' : ''}`} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} in none of the shipped checkpoints: ` +
          `a sidecar its signer did not ship there, or a log signed afresh (cut, or replaced, and signed again with the key). ${this.holdings()}`,
      });
    }
  }

  /** Forks: the log's streams must form one chain, each continued from its newest checkpoint, with one open end at most. */
  /** Two different checkpoints of one index in a stream: two signers wrote it. */
  private checkDuplicates(sidecar: SidecarStream[]): void {
    const nodes = new Set([...this.logStreams(), ...sidecar.map((x) => this.streams.get(x.streamId))]);
    for (const s of nodes) {
      if (!s) continue;
      for (const [index, list] of s.verified)
        if (list.length > 1)
          this.issues.add({
            kind: 'fork',
            count: 1,
            message: `stream ${s.streamId} has ${list.length} different checkpoints ${index} (shipped lines ${list.map((x) => x.line).join(', ')}): two signers wrote one stream`,
          });
    }
  }

  private checkForks(sidecar: SidecarStream[]): void {
    const nodes = this.logStreams().filter(
      (s) => s.verified.size > 0 || sidecar.some((x) => x.streamId === s.streamId),
    );
    const add = (message: string) => this.issues.add({ kind: 'fork', count: 1, message });
    const roots = nodes.filter((s) => !s.start!.header.previous);
    if (roots.length > 1)
      add(
        `the log began ${roots.length} times (streams ${roots.map((s) => s.streamId).join(', ')} continue no other): it was signed afresh under its own log id`,
      );
    for (const s of nodes) {
      const succ = nodes.filter((t) => t.start!.header.previous?.streamId === s.streamId);
      const newest = newestOf(s);
      for (const t of succ) {
        const link = t.start!.header.previous!;
        const shipped = s.verified.get(link.checkpoint);
        if (link.checkpoint < newest)
          add(
            `stream ${s.streamId} went on to checkpoint ${newest} after stream ${t.streamId} continued it from checkpoint ${link.checkpoint}: two signers, or a log cut and signed again`,
          );
        else if (shipped && !shipped.some((x) => x.mac === link.head.toString('base64')))
          add(`stream ${t.streamId} continues a checkpoint ${link.checkpoint} that stream ${s.streamId} never had`);
      }
      if (succ.length > 1)
        add(
          `stream ${s.streamId} is continued by ${succ.length} streams (${succ.map((t) => t.streamId).join(', ')}): two signers`,
        );
    }
    const open = (set: Shipped[]) =>
      set.filter(
        (s) => !s.closedAt.has(newestOf(s)) && !set.some((t) => t.start!.header.previous?.streamId === s.streamId),
      );
    const heads = open(nodes);
    if (heads.length > 1) {
      const mine = sidecar.at(-1)!.streamId;
      const others = heads.filter((s) => s.streamId !== mine);
      const what = (s: Shipped) => {
        const n = newestOf(s);
        return `stream ${s.streamId} (${n >= 0 ? `through checkpoint ${n}, ${new Date(s.verified.get(n)![0]!.timeMs).toISOString()}` : 'no checkpoint'})`;
      };
      add(
        heads.some((s) => s.streamId === mine)
          ? `${others.map(what).join(', ')} of this log ${others.length > 1 ? 'were' : 'was'} abandoned: no trailer, and no later stream continues ${others.length > 1 ? 'them' : 'it'} — a second signer, or a log cut and signed again`
          : `the log has ${heads.length} open ends, ${heads.map(what).join(' and ')}: one was abandoned — a second signer, or a log cut and signed again`,
      );
    }
    // another log at the same host and path, left open: the log started over while a signer had it
    const here = nodes.find((s) => s.log !== undefined);
    if (!here) return;
    const others = new Map<string, Shipped[]>();
    for (const s of this.streams.values()) {
      const h = s.start?.header;
      if (!h || h.logId === this.logId || s.log !== here.log || s.host !== here.host) continue;
      others.set(h.logId!, [...(others.get(h.logId!) ?? []), s]);
    }
    for (const [logId, set] of others) {
      const signed = set.filter((x) => x.verified.size > 0);
      if (!signed.length) continue;
      const ends = open(signed);
      const last = signed.map((x) => x.verified.get(newestOf(x))![0]!).reduce((a, b) => (b.timeMs > a.timeMs ? b : a));
      add(
        `log ${logId} was signed at the same path (${here.host ?? '?'}:${here.log}) before this one (${this.logId}): ` +
          (ends.length
            ? `its stream ${ends[0]!.streamId} was left open at checkpoint ${newestOf(ends[0]!)}, ${iso(last.timeMs)}`
            : `through record ${last.records}, ${iso(last.timeMs)}`) +
          ' — the log was replaced and signed afresh (a log started over on purpose: verify with the lines of its log id only)',
      );
    }
  }

  /** Silences longer than the maximum gap, and time going backwards, along the sidecar's streams. */
  private checkGaps(sidecar: SidecarStream[]): void {
    let prev: number | null = null;
    let maxGap: number | null = null;
    const first = sidecar[0]!.header;
    const pred = first?.previous ? this.streams.get(first.previous.streamId) : undefined;
    if (pred && newestOf(pred) >= 0) prev = pred.verified.get(newestOf(pred))![0]!.timeMs;
    const step = (t: number) => {
      if (prev !== null && t < prev) {
        this.issues.add({
          kind: 'clock-backwards',
          count: 1,
          message: `the signer's clock went back from ${iso(prev)} to ${iso(t)}: its times (and the silences measured with them) cannot be relied on there`,
          from: iso(prev),
          to: iso(t),
        });
      } else if (prev !== null && maxGap !== null && t - prev > maxGap) this.silent(prev, t, maxGap);
      prev = t;
    };
    for (const seg of sidecar) {
      const h = seg.header;
      const s = this.streams.get(seg.streamId);
      // a stream that declares no heartbeat (a finished file's, a record stream's) is measured only against --max-gap
      maxGap = this.opts.maxGapMs ?? (h?.heartbeatMs ? 3 * h.heartbeatMs : null);
      if (h) step(Date.parse(h.createdAt));
      if (!s) continue;
      for (const index of [...s.verified.keys()].sort((a, b) => a - b)) step(s.verified.get(index)![0]!.timeMs);
    }
    const tip = sidecar.at(-1)!;
    const s = this.streams.get(tip.streamId);
    const continued = this.logStreams().some((t) => t.start!.header.previous?.streamId === tip.streamId);
    const closed = s ? s.closedAt.has(newestOf(s)) : tip.closed;
    if (!closed && !continued && prev !== null && maxGap !== null && this.now - prev > maxGap)
      this.silent(prev, null, maxGap);
  }

  private silent(from: number, to: number | null, maxGap: number): void {
    const ms = (to ?? this.now) - from;
    this.issues.add({
      kind: 'signer-silent',
      count: 1,
      message:
        `the signer was silent from ${iso(from)} ${to === null ? `until now (${iso(this.now)}), and its stream is not closed` : `to ${iso(to)}`} ` +
        `(${seconds(ms)}; at most ${seconds(maxGap)} allowed): no shipped checkpoint vouches for what happened to the log then`,
      from: iso(from),
      ...(to === null ? {} : { to: iso(to) }),
    });
  }
}

function newestOf(s: Shipped): number {
  let n = -1;
  for (const k of s.verified.keys()) if (k > n) n = k;
  return n;
}

const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
