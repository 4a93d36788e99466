/**
 * Key stores: the `KeyStore` contract, the in-memory store, the embedded
 * durable store (FileKeyStore, SQLite) and the fleet store
 * (PostgresKeyStore), and `openKeyStore`, which turns the `keyStore` client
 * option (a path, a URL, an instance) into a store.
 */
import { FileKeyStore, type FileKeyStoreOptions } from './file.js';
import { MemoryKeyStore } from './memory.js';
import type { KeyStore } from './types.js';

export type {
  AliasRecord,
  HmacKeySpec,
  ImportParameters,
  KeyOrigin,
  KeyRecord,
  KeyState,
  KeyStore,
  KeyStoreTransaction,
  Tag,
} from './types.js';
export {
  KeyStoreCorruptError,
  KeyStoreError,
  KeyStoreLockTimeoutError,
  KeyStoreNotReadyError,
  KeyStorePassphraseError,
  KeyStoreUnavailableError,
  type KeyStoreErrorCode,
} from './errors.js';
export { MemoryKeyStore } from './memory.js';
export { FileKeyStore, type FileKeyStoreOptions } from './file.js';
export { PASSPHRASE_ENV, PASSPHRASE_FILE_ENV } from './crypto.js';
export type { KeyStoreOptions } from './replica.js';

function isKeyStore(v: unknown): v is KeyStore {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as KeyStore).getKey === 'function' &&
    typeof (v as KeyStore).transact === 'function'
  );
}

/**
 * `undefined` → a new MemoryKeyStore; a KeyStore instance → itself; a path →
 * a FileKeyStore opened synchronously (`FileKeyStore.openSync(path, options)`;
 * the passphrase defaults to `KMS_HMAC_PASSPHRASE_FILE` / `KMS_HMAC_PASSPHRASE`).
 * Throws the store's typed errors (KeyStoreCorruptError, KeyStorePassphraseError)
 * for a bad file.
 */
export function openKeyStore(spec: string | KeyStore | undefined, options?: FileKeyStoreOptions): KeyStore {
  if (spec === undefined) return new MemoryKeyStore();
  if (isKeyStore(spec)) return spec;
  if (typeof spec === 'string') {
    if (spec.length === 0) throw new TypeError('keyStore path must not be empty');
    return FileKeyStore.openSync(spec, options);
  }
  throw new TypeError('keyStore must be a file path, a KeyStore instance, or undefined');
}
