/**
 * PostgresKeyStore: keys shared by a fleet (several `kms-hmac serve`
 * replicas, pipeline workers on many machines) through one PostgreSQL
 * database, with the `pg` client. Tables, encryption and authentication are
 * replica.ts's, exactly as in FileKeyStore.
 *
 * - Opening is asynchronous: `ready()` resolves once the schema is migrated
 *   (versioned, under an advisory lock), the store created if needed, LISTEN
 *   set up and the snapshot loaded. Reads before that throw
 *   KeyStoreNotReadyError.
 * - Reads come from the replica in memory; the MAC path never waits on the
 *   database. Every commit sends `NOTIFY kms_hmac_changes`; each process
 *   catches up from the change log when it hears one. After the LISTEN
 *   connection is lost and re-established, the snapshot is reloaded in full.
 *   `refresh()` (a lookup that missed) asks the database now.
 * - Writes: one transaction each. `SELECT … FROM kms_hmac_meta FOR UPDATE`
 *   serializes writers across the fleet (bounded by `lockTimeoutMs`), the
 *   replica catches up inside that transaction, the mutation runs, the
 *   changed rows, the change log, the meta row and the NOTIFY commit
 *   together.
 * - Failures: the database unreachable, restarting or too slow is
 *   KeyStoreUnavailableError, whose `notCommitted` says whether the write
 *   certainly did not happen (every failure before COMMIT was sent) or may
 *   have (the connection broke during COMMIT). Reads go on from the snapshot
 *   meanwhile.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import { deriveMaster, StoreKeys } from './crypto.js';
import { checkTls, isPostgresUrl, redactText, redactUrl } from './pg-url.js';
import { KeyStoreCorruptError, KeyStoreError, KeyStoreLockTimeoutError, KeyStoreUnavailableError } from './errors.js';
import { DurableKeyStore } from './durable.js';
import { checkTimeout, type KeyStoreOptions } from './options.js';
import { catchUpSteps, prepareSteps, type PreparedCommit } from './replica.js';
import {
  migrationStatements,
  runStepsAsync,
  SQL,
  type AsyncRunner,
  type CommitPlan,
  type Row,
  type Steps,
} from './schema.js';
import { Mutex, runTransaction } from './state.js';
import type { KeyStoreTransaction } from './types.js';

// The `pg` client is loaded when the first PostgreSQL store is made: its
// ~40 ms of module loading is not for every CLI run that uses a file store.
let pgModule: typeof pg | undefined;
const pgClient = (): typeof pg => (pgModule ??= createRequire(import.meta.url)('pg') as typeof pg);

export const NOTIFY_CHANNEL = 'kms_hmac_changes';
/** Serializes schema migrations and store creation across processes. */
const SETUP_LOCK = `SELECT pg_advisory_xact_lock(hashtext('kms_hmac_setup'))`;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2_000;

export interface PostgresKeyStoreOptions extends KeyStoreOptions {
  /** How long a query (or a connection attempt) may take before the store reports itself unavailable. Default 5000. */
  queryTimeoutMs?: number;
  /** Extra `pg.Pool` settings (ssl, max, …). Host, port, database, user and password come from the URL or the PG* variables. */
  pool?: Omit<pg.PoolConfig, 'connectionString'>;
  /**
   * How often the store asks the database whether anything changed, besides
   * listening for NOTIFY (a notification lost, or suppressed on the network,
   * then delays a change by at most this). Default 5000; 0: NOTIFY only.
   */
  pollIntervalMs?: number;
}

/** `?` placeholders (replica.ts writes SQL for both databases) as PostgreSQL's `$n`. */
const numbered = new Map<string, string>();
function pgSql(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let i = 0;
    out = sql.replace(/\?/g, () => `$${++i}`);
    numbered.set(sql, out);
  }
  return out;
}

/**
 * A commit (replica.ts's plan) as at most five statements whatever its size:
 * rows upserted and deleted in bulk (unnest / ANY), then one statement that
 * logs the changes, prunes the log, writes the meta row and sends the
 * NOTIFY. (SQLite runs commitStatements, one statement per row, in process.)
 */
