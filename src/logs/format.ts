/**
 * The kms-hmac log sidecar format (docs/log-format.md is the normative
 * description; keep the two in step). Version 3 is written; versions 1 and 2
 * are still read.
 *
 * Every MAC input starts with the same 25-byte prefix, so inputs of
 * different kinds can never collide, and every input fits KMS's 4096-byte
 * Message limit:
 *
 * ```
 *  offset  size  field
 *  0       16    stream id            PREFIX_STREAM_ID
 *  16      8     u64 BE n             PREFIX_N        (record seq, checkpoint index, record count, epoch, or 0)
 *  24      1     kind                 PREFIX_KIND     (KIND_*)
 *  25      …     payload              MAC_INPUT_PREFIX
 * ```
 *
 * Version 3 file layout (L = MAC length, 28/32/48/64; D = digest length, 32/64):
 *
 * ```
 *  one or more segments (a stream each; a forward-secure signer starts a new one after a restart):
 *  0       8     magic "KHMACLOG"
 *  8       4     u32 BE J = header JSON length
 *  12      J     header JSON (UTF-8)
 *  12+J    L     header MAC = MAC(streamId | 0 | 'H' | bytes[0 .. 12+J))
 *  then blocks, each a checkpoint followed by the MACs of the records it seals:
 *          8     magic "KHMACCKP"                              CKPT_MAGIC      @ CKPT_AT_MAGIC
 *          8     u64 k (checkpoint index in the stream, from 0)                @ CKPT_AT_INDEX
 *          8     u64 records signed through this checkpoint (in the file)      @ CKPT_AT_RECORDS
 *          8     u64 log bytes signed through this checkpoint                  @ CKPT_AT_LOG_BYTES
 *          8     u64 time (ms since the epoch)                                 @ CKPT_AT_TIME
 *          8     u64 key epoch                                                 @ CKPT_AT_EPOCH
 *          D     DIGEST(block MACs)
 *          L     checkpoint MAC = MAC(streamId | k | 'C' | records | logBytes | time | epoch | prev | DIGEST(block MACs))
 *          m*L   record MACs = MAC(streamId | seq | 0x00 | record)          record <= 4071 bytes
 *                              MAC(streamId | seq | 0x01 | DIGEST(record))  otherwise
 *  optionally, once the signer has finished the stream:
 *          8     magic "KHMACEND"
 *          8     u64 n = record count
 *          8     u64 log length in bytes
 *          L     trailer MAC = MAC(streamId | n | 'T' | logBytes | last checkpoint MAC)
 * ```
 * `prev` is the previous checkpoint's MAC; for checkpoint 0 it is the header
 * MAC, or — for a stream that continues another (a rotation, or a
 * forward-secure restart) — that stream's last checkpoint MAC, which the
 * header names. MAC is the KMS key's HMAC (`keys: "kms"`), or the stream's
 * epoch key (`keys: "forward-secure"`, see keys.ts).
 *
 * Version 2: one segment; checkpoint entries without epoch and digest
 * (magic | k | records | logBytes | time | MAC), whose MAC binds no epoch.
 * Version 1: the header, then n record MACs at fixed offsets, then the
 * trailer, whose MAC is MAC(streamId | n | 'T' | logBytes); no checkpoints.
 */
import { createHash, randomBytes } from 'node:crypto';
import { MAC_LENGTH, MAC_ALGORITHMS, type MacAlgorithm } from '../backend/types.js';
import { LIMITS } from '../kms/limits.js';

export const SIDECAR_MAGIC = Buffer.from('KHMACLOG', 'latin1');
export const TRAILER_MAGIC = Buffer.from('KHMACEND', 'latin1');
export const CKPT_MAGIC = Buffer.from('KHMACCKP', 'latin1');
export const SIDECAR_FORMAT = 'kms-hmac-log';
/** The version written. */
export const SIDECAR_VERSION = 3;
/** The versions read. */
export const SIDECAR_VERSIONS: readonly number[] = [1, 2, 3];
export const STREAM_ID_LENGTH = 16;
export const LOG_ID_LENGTH = 16;
/** Bytes of a forward-secure stream's nonce (shipped, never on the host's disk). */
export const NONCE_LENGTH = 32;

