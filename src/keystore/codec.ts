/**
 * Records ↔ the JSON text stored for them (one row per key or alias).
 *
 * Records keep their field names; the text is canonical JSON (object keys
 * sorted, no whitespace), so the same record always gives the same text.
 * A Uint8Array is written `{"$bytes": b64}`. In an encrypted store the
 * secret fields (`keyMaterial`, `importParameters.privateKey`) are written
 * `{"$sealed": {"iv","data","tag"}}` instead: AES-256-GCM, with the key id
 * and the field path as additional data, so a sealed value cannot be moved
 * to another key or field. A secret in the clear is never accepted from an
 * encrypted store. Metadata (ids, ARNs, states, tags, descriptions) stays
 * readable to whoever can read the store.
 */
import { KeyStoreError } from './errors.js';
import { adoptDecoded, aliasStoreId, keyStoreId, LazySecret, type LeafDecoder } from './records.js';
import type { SealedBox } from './crypto.js';
import type { AliasRecord, KeyRecord } from './types.js';

/** How secret fields are stored: sealed (encrypted store) or as plain bytes. */
export interface SecretCodec {
  readonly encrypted: boolean;
  /** Open sealed values on first read (the store authenticated them as a whole) rather than while decoding. */
  readonly lazy?: boolean;
  sealField(plaintext: Uint8Array, aad: string): SealedBox;
  unsealField(box: SealedBox, aad: string): Uint8Array | undefined;
}

/** A stored record that cannot be decoded; the message names the record and field, never a secret. */
export class RecordDecodeError extends Error {}

/** Canonical JSON: sorted object keys, no whitespace, undefined members dropped. */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

const SECRET_PATHS = new Set(['keyMaterial', 'importParameters.privateKey']);

/** A sealed field's additional data: the record's store id (its key id unless qualified by a Region) and the field. */
function aad(storeId: string, path: string): string {
  return `${storeId}\0${path}`;
}

function encodeValue(v: unknown, path: string, keyId: string, codec: SecretCodec | undefined): unknown {
  if (v instanceof Uint8Array) {
    if (codec?.encrypted && SECRET_PATHS.has(path)) return { $sealed: codec.sealField(v, aad(keyId, path)) };
    return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeValue(x, `${path}[${i}]`, keyId, codec));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = encodeValue(x, path ? `${path}.${k}` : k, keyId, codec);
    }
    return out;
  }
  return v;
}

/**
 * The wrappers of one key's stored JSON: `$bytes` (not for a secret in an
 * encrypted store), `$sealed` (only for a secret field, only in an encrypted
 * store). Opened secrets are pushed to `secrets` (to wipe on failure).
 */
function leafDecoder(keyId: string, codec: SecretCodec | undefined, secrets: Uint8Array[]): LeafDecoder {
  return (o, where) => {
    const keys = Object.keys(o);
    if (keys.length !== 1 || !keys[0]!.startsWith('$')) return undefined;
    const path = where();
    if (keys[0] === '$bytes') {
      if (codec?.encrypted && SECRET_PATHS.has(path))
        throw new RecordDecodeError(`${path} is in the clear in an encrypted store`);
      if (typeof o.$bytes !== 'string') throw new RecordDecodeError(`bad bytes at ${path}`);
      const buf = Buffer.from(o.$bytes, 'base64');
      const out = new Uint8Array(buf);
      buf.fill(0);
      return out;
    }
    if (keys[0] === '$sealed') {
      if (!codec?.encrypted) throw new RecordDecodeError(`sealed value at ${path} in an unencrypted store`);
      if (!SECRET_PATHS.has(path)) throw new RecordDecodeError(`sealed value at ${path}, which is not a secret field`);
      const box = o.$sealed as SealedBox;
      const additional = aad(keyId, path);
      if (codec.lazy) {
        // Opened on first read (the whole row was authenticated before this runs).
        return new LazySecret(() => {
          const pt = codec.unsealField(box, additional);
          if (!pt) throw new KeyStoreError('CORRUPT', `key ${keyId}: sealed value at ${path} failed authentication`);
          return pt;
        });
      }
      const pt = codec.unsealField(box, additional);
      if (!pt) throw new RecordDecodeError(`sealed value at ${path} failed authentication`);
      secrets.push(pt);
      return pt;
    }
    return undefined; // another `$` field: rejected as reserved by the record rules
  };
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RecordDecodeError(`${what} is not valid JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new RecordDecodeError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

export function encodeKey(rec: KeyRecord, codec: SecretCodec): string {
  return canonical(encodeValue(rec, '', keyStoreId(rec), codec));
}

export function encodeAlias(rec: AliasRecord): string {
  return canonical(encodeValue(rec, '', rec.aliasName, undefined));
}

/** A decoded, validated, frozen key record; `entry` may be parsed JSON already. Throws RecordDecodeError. */
export function decodeKey(keyId: string, entry: string | Record<string, unknown>, codec: SecretCodec): KeyRecord {
  const obj = typeof entry === 'string' ? parseObject(entry, `key ${keyId}`) : entry;
  const named = keyStoreId(obj as Pick<KeyRecord, 'keyId' | 'idRegion'>);
  if (named !== keyId) throw new RecordDecodeError(`key ${keyId}: the record names key ${String(named)}`);
  const secrets: Uint8Array[] = [];
  try {
    return adoptDecoded<KeyRecord>(obj, `key ${keyId}`, leafDecoder(keyId, codec, secrets));
  } catch (err) {
    for (const s of secrets) s.fill(0);
    throw err instanceof RecordDecodeError
      ? new RecordDecodeError(`key ${keyId}: ${err.message}`)
      : new RecordDecodeError((err as Error).message);
  }
}

export function decodeAlias(aliasName: string, entry: string | Record<string, unknown>): AliasRecord {
  const obj = typeof entry === 'string' ? parseObject(entry, `alias ${aliasName}`) : entry;
  const named = aliasStoreId(obj as Pick<AliasRecord, 'aliasName' | 'idRegion'>);
  if (named !== aliasName) throw new RecordDecodeError(`alias ${aliasName}: the record names alias ${String(named)}`);
  try {
    return adoptDecoded<AliasRecord>(obj, `alias ${aliasName}`, leafDecoder(aliasName, undefined, []));
  } catch (err) {
    throw err instanceof RecordDecodeError
      ? new RecordDecodeError(`alias ${aliasName}: ${err.message}`)
      : new RecordDecodeError((err as Error).message);
  }
}
