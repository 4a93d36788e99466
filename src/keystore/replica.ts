/**
 * The replica of a durable store (the tables of schema.ts) that each process
 * holds in memory and serves every read from: shared by FileKeyStore
 * (SQLite) and PostgresKeyStore.
 *
 * Every commit runs under the database's write lock, first catching up with
 * whatever other processes committed, then writing only the changed rows, a
 * change-log entry per row, and the meta row with generation + 1 and a new
 * tag (crypto.ts): O(changes). Other processes catch up by reading the
 * change log since the generation they hold, and reload in full only when
 * they fell too far behind (the log keeps CHANGE_LOG_KEPT generations), after
 * a reconnect, or when the encryption header changed.
 *
 * Nothing read from the store is trusted before the tag over the complete set
 * of rows checks out; nothing is decrypted before that either. A catch-up
 * whose tag does not check out is retried as a full reload, which either
 * succeeds or reports the store as corrupt. A generation lower than one this
 * replica has seen is refused (an older copy put back).
 */
import { decodeAlias, decodeKey, encodeAlias, encodeKey, RecordDecodeError } from './codec.js';
import { newKdf, SetDigest, StoreKeys, validEncryptionHeader, type KdfHeader, type RowKind } from './crypto.js';
import { KeyStoreCorruptError, KeyStorePassphraseError } from './errors.js';
import { notEncrypted, passphraseNeeded, type ReplicaOptions } from './options.js';
import { aliasStoreId, keyStoreId, secretBuffers } from './records.js';
import {
  CHANGE_LOG_KEPT,
  derive,
  fetchSteps,
  type ChangedRow,
  type CommitPlan,
  type Fetched,
  type MetaRow,
  type Row,
  type Steps,
} from './schema.js';
import { PendingKey, StoreState, wipeLater, type ChangeSet, type LoadedChanges } from './state.js';
import type { AliasRecord, KeyRecord } from './types.js';

interface RowInfo {
  rev: number;
  /** H(row) as a 32-character latin1 string: cheaper to keep 100,000 of than Buffer views. */
  hash: string;
}

/**
 * Brings `replica` up to date with the store (inside one transaction);
 * returns whether the visible state changed. `full`: read everything, not
 * just the change log (after changes may have been missed).
 */
export function* catchUpSteps(replica: Replica, full = false): Steps<boolean> {
  let fetched = yield* fetchSteps(full ? undefined : replica.generation);
  for (;;) {
    const req = replica.keysNeeded(fetched);
    const keys = req ? req.keys(yield* derive(req.kdf)) : undefined;
    const result = replica.absorb(fetched, keys);
    if (result !== 'reload') return result === 'changed';
    fetched = yield* fetchSteps(undefined);
  }
}

/**
 * Encodes a transaction's changes for commit, deriving new keys first when
 * the store is being encrypted. `rekeyTo`: every row is rewritten under
 * these keys instead (rekey.ts).
 */
export function* prepareSteps(
  replica: Replica,
  changes: ChangeSet | undefined,
  rekeyTo?: StoreKeys,
): Steps<PreparedCommit> {
  const req = rekeyTo ? undefined : replica.commitKeysNeeded(false);
  const newKeys = rekeyTo ?? (req ? req.keys(yield* derive(req.kdf)) : undefined);
  return replica.prepare(changes ?? { keys: new Map(), aliases: new Map() }, newKeys);
}

/** Hands a prepared commit back to the replica once the database committed it. */
export interface PreparedCommit {
  plan: CommitPlan;
  changes: ChangeSet;
  digest: SetDigest;
  keyInfo: Map<string, RowInfo | null>;
  aliasInfo: Map<string, RowInfo | null>;
  keys: StoreKeys;
}

/** A key derivation the caller must run (scrypt: synchronously or on the thread pool) before absorbing or committing. */
export interface KeyRequest {
  kdf: KdfHeader;
  /** Turns the derived master into the store's keys; throws KeyStorePassphraseError for a wrong passphrase. */
  keys(master: Buffer): StoreKeys;
}

