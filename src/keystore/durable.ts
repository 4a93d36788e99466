/**
 * What the two durable stores (FileKeyStore, PostgresKeyStore) share: the
 * in-memory replica every read is served from, whether it may be read yet
 * (or still), the state a user can inspect, and how the store shows itself.
 * The databases (SQLite, PostgreSQL) are the subclasses' business.
 */
import { inspect } from 'node:util';
import type { StoreKeys } from './crypto.js';
import { KeyStoreError, KeyStoreNotReadyError } from './errors.js';
import { HealthTracker } from './health.js';
import { replicaOptions, warnIfCreatedUnencrypted, type KeyStoreOptions, type ReplicaOptions } from './options.js';
import { Replica } from './replica.js';
import { rekeyStore } from './rekey.js';
import type { AliasRecord, KeyRecord, KeyStore, KeyStoreHealth, KeyStoreTransaction } from './types.js';

export abstract class DurableKeyStore implements KeyStore {
  /** The store as it may be shown: a file path, or a URL without its password. */
  readonly #name: string;
  readonly #options: KeyStoreOptions;
  /** The options resolved: the passphrase's bytes, the scrypt cost. */
  protected readonly settings: ReplicaOptions;
  protected readonly replica: Replica;
  #readable = false;
  #closed = false;
  #created = false;
  #loadError: Error | undefined;
  readonly #health: HealthTracker;

  protected constructor(name: string, options: KeyStoreOptions) {
    this.#name = name;
    this.#options = options;
    this.settings = replicaOptions(name, options);
    this.replica = new Replica(this.settings);
    this.#health = new HealthTracker(name, options.onHealthChange);
  }

  /** Whether secrets are encrypted at rest and the whole store authenticated under the passphrase. */
  get encrypted(): boolean {
    return this.replica.encrypted;
  }

  /** Whether this instance created the store (there was none). */
  get created(): boolean {
    return this.#created;
  }

  /** Changes whenever the visible state changes (this process's commits or another's, once caught up). */
  get version(): number {
    return this.replica.version;
  }

  /** The error of the last failed background catch-up (reads keep the last good state), if any. */
  get lastLoadError(): Error | undefined {
    return this.#loadError;
  }

  /** How the store is doing: ok, degraded (unreachable) or tampered (a reload failed authentication). */
  health(): KeyStoreHealth {
    return this.#health.get();
  }

  /** The scrypt cost of an encrypted store's passphrase (as recorded in the store). */
  get scrypt(): { N: number; r: number; p: number } | undefined {
    const kdf = this.replica.kdf;
    return kdf && { N: kdf.N, r: kdf.r, p: kdf.p };
  }

  /**
   * Re-seals an encrypted store under a new passphrase, with the current
   * scrypt cost (or `scrypt`), in one commit: every secret sealed again and
   * every row authenticated under the new keys. A crash at any instant
   * leaves the store under exactly one of the two passphrases, with every
   * key. Other processes that have the store open must be restarted with the
   * new passphrase (until then their reloads fail: `health()` says tampered).
   */
  rekey(passphrase: string | Uint8Array, scrypt?: KeyStoreOptions['scrypt']): Promise<void> {
    if (this.#closed) return Promise.reject(this.closedError());
    return rekeyStore(this.#name, this.replica, this.settings, passphrase, scrypt, (keys) => this.rewrite(keys));
  }

  getKey(keyId: string): KeyRecord | undefined {
    if (!this.#readable) this.#unreadable();
    return this.replica.state.getKey(keyId);
  }

  listKeys(): KeyRecord[] {
    if (!this.#readable) this.#unreadable();
    return this.replica.state.listKeys();
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    if (!this.#readable) this.#unreadable();
    return this.replica.state.getAlias(aliasName);
  }

  listAliases(): AliasRecord[] {
    if (!this.#readable) this.#unreadable();
    return this.replica.state.listAliases();
  }

  abstract transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T>;
  /** One commit that rewrites every row under `keys` (a rekey), under the write lock. */
  protected abstract rewrite(keys: StoreKeys): Promise<void>;
  abstract ready(): Promise<void>;
  abstract refresh(): Promise<boolean>;
  abstract close(): Promise<void>;

  toJSON(): object {
    const s = this.replica.state;
    return {
      type: this.constructor.name,
      ...this.where(),
      encrypted: this.encrypted,
      keys: s.keyCount,
      aliases: s.aliasCount,
      version: this.version,
    };
  }

  toString(): string {
    const s = this.replica.state;
    return `${this.constructor.name}(${this.#name}, ${s.keyCount} keys, ${s.aliasCount} aliases${this.encrypted ? ', encrypted' : ''})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  // ---- for the subclasses -------------------------------------------------

  /** Where the store is, for toJSON: `{ path }` or `{ url }`. */
  protected abstract where(): Record<string, string>;

  /** The snapshot is loaded: reads are served from now on. */
  protected opened(created: boolean): void {
    this.#created = created;
    this.#readable = true;
    this.#health.current();
    warnIfCreatedUnencrypted(this.#name, created, this.encrypted, this.#options);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  /** Refuses reads and writes from now on; false if the store was closed already. */
  protected markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#readable = false;
    return true;
  }

  /** Zeroes every secret and key held (once the database is closed). */
  protected wipe(): void {
    this.replica.destroy();
    this.settings.passphrase?.fill(0);
  }

  /** Records how the last background catch-up (or check) went: the error, or none when the snapshot is current. */
  protected noteLoad(err?: Error): void {
    this.#loadError = err;
    if (err === undefined) this.#health.current();
    else this.#health.failed(err);
  }

  protected closedError(): KeyStoreError {
    return new KeyStoreError('STORE_CLOSED', `key store ${this.#name} is closed`);
  }

  #unreadable(): never {
    throw this.#closed ? this.closedError() : new KeyStoreNotReadyError(this.#name);
  }
}
