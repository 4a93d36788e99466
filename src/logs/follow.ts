/**
 * Signs a log as it is written (`kms-hmac sign --follow`), like `tail -F`:
 * records are MACed as they are appended, sealed into checkpoints (every
 * `checkpointEvery` records and every `checkpointIntervalMs`), each block
 * fdatasynced before its checkpoint is announced, until `signal` aborts;
 * then the signer finishes the sidecar with a trailer.
 *
 * While no record comes, a checkpoint is still sealed every interval (a
 * heartbeat), so the shipped checkpoints show when a signer stopped.
 *
 * A crash loses no checkpointed prefix: a restarted follower finds the
 * sidecar, checks that the log still holds every record it signed (the whole
 * signed prefix is verified), and continues the same sidecar and chain.
 * A forward-secure stream (keys.ts) cannot be continued — its keys are
 * destroyed, and its nonce is not on the host — so a restart starts a new
 * stream in the same sidecar, chained to the last checkpoint on disk, with a
 * fresh nonce shipped; the signer can no longer check the records it signed
 * before (it holds no key for them): the verifier does, with the shipped
 * nonces.
 *
 * Rotation:
 *  - by rename (logrotate's default): the old file is read to its end, and
 *    once it has been quiet for `rotateGraceMs` (the writer may still append
 *    to it until it reopens the log) its sidecar gets a trailer and is renamed
 *    after the rotated file (found by inode: `app.log-20260101.mac`); the new
 *    file gets a new sidecar whose header names the previous chain head,
 *    which its first checkpoint binds;
 *  - by copytruncate: the log shrinks under the read position, or the bytes
 *    just before it change. The old sidecar is finished at the last complete
 *    record read and renamed after the copy (found by content), and a new
 *    segment starts at the top of the truncated file.
 * Either way a finished sidecar that cannot be matched to a rotated file is
 * kept as `<log>.<stream id>.mac`.
 *
 * New data is noticed through fs.watch on the log's directory, and by polling
 * every `pollMs` where watching misses events or is unavailable.
 */
import { constants, watch, type FSWatcher } from 'node:fs';
import { link, lstat, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Anchor, CheckpointAnchor } from './anchors.js';
import { createTemp, pathString, syncDir } from './atomic-file.js';
import type { MacEngine } from './engine.js';
import { SidecarFormatError, type ChainLink, type Framing, type SidecarHeader } from './format.js';
import { assertPath, fileChunks, type FilePath } from './input.js';
import { IssueLog } from './issues.js';
import { kmsKeys, kmsStreamKeys, type SigningKeys } from './keys.js';
import { assertKeyOptions, engineFor, type KeyOptions } from './kms-engine.js';
import { headerVerifies, openSidecar, scanSidecar, type SegmentState, type SidecarState } from './sidecar-reader.js';
import { checkpointSettings } from './checkpoint.js';
import { SidecarWriter, type SidecarCheckpointOptions } from './sidecar-writer.js';
import { SignPipeline, epochSetting, identity, newStream, type ForwardSecureOptions } from './sign.js';
import { verifyLog } from './verify.js';

export interface FollowOptions extends KeyOptions, SidecarCheckpointOptions, ForwardSecureOptions {
  /** The sidecar (default: the log's path + `.mac`). */
  sidecar?: FilePath;
  /** Framing of a new sidecar (a resumed one keeps its own, and so does it keep how it is keyed: forwardSecure). */
  framing?: Framing;
  /** The log id of a new sidecar with no predecessor (default: random); rotations and restarts carry it on. */
  logId?: string;
  batchSize?: number;
  inflight?: number;
  /** Aborting stops the follower: it signs the complete records read, writes the trailer and resolves. */
  signal?: AbortSignal;
  /** How often to look for new data when no fs.watch event came (ms; default 250). */
  pollMs?: number;
  /** Use fs.watch (default true); false: polling only (filesystems where inotify sees nothing, e.g. some network mounts). */
  watch?: boolean;
  /** After a rename rotation, how long the old file must stay quiet before it is finished (ms; default 1000). */
  rotateGraceMs?: number;
  onEvent?: (e: FollowEvent) => void;
}

