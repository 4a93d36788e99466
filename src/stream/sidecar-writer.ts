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
import type { FileHandle } from 'node:fs/promises';
import type { Anchor } from './anchors.js';
import { CheckpointChain, type ChainHead, type CheckpointOptions } from './checkpoint.js';
import type { MacEngine } from './engine.js';
import { checkpointSize, encodeCheckpoint, encodeHeader, encodeTrailerFixed, headerMacInput, trailerMacInput, type SidecarHeader } from './format.js';
import { recordEnd, type RecordBatch } from './framer.js';
import type { SidecarFile, SidecarState } from './sidecar-reader.js';

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
  /** The block being filled: room for its checkpoint, then its MACs. */
  private block: Buffer;
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
    head: ChainHead,
    pos: number,
  ) {
    this.L = header.macLength;
    this.C = checkpointSize(this.L);
    // the header fixes the block size; the options give the interval
    this.chain = new CheckpointChain(header.keyArn, Buffer.from(header.streamId, 'hex'), header.digest, head, { ...opts, checkpointEvery: header.checkpointEvery });
    this.pos = pos;
    this.block = Buffer.allocUnsafe(this.C + Math.min(header.checkpointEvery!, 4096) * this.L);
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

  /** Records MACed so far (sealed or waiting), and the log bytes they cover. */
  get records(): number {
    return this.chain.records;
  }

  get logBytes(): number {
    return this.chain.logBytes;
  }

  /** The last checkpoint written: index (-1 before the first), records, log bytes, MAC. */
  get chainHead(): Readonly<ChainHead> {
    return this.chain.last;
  }

  /** Adds the MACs of a batch, in order; seals a block each time `checkpointEvery` records are waiting. */
  async add(batch: RecordBatch, macs: Uint8Array): Promise<void> {
    this.check();
    const { L, C, chain } = this;
    for (let i = 0; i < batch.count; ) {
      const take = Math.min(chain.room, batch.count - i);
      const at = C + chain.pending * L;
      if (at + take * L > this.block.length) {
        const grown = Buffer.allocUnsafe(Math.max(at + take * L, this.block.length * 2));
        this.block.copy(grown, 0, 0, at);
        this.block = grown;
      }
      const part = macs.subarray(i * L, (i + take) * L);
      this.block.set(part, at);
      i += take;
      chain.add(part, take, recordEnd(batch, i - 1));
      if (chain.room === 0) await this.seal();
    }
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
    if (this.chain.pending > 0 || this.chain.last.index < 0) await this.seal();
    const h = this.chain.last;
    const streamId = Buffer.from(this.header.streamId, 'hex');
    const trailerMac = Buffer.from(await this.opts.engine.mac(trailerMacInput(streamId, h.records, h.logBytes, h.mac)));
    this.closed = true;
    this.queue(Buffer.concat([encodeTrailerFixed(h.records, h.logBytes), trailerMac]), {
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
    const body = this.block.subarray(0, this.C + this.chain.pending * this.L);
    const { fields, mac, anchor } = await this.chain.seal(this.opts.engine);
    encodeCheckpoint(body, 0, fields, mac);
    this.block = Buffer.allocUnsafe(this.block.length); // the sealed one is written behind
    this.queue(body, anchor);
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
