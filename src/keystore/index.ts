/**
 * Key stores: the `KeyStore` contract, the in-memory store, the embedded
 * durable store (FileKeyStore, SQLite) and the fleet store
 * (PostgresKeyStore), and `openKeyStore`, which turns the `keyStore` client
 * option (a path, a URL, an instance) into a store.
 */
import { FileKeyStore, type FileKeyStoreOptions } from './file.js';
import { MemoryKeyStore } from './memory.js';
import { isPostgresUrl, redactUrl } from './pg-url.js';
import { PostgresKeyStore, type PostgresKeyStoreOptions } from './postgres.js';
import type { KeyStore } from './types.js';

export type {
  AliasRecord,
  HmacKeySpec,
  ImportParameters,
  KeyOrigin,
  KeyRecord,
  KeyState,
  KeyStore,
  KeyStoreHealth,
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
  PassphraseFileError,
  type KeyStoreErrorCode,
} from './errors.js';
export { MemoryKeyStore } from './memory.js';
export { FileKeyStore, type FileKeyStoreOptions } from './file.js';
export { PostgresKeyStore, type PostgresKeyStoreOptions } from './postgres.js';
export { isPostgresUrl, redactUrl, REQUIRE_TLS_ENV } from './pg-url.js';
export { healthMessage } from './health.js';
export { PASSPHRASE_ENV, PASSPHRASE_FILE_ENV } from './crypto.js';
export type { KeyStoreOptions } from './options.js';

function isKeyStore(v: unknown): v is KeyStore {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as KeyStore).getKey === 'function' &&
    typeof (v as KeyStore).transact === 'function'
  );
}

/** Options for a store `openKeyStore` opens: the file store's and the PostgreSQL store's (each ignores the other's). */
export type OpenKeyStoreOptions = FileKeyStoreOptions & PostgresKeyStoreOptions;

/**
 * `undefined` → a new MemoryKeyStore; a KeyStore instance → itself;
 * a `postgres://` / `postgresql://` URL → a PostgresKeyStore, opening in the
 * background (await its `ready()`); any other string → a FileKeyStore at
 * that path, opened synchronously. The passphrase defaults to
 * `KMS_HMAC_PASSPHRASE_FILE` / `KMS_HMAC_PASSPHRASE`. Throws the store's typed
 * errors (KeyStoreCorruptError, KeyStorePassphraseError) for a bad file.
 */
export function openKeyStore(spec: string | KeyStore | undefined, options: OpenKeyStoreOptions = {}): KeyStore {
  if (spec === undefined) return new MemoryKeyStore();
  if (isKeyStore(spec)) return spec;
  if (typeof spec === 'string') {
    if (spec.length === 0) throw new TypeError('keyStore path must not be empty');
    if (isPostgresUrl(spec)) return new PostgresKeyStore(spec, options);
    return FileKeyStore.openSync(spec, options);
  }
  throw new TypeError('keyStore must be a file path, a postgres:// URL, a KeyStore instance, or undefined');
}

/** How a store spec may be shown (a URL without its password). */
export function describeKeyStore(spec: string): string {
  return isPostgresUrl(spec) ? redactUrl(spec) : spec;
}
