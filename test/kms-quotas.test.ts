/**
 * AWS's resource quotas (issue 26): KMS keys per account and Region, aliases
 * per key, tags per key, each configurable, with AWS's defaults; past one,
 * LimitExceededException. GetParametersForImport is rate-limited per key
 * (AWS: one in a 4-second interval, ThrottlingException) and its RSA keys
 * are reused while they have half their validity left.
 */
import { createPublicKey } from 'node:crypto';
import { LimitExceededException } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { QUOTAS } from '../src/kms/quotas.js';
import { caught } from './caught.js';
import { startServe, signedCall, stopServe } from './server-helpers.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HMAC = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } as const;
const tags = (n: number, prefix = 't') =>
  Array.from({ length: n }, (_, i) => ({ TagKey: `${prefix}${i}`, TagValue: 'v' }));

describe('resource quotas', () => {
  it("AWS's defaults", () => {
    expect(QUOTAS).toEqual({ keys: 100_000, aliasesPerKey: 50, tagsPerKey: 50, getParametersForImportPerSecond: 0.25 });
    for (const bad of [{ keys: 0 }, { aliasesPerKey: 1.5 }, { tagsPerKey: -1 }, { getParametersForImportPerSecond: 0 }])
      expect(() => new KmsHmacClient({ quotas: bad }), JSON.stringify(bad)).toThrow(RangeError);
  });

  it('keys per account and Region, in any state (pending deletion too), importRemoteKey included', async () => {
    const client = new KmsHmacClient({ quotas: { keys: 3 } });
    const a = (await client.createKey(HMAC)).KeyMetadata;
    await client.createKey({ ...HMAC, Origin: 'EXTERNAL' });
    await client.scheduleKeyDeletion({ KeyId: a.KeyId, PendingWindowInDays: 7 });
    await client.createKey(HMAC);
    const e = await caught(client.createKey(HMAC));
    expect(e).toBeInstanceOf(LimitExceededException);
    expect(e.message).toBe('The request would exceed the quota of 3 KMS keys in this account and Region.');
    expect(e.$metadata.httpStatusCode).toBe(400);
    const remote = await caught(
      client.importRemoteKey({
        RemoteArn: 'arn:aws:kms:us-east-1:111122223333:key/0b9f7fd0-2b74-4d8b-8a3b-0c9c1d2f3e4f',
        KeySpec: 'HMAC_256',
        KeyMaterial: new Uint8Array(32),
      }),
    );
    expect(remote.name).toBe('LimitExceededException');
    expect((await client.listKeys()).Keys).toHaveLength(3);
  });

  it('aliases per key: CreateAlias, and UpdateAlias onto a key that has its quota', async () => {
    const client = new KmsHmacClient({ quotas: { aliasesPerKey: 2 } });
    const k = (await client.createKey(HMAC)).KeyMetadata;
    const other = (await client.createKey(HMAC)).KeyMetadata;
    await client.createAlias({ AliasName: 'alias/a', TargetKeyId: k.KeyId });
    await client.createAlias({ AliasName: 'alias/b', TargetKeyId: k.KeyId });
    let e = await caught(client.createAlias({ AliasName: 'alias/c', TargetKeyId: k.KeyId }));
    expect(e.name).toBe('LimitExceededException');
    expect(e.message).toBe(`The request would exceed the quota of 2 aliases for the KMS key ${k.Arn}.`);
    await client.createAlias({ AliasName: 'alias/c', TargetKeyId: other.KeyId });
    e = await caught(client.updateAlias({ AliasName: 'alias/c', TargetKeyId: k.KeyId }));
    expect(e.name).toBe('LimitExceededException');
    await client.updateAlias({ AliasName: 'alias/a', TargetKeyId: k.KeyId }); // already one of its two
    await client.deleteAlias({ AliasName: 'alias/b' });
    await client.updateAlias({ AliasName: 'alias/c', TargetKeyId: k.KeyId });
  });

  it('tags per key: in CreateKey, and after TagResource merges; replacing values at the quota is fine; 51 by default', async () => {
    const client = new KmsHmacClient({ quotas: { tagsPerKey: 3 } });
    let e = await caught(client.createKey({ ...HMAC, Tags: tags(4) }));
    expect(e.name).toBe('LimitExceededException');
    expect(e.message).toBe('The request would exceed the 3 tag limit for a KMS key.');
    const k = (await client.createKey({ ...HMAC, Tags: tags(3) })).KeyMetadata;
    await client.tagResource({ KeyId: k.KeyId, Tags: [{ TagKey: 't0', TagValue: 'new' }] });
    e = await caught(client.tagResource({ KeyId: k.KeyId, Tags: tags(1, 'x') }));
    expect(e.name).toBe('LimitExceededException');
    expect((await client.listResourceTags({ KeyId: k.KeyId })).Tags).toHaveLength(3);
    const byDefault = new KmsHmacClient();
    expect((await caught(byDefault.createKey({ ...HMAC, Tags: tags(51) }))).name).toBe('LimitExceededException');
    await byDefault.createKey({ ...HMAC, Tags: tags(50) });
  });
});

