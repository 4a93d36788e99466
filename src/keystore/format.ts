/**
 * The on-disk format of FileKeyStore (format version 1).
 *
 *   {
 *     "format": "kms-hmac-keystore",
 *     "formatVersion": 1,
 *     "generation": 42,                 // +1 on every write
 *     "encryption": null | {
 *       "kdf": { "name": "scrypt", "salt": b64, "N": 32768, "r": 8, "p": 1 },
 *       "cipher": "aes-256-gcm",
 *       "check": { "iv": b64, "data": b64, "tag": b64 }   // verifies the passphrase
 *     },
 *     "keys": [ <key record> ... ],
 *     "aliases": [ <alias record> ... ],
 *     "checksum": "sha256:<hex>"
 *   }
 *
 * Records keep their field names. A Uint8Array is written as
 * `{"$bytes": b64}`; when the store is encrypted the secret fields
 * (`keyMaterial`, `importParameters.privateKey`) are written as
 * `{"$sealed": {"iv","data","tag"}}`: AES-256-GCM under the scrypt-derived key,
 * with the key id and field path as additional data, so a sealed value cannot
 * be moved to another key or field. Metadata (ids, ARNs, states, tags,
 * descriptions) stays readable; only secrets are encrypted.
 *
 * `checksum` is SHA-256 over the canonical JSON (object keys sorted, no
 * whitespace) of the document without `checksum`. It detects corruption and
 * truncation; it is not a signature (the GCM tags authenticate the secrets).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { KeyStoreCorruptError } from './errors.js';
import type { AliasRecord, KeyRecord } from './types.js';

export const FORMAT = 'kms-hmac-keystore';
export const FORMAT_VERSION = 1;
export const DEFAULT_SCRYPT = Object.freeze({ N: 1 << 15, r: 8, p: 1 });
const CHECK_PLAINTEXT = Buffer.from('kms-hmac-keystore passphrase check v1');

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface KdfHeader extends ScryptParams {
  name: 'scrypt';
  salt: string;
}

interface SealedBox {
  iv: string;
  data: string;
  tag: string;
}

export interface EncryptionHeader {
  kdf: KdfHeader;
  cipher: 'aes-256-gcm';
  check: SealedBox;
}

/** A derived key bound to the header it was derived for. */
export interface Cipher {
  header: EncryptionHeader;
  key: Buffer;
}

/** Canonical JSON: sorted object keys, no whitespace. */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

export function checksumOf(docWithoutChecksum: unknown): string {
  return `sha256:${createHash('sha256').update(canonical(docWithoutChecksum)).digest('hex')}`;
}

// ---- key derivation and sealing -------------------------------------------

function scryptOptions(p: ScryptParams) {
  return { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + (1 << 20) };
}

function validKdf(k: unknown): k is KdfHeader {
  const h = k as KdfHeader;
  return (
    typeof h === 'object' &&
    h !== null &&
    h.name === 'scrypt' &&
    typeof h.salt === 'string' &&
    Number.isInteger(h.N) &&
    h.N >= 2 &&
    h.N <= 1 << 20 &&
    (h.N & (h.N - 1)) === 0 &&
    Number.isInteger(h.r) &&
    h.r >= 1 &&
    h.r <= 32 &&
    Number.isInteger(h.p) &&
    h.p >= 1 &&
    h.p <= 16
  );
}

export function deriveKeySync(passphrase: Buffer, kdf: KdfHeader): Buffer {
  return scryptSync(passphrase, Buffer.from(kdf.salt, 'base64'), 32, scryptOptions(kdf));
}

export function deriveKey(passphrase: Buffer, kdf: KdfHeader): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, Buffer.from(kdf.salt, 'base64'), 32, scryptOptions(kdf), (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function seal(key: Buffer, plaintext: Uint8Array, aad: string): SealedBox {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const data = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv: iv.toString('base64'), data: data.toString('base64'), tag: c.getAuthTag().toString('base64') };
}

/** Returns the plaintext in a fresh Uint8Array (intermediate buffers zeroed), or undefined if authentication fails. */
function open(key: Buffer, box: SealedBox, aad: string): Uint8Array | undefined {
  try {
    const iv = Buffer.from(box.iv, 'base64');
    const tag = Buffer.from(box.tag, 'base64');
    if (iv.length !== 12 || tag.length !== 16) return undefined;
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(tag);
    const a = d.update(Buffer.from(box.data, 'base64'));
    const b = d.final();
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    a.fill(0);
    b.fill(0);
    return out;
  } catch {
    return undefined;
  }
}

