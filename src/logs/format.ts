/**
 * The kms-hmac log sidecar format (docs/log-format.md is the normative
 * description; keep the two in step). Version 2 is written; version 1 is
 * still read.
 *
 * Every MAC input starts with the same 25-byte prefix, so inputs of
 * different kinds can never collide, and every input fits KMS's 4096-byte
 * Message limit:
 *
 * ```
 *  offset  size  field
 *  0       16    stream id            PREFIX_STREAM_ID
 *  16      8     u64 BE n             PREFIX_N        (record seq, checkpoint index, record count, or 0)
 *  24      1     kind                 PREFIX_KIND     (KIND_*)
 *  25      …     payload              MAC_INPUT_PREFIX
 * ```
 *
 * Version 2 file layout (L = MAC length, 28/32/48/64):
 *
 * ```
 *  0       8     magic "KHMACLOG"
 *  8       4     u32 BE J = header JSON length
 *  12      J     header JSON (UTF-8)
 *  12+J    L     header MAC = MAC(streamId | 0 | 'H' | bytes[0 .. 12+J))
 *  then blocks, each a checkpoint followed by the MACs of the records it seals:
 *          8     magic "KHMACCKP"                              CKPT_MAGIC      @ CKPT_AT_MAGIC
 *          8     u64 k (checkpoint index, from 0)                              @ CKPT_AT_INDEX
 *          8     u64 records signed through this checkpoint                    @ CKPT_AT_RECORDS
 *          8     u64 log bytes signed through this checkpoint                  @ CKPT_AT_LOG_BYTES
 *          8     u64 time (ms since the epoch)                                 @ CKPT_AT_TIME
 *          L     checkpoint MAC = MAC(streamId | k | 'C' | records | logBytes | time | prev | DIGEST(block MACs))
 *          m*L   record MACs = MAC(streamId | seq | 0x00 | record)          record <= 4071 bytes
 *                              MAC(streamId | seq | 0x01 | DIGEST(record))  otherwise
 *  optionally, once the signer has finished:
 *          8     magic "KHMACEND"
 *          8     u64 n = record count
 *          8     u64 log length in bytes
 *          L     trailer MAC = MAC(streamId | n | 'T' | logBytes | last checkpoint MAC)
 * ```
 * `prev` is the previous checkpoint's MAC; for checkpoint 0 it is the header
 * MAC, or — for a sidecar that continues another after a log rotation — the
 * previous sidecar's last checkpoint MAC, which the header names.
 *
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
export const SIDECAR_VERSION = 2;
/** The versions read. */
export const SIDECAR_VERSIONS: readonly number[] = [1, 2];
export const STREAM_ID_LENGTH = 16;

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
export const KIND_TRAILER = 0x54; // 'T'

// the header: magic | u32 J | JSON
const HEADER_AT_JSON_LENGTH = 8;
export const HEADER_AT_JSON = 12;
const MAX_HEADER_JSON = 2048;
/** Bytes to read to be sure of holding the whole header and its MAC. */
export const HEADER_READ = HEADER_AT_JSON + MAX_HEADER_JSON + 64;

// a checkpoint entry on disk (its MAC follows at CKPT_AT_MAC)
export const CKPT_AT_MAGIC = 0;
export const CKPT_AT_INDEX = 8;
export const CKPT_AT_RECORDS = 16;
export const CKPT_AT_LOG_BYTES = 24;
export const CKPT_AT_TIME = 32;
export const CKPT_AT_MAC = 40;

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

/** A version-2 sidecar that continues another one (log rotation): the chain it continues. */
export interface ChainLink {
  /** The previous sidecar's stream id (hex). */
  streamId: string;
  /** Its last checkpoint: index, records, and MAC (the chain head). */
  checkpoint: number;
  records: number;
  head: Buffer;
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
  /** Version 2: the most records a checkpoint seals. */
  checkpointEvery?: number;
  /** Version 2: the sidecar this one continues, or null. */
  previous?: ChainLink | null;
  /** Version 2: the inode of the log when signing began (decimal), when it was a file: tells a rotation from an edit on restart. */
  logInode?: string;
}

/** The digest used for records longer than RAW_RECORD_MAX and for checkpoints: SHA-256 for HMAC_SHA_224/256, SHA-512 for 384/512. */
export function digestFor(algorithm: MacAlgorithm): DigestName {
  return algorithm === 'HMAC_SHA_384' || algorithm === 'HMAC_SHA_512' ? 'SHA-512' : 'SHA-256';
}

export function nodeDigestName(d: DigestName): 'sha256' | 'sha512' {
  return d === 'SHA-512' ? 'sha512' : 'sha256';
}

export function newStreamId(): Buffer {
  return randomBytes(STREAM_ID_LENGTH);
}

export function framingDelimiter(f: Framing): Buffer {
  return f.type === 'delimiter' ? Buffer.from(f.delimiter) : Buffer.from([0x0a]);
}