export type AbsorbResult = 'unchanged' | 'changed' | 'reload';

export class Replica {
  readonly state = new StoreState();
  readonly #o: ReplicaOptions;
  #keys: StoreKeys | undefined;
  #keyRows = new Map<string, RowInfo>();
  #aliasRows = new Map<string, RowInfo>();
  #digest = new SetDigest();
  /** Generation and tag of the state held; generation undefined before the first load. */
  #generation: number | undefined;
  #tag: string | undefined;
  #highest = -1;
  #version = 0;

  constructor(options: ReplicaOptions) {
    this.#o = options;
  }

  get version(): number {
    return this.#version;
  }

  get generation(): number | undefined {
    return this.#generation;
  }

  get encrypted(): boolean {
    return this.#keys?.encrypted ?? this.#o.passphrase !== undefined;
  }

  get name(): string {
    return this.#o.name;
  }

  /** The key derivation of the keys held (an encrypted store's salt and scrypt cost); undefined when unencrypted. */
  get kdf(): KdfHeader | undefined {
    return this.#keys?.header?.kdf;
  }

  /** Whether `keys` are the ones this replica holds (adopted by a commit or a load). */
  holds(keys: StoreKeys): boolean {
    return this.#keys === keys;
  }

  #corrupt(reason: string): KeyStoreCorruptError {
    return new KeyStoreCorruptError(this.#o.name, reason);
  }

