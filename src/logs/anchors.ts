/**
 * Checkpoints shipped off the host ("anchors"), one JSON line each: written
 * by `sign --checkpoints-out` as each checkpoint becomes durable, and checked
 * by `verify --checkpoints`.
 *
 * A line holds everything needed to verify its MAC on its own (the previous
 * chain MAC and the digest of the block's record MACs), so a forged line is
 * caught, and the line for checkpoint k must equal the sidecar's checkpoint
 * k. A sidecar that ends below the newest shipped checkpoint of its stream was
 * cut, or replaced by an older copy, together with its log: without the
 * shipped lines nothing in the two files could tell.
 *
 * Lines may carry a prefix (a syslog timestamp and tag): a line is read from
 * its first `{`. Lines that are not anchors, or belong to other streams, are
 * skipped.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { MacEngine } from './engine.js';
import { checkpointMacInput, trailerMacInput, type CheckpointFields } from './format.js';
import type { FilePath } from './input.js';
import type { IssueLog } from './issues.js';
import type { SidecarState, StoredCheckpoint } from './sidecar-reader.js';

/** A checkpoint, as shipped. Binary fields are base64. */
export interface CheckpointAnchor {
  type: 'checkpoint';
  keyArn: string;
  /** Hex. */
  streamId: string;
  checkpoint: number;
  records: number;
  logBytes: number;
  /** ISO 8601, milliseconds: the time the checkpoint states. */
  time: string;
  /** The MAC this checkpoint chains to. */
  prev: string;
  /** DIGEST of the record MACs it seals. */
  digest: string;
  mac: string;
  /** The log's path as the signer knew it (informational; not covered by any MAC). */
  log?: string;
}

/** A sidecar finished with a trailer: signed through `checkpoint`, whose MAC is `head`. */
export interface CloseAnchor {
  type: 'close';
  keyArn: string;
  streamId: string;
  checkpoint: number;
  records: number;
  logBytes: number;
  head: string;
  /** The trailer MAC. */
  mac: string;
  log?: string;
}

export type Anchor = CheckpointAnchor | CloseAnchor;

export function anchorLine(a: Anchor): string {
  return `${JSON.stringify(a)}\n`;
}

export function checkpointAnchor(
  keyArn: string,
  streamId: Buffer,
  c: CheckpointFields,
  prev: Uint8Array,
  digest: Uint8Array,
  mac: Uint8Array,
): CheckpointAnchor {
  return {
    type: 'checkpoint',
    keyArn,
    streamId: streamId.toString('hex'),
    checkpoint: c.index,
    records: c.records,
    logBytes: c.logBytes,
    time: new Date(c.timeMs).toISOString(),
    prev: b64(prev),
    digest: b64(digest),
    mac: b64(mac),
  };
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** An anchor from one shipped line, or null when the line is not one. */
export function parseAnchor(line: string): Anchor | null {
  const at = line.indexOf('{');
  if (at < 0) return null;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line.slice(at)) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (
    !v ||
    typeof v !== 'object' ||
    typeof v.streamId !== 'string' ||
    !isCount(v.checkpoint) ||
    !isCount(v.records) ||
    !isCount(v.logBytes)
  )
    return null;
  if (typeof v.mac !== 'string' || typeof v.keyArn !== 'string') return null;
  if (
    v.type === 'checkpoint' &&
    typeof v.time === 'string' &&
    typeof v.prev === 'string' &&
    typeof v.digest === 'string'
  )
    return v as unknown as CheckpointAnchor;
  if (v.type === 'close' && typeof v.head === 'string') return v as unknown as CloseAnchor;
  return null;
}