describe('GetParametersForImport', () => {
  const params = (client: KmsHmacClient, KeyId: string, WrappingKeySpec = 'RSA_2048') =>
    client.getParametersForImport({ KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec });
  const modulus = (der: Uint8Array) =>
    createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }).export({ format: 'jwk' }).n;

  it('one call per key every 4 seconds (ThrottlingException), per key; configurable', async () => {
    const t = { now: 1_900_000_000_000 };
    const client = new KmsHmacClient({ clock: () => t.now });
    const a = (await client.createKey({ ...HMAC, Origin: 'EXTERNAL' })).KeyMetadata;
    const b = (await client.createKey({ ...HMAC, Origin: 'EXTERNAL' })).KeyMetadata;
    await params(client, a.KeyId);
    const e = await caught(params(client, a.KeyId));
    expect(e.name).toBe('ThrottlingException');
    expect(e.message).toBe('You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.');
    await params(client, b.KeyId); // another key: its own quota
    t.now += 3_999;
    expect((await caught(params(client, a.KeyId))).name).toBe('ThrottlingException');
    t.now += 1;
    await params(client, a.KeyId);
    const fast = new KmsHmacClient({ clock: () => t.now, quotas: { getParametersForImportPerSecond: Infinity } });
    const c = (await fast.createKey({ ...HMAC, Origin: 'EXTERNAL' })).KeyMetadata;
    await params(fast, c.KeyId);
    await params(fast, c.KeyId);
  });

  it('reuses the RSA key (new token each time) while half its 24 h are left; another spec or algorithm gets its own', async () => {
    const t = { now: 1_900_000_000_000 };
    const client = new KmsHmacClient({ clock: () => t.now });
    const k = (await client.createKey({ ...HMAC, Origin: 'EXTERNAL' })).KeyMetadata;
    const first = await params(client, k.KeyId);
    t.now += 11 * 3_600_000;
    const again = await params(client, k.KeyId);
    expect(modulus(again.PublicKey)).toBe(modulus(first.PublicKey));
    expect(Buffer.from(again.ImportToken).equals(Buffer.from(first.ImportToken))).toBe(false);
    expect(again.ParametersValidTo).toEqual(first.ParametersValidTo); // the key's validity, not extended
    t.now += 2 * 3_600_000; // 13 h old: less than half left
    const fresh = await params(client, k.KeyId);
    expect(modulus(fresh.PublicKey)).not.toBe(modulus(first.PublicKey));
    expect(fresh.ParametersValidTo).toEqual(new Date(t.now + 24 * 3_600_000));
    t.now += 5_000;
    const other = await params(client, k.KeyId, 'RSA_3072');
    expect(
      createPublicKey({ key: Buffer.from(other.PublicKey), format: 'der', type: 'spki' }).asymmetricKeyDetails
        ?.modulusLength,
    ).toBe(3072);
  }, 60_000);
});

describe('kms-hmac serve quota flags', () => {
  it('--keys-quota and --import-parameters-rate reach the client; the errors keep their type on the wire', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-quotas-'));
    try {
      const child = await startServe(
        ['--keystore', join(dir, 'q.db'), '--keys-quota', '1', '--import-parameters-rate', '0.01'],
        dir,
        {
          KMS_HMAC_PASSPHRASE: '',
        },
      );
      try {
        const one = await signedCall(child.url, 'CreateKey', { ...HMAC, Origin: 'EXTERNAL' });
        expect(one.status).toBe(200);
        const two = await signedCall(child.url, 'CreateKey', HMAC);
        expect([two.status, two.json?.__type]).toEqual([400, 'LimitExceededException']);
        const KeyId = (one.json!.KeyMetadata as { KeyId: string }).KeyId;
        const p = { KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' };
        expect((await signedCall(child.url, 'GetParametersForImport', p)).status).toBe(200);
        const throttled = await signedCall(child.url, 'GetParametersForImport', p);
        expect([throttled.status, throttled.json?.__type]).toEqual([400, 'ThrottlingException']);
      } finally {
        await stopServe(child);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
