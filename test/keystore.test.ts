import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  FileKeyStore,
  KeyStoreCorruptError,
  KeyStoreLockTimeoutError,
  KeyStorePassphraseError,
  MemoryKeyStore,
  openKeyStore,
  type KeyStore,
} from '../src/keystore/index.js';
import { key, keyStoreContract } from './keystore-contract.js';
import { random } from './support/random.js';

const FAST_SCRYPT = { N: 1 << 10, r: 8, p: 1 };
let root: string;
const open: KeyStore[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'kms-hmac-ks-'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function track<T extends KeyStore>(s: T): T {
  open.push(s);
  return s;
}

function freshPath(): string {
  return join(mkdtempSync(join(root, 'd-')), 'sub', 'keys.json');
}

/** Edits a store file the way someone with file access but without the passphrase could. */
function edit(path: string, fn: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

/** Every byte of the store as it is on disk: the database and its WAL. */
function onDisk(path: string): Buffer {
  const dir = join(path, '..');
  return Buffer.concat(
    readdirSync(dir)
      .filter((n) => n.startsWith('keys.json'))
      .map((n) => readFileSync(join(dir, n))),
  );
}

const stores: [string, () => Promise<KeyStore>][] = [
  ['MemoryKeyStore', async () => track(new MemoryKeyStore())],
  ['FileKeyStore', async () => track(await FileKeyStore.open(freshPath(), { passphrase: null }))],
  [
    'FileKeyStore (encrypted)',
    async () => track(await FileKeyStore.open(freshPath(), { passphrase: 'pw', scrypt: FAST_SCRYPT })),
  ],
];

describe.each(stores)('%s', (_name, make) => keyStoreContract(make));

describe('openKeyStore', () => {
  test('undefined → memory, instance → itself, path → file', async () => {
    const m = openKeyStore(undefined);
    expect(m).toBeInstanceOf(MemoryKeyStore);
    expect(openKeyStore(m)).toBe(m);
    const path = freshPath();
    const f = track(openKeyStore(path, { passphrase: null }));
    expect(f).toBeInstanceOf(FileKeyStore);
    expect((f as FileKeyStore).path).toBe(path);
    expect(() => openKeyStore(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('FileKeyStore on disk', () => {
  test('creates the directory 0700 and the database 0600; nothing but the database is left after close', async () => {
    const path = freshPath();
    const s = await FileKeyStore.open(path, { passphrase: null });
    expect(s.created).toBe(true);
    await s.transact((tx) => tx.insertKey(key()));
    const dir = join(path, '..');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const n of readdirSync(dir)) expect([n, statSync(join(dir, n)).mode & 0o777]).toEqual([n, 0o600]);
    expect(readdirSync(dir).sort()).toEqual(['keys.json', 'keys.json-shm', 'keys.json-wal']);
    expect(readFileSync(path).subarray(0, 15).toString()).toBe('SQLite format 3');
    await s.close();
    expect(readdirSync(dir)).toEqual(['keys.json']);
    const again = track(await FileKeyStore.open(path, { passphrase: null }));
    expect(again.created).toBe(false);
  });

  test('reopen sees everything', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: null });
    const k1 = key();
    const k2 = key({
      origin: 'EXTERNAL',
      keyState: 'PendingImport',
      keyMaterial: undefined,
      importParameters: {
        tokenId: 't',
        wrappingAlgorithm: 'RSAES_OAEP_SHA_256',
        wrappingKeySpec: 'RSA_2048',
        privateKey: new Uint8Array(random.bytes(100)),
        expiresAt: 5,
      },
    });
    await a.transact((tx) => {
      tx.insertKey(k1);
      tx.insertKey(k2);
      tx.insertAlias({
        aliasName: 'alias/one',
        aliasArn: 'arn:one',
        targetKeyId: k1.keyId,
        creationDate: 3,
        lastUpdatedDate: 4,
      });
    });
    await a.close();
    expect(() => a.getKey(k1.keyId)).toThrow(/closed/);
    const b = track(await FileKeyStore.open(path, { passphrase: null }));
    const norm = (r: unknown) =>
      JSON.parse(JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
    expect(norm({ ...b.getKey(k1.keyId) })).toEqual(norm(k1));
    const got2 = b.getKey(k2.keyId)!;
    expect(norm({ ...got2, importParameters: { ...got2.importParameters } })).toEqual(norm(k2));
    expect(b.getAlias('alias/one')).toMatchObject({ targetKeyId: k1.keyId, lastUpdatedDate: 4 });
  });

  test('bad options are RangeErrors', async () => {
    await expect(FileKeyStore.open(freshPath(), { lockTimeoutMs: -1 })).rejects.toThrow(RangeError);
    await expect(FileKeyStore.open(freshPath(), { pollIntervalMs: Number.NaN })).rejects.toThrow(RangeError);
    await expect(FileKeyStore.open(freshPath(), { passphrase: 'x', scrypt: { N: 1000 } })).rejects.toThrow(RangeError);
  });

  test('a missing file is an empty store', async () => {
    const s = track(await FileKeyStore.open(freshPath(), { passphrase: null }));
    expect(s.listKeys()).toEqual([]);
  });

  const damage: [string, (path: string) => void][] = [
    ['truncation', (p) => writeFileSync(p, readFileSync(p).subarray(0, 4096 + 100))],
    ['garbage', (p) => writeFileSync(p, random.bytes(300))],
    ['an empty file', (p) => writeFileSync(p, '')],
    ['valid JSON of another shape', (p) => writeFileSync(p, '{"hello":1}')],
    [
      'a SQLite database of another program',
      (p) => {
        rmSync(p);
        edit(p, (db) => db.exec('CREATE TABLE t (x)'));
      },
    ],
    [
      'a changed tag',
      (p) => edit(p, (db) => db.prepare(`UPDATE kms_hmac_meta SET tag = ?`).run(random.bytes(32).toString('base64'))),
    ],
  ];
  test.each(damage)('%s → KeyStoreCorruptError, file left untouched', async (_n, corrupt) => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: null });
    await a.transact((tx) => {
      for (let i = 0; i < 40; i++) tx.insertKey(key());
    });
    await a.close();
    corrupt(path);
    const bad = readFileSync(path);
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toBeInstanceOf(KeyStoreCorruptError);
    expect(() => openKeyStore(path, { passphrase: null })).toThrow(KeyStoreCorruptError);
    expect(readFileSync(path).equals(bad)).toBe(true);
    expect(existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0).toBe(0); // nothing written on the side either
  });

  test('corruption appearing under a live store: reads keep the last good state, writes refuse, the store stays as it is', async () => {
    const path = freshPath();
    const s = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 0 }));
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    edit(path, (db) => {
      db.prepare(`UPDATE kms_hmac_keys SET body = replace(body, '"description":"d"', '"description":"e"')`).run();
      db.prepare(`UPDATE kms_hmac_meta SET generation = generation + 1`).run();
    });
    await expect(s.refresh()).rejects.toThrow(KeyStoreCorruptError);
    expect(s.getKey(k.keyId)!.description).toBe('d');
    await expect(s.transact((tx) => tx.insertKey(key()))).rejects.toBeInstanceOf(KeyStoreCorruptError);
    edit(path, (db) => expect(db.prepare('SELECT count(*) AS n FROM kms_hmac_keys').get()).toEqual({ n: 1 }));
  });

  test('passphrase round trip; material is not on disk in any encoding', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: 'correct horse', scrypt: FAST_SCRYPT });
    expect(a.encrypted).toBe(true);
    const k = key({
      importParameters: {
        tokenId: 't',
        wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
        wrappingKeySpec: 'RSA_2048',
        privateKey: random.bytes(200),
        expiresAt: 9,
      },
    });
    await a.transact((tx) => tx.insertKey(k));
    const check = () => {
      const raw = onDisk(path);
      for (const sec of [k.keyMaterial!, k.importParameters!.privateKey].map((b) => Buffer.from(b))) {
        expect(raw.includes(sec)).toBe(false);
        expect(raw.includes(Buffer.from(sec.toString('hex')))).toBe(false);
        expect(raw.includes(Buffer.from(sec.toString('base64')))).toBe(false);
        expect(raw.includes(Buffer.from(sec.subarray(0, 24).toString('base64')))).toBe(false);
      }
      expect(raw.toString('latin1')).toContain(k.keyId); // metadata stays readable
    };
    check(); // in the WAL
    await a.close();
    check(); // checkpointed into the database
    const b = track(await FileKeyStore.open(path, { passphrase: 'correct horse' }));
    expect(Buffer.from(b.getKey(k.keyId)!.keyMaterial!).equals(Buffer.from(k.keyMaterial!))).toBe(true);
    expect(
      Buffer.from(b.getKey(k.keyId)!.importParameters!.privateKey).equals(Buffer.from(k.importParameters!.privateKey)),
    ).toBe(true);
    // Sync open too (openKeyStore).
    const c = track(openKeyStore(path, { passphrase: 'correct horse' }) as FileKeyStore);
    expect(c.getKey(k.keyId)).toBeDefined();
  });

  test('wrong or missing passphrase → KeyStorePassphraseError, file byte-identical', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: 'right', scrypt: FAST_SCRYPT });
    await a.transact((tx) => tx.insertKey(key()));
    await a.close();
    const before = readFileSync(path);
    const mtime = statSync(path).mtimeMs;
    await expect(FileKeyStore.open(path, { passphrase: 'wrong' })).rejects.toBeInstanceOf(KeyStorePassphraseError);
    expect(() => FileKeyStore.openSync(path, { passphrase: 'wrong' })).toThrow(/wrong passphrase/);
    const err = await FileKeyStore.open(path, { passphrase: null }).catch((e) => e);
    expect(err).toBeInstanceOf(KeyStorePassphraseError);
    expect(err.message).toMatch(/encrypted.*KMS_HMAC_PASSPHRASE/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(statSync(path).mtimeMs).toBe(mtime);
    expect(readdirSync(join(path, '..')).sort()).toEqual(['keys.json']);
  });

  test('passphrase from KMS_HMAC_PASSPHRASE or KMS_HMAC_PASSPHRASE_FILE (not both)', async () => {
    const path = freshPath();
    const saved = { ...process.env };
    try {
      process.env.KMS_HMAC_PASSPHRASE = 'from-env';
      const a = await FileKeyStore.open(path, { scrypt: FAST_SCRYPT });
      expect(a.encrypted).toBe(true);
      await a.transact((tx) => tx.insertKey(key()));
      await a.close();
      delete process.env.KMS_HMAC_PASSPHRASE;
      const file = join(root, `pass-${randomUUID()}`);
      writeFileSync(file, 'from-env\n', { mode: 0o600 }); // one trailing newline is not part of the passphrase
      process.env.KMS_HMAC_PASSPHRASE_FILE = file;
      const b = track(await FileKeyStore.open(path));
      expect(b.listKeys()).toHaveLength(1);
      process.env.KMS_HMAC_PASSPHRASE = 'from-env';
      await expect(FileKeyStore.open(path)).rejects.toThrow(/not both/);
    } finally {
      delete process.env.KMS_HMAC_PASSPHRASE;
      delete process.env.KMS_HMAC_PASSPHRASE_FILE;
      Object.assign(process.env, saved);
    }
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toBeInstanceOf(KeyStorePassphraseError);
  });

  test("another process's commits are picked up in the background, and at once by refresh()", async () => {
    const path = freshPath();
    const reader = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 20 }));
    const writer = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 0 }));
    const k = key();
    const v = reader.version;
    const keep = key();
    await reader.transact((tx) => tx.insertKey(keep));
    const kept = reader.getKey(keep.keyId);
    await writer.transact((tx) => tx.insertKey(k));
    await new Promise((r) => setTimeout(r, 80));
    expect(reader.getKey(k.keyId)?.keyId).toBe(k.keyId);
    expect(reader.version).not.toBe(v);
    expect(reader.getKey(keep.keyId)).toBe(kept); // unchanged records keep their identity across catch-ups
    await writer.transact((tx) => tx.deleteKey(k.keyId));
    const quiet = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 0 }));
    await writer.transact((tx) => tx.insertKey(key()));
    expect(quiet.listKeys()).toHaveLength(1); // no background catch-up without polling
    expect(await quiet.refresh()).toBe(true);
    expect(quiet.listKeys()).toHaveLength(2);
    expect(await quiet.refresh()).toBe(false);
  });

  test('read-modify-write under the lock: two instances interleaving lose nothing', async () => {
    const path = freshPath();
    const a = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 0 }));
    const b = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 0 }));
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => {
        const id = randomUUID();
        ids.push(id);
        return (i % 2 ? a : b).transact((tx) => tx.insertKey(key({ keyId: id })));
      }),
    );
    await a.refresh();
    expect(new Set(a.listKeys().map((r) => r.keyId))).toEqual(new Set(ids));
  });

  test('a held lock makes a second writer wait (without blocking the event loop), then fail naming the holder', async () => {
    const path = freshPath();
    const a = track(await FileKeyStore.open(path, { passphrase: null }));
    const b = track(await FileKeyStore.open(path, { passphrase: null, lockTimeoutMs: 200 }));
    let release!: () => void;
    const held = a.transact(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 20));
    try {
      const t0 = Date.now();
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const err = await b.transact((tx) => tx.insertKey(key())).catch((e) => e);
      clearInterval(ticker);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
      expect(ticks).toBeGreaterThan(5);
      expect(err).toBeInstanceOf(KeyStoreLockTimeoutError);
      if (process.platform === 'linux') expect(err.message).toContain(`pid ${process.pid} (this process)`);
    } finally {
      release();
      await held;
    }
    // Once released, the waiter gets in.
    await b.transact((tx) => tx.insertKey(key()));
    expect(b.listKeys()).toHaveLength(1);
  });

  test('close() waits for queued transactions and refuses new ones', async () => {
    const s = await FileKeyStore.open(freshPath(), { passphrase: null });
    const p = s.transact(async (tx) => {
      await new Promise((r) => setTimeout(r, 20));
      tx.insertKey(key());
    });
    await s.close();
    await p;
    await expect(s.transact(() => undefined)).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  test('a user may loosen the mode; the store does not fight it', async () => {
    const path = freshPath();
    const s = track(await FileKeyStore.open(path, { passphrase: null }));
    chmodSync(path, 0o640);
    await s.transact((tx) => tx.insertKey(key()));
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });
});

describe('FileKeyStore version alone notices other processes', () => {
  test('a caller that only reads version (cache by version) sees another writer', async () => {
    const path = freshPath();
    const reader = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 20 }));
    const writer = track(await FileKeyStore.open(path, { passphrase: null }));
    const v = reader.version;
    await writer.transact((tx) => tx.insertKey(key()));
    await new Promise((r) => setTimeout(r, 80));
    expect(reader.version).not.toBe(v);
  });
});