/** Whether a shipped line's MAC verifies with the trusted key. */
export async function anchorVerifies(a: Anchor, engine: MacEngine): Promise<boolean> {
  const sid = Buffer.from(a.streamId, 'hex');
  const mac = Buffer.from(a.mac, 'base64');
  if (sid.length !== 16 || mac.length !== engine.macLength) return false;
  if (a.type === 'close')
    return engine.verify(trailerMacInput(sid, a.records, a.logBytes, Buffer.from(a.head, 'base64')), mac);
  const timeMs = Date.parse(a.time);
  if (!Number.isSafeInteger(timeMs) || timeMs < 0) return false;
  const fields = { index: a.checkpoint, records: a.records, logBytes: a.logBytes, timeMs };
  return engine.verify(
    checkpointMacInput(sid, fields, Buffer.from(a.prev, 'base64'), Buffer.from(a.digest, 'base64')),
    mac,
  );
}

/**
 * The shipped checkpoints of one stream, checked against its sidecar: load()
 * reads and verifies them, visit() compares each of the sidecar's checkpoints
 * as the scan finds it, finish() compares where the sidecar ends.
 */
export class AnchorCheck {
  /** Verified shipped checkpoints of the stream: index → MAC. */
  private readonly shipped = new Map<number, Buffer>();
  /** Closes shipped: checkpoint index → trailer MAC. */
  private readonly closes = new Map<number, Buffer>();
  private newest: CheckpointAnchor | null = null;
  private otherStreams = 0;

  constructor(
    private readonly streamId: string,
    private readonly engine: MacEngine,
    private readonly issues: IssueLog,
  ) {}

  /** How many verified checkpoints of the stream were shipped, and the newest. */
  get summary(): { shipped: number; newest: { checkpoint: number; records: number; time: string } | null } {
    const n = this.newest;
    return {
      shipped: this.shipped.size,
      newest: n ? { checkpoint: n.checkpoint, records: n.records, time: n.time } : null,
    };
  }

  async load(path: FilePath): Promise<void> {
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      const a = parseAnchor(line);
      if (!a) continue;
      if (a.streamId !== this.streamId) {
        this.otherStreams++;
        continue;
      }
      if (!(await anchorVerifies(a, this.engine))) {
        this.issues.add({
          kind: 'anchor-invalid',
          count: 1,
          message: `shipped line ${lineNo} (checkpoint ${a.checkpoint} of this stream) does not verify with the trusted key: the shipped checkpoints were altered`,
        });
        continue;
      }
      const mac = Buffer.from(a.mac, 'base64');
      if (a.type === 'close') this.closes.set(a.checkpoint, mac);
      else {
        this.shipped.set(a.checkpoint, mac);
        if (!this.newest || a.checkpoint > this.newest.checkpoint) this.newest = a;
      }
    }
  }

  visit(c: StoredCheckpoint): void {
    const mac = this.shipped.get(c.index);
    if (mac && !mac.equals(c.mac)) {
      this.issues.add({
        kind: 'anchor-mismatch',
        count: 1,
        message: `checkpoint ${c.index} (record ${c.records}) differs from the one shipped: the log and its sidecar were rewritten or replaced`,
      });
    }
  }

  finish(state: SidecarState): void {
    const last = state.last;
    const n = this.newest;
    if (n && (!last || n.checkpoint > last.index)) {
      this.issues.add({
        kind: 'anchor-missing',
        count: 1,
        message:
          `checkpoint ${n.checkpoint} (record ${n.records}, ${n.time}) was shipped, but the sidecar ends at ${last ? `checkpoint ${last.index} (record ${last.records})` : 'its header'}: ` +
          'the log and its sidecar were cut, or replaced by an older copy',
      });
    } else if (last && this.closes.has(last.index) && !state.closed) {
      this.issues.add({
        kind: 'anchor-missing',
        count: 1,
        message: `the sidecar was closed at checkpoint ${last.index} (its trailer was shipped), but has no trailer now: it was removed`,
      });
    } else if (!n && state.blocks > 1) {
      // (one checkpoint not shipped is what a crash between its fdatasync and its shipping leaves)
      this.issues.add({
        kind: 'anchor-missing',
        count: 1,
        message:
          `none of the shipped checkpoints (${this.otherStreams} of other streams) belongs to this sidecar's stream ${this.streamId}: ` +
          'its checkpoints were not shipped there, or the log and its sidecar were replaced by another signing',
      });
    }
  }
}
