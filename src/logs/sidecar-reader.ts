/**
 * Reading a sidecar (format.ts): its header, what it covers, and its record
 * MACs in order.
 *
 * scanSidecar() walks the structure first — for version 2 only the
 * checkpoint entries, one small read per block — and settles what the
 * sidecar covers: through its last checkpoint that verifies, or (version 1)
 * through its trailer. A version-2 sidecar whose signer crashed may end with
 * blocks the crash left unfinished (at most CRASH_TAIL_BLOCKS): that is not
 * tampering; their records are simply not signed. More than that is.
 *
 * MacWindow then serves the record MACs to the verifier in sequence order,
 * reading the sidecar forward once and checking every checkpoint's MAC (the
 * chain) as its block goes past. It keeps only a window of entries: the
 * verifier never looks further back than its alignment window.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { MacEngine } from './engine.js';
import {
  CKPT_AT_MAC,
  CRASH_TAIL_BLOCKS,
  HEADER_READ,
  TRAILER_AT_COUNT,
  TRAILER_AT_LOG_BYTES,
  TRAILER_FIXED,
  TRAILER_MAGIC,
  checkpointMacInput,
  checkpointSize,
  decodeCheckpoint,
  decodeHeader,
  headerMacInput,
  nodeDigestName,
  readU64,
  trailerMacInput,
  type CheckpointFields,
  type SidecarHeader,
} from './format.js';
import type { FilePath } from './input.js';
import type { IssueLog } from './issues.js';

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
  /** File offsets of its entry and of the end of its block. */
  at: number;
  end: number;
}

export interface SidecarState {
  /** Records covered: through the last valid checkpoint (v2), or the trailer's count or what a truncated sidecar still holds (v1). */
  signed: number;
  /** Log bytes covered, when known. */
  signedBytes: number | null;
  /** A trailer that verifies: the signer finished this sidecar. */
  closed: boolean;
  /** Version 2: the last checkpoint that verifies (the chain head), and how many blocks lead to it. */
  last: StoredCheckpoint | null;
  blocks: number;
  /** Where the sidecar's valid content ends (a resuming signer truncates to here). */
  validEnd: number;
  /** Bytes after it that a crash left behind (an unfinished block or trailer). */
  tornBytes: number;
  /** Version 1 only: no trailer. */
  truncated: boolean;
}

/**
 * Settles what the sidecar covers, reporting sidecar-level issues to `issues`.
 * `visit` sees every checkpoint entry the walk finds (for comparison with
 * shipped checkpoints); entries are verified later, by MacWindow.
 */
