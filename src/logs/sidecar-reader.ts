/**
 * Reading a sidecar (format.ts): its header, what it covers, and its record
 * MACs in order.
 *
 * scanSidecar() walks the structure first — for versions 2 and 3 only the
 * stream headers and checkpoint entries, one small read per block — and
 * settles what the sidecar covers: through its last checkpoint that
 * verifies, or (version 1) through its trailer. A sidecar whose signer
 * crashed may end with blocks the crash left unfinished (at most
 * CRASH_TAIL_BLOCKS): that is not tampering; their records are simply not
 * signed. More than that is. A version-3 sidecar may hold several streams
 * (segments), each with its own keys: a forward-secure signer starts a new
 * one, chained to the last, after a restart.
 *
 * MacWindow then serves the record MACs to the verifier in sequence order,
 * reading the sidecar forward once and checking every checkpoint's MAC (the
 * chain) as its block goes past, with its stream's key of its epoch. It
 * keeps only a window of entries: the verifier never looks further back
 * than its alignment window.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { MacEngine } from './engine.js';
import {
  CRASH_TAIL_BLOCKS,
  HEADER_READ,
  SIDECAR_MAGIC,
  SidecarFormatError,
  TRAILER_AT_COUNT,
  TRAILER_AT_LOG_BYTES,
  TRAILER_FIXED,
  TRAILER_MAGIC,
  checkpointMacInput,
  decodeCheckpoint,
  decodeHeader,
  entryLayout,
  headerMacInput,
  nodeDigestName,
  readU64,
  trailerMacInput,
  type CheckpointFields,
  type EntryLayout,
  type SidecarHeader,
} from './format.js';
import type { FilePath } from './input.js';
import type { IssueLog } from './issues.js';
import type { StreamKeys } from './keys.js';

export interface SidecarFile {
  fh: FileHandle;
  /** Size when opened: a live sidecar may grow meanwhile; only these bytes are read. */
  size: number;
  header: SidecarHeader;
  headerBytes: Buffer;
  headerMac: Buffer;
  streamId: Buffer;
  macLength: number;
  /** Where the blocks (v2) or record MACs (v1) start. */
  recordsAt: number;
}