/** Bytes of a checkpoint entry on disk. */
export function checkpointSize(macLength: number): number {
  return CKPT_AT_MAC + macLength;
}

/** Writes the 25-byte MAC input prefix at `out[pos..]`. */
export function writePrefix(out: Buffer, pos: number, streamId: Uint8Array, n: number, kind: number): void {
  out.set(streamId, pos + PREFIX_STREAM_ID);
  writeU64(out, pos + PREFIX_N, n);
  out[pos + PREFIX_KIND] = kind;
}

/** A MAC input: the prefix, then the payload parts. */
function macInput(streamId: Uint8Array, n: number, kind: number, ...payload: Uint8Array[]): Buffer {
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
}

export function checkpointMacInput(
  streamId: Uint8Array,
  c: CheckpointFields,
  prev: Uint8Array,
  blockDigest: Uint8Array,
): Buffer {
  return macInput(
    streamId,
    c.index,
    KIND_CHECKPOINT,
    u64(c.records),
    u64(c.logBytes),
    u64(c.timeMs),
    prev,
    blockDigest,
  );
}

/** A checkpoint entry as stored: magic | index | records | logBytes | time | MAC. */
export function encodeCheckpoint(out: Buffer, pos: number, c: CheckpointFields, mac: Uint8Array): void {
  CKPT_MAGIC.copy(out, pos + CKPT_AT_MAGIC);
  writeU64(out, pos + CKPT_AT_INDEX, c.index);
  writeU64(out, pos + CKPT_AT_RECORDS, c.records);
  writeU64(out, pos + CKPT_AT_LOG_BYTES, c.logBytes);
  writeU64(out, pos + CKPT_AT_TIME, c.timeMs);
  out.set(mac, pos + CKPT_AT_MAC);
}

/** The fields of a checkpoint entry, or null when `buf[pos..]` does not start with the checkpoint magic. */
export function decodeCheckpoint(buf: Buffer, pos: number): CheckpointFields | null {
  if (!buf.subarray(pos + CKPT_AT_MAGIC, pos + CKPT_AT_INDEX).equals(CKPT_MAGIC)) return null;
  return {
    index: readU64(buf, pos + CKPT_AT_INDEX),
    records: readU64(buf, pos + CKPT_AT_RECORDS),
    logBytes: readU64(buf, pos + CKPT_AT_LOG_BYTES),
    timeMs: readU64(buf, pos + CKPT_AT_TIME),
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
  return JSON.stringify({
    ...v1,
    checkpointEvery: h.checkpointEvery,
    previous: p
      ? { streamId: p.streamId, checkpoint: p.checkpoint, records: p.records, head: p.head.toString('base64') }
      : null,
    ...(h.logInode !== undefined ? { logInode: h.logInode } : {}),
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

/**
 * Parses the header from the first bytes of a sidecar. Returns the header,
 * the bytes its MAC covers, and where the header MAC starts.
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
      `sidecar format version ${String(raw.version)} is not supported (this build reads versions ${SIDECAR_VERSIONS.join(' and ')})`,
      false,
    );
  }
  const alg = raw.macAlgorithm as MacAlgorithm;
  if (!MAC_ALGORITHMS.includes(alg) || raw.macLength !== MAC_LENGTH[alg]) throw damaged('macAlgorithm');
  if (typeof raw.keyArn !== 'string' || typeof raw.streamId !== 'string' || !/^[0-9a-f]{32}$/.test(raw.streamId))
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
  if (version === 2) {
    if (!isCount(raw.checkpointEvery) || raw.checkpointEvery < 1 || raw.checkpointEvery > MAX_CHECKPOINT_EVERY)
      throw damaged('checkpointEvery');
    header.checkpointEvery = raw.checkpointEvery;
    header.previous = decodeLink(raw.previous, MAC_LENGTH[alg]);
    if (raw.logInode !== undefined) {
      if (typeof raw.logInode !== 'string' || !/^\d{1,20}$/.test(raw.logInode)) throw damaged('logInode');
      header.logInode = raw.logInode;
    }
  }
  return { header, headerBytes: Buffer.from(b.subarray(0, end)), macOffset: end };
}

function decodeLink(p: unknown, macLength: number): ChainLink | null {
  if (p === null) return null;
  const l = p as Record<string, unknown> | undefined;
  const head = typeof l?.head === 'string' ? Buffer.from(l.head, 'base64') : undefined;
  if (
    !l ||
    typeof l.streamId !== 'string' ||
    !/^[0-9a-f]{32}$/.test(l.streamId) ||
    !isCount(l.checkpoint) ||
    !isCount(l.records) ||
    head?.length !== macLength
  ) {
    throw damaged('previous');
  }
  return { streamId: l.streamId, checkpoint: l.checkpoint, records: l.records, head };
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
