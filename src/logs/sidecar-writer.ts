/**
 * Writes a sidecar's stream (format.ts; version 3, or a version-2 sidecar
 * it continues): the header — at the start of the file, or after the
 * segment before it — then blocks — a checkpoint and the MACs of the records
 * it seals — and, when the signer finishes, a trailer. The first line it
 * announces is the stream line (version 3): the header, and a
 * forward-secure stream's nonce, which the writer wipes once the line has
 * been taken.
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
import { streamAnchor, type Anchor, type LogIdentity, type StreamAnchor } from './anchors.js';
import { CheckpointChain, type ChainHead, type CheckpointOptions } from './checkpoint.js';
import {
  CRASH_TAIL_BLOCKS,
  encodeCheckpoint,
  encodeHeader,
  encodeTrailerFixed,
  entryLayout,
  headerMacInput,
  trailerMacInput,
  type EntryLayout,
  type SidecarHeader,
} from './format.js';
import { recordEnd, type RecordBatch } from './framer.js';
import type { SigningKeys } from './keys.js';
import type { SegmentState } from './sidecar-reader.js';

/** Checkpoints of a sidecar: when, and who hears of them. */
export interface SidecarCheckpointOptions extends CheckpointOptions {
  /** Each checkpoint once durable, and the closing trailer; awaited (ship it off the host before signing goes on). */
  onCheckpoint?: (a: Anchor) => void | Promise<void>;
}

export interface WriterOptions extends SidecarCheckpointOptions {
  /** The keys of the stream: the KMS key's engine, or forward-secure epoch keys (keys.ts). */
  keys: SigningKeys;
  /** fdatasync each block before announcing its checkpoint (a live log); else the caller syncs at the end. */
  durable: boolean;
  /** A checkpoint every interval even when no record waits (a live log's heartbeat). */
  heartbeat?: boolean;
  /** Stamped on every line announced: the log's host and path. */
  identity?: Omit<LogIdentity, 'logId'>;
}