/** Opens a sidecar and parses its header (SidecarFormatError when it is not one, or damaged). */
export async function openSidecar(path: FilePath): Promise<SidecarFile> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(size, HEADER_READ));
    await readFully(fh, head, 0);
    const { header, headerBytes, macOffset } = decodeHeader(head);
    const L = header.macLength;
    return {
      fh,
      size,
      header,
      headerBytes,
      headerMac: Buffer.from(head.subarray(macOffset, macOffset + L)),
      streamId: Buffer.from(header.streamId, 'hex'),
      macLength: L,
      recordsAt: macOffset + L,
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Whether the header MAC verifies with `engine`. */
export async function headerVerifies(sf: SidecarFile, engine: MacEngine): Promise<boolean> {
  return (
    sf.headerMac.length === sf.macLength &&
    (await engine.verify(headerMacInput(sf.streamId, sf.headerBytes), sf.headerMac))
  );
}

/** A checkpoint as found in a sidecar. */
export interface StoredCheckpoint extends CheckpointFields {
  mac: Buffer;
  /** Version 3: the block digest the entry stores. */
  digest: Buffer | null;
  /** File offsets of its entry and of the end of its block. */
  at: number;
  end: number;
}

/** One stream of a sidecar (version 3 may hold several: a forward-secure signer starts one after each restart). */
export interface SegmentState {
  header: SidecarHeader;
  headerBytes: Buffer;
  headerMac: Buffer;
  streamId: Buffer;
  /** File offsets of its header and of its first block. */
  at: number;
  recordsAt: number;
  /** Where in the log it starts: record index and byte offset. */
  start: { records: number; logBytes: number };
  /** The MAC its checkpoint 0 chains to: the stream it continues, else its header MAC. */
  origin: Buffer;
  /** Its last checkpoint that verifies, and how many blocks lead to it. */
  last: StoredCheckpoint | null;
  blocks: number;
  /** Finished with a trailer that verifies. */
  closed: boolean;
  /** File offset where it ends: after its trailer, or its last block. */
  end: number;
  /** The record (seq) at which each of its key epochs begins, ascending. */
  epochs: { seq: number; epoch: number }[];
}

export interface SidecarState {
  /** Records covered: through the last valid checkpoint (v2+), or the trailer's count or what a truncated sidecar still holds (v1). */
  signed: number;
  /** Log bytes covered, when known. */
  signedBytes: number | null;
  /** A trailer that verifies: the signer finished this sidecar's last stream. */
  closed: boolean;
  /** Version 2+: the last checkpoint that verifies (the chain head), and how many blocks lead to it (in all segments). */
  last: StoredCheckpoint | null;
  blocks: number;
  /** Version 2+: its streams, in order (one, except after forward-secure restarts). */
  segments: SegmentState[];
  /** Where the sidecar's valid content ends, its last trailer excepted (a signer continuing its last stream truncates to here). */
  validEnd: number;
  /** Bytes after it that a crash left behind (an unfinished block or trailer). */
  tornBytes: number;
  /** Version 1 only: no trailer. */
  truncated: boolean;
}

/**
 * The keys of a stream, by its header: null when they cannot be had (a
 * forward-secure stream whose nonce the caller does not hold). Without keys
 * a segment is walked by its structure alone: each block's MACs against the
 * digest its entry stores (version 3), which tells a crash's leftovers from
 * a finished block — what a restarted forward-secure signer needs, since it
 * holds no key of an earlier stream.
 */
export type KeysFor = (segment: SegmentState) => Promise<StreamKeys | null>;

/** The segment whose header starts the file. */
export function firstSegment(sf: SidecarFile): SegmentState {
  const h = sf.header;
  const link = h.previous;
  return {
    header: h,
    headerBytes: sf.headerBytes,
    headerMac: sf.headerMac,
    streamId: sf.streamId,
    at: 0,
    recordsAt: sf.recordsAt,
    start: link?.how === 'restart' ? { records: link.records, logBytes: link.logBytes! } : { records: 0, logBytes: 0 },
    origin: link?.head ?? sf.headerMac,
    last: null,
    blocks: 0,
    closed: false,
    end: sf.recordsAt,
    epochs: [],
  };
}

/**
 * Settles what the sidecar covers, reporting sidecar-level issues to `issues`.
 * `visit` sees every checkpoint entry the walk finds, with its segment (for
 * comparison with shipped checkpoints); entries are verified later, by
 * MacWindow, except those a crash may have left unfinished.
 */
export async function scanSidecar(
  sf: SidecarFile,
  keysFor: KeysFor,
  issues: IssueLog,
  visit?: (c: StoredCheckpoint, segment: SegmentState) => void,
): Promise<SidecarState> {
  if (sf.header.version === 1) {
    const keys = await keysFor(firstSegment(sf));
    return scanV1(sf, keys!.engineFor(0), issues);
  }
  return scanBlocks(sf, keysFor, issues, visit);
}

async function scanV1(sf: SidecarFile, engine: MacEngine, issues: IssueLog): Promise<SidecarState> {
  const { fh, size, recordsAt, macLength: L, streamId } = sf;
  const T = TRAILER_FIXED + L;
  const state: SidecarState = {
    signed: 0,
    signedBytes: null,
    closed: false,
    last: null,
    blocks: 0,
    segments: [],
    validEnd: size,
    tornBytes: 0,
    truncated: false,
  };
  const tail = Buffer.alloc(Math.max(0, Math.min(T, size - recordsAt)));
  await readFully(fh, tail, size - tail.length);
  if (tail.length === T && tail.subarray(0, TRAILER_MAGIC.length).equals(TRAILER_MAGIC)) {
    const count = readU64(tail, TRAILER_AT_COUNT);
    const logBytes = readU64(tail, TRAILER_AT_LOG_BYTES);
    const consistent = recordsAt + count * L + T === size;
    if (consistent && (await engine.verify(trailerMacInput(streamId, count, logBytes), tail.subarray(TRAILER_FIXED)))) {
      return { ...state, signed: count, signedBytes: logBytes, closed: true };
    }
    const held = Math.floor((size - recordsAt - T) / L);
    issues.add({
      kind: 'sidecar-trailer',
      count: 1,
      message: `the sidecar trailer does not verify (it says ${count} records; the sidecar holds ${held}): the trailer or the sidecar length was altered`,
    });
    return { ...state, signed: held };
  }
  let n = Math.floor((size - recordsAt) / L);
  // a partly cut trailer starts at an entry boundary: drop it
  const magic = Buffer.alloc(TRAILER_MAGIC.length);
  for (let k = Math.max(0, n - Math.ceil(T / L) - 1); k < n; k++) {
    const at = recordsAt + k * L;
    if (at + magic.length <= size) {
      await readFully(fh, magic, at);
      if (magic.equals(TRAILER_MAGIC)) {
        n = k;
        break;
      }
    }
  }
  issues.add({
    kind: 'sidecar-truncated',
    count: 1,
    message: `the sidecar is truncated: its trailer is missing, so it covers only the first ${n} records and the signed record count is unknown`,
  });
  return { ...state, signed: n, truncated: true };
}

/** Versions 2 and 3: the segments and their blocks, walked by their checkpoint entries (one small read per block). */
async function scanBlocks(
  sf: SidecarFile,
  keysFor: KeysFor,
  issues: IssueLog,
  visit?: (c: StoredCheckpoint, segment: SegmentState) => void,
): Promise<SidecarState> {
  const { size, macLength: L } = sf;
  const T = TRAILER_FIXED + L;
  const file = new PositionalReader(sf.fh, size);
  const segments: SegmentState[] = [];
  let seg = firstSegment(sf);
  let keys = await keysFor(seg);
  let layout = entryLayout(seg.header);
  /** The most a crash can leave after the last checkpoint on disk (format.ts: CRASH_TAIL_BLOCKS). */
  const crashTailOf = (h: SidecarHeader) => CRASH_TAIL_BLOCKS * (entryLayout(h).size + h.checkpointEvery! * L) + T;
  let crashTail = crashTailOf(seg.header);
  let pos = seg.recordsAt;
  /** The current segment's blocks that end within crashTail of the end (a crash may have left them unfinished), and the one before. */
  let recent: StoredCheckpoint[] = [];
  let before: StoredCheckpoint | null = null;
  /** Where each epoch of the current segment begins, by block. */
  let epochs: { seq: number; epoch: number; block: number }[] = [];
  let trailerAt = -1;
  let damage: { kind: 'sidecar-trailer' | 'sidecar-checkpoint' | 'sidecar-header'; message: string } | null = null;
  const endSegment = () => {
    seg.last = recent.at(-1) ?? before;
    seg.epochs = epochs.filter((e) => e.block < seg.blocks).map(({ seq, epoch }) => ({ seq, epoch }));
    segments.push(seg);
  };
  while (pos < size) {
    const entry = await file.read(pos, Math.min(layout.size, size - pos));
    const magic = entry.subarray(0, 8);
    if (magic.equals(TRAILER_MAGIC)) {
      trailerAt = pos;
      if (size - pos < T) break; // a trailer cut short by a crash while closing
      const t = await file.read(pos, T);
      const count = readU64(t, TRAILER_AT_COUNT);
      const logBytes = readU64(t, TRAILER_AT_LOG_BYTES);
      const last = recent.at(-1) ?? before;
      const ok =
        last !== null &&
        count === last.records &&
        logBytes === last.logBytes &&
        (keys === null ||
          (await keys
            .engineFor(last.epoch)
            .verify(trailerMacInput(seg.streamId, count, logBytes, last.mac), t.subarray(TRAILER_FIXED))));
      // version 2: the trailer ends the file; version 3: it ends a stream, which another may follow
      if (!ok || (seg.header.version < 3 && pos + T !== size)) {
        damage = {
          kind: 'sidecar-trailer',
          message: `the sidecar trailer does not verify against its last checkpoint ${last ? `${last.index} (record ${last.records})` : '-'}: the trailer, or the sidecar around it, was altered`,
        };
        break;
      }
      seg.closed = true;
      trailerAt = -1;
      pos += T;
      seg.end = pos;
      if (pos === size) break;
      const next = await file.read(pos, 8);
      if (!next.equals(SIDECAR_MAGIC)) {
        damage = {
          kind: 'sidecar-trailer',
          message: `the sidecar holds ${size - pos} bytes after the trailer of stream ${seg.header.streamId} that are not a stream: it was altered`,
        };
        break;
      }
      continue;
    }
    if (magic.equals(SIDECAR_MAGIC)) {
      // the next segment: a forward-secure signer restarted after the last block (or trailer) of this one
      const prev = seg;
      endSegment();
      let next: SegmentState | null = null;
      let nextKeys: StreamKeys | null = null;
      try {
        next = await nextSegment(file, pos, size, prev);
        nextKeys = await keysFor(next);
        if (
          nextKeys !== null &&
          !(await nextKeys.engineFor(0).verify(headerMacInput(next.streamId, next.headerBytes), next.headerMac))
        )
          throw new SidecarFormatError('has a header that does not verify', true);
      } catch (err) {
        if (!(err instanceof SidecarFormatError)) throw err;
        damage = {
          kind: 'sidecar-header',
          message: `the stream that follows stream ${prev.header.streamId} at byte ${pos} ${err.message}: the sidecar was altered`,
        };
        break;
      }
      seg = next;
      keys = nextKeys;
      layout = entryLayout(seg.header);
      crashTail = crashTailOf(seg.header);
      recent = [];
      before = null;
      epochs = [];
      pos = seg.recordsAt;
      continue;
    }
    if (seg.closed) break;
    const c = entry.length === layout.size ? decodeCheckpoint(entry, 0, layout) : null;
    const prev: StoredCheckpoint | null = recent.at(-1) ?? before;
    const prevRecords = prev?.records ?? seg.start.records;
    const prevEpoch = prev?.epoch ?? 0;
    // epochs start at 0 and step by at most one a checkpoint (every epoch ends with a checkpoint of its own)
    const maxStep = seg.header.keys === 'forward-secure' ? 1 : 0;
    if (
      !c ||
      c.index !== seg.blocks ||
      c.records < prevRecords ||
      c.records - prevRecords > seg.header.checkpointEvery! ||
      c.logBytes < (prev?.logBytes ?? seg.start.logBytes) ||
      c.epoch < prevEpoch ||
      c.epoch > prevEpoch + maxStep
    )
      break;
    const end = pos + layout.size + (c.records - prevRecords) * L;
    if (end > size) break;
    const stored: StoredCheckpoint = {
      ...c,
      mac: Buffer.from(entry.subarray(layout.macAt, layout.size)),
      digest: layout.digestAt >= 0 ? Buffer.from(entry.subarray(layout.digestAt, layout.macAt)) : null,
      at: pos,
      end,
    };
    visit?.(stored, seg);
    if (epochs.at(-1)?.epoch !== c.epoch) epochs.push({ seq: prevRecords, epoch: c.epoch, block: seg.blocks });
    recent.push(stored);
    while (recent.length && recent[0]!.end < size - crashTail) before = recent.shift()!;
    seg.blocks++;
    seg.end = pos = end;
  }

  // a trailer is written only once every block is on disk; without one, the blocks near the end may be a crash's
  // leftovers: the first of them whose checkpoint does not verify over its MACs ends what the sidecar covers
  if (!seg.closed && trailerAt < 0 && damage === null) {
    let prevMac = before?.mac ?? seg.origin;
    for (let i = 0; i < recent.length; i++) {
      if (!(await blockVerifies(sf, seg, keys, recent[i]!, prevMac))) {
        seg.blocks -= recent.length - i;
        seg.end = pos = recent[i]!.at;
        recent.length = i;
        break;
      }
      prevMac = recent[i]!.mac;
    }
  }
  if (segments.at(-1) !== seg) endSegment(); // (a damaged next segment: the one before it is the last)
  const last = seg.last;
  const state: SidecarState = {
    signed: last?.records ?? seg.start.records,
    signedBytes: last?.logBytes ?? seg.start.logBytes,
    closed: seg.closed,
    last,
    blocks: segments.reduce((n, x) => n + x.blocks, 0),
    segments,
    validEnd: seg.closed ? seg.end - T : pos,
    tornBytes: 0,
    truncated: false,
  };
  if (damage !== null) issues.add({ ...damage, count: 1 });
  else if (seg.closed) {
    // finished: nothing after its trailer
  } else if (trailerAt >= 0) state.tornBytes = size - trailerAt;
  else if (size - pos > crashTail) {
    issues.add({
      kind: 'sidecar-checkpoint',
      count: 1,
      message: `the sidecar holds ${size - pos} bytes after its checkpoint ${last ? `${last.index} (record ${last.records})` : '-'} that are not checkpointed blocks, more than a crash can leave: it was altered`,
    });
  } else state.tornBytes = size - pos;
  return state;
}

/** The segment whose header is at `pos`, right after `prev` ended: it must continue `prev` (SidecarFormatError otherwise). */
async function nextSegment(
  file: PositionalReader,
  pos: number,
  size: number,
  prev: SegmentState,
): Promise<SegmentState> {
  const head = Buffer.from(await file.read(pos, Math.min(HEADER_READ, size - pos)));
  const { header, headerBytes, macOffset } = decodeHeader(head);
  const p = prev.header;
  const l = header.previous;
  const last = prev.last;
  const bad = (what: string) => new SidecarFormatError(`is not a continuation of it (${what})`, true);
  if (header.version < 3 || p.version < 3) throw bad('version');
  if (header.keyArn !== p.keyArn || header.macAlgorithm !== p.macAlgorithm || header.logId !== p.logId)
    throw bad('key or log id');
  if (JSON.stringify(headerJsonFraming(header)) !== JSON.stringify(headerJsonFraming(p))) throw bad('framing');
  if (
    l?.how !== 'restart' ||
    last === null ||
    l.streamId !== p.streamId ||
    l.checkpoint !== last.index ||
    l.records !== last.records ||
    l.logBytes !== last.logBytes ||
    !l.head.equals(last.mac)
  )
    throw bad('previous');
  if (macOffset + header.macLength > head.length) throw new SidecarFormatError('is cut short', true);
  const headerMac = Buffer.from(head.subarray(macOffset, macOffset + header.macLength));
  return {
    header,
    headerBytes,
    headerMac,
    streamId: Buffer.from(header.streamId, 'hex'),
    at: pos,
    recordsAt: pos + macOffset + header.macLength,
    start: { records: l.records, logBytes: l.logBytes! },
    origin: l.head,
    last: null,
    blocks: 0,
    closed: false,
    end: pos + macOffset + header.macLength,
    epochs: [],
  };
}

function headerJsonFraming(h: SidecarHeader): object {
  const f = h.framing;
  return f.type === 'delimiter' ? { type: f.type, d: Buffer.from(f.delimiter).toString('hex') } : { type: f.type };
}

/**
 * Whether a block is finished: its MACs hash to the digest its entry stores
 * (version 3), and, with the keys, its checkpoint MAC verifies over them.
 */
async function blockVerifies(
  sf: SidecarFile,
  seg: SegmentState,
  keys: StreamKeys | null,
  c: StoredCheckpoint,
  prev: Buffer,
): Promise<boolean> {
  const layout = entryLayout(seg.header);
  const macs = Buffer.alloc(c.end - c.at - layout.size);
  await readFully(sf.fh, macs, c.at + layout.size);
  const digest = createHash(nodeDigestName(seg.header.digest)).update(macs).digest();
  if (c.digest && !c.digest.equals(digest)) return false;
  if (keys === null) return c.digest !== null;
  return keys.engineFor(c.epoch).verify(checkpointMacInput(seg.streamId, c, prev, digest, seg.header.version), c.mac);
}

/**
 * The record MACs of the signed records, in order, in a window that slides
 * forward: `load(lo, hi, keepFrom)` makes entries [lo, hi) available and lets
 * entries below `keepFrom` go; `get(seq)` returns one. Entries are read
 * ahead in large sequential reads.
 */
export class MacWindow {
  private buf = Buffer.alloc(0);
  /** Entries [lo, hi) are in buf, entry s at (s - lo) * L. */
  private lo = 0;
  private hi = 0;
  private readonly L: number;

  constructor(
    private readonly source: MacSource,
    readonly signed: number,
    private readonly readAhead = 1 << 16,
  ) {
    this.L = source.macLength;
  }

  covers(lo: number, hi: number): boolean {
    return Math.max(lo, 0) >= this.lo && Math.min(hi, this.signed) <= this.hi;
  }

  async load(lo: number, hi: number, keepFrom: number): Promise<void> {
    hi = Math.min(hi, this.signed);
    if (Math.max(lo, 0) < this.lo) throw new Error(`internal: MAC window asked for entry ${lo}, below ${this.lo}`);
    if (hi <= this.hi) return;
    const L = this.L;
    // entries are read in order: nothing beyond hi can be skipped
    const keep = Math.min(this.hi, Math.max(this.lo, Math.min(keepFrom, lo)));
    const want = Math.min(this.signed, Math.max(hi, this.hi + this.readAhead));
    const need = (want - keep) * L;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, (keep - this.lo) * L, (this.hi - this.lo) * L);
      this.buf = grown;
    } else this.buf.copyWithin(0, (keep - this.lo) * L, (this.hi - this.lo) * L);
    this.lo = keep;
    while (this.hi < want) {
      const got = await this.source.read(this.buf, (this.hi - this.lo) * L, want - this.hi);
      if (got === 0) throw new Error('sidecar changed while being read');
      this.hi += got;
    }
  }

  get(seq: number): Buffer {
    return this.buf.subarray((seq - this.lo) * this.L, (seq - this.lo + 1) * this.L);
  }

  /**
   * The MACs of [lo, lo + count): a view of the window's own bytes (valid
   * until the next load), or, when the range runs outside the signed
   * records, a copy in `scratch` with zeros there (never a valid MAC).
   */
  macs(lo: number, count: number, scratch: Buffer): Buffer {
    const L = this.L;
    if (lo >= this.lo && lo + count <= this.hi)
      return this.buf.subarray((lo - this.lo) * L, (lo + count - this.lo) * L);
    const a = Math.max(lo, 0);
    const b = Math.min(lo + count, this.signed);
    scratch.fill(0, 0, count * L);
    if (b > a) this.buf.copy(scratch, (a - lo) * L, (a - this.lo) * L, (b - this.lo) * L);
    return scratch.subarray(0, count * L);
  }

  /** Reads (and so checks) the rest of the sidecar. */
  async drain(): Promise<void> {
    while (this.hi < this.signed) await this.load(this.hi, Math.min(this.signed, this.hi + this.readAhead), this.hi);
    await this.source.finish();
  }
}

