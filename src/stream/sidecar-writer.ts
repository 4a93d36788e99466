/**
 * Writes a version-2 sidecar (format.ts): the header, then blocks — a
 * checkpoint and the MACs of the records it seals — and, when the signer
 * finishes, a trailer.
 *
 * MACs are kept in memory until their block is sealed (at most
 * `checkpointEvery` of them) and each block is written in one write, so the
 * file only ever grows by whole blocks: a crash can cut at most the last
 * write short, and a reader ignores that. With `durable`, every block is
 * fdatasynced before its checkpoint is announced (`onCheckpoint`, e.g. to be
 * shipped off the host): a shipped checkpoint is always on disk.
 *
 * Sealing computes the checkpoint MAC at once (the chain must stay in order),
 * but the write and the fdatasync run behind: the signer keeps framing and
 * MACing meanwhile, with at most two blocks waiting for the disk.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { checkpointAnchor, type Anchor } from './anchors.js';
import type { MacEngine } from './engine.js';
import {
  DEFAULT_CHECKPOINT_EVERY,
  MAX_CHECKPOINT_EVERY,
  checkpointMacInput,
  checkpointSize,
  encodeCheckpoint,
  encodeHeader,
  encodeTrailerFixed,
  headerMacInput,
  nodeDigestName,
  trailerMacInput,
  type CheckpointFields,
  type SidecarHeader,
} from './format.js';
import { recordEnd, type RecordBatch } from './framer.js';
import type { SidecarFile, SidecarState } from './sidecar-reader.js';

export interface CheckpointOptions {
  /** Records per checkpoint: default 10,000, at most 1,000,000 (a block's MACs wait in memory until it is sealed). */
  checkpointEvery?: number;
  /** A checkpoint at least this often (ms) while records are waiting; default 10,000. */
  checkpointIntervalMs?: number;
  /** Each checkpoint once durable, and the closing trailer; awaited (ship it before signing goes on). */
  onCheckpoint?: (a: Anchor) => void | Promise<void>;
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

export interface WriterOptions extends CheckpointOptions {
  engine: MacEngine;
  /** fdatasync each block before announcing its checkpoint (a live log); else the caller syncs at the end. */
  durable: boolean;
}

/** The chain's state after a checkpoint. */
interface Head {
  index: number;
  records: number;
  logBytes: number;
  mac: Buffer;
}

