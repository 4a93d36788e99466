/**
 * FileKeyStore: a durable, crash-safe, optionally encrypted key store in one
 * JSON file (format: see format.ts).
 *
 * - Writes are atomic and durable: temp file in the same directory (0600) →
 *   fsync → rename over the store → fsync the directory. `transact` resolves
 *   only after that, so an acknowledged change survives a crash at any instant,
 *   and a crash leaves either the old or the new complete file.
 * - One writer at a time across processes: `<path>.lock` (lock.ts), held only
 *   while a transaction runs. Under the lock the file is re-read, so no other
 *   process's commit is lost (read-modify-write under lock).
 * - Reads are synchronous and served from memory. At most every
 *   `pollIntervalMs` (100 ms) a read stats the file and reloads it if another
 *   process replaced it; records that did not change keep their identity.
 * - A file that fails its checksum or cannot be parsed is reported as
 *   KeyStoreCorruptError and never overwritten. If a reload fails, reads keep
 *   serving the last good state and the next transact throws the error.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { KeyStoreCorruptError, KeyStoreError, KeyStorePassphraseError } from './errors.js';
import {
  type Cipher,
  DEFAULT_SCRYPT,
  type EncryptionHeader,
  type ParsedDoc,
  type ScryptParams,
  canonical,
  checkKey,
  decodeAlias,
  decodeKey,
  deriveKey,
  deriveKeySync,
  encodeAlias,
  encodeKey,
  newCipher,
  newCipherSync,
  parseDoc,
  sameKdf,
  serializeDoc,
} from './format.js';
import { FileLock } from './lock.js';
import { adoptKey, freezeAlias, secretBuffers } from './records.js';
import { Mutex, Snapshot, droppedSecrets, runTransaction, wipeLater } from './state.js';
import type { AliasRecord, KeyRecord, KeyStore, KeyStoreTransaction } from './types.js';

export const PASSPHRASE_ENV = 'KMS_HMAC_PASSPHRASE';

export interface FileKeyStoreOptions {
  /**
   * Encrypts key material at rest (scrypt → AES-256-GCM). Default: the
   * `KMS_HMAC_PASSPHRASE` environment variable when set and non-empty. `null`
   * means no passphrase even if the variable is set.
   */
  passphrase?: string | Uint8Array | null;
  /** How long `transact` waits for another writer's lock before KeyStoreLockTimeoutError. Default 10 000. */
  lockTimeoutMs?: number;
  /** How often reads check the file for other processes' commits. Default 100; 0 = only on refresh()/transact. */
  pollIntervalMs?: number;
  /** scrypt cost for a store encrypted from now on (existing stores keep theirs). Default N=2^15, r=8, p=1. */
  scrypt?: Partial<ScryptParams>;
}

interface Loaded {
  canon: string;
  record: KeyRecord;
}

interface LoadedAlias {
  canon: string;
  record: AliasRecord;
}

interface Encoded {
  canon: string;
  /** Which cipher produced it (undefined = plaintext). */
  cipher: Cipher | undefined;
}

const MISSING = 'missing';

function fileId(path: string): string {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return MISSING;
    throw err;
  }
}

