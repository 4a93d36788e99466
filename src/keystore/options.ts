/** The options every durable store takes, what they resolve to, and the passphrase rules' errors. */
import {
  checkScryptParams,
  DEFAULT_SCRYPT,
  PASSPHRASE_ENV,
  PASSPHRASE_FILE_ENV,
  resolvePassphrase,
  type ScryptParams,
} from './crypto.js';
import { KeyStorePassphraseError } from './errors.js';
import type { KeyStoreHealth } from './types.js';

/** Options every durable store takes. */
export interface KeyStoreOptions {
  /**
   * Encrypts secrets and authenticates the whole store (scrypt → AES-256-GCM
   * and HMAC-SHA-256). Default: `KMS_HMAC_PASSPHRASE_FILE` (the file's
   * contents) or `KMS_HMAC_PASSPHRASE`. `null` means no passphrase even if a
   * variable is set.
   */
  passphrase?: string | Uint8Array | null;
  /** How long a write waits for another writer's lock before KeyStoreLockTimeoutError. Default 10 000. */
  lockTimeoutMs?: number;
  /** scrypt cost for a store created, encrypted or rekeyed from now on; existing stores keep theirs. Default N=2^17, r=8, p=1. */
  scrypt?: Partial<ScryptParams>;
  /**
   * Called once at each change of `health().state` (a background reload
   * failed authentication, the database was lost, and the recovery). Without
   * it, each change is a process warning (KMS_HMAC_KEYSTORE_TAMPERED,
   * _DEGRADED, _RECOVERED).
   */
  onHealthChange?: (health: KeyStoreHealth) => void;
  /**
   * An existing unencrypted store opened with a passphrase is refused, since
   * anyone could have made it. True: accept it and encrypt it (every record
   * rewritten sealed, the whole store authenticated) on open
   * (`FileKeyStore.openSync`, `openKeyStore`: on the first write).
   */
  encryptExisting?: boolean;
}

export function checkTimeout(name: string, v: number): number {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))
    throw new RangeError(`${name} must be a finite number >= 0`);
  return v;
}

/** The replica options for a store named `name`, from the user's options (throws TypeError/RangeError). */
export function replicaOptions(name: string, o: KeyStoreOptions): ReplicaOptions {
  const scrypt = { ...DEFAULT_SCRYPT, ...o.scrypt };
  checkScryptParams(scrypt);
  return { name, passphrase: resolvePassphrase(o.passphrase), scrypt, encryptExisting: o.encryptExisting === true };
}

const warned = new Set<string>();

/**
 * Warns (once per store and process) that a durable store was just created
 * without a passphrase, unless the caller chose that explicitly (passphrase: null).
 */
export function warnIfCreatedUnencrypted(name: string, created: boolean, encrypted: boolean, o: KeyStoreOptions): void {
  if (!created || encrypted || o.passphrase === null || warned.has(name)) return;
  warned.add(name);
  process.emitWarning(
    `created key store ${name} without a passphrase: key material is stored in the clear and edits are not detected. ` +
      `Set ${PASSPHRASE_ENV} or ${PASSPHRASE_FILE_ENV} (CLI: --passphrase-file) to encrypt and authenticate it.`,
    { type: 'KeyStoreWarning', code: 'KMS_HMAC_UNENCRYPTED_KEYSTORE' },
  );
}

export interface ReplicaOptions {
  /** For messages: the file path, or the URL without its password. */
  name: string;
  passphrase: Buffer | undefined;
  scrypt: ScryptParams;
  /** Encrypt an existing unencrypted store with the passphrase on the next write, instead of refusing it. */
  encryptExisting: boolean;
}

/** An encrypted store opened without a passphrase. */
export function passphraseNeeded(name: string): KeyStorePassphraseError {
  return new KeyStorePassphraseError(
    name,
    `the store is encrypted; pass a passphrase, or set ${PASSPHRASE_ENV} or ${PASSPHRASE_FILE_ENV}`,
  );
}

/**
 * An unencrypted store opened with a passphrase: refused, since anyone could
 * have made it (e.g. in place of an encrypted one), unless `encryptExisting`.
 */
export function notEncrypted(name: string): KeyStorePassphraseError {
  return new KeyStorePassphraseError(
    name,
    'a passphrase was given but the store is not encrypted, so its contents cannot be authenticated (it may have been replaced). ' +
      'To encrypt it, run `kms-hmac keys encrypt` (or open it with { encryptExisting: true }); to use it unencrypted, unset the passphrase',
  );
}
