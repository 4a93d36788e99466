/**
 * Checkpoints shipped off the host ("anchors"), one JSON line each: written
 * by `sign --checkpoints-out` (and the record streams, the transports) as
 * each becomes durable, and checked by `verify --checkpoints`
 * (anchor-check.ts).
 *
 * Three kinds of line (docs/log-format.md, "Shipped checkpoints"):
 *  - `stream`: a stream has begun: its header bytes and header MAC (so the
 *    log id, the link to the stream it continues and the heartbeat it
 *    promises are authenticated), and for a forward-secure stream its nonce,
 *    which exists nowhere else;
 *  - `checkpoint`: everything its MAC covers (the previous chain MAC, the
 *    digest of the block's record MACs, the key epoch), so it verifies on its
 *    own;
 *  - `close`: the stream was finished with a trailer.
 * Every line names the log: its id, the host and the path (informational).
 *
 * Lines may carry a prefix (a syslog timestamp and tag): a line is read from
 * its first `{`. Lines that are not anchors are skipped.
 *
 * A stream line's nonce is a secret of the host that wrote it until it is
 * off the host: anchorBytes() writes it into the line without ever making it
 * a JavaScript string (strings cannot be wiped), and the signer zero-fills
 * the nonce and the line once the sink has taken them.
 */
import type { MacEngine } from './engine.js';
import {
  NONCE_LENGTH,
  SidecarFormatError,
  checkpointMacInput,
  decodeHeader,
  headerMacInput,
  trailerMacInput,
  type CheckpointFields,
  type SidecarHeader,
} from './format.js';
import type { StreamKeys } from './keys.js';

/** Where a line's log is: its id (32 hex digits), and the host and path of the signer (informational, covered by no MAC). */
export interface LogIdentity {
  logId?: string;
  host?: string;
  log?: string;
}

/** A stream has begun. */
export interface StreamAnchor extends LogIdentity {
  type: 'stream';
  keyArn: string;
  logId: string;
  /** Hex. */
  streamId: string;
  /** The header's createdAt. */
  time: string;
  /** The header bytes (magic, length, JSON), base64: what the header MAC covers. */
  header: string;
  headerMac: string;
  /**
   * A forward-secure stream's nonce (32 bytes; hex in the line). As a
   * Buffer, the signer wipes it once the sink has taken the line: a sink
   * that keeps it must copy it (anchorBytes does).
   */
  nonce?: Buffer | string;
}

/** A checkpoint, as shipped. Binary fields are base64. */
export interface CheckpointAnchor extends LogIdentity {
  type: 'checkpoint';
  keyArn: string;
  /** Hex. */
  streamId: string;
  checkpoint: number;
  records: number;
  logBytes: number;
  /** ISO 8601, milliseconds: the time the checkpoint states. */
  time: string;
  /** The key epoch (version 3 lines; a line without one is a version-2 line, whose MAC binds no epoch). */
  epoch?: number;
  /** The MAC this checkpoint chains to. */
  prev: string;
  /** DIGEST of the record MACs it seals. */
  digest: string;
  mac: string;
}

/** A stream finished with a trailer: signed through `checkpoint`, whose MAC is `head`. */
export interface CloseAnchor extends LogIdentity {
  type: 'close';
  keyArn: string;
  streamId: string;
  checkpoint: number;
  records: number;
  logBytes: number;
  /** The epoch of the key that made the trailer (version 3). */
  epoch?: number;
  head: string;
  /** The trailer MAC. */
  mac: string;
}

export type Anchor = StreamAnchor | CheckpointAnchor | CloseAnchor;

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/**
 * One shipped line, as bytes. A stream line's nonce goes into the bytes
 * straight from its Buffer (hex), never through a string; the caller may
 * zero-fill the result once it is written.
 */
export function anchorBytes(a: Anchor): Buffer {
  if (a.type !== 'stream' || !Buffer.isBuffer(a.nonce)) return Buffer.from(anchorLine(a));
  const { nonce, ...rest } = a;
  const json = JSON.stringify({ ...rest, nonce: '' });
  const at = json.lastIndexOf('"nonce":""') + '"nonce":"'.length;
  const before = json.slice(0, at);
  const after = json.slice(at);
  const head = Buffer.byteLength(before);
  const out = Buffer.allocUnsafe(head + nonce.length * 2 + Buffer.byteLength(after) + 1);
  out.write(before, 0);
  for (let i = 0; i < nonce.length; i++) {
    out[head + 2 * i] = HEX[nonce[i]! >> 4]!;
    out[head + 2 * i + 1] = HEX[nonce[i]! & 15]!;
  }
  out.write(after, head + nonce.length * 2);
  out[out.length - 1] = 0x0a;
  return out;
}

/**
 * One shipped line as text. For a stream line whose nonce is a Buffer, the
 * nonce becomes a string here: on the signing host use anchorBytes().
 */
export function anchorLine(a: Anchor): string {
  if (a.type === 'stream' && Buffer.isBuffer(a.nonce))
    return `${JSON.stringify({ ...a, nonce: a.nonce.toString('hex') })}\n`;
  return `${JSON.stringify(a)}\n`;
}

