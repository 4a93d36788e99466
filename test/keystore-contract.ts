/**
 * The KeyStore contract: one suite, run against every store (memory, file,
 * file encrypted, PostgreSQL). `make` returns a fresh, empty store; the
 * caller closes it.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { expect, test } from 'vitest';
import { KeyStoreError, type KeyRecord, type KeyStore } from '../src/keystore/index.js';
import { random } from './support/random.js';

export function key(over: Partial<KeyRecord> = {}): KeyRecord {
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
    keyMaterial: new Uint8Array(random.bytes(32)),
    ...over,
  };
}

export function keyStoreContract(make: () => Promise<KeyStore>): void {
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
      tx.insertAlias({
        aliasName: 'alias/a',
        aliasArn: 'arn:a',
        targetKeyId: k.keyId,
        creationDate: 1,
        lastUpdatedDate: 1,
      }),
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
    const err = await s
      .transact((tx) => tx.insertKey({ ...k, description: 'other', keyMaterial: random.bytes(32) }))
      .catch((e) => e);
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
    await expect(s.transact((tx) => tx.insertKey({ ...key(), keyId: '' }))).rejects.toMatchObject({
      code: 'INVALID_RECORD',
    });
    await expect(
      s.transact((tx) => tx.insertKey({ ...key(), creationDate: new Date() as unknown as number })),
    ).rejects.toMatchObject({
      code: 'INVALID_RECORD',
    });
    await expect(
      s.transact((tx) => tx.insertKey({ ...key(), keyMaterial: 'abc' as unknown as Uint8Array })),
    ).rejects.toMatchObject({
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
      importParameters: {
        tokenId: 't',
        wrappingAlgorithm: 'RSAES_OAEP_SHA_256',
        wrappingKeySpec: 'RSA_2048',
        privateKey: random.bytes(64),
        expiresAt: 1,
      },
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
          await new Promise((r) => setTimeout(r, random.float() * 3));
          tx.insertKey(key({ keyId: id }));
        }),
      ),
    );
    expect(new Set(s.listKeys().map((r) => r.keyId))).toEqual(new Set(ids));
  });

  test('scheduled keys (deletion date or expiring material) are listed without a scan, in and out of transactions', async () => {
    const s = await make();
    const plain = key();
    const deleting = key({ keyState: 'PendingDeletion', deletionDate: 1_800_000_000_000 });
    const expiring = key({ origin: 'EXTERNAL', validTo: 1_800_000_000_000, expirationModel: 'KEY_MATERIAL_EXPIRES' });
    await s.transact((tx) => {
      tx.insertKey(plain);
      tx.insertKey(deleting);
      tx.insertKey(expiring);
      expect(
        tx.listScheduledKeys!()
          .map((r) => r.keyId)
          .sort(),
      ).toEqual([deleting.keyId, expiring.keyId].sort());
    });
    await s.transact((tx) => {
      tx.replaceKey({ ...tx.getKey(deleting.keyId)!, keyState: 'Disabled', deletionDate: undefined });
      tx.replaceKey({ ...tx.getKey(plain.keyId)!, validTo: 1, expirationModel: 'KEY_MATERIAL_EXPIRES' });
      tx.deleteKey(expiring.keyId);
      expect(tx.listScheduledKeys!().map((r) => r.keyId)).toEqual([plain.keyId]);
    });
    await s.transact((tx) => expect(tx.listScheduledKeys!().map((r) => r.keyId)).toEqual([plain.keyId]));
  });

  test('ready() resolves and refresh() reports no change when nothing happened elsewhere', async () => {
    const s = await make();
    await s.ready!();
    await s.transact((tx) => tx.insertKey(key()));
    expect(await s.refresh!()).toBe(false);
  });
}