/** Record MACs in sequence order: `read` fills `out` from `pos` with up to `max` entries, returning how many. */
export interface MacSource {
  readonly macLength: number;
  read(out: Buffer, pos: number, max: number): Promise<number>;
  /** Checks whatever follows the last entry (empty blocks). */
  finish(): Promise<void>;
}

/** The record MACs of a sidecar: version 1 reads them in one run; versions 2 and 3 walk their blocks and verify each checkpoint. */
export function macSource(
  sf: SidecarFile,
  state: SidecarState,
  keysOf: (segment: SegmentState) => StreamKeys,
  issues: IssueLog,
): MacSource {
  return sf.header.version === 1 ? new V1Source(sf, state.signed) : new BlockSource(sf, state, keysOf, issues);
}

class V1Source implements MacSource {
  readonly macLength: number;
  private next = 0;
  constructor(
    private readonly sf: SidecarFile,
    private readonly signed: number,
  ) {
    this.macLength = sf.macLength;
  }
  async read(out: Buffer, pos: number, max: number): Promise<number> {
    const L = this.macLength;
    const n = Math.min(max, this.signed - this.next);
    if (n <= 0) return 0;
    await readFully(this.sf.fh, out.subarray(pos, pos + n * L), this.sf.recordsAt + this.next * L);
    this.next += n;
    return n;
  }
  async finish(): Promise<void> {}
}

