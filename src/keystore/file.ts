/**
 * FileKeyStore: the embedded durable store, one SQLite database file
 * (better-sqlite3, WAL mode), shared safely by any number of processes on
 * one machine. The tables and the in-memory replica are replica.ts's.
 *
 * - Reads are synchronous and come from the replica in memory: no file
 *   system call on the MAC path. Other processes' commits are picked up in
 *   the background: a directory watch on the WAL and a `PRAGMA data_version`
 *   check every `pollIntervalMs` (100 ms) trigger a catch-up from the change
 *   log. `refresh()` does it now.
 * - Writes: `BEGIN IMMEDIATE` (SQLite's write lock: an fcntl lock, released
 *   by the kernel when the holder dies, so it is never stale and no pid is
 *   ever guessed at), catch up, run the mutation, write the changed rows,
 *   COMMIT with `synchronous = FULL` (fsync of the WAL). `transact` resolves
 *   after that: an acknowledged change survives a crash at any instant. A
 *   writer waiting for the lock waits asynchronously (the event loop keeps
 *   serving MACs), up to `lockTimeoutMs`.
 * - A new store, or a format-1 JSON store to migrate, is set up by
 *   file-setup.ts before the first connection.
 */
import { mkdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { deriveMaster, deriveMasterSync, type StoreKeys } from './crypto.js';
import { DurableKeyStore } from './durable.js';
import { KeyStoreCorruptError, KeyStoreLockTimeoutError } from './errors.js';
import { connect, setupSteps } from './file-setup.js';
import { checkTimeout, type KeyStoreOptions } from './options.js';
import { catchUpSteps, prepareSteps, type PreparedCommit } from './replica.js';
import {
  commitStatements,
  migrationStatements,
  runSteps,
  runStepsAsync,
  SQL,
  type Steps,
  type SyncRunner,
} from './schema.js';
import { Mutex, runTransaction } from './state.js';
import type { KeyStoreTransaction } from './types.js';

export interface FileKeyStoreOptions extends KeyStoreOptions {
  /** How often to check for other processes' commits (besides the file watch). Default 100; 0: only on refresh() and transact. */
  pollIntervalMs?: number;
}

function sqliteCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : '';
}

function isBusy(err: unknown): boolean {
  return sqliteCode(err).startsWith('SQLITE_BUSY');
}

/** SQLite's "this file is damaged / not a database" errors, as the store's typed error. */
function asCorrupt(path: string, err: unknown): unknown {
  const code = sqliteCode(err);
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new KeyStoreCorruptError(path, `the database is damaged (${code})`, { cause: err });
  }
  return err;
}

/** Who holds the write lock, for the timeout message (Linux /proc/locks; best effort). */
function lockHolders(path: string): string {
  try {
    const ino = statSync(`${path}-shm`).ino;
    const pids = new Set<string>();
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      // SQLite's WAL write lock: an exclusive lock on byte 120 of the -shm file.
      if (f[3] === 'WRITE' && f[5]?.endsWith(`:${ino}`) && f[6] === '120' && f[4] !== '-1')
        pids.add(f[4] === String(process.pid) ? `${f[4]} (this process)` : f[4]!);
    }
    if (pids.size) return `pid ${[...pids].join(', ')}`;
  } catch {
    /* not Linux, or no lock visible */
  }
  return 'another process';
}

export class FileKeyStore extends DurableKeyStore {
  /** Absolute path of the store file. */
  readonly path: string;
  readonly #lockTimeoutMs: number;
  readonly #pollMs: number;
  #db: Database.Database | undefined;
  readonly #statements = new Map<string, Database.Statement>();
  #mutex = new Mutex();
  #dataVersion = -1;
  #timer: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #pollQueued = false;

  private constructor(path: string, options: FileKeyStoreOptions) {
    super(resolve(path), options);
    this.path = resolve(path);
    this.#lockTimeoutMs = checkTimeout('lockTimeoutMs', options.lockTimeoutMs ?? 10_000);
    this.#pollMs = checkTimeout('pollIntervalMs', options.pollIntervalMs ?? 100);
  }