/** A new encryption header (fresh salt) and its key. */
export function newCipherSync(passphrase: Buffer, params: ScryptParams): Cipher {
  const kdf: KdfHeader = { name: 'scrypt', salt: randomBytes(16).toString('base64'), N: params.N, r: params.r, p: params.p };
  const key = deriveKeySync(passphrase, kdf);
  return { header: { kdf, cipher: 'aes-256-gcm', check: seal(key, CHECK_PLAINTEXT, 'check') }, key };
}

export async function newCipher(passphrase: Buffer, params: ScryptParams): Promise<Cipher> {
  const kdf: KdfHeader = { name: 'scrypt', salt: randomBytes(16).toString('base64'), N: params.N, r: params.r, p: params.p };
  const key = await deriveKey(passphrase, kdf);
  return { header: { kdf, cipher: 'aes-256-gcm', check: seal(key, CHECK_PLAINTEXT, 'check') }, key };
}

/** Whether `key` opens the header's check value (i.e. the passphrase is right). */
export function checkKey(key: Buffer, header: EncryptionHeader): boolean {
  const pt = open(key, header.check, 'check');
  return pt !== undefined && pt.length === CHECK_PLAINTEXT.length && timingSafeEqual(pt, CHECK_PLAINTEXT);
}

export function sameKdf(a: KdfHeader, b: KdfHeader): boolean {
  return a.salt === b.salt && a.N === b.N && a.r === b.r && a.p === b.p;
}

// ---- records <-> JSON -----------------------------------------------------

function isSecretPath(path: string): boolean {
  return path === 'keyMaterial' || path === 'importParameters.privateKey';
}

function encodeValue(v: unknown, path: string, keyId: string, cipher: Cipher | undefined): unknown {
  if (v instanceof Uint8Array) {
    if (cipher && isSecretPath(path)) return { $sealed: seal(cipher.key, v, `${keyId}\0${path}`) };
    return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeValue(x, `${path}[${i}]`, keyId, cipher));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = encodeValue(x, path ? `${path}.${k}` : k, keyId, cipher);
    }
    return out;
  }
  return v;
}

export function encodeKey(rec: KeyRecord, cipher: Cipher | undefined): Record<string, unknown> {
  return encodeValue(rec, '', rec.keyId, cipher) as Record<string, unknown>;
}

export function encodeAlias(rec: AliasRecord): Record<string, unknown> {
  return encodeValue(rec, '', rec.aliasName, undefined) as Record<string, unknown>;
}

class DecodeError extends Error {}

function decodeValue(v: unknown, path: string, keyId: string, cipher: Cipher | undefined, secrets: Uint8Array[]): unknown {
  if (Array.isArray(v)) return v.map((x, i) => decodeValue(x, `${path}[${i}]`, keyId, cipher, secrets));
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$bytes') {
      if (typeof o.$bytes !== 'string') throw new DecodeError(`${keyId}: bad bytes at ${path}`);
      const buf = Buffer.from(o.$bytes, 'base64');
      const out = new Uint8Array(buf);
      buf.fill(0);
      return out;
    }
    if (keys.length === 1 && keys[0] === '$sealed') {
      if (!cipher) throw new DecodeError(`${keyId}: sealed value at ${path} in an unencrypted store`);
      const box = o.$sealed as SealedBox;
      if (!box || typeof box.iv !== 'string' || typeof box.data !== 'string' || typeof box.tag !== 'string') {
        throw new DecodeError(`${keyId}: malformed sealed value at ${path}`);
      }
      const pt = open(cipher.key, box, `${keyId}\0${path}`);
      if (!pt) throw new DecodeError(`${keyId}: sealed value at ${path} failed authentication`);
      secrets.push(pt);
      return pt;
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = decodeValue(o[k], path ? `${path}.${k}` : k, keyId, cipher, secrets);
    return out;
  }
  return v;
}

// ---- whole documents ------------------------------------------------------

export interface ParsedDoc {
  generation: number;
  encryption: EncryptionHeader | null;
  checksum: string;
  /** Encoded entries and their canonical text (to recognise unchanged records across reloads). */
  keys: { id: string; canon: string; entry: Record<string, unknown> }[];
  aliases: { id: string; canon: string; entry: Record<string, unknown> }[];
}

/**
 * Parses and verifies a store file without decrypting anything. Throws
 * KeyStoreCorruptError for anything that is not a complete, intact store.
 */
