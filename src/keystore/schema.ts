/**
 * The tables both durable stores keep (FileKeyStore on SQLite,
 * PostgresKeyStore), the statements that read and write them, and the
 * "steps" machinery that lets one piece of logic run on both databases.
 *
 *   kms_hmac_meta        one row: generation, encryption header (JSON or NULL), tag
 *   kms_hmac_keys        one row per key:   key_id, rev, body (codec.ts)
 *   kms_hmac_aliases     one row per alias: alias_name, rev, body
 *   kms_hmac_changes     (rev, kind, id) for every row written or deleted at generation rev
 *   kms_hmac_migrations  schema versions applied
 *
 * Steps: the logic that reads the store and derives keys is written once, as
 * generators that yield what they need (a query, or a key derived from the
 * passphrase). FileKeyStore runs them synchronously (better-sqlite3,
 * scryptSync), PostgresKeyStore asynchronously (pg, scrypt on the thread pool).
 */
import type { KdfHeader } from './crypto.js';
import { KeyStoreCorruptError } from './errors.js';

export const SCHEMA_VERSION = 1;
/** Generations the change log keeps; a replica further behind reloads in full. */
export const CHANGE_LOG_KEPT = 10_000;

/**
 * The schema, one statement per entry, valid SQL for both SQLite and
 * PostgreSQL. Index i holds migration i + 1.
 */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE kms_hmac_meta (id integer PRIMARY KEY CHECK (id = 1), generation bigint NOT NULL, encryption text, tag text NOT NULL)`,
    `CREATE TABLE kms_hmac_keys (key_id text PRIMARY KEY, rev bigint NOT NULL, body text NOT NULL)`,
    `CREATE TABLE kms_hmac_aliases (alias_name text PRIMARY KEY, rev bigint NOT NULL, body text NOT NULL)`,
    `CREATE TABLE kms_hmac_changes (rev bigint NOT NULL, kind text NOT NULL, id text NOT NULL, PRIMARY KEY (rev, kind, id))`,
  ],
];

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS kms_hmac_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)`;

