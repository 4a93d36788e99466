/**
 * The in-memory state both stores share: an immutable snapshot of keys and
 * aliases, and the copy-on-write transaction that produces the next snapshot.
 * A transaction never touches its base snapshot, so a throwing mutation
 * leaves the store exactly as it was (all-or-nothing).
 */
import { KeyStoreError } from './errors.js';
import { freezeAlias, freezeKey, secretBuffers } from './records.js';
import type { AliasRecord, KeyRecord, KeyStoreTransaction } from './types.js';

export class Snapshot {
  readonly keys: ReadonlyMap<string, KeyRecord>;
  readonly aliases: ReadonlyMap<string, AliasRecord>;
  #keyList: readonly KeyRecord[] | undefined;
  #aliasList: readonly AliasRecord[] | undefined;

  constructor(keys: ReadonlyMap<string, KeyRecord>, aliases: ReadonlyMap<string, AliasRecord>) {
    this.keys = keys;
    this.aliases = aliases;
  }

  static empty(): Snapshot {
    return new Snapshot(new Map(), new Map());
  }

  /** Fresh array on every call (callers may sort it); the records themselves are shared and frozen. */
  listKeys(): KeyRecord[] {
    this.#keyList ??= [...this.keys.values()];
    return this.#keyList.slice();
  }

  listAliases(): AliasRecord[] {
    this.#aliasList ??= [...this.aliases.values()];
    return this.#aliasList.slice();
  }
}

export class Transaction implements KeyStoreTransaction {
  #base: Snapshot;
  #keys: Map<string, KeyRecord> | undefined;
  #aliases: Map<string, AliasRecord> | undefined;
  #open = true;

  constructor(base: Snapshot) {
    this.#base = base;
  }

  #check(): void {
    if (!this.#open) throw new KeyStoreError('TRANSACTION_CLOSED', 'the transaction has already finished');
  }

  #k(): ReadonlyMap<string, KeyRecord> {
    return this.#keys ?? this.#base.keys;
  }

  #a(): ReadonlyMap<string, AliasRecord> {
    return this.#aliases ?? this.#base.aliases;
  }

  #wk(): Map<string, KeyRecord> {
    return (this.#keys ??= new Map(this.#base.keys));
  }

  #wa(): Map<string, AliasRecord> {
    return (this.#aliases ??= new Map(this.#base.aliases));
  }

  getKey(keyId: string): KeyRecord | undefined {
    this.#check();
    return this.#k().get(keyId);
  }

  listKeys(): KeyRecord[] {
    this.#check();
    return [...this.#k().values()];
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    this.#check();
    return this.#a().get(aliasName);
  }

  listAliases(): AliasRecord[] {
    this.#check();
    return [...this.#a().values()];
  }

  insertKey(record: KeyRecord): void {
    this.#check();
    const rec = freezeKey(record);
    if (this.#k().has(rec.keyId)) throw new KeyStoreError('KEY_EXISTS', `key ${rec.keyId} already exists`);
    this.#wk().set(rec.keyId, rec);
  }

  replaceKey(record: KeyRecord): void {
    this.#check();
    const old = record && typeof record === 'object' ? this.#k().get(record.keyId) : undefined;
    if (!old) {
      freezeKey(record); // a malformed record reports INVALID_RECORD first
      throw new KeyStoreError('KEY_NOT_FOUND', `key ${record.keyId} does not exist`);
    }
    // Buffers the store already owns keep their identity (no copy, no wipe).
    this.#wk().set(old.keyId, freezeKey(record, new Set(secretBuffers(old))));
  }

  /** Returns whether the key existed. */
  deleteKey(keyId: string): boolean {
    this.#check();
    if (!this.#k().has(keyId)) return false;
    return this.#wk().delete(keyId);
  }

  insertAlias(alias: AliasRecord): void {
    this.#check();
    const rec = freezeAlias(alias);
    if (this.#a().has(rec.aliasName)) throw new KeyStoreError('ALIAS_EXISTS', `alias ${rec.aliasName} already exists`);
    this.#wa().set(rec.aliasName, rec);
  }

  replaceAlias(alias: AliasRecord): void {
    this.#check();
    const rec = freezeAlias(alias);
    if (!this.#a().has(rec.aliasName)) throw new KeyStoreError('ALIAS_NOT_FOUND', `alias ${rec.aliasName} does not exist`);
    this.#wa().set(rec.aliasName, rec);
  }

  /** Returns whether the alias existed. */
  deleteAlias(aliasName: string): boolean {
    this.#check();
    if (!this.#a().has(aliasName)) return false;
    return this.#wa().delete(aliasName);
  }

  /** Ends the transaction; returns the next snapshot, or undefined if nothing changed. */
  finish(): Snapshot | undefined {
    this.#open = false;
    if (!this.#keys && !this.#aliases) return undefined;
    return new Snapshot(this.#keys ?? this.#base.keys, this.#aliases ?? this.#base.aliases);
  }

  abandon(): void {
    this.#open = false;
  }
}

/** Grace period before bytes dropped from the store are zeroed (in-flight async MACs may still hold them). */
/**
 * Runs `mutate` against a transaction over `base`: its result, and the new
 * snapshot (undefined when nothing changed). If `mutate` throws, the
 * transaction is abandoned and the error propagates.
 */
export async function runTransaction<T>(
  base: Snapshot,
  mutate: (tx: KeyStoreTransaction) => T | Promise<T>,
): Promise<{ result: T; next: Snapshot | undefined }> {
  const tx = new Transaction(base);
  try {
    const result = await mutate(tx);
    return { result, next: tx.finish() };
  } catch (err) {
    tx.abandon();
    throw err;
  }
}

export const WIPE_GRACE_MS = 5_000;

/** Secret buffers present in `before` but no longer referenced by `after`. */
export function droppedSecrets(before: Snapshot, after: Snapshot): Uint8Array[] {
  if (before.keys === after.keys) return [];
  const keep = new Set<Uint8Array>();
  for (const rec of after.keys.values()) for (const b of secretBuffers(rec)) keep.add(b);
  const out: Uint8Array[] = [];
  for (const rec of before.keys.values()) for (const b of secretBuffers(rec)) if (!keep.has(b)) out.push(b);
  return out;
}

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
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
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
