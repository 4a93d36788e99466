/**
 * Bringing a FileKeyStore path to a usable SQLite store: creating a new one,
 * or migrating a format-1 JSON file (legacy.ts) in place.
 *
 * Either way the new database is built completely in a temporary file next
 * to the store (created with O_EXCL under a random name, so it never follows
 * a planted symlink), made durable (closed, fsynced), and only then put at
 * the store's path: link() for a new store (fails if one appeared), rename()
 * over a JSON file (atomic: a crash leaves the JSON file or the finished
 * database, never a mix). The JSON file is kept until that rename.
 *
 * All of this runs under the setup lock `<store>.setup-lock`: an SQLite
 * database held with BEGIN EXCLUSIVE, i.e. an fcntl lock that the kernel
 * releases when its holder exits, however it exits. Under it no other setup
 * runs, so temporary files found there are debris from a crash and go. The
 * lock file is removed before the lock is released, once the store exists.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { StoreKeys, validEncryptionHeader, type KdfHeader } from './crypto.js';
import { KeyStoreCorruptError, KeyStoreLockTimeoutError, KeyStorePassphraseError } from './errors.js';
import { decodeLegacy, legacyCodec, looksLikeLegacy, parseLegacy, PLAIN_CODEC } from './legacy.js';
import { notEncrypted, passphraseNeeded, type ReplicaOptions } from './options.js';
import { aliasStoreId, keyStoreId } from './records.js';
import { Replica } from './replica.js';
import { commitStatements, derive, migrationStatements, type Steps } from './schema.js';
import { type DatabaseSync, openDatabase, type SQLInputValue, sqliteCode, transaction } from './sqlite.js';
import type { ChangeSet } from './state.js';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

export type PathKind = 'missing' | 'sqlite' | 'legacy' | 'other';

/** What is at the store path now. */
export function inspectPath(path: string): PathKind {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  try {
    const head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, 16, 0);
    if (n === 16 && head.equals(SQLITE_MAGIC)) return 'sqlite';
    return looksLikeLegacy(head.subarray(0, n)) ? 'legacy' : 'other';
  } finally {
    closeSync(fd);
  }
}

/** Opens a connection configured as every FileKeyStore connection is. */
export function connect(path: string, mustExist: boolean): DatabaseSync {
  const db = openDatabase(path, { mustExist, timeoutMs: 2_000 });
  db.exec('PRAGMA synchronous = FULL'); // in WAL mode: the WAL is fsynced at every commit, so an acknowledged commit survives power loss
  return db;
}

export function fsyncPath(path: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function tempPrefix(path: string): string {
  return `.${basename(path)}.`;
}

/** A new, empty, exclusively created temp file next to the store. */
function createTemp(path: string): string {
  const tmp = join(dirname(path), `${tempPrefix(path)}${randomBytes(8).toString('hex')}.tmp`);
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0);
  closeSync(openSync(tmp, flags, 0o600));
  return tmp;
}

function removeTemps(path: string): void {
  const prefix = tempPrefix(path);
  for (const n of readdirSync(dirname(path))) {
    if (n.startsWith(prefix) && /\.tmp(-wal|-shm|-journal)?$/.test(n)) {
      try {
        unlinkSync(join(dirname(path), n));
      } catch {
        /* gone already */
      }
    }
  }
}

/**
 * Holds the setup lock while `fn` runs; the lock file is removed before the
 * lock is released. A waiter whose lock file was removed meanwhile gets an
 * error from SQLite (or the lock on the removed file): if the setup it waited
 * for is done (the path is no longer `before`), `done` is its answer;
 * otherwise it takes a new lock file.
 */
function withSetupLock<T>(path: string, timeoutMs: number, before: PathKind, done: T, fn: () => T): T {
  const lockPath = `${path}.setup-lock`;
  for (let attempt = 0; ; attempt++) {
    const lock = openDatabase(lockPath, { mustExist: false, timeoutMs });
    try {
      try {
        lock.exec('BEGIN EXCLUSIVE');
      } catch (err) {
        if (inspectPath(path) !== before) return done;
        if (sqliteCode(err) === 'SQLITE_BUSY') {
          throw new KeyStoreLockTimeoutError(path, timeoutMs, 'another process creating or migrating it');
        }
        if (attempt < 3) continue;
        throw err;
      }
      try {
        return fn();
      } finally {
        try {
          unlinkSync(lockPath);
        } catch {
          /* already removed */
        }
      }
    } finally {
      lock.close();
    }
  }
}

/**
 * A setup killed after it placed the store, before it removed its lock file,
 * leaves that file behind. Whoever takes the lock at once removes it, as the
 * setup would have (nobody is in a setup then); a held lock is left alone.
 */
function removeLeftSetupLock(path: string): void {
  const lockPath = `${path}.setup-lock`;
  if (!existsSync(lockPath)) return;
  try {
    const lock = openDatabase(lockPath, { mustExist: false, timeoutMs: 0 });
    try {
      lock.exec('BEGIN EXCLUSIVE');
      unlinkSync(lockPath);
    } finally {
      lock.close();
    }
  } catch {
    /* held by a setup in progress, or not ours to remove (a read-only directory): it stays */
  }
}

