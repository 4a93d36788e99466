/**
 * Writes a version-2 sidecar (format.ts): the header, then blocks — a
 * checkpoint and the MACs of the records it seals — and, when the signer
 * finishes, a trailer.
 *
 * Record MACs are laid out as they come, after a gap left for their block's
 * checkpoint; sealing the block puts the checkpoint into the gap. Until then
 * the block has no valid checkpoint, and a reader takes its MACs for what a
 * crash leaves behind: not signed, not tampering. Memory stays small
 * whatever `checkpointEvery` is.
 *
 * Writes are batched: the bytes collect in a buffer that mirrors the file
 * (gaps included) and go to the disk about a mebibyte at a time, behind the
 * signer, which keeps framing and MACing meanwhile; a checkpoint whose gap
 * has already gone to the disk is written on its own, after it. With
 * `durable` (a live log), sealing a block sends it to the disk at once and
 * fdatasyncs it before its checkpoint is announced (`onCheckpoint`, e.g. to
 * be shipped off the host): a shipped checkpoint is always on disk. Without,
 * a checkpoint is announced once written, and the caller syncs at the end.
 *
 * At most CRASH_TAIL_BLOCKS - 1 writes wait for the disk at once, so a crash
 * leaves at most CRASH_TAIL_BLOCKS blocks unfinished.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Anchor } from './anchors.js';
import { CheckpointChain, type ChainHead, type CheckpointOptions } from './checkpoint.js';
import type { MacEngine } from './engine.js';
import {
  CRASH_TAIL_BLOCKS,
  checkpointSize,
  encodeCheckpoint,
  encodeHeader,
  encodeTrailerFixed,
  headerMacInput,
  trailerMacInput,
  type SidecarHeader,
} from './format.js';
import { recordEnd, type RecordBatch } from './framer.js';
import { chainOrigin, type SidecarFile, type SidecarState } from './sidecar-reader.js';

/** Checkpoints of a sidecar: when, and who hears of them. */
export interface SidecarCheckpointOptions extends CheckpointOptions {
  /** Each checkpoint once durable, and the closing trailer; awaited (ship it off the host before signing goes on). */
  onCheckpoint?: (a: Anchor) => void | Promise<void>;
}

export interface WriterOptions extends SidecarCheckpointOptions {
  engine: MacEngine;
  /** fdatasync each block before announcing its checkpoint (a live log); else the caller syncs at the end. */
  durable: boolean;
}