  /**
   * The key derivation absorbing `fetched` needs first, if any. Throws
   * KeyStorePassphraseError when the passphrase rules refuse the store: an
   * encrypted store without a passphrase, or an unencrypted one with a
   * passphrase (someone may have replaced an encrypted store by one they made).
   */
  keysNeeded(fetched: Fetched): KeyRequest | undefined {
    if (fetched.kind === 'missing' || fetched.kind === 'current') return undefined;
    const enc = fetched.meta.encryption;
    if (this.#keys && (enc ?? 'null') === this.#keys.headerText) return undefined;
    const pass = this.#o.passphrase;
    if (enc === null) {
      if (pass && !this.#o.encryptExisting) throw notEncrypted(this.#o.name);
      return undefined;
    }
    let header: unknown;
    try {
      header = JSON.parse(enc);
    } catch {
      header = undefined;
    }
    if (!validEncryptionHeader(header)) throw this.#corrupt('unsupported or malformed encryption header');
    if (!pass) throw passphraseNeeded(this.#o.name);
    return {
      kdf: header.kdf,
      keys: (master) => {
        const keys = StoreKeys.open(header, master);
        if (!keys) throw new KeyStorePassphraseError(this.#o.name, 'wrong passphrase');
        if (keys.headerText !== enc) {
          keys.destroy();
          throw this.#corrupt('the encryption header is not in its canonical form');
        }
        return keys;
      },
    };
  }

  /**
   * Brings the replica up to what `fetched` holds, with `keys` from
   * keysNeeded() when it asked for a derivation. 'reload': read everything
   * (a full fetch) and absorb that instead. On any error the replica is left
   * as it was.
   */
  absorb(fetched: Fetched, keys?: StoreKeys): AbsorbResult {
    try {
      return this.#absorb(fetched, keys);
    } catch (err) {
      if (keys && keys !== this.#keys) keys.destroy();
      throw err;
    }
  }

  #absorb(fetched: Fetched, newKeys: StoreKeys | undefined): AbsorbResult {
    if (fetched.kind === 'missing') {
      if (this.#generation !== undefined) throw this.#corrupt('the store disappeared');
      return 'unchanged';
    }
    const meta = fetched.meta;
    if (!Number.isSafeInteger(meta.generation) || meta.generation < 0) throw this.#corrupt('bad generation');
    if (meta.generation < this.#highest) {
      throw this.#corrupt(
        `its generation went back from ${this.#highest} to ${meta.generation} (an older copy put back?)`,
      );
    }
    if (fetched.kind === 'current') {
      const same =
        meta.generation === this.#generation &&
        meta.tag === this.#tag &&
        (meta.encryption ?? 'null') === this.#keys?.headerText;
      return same ? 'unchanged' : 'reload';
    }
    if (meta.encryption === null && this.#keys?.encrypted) throw this.#corrupt('it was encrypted and is not any more');
    const keys = newKeys ?? (meta.encryption === null ? (this.#keys ?? StoreKeys.unencrypted()) : this.#keys);
    if (keys === undefined || (meta.encryption ?? 'null') !== keys.headerText)
      throw new Error('absorb: keys do not match the header');
    if (fetched.kind === 'delta') {
      if (keys !== this.#keys) return 'reload';
      return this.#applyDelta(meta, fetched.keys, fetched.aliases, keys) ? 'changed' : 'reload';
    }
    return this.#applyFull(meta, fetched.keys, fetched.aliases, keys) ? 'changed' : 'unchanged';
  }

  #hashRows(kind: RowKind, rows: Row[], keys: StoreKeys, digest: SetDigest, info: Map<string, RowInfo>): void {
    const hashes = keys.rowHashes(kind, rows);
    digest.toggleAll(hashes);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (info.has(r.id)) throw this.#corrupt(`${kind === 'k' ? 'key' : 'alias'} ${r.id} appears twice`);
      info.set(r.id, { rev: r.rev, hash: hashes.toString('latin1', i * 32, i * 32 + 32) });
    }
  }

  #applyFull(meta: MetaRow, keyRows: Row[], aliasRows: Row[], keys: StoreKeys): boolean {
    const digest = new SetDigest();
    const keyInfo = new Map<string, RowInfo>();
    const aliasInfo = new Map<string, RowInfo>();
    this.#hashRows('k', keyRows, keys, digest, keyInfo);
    this.#hashRows('a', aliasRows, keys, digest, aliasInfo);
    if (!keys.verifyHeaderTag(meta.generation, digest.bytes, meta.tag)) {
      throw this.#corrupt(
        'its contents fail authentication (edited without the passphrase, or records from another store)',
      );
    }
    // Authenticated. Unchanged rows keep their record (and its identity); changed keys are decoded
    // when first read (a large store opens without decoding every key), aliases now.
    const changes: LoadedChanges = { keys: new Map(), aliases: new Map() };
    try {
      for (const r of keyRows) {
        if (this.#keyRows.get(r.id)?.hash !== keyInfo.get(r.id)!.hash) {
          changes.keys.set(r.id, new PendingKey(() => this.#decodeKey(r, keys), mayBeScheduled(r.body)));
        }
      }
      for (const r of aliasRows) {
        if (this.#aliasRows.get(r.id)?.hash !== aliasInfo.get(r.id)!.hash)
          changes.aliases.set(r.id, this.#decodeAlias(r));
      }
    } catch (err) {
      wipeChanges(changes);
      throw err;
    }
    for (const id of this.#keyRows.keys()) if (!keyInfo.has(id)) changes.keys.set(id, null);
    for (const id of this.#aliasRows.keys()) if (!aliasInfo.has(id)) changes.aliases.set(id, null);
    this.#adopt(meta, keys, digest);
    this.#keyRows = keyInfo;
    this.#aliasRows = aliasInfo;
    return this.#apply(changes);
  }

  /** Applies a delta if it verifies; false if it does not (the caller reloads in full). */
  #applyDelta(meta: MetaRow, keyChanges: ChangedRow[], aliasChanges: ChangedRow[], keys: StoreKeys): boolean {
    const digest = this.#digest.copy();
    const keyInfo = new Map<string, RowInfo | null>();
    const aliasInfo = new Map<string, RowInfo | null>();
    const fold = (kind: RowKind, list: ChangedRow[], held: Map<string, RowInfo>, info: Map<string, RowInfo | null>) => {
      for (const { id, row } of list) {
        if (info.has(id)) return false;
        const old = held.get(id);
        if (old) digest.toggle(old.hash);
        if (row) {
          const hash = keys.rowHash(kind, id, row.rev, row.body);
          digest.toggle(hash);
          info.set(id, { rev: row.rev, hash: hash.toString('latin1') });
        } else info.set(id, null);
      }
      return true;
    };
    if (!fold('k', keyChanges, this.#keyRows, keyInfo) || !fold('a', aliasChanges, this.#aliasRows, aliasInfo))
      return false;
    if (!keys.verifyHeaderTag(meta.generation, digest.bytes, meta.tag)) return false;
    const changes: ChangeSet = { keys: new Map(), aliases: new Map() };
    try {
      for (const { id, row } of keyChanges) changes.keys.set(id, row ? this.#decodeKey(row, keys) : null);
      for (const { id, row } of aliasChanges) changes.aliases.set(id, row ? this.#decodeAlias(row) : null);
    } catch (err) {
      wipeChanges(changes);
      throw err;
    }
    this.#adopt(meta, keys, digest);
    setInfo(this.#keyRows, keyInfo);
    setInfo(this.#aliasRows, aliasInfo);
    this.#apply(changes);
    return true;
  }

  #decodeKey(r: Row, keys: StoreKeys): KeyRecord {
    try {
      return decodeKey(r.id, r.body, keys);
    } catch (err) {
      if (err instanceof RecordDecodeError) throw this.#corrupt(err.message);
      throw err;
    }
  }

  #decodeAlias(r: Row): AliasRecord {
    try {
      return decodeAlias(r.id, r.body);
    } catch (err) {
      if (err instanceof RecordDecodeError) throw this.#corrupt(err.message);
      throw err;
    }
  }

  #adopt(meta: MetaRow, keys: StoreKeys, digest: SetDigest): void {
    if (this.#keys && this.#keys !== keys) this.#keys.destroy();
    this.#keys = keys;
    this.#digest = digest;
    this.#generation = meta.generation;
    this.#tag = meta.tag;
    if (meta.generation > this.#highest) this.#highest = meta.generation;
  }

  /** Returns whether anything changed. */
  #apply(changes: ChangeSet | LoadedChanges): boolean {
    if (changes.keys.size === 0 && changes.aliases.size === 0) return false;
    wipeLater(this.state.apply(changes));
    this.#version++;
    return true;
  }

  /**
   * The derivation a commit needs first: fresh keys for a new store with a
   * passphrase, or for an unencrypted store being encrypted. Undefined: none.
   */
  commitKeysNeeded(creating: boolean): KeyRequest | undefined {
    const pass = this.#o.passphrase;
    if (!pass || !(creating || this.needsEncryption)) return undefined;
    const kdf = newKdf(this.#o.scrypt);
    return { kdf, keys: (master) => StoreKeys.create(kdf, master) };
  }

  /** Whether the next commit must rewrite every row (an unencrypted store being encrypted). */
  get needsEncryption(): boolean {
    return (
      this.#o.encryptExisting && this.#o.passphrase !== undefined && this.#keys !== undefined && !this.#keys.encrypted
    );
  }

  /** The first commit of a new store: generation 0 holding `changes` (a migration) or nothing, under `keys`. */
  prepareCreate(keys: StoreKeys, changes: ChangeSet = { keys: new Map(), aliases: new Map() }): PreparedCommit {
    return this.#plan(keys, new SetDigest(), -1, changes, true);
  }

  /**
   * Encodes a transaction's changes as rows at the next generation, with the
   * digest and tag updated incrementally. With `newKeys` (an unencrypted
   * store being encrypted), every row is rewritten under them instead.
   */
  prepare(changes: ChangeSet, newKeys?: StoreKeys): PreparedCommit {
    if (this.#keys === undefined || this.#generation === undefined) throw new Error('replica not loaded');
    if (!newKeys) return this.#plan(this.#keys, this.#digest.copy(), this.#generation, changes, false);
    const all: ChangeSet = { keys: new Map(), aliases: new Map() };
    for (const rec of this.state.listKeys()) all.keys.set(keyStoreId(rec), rec);
    for (const rec of this.state.listAliases()) all.aliases.set(aliasStoreId(rec), rec);
    for (const [id, rec] of changes.keys) all.keys.set(id, rec);
    for (const [id, rec] of changes.aliases) all.aliases.set(id, rec);
    return this.#plan(newKeys, new SetDigest(), this.#generation, all, false, true);
  }

  #plan(
    keys: StoreKeys,
    digest: SetDigest,
    generation: number,
    changes: ChangeSet,
    insertMeta: boolean,
    rewrite = false,
  ): PreparedCommit {
    const rev = generation + 1;
    const plan: CommitPlan = {
      generation: rev,
      keys: [],
      keyDeletes: [],
      aliases: [],
      aliasDeletes: [],
      meta: { generation: rev, encryption: keys.encrypted ? keys.headerText : null, tag: '' },
      pruneThrough: rev - CHANGE_LOG_KEPT,
      insertMeta,
    };
    const keyInfo = new Map<string, RowInfo | null>();
    const aliasInfo = new Map<string, RowInfo | null>();
    const put = <R>(
      kind: RowKind,
      held: Map<string, RowInfo>,
      set: Map<string, R | null>,
      encode: (r: R) => string,
      rows: Row[],
      deletes: string[],
      info: Map<string, RowInfo | null>,
    ) => {
      for (const [id, rec] of set) {
        const old = held.get(id);
        if (old && !rewrite) digest.toggle(old.hash);
        if (rec) {
          const row = { id, rev, body: encode(rec) };
          const hash = keys.rowHash(kind, id, rev, row.body);
          digest.toggle(hash);
          rows.push(row);
          info.set(id, { rev, hash: hash.toString('latin1') });
        } else if (old || !rewrite) {
          deletes.push(id);
          info.set(id, null);
        }
      }
    };
    put('k', this.#keyRows, changes.keys, (r: KeyRecord) => encodeKey(r, keys), plan.keys, plan.keyDeletes, keyInfo);
    put('a', this.#aliasRows, changes.aliases, encodeAlias, plan.aliases, plan.aliasDeletes, aliasInfo);
    plan.meta.tag = keys.headerTag(rev, digest.bytes);
    return { plan, changes, digest, keyInfo, aliasInfo, keys };
  }

  /** Adopts a commit the database made durable. */
  committed(p: PreparedCommit): void {
    this.#adopt(p.plan.meta, p.keys, p.digest);
    setInfo(this.#keyRows, p.keyInfo);
    setInfo(this.#aliasRows, p.aliasInfo);
    this.#apply(p.changes);
  }

  /** A commit that did not happen: keys made for it are dropped. */
  abandoned(p: PreparedCommit): void {
    if (p.keys !== this.#keys) p.keys.destroy();
  }

  /** Zeroes every secret and key held. Reads see an empty store afterwards. */
  destroy(): void {
    wipeLater(this.state.clear(), 0);
    this.#keys?.destroy();
    this.#keys = undefined;
    this.#keyRows.clear();
    this.#aliasRows.clear();
  }
}

function setInfo(held: Map<string, RowInfo>, info: Map<string, RowInfo | null>): void {
  for (const [id, i] of info) {
    if (i) held.set(id, i);
    else held.delete(id);
  }
}

function wipeChanges(changes: ChangeSet | LoadedChanges): void {
  for (const rec of changes.keys.values())
    if (rec && !(rec instanceof PendingKey)) for (const b of secretBuffers(rec)) b.fill(0);
}

/** Whether a stored key may carry a date (deletion, expiry): a superset, read from the text without decoding it. */
function mayBeScheduled(body: string): boolean {
  return /"(deletionDate|validTo)"/.test(body);
}