/**
 * Makes `path` hold a SQLite key store. Yields the scrypt parameters whenever
 * it needs a key derived from the passphrase and expects the derived master
 * back. Returns whether this call created a new store (for the "unencrypted"
 * warning). Leaves a corrupt or unreadable JSON file untouched.
 */
export function* setupSteps(path: string, options: ReplicaOptions, lockTimeoutMs: number): Steps<boolean> {
  // The lock is synchronous; the derivations it may need are done first, outside it, from what the file holds now.
  const kind = inspectPath(path);
  if (kind === 'sqlite') {
    removeLeftSetupLock(path);
    return false;
  }
  if (kind === 'other') throw new KeyStoreCorruptError(path, 'it is neither a SQLite key store nor a JSON key store');
  let masters: Masters;
  if (kind === 'legacy') masters = yield* legacyMasters(path, options);
  else {
    const req = new Replica(options).commitKeysNeeded(true);
    masters = { create: req && { kdf: req.kdf, master: yield* derive(req.kdf) } };
  }
  try {
    return withSetupLock(path, lockTimeoutMs, kind, false, () => {
      const now = inspectPath(path);
      if (now === 'sqlite') return false;
      removeTemps(path);
      if (now === 'missing') {
        createStore(path, options, masters.create, undefined, (tmp) => linkSync(tmp, path));
        return true;
      }
      if (now === 'legacy') {
        migrateLegacy(path, options, masters);
        return false;
      }
      throw new KeyStoreCorruptError(path, 'it is neither a SQLite key store nor a JSON key store');
    });
  } finally {
    masters.create?.master.fill(0);
    masters.legacy?.fill(0);
  }
}

interface Masters {
  /** For a new store's keys (or the migrated store's, when it must be encrypted anew). */
  create?: { kdf: KdfHeader; master: Buffer } | undefined;
  /** The raw key of an encrypted format-1 file. */
  legacy?: Buffer;
}

function* legacyMasters(path: string, options: ReplicaOptions): Steps<Masters> {
  const doc = parseLegacy(path, readFileSync(path));
  if (doc.encryption) {
    if (!options.passphrase) throw passphraseNeeded(path);
    return { legacy: yield* derive(doc.encryption.kdf) };
  }
  if (!options.passphrase) return {};
  if (!options.encryptExisting) throw notEncrypted(path);
  const req = new Replica(options).commitKeysNeeded(true)!;
  return { create: { kdf: req.kdf, master: yield* derive(req.kdf) } };
}

/**
 * Builds a complete store in a temp file (schema, meta row, `changes` if
 * any), makes it durable, and hands it to `place`. The temp file is gone
 * afterwards whatever happens.
 */
function createStore(
  path: string,
  options: ReplicaOptions,
  create: { kdf: KdfHeader; master: Buffer } | undefined,
  changes: ChangeSet | undefined,
  place: (tmp: string) => void,
): void {
  const keys = create ? StoreKeys.create(create.kdf, Buffer.from(create.master)) : StoreKeys.unencrypted();
  const replica = new Replica(options);
  const prepared = replica.prepareCreate(keys, changes);
  const tmp = createTemp(path);
  try {
    const db = connect(tmp, true);
    try {
      db.exec('PRAGMA journal_mode = WAL');
      transaction(db, 'DEFERRED', () => {
        for (const [sql, params] of [...migrationStatements(path, 0), ...commitStatements(prepared.plan)])
          db.prepare(sql).run(...(params as SQLInputValue[]));
      });
    } finally {
      db.close(); // checkpoints the WAL into the file and removes it
    }
    fsyncPath(tmp);
    place(tmp);
    fsyncPath(dirname(path));
  } finally {
    replica.abandoned(prepared);
    try {
      unlinkSync(tmp);
    } catch {
      /* renamed */
    }
  }
}

function migrateLegacy(path: string, options: ReplicaOptions, masters: Masters): void {
  // Read again under the lock: the file may have changed since the derivations.
  const doc = parseLegacy(path, readFileSync(path));
  let codec = PLAIN_CODEC;
  let create = masters.create;
  if (doc.encryption) {
    if (!masters.legacy || !validEncryptionHeader(doc.encryption))
      throw new KeyStoreCorruptError(path, 'its encryption changed while it was being migrated');
    const c = legacyCodec(doc.encryption, masters.legacy);
    if (!c) throw new KeyStorePassphraseError(path, 'wrong passphrase');
    codec = c;
    // Same salt and scrypt cost: the format-1 key becomes the master of the new store.
    create = { kdf: doc.encryption.kdf, master: masters.legacy };
  } else if (options.passphrase && !create) {
    throw new KeyStorePassphraseError(path, 'the store was not encrypted when the passphrase was checked');
  }
  const records = decodeLegacy(path, doc, codec);
  const changes: ChangeSet = { keys: new Map(), aliases: new Map() };
  for (const k of records.keys) changes.keys.set(keyStoreId(k), k);
  for (const a of records.aliases) changes.aliases.set(aliasStoreId(a), a);
  try {
    createStore(path, options, create, changes, (tmp) => renameSync(tmp, path));
  } finally {
    for (const k of records.keys) {
      k.keyMaterial?.fill(0);
      k.importParameters?.privateKey.fill(0);
    }
  }
}