// the MAC input prefix
export const PREFIX_STREAM_ID = 0;
export const PREFIX_N = 16;
export const PREFIX_KIND = 24;
/** streamId (16) + u64 n (8) + kind (1): where the payload starts. */
export const MAC_INPUT_PREFIX = 25;

/** Longest record MACed as is (4071: the prefix and the record fit in one KMS Message); longer records are MACed as their digest. */
export const RAW_RECORD_MAX = LIMITS.message[1] - MAC_INPUT_PREFIX;
export const KIND_RAW = 0x00;
export const KIND_DIGEST = 0x01;
export const KIND_CHECKPOINT = 0x43; // 'C'
export const KIND_HEADER = 0x48; // 'H'
export const KIND_EPOCH_KEY = 0x4b; // 'K'
export const KIND_RATCHET = 0x52; // 'R'
export const KIND_SEED = 0x53; // 'S'
export const KIND_TRAILER = 0x54; // 'T'

// the header: magic | u32 J | JSON
const HEADER_AT_JSON_LENGTH = 8;
export const HEADER_AT_JSON = 12;
const MAX_HEADER_JSON = 2048;
/** Bytes to read to be sure of holding the whole header and its MAC. */
export const HEADER_READ = HEADER_AT_JSON + MAX_HEADER_JSON + 64;

// a checkpoint entry on disk
export const CKPT_AT_MAGIC = 0;
export const CKPT_AT_INDEX = 8;
export const CKPT_AT_RECORDS = 16;
export const CKPT_AT_LOG_BYTES = 24;
export const CKPT_AT_TIME = 32;
/** Version 3 only; version 2's MAC follows the time. */
export const CKPT_AT_EPOCH = 40;

// the trailer: magic | u64 n | u64 logBytes | MAC
export const TRAILER_AT_COUNT = 8;
export const TRAILER_AT_LOG_BYTES = 16;
/** magic + count + logBytes, before the trailer MAC. */
export const TRAILER_FIXED = 24;

export const MAX_DELIMITER = 64;
/** Records per checkpoint: default, and the most a block may hold. */
export const DEFAULT_CHECKPOINT_EVERY = 10_000;
export const MAX_CHECKPOINT_EVERY = 1_000_000;
/**
 * How many blocks at the end of a sidecar a crash (or power cut) may leave
 * unfinished: a writer starts block k + CRASH_TAIL_BLOCKS only once block k
 * is on disk. A reader takes up to that much after the last checkpoint that
 * verifies (plus a trailer) for a crash's leftovers; more is tampering.
 */
export const CRASH_TAIL_BLOCKS = 4;

export type Framing = { type: 'line' } | { type: 'ndjson' } | { type: 'delimiter'; delimiter: Uint8Array };

export type DigestName = 'SHA-256' | 'SHA-512';

/** How a stream's MACs are keyed: the KMS key itself, or forward-secure epoch keys derived from it once (keys.ts). */
export type KeyMode = 'kms' | 'forward-secure';

/** A sidecar that continues another stream: the chain it continues. */
export interface ChainLink {
  /** The previous stream's id (hex). */
  streamId: string;
  /** Its last checkpoint: index, records, and MAC (the chain head). */
  checkpoint: number;
  records: number;
  head: Buffer;
  /**
   * Version 3: `rotation` — the previous stream signed the file the log was
   * rotated away from (its sidecar is another file); `restart` — it is the
   * segment before this one in the same sidecar (a forward-secure signer
   * cannot continue a stream whose keys it destroyed), and this one takes
   * up the log at `records` / `logBytes`.
   */
  how?: 'rotation' | 'restart';
  /** Version 3: the previous stream's log bytes through that checkpoint. */
  logBytes?: number;
}