/** Every statement the databases run, with `?` placeholders (PostgreSQL numbers them). Valid SQL for both. */
export const SQL = {
  schemaVersion: `SELECT max(version) AS version FROM kms_hmac_migrations`,
  recordMigration: `INSERT INTO kms_hmac_migrations (version, applied_at) VALUES (?, ?)`,
  meta: `SELECT generation, encryption, tag FROM kms_hmac_meta WHERE id = 1`,
  allKeys: `SELECT key_id AS id, rev, body FROM kms_hmac_keys`,
  allAliases: `SELECT alias_name AS id, rev, body FROM kms_hmac_aliases`,
  changedKeys:
    `SELECT c.id AS id, k.rev AS rev, k.body AS body FROM (SELECT DISTINCT id FROM kms_hmac_changes WHERE rev > ? AND kind = 'k') c ` +
    `LEFT JOIN kms_hmac_keys k ON k.key_id = c.id`,
  changedAliases:
    `SELECT c.id AS id, a.rev AS rev, a.body AS body FROM (SELECT DISTINCT id FROM kms_hmac_changes WHERE rev > ? AND kind = 'a') c ` +
    `LEFT JOIN kms_hmac_aliases a ON a.alias_name = c.id`,
  putKey: `INSERT INTO kms_hmac_keys (key_id, rev, body) VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET rev = excluded.rev, body = excluded.body`,
  deleteKey: `DELETE FROM kms_hmac_keys WHERE key_id = ?`,
  putAlias: `INSERT INTO kms_hmac_aliases (alias_name, rev, body) VALUES (?, ?, ?) ON CONFLICT (alias_name) DO UPDATE SET rev = excluded.rev, body = excluded.body`,
  deleteAlias: `DELETE FROM kms_hmac_aliases WHERE alias_name = ?`,
  logChange: `INSERT INTO kms_hmac_changes (rev, kind, id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
  pruneChanges: `DELETE FROM kms_hmac_changes WHERE rev <= ?`,
  insertMeta: `INSERT INTO kms_hmac_meta (id, generation, encryption, tag) VALUES (1, ?, ?, ?)`,
  updateMeta: `UPDATE kms_hmac_meta SET generation = ?, encryption = ?, tag = ? WHERE id = 1`,
} as const;

/** A row as the databases return it (a deleted row's LEFT JOIN gives null rev and body). */
interface SqlRow {
  id: string;
  rev: number | string | null;
  body: string | null;
}

/** Rows from a database: PostgreSQL returns bigint as a string. */
export function toRow(r: SqlRow): Row {
  return { id: r.id, rev: Number(r.rev), body: r.body! };
}

export function toChanged(r: SqlRow): ChangedRow {
  return { id: r.id, row: r.rev === null ? undefined : toRow(r) };
}

export function toMeta(
  r: { generation: number | string; encryption: string | null; tag: string } | undefined,
): MetaRow | undefined {
  return r && { generation: Number(r.generation), encryption: r.encryption, tag: r.tag };
}

/**
 * The statements of one commit in order, each with its parameters: rows,
 * deletions, the change log, pruning, the meta row. Both databases run exactly
 * these inside their write transaction.
 */
export function commitStatements(plan: CommitPlan): [string, unknown[]][] {
  const out: [string, unknown[]][] = [];
  const g = plan.generation;
  for (const r of plan.keys) out.push([SQL.putKey, [r.id, r.rev, r.body]], [SQL.logChange, [g, 'k', r.id]]);
  for (const id of plan.keyDeletes) out.push([SQL.deleteKey, [id]], [SQL.logChange, [g, 'k', id]]);
  for (const r of plan.aliases) out.push([SQL.putAlias, [r.id, r.rev, r.body]], [SQL.logChange, [g, 'a', r.id]]);
  for (const id of plan.aliasDeletes) out.push([SQL.deleteAlias, [id]], [SQL.logChange, [g, 'a', id]]);
  if (plan.pruneThrough > 0) out.push([SQL.pruneChanges, [plan.pruneThrough]]);
  const m = plan.meta;
  out.push(
    plan.insertMeta
      ? [SQL.insertMeta, [m.generation, m.encryption, m.tag]]
      : [SQL.updateMeta, [m.generation, m.encryption, m.tag]],
  );
  return out;
}

/**
 * The statements that bring a schema at version `from` (0: none) to
 * SCHEMA_VERSION, run inside one write transaction. Throws for a schema
 * newer than this build knows.
 */
export function migrationStatements(name: string, from: number): [string, unknown[]][] {
  if (from > SCHEMA_VERSION) {
    throw new KeyStoreCorruptError(
      name,
      `its schema version ${from} is newer than this kms-hmac understands (${SCHEMA_VERSION}); upgrade kms-hmac`,
    );
  }
  const out: [string, unknown[]][] = [[MIGRATIONS_TABLE, []]];
  for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
    for (const stmt of MIGRATIONS[v - 1]!) out.push([stmt, []]);
    out.push([SQL.recordMigration, [v, new Date().toISOString()]]);
  }
  return out;
}

export interface Row {
  id: string;
  rev: number;
  /** The record's JSON text (codec.ts). */
  body: string;
}

export interface MetaRow {
  generation: number;
  encryption: string | null;
  tag: string;
}

/** A row that changed since some generation: its current contents, or undefined when deleted. */
export interface ChangedRow {
  id: string;
  row: Row | undefined;
}

/** What a database read in one consistent snapshot. */
export type Fetched =
  | { kind: 'missing' }
  | { kind: 'current'; meta: MetaRow }
  | { kind: 'delta'; meta: MetaRow; keys: ChangedRow[]; aliases: ChangedRow[] }
  | { kind: 'full'; meta: MetaRow; keys: Row[]; aliases: Row[] };

/** What a commit writes, in one transaction (commitStatements). */
export interface CommitPlan {
  generation: number;
  keys: Row[];
  keyDeletes: string[];
  aliases: Row[];
  aliasDeletes: string[];
  meta: MetaRow;
  /** Change-log entries at or below this generation can go. */
  pruneThrough: number;
  /** The meta row does not exist yet (a new store). */
  insertMeta: boolean;
}

/** Whether `since` is close enough to `generation` for the change log to cover the gap. */
export function deltaCovers(since: number | undefined, generation: number): since is number {
  return since !== undefined && since >= 0 && since <= generation && generation - since <= CHANGE_LOG_KEPT;
}

export type Step = { sql: string; params: unknown[] } | { derive: KdfHeader };
export type Steps<T> = Generator<Step, T, unknown>;

export interface SyncRunner {
  query(sql: string, params: unknown[]): unknown[];
  derive(kdf: KdfHeader): Buffer;
}

export interface AsyncRunner {
  query(sql: string, params: unknown[]): Promise<unknown[]>;
  derive(kdf: KdfHeader): Promise<Buffer>;
}

export function runSteps<T>(steps: Steps<T>, run: SyncRunner): T {
  let r = steps.next();
  while (!r.done)
    r = steps.next('derive' in r.value ? run.derive(r.value.derive) : run.query(r.value.sql, r.value.params));
  return r.value;
}

export async function runStepsAsync<T>(steps: Steps<T>, run: AsyncRunner): Promise<T> {
  let r = steps.next();
  while (!r.done)
    r = steps.next(
      'derive' in r.value ? await run.derive(r.value.derive) : await run.query(r.value.sql, r.value.params),
    );
  return r.value;
}

function* query<R>(sql: string, params: unknown[] = []): Steps<R[]> {
  return (yield { sql, params }) as R[];
}

export function* derive(kdf: KdfHeader): Steps<Buffer> {
  return (yield { derive: kdf }) as Buffer;
}

/**
 * Reads the meta row, then (when the store moved past `since`) the change
 * log since then, or everything. Run it inside one transaction so that it
 * sees one snapshot.
 */
export function* fetchSteps(since: number | undefined): Steps<Fetched> {
  const meta = toMeta((yield* query<Parameters<typeof toMeta>[0]>(SQL.meta))[0]);
  if (!meta) return { kind: 'missing' };
  if (since === meta.generation) return { kind: 'current', meta };
  if (deltaCovers(since, meta.generation)) {
    const keys = (yield* query<SqlRow>(SQL.changedKeys, [since])).map(toChanged);
    const aliases = (yield* query<SqlRow>(SQL.changedAliases, [since])).map(toChanged);
    return { kind: 'delta', meta, keys, aliases };
  }
  const keys = (yield* query<SqlRow>(SQL.allKeys)).map(toRow);
  const aliases = (yield* query<SqlRow>(SQL.allAliases)).map(toRow);
  return { kind: 'full', meta, keys, aliases };
}