export class SidecarWriter {
  readonly streamId: Buffer;
  private readonly L: number;
  private readonly C: number;
  private readonly every: number;
  private readonly intervalMs: number;
  private readonly digest: 'sha256' | 'sha512';
  /** The last checkpoint (index -1 and the chain origin before the first). */
  private head: Head;
  /** The block being filled: room for its checkpoint, then its MACs. */
  private block: Buffer;
  private pending = 0;
  private pendingEnd: number;
  private lastSeal = Date.now();
  /** Where the next write goes. */
  private pos: number;
  /** Writes waiting for the disk, in order; the first failure is kept and rethrown. */
  private io: Promise<void> = Promise.resolve();
  private ioQueued = 0;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly header: SidecarHeader,
    private readonly opts: WriterOptions,
    head: Head,
    pos: number,
  ) {
    this.streamId = Buffer.from(header.streamId, 'hex');
    this.L = header.macLength;
    this.C = checkpointSize(this.L);
    this.every = header.checkpointEvery!;
    this.intervalMs = checkpointSettings(opts).intervalMs;
    this.digest = nodeDigestName(header.digest);
    this.head = head;
    this.pendingEnd = head.logBytes;
    this.pos = pos;
    this.block = Buffer.allocUnsafe(this.C + Math.min(this.every, 4096) * this.L);
  }

  /** Writes the header of a new sidecar into `fh` (empty, opened for writing). */
  static async create(fh: FileHandle, header: SidecarHeader, opts: WriterOptions): Promise<SidecarWriter> {
    const headerBytes = encodeHeader(header);
    const headerMac = Buffer.from(await opts.engine.mac(headerMacInput(Buffer.from(header.streamId, 'hex'), headerBytes)));
    const start = Buffer.concat([headerBytes, headerMac]);
    await writeAll(fh, start, 0);
    const origin = header.previous?.head ?? headerMac;
    return new SidecarWriter(fh, header, opts, { index: -1, records: 0, logBytes: 0, mac: origin }, start.length);
  }

  /**
   * Continues a sidecar after its last checkpoint (`state` from scanSidecar,
   * which the caller has checked): drops what follows it — a block cut short
   * by a crash, or the trailer — and chains on. `fh` is open for writing.
   */
  static async resume(fh: FileHandle, sf: SidecarFile, state: SidecarState, opts: WriterOptions): Promise<SidecarWriter> {
    await fh.truncate(state.validEnd);
    await fh.datasync();
    const l = state.last;
    const head = l ? { index: l.index, records: l.records, logBytes: l.logBytes, mac: l.mac } : { index: -1, records: 0, logBytes: 0, mac: sf.header.previous?.head ?? sf.headerMac };
    return new SidecarWriter(fh, sf.header, opts, head, state.validEnd);
  }

  /** Records MACed so far (sealed or waiting). */
  get records(): number {
    return this.head.records + this.pending;
  }

  /** Log bytes those records cover. */
  get logBytes(): number {
    return this.pendingEnd;
  }

  /** The last checkpoint written: index (-1 before the first), records, log bytes, MAC. */
  get chainHead(): Readonly<Head> {
    return this.head;
  }

  /** Adds the MACs of a batch, in order; seals a block each time `checkpointEvery` records are waiting. */
  async add(batch: RecordBatch, macs: Uint8Array): Promise<void> {
    this.check();
    const L = this.L;
    for (let i = 0; i < batch.count; ) {
      const take = Math.min(this.every - this.pending, batch.count - i);
      const need = this.C + (this.pending + take) * L;
      if (need > this.block.length) {
        const grown = Buffer.allocUnsafe(Math.min(this.C + this.every * L, Math.max(need, this.block.length * 2)));
        this.block.copy(grown, 0, 0, this.C + this.pending * L);
        this.block = grown;
      }
      this.block.set(macs.subarray(i * L, (i + take) * L), this.C + this.pending * L);
      this.pending += take;
      i += take;
      this.pendingEnd = recordEnd(batch, i - 1);
      if (this.pending === this.every) await this.seal();
    }
  }

  /** Whether records have waited `checkpointIntervalMs` for a checkpoint. */
  due(now = Date.now()): boolean {
    return this.pending > 0 && now - this.lastSeal >= this.intervalMs;
  }

  /** Milliseconds until `due()` (Infinity when nothing waits). */
  dueIn(now = Date.now()): number {
    return this.pending > 0 ? Math.max(0, this.lastSeal + this.intervalMs - now) : Infinity;
  }

  /** Seals the waiting records (if any) into a checkpoint. */
  async checkpoint(): Promise<void> {
    this.check();
    if (this.pending > 0) await this.seal();
  }

  /** Waits until every sealed block is written (and synced, if durable). */
  async settled(): Promise<void> {
    await this.io;
    if (this.failure) throw this.failure;
  }

  /**
   * Seals what waits, then writes the trailer: this sidecar is finished.
   * A sidecar with no checkpoint yet gets one for zero records (the trailer
   * binds the chain head). Resolves once everything is written.
   */
  async close(): Promise<void> {
    this.check();
    if (this.pending > 0 || this.head.index < 0) await this.seal();
    const h = this.head;
    const trailerMac = Buffer.from(await this.opts.engine.mac(trailerMacInput(this.streamId, h.records, h.logBytes, h.mac)));
    const trailer = Buffer.concat([encodeTrailerFixed(h.records, h.logBytes), trailerMac]);
    this.closed = true;
    this.queue(trailer, {
      type: 'close',
      keyArn: this.header.keyArn,
      streamId: this.header.streamId,
      checkpoint: h.index,
      records: h.records,
      logBytes: h.logBytes,
      head: h.mac.toString('base64'),
      mac: trailerMac.toString('base64'),
    });
    await this.settled();
  }

  private async seal(): Promise<void> {
    const { C, L } = this;
    const fields: CheckpointFields = { index: this.head.index + 1, records: this.head.records + this.pending, logBytes: this.pendingEnd, timeMs: Date.now() };
    const body = this.block.subarray(0, C + this.pending * L);
    const digest = createHash(this.digest).update(body.subarray(C)).digest();
    const prev = this.head.mac;
    const mac = Buffer.from(await this.opts.engine.mac(checkpointMacInput(this.streamId, fields, prev, digest)));
    encodeCheckpoint(body, 0, fields, mac);
    this.head = { index: fields.index, records: fields.records, logBytes: fields.logBytes, mac };
    this.pending = 0;
    this.lastSeal = fields.timeMs;
    this.block = Buffer.allocUnsafe(this.block.length); // the sealed one is written behind
    this.queue(body, checkpointAnchor(this.header.keyArn, this.streamId, fields, prev, digest, mac));
    if (this.ioQueued > 2) await this.io;
  }

  /** Appends `bytes` behind the writes already queued, then syncs and announces. */
  private queue(bytes: Buffer, anchor: Anchor): void {
    const at = this.pos;
    this.pos += bytes.length;
    this.ioQueued++;
    this.io = this.io
      .then(async () => {
        if (this.failure) return;
        // one signer per sidecar: a live sidecar that grew behind our back has another writer
        if (this.opts.durable && (await this.fh.stat()).size !== at) throw new Error('the sidecar changed under the signer: is another signer running on it?');
        await writeAll(this.fh, bytes, at);
        if (this.opts.durable) await this.fh.datasync();
        await this.opts.onCheckpoint?.(anchor);
      })
      .catch((err: Error) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.ioQueued--;
      });
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('sidecar writer: already closed');
  }
}

/** Writes all of `buf` at `pos` (write(2) may write less than asked). */
export async function writeAll(fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
    done += bytesWritten;
  }
}