export interface SidecarHeader {
  format: typeof SIDECAR_FORMAT;
  version: number;
  keyArn: string;
  macAlgorithm: MacAlgorithm;
  macLength: number;
  framing: Framing;
  /** 32 lowercase hex digits. */
  streamId: string;
  digest: DigestName;
  rawRecordMax: number;
  createdAt: string;
  /** Version 2+: the most records a checkpoint seals. */
  checkpointEvery?: number;
  /** Version 2+: the stream this one continues, or null. */
  previous?: ChainLink | null;
  /** Version 2+: the inode of the log when signing began (decimal), when it was a file: tells a rotation from an edit on restart. */
  logInode?: string;
  /** Version 3: the log's identity (32 hex digits), set when its first sidecar is made and carried through rotations and restarts. */
  logId?: string;
  /** Version 3: the signer checkpoints at least this often, records or not (a live log's heartbeat), or null. */
  heartbeatMs?: number | null;
  /** Version 3: how the stream's MACs are keyed. */
  keys?: KeyMode;
  /** Version 3, forward-secure: how long each key epoch lasts at most. */
  epochMs?: number;
}

/** The digest used for records longer than RAW_RECORD_MAX and for checkpoints: SHA-256 for HMAC_SHA_224/256, SHA-512 for 384/512. */
export function digestFor(algorithm: MacAlgorithm): DigestName {
  return algorithm === 'HMAC_SHA_384' || algorithm === 'HMAC_SHA_512' ? 'SHA-512' : 'SHA-256';
}

export function nodeDigestName(d: DigestName): 'sha256' | 'sha512' {
  return d === 'SHA-512' ? 'sha512' : 'sha256';
}

export function digestLength(d: DigestName): number {
  return d === 'SHA-512' ? 64 : 32;
}

export function newStreamId(): Buffer {
  return randomBytes(STREAM_ID_LENGTH);
}

export function newLogId(): string {
  return randomBytes(LOG_ID_LENGTH).toString('hex');
}

export function framingDelimiter(f: Framing): Buffer {
  return f.type === 'delimiter' ? Buffer.from(f.delimiter) : Buffer.from([0x0a]);
}

/** Where the parts of a checkpoint entry are, for a sidecar's version and algorithm. */
export interface EntryLayout {
  /** Bytes of the entry. */
  size: number;
  /** Offset of the stored block digest (version 3), or -1. */
  digestAt: number;
  macAt: number;
  version: number;
}

export function entryLayout(h: Pick<SidecarHeader, 'version' | 'macLength' | 'digest'>): EntryLayout {
  if (h.version < 3)
    return { size: CKPT_AT_EPOCH + h.macLength, digestAt: -1, macAt: CKPT_AT_EPOCH, version: h.version };
  const digestAt = CKPT_AT_EPOCH + 8;
  const macAt = digestAt + digestLength(h.digest);
  return { size: macAt + h.macLength, digestAt, macAt, version: h.version };
}

/** Writes the 25-byte MAC input prefix at `out[pos..]`. */
export function writePrefix(out: Buffer, pos: number, streamId: Uint8Array, n: number, kind: number): void {
  out.set(streamId, pos + PREFIX_STREAM_ID);
  writeU64(out, pos + PREFIX_N, n);
  out[pos + PREFIX_KIND] = kind;
}