  /** Opens (creating or migrating if needed) the store at `path`. scrypt runs off the main thread. */
  static async open(path: string, options: FileKeyStoreOptions = {}): Promise<FileKeyStore> {
    const store = new FileKeyStore(path, options);
    try {
      await runStepsAsync(store.#openSteps(), {
        query: async (sql, params) => store.#query(sql, params),
        derive: (kdf) => deriveMaster(store.settings.passphrase!, kdf),
      });
      if (store.replica.needsEncryption) await store.transact(() => undefined);
      return store;
    } catch (err) {
      store.#dispose();
      throw asCorrupt(store.path, err);
    }
  }

  /** Synchronous open (used by `openKeyStore(path)`); scrypt blocks for ~0.1 s when a passphrase is set. */
  static openSync(path: string, options: FileKeyStoreOptions = {}): FileKeyStore {
    const store = new FileKeyStore(path, options);
    try {
      runSteps(store.#openSteps(), store.#run);
      return store;
    } catch (err) {
      store.#dispose();
      throw asCorrupt(store.path, err);
    }
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Catches up with other processes' commits now. Resolves whether the
   * visible state changed; rejects with KeyStoreCorruptError /
   * KeyStorePassphraseError if the store cannot be loaded (the last good
   * state stays in place).
   */
  refresh(): Promise<boolean> {
    if (this.closed) return Promise.reject(this.closedError());
    return this.#mutex.run(async () => this.#catchUp());
  }

  transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T> {
    return this.#transact(mutate);
  }

  protected async rewrite(keys: StoreKeys): Promise<void> {
    await this.#transact(() => undefined, keys);
  }

  /** A write transaction; with `rekeyTo`, it rewrites every row under those keys (a rekey). */
  #transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>, rekeyTo?: StoreKeys): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    return this.#mutex.run(async () => {
      // Transactions queued before close() still run; close() waits for them.
      const db = this.#db!;
      await this.#lockForWrite(db);
      let prepared: PreparedCommit | undefined;
      try {
        this.#catchUp();
        const replica = this.replica;
        const { result, changes } = await runTransaction(replica.state, mutate);
        if (!changes && !replica.needsEncryption && !rekeyTo) {
          db.exec('ROLLBACK');
          return result;
        }
        prepared = runSteps(prepareSteps(replica, changes, rekeyTo), this.#run);
        for (const [sql, params] of commitStatements(prepared.plan)) this.#statement(sql).run(...params);
        db.exec('COMMIT');
        replica.committed(prepared);
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        if (prepared) this.replica.abandoned(prepared);
        throw asCorrupt(this.path, err);
      }
    });
  }

  /** Waits for queued transactions, stops watching, closes the database and zeroes the secrets held. Reads throw afterwards. */
  async close(): Promise<void> {
    if (!this.markClosed()) return;
    this.#stopWatching();
    await this.#mutex.idle();
    this.#dispose();
  }

  protected where(): Record<string, string> {
    return { path: this.path };
  }

  // ---- internals ----------------------------------------------------------

  /** Runs steps (replica.ts) on this connection, deriving keys synchronously. */
  readonly #run: SyncRunner = {
    query: (sql, params) => this.#query(sql, params),
    derive: (kdf) => deriveMasterSync(this.settings.passphrase!, kdf),
  };

  #statement(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db!.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  /** Reads inside the current write transaction, or in a read transaction of their own. */
  #query(sql: string, params: unknown[]): unknown[] {
    return this.#statement(sql).all(...params);
  }

  *#openSteps(): Steps<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const created = yield* setupSteps(this.path, this.settings, this.#lockTimeoutMs);
    const db = connect(this.path, true);
    this.#db = db;
    this.#migrate(db);
    yield* this.#readTransaction(catchUpSteps(this.replica));
    this.#caughtUp();
    if (this.replica.generation === undefined) throw new KeyStoreCorruptError(this.path, 'it has no meta row');
    // Only now, the contents verified: make sure the file is in WAL mode (a store restored from a backup may not be).
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
    this.opened(created);
    this.#startWatching();
  }

  /** Checks the schema version; applies missing migrations under the write lock (never when the schema is current). */
  #migrate(db: Database.Database): void {
    let version: number;
    try {
      version = (db.prepare(SQL.schemaVersion).get() as { version: number | null }).version ?? 0;
    } catch {
      throw new KeyStoreCorruptError(this.path, 'it is a SQLite database but not a kms-hmac key store');
    }
    if (migrationStatements(this.path, version).length === 1) return; // current: only the CREATE TABLE IF NOT EXISTS
    db.transaction(() => {
      const again = (db.prepare(SQL.schemaVersion).get() as { version: number | null }).version ?? 0;
      for (const [sql, params] of migrationStatements(this.path, again).slice(1)) db.prepare(sql).run(...params);
    }).immediate();
  }

  /** Runs steps in one read transaction (one snapshot), unless a write transaction is already open. */
  *#readTransaction<T>(steps: Steps<T>): Steps<T> {
    const db = this.#db!;
    if (db.inTransaction) return yield* steps;
    db.exec('BEGIN');
    try {
      return yield* steps;
    } finally {
      db.exec('COMMIT');
    }
  }

  #caughtUp(): void {
    this.#dataVersion = this.#db!.pragma('data_version', { simple: true }) as number;
    this.noteLoad();
  }

  #catchUp(): boolean {
    try {
      const changed = runSteps(this.#readTransaction(catchUpSteps(this.replica)), this.#run);
      this.#caughtUp();
      return changed;
    } catch (err) {
      const e = asCorrupt(this.path, err);
      this.noteLoad(e as Error);
      throw e;
    }
  }

  /** BEGIN IMMEDIATE, waiting asynchronously while another connection holds the write lock. */
  async #lockForWrite(db: Database.Database): Promise<void> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    let delay = 1;
    for (;;) {
      db.pragma('busy_timeout = 0');
      try {
        db.exec('BEGIN IMMEDIATE');
        return;
      } catch (err) {
        if (!isBusy(err)) throw err;
      } finally {
        db.pragma('busy_timeout = 2000');
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new KeyStoreLockTimeoutError(this.path, this.#lockTimeoutMs, lockHolders(this.path));
      await sleep(Math.min(left, delay * (0.5 + Math.random())));
      delay = Math.min(delay * 2, 25);
    }
  }

  #startWatching(): void {
    if (this.#pollMs === 0) return;
    this.#timer = setInterval(() => this.#poll(), this.#pollMs);
    this.#timer.unref();
    try {
      const prefix = basename(this.path);
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name?.startsWith(prefix) && !this.#pollQueued) {
          this.#pollQueued = true;
          setImmediate(() => {
            this.#pollQueued = false;
            this.#poll();
          });
        }
      });
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch {
      /* no watch support here: the timer alone does it */
    }
  }

  #stopWatching(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** Catches up in the background when another connection committed (data_version moved). */
  #poll(): void {
    if (this.closed || this.#mutex.busy || !this.#db) return;
    let dv: number;
    try {
      dv = this.#db.pragma('data_version', { simple: true }) as number;
    } catch (err) {
      this.noteLoad(err as Error);
      return;
    }
    if (dv === this.#dataVersion) {
      this.noteLoad(); // checked: nothing new
      return;
    }
    void this.#mutex
      .run(async () => {
        if (!this.closed) this.#catchUp();
      })
      .catch(() => {}); // noted by #catchUp; reads keep the last good state, transact reports it
  }

  #dispose(): void {
    this.#stopWatching();
    try {
      this.#db?.close();
    } catch {
      /* closing anyway */
    }
    this.#db = undefined;
    this.wipe();
  }
}
