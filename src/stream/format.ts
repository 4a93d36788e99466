/**
 * The kms-hmac log sidecar format, version 1 (docs/log-format.md is the
 * normative description; keep the two in step).
 *
 * ```
 *  offset        size   field
 *  0             8      magic "KHMACLOG"
 *  8             4      u32 BE  J = header JSON length
 *  12            J      header JSON (UTF-8)
 *  12+J          L      header MAC   = MAC(streamId | u64 0     | 'H' | bytes[0 .. 12+J))
 *  12+J+L        n*L    record MACs  = MAC(streamId | u64 seq   | 0x00 | record)          record <= 4071 bytes
 *                                      MAC(streamId | u64 seq   | 0x01 | DIGEST(record))  otherwise
 *  ...           8      magic "KHMACEND"
 *                8      u64 BE  n = record count
 *                8      u64 BE  log length in bytes
 *                L      trailer MAC  = MAC(streamId | u64 n     | 'T' | u64 logBytes)
 * ```
 * L is the MAC length of the algorithm (28/32/48/64). Every MAC input starts
 * with the same 25-byte prefix (stream id, a 64-bit number, a kind byte), so
 * inputs of different kinds can never collide, and every input fits KMS's
 * 4096-byte Message limit.
 */
import { createHash, randomBytes } from 'node:crypto';
import { MAC_LENGTH, MAC_ALGORITHMS, type MacAlgorithm } from '../backend/types.js';

export const SIDECAR_MAGIC = Buffer.from('KHMACLOG', 'latin1');
export const TRAILER_MAGIC = Buffer.from('KHMACEND', 'latin1');
export const SIDECAR_FORMAT = 'kms-hmac-log';
export const SIDECAR_VERSION = 1;
export const STREAM_ID_LENGTH = 16;
/** streamId (16) + u64 (8) + kind (1). */
export const MAC_INPUT_PREFIX = 25;
/** KMS GenerateMac's Message limit. */
export const KMS_MAX_MESSAGE = 4096;
/** Longest record MACed as is; longer records are MACed as their digest. */
export const RAW_RECORD_MAX = KMS_MAX_MESSAGE - MAC_INPUT_PREFIX; // 4071
export const KIND_RAW = 0x00;
export const KIND_DIGEST = 0x01;
export const KIND_HEADER = 0x48; // 'H'
export const KIND_TRAILER = 0x54; // 'T'
/** magic + count + logBytes, before the trailer MAC. */
export const TRAILER_FIXED = 24;
export const MAX_DELIMITER = 64;
const MAX_HEADER_JSON = 2048;

export type Framing =
  | { type: 'line' }
  | { type: 'ndjson' }
  | { type: 'delimiter'; delimiter: Uint8Array };

export type DigestName = 'SHA-256' | 'SHA-512';

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
}

/** The digest used for records longer than RAW_RECORD_MAX: SHA-256 for HMAC_SHA_224/256, SHA-512 for 384/512. */
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

/** Writes the 25-byte MAC input prefix at `out[pos..]`. */
export function writePrefix(out: Buffer, pos: number, streamId: Uint8Array, n: number, kind: number): void {
  out.set(streamId, pos);
  out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), pos + 16);
  out.writeUInt32BE(n >>> 0, pos + 20);
  out[pos + 24] = kind;
}

/** The MAC input of one whole record (used off the hot path and by the stream transforms). */
export function recordMacInput(streamId: Uint8Array, seq: number, record: Uint8Array, digest: DigestName): Buffer {
  if (record.length <= RAW_RECORD_MAX) {
    const out = Buffer.allocUnsafe(MAC_INPUT_PREFIX + record.length);
    writePrefix(out, 0, streamId, seq, KIND_RAW);
    out.set(record, MAC_INPUT_PREFIX);
    return out;
  }
  const d = createHash(nodeDigestName(digest)).update(record).digest();
  const out = Buffer.allocUnsafe(MAC_INPUT_PREFIX + d.length);
  writePrefix(out, 0, streamId, seq, KIND_DIGEST);
  out.set(d, MAC_INPUT_PREFIX);
  return out;
}

export function headerJson(h: SidecarHeader): string {
  const framing =
    h.framing.type === 'delimiter'
      ? { type: 'delimiter', delimiter: Buffer.from(h.framing.delimiter).toString('base64') }
      : { type: h.framing.type };
  return JSON.stringify({
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
  });
}