/** A MAC input: the prefix, then the payload parts. */
export function macInput(streamId: Uint8Array, n: number, kind: number, ...payload: Uint8Array[]): Buffer {
  let len = MAC_INPUT_PREFIX;
  for (const p of payload) len += p.length;
  const out = Buffer.allocUnsafe(len);
  writePrefix(out, 0, streamId, n, kind);
  let pos = MAC_INPUT_PREFIX;
  for (const p of payload) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** The MAC input of one whole record (used off the hot path and by the record streams). */
export function recordMacInput(streamId: Uint8Array, seq: number, record: Uint8Array, digest: DigestName): Buffer {
  if (record.length <= RAW_RECORD_MAX) return macInput(streamId, seq, KIND_RAW, record);
  return macInput(streamId, seq, KIND_DIGEST, createHash(nodeDigestName(digest)).update(record).digest());
}

export function headerMacInput(streamId: Uint8Array, headerBytes: Uint8Array): Buffer {
  return macInput(streamId, 0, KIND_HEADER, headerBytes);
}

/** Version 1 binds the count and length; version 2 also binds the last checkpoint MAC (the chain head). */
export function trailerMacInput(streamId: Uint8Array, count: number, logBytes: number, chainHead?: Uint8Array): Buffer {
  const len = u64(logBytes);
  return chainHead
    ? macInput(streamId, count, KIND_TRAILER, len, chainHead)
    : macInput(streamId, count, KIND_TRAILER, len);
}

/** What a checkpoint states; its MAC binds these, the previous MAC and the digest of the MACs it seals. */
export interface CheckpointFields {
  index: number;
  records: number;
  logBytes: number;
  timeMs: number;
  /** The key epoch whose key MACed the block (version 3; 0 before). */
  epoch: number;
}

/** Version 3 binds the epoch; version 2 has none. */
export function checkpointMacInput(
  streamId: Uint8Array,
  c: CheckpointFields,
  prev: Uint8Array,
  blockDigest: Uint8Array,
  version: number,
): Buffer {
  const fields = [u64(c.records), u64(c.logBytes), u64(c.timeMs)];
  if (version >= 3) fields.push(u64(c.epoch));
  return macInput(streamId, c.index, KIND_CHECKPOINT, ...fields, prev, blockDigest);
}

/** A checkpoint entry as stored (layout: entryLayout); `digest` is stored by version 3 only. */
export function encodeCheckpoint(
  out: Buffer,
  pos: number,
  c: CheckpointFields,
  digest: Uint8Array,
  mac: Uint8Array,
  layout: EntryLayout,
): void {
  CKPT_MAGIC.copy(out, pos + CKPT_AT_MAGIC);
  writeU64(out, pos + CKPT_AT_INDEX, c.index);
  writeU64(out, pos + CKPT_AT_RECORDS, c.records);
  writeU64(out, pos + CKPT_AT_LOG_BYTES, c.logBytes);
  writeU64(out, pos + CKPT_AT_TIME, c.timeMs);
  if (layout.digestAt >= 0) {
    writeU64(out, pos + CKPT_AT_EPOCH, c.epoch);
    out.set(digest, pos + layout.digestAt);
  }
  out.set(mac, pos + layout.macAt);
}

/** The fields of a checkpoint entry, or null when `buf[pos..]` does not start with the checkpoint magic. */
export function decodeCheckpoint(buf: Buffer, pos: number, layout: EntryLayout): CheckpointFields | null {
  if (!buf.subarray(pos + CKPT_AT_MAGIC, pos + CKPT_AT_INDEX).equals(CKPT_MAGIC)) return null;
  return {
    index: readU64(buf, pos + CKPT_AT_INDEX),
    records: readU64(buf, pos + CKPT_AT_RECORDS),
    logBytes: readU64(buf, pos + CKPT_AT_LOG_BYTES),
    timeMs: readU64(buf, pos + CKPT_AT_TIME),
    epoch: layout.digestAt >= 0 ? readU64(buf, pos + CKPT_AT_EPOCH) : 0,
  };
}

export function headerJson(h: SidecarHeader): string {
  const framing =
    h.framing.type === 'delimiter'
      ? { type: 'delimiter', delimiter: Buffer.from(h.framing.delimiter).toString('base64') }
      : { type: h.framing.type };
  const v1 = {
    format: h.format,
    version: h.version,
    keyArn: h.keyArn,
    macAlgorithm: h.macAlgorithm,
    macLength: h.macLength,
    framing,
    streamId: h.streamId,
    digest: h.digest,
    rawRecordMax: h.rawRecordMax,
    createdAt: h.createdAt,
  };
  if (h.version === 1) return JSON.stringify(v1);
  const p = h.previous;
  const v2 = {
    ...v1,
    checkpointEvery: h.checkpointEvery,
    previous: p
      ? {
          streamId: p.streamId,
          checkpoint: p.checkpoint,
          records: p.records,
          head: p.head.toString('base64'),
          ...(h.version >= 3 ? { how: p.how, logBytes: p.logBytes } : {}),
        }
      : null,
    ...(h.logInode !== undefined ? { logInode: h.logInode } : {}),
  };
  if (h.version === 2) return JSON.stringify(v2);
  return JSON.stringify({
    ...v2,
    logId: h.logId,
    heartbeatMs: h.heartbeatMs ?? null,
    keys: h.keys,
    ...(h.keys === 'forward-secure' ? { epochMs: h.epochMs } : {}),
  });
}

/** magic | u32 J | JSON: the bytes the header MAC covers. */
export function encodeHeader(h: SidecarHeader): Buffer {
  const json = Buffer.from(headerJson(h), 'utf8');
  if (json.length > MAX_HEADER_JSON) throw new RangeError('sidecar header too long (key ARN or delimiter too long)');
  const out = Buffer.allocUnsafe(HEADER_AT_JSON + json.length);
  SIDECAR_MAGIC.copy(out, 0);
  out.writeUInt32BE(json.length, HEADER_AT_JSON_LENGTH);
  json.copy(out, HEADER_AT_JSON);
  return out;
}

/** The trailer without its MAC: magic | u64 count | u64 logBytes. */
export function encodeTrailerFixed(count: number, logBytes: number): Buffer {
  const out = Buffer.allocUnsafe(TRAILER_FIXED);
  TRAILER_MAGIC.copy(out, 0);
  writeU64(out, TRAILER_AT_COUNT, count);
  writeU64(out, TRAILER_AT_LOG_BYTES, logBytes);
  return out;
}

export function writeU64(out: Buffer, pos: number, n: number): void {
  out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), pos);
  out.writeUInt32BE(n >>> 0, pos + 4);
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, n);
  return b;
}

