/**
 * The in-memory state every store serves reads from, and the transaction that
 * changes it.
 *
 * - `StoreState` holds the current keys and aliases (the snapshot the MAC
 *   hot path reads), plus an index of the keys that carry a date after which
 *   they change by themselves, so the time rules never scan the whole store.
 * - A `Transaction` records its writes in an overlay over the state: reads
 *   see the overlay first, the state is never touched. Committing hands back
 *   a `ChangeSet` (only what changed), which the store makes durable and then
 *   applies in place. Cost: O(changes), whatever the size of the store.
 *   A throwing mutation simply drops its overlay (all-or-nothing).
 */
import { KeyStoreError } from './errors.js';
import { aliasStoreId, freezeAlias, freezeKey, keyStoreId, secretBuffers } from './records.js';
import type { AliasRecord, KeyRecord, KeyStoreTransaction } from './types.js';

/** What one transaction changed: the new record per id, or null for a deletion. */
export interface ChangeSet {
  keys: Map<string, KeyRecord | null>;
  aliases: Map<string, AliasRecord | null>;
}

/** What a load changed: like a ChangeSet, but keys may arrive undecoded. */
export interface LoadedChanges {
  keys: Map<string, KeyRecord | PendingKey | null>;
  aliases: Map<string, AliasRecord | null>;
}

/** A key that changes by itself at some date (deletion, material expiry) is indexed. */
function scheduled(rec: KeyRecord | PendingKey): boolean {
  if (rec instanceof PendingKey) return rec.scheduled;
  return rec.deletionDate !== undefined || rec.validTo !== undefined;
}

/**
 * A key loaded but not decoded yet: a store that opens 100,000 keys decodes
 * each one when it is first read, not all of them at open. `scheduled` may
 * err on the side of true (the time rules check the decoded record).
 */
export class PendingKey {
  constructor(
    readonly decode: () => KeyRecord,
    readonly scheduled: boolean,
  ) {}
}

export class StoreState {
  readonly #keys = new Map<string, KeyRecord | PendingKey>();
  readonly #aliases = new Map<string, AliasRecord>();
  readonly #scheduled = new Set<string>();
  #keyList: readonly KeyRecord[] | undefined;
  #aliasList: readonly AliasRecord[] | undefined;

  get keyCount(): number {
    return this.#keys.size;
  }

  get aliasCount(): number {
    return this.#aliases.size;
  }

  getKey(keyId: string): KeyRecord | undefined {
    const rec = this.#keys.get(keyId);
    return rec instanceof PendingKey ? this.#decode(keyId, rec) : rec;
  }

