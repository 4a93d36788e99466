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
  | 'LOCK_TIMEOUT'
  | 'NOT_READY'
  | 'UNAVAILABLE'
  | 'TLS_REQUIRED';

export class KeyStoreError extends Error {
  readonly code: KeyStoreErrorCode;
  constructor(code: KeyStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyStoreError';
    this.code = code;
  }
}

/**
 * The store exists but cannot be trusted: truncated, unknown format, or its
 * contents fail authentication (edited without the passphrase, records from
 * another store, an older copy put back). Never overwritten. `path` is the
 * file, or the database URL without its password.
 */
export class KeyStoreCorruptError extends KeyStoreError {
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('CORRUPT', `key store ${path} is corrupt: ${reason}; the store was left untouched`, options);
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

/** A passphrase file that cannot be used: readable by group or others, or empty. Nothing was opened. */
export class PassphraseFileError extends KeyStoreError {
  readonly path: string;
  constructor(path: string, reason: string) {
    super('PASSPHRASE', `passphrase file ${path} ${reason}`);
    this.name = 'PassphraseFileError';
    this.path = path;
  }
}

/**
 * Another writer held the store's write lock for longer than `lockTimeoutMs`.
 * The lock is the operating system's (SQLite) or the database's (PostgreSQL):
 * it is released when its holder exits, however it exits, so it is never
 * stale and never broken by a waiter.
 */
export class KeyStoreLockTimeoutError extends KeyStoreError {
  readonly path: string;
  readonly holder: string;
  constructor(path: string, timeoutMs: number, holder: string) {
    super(
      'LOCK_TIMEOUT',
      `key store ${path}: could not acquire the write lock within ${timeoutMs} ms (held by ${holder})`,
    );
    this.name = 'KeyStoreLockTimeoutError';
    this.path = path;
    this.holder = holder;
  }
}

/** Read before the store finished opening (PostgreSQL opens asynchronously: await `ready()`). */
export class KeyStoreNotReadyError extends KeyStoreError {
  constructor(path: string) {
    super(
      'NOT_READY',
      `key store ${path} is still opening: await client.ready() (or store.ready()) before synchronous calls`,
    );
    this.name = 'KeyStoreNotReadyError';
  }
}

/**
 * The database could not be reached or did not answer in time.
 * `notCommitted` is true when a write certainly did not commit (safe to
 * retry); false when it may have (the connection failed during COMMIT).
 */
export class KeyStoreUnavailableError extends KeyStoreError {
  readonly path: string;
  readonly notCommitted: boolean;
  constructor(path: string, reason: string, notCommitted: boolean, options?: { cause?: unknown }) {
    super('UNAVAILABLE', `key store ${path} is unavailable: ${reason}`, options);
    this.name = 'KeyStoreUnavailableError';
    this.path = path;
    this.notCommitted = notCommitted;
  }
}