export function readU64(buf: Uint8Array, pos: number): number {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.readUInt32BE(pos) * 0x1_0000_0000 + b.readUInt32BE(pos + 4);
}

export class SidecarFormatError extends Error {
  override name = 'SidecarFormatError';
  /** true: the bytes look like a sidecar but are damaged (tampering); false: not a sidecar at all. */
  constructor(
    message: string,
    readonly damaged: boolean,
  ) {
    super(message);
  }
}

const damaged = (what: string) => new SidecarFormatError(`sidecar header: bad ${what}`, true);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const HEX32 = /^[0-9a-f]{32}$/;
/** The longest epoch or heartbeat a header may state: a day. */
export const MAX_PERIOD_MS = 86_400_000;
const isPeriod = (v: unknown): v is number => isCount(v) && v >= 1 && v <= MAX_PERIOD_MS;

/**
 * Parses the header from the first bytes of a sidecar (or of a segment).
 * Returns the header, the bytes its MAC covers, and where the header MAC
 * starts.
 */
export function decodeHeader(buf: Uint8Array): { header: SidecarHeader; headerBytes: Buffer; macOffset: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < HEADER_AT_JSON || !b.subarray(0, SIDECAR_MAGIC.length).equals(SIDECAR_MAGIC)) {
    throw new SidecarFormatError('not a kms-hmac log sidecar (bad magic)', false);
  }
  const j = b.readUInt32BE(HEADER_AT_JSON_LENGTH);
  const end = HEADER_AT_JSON + j;
  if (j > MAX_HEADER_JSON || b.length < end)
    throw new SidecarFormatError('sidecar header is truncated or damaged', true);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(b.subarray(HEADER_AT_JSON, end).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new SidecarFormatError('sidecar header JSON is damaged', true);
  }
  if (raw === null || typeof raw !== 'object' || raw.format !== SIDECAR_FORMAT)
    throw new SidecarFormatError('sidecar header: unknown format', true);
  const version = raw.version as number;
  if (!SIDECAR_VERSIONS.includes(version)) {
    throw new SidecarFormatError(
      `sidecar format version ${String(raw.version)} is not supported (this build reads versions ${SIDECAR_VERSIONS.join(', ')})`,
      false,
    );
  }
  const alg = raw.macAlgorithm as MacAlgorithm;
  if (!MAC_ALGORITHMS.includes(alg) || raw.macLength !== MAC_LENGTH[alg]) throw damaged('macAlgorithm');
  if (typeof raw.keyArn !== 'string' || typeof raw.streamId !== 'string' || !HEX32.test(raw.streamId))
    throw damaged('keyArn or streamId');
  if (raw.digest !== digestFor(alg) || raw.rawRecordMax !== RAW_RECORD_MAX) throw damaged('digest rule');
  const f = raw.framing as { type?: string; delimiter?: string } | undefined;
  let framing: Framing;
  if (f?.type === 'line' || f?.type === 'ndjson') framing = { type: f.type };
  else if (f?.type === 'delimiter' && typeof f.delimiter === 'string') {
    const d = Buffer.from(f.delimiter, 'base64');
    if (d.length < 1 || d.length > MAX_DELIMITER) throw damaged('delimiter');
    framing = { type: 'delimiter', delimiter: d };
  } else throw damaged('framing');
  const header: SidecarHeader = {
    format: SIDECAR_FORMAT,
    version,
    keyArn: raw.keyArn,
    macAlgorithm: alg,
    macLength: MAC_LENGTH[alg],
    framing,
    streamId: raw.streamId,
    digest: raw.digest as DigestName,
    rawRecordMax: RAW_RECORD_MAX,
    createdAt: String(raw.createdAt ?? ''),
  };
  if (version >= 2) {
    if (!isCount(raw.checkpointEvery) || raw.checkpointEvery < 1 || raw.checkpointEvery > MAX_CHECKPOINT_EVERY)
      throw damaged('checkpointEvery');
    header.checkpointEvery = raw.checkpointEvery;
    header.previous = decodeLink(raw.previous, MAC_LENGTH[alg], version);
    if (raw.logInode !== undefined) {
      if (typeof raw.logInode !== 'string' || !/^\d{1,20}$/.test(raw.logInode)) throw damaged('logInode');
      header.logInode = raw.logInode;
    }
  }
  if (version >= 3) {
    if (typeof raw.logId !== 'string' || !HEX32.test(raw.logId)) throw damaged('logId');
    header.logId = raw.logId;
    if (raw.heartbeatMs !== null && !isPeriod(raw.heartbeatMs)) throw damaged('heartbeatMs');
    header.heartbeatMs = raw.heartbeatMs;
    if (raw.keys === 'kms') header.keys = 'kms';
    else if (raw.keys === 'forward-secure' && isPeriod(raw.epochMs)) {
      header.keys = 'forward-secure';
      header.epochMs = raw.epochMs;
    } else throw damaged('keys');
    if (Number.isNaN(Date.parse(header.createdAt))) throw damaged('createdAt');
  }
  return { header, headerBytes: Buffer.from(b.subarray(0, end)), macOffset: end };
}