class BlockSource implements MacSource {
  readonly macLength: number;
  private readonly file: PositionalReader;
  private segment = 0;
  private seg: SegmentState;
  private layout: EntryLayout;
  private pos: number;
  /** The block of the current segment being read (-1 before its first). */
  private block = -1;
  private entry: StoredCheckpoint | null = null;
  private left = 0;
  private records: number;
  private prev: Buffer;
  private readonly hash: () => Hash;
  private digest: Hash | null = null;

  constructor(
    sf: SidecarFile,
    private readonly state: SidecarState,
    private readonly keysOf: (segment: SegmentState) => StreamKeys,
    private readonly issues: IssueLog,
  ) {
    this.macLength = sf.macLength;
    this.file = new PositionalReader(sf.fh, sf.size, SEQUENTIAL_READ);
    this.seg = state.segments[0]!;
    this.layout = entryLayout(this.seg.header);
    this.pos = this.seg.recordsAt;
    this.records = this.seg.start.records;
    this.prev = this.seg.origin;
    const name = nodeDigestName(sf.header.digest);
    this.hash = () => createHash(name);
  }

  async read(out: Buffer, pos: number, max: number): Promise<number> {
    const L = this.macLength;
    while (this.left === 0) {
      if (!(await this.nextBlock())) return 0;
    }
    // through the reader's buffer: one large read serves many blocks (reads share libuv's pool with the MAC workers)
    const n = Math.min(max, this.left, Math.floor(SEQUENTIAL_READ / L));
    const src = await this.file.read(this.pos, n * L);
    src.copy(out, pos);
    this.digest!.update(src);
    this.pos += n * L;
    this.left -= n;
    if (this.left === 0) await this.seal();
    return n;
  }