export type FollowEvent =
  | {
      type: 'start';
      log: string;
      sidecar: string;
      streamId: string;
      logId: string;
      keys: 'kms' | 'forward-secure';
      resumed: { checkpoint: number; records: number } | null;
      /** The stream this one continues; `restart`: a forward-secure stream begun after a restart, in the same sidecar. */
      previous: string | null;
      restart?: boolean;
    }
  | { type: 'checkpoint'; anchor: CheckpointAnchor; lagBytes: number }
  | {
      type: 'rotate';
      how: 'rename' | 'truncate';
      log: string;
      rotatedLog: string | null;
      sidecar: string;
      streamId: string;
      records: number;
      whileStopped: boolean;
    }
  | { type: 'stop'; summary: FollowSummary };

export interface FollowSummary {
  log: string;
  /** The sidecar of the current segment. */
  sidecar: string;
  streamId: string;
  /** Records and log bytes this segment's sidecar covers, and its checkpoints. */
  records: number;
  bytes: number;
  checkpoints: number;
  /** Sidecars started by this run (1 + rotations). */
  segments: number;
  elapsedMs: number;
}

/** The follower cannot continue the sidecar it found: the log or the sidecar is not what it signed. */
export class FollowError extends Error {
  override name = 'FollowError';
}

/** Bytes kept from the top of a segment (to find its copy after copytruncate) and before the read position (to notice a truncation). */
const HEAD_MEMO = 256;
const TAIL_MEMO = 64;
const READ_SIZE = 1 << 20;

interface Segment {
  fh: FileHandle;
  ino: bigint;
  header: SidecarHeader;
  keys: SigningKeys;
  sidecarFh: FileHandle;
  writer: SidecarWriter;
  pipeline: SignPipeline;
  /** Where its sidecar is: the live path, or where it was set aside once finished. */
  sidecar: string;
  /** Finished (trailer written, files closed). */
  retired: boolean;
  /** Log bytes read and framed. */
  readPos: number;
  head: Buffer;
  tail: Buffer;
  lastGrowth: number;
  rotatedAt: number;
}

export async function followLog(path: FilePath, opts: FollowOptions): Promise<FollowSummary> {
  assertPath(path, 'followLog: the log');
  assertKeyOptions(opts, 'followLog');
  if (opts.sidecar !== undefined) assertPath(opts.sidecar, 'followLog: the sidecar');
  checkpointSettings(opts);
  if (epochSetting(opts, 'followLog') !== null && !opts.onCheckpoint)
    throw new TypeError(
      "followLog: forwardSecure needs onCheckpoint: each stream's nonce is shipped there, and kept nowhere else",
    );
  const engine = await engineFor(opts, 'followLog');
  return new Follower(pathString(path), opts, engine).run();
}

