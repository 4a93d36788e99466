/**
 * Reading the format-1 key store (one JSON file, kms-hmac ≤ 0.1), so that
 * FileKeyStore can migrate it on first open.
 *
 *   { "format": "kms-hmac-keystore", "formatVersion": 1, "generation": n,
 *     "encryption": null | { "kdf": {scrypt…}, "cipher": "aes-256-gcm", "check": {…} },
 *     "keys": [ … ], "aliases": [ … ], "checksum": "sha256:<hex of the canonical rest>" }
 *
 * Secrets were sealed with the raw scrypt output and the same additional data
 * as today. The checksum is unkeyed, so metadata in such a file was never
 * authenticated: migration trusts it once, but still refuses a file whose
 * checksum is wrong and an encrypted file holding a secret in the clear.
 */
import { createHash } from 'node:crypto';
import { canonical, decodeAlias, decodeKey, RecordDecodeError, type SecretCodec } from './codec.js';
import { opensCheck, unseal, validEncryptionHeader, type EncryptionHeader } from './crypto.js';
import { KeyStoreCorruptError } from './errors.js';
import type { AliasRecord, KeyRecord } from './types.js';

const FORMAT = 'kms-hmac-keystore';

export interface LegacyDoc {
  encryption: EncryptionHeader | null;
  keys: Record<string, unknown>[];
  aliases: Record<string, unknown>[];
}

/** Whether the first bytes of a file look like a format-1 store (JSON) rather than SQLite. */
export function looksLikeLegacy(head: Buffer): boolean {
  const text = head.toString('latin1').trimStart();
  return text.startsWith('{');
}

/** Parses and checks a format-1 file without decrypting anything. Throws KeyStoreCorruptError. */
export function parseLegacy(path: string, bytes: Buffer): LegacyDoc {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new KeyStoreCorruptError(path, 'not valid JSON (truncated or overwritten?)');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || doc.format !== FORMAT) {
    throw new KeyStoreCorruptError(path, `not a ${FORMAT} file`);
  }
  if (doc.formatVersion !== 1)
    throw new KeyStoreCorruptError(path, `unsupported JSON format version ${JSON.stringify(doc.formatVersion)}`);
  const { checksum, ...rest } = doc;
  if (
    typeof checksum !== 'string' ||
    checksum !== `sha256:${createHash('sha256').update(canonical(rest)).digest('hex')}`
  ) {
    throw new KeyStoreCorruptError(path, 'checksum mismatch');
  }
  const enc = doc.encryption;
  if (enc !== null && !validEncryptionHeader(enc))
    throw new KeyStoreCorruptError(path, 'unsupported or malformed encryption header');
  const entries = (list: unknown, idField: string): Record<string, unknown>[] => {
    if (!Array.isArray(list)) throw new KeyStoreCorruptError(path, 'missing keys or aliases');
    for (const e of list) {
      if (e === null || typeof e !== 'object' || typeof (e as Record<string, unknown>)[idField] !== 'string') {
        throw new KeyStoreCorruptError(path, `malformed ${idField === 'keyId' ? 'key' : 'alias'} entry`);
      }
    }
    return list as Record<string, unknown>[];
  };
  return {
    encryption: enc as EncryptionHeader | null,
    keys: entries(doc.keys, 'keyId'),
    aliases: entries(doc.aliases, 'aliasName'),
  };
}

/** The format-1 secret codec: AES-GCM directly under the scrypt output. Undefined if `rawKey` is the wrong key. */
export function legacyCodec(header: EncryptionHeader, rawKey: Buffer): SecretCodec | undefined {
  if (!opensCheck(rawKey, header.check)) return undefined;
  return {
    encrypted: true,
    sealField: () => {
      throw new Error('the format-1 store is read only');
    },
    unsealField: (box, aad) => unseal(rawKey, box, aad),
  };
}

export const PLAIN_CODEC: SecretCodec = {
  encrypted: false,
  sealField: () => {
    throw new Error('an unencrypted store does not seal');
  },
  unsealField: () => undefined,
};

/** Every record of a parsed format-1 file, decoded and validated. Throws KeyStoreCorruptError. */
export function decodeLegacy(
  path: string,
  doc: LegacyDoc,
  codec: SecretCodec,
): { keys: KeyRecord[]; aliases: AliasRecord[] } {
  const keys: KeyRecord[] = [];
  try {
    const seenKeys = new Set<string>();
    for (const e of doc.keys) {
      const id = e.keyId as string;
      if (seenKeys.has(id)) throw new RecordDecodeError(`key ${id} appears twice`);
      seenKeys.add(id);
      keys.push(decodeKey(id, e, codec));
    }
    const seenAliases = new Set<string>();
    const aliases = doc.aliases.map((e) => {
      const name = e.aliasName as string;
      if (seenAliases.has(name)) throw new RecordDecodeError(`alias ${name} appears twice`);
      seenAliases.add(name);
      return decodeAlias(name, e);
    });
    return { keys, aliases };
  } catch (err) {
    for (const k of keys) {
      k.keyMaterial?.fill(0);
      k.importParameters?.privateKey.fill(0);
    }
    if (err instanceof RecordDecodeError) throw new KeyStoreCorruptError(path, err.message);
    throw err;
  }
}
