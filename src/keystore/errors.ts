/**
 * Typed key store errors. Messages name files, key ids and alias names, never
 * key material or passphrases.
 */

export type KeyStoreErrorCode =
  | 'KEY_EXISTS'
  | 'KEY_NOT_FOUND'
  | 'ALIAS_EXISTS'
  | 'ALIAS_NOT_FOUND'
  | 'INVALID_RECORD'
  | 'TRANSACTION_CLOSED'
  | 'STORE_CLOSED'
  | 'CORRUPT'
  | 'PASSPHRASE'
  | 'LOCK_TIMEOUT';

export class KeyStoreError extends Error {
  readonly code: KeyStoreErrorCode;
  constructor(code: KeyStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyStoreError';
    this.code = code;
  }
}

/** The store file exists but cannot be trusted (bad checksum, truncated, not JSON, unknown format). Never overwritten. */
export class KeyStoreCorruptError extends KeyStoreError {
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('CORRUPT', `key store ${path} is corrupt: ${reason}; the file was left untouched`, options);
    this.name = 'KeyStoreCorruptError';
    this.path = path;
  }
}

/** Wrong passphrase, or an encrypted store opened without one. Nothing on disk is touched. */
export class KeyStorePassphraseError extends KeyStoreError {
  readonly path: string;
  constructor(path: string, reason: string) {
    super('PASSPHRASE', `key store ${path}: ${reason}`);
    this.name = 'KeyStorePassphraseError';
    this.path = path;
  }
}

/** Another writer held the store's lock for longer than `lockTimeoutMs`. */
export class KeyStoreLockTimeoutError extends KeyStoreError {
  readonly path: string;
  readonly holder: string;
  constructor(path: string, timeoutMs: number, holder: string) {
    super(
      'LOCK_TIMEOUT',
      `key store ${path}: could not acquire the write lock within ${timeoutMs} ms (held by ${holder}); ` +
        `if that process no longer exists, remove ${path}.lock`,
    );
    this.name = 'KeyStoreLockTimeoutError';
    this.path = path;
    this.holder = holder;
  }
}