function decodeLink(p: unknown, macLength: number, version: number): ChainLink | null {
  if (p === null) return null;
  const l = p as Record<string, unknown> | undefined;
  const head = typeof l?.head === 'string' ? Buffer.from(l.head, 'base64') : undefined;
  if (
    !l ||
    typeof l.streamId !== 'string' ||
    !HEX32.test(l.streamId) ||
    !isCount(l.checkpoint) ||
    !isCount(l.records) ||
    head?.length !== macLength
  ) {
    throw damaged('previous');
  }
  const link: ChainLink = { streamId: l.streamId, checkpoint: l.checkpoint, records: l.records, head };
  if (version >= 3) {
    if ((l.how !== 'rotation' && l.how !== 'restart') || !isCount(l.logBytes)) throw damaged('previous');
    link.how = l.how;
    link.logBytes = l.logBytes;
  }
  return link;
}

/** Parses `--delimiter` text: C-style escapes \n \r \t \0 \\ \xHH. */
export function parseDelimiter(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const n = text[++i];
    if (n === 'n') bytes.push(10);
    else if (n === 'r') bytes.push(13);
    else if (n === 't') bytes.push(9);
    else if (n === '0') bytes.push(0);
    else if (n === '\\') bytes.push(92);
    else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else throw new RangeError(`bad escape in delimiter: \\${n ?? ''}`);
  }
  if (bytes.length < 1 || bytes.length > MAX_DELIMITER)
    throw new RangeError(`delimiter must be 1..${MAX_DELIMITER} bytes`);
  return Buffer.from(bytes);
}