  async finish(): Promise<void> {
    while (this.left === 0 && (await this.nextBlock()));
  }

  /** Moves to the next block (into the next segment at the end of one); false at the end. Empty blocks are sealed at once. */
  private async nextBlock(): Promise<boolean> {
    while (this.block + 1 >= this.seg.blocks) {
      const next = this.state.segments[this.segment + 1];
      if (!next) return false;
      this.segment++;
      this.seg = next;
      this.layout = entryLayout(next.header);
      this.pos = next.recordsAt;
      this.block = -1;
      this.prev = next.origin;
    }
    const C = this.layout.size;
    const e = await this.file.read(this.pos, C);
    const c = decodeCheckpoint(e, 0, this.layout)!;
    this.block++;
    this.entry = {
      ...c,
      mac: Buffer.from(e.subarray(this.layout.macAt, C)),
      digest: this.layout.digestAt >= 0 ? Buffer.from(e.subarray(this.layout.digestAt, this.layout.macAt)) : null,
      at: this.pos,
      end: this.pos + C + (c.records - this.records) * this.macLength,
    };
    this.left = c.records - this.records;
    this.records = c.records;
    this.pos += C;
    this.digest = this.hash();
    if (this.left === 0) await this.seal();
    return true;
  }

  private async seal(): Promise<void> {
    const c = this.entry!;
    const seg = this.seg;
    const digest = this.digest!.digest();
    const ok =
      (c.digest === null || c.digest.equals(digest)) &&
      (await this.keysOf(seg)
        .engineFor(c.epoch)
        .verify(checkpointMacInput(seg.streamId, c, this.prev, digest, seg.header.version), c.mac));
    if (!ok) {
      this.issues.add({
        kind: 'sidecar-checkpoint',
        count: 1,
        message: `checkpoint ${c.index}${this.state.segments.length > 1 ? ` of stream ${seg.header.streamId}` : ''} (records through ${c.records}) does not verify: the sidecar's checkpoints or record MACs were altered`,
      });
    }
    this.prev = c.mac;
  }
}

