import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  FileKeyStore,
  KeyStoreCorruptError,
  KeyStoreError,
  KeyStoreLockTimeoutError,
  KeyStorePassphraseError,
  MemoryKeyStore,
  openKeyStore,
  type KeyRecord,
  type KeyStore,
} from '../src/keystore/index.js';

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

function key(over: Partial<KeyRecord> = {}): KeyRecord {
  const keyId = over.keyId ?? randomUUID();
  return {
    keyId,
    arn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`,
    keySpec: 'HMAC_256',
    keyUsage: 'GENERATE_VERIFY_MAC',
    keyState: 'Enabled',
    origin: 'AWS_KMS',
    description: 'd',
    multiRegion: false,
    creationDate: 1_700_000_000_000,
    tags: [{ TagKey: 'team', TagValue: 'x' }],
    keyMaterial: new Uint8Array(randomBytes(32)),
    ...over,
  };
}

const stores: [string, () => Promise<KeyStore>][] = [
  ['MemoryKeyStore', async () => track(new MemoryKeyStore())],
  ['FileKeyStore', async () => track(await FileKeyStore.open(freshPath(), { passphrase: null }))],
  ['FileKeyStore (encrypted)', async () => track(await FileKeyStore.open(freshPath(), { passphrase: 'pw', scrypt: FAST_SCRYPT }))],
];

describe.each(stores)('%s', (_name, make) => {
  test('insert, get, list, replace, delete', async () => {
    const s = await make();
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    const got = s.getKey(k.keyId)!;
    expect(got.keyId).toBe(k.keyId);
    expect(Buffer.from(got.keyMaterial!).equals(Buffer.from(k.keyMaterial!))).toBe(true);
    expect(got.tags).toEqual(k.tags);
    expect(s.listKeys().map((r) => r.keyId)).toEqual([k.keyId]);

    await s.transact((tx) => tx.replaceKey({ ...tx.getKey(k.keyId)!, keyState: 'Disabled' }));
    expect(s.getKey(k.keyId)!.keyState).toBe('Disabled');

    await s.transact((tx) =>
      tx.insertAlias({ aliasName: 'alias/a', aliasArn: 'arn:a', targetKeyId: k.keyId, creationDate: 1, lastUpdatedDate: 1 }),
    );
    expect(s.getAlias('alias/a')!.targetKeyId).toBe(k.keyId);
    expect(s.listAliases()).toHaveLength(1);
    await s.transact((tx) => tx.replaceAlias({ ...tx.getAlias('alias/a')!, lastUpdatedDate: 2 }));
    expect(s.getAlias('alias/a')!.lastUpdatedDate).toBe(2);

    expect(await s.transact((tx) => tx.deleteAlias('alias/a'))).toBe(true);
    expect(await s.transact((tx) => tx.deleteAlias('alias/a'))).toBe(false);
    expect(await s.transact((tx) => tx.deleteKey(k.keyId))).toBe(true);
    expect(s.getKey(k.keyId)).toBeUndefined();
    expect(s.listKeys()).toEqual([]);
  });

  test('insert of an existing id throws and never overwrites', async () => {
    const s = await make();
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    const err = await s.transact((tx) => tx.insertKey({ ...k, description: 'other', keyMaterial: randomBytes(32) })).catch((e) => e);
    expect(err).toBeInstanceOf(KeyStoreError);
    expect(err.code).toBe('KEY_EXISTS');
    expect(s.getKey(k.keyId)!.description).toBe('d');
    expect(Buffer.from(s.getKey(k.keyId)!.keyMaterial!).equals(Buffer.from(k.keyMaterial!))).toBe(true);
    const a = { aliasName: 'alias/x', aliasArn: 'arn:x', targetKeyId: k.keyId, creationDate: 1, lastUpdatedDate: 1 };
    await s.transact((tx) => tx.insertAlias(a));
    await expect(s.transact((tx) => tx.insertAlias(a))).rejects.toMatchObject({ code: 'ALIAS_EXISTS' });
    await expect(s.transact((tx) => tx.replaceKey(key()))).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    await expect(s.transact((tx) => tx.replaceAlias({ ...a, aliasName: 'alias/none' }))).rejects.toMatchObject({
      code: 'ALIAS_NOT_FOUND',
    });
  });

  test('a throwing or rejecting mutation rolls everything back', async () => {
    const s = await make();
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    const v = s.version;
    await expect(
      s.transact((tx) => {
        tx.insertKey(key());
        tx.replaceKey({ ...k, keyState: 'Disabled' });
        tx.deleteKey(k.keyId);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(
      s.transact(async (tx) => {
        tx.insertKey(key());
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('later');
      }),
    ).rejects.toThrow('later');
    expect(s.listKeys().map((r) => r.keyId)).toEqual([k.keyId]);
    expect(s.getKey(k.keyId)!.keyState).toBe('Enabled');
    expect(s.version).toBe(v);
  });

  test('the transaction sees its own writes; the store sees them only after commit', async () => {
    const s = await make();
    const k = key();
    let tx2: unknown;
    await s.transact((tx) => {
      tx2 = tx;
      tx.insertKey(k);
      expect(tx.getKey(k.keyId)!.keyId).toBe(k.keyId);
      expect(tx.listKeys()).toHaveLength(1);
      expect(s.getKey(k.keyId)).toBeUndefined();
    });
    expect(s.getKey(k.keyId)).toBeDefined();
    expect(() => (tx2 as { getKey(id: string): unknown }).getKey(k.keyId)).toThrow(/finished/);
  });

  test('version changes on every commit, not on reads or no-op transactions', async () => {
    const s = await make();
    const v0 = s.version;
    await s.transact((tx) => tx.insertKey(key()));
    const v1 = s.version;
    expect(v1).not.toBe(v0);
    await s.transact((tx) => tx.listKeys());
    s.listKeys();
    expect(s.version).toBe(v1);
    await s.transact((tx) => tx.insertKey(key()));
    expect(s.version).not.toBe(v1);
  });

  test('records are frozen copies; callers cannot mutate the store by accident', async () => {
    const s = await make();
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    const mat = Buffer.from(k.keyMaterial!);
    k.keyMaterial!.fill(7); // the caller's buffer is not the store's
    k.tags.push({ TagKey: 'late', TagValue: 'y' });
    const got = s.getKey(k.keyId)!;
    expect(Buffer.from(got.keyMaterial!).equals(mat)).toBe(true);
    expect(got.tags).toHaveLength(1);
    expect(Object.isFrozen(got)).toBe(true);
    expect(Object.isFrozen(got.tags)).toBe(true);
    expect(Object.isFrozen(got.tags[0])).toBe(true);
    expect(() => {
      (got as { keyState: string }).keyState = 'Disabled';
    }).toThrow(TypeError);
    // Same object until the key changes (callers may cache by identity).
    expect(s.getKey(k.keyId)).toBe(got);
    s.listKeys().pop();
    expect(s.listKeys()).toHaveLength(1);
  });

  test('invalid records are rejected before anything is stored', async () => {
    const s = await make();
    await expect(s.transact((tx) => tx.insertKey({ ...key(), keyId: '' }))).rejects.toMatchObject({ code: 'INVALID_RECORD' });
    await expect(s.transact((tx) => tx.insertKey({ ...key(), creationDate: new Date() as unknown as number }))).rejects.toMatchObject({
      code: 'INVALID_RECORD',
    });
    await expect(s.transact((tx) => tx.insertKey({ ...key(), keyMaterial: 'abc' as unknown as Uint8Array }))).rejects.toMatchObject({
      code: 'INVALID_RECORD',
    });
    await expect(
      s.transact((tx) => tx.insertKey({ ...key(), extra: { $bytes: 'AAAA' } } as unknown as KeyRecord)),
    ).rejects.toMatchObject({ code: 'INVALID_RECORD' });
    expect(s.listKeys()).toEqual([]);
  });

  test('key material never appears in JSON, inspect or toString of records or the store', async () => {
    const s = await make();
    const k = key({
      importParameters: { tokenId: 't', wrappingAlgorithm: 'RSAES_OAEP_SHA_256', wrappingKeySpec: 'RSA_2048', privateKey: randomBytes(64), expiresAt: 1 },
    });
    await s.transact((tx) => tx.insertKey(k));
    const rec = s.getKey(k.keyId)!;
    const outputs = [
      JSON.stringify(rec),
      JSON.stringify(s.listKeys()),
      inspect(rec, { depth: 10 }),
      inspect(s, { depth: 10 }),
      JSON.stringify(s),
      String(s),
      `${rec.importParameters?.toString()}`,
      inspect(rec.importParameters, { depth: 10 }),
    ];
    const secrets = [k.keyMaterial!, k.importParameters!.privateKey].map((b) => Buffer.from(b));
    for (const out of outputs) {
      for (const sec of secrets) {
        expect(out).not.toContain(sec.toString('hex'));
        expect(out).not.toContain(sec.toString('base64'));
        expect(out).not.toContain(`${sec[0]}, ${sec[1]}, ${sec[2]}`);
        expect(out).not.toContain(`"0":${sec[0]}`);
      }
    }
    expect(JSON.stringify(rec)).toContain('[REDACTED]');
  });

  test('concurrent transactions in one process serialize and lose nothing', async () => {
    const s = await make();
    const ids = Array.from({ length: 20 }, () => randomUUID());
    await Promise.all(
      ids.map((id) =>
        s.transact(async (tx) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          tx.insertKey(key({ keyId: id }));
        }),
      ),
    );
    expect(new Set(s.listKeys().map((r) => r.keyId))).toEqual(new Set(ids));
  });
});

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
  test('creates the directory 0700 and the file 0600, and rewrites keep 0600', async () => {
    const path = freshPath();
    const s = track(await FileKeyStore.open(path, { passphrase: null }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    chmodSync(path, 0o644);
    await s.transact((tx) => tx.insertKey(key()));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // No temp files or lock left behind.
    expect(readdirSync(join(path, '..'))).toEqual(['keys.json']);
  });

  test('reopen sees everything', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: null });
    const k1 = key();
    const k2 = key({
      origin: 'EXTERNAL',
      keyState: 'PendingImport',
      keyMaterial: undefined,
      importParameters: { tokenId: 't', wrappingAlgorithm: 'RSAES_OAEP_SHA_256', wrappingKeySpec: 'RSA_2048', privateKey: new Uint8Array(randomBytes(100)), expiresAt: 5 },
    });
    await a.transact((tx) => {
      tx.insertKey(k1);
      tx.insertKey(k2);
      tx.insertAlias({ aliasName: 'alias/one', aliasArn: 'arn:one', targetKeyId: k1.keyId, creationDate: 3, lastUpdatedDate: 4 });
    });
    await a.close();
    expect(() => a.getKey(k1.keyId)).toThrow(/closed/);
    const b = track(await FileKeyStore.open(path, { passphrase: null }));
    const norm = (r: unknown) => JSON.parse(JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
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

  const corruptions: [string, (b: Buffer) => Buffer][] = [
    ['a flipped byte', (b) => {
      const c = Buffer.from(b);
      const i = c.indexOf('"description":"d"') + 16;
      c[i] ^= 0x01;
      return c;
    }],
    ['truncation', (b) => b.subarray(0, Math.floor(b.length * 0.6))],
    ['garbage', () => randomBytes(300)],
    ['an empty file', () => Buffer.alloc(0)],
    ['valid JSON of another shape', () => Buffer.from('{"hello":1}')],
    ['a changed checksum', (b) => Buffer.from(b.toString().replace(/"sha256:[0-9a-f]{4}/, '"sha256:0000'))],
  ];
  test.each(corruptions)('%s → KeyStoreCorruptError, file left untouched', async (_n, corrupt) => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: null });
    await a.transact((tx) => tx.insertKey(key()));
    await a.close();
    const bad = corrupt(readFileSync(path));
    writeFileSync(path, bad);
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toBeInstanceOf(KeyStoreCorruptError);
    expect(() => openKeyStore(path, { passphrase: null })).toThrow(KeyStoreCorruptError);
    expect(readFileSync(path).equals(bad)).toBe(true);
  });

  test('corruption appearing under a live store: reads keep the last good state, writes refuse, file untouched', async () => {
    const path = freshPath();
    const s = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 0 }));
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    writeFileSync(path, 'garbage');
    expect(() => s.refresh()).toThrow(KeyStoreCorruptError);
    expect(s.getKey(k.keyId)).toBeDefined();
    await expect(s.transact((tx) => tx.insertKey(key()))).rejects.toBeInstanceOf(KeyStoreCorruptError);
    expect(readFileSync(path, 'utf8')).toBe('garbage');
  });

  test('passphrase round trip; material is not on disk in any encoding', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: 'correct horse', scrypt: FAST_SCRYPT });
    expect(a.encrypted).toBe(true);
    const k = key({
      importParameters: { tokenId: 't', wrappingAlgorithm: 'RSAES_OAEP_SHA_1', wrappingKeySpec: 'RSA_2048', privateKey: randomBytes(200), expiresAt: 9 },
    });
    await a.transact((tx) => tx.insertKey(k));
    await a.close();
    const raw = readFileSync(path);
    for (const sec of [k.keyMaterial!, k.importParameters!.privateKey].map((b) => Buffer.from(b))) {
      expect(raw.includes(sec)).toBe(false);
      expect(raw.includes(Buffer.from(sec.toString('hex')))).toBe(false);
      expect(raw.includes(Buffer.from(sec.toString('base64')))).toBe(false);
      expect(raw.includes(Buffer.from(sec.subarray(0, 24).toString('base64')))).toBe(false);
    }
    expect(raw.toString()).toContain(k.keyId); // metadata stays readable
    const b = track(await FileKeyStore.open(path, { passphrase: 'correct horse' }));
    expect(Buffer.from(b.getKey(k.keyId)!.keyMaterial!).equals(Buffer.from(k.keyMaterial!))).toBe(true);
    expect(Buffer.from(b.getKey(k.keyId)!.importParameters!.privateKey).equals(Buffer.from(k.importParameters!.privateKey))).toBe(true);
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

  test('passphrase from KMS_HMAC_PASSPHRASE', async () => {
    const path = freshPath();
    const prev = process.env.KMS_HMAC_PASSPHRASE;
    process.env.KMS_HMAC_PASSPHRASE = 'from-env';
    try {
      const a = await FileKeyStore.open(path, { scrypt: FAST_SCRYPT });
      expect(a.encrypted).toBe(true);
      await a.transact((tx) => tx.insertKey(key()));
      await a.close();
      const b = track(await FileKeyStore.open(path));
      expect(b.listKeys()).toHaveLength(1);
    } finally {
      if (prev === undefined) delete process.env.KMS_HMAC_PASSPHRASE;
      else process.env.KMS_HMAC_PASSPHRASE = prev;
    }
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toBeInstanceOf(KeyStorePassphraseError);
  });

  test('a plaintext store opened with a passphrase is encrypted on the next write', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: null });
    const k = key();
    await a.transact((tx) => tx.insertKey(k));
    await a.close();
    const b = await FileKeyStore.open(path, { passphrase: 'p', scrypt: FAST_SCRYPT });
    expect(b.getKey(k.keyId)).toBeDefined();
    await b.transact(() => undefined);
    await b.close();
    expect(readFileSync(path).includes(Buffer.from(Buffer.from(k.keyMaterial!).toString('base64')))).toBe(false);
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toBeInstanceOf(KeyStorePassphraseError);
    const c = track(await FileKeyStore.open(path, { passphrase: 'p' }));
    expect(Buffer.from(c.getKey(k.keyId)!.keyMaterial!).equals(Buffer.from(k.keyMaterial!))).toBe(true);
  });

  test('a sealed value moved to another key fails authentication (corrupt, not silently accepted)', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: 'p', scrypt: FAST_SCRYPT });
    const k1 = key();
    const k2 = key();
    await a.transact((tx) => {
      tx.insertKey(k1);
      tx.insertKey(k2);
    });
    await a.close();
    // Swap the two sealed blobs and recompute the checksum: the GCM additional data (key id) must catch it.
    const { canonical, checksumOf } = await import('../src/keystore/format.js');
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    [doc.keys[0].keyMaterial, doc.keys[1].keyMaterial] = [doc.keys[1].keyMaterial, doc.keys[0].keyMaterial];
    delete doc.checksum;
    doc.checksum = checksumOf(doc);
    writeFileSync(path, canonical(doc));
    await expect(FileKeyStore.open(path, { passphrase: 'p' })).rejects.toThrow(/failed authentication/);
  });

  test('a well-formed file holding an invalid record is reported as corrupt', async () => {
    const path = freshPath();
    const a = await FileKeyStore.open(path, { passphrase: null });
    await a.transact((tx) => tx.insertKey(key()));
    await a.close();
    const { canonical, checksumOf } = await import('../src/keystore/format.js');
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    doc.keys[0].keyMaterial = 'not bytes';
    delete doc.checksum;
    doc.checksum = checksumOf(doc);
    writeFileSync(path, canonical(doc));
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toThrow(KeyStoreCorruptError);
  });

  test("another process's commits are picked up by sync reads within the poll interval", async () => {
    const path = freshPath();
    const reader = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 20 }));
    const writer = track(await FileKeyStore.open(path, { passphrase: null }));
    const k = key();
    const v = reader.version;
    const keep = key();
    await reader.transact((tx) => tx.insertKey(keep));
    const kept = reader.getKey(keep.keyId);
    await writer.transact((tx) => tx.insertKey(k));
    await new Promise((r) => setTimeout(r, 60));
    expect(reader.getKey(k.keyId)?.keyId).toBe(k.keyId);
    expect(reader.version).not.toBe(v);
    expect(reader.getKey(keep.keyId)).toBe(kept); // unchanged records keep their identity across reloads
    // refresh() forces a check.
    await writer.transact((tx) => tx.deleteKey(k.keyId));
    expect(reader.refresh()).toBe(true);
    expect(reader.getKey(k.keyId)).toBeUndefined();
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
    a.refresh();
    expect(new Set(a.listKeys().map((r) => r.keyId))).toEqual(new Set(ids));
  });

  test('a held lock makes a second writer wait, then fail with a clear error', async () => {
    const path = freshPath();
    const a = track(await FileKeyStore.open(path, { passphrase: null }));
    const b = track(await FileKeyStore.open(path, { passphrase: null, lockTimeoutMs: 200 }));
    let release!: () => void;
    const held = a.transact(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    const err = await b.transact((tx) => tx.insertKey(key())).catch((e) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(err).toBeInstanceOf(KeyStoreLockTimeoutError);
    expect(err.message).toContain(`pid ${process.pid}`);
    release();
    await held;
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
});

describe('FileKeyStore version alone notices other processes', () => {
  test('a caller that only reads version (cache by version) sees another writer', async () => {
    const path = freshPath();
    const reader = track(await FileKeyStore.open(path, { passphrase: null, pollIntervalMs: 20 }));
    const writer = track(await FileKeyStore.open(path, { passphrase: null }));
    const v = reader.version;
    await writer.transact((tx) => tx.insertKey(key()));
    await new Promise((r) => setTimeout(r, 60));
    expect(reader.version).not.toBe(v);
  });
});