function pgCommit(plan: CommitPlan): [string, unknown[]][] {
  const out: [string, unknown[]][] = [];
  const put = (table: string, idCol: string, rows: Row[]) => {
    if (rows.length === 0) return;
    out.push([
      `INSERT INTO ${table} (${idCol}, rev, body) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) ` +
        `ON CONFLICT (${idCol}) DO UPDATE SET rev = excluded.rev, body = excluded.body`,
      [rows.map((r) => r.id), rows.map((r) => r.rev), rows.map((r) => r.body)],
    ]);
  };
  const del = (table: string, idCol: string, ids: string[]) => {
    if (ids.length) out.push([`DELETE FROM ${table} WHERE ${idCol} = ANY($1::text[])`, [ids]]);
  };
  put('kms_hmac_keys', 'key_id', plan.keys);
  del('kms_hmac_keys', 'key_id', plan.keyDeletes);
  put('kms_hmac_aliases', 'alias_name', plan.aliases);
  del('kms_hmac_aliases', 'alias_name', plan.aliasDeletes);
  const kinds: string[] = [];
  const ids: string[] = [];
  for (const [kind, list] of [
    ['k', [...plan.keys.map((r) => r.id), ...plan.keyDeletes]],
    ['a', [...plan.aliases.map((r) => r.id), ...plan.aliasDeletes]],
  ] as const) {
    for (const id of list) {
      kinds.push(kind);
      ids.push(id);
    }
  }
  const m = plan.meta;
  const meta = plan.insertMeta
    ? `INSERT INTO kms_hmac_meta (id, generation, encryption, tag) VALUES (1, $1, $2, $3) RETURNING generation`
    : `UPDATE kms_hmac_meta SET generation = $1, encryption = $2, tag = $3 WHERE id = 1 RETURNING generation`;
  out.push([
    `WITH log AS (INSERT INTO kms_hmac_changes (rev, kind, id) SELECT $1, kind, id FROM unnest($4::text[], $5::text[]) AS c(kind, id) ON CONFLICT DO NOTHING), ` +
      `pruned AS (DELETE FROM kms_hmac_changes WHERE rev <= $6), meta AS (${meta}) ` +
      `SELECT pg_notify('${NOTIFY_CHANNEL}', generation::text) FROM meta`,
    [m.generation, m.encryption, m.tag, kinds, ids, plan.pruneThrough],
  ]);
  return out;
}

/** Errors that mean "the database is not reachable right now", as opposed to a bug or a bad store. */
function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^(08|53|57P|57014|ECONN|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ENOENT)/.test(code))
    return true;
  const msg = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection error|timeout|not queryable|ended unexpectedly|Client was closed/i.test(msg);
}

export class PostgresKeyStore extends DurableKeyStore {
  /** The connection URL without its password. */
  readonly url: string;
  readonly #lockTimeoutMs: number;
  readonly #pollMs: number;
  /** The URL as given (with its password): only for connecting, and for taking it out of error messages. */
  readonly #rawUrl: string;
  readonly #pool: pg.Pool;
  readonly #connection: pg.ClientConfig;
  readonly #mutex = new Mutex();
  readonly #ready: Promise<void>;
  #listener: pg.Client | undefined;
  /** Set while the LISTEN connection is down: when it went down. */
  #downSince: number | undefined;
  #reconnectDelay = RECONNECT_MIN_MS;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pendingCatchUp: Promise<boolean> | undefined;
  #catchUpAgain = false;
  #pollTimer: NodeJS.Timeout | undefined;

