/**
 * The checkpoint chain (format.ts): record MACs go in as they are made; every
 * `every` records (or when the interval has passed) a checkpoint seals them:
 * its MAC binds the record count, the log length, the time, the previous
 * checkpoint's MAC, the digest of the MACs it seals and (version 3) the key
 * epoch. With `heartbeat`, a checkpoint is due every interval even when no
 * record waits: a live log's signer shows it is alive (and when it stopped).
 * Shared by the sidecar writer and the record stream (createSignStream).
 */
import { createHash, type Hash } from 'node:crypto';
import { checkpointAnchor, type CheckpointAnchor } from './anchors.js';
import type { MacEngine } from './engine.js';
import {
  DEFAULT_CHECKPOINT_EVERY,
  MAX_CHECKPOINT_EVERY,
  checkpointMacInput,
  nodeDigestName,
  type CheckpointFields,
  type DigestName,
} from './format.js';

export interface CheckpointOptions {
  /** Records per checkpoint: default 10,000, at most 1,000,000 (which bounds what a crash can leave unsealed). */
  checkpointEvery?: number;
  /** A checkpoint at least this often (ms) while records are waiting; default 10,000. */
  checkpointIntervalMs?: number;
}

export const DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000;

/** Validated checkpoint options (RangeError for bad values). */
export function checkpointSettings(o: CheckpointOptions): { every: number; intervalMs: number } {
  const every = o.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  const intervalMs = o.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
  if (!Number.isSafeInteger(every) || every < 1 || every > MAX_CHECKPOINT_EVERY) {
    throw new RangeError(`checkpointEvery must be an integer from 1 to ${MAX_CHECKPOINT_EVERY}, got ${every}`);
  }
  if (!(typeof intervalMs === 'number' && intervalMs > 0 && intervalMs <= 2 ** 31 - 1)) {
    throw new RangeError(`checkpointIntervalMs must be a positive number of milliseconds, got ${intervalMs}`);
  }
  return { every, intervalMs };
}

/** The chain after a checkpoint (index -1, and the chain origin as `mac`, before the first). */
export interface ChainHead {
  index: number;
  records: number;
  logBytes: number;
  mac: Buffer;
}

/** What the chain's checkpoints look like: the format version (3 binds the epoch), and whether they beat without records. */
export interface ChainShape {
  version: number;
  heartbeat: boolean;
}

export class CheckpointChain {
  private readonly every: number;
  private readonly intervalMs: number;
  private readonly digestName: 'sha256' | 'sha512';
  private digest: Hash;
  private pendingEnd: number;
  private lastSeal = Date.now();
  /** Records added since the last checkpoint. */
  pending = 0;

  constructor(
    private readonly keyArn: string,
    private readonly streamId: Buffer,
    digest: DigestName,
    private head: ChainHead,
    options: CheckpointOptions,
    private readonly shape: ChainShape,
  ) {
    ({ every: this.every, intervalMs: this.intervalMs } = checkpointSettings(options));
    this.digestName = nodeDigestName(digest);
    this.digest = createHash(this.digestName);
    this.pendingEnd = head.logBytes;
  }

  /** The last checkpoint. */
  get last(): Readonly<ChainHead> {
    return this.head;
  }

  /** Records added so far, sealed or not, and the log bytes they end at. */
  get records(): number {
    return this.head.records + this.pending;
  }

  get logBytes(): number {
    return this.pendingEnd;
  }

  /** Records that may be added before the next checkpoint is due by count. */
  get room(): number {
    return this.every - this.pending;
  }

  /** `count` more records (at most `room`), whose MACs are `macs`, ending at log byte `end`. */
  add(macs: Uint8Array, count: number, end: number): void {
    this.digest.update(macs);
    this.pending += count;
    this.pendingEnd = end;
  }

  /**
   * Whether a checkpoint is due: `every` records waiting, or records waiting
   * for the interval — or, with `beat` (a heartbeat chain whose signer is
   * idle: nothing read is still being MACed), none.
   */
  due(now = Date.now(), beat = this.shape.heartbeat): boolean {
    return this.pending >= this.every || this.timeLeft(now, beat) === 0;
  }

  /** Milliseconds until a checkpoint is due by time (Infinity when nothing waits and there is no heartbeat). */
  dueIn(now = Date.now()): number {
    return this.timeLeft(now, this.shape.heartbeat);
  }

  private timeLeft(now: number, beat: boolean): number {
    return this.pending > 0 || beat ? Math.max(0, this.lastSeal + this.intervalMs - now) : Infinity;
  }

  /** Seals the records added since the last checkpoint (possibly none) into the next checkpoint, MACed by `engine` (key epoch `epoch`). */
  async seal(
    engine: MacEngine,
    epoch: number,
  ): Promise<{ fields: CheckpointFields; digest: Buffer; mac: Buffer; anchor: CheckpointAnchor }> {
    const fields: CheckpointFields = {
      index: this.head.index + 1,
      records: this.records,
      logBytes: this.pendingEnd,
      timeMs: Date.now(),
      epoch,
    };
    const digest = this.digest.digest();
    const prev = this.head.mac;
    const { version } = this.shape;
    const mac = Buffer.from(await engine.mac(checkpointMacInput(this.streamId, fields, prev, digest, version)));
    this.head = { index: fields.index, records: fields.records, logBytes: fields.logBytes, mac };
    this.digest = createHash(this.digestName);
    this.pending = 0;
    this.lastSeal = fields.timeMs;
    const anchor = checkpointAnchor(this.keyArn, this.streamId, fields, prev, digest, mac, version);
    return { fields, digest, mac, anchor };
  }
}