export class SidecarWriter {
  private readonly L: number;
  private readonly C: number;
  private readonly chain: CheckpointChain;
  /** Where the current block's checkpoint goes, and where its next MAC goes. */
  private blockAt: number;
  private macAt: number;
  /** The end of everything handed to the disk: a live sidecar that grows beyond it has another writer. */
  private written: number;
  /** File bytes [bufAt, bufAt + bufLen) waiting in `buf`, and the checkpoints among them. */
  private buf: Buffer;
  private bufAt: number;
  private bufLen = 0;
  private bufAnchors: Anchor[] = [];
  /** Buffers back from the disk, for reuse. */
  private readonly spare: Buffer[] = [];
  /** Writes waiting for the disk, in order; the first failure is kept and rethrown. */
  private io: Promise<void> = Promise.resolve();
  private ioQueued = 0;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly header: SidecarHeader,
    private readonly opts: WriterOptions,
    head: ChainHead,
    pos: number,
  ) {
    this.L = header.macLength;
    this.C = checkpointSize(this.L);
    // the header fixes the block size; the options give the interval
    this.chain = new CheckpointChain(header.keyArn, Buffer.from(header.streamId, 'hex'), header.digest, head, {
      ...opts,
      checkpointEvery: header.checkpointEvery,
    });
    this.blockAt = this.written = this.bufAt = pos;
    this.macAt = pos + this.C;
    this.buf = Buffer.allocUnsafeSlow(WRITE_BYTES + (64 << 10));
  }

  /** Writes the header of a new sidecar into `fh` (empty, opened for writing). */
  static async create(fh: FileHandle, header: SidecarHeader, opts: WriterOptions): Promise<SidecarWriter> {
    const headerBytes = encodeHeader(header);
    const headerMac = Buffer.from(
      await opts.engine.mac(headerMacInput(Buffer.from(header.streamId, 'hex'), headerBytes)),
    );
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
  static async resume(
    fh: FileHandle,
    sf: SidecarFile,
    state: SidecarState,
    opts: WriterOptions,
  ): Promise<SidecarWriter> {
    await fh.truncate(state.validEnd);
    await fh.datasync();
    const l = state.last;
    const head = l
      ? { index: l.index, records: l.records, logBytes: l.logBytes, mac: l.mac }
      : { index: -1, records: 0, logBytes: 0, mac: chainOrigin(sf) };
    return new SidecarWriter(fh, sf.header, opts, head, state.validEnd);
  }

  /** Records MACed so far (sealed or waiting), and the log bytes they cover. */
  get records(): number {
    return this.chain.records;
  }

  get logBytes(): number {
    return this.chain.logBytes;
  }

  /** The last checkpoint sealed: index (-1 before the first), records, log bytes, MAC. */
  get chainHead(): Readonly<ChainHead> {
    return this.chain.last;
  }

  /**
   * Adds the MACs of a batch, in order; seals a block each time
   * `checkpointEvery` records are waiting. `macs` is copied before this
   * returns (and not used after).
   */
  async add(batch: RecordBatch, macs: Uint8Array): Promise<void> {
    this.check();
    const { L, chain } = this;
    for (let i = 0; i < batch.count; ) {
      const take = Math.min(chain.room, batch.count - i);
      const part = macs.subarray(i * L, (i + take) * L);
      this.place(part, this.macAt);
      this.macAt += part.length;
      i += take;
      chain.add(part, take, recordEnd(batch, i - 1));
      if (chain.room === 0) await this.seal();
    }
    if (this.bufLen >= WRITE_BYTES) await this.send();
  }

  /** Whether records have waited `checkpointIntervalMs` for a checkpoint. */
  due(now = Date.now()): boolean {
    return this.chain.due(now);
  }

  /** Milliseconds until `due()` (Infinity when nothing waits). */
  dueIn(now = Date.now()): number {
    return this.chain.dueIn(now);
  }

  /** Seals the waiting records (if any) into a checkpoint. */
  async checkpoint(): Promise<void> {
    this.check();
    if (this.chain.pending > 0) await this.seal();
  }

  /** Waits until every write so far is done (and synced, if durable). */
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
    if (this.chain.pending > 0 || this.chain.last.index < 0) await this.seal();
    const h = this.chain.last;
    const streamId = Buffer.from(this.header.streamId, 'hex');
    const trailerMac = Buffer.from(await this.opts.engine.mac(trailerMacInput(streamId, h.records, h.logBytes, h.mac)));
    this.closed = true;
    this.place(Buffer.concat([encodeTrailerFixed(h.records, h.logBytes), trailerMac]), this.blockAt, {
      type: 'close',
      keyArn: this.header.keyArn,
      streamId: this.header.streamId,
      checkpoint: h.index,
      records: h.records,
      logBytes: h.logBytes,
      head: h.mac.toString('base64'),
      mac: trailerMac.toString('base64'),
    });
    this.handOff();
    await this.settled();
  }

  private async seal(): Promise<void> {
    const { fields, mac, anchor } = await this.chain.seal(this.opts.engine);
    const entry = Buffer.allocUnsafe(this.C);
    encodeCheckpoint(entry, 0, fields, mac);
    this.place(entry, this.blockAt, anchor);
    this.blockAt = this.macAt;
    this.macAt = this.blockAt + this.C;
    if (this.opts.durable) await this.send();
  }

  /**
   * Lays `bytes` out at file position `at`: at the end of what is laid out
   * (past a new block's checkpoint gap, zero-filled until sealed, as a hole
   * would read), or into a gap the buffer still holds (a checkpoint); a
   * checkpoint whose gap already went to the disk is written on its own,
   * after the buffer (which holds the rest of its block). `anchor` is
   * announced once `bytes` are written.
   */
  private place(bytes: Uint8Array, at: number, anchor?: Anchor): void {
    const end = this.bufAt + this.bufLen;
    if (at < this.bufAt) {
      this.handOff();
      this.write(Buffer.from(bytes), at, anchor ? [anchor] : []);
      return;
    }
    if (at >= end && at + bytes.length - this.bufAt > this.buf.length) {
      this.handOff();
      if (at + bytes.length - end > this.buf.length) this.buf = Buffer.allocUnsafeSlow(at + bytes.length - end);
    }
    if (at > this.bufAt + this.bufLen) this.buf.fill(0, this.bufLen, at - this.bufAt);
    this.buf.set(bytes, at - this.bufAt);
    this.bufLen = Math.max(this.bufLen, at + bytes.length - this.bufAt);
    if (anchor) this.bufAnchors.push(anchor);
  }

  /** Hands the buffer to the disk and waits while too many writes are pending. */
  private async send(): Promise<void> {
    this.handOff();
    if (this.ioQueued >= CRASH_TAIL_BLOCKS - 1) await this.io;
  }

  /** Queues the buffer's write and starts a new buffer where it ends. */
  private handOff(): void {
    if (this.bufLen === 0 && this.bufAnchors.length === 0) return;
    const buf = this.buf;
    this.write(buf.subarray(0, this.bufLen), this.bufAt, this.bufAnchors, () => {
      if (this.spare.length < CRASH_TAIL_BLOCKS && buf.length === this.buf.length) this.spare.push(buf);
    });
    this.buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(buf.length);
    this.bufAt += this.bufLen;
    this.bufLen = 0;
    this.bufAnchors = [];
  }

  /** Writes `bytes` at `at` behind the writes already queued, then (durable) syncs, then announces `anchors`. */
  private write(bytes: Buffer, at: number, anchors: Anchor[], done?: () => void): void {
    this.written = Math.max(this.written, at + bytes.length);
    const end = this.written;
    this.ioQueued++;
    this.io = this.io
      .then(async () => {
        if (this.failure) return;
        // one signer per sidecar: a live sidecar that grew beyond what we wrote has another writer
        if (this.opts.durable && (await this.fh.stat()).size > Math.max(end, this.written)) {
          throw new Error('the sidecar changed under the signer: is another signer running on it?');
        }
        await writeAll(this.fh, bytes, at);
        if (this.opts.durable) await this.fh.datasync();
        for (const a of anchors) await this.opts.onCheckpoint?.(a);
      })
      .catch((err: Error) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.ioQueued--;
        done?.();
      });
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('sidecar writer: already closed');
  }
}

/** About how many bytes go to the disk in one write. */
const WRITE_BYTES = 1 << 20;

/** Writes all of `buf` at `pos` (write(2) may write less than asked). */
export async function writeAll(fh: FileHandle, buf: Uint8Array, pos: number): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
    done += bytesWritten;
  }
}