  /**
   * Starts opening the store at `url` (`postgres://user:pass@host:port/db`,
   * `postgresql://…`; missing parts from PGHOST, PGPORT, PGDATABASE, PGUSER,
   * PGPASSWORD). Await `ready()` (or use `PostgresKeyStore.open`).
   */
  constructor(url: string, options: PostgresKeyStoreOptions = {}) {
    if (typeof url !== 'string' || !isPostgresUrl(url))
      throw new TypeError('PostgresKeyStore needs a postgres:// or postgresql:// URL');
    checkTls(url, options.pool?.ssl);
    super(redactUrl(url), options);
    this.url = redactUrl(url);
    this.#rawUrl = url;
    this.#lockTimeoutMs = checkTimeout('lockTimeoutMs', options.lockTimeoutMs ?? 10_000);
    this.#pollMs = checkTimeout('pollIntervalMs', options.pollIntervalMs ?? 5_000);
    const queryTimeout = checkTimeout('queryTimeoutMs', options.queryTimeoutMs ?? 5_000);
    this.#connection = {
      connectionString: url,
      connectionTimeoutMillis: queryTimeout,
      // Client-side: the lock wait is bounded by lock_timeout; this catches a server that stopped answering.
      query_timeout: queryTimeout + this.#lockTimeoutMs,
      application_name: 'kms-hmac',
    };
    this.#pool = new (pgClient().Pool)({ max: 4, idleTimeoutMillis: 30_000, ...options.pool, ...this.#connection });
    // An idle connection that breaks (database restart) must not crash the process; the next query reconnects.
    this.#pool.on('error', () => {});
    this.#ready = this.#open();
    this.#ready.catch(() => {}); // reported through ready() and every call; never an unhandled rejection
  }

  /** Opens the store and waits until it is ready. */
  static async open(url: string, options: PostgresKeyStoreOptions = {}): Promise<PostgresKeyStore> {
    const store = new PostgresKeyStore(url, options);
    try {
      await store.ready();
      return store;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Asks the database now whether anything changed, and catches up. Calls
   * made while one is in flight share it. While the database is known to be
   * unreachable this rejects at once (KeyStoreUnavailableError).
   */
  refresh(): Promise<boolean> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.#downSince !== undefined) {
      return Promise.reject(
        new KeyStoreUnavailableError(this.url, 'the database connection is down; reconnecting', true),
      );
    }
    return this.#catchUpSoon();
  }

  transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    return this.#mutex.run(async () => {
      await this.#ready;
      return this.#commit(mutate);
    });
  }

  protected rewrite(keys: StoreKeys): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    return this.#mutex.run(async () => {
      await this.#ready;
      await this.#commit(() => undefined, keys);
    });
  }

  /** One write transaction around `mutate` (under the mutex); with `rekeyTo`, every row rewritten under those keys. */
  #commit<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>, rekeyTo?: StoreKeys): Promise<T> {
    return this.#write(async (run) => {
      const replica = this.replica;
      await runStepsAsync(catchUpSteps(replica), run);
      const { result, changes } = await runTransaction(replica.state, mutate);
      if (!changes && !replica.needsEncryption && !rekeyTo) return { result };
      const prepared = await runStepsAsync(prepareSteps(replica, changes, rekeyTo), run);
      try {
        for (const [sql, params] of pgCommit(prepared.plan)) await run.query(sql, params);
      } catch (err) {
        replica.abandoned(prepared);
        throw err;
      }
      return { result, prepared };
    });
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#pollTimer);
    await this.#ready.catch(() => {});
    await this.#mutex.idle();
    await this.#disconnect();
    this.wipe();
  }

  protected where(): Record<string, string> {
    return { url: this.url };
  }

  // ---- internals ----------------------------------------------------------

  async #disconnect(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    await Promise.allSettled([listener?.end(), this.#pool.end()]);
  }

  #runner(client: pg.PoolClient | pg.Client): AsyncRunner {
    return {
      query: async (sql, params) => (await client.query(pgSql(sql), params)).rows,
      derive: (kdf) => deriveMaster(this.settings.passphrase!, kdf),
    };
  }

  /**
   * Maps a failure to the store's errors: unavailable (with whether a write
   * may have committed), lock timeout, or as is; a `pg` error's message never
   * carries the URL's password.
   */
  #failure(err: unknown, mayHaveCommitted: boolean): unknown {
    if (err instanceof KeyStoreError) return err;
    if ((err as { code?: unknown })?.code === '55P03')
      return new KeyStoreLockTimeoutError(this.url, this.#lockTimeoutMs, 'another writer');
    if (err instanceof Error) err.message = redactText(err.message, this.#rawUrl);
    if (isConnectionError(err)) {
      return new KeyStoreUnavailableError(this.url, (err as Error).message || String(err), !mayHaveCommitted, {
        cause: err,
      });
    }
    return err;
  }

  /**
   * A pooled connection for one transaction. While checked out, a client
   * whose connection breaks between two queries (a database shutdown) emits
   * 'error'; with no listener that would end the process. The query in
   * flight, or the next one, fails anyway and is reported as unavailable.
   */
  async #connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw this.#failure(err, false);
    }
    const ignore = () => {};
    client.on('error', ignore);
    const release = client.release.bind(client);
    client.release = (destroy?: boolean | Error) => {
      client.removeListener('error', ignore);
      client.release = release;
      return release(destroy);
    };
    return client;
  }

  /** Runs steps in one REPEATABLE READ transaction (one snapshot). */
  async #read<T>(steps: Steps<T>): Promise<T> {
    const client = await this.#connect();
    let broken = false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const out = await runStepsAsync(steps, this.#runner(client));
      await client.query('COMMIT');
      return out;
    } catch (err) {
      broken = true;
      throw this.#failure(err, false);
    } finally {
      client.release(broken);
    }
  }

  /**
   * One write transaction: takes the fleet-wide write lock (the meta row),
   * runs `body`, and commits what it prepared (or rolls back when it
   * prepared nothing). A connection failure before COMMIT was sent certainly
   * did not commit; one during COMMIT may have.
   */
  async #write<T>(body: (run: AsyncRunner) => Promise<{ result: T; prepared?: PreparedCommit }>): Promise<T> {
    const client = await this.#connect();
    let sentCommit = false;
    let broken = false;
    let prepared: PreparedCommit | undefined;
    try {
      await client.query(`BEGIN; SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.#lockTimeoutMs))}`);
      const locked = await client.query(`${SQL.meta} FOR UPDATE`);
      if (locked.rowCount === 0) throw new KeyStoreCorruptError(this.url, 'its meta row is missing');
      const out = await body(this.#runner(client));
      prepared = out.prepared;
      if (!prepared) {
        await client.query('ROLLBACK');
        return out.result;
      }
      sentCommit = true;
      await client.query('COMMIT');
      this.replica.committed(prepared);
      prepared = undefined;
      return out.result;
    } catch (err) {
      if (prepared) this.replica.abandoned(prepared);
      if (isConnectionError(err)) broken = true;
      else if (!sentCommit) await client.query('ROLLBACK').catch(() => (broken = true));
      throw this.#failure(err, sentCommit);
    } finally {
      client.release(broken);
    }
  }

  async #open(): Promise<void> {
    try {
      await this.#migrate();
      const created = await this.#createIfMissing();
      await this.#listen();
      await this.#mutex.run(() => this.#read(catchUpSteps(this.replica)));
      if (this.replica.generation === undefined) throw new KeyStoreCorruptError(this.url, 'its meta row is missing');
      this.opened(created);
      if (this.replica.needsEncryption) await this.#mutex.run(() => this.#commit(() => undefined));
      this.#startPolling();
    } catch (err) {
      this.markClosed();
      clearTimeout(this.#reconnectTimer);
      await this.#disconnect();
      this.wipe();
      throw err;
    }
  }

  /** Brings the schema to SCHEMA_VERSION (kms_hmac_migrations), writing nothing when it is current. */
  async #migrate(): Promise<void> {
    const client = await this.#connect();
    let broken = false;
    try {
      const version = await client.query(SQL.schemaVersion).then(
        (r) => Number(r.rows[0]?.version ?? 0),
        (err: { code?: string }) => {
          if (err.code === '42P01') return 0; // no migrations table yet
          throw err;
        },
      );
      if (migrationStatements(this.url, version).length === 1) return;
      await client.query('BEGIN');
      await client.query(SETUP_LOCK);
      await client.query(pgSql(migrationStatements(this.url, 0)[0]![0]));
      const again = Number((await client.query(SQL.schemaVersion)).rows[0]?.version ?? 0);
      for (const [sql, params] of migrationStatements(this.url, again).slice(1)) await client.query(pgSql(sql), params);
      await client.query('COMMIT');
    } catch (err) {
      broken = true;
      throw this.#failure(err, false);
    } finally {
      client.release(broken);
    }
  }

  /** Creates the store (meta row, keys from the passphrase) if this database has none yet; whether it did. */
  async #createIfMissing(): Promise<boolean> {
    const client = await this.#connect();
    let broken = false;
    let prepared: PreparedCommit | undefined;
    try {
      if ((await client.query(SQL.meta)).rowCount) return false;
      await client.query('BEGIN');
      await client.query(SETUP_LOCK);
      if ((await client.query(SQL.meta)).rowCount === 0) {
        const req = this.replica.commitKeysNeeded(true);
        const keys = req?.keys(await deriveMaster(this.settings.passphrase!, req.kdf));
        prepared = this.replica.prepareCreate(keys ?? StoreKeys.unencrypted());
        for (const [sql, params] of pgCommit(prepared.plan)) await client.query(sql, params);
      }
      await client.query('COMMIT');
      return prepared !== undefined;
    } catch (err) {
      broken = true;
      throw this.#failure(err, false);
    } finally {
      if (prepared) this.replica.abandoned(prepared); // the first load reads it back like any other state
      client.release(broken);
    }
  }

  /** Opens the LISTEN connection; on loss, reconnects with backoff and reloads in full. */
  async #listen(): Promise<void> {
    const client = new (pgClient().Client)(this.#connection);
    client.on('error', () => this.#lostListener(client));
    client.on('end', () => this.#lostListener(client));
    client.on('notification', () => {
      this.#catchUpSoon().catch(() => {}); // noted by #catchUpSoon
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      throw this.#failure(err, false);
    }
    this.#listener = client;
  }

  #lostListener(client: pg.Client): void {
    if (this.#listener !== client) return;
    this.#listener = undefined;
    this.#downSince ??= Date.now();
    if (!this.closed)
      this.noteLoad(
        new KeyStoreUnavailableError(this.url, 'the connection to the database was lost; reconnecting', true),
      );
    client.removeAllListeners('end');
    client.end().catch(() => {});
    if (!this.closed) this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#listen().then(
        () => {
          this.#reconnectDelay = RECONNECT_MIN_MS;
          // Changes may have been missed while disconnected: reload everything.
          return this.#mutex
            .run(() => this.#read(catchUpSteps(this.replica, true)))
            .then(
              () => {
                this.#downSince = undefined;
                this.noteLoad();
              },
              (err: Error) => {
                this.#downSince = undefined;
                this.noteLoad(err);
              },
            );
        },
        () => {
          if (this.closed) return;
          this.#reconnectDelay = Math.min(this.#reconnectDelay * 2, RECONNECT_MAX_MS);
          this.#scheduleReconnect();
        },
      );
    }, this.#reconnectDelay);
    this.#reconnectTimer.unref();
  }

  /**
   * Asks the database every `pollIntervalMs` whether anything changed, so a
   * lost NOTIFY delays a change by at most that. (While the connection is
   * down, the reconnection reloads everything instead.)
   */
  #startPolling(): void {
    if (this.#pollMs === 0) return;
    this.#pollTimer = setInterval(() => {
      if (!this.closed && this.#downSince === undefined) this.#catchUpSoon().catch(() => {}); // noted by #catchUpSoon
    }, this.#pollMs);
    this.#pollTimer.unref();
  }

  /** A catch-up soon: one runs at a time, and a request arriving during one runs another after it. */
  #catchUpSoon(): Promise<boolean> {
    if (this.#pendingCatchUp) {
      this.#catchUpAgain = true;
      return this.#pendingCatchUp;
    }
    const run = async (): Promise<boolean> => {
      let changed = false;
      try {
        do {
          this.#catchUpAgain = false;
          if (this.closed) break;
          changed = (await this.#read(catchUpSteps(this.replica))) || changed;
        } while (this.#catchUpAgain);
      } catch (err) {
        this.noteLoad(err as Error);
        throw err;
      }
      this.noteLoad();
      return changed;
    };
    const p = this.#ready.then(() => this.#mutex.run(run));
    this.#pendingCatchUp = p;
    const clear = () => {
      if (this.#pendingCatchUp === p) this.#pendingCatchUp = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}