/** magic | u32 J | JSON: the bytes the header MAC covers. */
export function encodeHeader(h: SidecarHeader): Buffer {
  const json = Buffer.from(headerJson(h), 'utf8');
  if (json.length > MAX_HEADER_JSON) throw new RangeError('sidecar header too long (key ARN or delimiter too long)');
  const out = Buffer.allocUnsafe(12 + json.length);
  SIDECAR_MAGIC.copy(out, 0);
  out.writeUInt32BE(json.length, 8);
  json.copy(out, 12);
  return out;
}

export function headerMacInput(streamId: Uint8Array, headerBytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MAC_INPUT_PREFIX + headerBytes.length);
  writePrefix(out, 0, streamId, 0, KIND_HEADER);
  out.set(headerBytes, MAC_INPUT_PREFIX);
  return out;
}

export function trailerMacInput(streamId: Uint8Array, count: number, logBytes: number): Buffer {
  const out = Buffer.allocUnsafe(MAC_INPUT_PREFIX + 8);
  writePrefix(out, 0, streamId, count, KIND_TRAILER);
  writeU64(out, MAC_INPUT_PREFIX, logBytes);
  return out;
}

/** The trailer without its MAC: magic | u64 count | u64 logBytes. */
export function encodeTrailerFixed(count: number, logBytes: number): Buffer {
  const out = Buffer.allocUnsafe(TRAILER_FIXED);
  TRAILER_MAGIC.copy(out, 0);
  writeU64(out, 8, count);
  writeU64(out, 16, logBytes);
  return out;
}

export function writeU64(out: Buffer, pos: number, n: number): void {
  out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), pos);
  out.writeUInt32BE(n >>> 0, pos + 4);
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

/**
 * Parses the header from the first bytes of a sidecar. Returns the header,
 * the bytes its MAC covers, and where the header MAC starts.
 */
export function decodeHeader(buf: Uint8Array): { header: SidecarHeader; headerBytes: Buffer; macOffset: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 12 || !b.subarray(0, 8).equals(SIDECAR_MAGIC)) {
    throw new SidecarFormatError('not a kms-hmac log sidecar (bad magic)', false);
  }
  const j = b.readUInt32BE(8);
  if (j > MAX_HEADER_JSON || b.length < 12 + j) throw new SidecarFormatError('sidecar header is truncated or damaged', true);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(b.subarray(12, 12 + j).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new SidecarFormatError('sidecar header JSON is damaged', true);
  }
  if (raw.format !== SIDECAR_FORMAT) throw new SidecarFormatError('sidecar header: unknown format', true);
  if (raw.version !== SIDECAR_VERSION) {
    throw new SidecarFormatError(`sidecar format version ${String(raw.version)} is not supported (this build reads version ${SIDECAR_VERSION})`, false);
  }
  const alg = raw.macAlgorithm as MacAlgorithm;
  if (!MAC_ALGORITHMS.includes(alg) || raw.macLength !== MAC_LENGTH[alg]) throw new SidecarFormatError('sidecar header: bad macAlgorithm', true);
  if (typeof raw.keyArn !== 'string' || typeof raw.streamId !== 'string' || !/^[0-9a-f]{32}$/.test(raw.streamId)) {
    throw new SidecarFormatError('sidecar header: bad keyArn or streamId', true);
  }
  if (raw.digest !== digestFor(alg) || raw.rawRecordMax !== RAW_RECORD_MAX) throw new SidecarFormatError('sidecar header: bad digest rule', true);
  const f = raw.framing as { type?: string; delimiter?: string } | undefined;
  let framing: Framing;
  if (f?.type === 'line' || f?.type === 'ndjson') framing = { type: f.type };
  else if (f?.type === 'delimiter' && typeof f.delimiter === 'string') {
    const d = Buffer.from(f.delimiter, 'base64');
    if (d.length < 1 || d.length > MAX_DELIMITER) throw new SidecarFormatError('sidecar header: bad delimiter', true);
    framing = { type: 'delimiter', delimiter: d };
  } else throw new SidecarFormatError('sidecar header: bad framing', true);
  const header: SidecarHeader = {
    format: SIDECAR_FORMAT,
    version: SIDECAR_VERSION,
    keyArn: raw.keyArn,
    macAlgorithm: alg,
    macLength: MAC_LENGTH[alg],
    framing,
    streamId: raw.streamId,
    digest: raw.digest as DigestName,
    rawRecordMax: RAW_RECORD_MAX,
    createdAt: String(raw.createdAt ?? ''),
  };
  return { header, headerBytes: Buffer.from(b.subarray(0, 12 + j)), macOffset: 12 + j };
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
  if (bytes.length < 1 || bytes.length > MAX_DELIMITER) throw new RangeError(`delimiter must be 1..${MAX_DELIMITER} bytes`);
  return Buffer.from(bytes);
}