function readOrMissing(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function fsyncDirSync(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function resolvePassphrase(p: FileKeyStoreOptions['passphrase']): Buffer | undefined {
  if (p === null) return undefined;
  if (p === undefined) {
    const env = process.env[PASSPHRASE_ENV];
    return env ? Buffer.from(env, 'utf8') : undefined;
  }
  if (typeof p === 'string') return p.length ? Buffer.from(p, 'utf8') : undefined;
  if (p instanceof Uint8Array) return p.byteLength ? Buffer.from(p) : undefined;
  throw new TypeError('passphrase must be a string, a Uint8Array or null');
}

export class FileKeyStore implements KeyStore {
  /** Absolute path of the store file. */
  readonly path: string;
  readonly #dir: string;
  readonly #lockPath: string;
  readonly #tmpPrefix: string;
  readonly #lockTimeoutMs: number;
  readonly #scrypt: ScryptParams;
  #passphrase: Buffer | undefined;
  /** Cipher used for writes and for the current file's secrets (undefined = plaintext store). */
  #cipher: Cipher | undefined;

  #state = Snapshot.empty();
  #version = 0;
  #keys = new Map<string, Loaded>();
  #aliases = new Map<string, LoadedAlias>();
  #encoded = new WeakMap<KeyRecord, Encoded>();
  #aliasEncoded = new WeakMap<AliasRecord, string>();
  #checksum: string | undefined; // of the loaded file; undefined = no file
  #generation = 0;
  #fileId = MISSING;
  /** The file needs rewriting on the next transact (missing, or plaintext while we have a passphrase). */
  #needsWrite = false;

  #due = false;
  #timer: NodeJS.Timeout | undefined;
  #mutex = new Mutex();
  #closed = false;
  #loadError: Error | undefined;
  #tempsCleaned = false;
  /** True while this instance holds the write lock: nobody else can change the file, and #write updates our state. */
  #locked = false;

  private constructor(path: string, options: FileKeyStoreOptions, passphrase: Buffer | undefined) {
    this.path = path;
    this.#dir = dirname(path);
    this.#lockPath = `${path}.lock`;
    this.#tmpPrefix = `.${basename(path)}.`;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this.#scrypt = { ...DEFAULT_SCRYPT, ...options.scrypt };
    this.#passphrase = passphrase;
    const poll = options.pollIntervalMs ?? 100;
    for (const [name, v] of [['lockTimeoutMs', this.#lockTimeoutMs], ['pollIntervalMs', poll]] as const) {
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a finite number >= 0`);
    }
    const { N, r, p } = this.#scrypt;
    if (!Number.isInteger(N) || N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) {
      throw new RangeError('scrypt: N must be a power of two in 2..2^20, r in 1..32, p in 1..16');
    }
    if (poll > 0) {
      this.#timer = setInterval(() => {
        this.#due = true;
      }, poll);
      this.#timer.unref();
    }
  }

  /** Opens (creating if missing) the store at `path`. scrypt runs off the main thread. */
  static async open(path: string, options: FileKeyStoreOptions = {}): Promise<FileKeyStore> {
    const passphrase = resolvePassphrase(options.passphrase);
    const abs = resolve(path);
    mkdirSync(dirname(abs), { recursive: true, mode: 0o700 });
    const store = new FileKeyStore(abs, options, passphrase);
    try {
      // Derive the key for an existing encrypted file (or a fresh salt) asynchronously, then load.
      const bytes = readOrMissing(abs);
      const doc = bytes ? parseDoc(abs, bytes) : undefined;
      if (passphrase && doc?.encryption) {
        const key = await deriveKey(passphrase, doc.encryption.kdf);
        store.#adoptCipher(doc.encryption, key);
      } else if (passphrase) {
        store.#cipher = await newCipher(passphrase, store.#scrypt);
      }
      store.#initialLoad();
      return store;
    } catch (err) {
      store.#dispose();
      throw err;
    }
  }

  /** Synchronous open (used by `openKeyStore(path)`); scrypt blocks for ~0.1 s when a passphrase is set. */
  static openSync(path: string, options: FileKeyStoreOptions = {}): FileKeyStore {
    const passphrase = resolvePassphrase(options.passphrase);
    const abs = resolve(path);
    mkdirSync(dirname(abs), { recursive: true, mode: 0o700 });
    const store = new FileKeyStore(abs, options, passphrase);
    try {
      store.#initialLoad();
      return store;
    } catch (err) {
      store.#dispose();
      throw err;
    }
  }

  /** Whether secrets are (or on the next write will be) encrypted at rest. */
  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  /**
   * Like the reads, checks (at most every pollIntervalMs) whether another
   * process replaced the file, so a caller that caches by version alone still
   * sees other processes' commits.
   */
  get version(): number {
    if (this.#due) this.#poll();
    return this.#version;
  }

  /** The error from the last failed background reload (reads keep the last good state), if any. */
  get lastLoadError(): Error | undefined {
    return this.#loadError;
  }

  getKey(keyId: string): KeyRecord | undefined {
    if (this.#due) this.#poll();
    return this.#state.keys.get(keyId);
  }

  listKeys(): KeyRecord[] {
    if (this.#due) this.#poll();
    return this.#state.listKeys();
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    if (this.#due) this.#poll();
    return this.#state.aliases.get(aliasName);
  }

  listAliases(): AliasRecord[] {
    if (this.#due) this.#poll();
    return this.#state.listAliases();
  }

  /**
   * Checks the file now and reloads it if another process changed it.
   * Returns whether the visible state changed. Throws KeyStoreCorruptError /
   * KeyStorePassphraseError if the new file cannot be loaded (the last good
   * state stays in place).
   */
  refresh(): boolean {
    this.#assertOpen();
    const id = fileId(this.path);
    if (id === this.#fileId) return false;
    const bytes = readOrMissing(this.path);
    const changed = this.#load(bytes);
    this.#fileId = id;
    this.#loadError = undefined;
    return changed;
  }

  transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new KeyStoreError('STORE_CLOSED', `key store ${this.path} is closed`));
    return this.#mutex.run(async () => {
      // Transactions queued before close() still run; close() waits for them.
      const lock = await FileLock.acquire(this.#lockPath, this.path, this.#lockTimeoutMs);
      this.#locked = true;
      try {
        if (!this.#tempsCleaned) await this.#removeTemps();
        // Read-modify-write under the lock: always start from what is on disk now.
        const bytes = await readFile(this.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        });
        this.#load(bytes);
        this.#fileId = fileId(this.path); // stable while we hold the lock
        this.#loadError = undefined;
        const base = this.#state;
        const { result, next } = await runTransaction(base, mutate);
        if (next || this.#needsWrite) await this.#write(next ?? base);
        return result;
      } finally {
        this.#locked = false;
        await lock.release();
      }
    });
  }

  /** Waits for queued transactions, stops polling, and zeroes the secrets this store holds. Reads throw afterwards. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#due = true; // routes the next read through #poll, which throws STORE_CLOSED
    await this.#mutex.idle();
    this.#dispose();
    const secrets: Uint8Array[] = [];
    for (const rec of this.#state.keys.values()) secrets.push(...secretBuffers(rec));
    wipeLater(secrets, 0);
    this.#state = Snapshot.empty();
    this.#keys.clear();
    this.#aliases.clear();
  }

  toJSON(): object {
    return {
      type: 'FileKeyStore',
      path: this.path,
      encrypted: this.encrypted,
      keys: this.#state.keys.size,
      aliases: this.#state.aliases.size,
      version: this.#version,
    };
  }

  toString(): string {
    return `FileKeyStore(${this.path}, ${this.#state.keys.size} keys, ${this.#state.aliases.size} aliases${this.encrypted ? ', encrypted' : ''})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  // ---- internals ----------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new KeyStoreError('STORE_CLOSED', `key store ${this.path} is closed`);
  }

  #dispose(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#cipher?.key.fill(0);
    this.#cipher = undefined;
    this.#passphrase?.fill(0);
    this.#passphrase = undefined;
  }

  #poll(): void {
    this.#due = false;
    this.#assertOpen();
    if (this.#locked) return;
    try {
      this.refresh();
    } catch (err) {
      if (err instanceof KeyStoreError && err.code === 'STORE_CLOSED') throw err;
      this.#loadError = err as Error; // keep serving the last good state; transact reports it
    }
  }

  #adoptCipher(header: EncryptionHeader, key: Buffer): void {
    if (!checkKey(key, header)) {
      key.fill(0);
      throw new KeyStorePassphraseError(this.path, 'wrong passphrase');
    }
    const old = this.#cipher;
    if (!old || !old.key.equals(key)) {
      this.#encoded = new WeakMap(); // ciphertexts under the old key no longer apply
      if (old && old.key !== key) old.key.fill(0);
    }
    this.#cipher = { header, key };
  }

  /** The cipher to read `doc` with (deriving synchronously if its salt is new to us). */
  #cipherFor(doc: ParsedDoc): Cipher | undefined {
    const enc = doc.encryption;
    if (!enc) {
      if (this.#passphrase && !this.#cipher) this.#cipher = newCipherSync(this.#passphrase, this.#scrypt);
      return undefined;
    }
    if (!this.#passphrase) {
      throw new KeyStorePassphraseError(
        this.path,
        `the store is encrypted; pass a passphrase or set ${PASSPHRASE_ENV}`,
      );
    }
    if (this.#cipher && sameKdf(this.#cipher.header.kdf, enc.kdf)) {
      if (this.#cipher.header !== enc && canonical(this.#cipher.header) !== canonical(enc)) {
        this.#adoptCipher(enc, this.#cipher.key);
      }
      return this.#cipher;
    }
    this.#adoptCipher(enc, deriveKeySync(this.#passphrase, enc.kdf));
    return this.#cipher;
  }

  #initialLoad(): void {
    for (let attempt = 0; ; attempt++) {
      const id = fileId(this.path);
      const bytes = readOrMissing(this.path);
      if (bytes) {
        this.#load(bytes);
        this.#fileId = id;
        return;
      }
      if (this.#passphrase && !this.#cipher) this.#cipher = newCipherSync(this.#passphrase, this.#scrypt);
      // Missing: create an empty store without taking the lock. link() fails
      // if another process created the file meanwhile; then load theirs.
      if (this.#createEmpty() || attempt >= 3) {
        this.#fileId = fileId(this.path);
        const now = readOrMissing(this.path);
        this.#load(now);
        if (!now) this.#needsWrite = true;
        return;
      }
    }
  }

  /** Atomically creates an empty store file if none exists. Returns false if one appeared meanwhile. */
  #createEmpty(): boolean {
    const { text } = serializeDoc(1, this.#cipher?.header ?? null, [], []);
    const tmp = join(this.#dir, `${this.#tmpPrefix}${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, this.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOENT') return false; // ENOENT: a writer's cleanup took our temp; retry
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      this.#needsWrite = true; // no hard links here: the first transact creates the file
      return true;
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
    fsyncDirSync(this.#dir);
    return true;
  }

  /**
   * Adopts the file contents `bytes` (undefined = no file). Builds everything
   * first and swaps at the end, so a failure leaves the current state intact.
   * Returns whether the visible state changed.
   */
  #load(bytes: Buffer | undefined): boolean {
    if (!bytes) {
      this.#needsWrite = true;
      if (this.#checksum === undefined && this.#state.keys.size === 0 && this.#state.aliases.size === 0) return false;
      this.#swap(Snapshot.empty(), new Map(), new Map(), undefined, 0);
      return true;
    }
    const doc = parseDoc(this.path, bytes);
    if (doc.checksum === this.#checksum) return false;
    const cipher = this.#cipherFor(doc);
    const keys = new Map<string, Loaded>();
    const fresh: Uint8Array[] = [];
    try {
      for (const { id, canon, entry } of doc.keys) {
        const prev = this.#keys.get(id);
        if (prev && prev.canon === canon) {
          keys.set(id, prev);
          continue;
        }
        const decoded = decodeKey(this.path, entry, cipher);
        let record: KeyRecord;
        try {
          record = adoptKey(decoded);
        } catch (err) {
          for (const b of secretBuffers(decoded)) b.fill(0);
          throw new KeyStoreCorruptError(this.path, `key ${id}: ${(err as Error).message}`);
        }
        fresh.push(...secretBuffers(record));
        keys.set(id, { canon, record });
        // Reuse the stored ciphertext on the next write when it was produced under our cipher.
        this.#encoded.set(record, { canon, cipher });
      }
    } catch (err) {
      for (const b of fresh) b.fill(0);
      throw err;
    }
    const aliases = new Map<string, LoadedAlias>();
    for (const { id, canon, entry } of doc.aliases) {
      const prev = this.#aliases.get(id);
      if (prev && prev.canon === canon) aliases.set(id, prev);
      else {
        let record: AliasRecord;
        try {
          record = freezeAlias(decodeAlias(this.path, entry));
        } catch (err) {
          throw new KeyStoreCorruptError(this.path, `alias ${id}: ${(err as Error).message}`);
        }
        aliases.set(id, { canon, record });
        this.#aliasEncoded.set(record, canon);
      }
    }
    const snap = new Snapshot(
      new Map([...keys].map(([k, v]) => [k, v.record])),
      new Map([...aliases].map(([k, v]) => [k, v.record])),
    );
    this.#needsWrite = this.#passphrase !== undefined && doc.encryption === null; // migrate to encrypted
    this.#swap(snap, keys, aliases, doc.checksum, doc.generation);
    return true;
  }

  #swap(
    snap: Snapshot,
    keys: Map<string, Loaded>,
    aliases: Map<string, LoadedAlias>,
    checksum: string | undefined,
    generation: number,
  ): void {
    const before = this.#state;
    this.#state = snap;
    this.#keys = keys;
    this.#aliases = aliases;
    this.#checksum = checksum;
    this.#generation = generation;
    this.#version++;
    wipeLater(droppedSecrets(before, snap));
  }

  async #removeTemps(): Promise<void> {
    // Under the lock no other writer is mid-write, so every temp file is debris from a crash.
    this.#tempsCleaned = true;
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.startsWith(this.#tmpPrefix) && n.endsWith('.tmp'))
        .map((n) => unlink(join(this.#dir, n)).catch(() => {})),
    );
  }

  async #write(next: Snapshot): Promise<void> {
    const cipher = this.#cipher;
    const keys = new Map<string, Loaded>();
    const keyCanons: string[] = [];
    for (const record of next.keys.values()) {
      let enc = this.#encoded.get(record);
      if (!enc || enc.cipher !== cipher) {
        enc = { canon: canonical(encodeKey(record, cipher)), cipher };
        this.#encoded.set(record, enc);
      }
      keyCanons.push(enc.canon);
      keys.set(record.keyId, { canon: enc.canon, record });
    }
    const aliases = new Map<string, LoadedAlias>();
    const aliasCanons: string[] = [];
    for (const record of next.aliases.values()) {
      let canon = this.#aliasEncoded.get(record);
      if (canon === undefined) {
        canon = canonical(encodeAlias(record));
        this.#aliasEncoded.set(record, canon);
      }
      aliasCanons.push(canon);
      aliases.set(record.aliasName, { canon, record });
    }
    const generation = this.#generation + 1;
    const { text, checksum } = serializeDoc(generation, cipher?.header ?? null, keyCanons, aliasCanons);

    const tmp = join(this.#dir, `${this.#tmpPrefix}${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fsyncDir(this.#dir);
    // Still under the lock: nobody else can have replaced the file since the rename.
    this.#fileId = fileId(this.path);
    this.#needsWrite = false;
    this.#swap(next, keys, aliases, checksum, generation);
  }
}
