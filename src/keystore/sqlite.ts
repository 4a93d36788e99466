/**
 * FileKeyStore's SQLite: the runtime's own `node:sqlite` (Node ≥ 22.16;
 * Bun and Deno provide it too), so the package installs no native code but
 * its own addon. This module is the one place that knows that API:
 *
 * - It is loaded on first use, not when the package is imported: a runtime
 *   without it can still use every other store, and opening a file store
 *   there is a KeyStoreUnavailableError that says what is missing, never a
 *   crash at import.
 * - Node 22 prints an ExperimentalWarning when `node:sqlite` is first
 *   loaded, at every run of the CLI and of every program using the file
 *   store. That one warning, and no other, is dropped while this module
 *   loads it (docs/key-stores.md says so). Warnings are still shown for
 *   anything else, and for `node:sqlite` loaded by other code first.
 * - Errors carry SQLite's result code as `errcode` (Node, Bun) or only its
 *   message (Deno); sqliteCode() turns either into SQLite's name for it.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { KeyStoreUnavailableError } from './errors.js';

export type { DatabaseSync, SQLInputValue, StatementSync };

type Sqlite = typeof import('node:sqlite');

const SQLITE_WARNING = /^SQLite is an experimental feature/;

let loaded: Sqlite | undefined;

/**
 * `node:sqlite`, loaded once without its ExperimentalWarning. Throws
 * KeyStoreUnavailableError, naming the store at `path`, where it is missing.
 */
export function loadSqlite(path: string): Sqlite {
  if (loaded) return loaded;
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const option = rest[0];
    const type = typeof option === 'string' ? option : (option as { type?: string } | undefined)?.type;
    const message = typeof warning === 'string' ? warning : warning?.message;
    if (type === 'ExperimentalWarning' && SQLITE_WARNING.test(String(message))) return;
    return (emitWarning as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  let mod: Sqlite | undefined;
  try {
    mod = process.getBuiltinModule?.('node:sqlite') as Sqlite | undefined;
  } finally {
    process.emitWarning = emitWarning;
  }
  // isTransaction (an accessor of each connection) is the newest part of the API this store relies on: Node 22.16.
  if (!mod || !('isTransaction' in new mod.DatabaseSync(':memory:', { open: false }))) {
    throw new KeyStoreUnavailableError(
      path,
      `the file key store needs node:sqlite as in Node ≥ 22.16 (or Bun, Deno), which this runtime (${runtime()}) does not provide; use a PostgreSQL or memory store here`,
      true,
    );
  }
  loaded = mod;
  return mod;
}

function runtime(): string {
  const v = process.versions as Record<string, string | undefined>;
  if (v.bun) return `Bun ${v.bun}`;
  if (v.deno) return `Deno ${v.deno}`;
  return `Node ${process.version}`;
}

/**
 * Opens a connection to `path` with a busy timeout. `mustExist`: fail
 * rather than create the file (SQLite's `mode=rw` URI parameter), so a store
 * removed meanwhile is an error, never an empty database in its place.
 */
export function openDatabase(path: string, { mustExist, timeoutMs }: { mustExist: boolean; timeoutMs: number }) {
  const { DatabaseSync } = loadSqlite(path);
  const target = mustExist ? new URL(`${pathToFileURL(path).href}?mode=rw`) : path;
  return new DatabaseSync(target, { timeout: timeoutMs });
}

/** The single value a pragma returns (`journal_mode`, `data_version`, …). */
export function pragma(db: DatabaseSync, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).get();
  return row ? Object.values(row)[0] : undefined;
}

/** Runs `fn` in a transaction (IMMEDIATE: the write lock taken at once); rolls back if it throws. */
export function transaction<T>(db: DatabaseSync, mode: 'DEFERRED' | 'IMMEDIATE', fn: () => T): T {
  db.exec(`BEGIN ${mode}`);
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/** SQLite's primary result codes this store tells apart, by number and by sqlite3_errstr() text. */
const CODES: [number, string, string][] = [
  [5, 'SQLITE_BUSY', 'database is locked'],
  [11, 'SQLITE_CORRUPT', 'database disk image is malformed'],
  [26, 'SQLITE_NOTADB', 'file is not a database'],
];

/** SQLite's name for the error's primary result code ('SQLITE_BUSY', …), or '' for anything else. */
export function sqliteCode(err: unknown): string {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (e?.code !== 'ERR_SQLITE_ERROR') return '';
  if (typeof e.errcode === 'number') return CODES.find(([n]) => n === (e.errcode as number) % 256)?.[1] ?? '';
  const message = String(e.message);
  return CODES.find(([, , text]) => message.startsWith(text))?.[1] ?? '';
}