export async function scanSidecar(
  sf: SidecarFile,
  engine: MacEngine,
  issues: IssueLog,
  visit?: (c: StoredCheckpoint) => void,
): Promise<SidecarState> {
  return sf.header.version === 1 ? scanV1(sf, engine, issues) : scanV2(sf, engine, issues, visit);
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

async function scanV2(
  sf: SidecarFile,
  engine: MacEngine,
  issues: IssueLog,
  visit?: (c: StoredCheckpoint) => void,
): Promise<SidecarState> {
  const { size, recordsAt, macLength: L, header } = sf;
  const C = checkpointSize(L);
  const T = TRAILER_FIXED + L;
  /** The most a crash can leave after the last checkpoint on disk (format.ts: CRASH_TAIL_BLOCKS). */
  const crashTail = CRASH_TAIL_BLOCKS * (C + header.checkpointEvery! * L) + T;
  const file = new PositionalReader(sf.fh, size);
  let pos = recordsAt;
  /** The blocks that end within crashTail of the end (a crash may have left them unfinished), and the one before. */
  const recent: StoredCheckpoint[] = [];
  let before: StoredCheckpoint | null = null;
  let blocks = 0;
  let trailerAt = -1;
  while (pos < size) {
    const entry = await file.read(pos, Math.min(C, size - pos));
    if (entry.length >= TRAILER_MAGIC.length && entry.subarray(0, TRAILER_MAGIC.length).equals(TRAILER_MAGIC)) {
      trailerAt = pos;
      break;
    }
    const c = entry.length === C ? decodeCheckpoint(entry, 0) : null;
    const prev: StoredCheckpoint | null = recent.at(-1) ?? before;
    const prevRecords = prev?.records ?? 0;
    if (
      !c ||
      c.index !== blocks ||
      c.records < prevRecords ||
      c.records - prevRecords > header.checkpointEvery! ||
      c.logBytes < (prev?.logBytes ?? 0)
    )
      break;
    const end = pos + C + (c.records - prevRecords) * L;
    if (end > size) break;
    const stored = { ...c, mac: Buffer.from(entry.subarray(CKPT_AT_MAC, C)), at: pos, end };
    visit?.(stored);
    recent.push(stored);
    while (recent.length && recent[0]!.end < size - crashTail) before = recent.shift()!;
    blocks++;
    pos = end;
  }

  // a trailer is written only once every block is on disk; without one, the blocks near the end may be a crash's
  // leftovers: the first of them whose checkpoint does not verify over its MACs ends what the sidecar covers
  if (trailerAt < 0) {
    let prevMac = before?.mac ?? chainOrigin(sf);
    for (let i = 0; i < recent.length; i++) {
      if (!(await blockVerifies(sf, engine, recent[i]!, prevMac))) {
        blocks -= recent.length - i;
        pos = recent[i]!.at;
        recent.length = i;
        break;
      }
      prevMac = recent[i]!.mac;
    }
  }
  const last = recent.at(-1) ?? before;
  const state: SidecarState = {
    signed: last?.records ?? 0,
    signedBytes: last?.logBytes ?? 0,
    closed: false,
    last,
    blocks,
    validEnd: pos,
    tornBytes: 0,
    truncated: false,
  };
  const sealed = `checkpoint ${last ? `${last.index} (record ${last.records})` : '-'}`;
  if (trailerAt >= 0 && size - trailerAt < T) {
    state.tornBytes = size - trailerAt; // a trailer cut short by a crash while closing
  } else if (trailerAt >= 0) {
    const t = await file.read(trailerAt, T);
    const count = readU64(t, TRAILER_AT_COUNT);
    const logBytes = readU64(t, TRAILER_AT_LOG_BYTES);
    const ok =
      last !== null &&
      trailerAt + T === size &&
      count === last.records &&
      logBytes === last.logBytes &&
      (await engine.verify(trailerMacInput(sf.streamId, count, logBytes, last.mac), t.subarray(TRAILER_FIXED)));
    if (ok) state.closed = true;
    else {
      issues.add({
        kind: 'sidecar-trailer',
        count: 1,
        message: `the sidecar trailer does not verify against its last ${sealed}: the trailer, or the sidecar around it, was altered`,
      });
    }
  } else if (size - pos > crashTail) {
    issues.add({
      kind: 'sidecar-checkpoint',
      count: 1,
      message: `the sidecar holds ${size - pos} bytes after its ${sealed} that are not checkpointed blocks, more than a crash can leave: it was altered`,
    });
  } else state.tornBytes = size - pos;
  return state;
}

/** The MAC checkpoint 0 chains to: the previous sidecar's head after a rotation, else this header's MAC. */
export function chainOrigin(sf: SidecarFile): Buffer {
  return sf.header.previous?.head ?? sf.headerMac;
}

async function blockVerifies(sf: SidecarFile, engine: MacEngine, c: StoredCheckpoint, prev: Buffer): Promise<boolean> {
  const macs = Buffer.alloc(c.end - c.at - checkpointSize(sf.macLength));
  await readFully(sf.fh, macs, c.at + checkpointSize(sf.macLength));
  const digest = createHash(nodeDigestName(sf.header.digest)).update(macs).digest();
  return engine.verify(checkpointMacInput(sf.streamId, c, prev, digest), c.mac);
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

/** The record MACs of a sidecar: version 1 reads them in one run; version 2 walks its blocks and verifies each checkpoint. */
export function macSource(sf: SidecarFile, state: SidecarState, engine: MacEngine, issues: IssueLog): MacSource {
  return sf.header.version === 1 ? new V1Source(sf, state.signed) : new BlockSource(sf, state, engine, issues);
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
  private pos: number;
  private block = -1;
  private entry: StoredCheckpoint | null = null;
  private left = 0;
  private records = 0;
  private prev: Buffer;
  private readonly hash: () => Hash;
  private digest: Hash | null = null;

  constructor(
    private readonly sf: SidecarFile,
    private readonly state: SidecarState,
    private readonly engine: MacEngine,
    private readonly issues: IssueLog,
  ) {
    this.macLength = sf.macLength;
    this.file = new PositionalReader(sf.fh, sf.size, SEQUENTIAL_READ);
    this.pos = sf.recordsAt;
    this.prev = chainOrigin(sf);
    const name = nodeDigestName(sf.header.digest);
    this.hash = () => createHash(name);
  }

  async read(out: Buffer, pos: number, max: number): Promise<number> {
    const L = this.macLength;
    while (this.left === 0) {
      if (this.block + 1 >= this.state.blocks) return 0;
      await this.nextBlock();
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
    while (this.left === 0 && this.block + 1 < this.state.blocks) await this.nextBlock();
  }

  /** Reads the next checkpoint entry (the scan checked the structure); empty blocks are sealed at once. */
  private async nextBlock(): Promise<void> {
    const C = checkpointSize(this.macLength);
    const e = await this.file.read(this.pos, C);
    const c = decodeCheckpoint(e, 0)!;
    this.block++;
    this.entry = {
      ...c,
      mac: Buffer.from(e.subarray(CKPT_AT_MAC, C)),
      at: this.pos,
      end: this.pos + C + (c.records - this.records) * this.macLength,
    };
    this.left = c.records - this.records;
    this.records = c.records;
    this.pos += C;
    this.digest = this.hash();
    if (this.left === 0) await this.seal();
  }

  private async seal(): Promise<void> {
    const c = this.entry!;
    const ok = await this.engine.verify(
      checkpointMacInput(this.sf.streamId, c, this.prev, this.digest!.digest()),
      c.mac,
    );
    if (!ok) {
      this.issues.add({
        kind: 'sidecar-checkpoint',
        count: 1,
        message: `checkpoint ${c.index} (records through ${c.records}) does not verify: the sidecar's checkpoints or record MACs were altered`,
      });
    }
    this.prev = c.mac;
  }
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