/** A stretch of signed records MACed with one key: records [seq, next run's seq), of stream `streamId`. */
export interface KeyRun {
  seq: number;
  streamId: Buffer;
  engine: MacEngine;
}

/** Which key MACed which records: a run per stream and key epoch, in order (one run for a kms-keyed sidecar). */
export function keyRuns(state: SidecarState, keysOf: (segment: SegmentState) => StreamKeys, sf: SidecarFile): KeyRun[] {
  if (state.segments.length === 0)
    return [{ seq: 0, streamId: sf.streamId, engine: keysOf(firstSegment(sf)).engineFor(0) }];
  const runs: KeyRun[] = [];
  for (const seg of state.segments) {
    const keys = keysOf(seg);
    const epochs = seg.epochs.length ? seg.epochs : [{ seq: seg.start.records, epoch: 0 }];
    for (const e of epochs) {
      const run = { seq: e.seq, streamId: seg.streamId, engine: keys.engineFor(e.epoch) };
      if (runs.at(-1)?.seq === run.seq) runs[runs.length - 1] = run;
      else runs.push(run);
    }
  }
  return runs;
}

/** Bytes a sequential reader fetches at once. */
const SEQUENTIAL_READ = 2 << 20;

/**
 * Positional reads through a cache of `readSize` bytes: walking a sidecar's
 * checkpoint entries costs one read per 64 KiB, and reading it from end to
 * end one read per 2 MiB.
 */
class PositionalReader {
  private cache = Buffer.alloc(0);
  private at = 0;
  private filled = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly readSize = 1 << 16,
  ) {}
  /** `len` bytes at `pos` (fewer at the end of the file), valid until the next read. */
  async read(pos: number, len: number): Promise<Buffer> {
    len = Math.max(0, Math.min(len, this.size - pos));
    if (pos < this.at || pos + len > this.at + this.filled) {
      const n = Math.min(Math.max(len, this.readSize), this.size - pos);
      if (n > this.cache.length) this.cache = Buffer.allocUnsafe(n);
      await readFully(this.fh, this.cache.subarray(0, n), pos);
      this.at = pos;
      this.filled = n;
    }
    return this.cache.subarray(pos - this.at, pos - this.at + len);
  }
}

/** Reads exactly `buf.length` bytes at `pos` (a sidecar that shrinks while read is an error). */
export async function readFully(fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, pos + done);
    if (bytesRead === 0) throw new Error('sidecar changed while being read');
    done += bytesRead;
  }
}