export class SidecarWriter {
  private readonly L: number;
  private readonly C: number;
  private readonly layout: EntryLayout;
  private readonly chain: CheckpointChain;
  private readonly identity: LogIdentity;
  /** The epoch of the last checkpoint sealed (-1: none yet). */
  private sealedEpoch = -1;
  /** The stream line, until begin() has announced it. */
  private starting: StreamAnchor | null = null;
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
    this.layout = entryLayout(header);
    this.C = this.layout.size;
    this.identity = { ...(header.logId ? { logId: header.logId } : {}), ...opts.identity };
    // the header fixes the block size; the options give the interval
    this.chain = new CheckpointChain(
      header.keyArn,
      Buffer.from(header.streamId, 'hex'),
      header.digest,
      head,
      { ...opts, checkpointEvery: header.checkpointEvery },
      { version: header.version, heartbeat: opts.heartbeat === true },
    );
    this.blockAt = this.written = this.bufAt = pos;
    this.macAt = pos + this.C;
    this.buf = Buffer.allocUnsafeSlow(WRITE_BYTES + (64 << 10));
  }

  /**
   * Starts a stream: writes its header at `at` of `fh` (opened for writing,
   * and holding nothing from `at` on): at 0 for a new sidecar, after the
   * last segment for a forward-secure restart (synced, if durable). Then
   * begin() announces the stream line (version 3), with `nonce`, which it
   * wipes.
   */
  static async create(
    fh: FileHandle,
    header: SidecarHeader,
    opts: WriterOptions,
    at = 0,
    nonce?: Buffer,
  ): Promise<SidecarWriter> {
    try {
      const headerBytes = encodeHeader(header);
      const headerMac = Buffer.from(
        await opts.keys.engine.mac(headerMacInput(Buffer.from(header.streamId, 'hex'), headerBytes)),
      );
      const start = Buffer.concat([headerBytes, headerMac]);
      await writeAll(fh, start, at);
      if (opts.durable) await fh.datasync();
      const link = header.previous;
      const first =
        link?.how === 'restart' ? { records: link.records, logBytes: link.logBytes! } : { records: 0, logBytes: 0 };
      const origin = link?.head ?? headerMac;
      const writer = new SidecarWriter(fh, header, opts, { index: -1, ...first, mac: origin }, at + start.length);
      if (header.version >= 3) writer.starting = streamAnchor(header, headerBytes, headerMac, nonce);
      return writer;
    } catch (err) {
      nonce?.fill(0);
      throw err;
    }
  }

  /** Announces the stream line (once the sidecar is where readers find it), then wipes its nonce. */
  async begin(): Promise<void> {
    const a = this.starting;
    this.starting = null;
    if (!a) return;
    try {
      await this.announce(a);
    } finally {
      if (Buffer.isBuffer(a.nonce)) a.nonce.fill(0);
    }
  }

  /** Wipes what a writer that will not begin() holds (its stream's nonce). */
  discard(): void {
    const a = this.starting;
    this.starting = null;
    if (a && Buffer.isBuffer(a.nonce)) a.nonce.fill(0);
  }

  /**
   * Continues the last stream of a sidecar after its last checkpoint
   * (`segment` from scanSidecar, which the caller has checked): drops what
   * follows it — a block cut short by a crash, or the trailer — and chains
   * on. `fh` is open for writing.
   */
  static async resume(
    fh: FileHandle,
    segment: SegmentState,
    validEnd: number,
    opts: WriterOptions,
  ): Promise<SidecarWriter> {
    await fh.truncate(validEnd);
    await fh.datasync();
    const l = segment.last;
    const head = l
      ? { index: l.index, records: l.records, logBytes: l.logBytes, mac: l.mac }
      : { index: -1, ...segment.start, mac: segment.origin };
    const writer = new SidecarWriter(fh, segment.header, opts, head, validEnd);
    if (l) writer.sealedEpoch = l.epoch;
    return writer;
  }

  private async announce(a: Anchor): Promise<void> {
    await this.opts.onCheckpoint?.({ ...a, ...this.identity });
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

  /** Whether records have waited `checkpointIntervalMs` for a checkpoint (with `beat`, a heartbeat too: see CheckpointChain.due). */
  due(now = Date.now(), beat = this.opts.heartbeat === true): boolean {
    return this.chain.due(now, beat);
  }

  /** Milliseconds until `due()` (Infinity when nothing waits). */
  dueIn(now = Date.now()): number {
    return this.chain.dueIn(now);
  }

  /** Seals the waiting records (if any; with `beat`, also none once the interval is over: a heartbeat) into a checkpoint. */
  async checkpoint(beat = false): Promise<void> {
    this.check();
    if (this.chain.pending > 0 || (beat && this.opts.heartbeat && this.chain.due())) await this.seal();
  }

  /** Milliseconds until the key epoch is over (Infinity: the stream has none). */
  epochDueIn(now = Date.now()): number {
    return this.opts.keys.epochDueIn(now);
  }

  /**
   * Ends the key epoch (the caller has added every record MACed with its
   * key): its last checkpoint is sealed with its key, then the keys ratchet
   * and the old ones are destroyed. Every epoch thus ends with a checkpoint
   * of its own.
   */
  async endEpoch(): Promise<void> {
    this.check();
    if (this.chain.pending > 0 || this.sealedEpoch !== this.opts.keys.epoch) await this.seal();
    this.opts.keys.advance();
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
    // the trailer is MACed with the key of the last checkpoint's epoch: seal one in this epoch if it has none
    if (this.chain.pending > 0 || this.chain.last.index < 0 || this.sealedEpoch !== this.opts.keys.epoch)
      await this.seal();
    const h = this.chain.last;
    const streamId = Buffer.from(this.header.streamId, 'hex');
    const { engine, epoch } = this.opts.keys;
    const trailerMac = Buffer.from(await engine.mac(trailerMacInput(streamId, h.records, h.logBytes, h.mac)));
    this.closed = true;
    this.place(Buffer.concat([encodeTrailerFixed(h.records, h.logBytes), trailerMac]), this.blockAt, {
      type: 'close',
      keyArn: this.header.keyArn,
      streamId: this.header.streamId,
      checkpoint: h.index,
      records: h.records,
      logBytes: h.logBytes,
      ...(this.header.version >= 3 ? { epoch } : {}),
      head: h.mac.toString('base64'),
      mac: trailerMac.toString('base64'),
    });
    this.handOff();
    await this.settled();
  }

  private async seal(): Promise<void> {
    const { engine, epoch } = this.opts.keys;
    const { fields, digest, mac, anchor } = await this.chain.seal(engine, epoch);
    this.sealedEpoch = epoch;
    const entry = Buffer.allocUnsafe(this.C);
    encodeCheckpoint(entry, 0, fields, digest, mac, this.layout);
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
        for (const a of anchors) await this.announce(a);
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