export function checkpointAnchor(
  keyArn: string,
  streamId: Buffer,
  c: CheckpointFields,
  prev: Uint8Array,
  digest: Uint8Array,
  mac: Uint8Array,
  version: number,
): CheckpointAnchor {
  return {
    type: 'checkpoint',
    keyArn,
    streamId: streamId.toString('hex'),
    checkpoint: c.index,
    records: c.records,
    logBytes: c.logBytes,
    time: new Date(c.timeMs).toISOString(),
    ...(version >= 3 ? { epoch: c.epoch } : {}),
    prev: b64(prev),
    digest: b64(digest),
    mac: b64(mac),
  };
}

/** The stream line of a stream whose header is on disk; `nonce` for a forward-secure one. */
export function streamAnchor(
  header: SidecarHeader,
  headerBytes: Uint8Array,
  headerMac: Uint8Array,
  nonce?: Buffer,
): StreamAnchor {
  return {
    type: 'stream',
    keyArn: header.keyArn,
    logId: header.logId!,
    streamId: header.streamId,
    time: header.createdAt,
    header: b64(headerBytes),
    headerMac: b64(headerMac),
    ...(nonce ? { nonce } : {}),
  };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHex32 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

/** An anchor from one shipped line, or null when the line is not one. */
export function parseAnchor(line: string): Anchor | null {
  const at = line.indexOf('{');
  if (at < 0) return null;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line.slice(at)) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || !isHex32(v.streamId) || !isStr(v.keyArn)) return null;
  for (const k of ['logId', 'host', 'log'] as const) if (v[k] !== undefined && !isStr(v[k])) return null;
  if (v.logId !== undefined && !isHex32(v.logId)) return null;
  if (v.type === 'stream') {
    if (!isHex32(v.logId) || !isStr(v.time) || !isStr(v.header) || !isStr(v.headerMac)) return null;
    if (
      v.nonce !== undefined &&
      !(isStr(v.nonce) && v.nonce.length === NONCE_LENGTH * 2 && /^[0-9a-f]+$/.test(v.nonce))
    )
      return null;
    return v as unknown as StreamAnchor;
  }
  if (!isCount(v.checkpoint) || !isCount(v.records) || !isCount(v.logBytes) || !isStr(v.mac)) return null;
  if (v.epoch !== undefined && !isCount(v.epoch)) return null;
  if (v.type === 'checkpoint' && isStr(v.time) && isStr(v.prev) && isStr(v.digest))
    return v as unknown as CheckpointAnchor;
  if (v.type === 'close' && isStr(v.head)) return v as unknown as CloseAnchor;
  return null;
}

/** A stream line's header, decoded; null when it is not a header of the stream the line names. */
export function streamHeader(
  a: StreamAnchor,
): { header: SidecarHeader; headerBytes: Buffer; headerMac: Buffer } | null {
  try {
    const headerBytes = Buffer.from(a.header, 'base64');
    const { header, macOffset } = decodeHeader(headerBytes);
    if (
      macOffset !== headerBytes.length ||
      header.version < 3 ||
      header.streamId !== a.streamId ||
      header.logId !== a.logId ||
      header.keyArn !== a.keyArn
    )
      return null;
    const headerMac = Buffer.from(a.headerMac, 'base64');
    return headerMac.length === header.macLength ? { header, headerBytes, headerMac } : null;
  } catch (err) {
    if (err instanceof SidecarFormatError) return null;
    throw err;
  }
}

/**
 * Whether a shipped line's MAC verifies: with the trusted engine (a kms
 * stream, or a version-2 line), or with the stream's keys (any stream; a
 * forward-secure one's come from its nonce, keys.ts).
 */
export async function anchorVerifies(a: Anchor, keys: MacEngine | StreamKeys): Promise<boolean> {
  const engineFor = (epoch: number) => ('engineFor' in keys ? keys.engineFor(epoch) : keys);
  const sid = Buffer.from(a.streamId, 'hex');
  if (a.type === 'stream') {
    const h = streamHeader(a);
    return h !== null && engineFor(0).verify(headerMacInput(sid, h.headerBytes), h.headerMac);
  }
  const epoch = a.epoch ?? 0;
  const engine = engineFor(epoch);
  const mac = Buffer.from(a.mac, 'base64');
  if (mac.length !== engine.macLength) return false;
  if (a.type === 'close')
    return engine.verify(trailerMacInput(sid, a.records, a.logBytes, Buffer.from(a.head, 'base64')), mac);
  const timeMs = Date.parse(a.time);
  if (!Number.isSafeInteger(timeMs) || timeMs < 0) return false;
  const fields = { index: a.checkpoint, records: a.records, logBytes: a.logBytes, timeMs, epoch };
  const version = a.epoch === undefined ? 2 : 3;
  return engine.verify(
    checkpointMacInput(sid, fields, Buffer.from(a.prev, 'base64'), Buffer.from(a.digest, 'base64'), version),
    mac,
  );
}