class Follower {
  private readonly sidecarPath: string;
  private readonly dir: string;
  private readonly base: string;
  private readonly every: number;
  private readonly intervalMs: number;
  /** The key epoch of new forward-secure sidecars, or null (kms). */
  private readonly epochMs: number | null;
  /** The log's id: a resumed sidecar's, carried through rotations. */
  private logId: string | undefined;
  private readonly pollMs: number;
  private readonly graceMs: number;
  private readonly t0 = performance.now();
  private readonly buf = Buffer.allocUnsafeSlow(TAIL_MEMO + READ_SIZE);
  private seg!: Segment;
  private segments = 0;
  private watcher: FSWatcher | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly path: string,
    private readonly opts: FollowOptions,
    private readonly engine: MacEngine,
  ) {
    this.sidecarPath = opts.sidecar === undefined ? `${path}.mac` : pathString(opts.sidecar);
    this.dir = dirname(path);
    this.base = basename(path);
    ({ every: this.every, intervalMs: this.intervalMs } = checkpointSettings(opts));
    this.epochMs = epochSetting(opts, 'followLog');
    this.logId = opts.logId;
    this.pollMs = opts.pollMs ?? 250;
    this.graceMs = opts.rotateGraceMs ?? 1000;
  }

  private get stopped(): boolean {
    return this.opts.signal?.aborted === true;
  }

  async run(): Promise<FollowSummary> {
    const onAbort = () => this.wake?.();
    this.opts.signal?.addEventListener('abort', onAbort);
    let fh: FileHandle | null = null;
    try {
      if (this.opts.watch !== false) this.watcher = this.watchDir();
      fh = await this.openLog();
      if (!fh)
        return {
          log: this.path,
          sidecar: this.sidecarPath,
          streamId: '',
          records: 0,
          bytes: 0,
          checkpoints: 0,
          segments: 0,
          elapsedMs: performance.now() - this.t0,
        };
      if (await exists(this.sidecarPath)) await this.resume(fh);
      else await this.startSegment(fh, null);
      await this.follow();
      return await this.finish();
    } catch (err) {
      // A handle left for the garbage collector to close is an uncaught error from Node 26 on: the
      // files this signer opened are closed here, whatever failed (closing one twice is harmless).
      const seg = this.seg as Segment | undefined;
      await Promise.allSettled([fh?.close(), seg?.fh.close(), seg?.sidecarFh.close()]);
      throw err;
    } finally {
      this.opts.signal?.removeEventListener('abort', onAbort);
      this.watcher?.close();
    }
  }

  /** Reads and signs until stopped, handling rotations. */
  private async follow(): Promise<void> {
    while (!this.stopped && !this.seg.retired) {
      if (this.seg.writer.epochDueIn() === 0) await this.endEpoch();
      const got = await this.read();
      const seg = this.seg;
      if (got === 'truncated') {
        await this.rotate('truncate');
        continue;
      }
      if (got > 0) {
        if (seg.writer.due(Date.now(), false)) await seg.writer.checkpoint(); // records waiting: a heartbeat only when idle
        continue;
      }
      // at the end of the data: sign the complete records now, then look around and wait (and beat)
      await seg.pipeline.flush();
      if (seg.writer.due()) await seg.writer.checkpoint(true);
      const now = Date.now();
      if (!seg.rotatedAt && (await this.renamedAway(seg))) seg.rotatedAt = now;
      if (seg.rotatedAt && now - Math.max(seg.rotatedAt, seg.lastGrowth) >= this.graceMs) {
        await this.rotate('rename');
        continue;
      }
      await this.sleep(Math.min(this.pollMs, seg.writer.dueIn(now), seg.writer.epochDueIn(now)));
    }
  }

  /** The key epoch is over: everything read is MACed with its key and sealed, then the keys ratchet. */
  private async endEpoch(): Promise<void> {
    await this.seg.pipeline.flush();
    await this.seg.writer.endEpoch();
  }

  /** Feeds the next bytes of the log; 0 at the end of the data; 'truncated' when the bytes before the read position changed. */
  private async read(): Promise<number | 'truncated'> {
    const seg = this.seg;
    const m = seg.tail.length;
    const { bytesRead } = await seg.fh.read(this.buf, 0, this.buf.length, seg.readPos - m);
    if (bytesRead < m || !this.buf.subarray(0, m).equals(seg.tail)) return 'truncated';
    const n = bytesRead - m;
    if (n === 0) return 0;
    const chunk = this.buf.subarray(m, bytesRead);
    if (seg.head.length < HEAD_MEMO)
      seg.head = Buffer.concat([seg.head, chunk.subarray(0, HEAD_MEMO - seg.head.length)]);
    await seg.pipeline.push(chunk);
    seg.readPos += n;
    seg.tail = Buffer.from(this.buf.subarray(Math.max(0, bytesRead - TAIL_MEMO), bytesRead));
    seg.lastGrowth = Date.now();
    return n;
  }

  /** Whether the log's path now names another file, or none (the file we read was renamed or removed). */
  private async renamedAway(seg: Segment): Promise<boolean> {
    try {
      return (await stat(this.path, { bigint: true })).ino !== seg.ino;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw err;
    }
  }

  /**
   * Finishes the current segment — a trailer, and the sidecar renamed after
   * the rotated file — and starts the next one, chained to it.
   */
  private async rotate(how: 'rename' | 'truncate'): Promise<void> {
    const seg = this.seg;
    // renamed: that file is finished, its last record too; truncated: what was not read is gone
    if (how === 'rename') await seg.pipeline.end();
    else await seg.pipeline.flush();
    const rotatedLog = how === 'rename' ? await this.findByInode(seg.ino) : await this.findCopy(seg);
    const link = await this.retire(seg.writer, seg.sidecarFh, seg.header, how, rotatedLog, false);
    seg.retired = true;
    if (how === 'truncate') return this.startSegment(seg.fh, link);
    await seg.fh.close();
    const fh = await this.openLog();
    if (fh) await this.startSegment(fh, link); // else stopped before the new file appeared: the summary is the old segment's
  }

  /** Closes a sidecar with its trailer and moves it next to the rotated log; returns the link its successor continues. */
  private async retire(
    writer: SidecarWriter,
    sidecarFh: FileHandle,
    header: SidecarHeader,
    how: 'rename' | 'truncate',
    rotatedLog: string | null,
    whileStopped: boolean,
  ): Promise<ChainLink> {
    await writer.close();
    await sidecarFh.close();
    if (this.seg?.writer === writer) this.seg.keys.destroy();
    const h = writer.chainHead;
    const sidecar = await this.setAside(header.streamId, rotatedLog);
    if (this.seg && this.seg.writer === writer) this.seg.sidecar = sidecar;
    this.opts.onEvent?.({
      type: 'rotate',
      how,
      log: this.path,
      rotatedLog,
      sidecar,
      streamId: header.streamId,
      records: h.records,
      whileStopped,
    });
    return {
      streamId: header.streamId,
      checkpoint: h.index,
      records: h.records,
      head: h.mac,
      how: 'rotation',
      logBytes: h.logBytes,
    };
  }

  /**
   * A new stream for `fh`: a new sidecar, from the log's first byte (the
   * sidecar appears with its header complete, or not at all: a crash never
   * leaves a stub that blocks a restart); or, with `restart`, a new segment
   * of the sidecar open in `restart.fh`, written at `restart.at`, that takes
   * up the log where the segment before it ends. `previous` is the chain it
   * continues.
   */
  private async startSegment(
    fh: FileHandle,
    previous: ChainLink | null,
    restart?: { fh: FileHandle; at: number; epochMs: number },
  ): Promise<void> {
    const ino = (await fh.stat({ bigint: true })).ino;
    const { header, keys, nonce } = await newStream(this.engine, {
      framing: this.opts.framing ?? { type: 'line' },
      checkpointEvery: this.every,
      previous,
      logInode: String(ino),
      logId: this.logId,
      heartbeatMs: this.intervalMs,
      epochMs: restart ? restart.epochMs : this.epochMs, // a restarted sidecar keeps how it is keyed
    });
    this.logId = header.logId;
    let writer: SidecarWriter;
    let sidecarFh: FileHandle;
    let head: Buffer = Buffer.alloc(0);
    let tail: Buffer = Buffer.alloc(0);
    if (restart) {
      sidecarFh = restart.fh;
      writer = await SidecarWriter.create(sidecarFh, header, this.writerOptions(fh, keys), restart.at, nonce);
      const at = previous!.logBytes!;
      head = await readAt(fh, 0, Math.min(HEAD_MEMO, at));
      tail = await readAt(fh, Math.max(0, at - TAIL_MEMO), Math.min(TAIL_MEMO, at));
    } else {
      const tmp = await createTemp(this.sidecarPath);
      let created: SidecarWriter | undefined;
      try {
        created = await SidecarWriter.create(tmp.fh, header, this.writerOptions(fh, keys), 0, nonce);
        await tmp.publish();
      } catch (err) {
        created?.discard();
        await tmp.discard();
        keys.destroy();
        throw err;
      }
      writer = created;
      sidecarFh = tmp.fh;
    }
    await writer.begin();
    this.install(fh, ino, header, keys, sidecarFh, writer, head, tail);
    this.opts.onEvent?.({
      type: 'start',
      log: this.path,
      sidecar: this.sidecarPath,
      streamId: header.streamId,
      logId: header.logId!,
      keys: header.keys!,
      resumed: null,
      previous: previous?.streamId ?? null,
      ...(restart ? { restart: true } : {}),
    });
  }

  /** Makes a segment current; `head` and `tail` are the bytes at the top of the log and just before where reading resumes. */
  private install(
    fh: FileHandle,
    ino: bigint,
    header: SidecarHeader,
    keys: SigningKeys,
    sidecarFh: FileHandle,
    writer: SidecarWriter,
    head: Buffer,
    tail: Buffer,
  ): void {
    const h = writer.chainHead;
    const start = { records: h.records, bytes: h.logBytes };
    this.seg = {
      fh,
      ino,
      header,
      keys,
      sidecarFh,
      writer,
      pipeline: new SignPipeline(keys, header, writer, {
        batchSize: this.opts.batchSize,
        inflight: this.opts.inflight,
        start,
        checkNdjson: false,
      }),
      sidecar: this.sidecarPath,
      retired: false,
      readPos: start.bytes,
      head,
      tail,
      lastGrowth: Date.now(),
      rotatedAt: 0,
    };
    this.segments++;
  }

  private writerOptions(fh: FileHandle, keys: SigningKeys) {
    return {
      ...this.opts,
      keys,
      durable: true,
      heartbeat: true,
      identity: identity(resolve(this.path)),
      onCheckpoint: async (a: Anchor) => {
        await this.opts.onCheckpoint?.(a);
        if (a.type !== 'checkpoint' || !this.opts.onEvent) return;
        const size = await fh.stat().then(
          (s) => s.size,
          () => a.logBytes,
        );
        this.opts.onEvent({ type: 'checkpoint', anchor: a, lagBytes: Math.max(0, size - a.logBytes) });
      },
    };
  }

  /**
   * Continues the sidecar found at start: it must be ours (version 2 or 3,
   * the same key, intact). A kms-keyed one is continued (the same stream),
   * once the whole signed prefix has been checked against the log; if the
   * log was rotated or truncated while the signer was stopped, the old
   * sidecar is finished and a new one chained to it; if it was changed in
   * place, the signer refuses and leaves the sidecar as it is. A
   * forward-secure one gets a new stream (resumeForwardSecure).
   */
  private async resume(fh: FileHandle): Promise<void> {
    const sf = await openSidecar(this.sidecarPath).catch((err: unknown) => {
      if (err instanceof SidecarFormatError)
        throw new FollowError(`${this.sidecarPath}: ${err.message}; not continuing it`);
      throw err;
    });
    try {
      const { header } = sf;
      const name = this.sidecarPath;
      if (header.version < 2)
        throw new FollowError(
          `${name} is a version ${header.version} sidecar, which has no checkpoints to continue from: move it away to start a new one`,
        );
      if (header.keyArn !== this.engine.keyArn || header.macAlgorithm !== this.engine.algorithm) {
        throw new FollowError(
          `${name} was made with key ${header.keyArn} (${header.macAlgorithm}), not ${this.engine.keyArn} (${this.engine.algorithm}): not continuing it`,
        );
      }
      const forward = header.keys === 'forward-secure';
      if (!forward && !(await headerVerifies(sf, this.engine)))
        throw new FollowError(`${name}: its header does not verify with key ${this.engine.keyArn}`);
      // a forward-secure stream's keys are gone: its blocks are checked by their structure alone (sidecar-reader.ts)
      const trusted = kmsStreamKeys(this.engine);
      const issues = new IssueLog(1);
      const state = await scanSidecar(
        sf,
        async (seg) => (seg.header.keys === 'forward-secure' ? null : trusted),
        issues,
      );
      if (issues.tampered) throw new FollowError(`${name}: ${issues.done()[0]!.message}`);
      this.logId = header.logId;
      const last = state.segments.at(-1)!;
      if (last.header.keys === 'forward-secure') {
        if (!this.opts.onCheckpoint)
          throw new FollowError(
            `${name} is forward-secure: continuing it starts a new stream, whose nonce must be shipped (give a checkpoint sink)`,
          );
        return await this.resumeForwardSecure(fh, sf.header, state);
      }
      const signedBytes = state.signedBytes ?? 0;
      const st = await fh.stat({ bigint: true });
      const size = Number(st.size);
      const prefix = await verifyLog(fileChunks(fh, 0, Math.min(size, signedBytes)), name, {
        engine: this.engine,
        maxIssues: 1,
      });
      const intact =
        size >= signedBytes && !prefix.tampered && prefix.records === state.signed && prefix.verified === state.signed;
      const renamed = header.logInode !== undefined && header.logInode !== String(st.ino);
      if (!intact && !renamed && size >= signedBytes) {
        const first = prefix.issues.find((i) => i.kind !== 'unsigned');
        throw new FollowError(
          `${this.path} no longer holds the records its sidecar signed${first ? ` (${first.message})` : ''}: it was changed while the signer was stopped, or another signer is appending to it now. ` +
            `Not continuing: keep ${name} as evidence (kms-hmac verify shows what changed) and move it away to start a new sidecar.`,
        );
      }
      const sidecarFh = await open(name, constants.O_RDWR | constants.O_NOFOLLOW);
      const keys = kmsKeys(this.engine);
      const writer = await SidecarWriter.resume(sidecarFh, last, state.validEnd, this.writerOptions(fh, keys));
      if (!intact) {
        // rotated (another file at the path) or truncated (copytruncate) while stopped: finish the old sidecar, chain a new one
        const rotatedLog = renamed ? await this.findByInode(BigInt(header.logInode!)) : null;
        const link = await this.retire(
          writer,
          sidecarFh,
          last.header,
          renamed ? 'rename' : 'truncate',
          rotatedLog,
          true,
        );
        return this.startSegment(fh, link);
      }
      const head = await readAt(fh, 0, Math.min(HEAD_MEMO, signedBytes));
      const tail = await readAt(fh, Math.max(0, signedBytes - TAIL_MEMO), Math.min(TAIL_MEMO, signedBytes));
      this.install(fh, st.ino, last.header, keys, sidecarFh, writer, head, tail);
      const h = writer.chainHead;
      this.opts.onEvent?.({
        type: 'start',
        log: this.path,
        sidecar: name,
        streamId: last.header.streamId,
        logId: last.header.logId ?? '',
        keys: 'kms',
        resumed: { checkpoint: h.index, records: h.records },
        previous: last.header.previous?.streamId ?? null,
      });
    } finally {
      await sf.fh.close();
    }
  }

  /**
   * A forward-secure sidecar after a restart: its last stream cannot be
   * continued (its keys were destroyed; its nonce never touched this disk).
   * What a crash left unfinished after its last complete block is dropped
   * (and a last stream with no block at all: it signed nothing), and a new
   * stream begins there, chained to that block's checkpoint, with a fresh
   * nonce shipped. If the log was rotated or truncated while the signer was
   * stopped, the old sidecar is set aside as it is (it cannot get a
   * trailer) and a new sidecar continues it. The records signed before
   * cannot be checked here: the verifier checks them, with the nonces.
   */
  private async resumeForwardSecure(fh: FileHandle, first: SidecarHeader, state: SidecarState): Promise<void> {
    const name = this.sidecarPath;
    let last: SegmentState = state.segments.at(-1)!;
    let cut = last.end; // after its trailer, when it has one
    let link: ChainLink | null;
    if (last.last) link = linkTo(last, 'restart');
    else {
      cut = last.at;
      link = last.header.previous ?? null;
      last = state.segments.at(-2) ?? last;
    }
    const st = await fh.stat({ bigint: true });
    const renamed = first.logInode !== undefined && first.logInode !== String(st.ino);
    const truncated = Number(st.size) < (link?.how === 'restart' ? link.logBytes! : 0);
    const sidecarFh = await open(name, constants.O_RDWR | constants.O_NOFOLLOW);
    try {
      await sidecarFh.truncate(cut);
      await sidecarFh.datasync();
    } catch (err) {
      await sidecarFh.close();
      throw err;
    }
    if (cut === 0 || renamed || truncated) {
      await sidecarFh.close();
      if (cut === 0) {
        // its only stream signed nothing: the sidecar starts over (chained as it was)
        await unlink(name);
        await syncDir(this.dir);
        return this.startSegment(fh, link);
      }
      const rotatedLog = renamed ? await this.findByInode(BigInt(first.logInode!)) : null;
      const sidecar = await this.setAside(last.header.streamId, rotatedLog);
      this.opts.onEvent?.({
        type: 'rotate',
        how: renamed ? 'rename' : 'truncate',
        log: this.path,
        rotatedLog,
        sidecar,
        streamId: last.header.streamId,
        records: link?.records ?? 0,
        whileStopped: true,
      });
      return this.startSegment(fh, link && { ...link, how: 'rotation' });
    }
    await this.startSegment(fh, link, { fh: sidecarFh, at: cut, epochMs: this.opts.epochMs ?? last.header.epochMs! });
  }

  /** Stops: signs the complete records read so far, closes the sidecar with its trailer. */
  private async finish(): Promise<FollowSummary> {
    const seg = this.seg;
    if (!seg.retired) {
      for (;;) {
        const got = await this.read();
        if (got === 0 || got === 'truncated') break;
      }
      await seg.pipeline.flush();
      await seg.writer.close();
      seg.keys.destroy();
      await seg.sidecarFh.close();
      await seg.fh.close();
    }
    const h = seg.writer.chainHead;
    const summary: FollowSummary = {
      log: this.path,
      sidecar: seg.sidecar,
      streamId: seg.header.streamId,
      records: h.records,
      bytes: h.logBytes,
      checkpoints: h.index + 1,
      segments: this.segments,
      elapsedMs: performance.now() - this.t0,
    };
    this.opts.onEvent?.({ type: 'stop', summary });
    return summary;
  }

  /** Opens the log, waiting for it to appear; null if stopped first. */
  private async openLog(): Promise<FileHandle | null> {
    for (;;) {
      try {
        return await open(this.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (this.stopped) return null;
      await this.sleep(this.pollMs);
    }
  }

  /** The rotated file with this inode, next to the log (logrotate keeps the log's name as a prefix). */
  private async findByInode(ino: bigint): Promise<string | null> {
    for (const name of await this.siblings()) {
      const s = await lstat(join(this.dir, name), { bigint: true }).catch(() => null);
      if (s?.isFile() && s.ino === ino) return join(this.dir, name);
    }
    return null;
  }

  /** The copy copytruncate made: the newest sibling that starts with the bytes this segment started with. */
  private async findCopy(seg: Segment): Promise<string | null> {
    if (seg.head.length === 0) return null;
    let best: { path: string; mtime: number } | null = null;
    const head = Buffer.alloc(seg.head.length);
    for (const name of await this.siblings()) {
      const p = join(this.dir, name);
      const s = await lstat(p, { bigint: true }).catch(() => null);
      if (!s?.isFile() || s.ino === seg.ino || s.size < BigInt(head.length)) continue;
      const fh = await open(p, 'r').catch(() => null);
      if (!fh) continue;
      try {
        const { bytesRead } = await fh.read(head, 0, head.length, 0);
        if (bytesRead === head.length && head.equals(seg.head) && (!best || Number(s.mtimeMs) > best.mtime))
          best = { path: p, mtime: Number(s.mtimeMs) };
      } finally {
        await fh.close();
      }
    }
    return best?.path ?? null;
  }

  private async siblings(): Promise<string[]> {
    const names = await readdir(this.dir);
    const sidecar = basename(this.sidecarPath);
    return names.filter(
      (n) => n !== this.base && n !== sidecar && n.startsWith(this.base) && !n.endsWith('.mac') && !n.endsWith('.tmp'),
    );
  }

  /**
   * Moves the finished sidecar away from the live sidecar path: next to the
   * rotated log as `<rotated>.mac`, else as `<log>.<stream id>.mac`. link +
   * unlink never replaces an existing file (nor follows a planted symlink).
   */
  private async setAside(streamId: string, rotatedLog: string | null): Promise<string> {
    const fallback = `${this.path}.${streamId}.mac`;
    for (const target of rotatedLog ? [`${rotatedLog}.mac`, fallback] : [fallback]) {
      try {
        await link(this.sidecarPath, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      await unlink(this.sidecarPath);
      await syncDir(this.dir);
      return target;
    }
    throw new FollowError(`cannot set ${this.sidecarPath} aside: ${fallback} exists`);
  }

  private watchDir(): FSWatcher | null {
    try {
      // the log's own name: writes to it, and its rename or re-creation (not the sidecar's writes beside it)
      const w = watch(this.dir, { persistent: false }, (_event, name) => {
        if (name === null || String(name) === this.base) this.wake?.();
      });
      w.on('error', () => {}); // polling carries on
      return w;
    } catch {
      return null; // no inotify here (or out of watches): polling only
    }
  }

  /** Waits for a change in the directory, `ms`, or the stop signal. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.wake = done;
    });
  }
}

/** The link a new stream makes to a segment's last checkpoint. */
function linkTo(seg: SegmentState, how: 'restart' | 'rotation'): ChainLink {
  const l = seg.last!;
  return {
    streamId: seg.header.streamId,
    checkpoint: l.index,
    records: l.records,
    head: l.mac,
    how,
    logBytes: l.logBytes,
  };
}

/** `len` bytes of `fh` at `at`. */
async function readAt(fh: FileHandle, at: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len);
  await fh.read(b, 0, len, at);
  return b;
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