export function parseDoc(path: string, bytes: Buffer): ParsedDoc {
  if (bytes.length === 0) throw new KeyStoreCorruptError(path, 'the file is empty');
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new KeyStoreCorruptError(path, 'not valid JSON (truncated or overwritten?)');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || doc.format !== FORMAT) {
    throw new KeyStoreCorruptError(path, `not a ${FORMAT} file`);
  }
  if (doc.formatVersion !== FORMAT_VERSION) {
    throw new KeyStoreCorruptError(path, `unsupported format version ${JSON.stringify(doc.formatVersion)} (this build reads ${FORMAT_VERSION})`);
  }
  const { checksum, ...rest } = doc;
  if (typeof checksum !== 'string' || checksum !== checksumOf(rest)) {
    throw new KeyStoreCorruptError(path, 'checksum mismatch');
  }
  const enc = doc.encryption as EncryptionHeader | null;
  if (
    enc !== null &&
    (typeof enc !== 'object' || enc.cipher !== 'aes-256-gcm' || !validKdf(enc.kdf) || typeof enc.check !== 'object' || enc.check === null)
  ) {
    throw new KeyStoreCorruptError(path, 'unsupported or malformed encryption header');
  }
  if (!Array.isArray(doc.keys) || !Array.isArray(doc.aliases) || !Number.isInteger(doc.generation)) {
    throw new KeyStoreCorruptError(path, 'missing keys, aliases or generation');
  }
  const keys: ParsedDoc['keys'] = [];
  for (const e of doc.keys as unknown[]) {
    const entry = e as Record<string, unknown>;
    if (entry === null || typeof entry !== 'object' || typeof entry.keyId !== 'string') {
      throw new KeyStoreCorruptError(path, 'malformed key entry');
    }
    keys.push({ id: entry.keyId, canon: canonical(entry), entry });
  }
  const aliases: ParsedDoc['aliases'] = [];
  for (const e of doc.aliases as unknown[]) {
    const entry = e as Record<string, unknown>;
    if (entry === null || typeof entry !== 'object' || typeof entry.aliasName !== 'string') {
      throw new KeyStoreCorruptError(path, 'malformed alias entry');
    }
    aliases.push({ id: entry.aliasName, canon: canonical(entry), entry });
  }
  return { generation: doc.generation as number, encryption: enc, checksum, keys, aliases };
}

/** Decodes one key entry (decrypting secrets). Throws KeyStoreCorruptError if a sealed value does not authenticate. */
export function decodeKey(path: string, entry: Record<string, unknown>, cipher: Cipher | undefined): KeyRecord {
  const secrets: Uint8Array[] = [];
  try {
    return decodeValue(entry, '', entry.keyId as string, cipher, secrets) as KeyRecord;
  } catch (err) {
    for (const s of secrets) s.fill(0);
    if (err instanceof DecodeError) throw new KeyStoreCorruptError(path, `key ${err.message}`);
    throw err;
  }
}

export function decodeAlias(path: string, entry: Record<string, unknown>): AliasRecord {
  try {
    return decodeValue(entry, '', entry.aliasName as string, undefined, []) as AliasRecord;
  } catch (err) {
    if (err instanceof DecodeError) throw new KeyStoreCorruptError(path, `alias ${err.message}`);
    throw err;
  }
}

/**
 * Serializes a whole document from the canonical text of each encoded entry.
 * Returns the file text and its checksum. The checksum input is built from the
 * same canonical pieces parseDoc recomputes (keys of the body in sorted order).
 */
export function serializeDoc(
  generation: number,
  encryption: EncryptionHeader | null,
  keyCanons: string[],
  aliasCanons: string[],
): { text: string; checksum: string } {
  const enc = canonical(encryption);
  const body =
    `{"aliases":[${aliasCanons.join(',')}],"encryption":${enc},"format":${JSON.stringify(FORMAT)},` +
    `"formatVersion":${FORMAT_VERSION},"generation":${generation},"keys":[${keyCanons.join(',')}]}`;
  const checksum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const list = (xs: string[]) => (xs.length ? `\n${xs.join(',\n')}\n` : '');
  // One record per line: readable, diffable, and still plain JSON.
  const text =
    `{\n"format":${JSON.stringify(FORMAT)},\n"formatVersion":${FORMAT_VERSION},\n"generation":${generation},\n` +
    `"encryption":${enc},\n"keys":[${list(keyCanons)}],\n"aliases":[${list(aliasCanons)}],\n` +
    `"checksum":${JSON.stringify(checksum)}\n}\n`;
  return { text, checksum };
}