  #decode(keyId: string, pending: PendingKey): KeyRecord {
    const rec = pending.decode();
    this.#keys.set(keyId, rec);
    return rec;
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    return this.#aliases.get(aliasName);
  }

  /** Fresh array on every call (callers may sort it); the records themselves are shared and frozen. */
  listKeys(): KeyRecord[] {
    this.#keyList ??= [...this.#keys.keys()].map((id) => this.getKey(id)!);
    return this.#keyList.slice();
  }

  listAliases(): AliasRecord[] {
    this.#aliasList ??= [...this.#aliases.values()];
    return this.#aliasList.slice();
  }

  listScheduledKeys(): KeyRecord[] {
    return [...this.#scheduled].map((id) => this.getKey(id)!);
  }

  /** Applies a change set in place. Returns the secret buffers no record references any more (to wipe). */
  apply(changes: ChangeSet | LoadedChanges): Uint8Array[] {
    const dropped: Uint8Array[] = [];
    for (const [id, rec] of changes.keys) {
      const old = this.#keys.get(id);
      if (old && !(old instanceof PendingKey)) {
        // (A key never decoded holds no secret in the clear.)
        const kept = rec && !(rec instanceof PendingKey) ? new Set(secretBuffers(rec)) : undefined;
        for (const b of secretBuffers(old)) if (!kept?.has(b)) dropped.push(b);
      }
      if (rec) {
        this.#keys.set(id, rec);
        if (scheduled(rec)) this.#scheduled.add(id);
        else this.#scheduled.delete(id);
      } else {
        this.#keys.delete(id);
        this.#scheduled.delete(id);
      }
    }
    for (const [name, rec] of changes.aliases) {
      if (rec) this.#aliases.set(name, rec);
      else this.#aliases.delete(name);
    }
    if (changes.keys.size) this.#keyList = undefined;
    if (changes.aliases.size) this.#aliasList = undefined;
    return dropped;
  }

  /** Empties the state; returns every secret buffer it held. */
  clear(): Uint8Array[] {
    const secrets = [...this.#keys.values()].flatMap((r) => (r instanceof PendingKey ? [] : secretBuffers(r)));
    this.#keys.clear();
    this.#aliases.clear();
    this.#scheduled.clear();
    this.#keyList = this.#aliasList = undefined;
    return secrets;
  }
}

export class Transaction implements KeyStoreTransaction {
  readonly #base: StoreState;
  readonly #keys = new Map<string, KeyRecord | null>();
  readonly #aliases = new Map<string, AliasRecord | null>();
  #open = true;

  constructor(base: StoreState) {
    this.#base = base;
  }

  #check(): void {
    if (!this.#open) throw new KeyStoreError('TRANSACTION_CLOSED', 'the transaction has already finished');
  }

  #key(keyId: string): KeyRecord | undefined {
    const c = this.#keys.get(keyId);
    return c === undefined ? this.#base.getKey(keyId) : (c ?? undefined);
  }

  #alias(aliasName: string): AliasRecord | undefined {
    const c = this.#aliases.get(aliasName);
    return c === undefined ? this.#base.getAlias(aliasName) : (c ?? undefined);
  }

  /** The base records overlaid with this transaction's writes. */
  #merge<R>(base: R[], changes: Map<string, R | null>, idOf: (r: R) => string): R[] {
    if (changes.size === 0) return base;
    const out = base.filter((r) => !changes.has(idOf(r)));
    for (const r of changes.values()) if (r) out.push(r);
    return out;
  }

  getKey(keyId: string): KeyRecord | undefined {
    this.#check();
    return this.#key(keyId);
  }

  listKeys(): KeyRecord[] {
    this.#check();
    return this.#merge(this.#base.listKeys(), this.#keys, keyStoreId);
  }

  listScheduledKeys(): KeyRecord[] {
    this.#check();
    const out = this.#base.listScheduledKeys().filter((r) => !this.#keys.has(keyStoreId(r)));
    for (const r of this.#keys.values()) if (r && scheduled(r)) out.push(r);
    return out;
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    this.#check();
    return this.#alias(aliasName);
  }

  listAliases(): AliasRecord[] {
    this.#check();
    return this.#merge(this.#base.listAliases(), this.#aliases, aliasStoreId);
  }

  insertKey(record: KeyRecord): void {
    this.#check();
    const rec = freezeKey(record);
    const id = keyStoreId(rec);
    if (this.#key(id)) throw new KeyStoreError('KEY_EXISTS', `key ${id} already exists`);
    this.#keys.set(id, rec);
  }

  replaceKey(record: KeyRecord): void {
    this.#check();
    const id = record && typeof record === 'object' ? keyStoreId(record) : undefined;
    const old = id === undefined ? undefined : this.#key(id);
    if (!old) {
      freezeKey(record); // a malformed record reports INVALID_RECORD first
      throw new KeyStoreError('KEY_NOT_FOUND', `key ${id} does not exist`);
    }
    // Buffers the store already owns keep their identity (no copy, no wipe).
    this.#keys.set(id!, freezeKey(record, new Set(secretBuffers(old))));
  }

  /** Returns whether the key existed. */
  deleteKey(keyId: string): boolean {
    this.#check();
    if (!this.#key(keyId)) return false;
    this.#keys.set(keyId, null);
    return true;
  }

  insertAlias(alias: AliasRecord): void {
    this.#check();
    const rec = freezeAlias(alias);
    const id = aliasStoreId(rec);
    if (this.#alias(id)) throw new KeyStoreError('ALIAS_EXISTS', `alias ${id} already exists`);
    this.#aliases.set(id, rec);
  }

  replaceAlias(alias: AliasRecord): void {
    this.#check();
    const rec = freezeAlias(alias);
    const id = aliasStoreId(rec);
    if (!this.#alias(id)) throw new KeyStoreError('ALIAS_NOT_FOUND', `alias ${id} does not exist`);
    this.#aliases.set(id, rec);
  }

  /** Returns whether the alias existed. */
  deleteAlias(aliasName: string): boolean {
    this.#check();
    if (!this.#alias(aliasName)) return false;
    this.#aliases.set(aliasName, null);
    return true;
  }

  /** Ends the transaction; returns what it changed, or undefined if it wrote nothing. */
  finish(): ChangeSet | undefined {
    this.#open = false;
    if (this.#keys.size === 0 && this.#aliases.size === 0) return undefined;
    return { keys: this.#keys, aliases: this.#aliases };
  }

  abandon(): void {
    this.#open = false;
  }
}

/**
 * Runs `mutate` against a transaction over `base`: its result, and what it
 * changed (undefined when nothing). If `mutate` throws, the transaction is
 * abandoned and the error propagates.
 */
export async function runTransaction<T>(
  base: StoreState,
  mutate: (tx: KeyStoreTransaction) => T | Promise<T>,
): Promise<{ result: T; changes: ChangeSet | undefined }> {
  const tx = new Transaction(base);
  try {
    const result = await mutate(tx);
    return { result, changes: tx.finish() };
  } catch (err) {
    tx.abandon();
    throw err;
  }
}

/** Grace period before bytes dropped from the store are zeroed (in-flight async MACs may still hold them). */
export const WIPE_GRACE_MS = 5_000;

/** Best effort: zero buffers the store owned, after a grace period (or now). */
export function wipeLater(buffers: Uint8Array[], delayMs = WIPE_GRACE_MS): void {
  if (buffers.length === 0) return;
  if (delayMs <= 0) {
    for (const b of buffers) b.fill(0);
    return;
  }
  setTimeout(() => {
    for (const b of buffers) b.fill(0);
  }, delayMs).unref();
}

/** Serializes async critical sections within one process. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #busy = 0;
  /** Whether a critical section is running or queued. */
  get busy(): boolean {
    return this.#busy > 0;
  }
  run<T>(fn: () => Promise<T>): Promise<T> {
    this.#busy++;
    const next = this.#tail.then(fn, fn).finally(() => this.#busy--);
    this.#tail = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }
  /** Resolves when everything queued so far has finished. */
  idle(): Promise<void> {
    return this.#tail.then(() => undefined);
  }
}
