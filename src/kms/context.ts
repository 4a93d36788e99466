/**
 * The state every operation module of a KmsHmacClient shares: the store,
 * the clock, the client's region/account, and the two ways to reach a key —
 * a lock-free read view (time rules applied virtually) and a transaction
 * (time rules applied for real first). One instance per client; the client
 * owns the store's lifetime and flips `closed`.
 */
import type { Backend } from '../backend/types.js';
import {
  KeyStoreCorruptError,
  KeyStoreLockTimeoutError,
  KeyStorePassphraseError,
  KeyStoreUnavailableError,
} from '../keystore/errors.js';
import type { AliasRecord, KeyRecord, KeyStore, KeyStoreTransaction } from '../keystore/types.js';
import { kmsError } from './errors.js';
import { authorize, type AccessDetails, type Caller } from './authorize.js';
import { aliasArn, arnAccount, keyArn, parseKeyId, type Scope } from './identifiers.js';
import { applyTimeRules, timeAdjusted, timeDeadline } from './keys.js';
import { findAlias, findKey } from './multi-region.js';
import type { Quotas } from './quotas.js';

/** Errors a stale snapshot can cause: another process created, enabled or imported the key a moment ago. */
export const STALE_ERRORS: ReadonlySet<string> = new Set([
  'NotFoundException',
  // A grant token from CreateGrant in another process names a grant this snapshot has not seen yet.
  'InvalidGrantTokenException',
  'DisabledException',
  'KMSInvalidStateException',
]);

/** AWS's description of DependencyTimeoutException. */
const RETRY_MESSAGE = 'The system timed out while trying to fulfill the request. You can retry the request.';

/**
 * A key store failure as the KMS error callers (and the endpoint) see:
 * DependencyTimeoutException (503, retryable) when a write certainly did not
 * commit (store unreachable before COMMIT, write lock not obtained in time),
 * KMSInternalException when it may have. The store's error is the `cause`.
 * Anything else is returned unchanged.
 */
export function kmsStoreError(err: unknown): unknown {
  let name: 'DependencyTimeoutException' | 'KMSInternalException';
  if (err instanceof KeyStoreLockTimeoutError || (err instanceof KeyStoreUnavailableError && err.notCommitted))
    name = 'DependencyTimeoutException';
  else if (err instanceof KeyStoreUnavailableError) name = 'KMSInternalException';
  else return err;
  const e = kmsError(name, name === 'DependencyTimeoutException' ? RETRY_MESSAGE : undefined);
  Object.defineProperty(e, 'cause', { value: err, configurable: true, writable: true });
  return e;
}

export class ClientContext {
  readonly store: KeyStore;
  readonly clock: () => number;
  readonly scope: Scope;
  /** HMAC backend for prepared keys. */
  readonly backend: Backend;
  /** The resource and request quotas this client enforces (quotas.ts). */
  readonly quotas: Quotas;
  /** Resolves once the store is open (a PostgreSQL store opens asynchronously); rejects with why it could not. */
  readonly ready: Promise<void>;
  #isReady = false;
  closed = false;
  /** The pending background persistence of time rules noticed by a read (see readKey). */
  sweep: Promise<void> | undefined;

  constructor(store: KeyStore, clock: () => number, scope: Scope, backend: Backend, quotas: Quotas) {
    this.store = store;
    this.clock = clock;
    this.scope = scope;
    this.backend = backend;
    this.quotas = quotas;
    this.ready = Promise.resolve(store.ready?.()).then(
      () => {
        this.#isReady = true;
      },
      (err: unknown) => {
        throw kmsStoreError(err);
      },
    );
    this.ready.catch(() => {}); // reported by ready() and by every call, never as an unhandled rejection
  }

  get isReady(): boolean {
    return this.#isReady;
  }

  /**
   * Runs an operation once the store is ready. If it fails the way a stale
   * snapshot can make it fail (the key missing, disabled, pending import),
   * the store is asked for what changed (a database query for PostgreSQL)
   * and, if anything did, the operation runs once more.
   */
  async run<T>(op: () => T | Promise<T>): Promise<T> {
    if (!this.#isReady) await this.ready;
    try {
      return await op();
    } catch (err) {
      return this.retryIfStale(op, err);
    }
  }

  /** `op` failed with `err`: if a stale snapshot may explain it and the store did change, runs it again; else throws `err`. */
  async retryIfStale<T>(op: () => T | Promise<T>, err: unknown): Promise<T> {
    if (!STALE_ERRORS.has((err as Error)?.name) || !(await this.refresh())) throw err;
    return op();
  }

  /**
   * Catches up with the store now; whether anything changed. A store that
   * fails authentication changed nothing this process may use: the answer
   * stays the snapshot's (the store's health() reports the failure).
   */
  async refresh(): Promise<boolean> {
    try {
      return (await this.store.refresh?.()) ?? false;
    } catch (err) {
      if (err instanceof KeyStoreCorruptError || err instanceof KeyStorePassphraseError) return false;
      throw kmsStoreError(err);
    }
  }

  /** The key `keyId` in this client's Region and `caller`'s account, from the read view. */
  readKeyInScope(keyId: string, caller: Caller): KeyRecord | undefined {
    return findKey((k) => this.readKey(k), keyId, keyArn(this.scopeOf(caller), keyId));
  }

  /** Reads a key by its store id (no write lock). Applies time rules virtually and schedules their persistence. */
  readKey(keyId: string): KeyRecord | undefined {
    const rec = this.store.getKey(keyId);
    if (rec === undefined) return undefined;
    const deadline = timeDeadline(rec);
    if (deadline === Infinity) return rec;
    const now = this.clock();
    if (deadline > now) return rec;
    this.#scheduleSweep();
    return timeAdjusted(rec, now);
  }

  /**
   * Resolves a KeyId in any form allowed by the operation, from the read
   * view, as `caller` names keys (a key ID or alias name in its own account,
   * an ARN in any), then authorizes `operation` on it (authorize.ts) unless
   * `operation` is undefined (a permission IAM alone decides).
   * `allowAlias` false: key ID or key ARN only.
   */
  resolveRead(
    id: string,
    allowAlias: boolean,
    caller: Caller,
    operation: string | undefined,
    details?: AccessDetails,
  ): KeyRecord {
    const rec = resolveKeyId(
      this.scopeOf(caller),
      id,
      allowAlias,
      (k) => this.readKey(k),
      (a) => this.store.getAlias(a),
    );
    if (operation !== undefined) authorize(rec, caller, operation, details);
    return rec;
  }

  /** Like resolveRead, inside a mutation's transaction. */
  resolveTx(
    tx: KeyStoreTransaction,
    id: string,
    allowAlias: boolean,
    caller: Caller,
    operation: string | undefined,
    details?: AccessDetails,
  ): KeyRecord {
    const rec = resolveKeyId(
      this.scopeOf(caller),
      id,
      allowAlias,
      (k) => tx.getKey(k),
      (a) => tx.getAlias(a),
    );
    if (operation !== undefined) authorize(rec, caller, operation, details);
    return rec;
  }

  /** The client's region with the caller's account: where the caller's key IDs and alias names resolve. */
  scopeOf(caller: Caller): Scope {
    const s = this.scope;
    return caller.accountId === s.accountId ? s : { ...s, accountId: caller.accountId };
  }

  /** Runs a mutation with the time rules applied first (expired keys really deleted). */
  mutate<T>(fn: (tx: KeyStoreTransaction, now: number) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('KmsHmacClient is closed'));
    return this.store
      .transact((tx) => {
        const now = this.clock();
        applyTimeRules(tx, now);
        return fn(tx, now);
      })
      .catch((err: unknown) => {
        throw kmsStoreError(err);
      });
  }

  // Reads must not take the write lock, so a read that sees an expired key
  // answers from the adjusted copy and leaves the store's write to a later tick.
  #scheduleSweep(): void {
    if (this.sweep || this.closed) return;
    this.sweep = new Promise<void>((resolve) => {
      setImmediate(() => {
        this.store
          .transact((tx) => {
            applyTimeRules(tx, this.clock());
          })
          .catch(() => undefined)
          .finally(() => {
            this.sweep = undefined;
            resolve();
          });
      });
    });
  }
}

/** KeyId (key ID, key ARN, alias name, alias ARN) → record, with the KMS NotFoundException messages. */
function resolveKeyId(
  s: Scope,
  id: string,
  allowAlias: boolean,
  getKey: (k: string) => KeyRecord | undefined,
  getAlias: (a: string) => AliasRecord | undefined,
): KeyRecord {
  const p = parseKeyId(id);
  switch (p.kind) {
    case 'keyId': {
      // The record whose ARN is this one: the caller's account, the client's Region.
      const arn = keyArn(s, p.keyId);
      const rec = findKey(getKey, p.keyId, arn);
      if (!rec) throw kmsError('NotFoundException', `Key '${arn}' does not exist`);
      return rec;
    }
    case 'keyArn': {
      if (p.region !== s.region) throw kmsError('NotFoundException', `Invalid arn ${p.region}`);
      // Another account's key is reached by its ARN (the key policy then decides).
      const rec = p.partition === s.partition ? findKey(getKey, p.keyId, p.arn) : undefined;
      if (!rec) throw kmsError('NotFoundException', `Key '${p.arn}' does not exist`);
      return rec;
    }
    case 'aliasName':
    case 'aliasArn': {
      if (!allowAlias) throw kmsError('NotFoundException', `Invalid keyId '${id}'`);
      let arn: string;
      if (p.kind === 'aliasArn') {
        if (p.region !== s.region) throw kmsError('NotFoundException', `Invalid arn ${p.region}`);
        arn = p.arn;
        if (p.partition !== s.partition) throw kmsError('NotFoundException', `Alias ${arn} is not found.`);
      } else arn = aliasArn(s, p.aliasName);
      // An alias answers in its own account and Region only (another account's by its ARN).
      const a = findAlias(getAlias, p.aliasName, arn);
      const owner = a === undefined ? s : { ...s, accountId: arnAccount(a.aliasArn) };
      const rec = a ? findKey(getKey, a.targetKeyId, keyArn(owner, a.targetKeyId)) : undefined;
      if (!rec) throw kmsError('NotFoundException', `Alias ${arn} is not found.`);
      return rec;
    }
    default:
      throw kmsError('NotFoundException', `Invalid keyId '${id}'`);
  }
}
