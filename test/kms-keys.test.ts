import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import {
  AlreadyExistsException,
  CreateKeyCommand,
  DescribeKeyCommand,
  ListKeysCommand,
  NotFoundException,
  ScheduleKeyDeletionCommand,
  UnsupportedOperationException,
} from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';

const HMAC = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } as const;
const DAY = 86_400_000;

function clockAt(start: number) {
  const c = { now: start, clock: () => c.now };
  return c;
}

describe('CreateKey / DescribeKey', () => {
  it('KeyMetadata of an HMAC key has exactly AWS members, in AWS order', async () => {
    const c = clockAt(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    const client = new KmsHmacClient({ clock: c.clock });
    const { KeyMetadata: md } = await client.createKey({ KeySpec: 'HMAC_512', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(md.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(md).toEqual({
      AWSAccountId: '111122223333',
      KeyId: md.KeyId,
      Arn: `arn:aws:kms:us-east-1:111122223333:key/${md.KeyId}`,
      CreationDate: new Date(c.now),
      Enabled: true,
      Description: '',
      KeyUsage: 'GENERATE_VERIFY_MAC',
      KeyState: 'Enabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'HMAC_512',
      KeySpec: 'HMAC_512',
      MacAlgorithms: ['HMAC_SHA_512'],
      MultiRegion: false,
    });
    expect(Object.keys(md)).toEqual([
      'AWSAccountId',
      'KeyId',
      'Arn',
      'CreationDate',
      'Enabled',
      'Description',
      'KeyUsage',
      'KeyState',
      'Origin',
      'KeyManager',
      'CustomerMasterKeySpec',
      'KeySpec',
      'MacAlgorithms',
      'MultiRegion',
    ]);
    for (const absent of [
      'EncryptionAlgorithms',
      'SigningAlgorithms',
      'KeyAgreementAlgorithms',
      'CurrentKeyMaterialId',
      'DeletionDate',
    ]) {
      expect(md).not.toHaveProperty(absent);
    }
    const d = await client.describeKey({ KeyId: md.Arn });
    expect(d.KeyMetadata).toEqual(md);
  });

  it('region and account are configurable; other partitions', async () => {
    const client = new KmsHmacClient({ region: 'cn-north-1', accountId: '123456789012' });
    const { KeyMetadata: md } = await client.createKey(HMAC);
    expect(md.Arn).toBe(`arn:aws-cn:kms:cn-north-1:123456789012:key/${md.KeyId}`);
    expect(md.AWSAccountId).toBe('123456789012');
  });

  it('each spec gets its algorithm and a key of the spec size', async () => {
    const client = new KmsHmacClient();
    for (const [spec, alg, len] of [
      ['HMAC_224', 'HMAC_SHA_224', 28],
      ['HMAC_256', 'HMAC_SHA_256', 32],
      ['HMAC_384', 'HMAC_SHA_384', 48],
      ['HMAC_512', 'HMAC_SHA_512', 64],
    ] as const) {
      const { KeyMetadata: md } = await client.createKey({
        KeySpec: spec,
        KeyUsage: 'GENERATE_VERIFY_MAC',
        Description: 'd',
      });
      expect(md.MacAlgorithms).toEqual([alg]);
      expect(md.Description).toBe('d');
      expect(client.keyStore.getKey(md.KeyId)!.keyMaterial!.length).toBe(len);
    }
  });

  it('deprecated CustomerMasterKeySpec works alone; MultiRegion gives an mrk- key', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: a } = await client.createKey({
      CustomerMasterKeySpec: 'HMAC_224',
      KeyUsage: 'GENERATE_VERIFY_MAC',
    });
    expect(a.KeySpec).toBe('HMAC_224');
    const { KeyMetadata: m } = await client.createKey({ ...HMAC, MultiRegion: true });
    expect(m.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(m.MultiRegion).toBe(true);
    expect(m.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'PRIMARY',
      PrimaryKey: { Arn: m.Arn, Region: 'us-east-1' },
      ReplicaKeys: [],
    });
    const out = await client.generateMac({ KeyId: m.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' });
    expect(out.KeyId).toBe(m.Arn);
  });

  it('CreateKey errors', async () => {
    const client = new KmsHmacClient();
    let e = await caught(client.createKey({ KeySpec: 'HMAC_256' }));
    expect(e.name).toBe('ValidationException');
    expect(e.message).toBe('You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.');
    e = await caught(client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'RANDOM' }));
    expect(e.message).toMatch(
      /^1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: \[ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC/,
    );
    e = await caught(client.createKey({ KeySpec: 'HMAC_999', KeyUsage: 'GENERATE_VERIFY_MAC' }));
    expect(e.message).toMatch(
      /^1 validation error detected: Value 'HMAC_999' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: \[RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512/,
    );
    e = await caught(client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'ENCRYPT_DECRYPT' }));
    expect(e.name).toBe('ValidationException');
    expect(e.message).toBe('KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec HMAC_256');
    e = await caught(client.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'GENERATE_VERIFY_MAC' }));
    expect(e.message).toBe('KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec RSA_2048');
    // non-HMAC keys: documented UnsupportedOperationException
    e = await caught(client.createKey());
    expect(e).toBeInstanceOf(UnsupportedOperationException);
    expect(e.message).toMatch(/KeySpec SYMMETRIC_DEFAULT is not supported/);
    e = await caught(client.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }));
    expect(e.name).toBe('UnsupportedOperationException');
    e = await caught(client.createKey({ ...HMAC, Origin: 'AWS_CLOUDHSM' }));
    expect(e.name).toBe('UnsupportedOperationException');
    e = await caught(client.createKey({ ...HMAC, Description: 'x'.repeat(8193) }));
    expect(e.message).toMatch(
      /at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192$/,
    );
    expect((await client.listKeys()).Keys).toHaveLength(0);
  });

  it('DescribeKey: aliases, not found', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: md } = await client.createKey(HMAC);
    await client.createAlias({ AliasName: 'alias/d', TargetKeyId: md.Arn });
    expect((await client.describeKey({ KeyId: 'alias/d' })).KeyMetadata.KeyId).toBe(md.KeyId);
    const e = await caught(client.describeKey({ KeyId: `arn:aws:kms:eu-central-1:111122223333:key/${md.KeyId}` }));
    expect(e).toBeInstanceOf(NotFoundException);
    expect(e.message).toBe('Invalid arn eu-central-1');
  });

  it('works through send() with SDK commands', async () => {
    const client = new KmsHmacClient();
    const out: any = await client.send(new CreateKeyCommand(HMAC));
    const d: any = await client.send(new DescribeKeyCommand({ KeyId: out.KeyMetadata.KeyId }));
    expect(d.KeyMetadata.CreationDate).toBeInstanceOf(Date);
    expect(d.$metadata.httpStatusCode).toBe(200);
    const l: any = await client.send(new ListKeysCommand({}));
    expect(l.Keys).toEqual([{ KeyId: out.KeyMetadata.KeyId, KeyArn: out.KeyMetadata.Arn }]);
    expect(l.Truncated).toBe(false);
  });
});

describe('ListKeys paging', () => {
  it('Limit / Marker / Truncated / NextMarker', async () => {
    const c = clockAt(1_700_000_000_000);
    const client = new KmsHmacClient({ clock: c.clock });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      c.now += 1000;
      ids.push((await client.createKey(HMAC)).KeyMetadata.KeyId);
    }
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await client.listKeys({ Limit: 3, ...(marker ? { Marker: marker } : {}) });
      pages++;
      seen.push(...page.Keys.map((k) => k.KeyId));
      expect(page.Truncated).toBe(page.NextMarker !== undefined);
      marker = page.NextMarker;
    } while (marker);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
    const all = await client.listKeys();
    expect(all.Keys).toHaveLength(7);
    expect(all).not.toHaveProperty('NextMarker');
    let e = await caught(client.listKeys({ Limit: 0 }));
    expect(e.message).toBe(
      "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    e = await caught(client.listKeys({ Limit: 1001 }));
    expect(e.message).toMatch(/less than or equal to 1000$/);
    e = await caught(client.listKeys({ Marker: 'garbage' }));
    expect(e.name).toBe('InvalidMarkerException');
  });
});

describe('aliases', () => {
  it('create, list, update, delete', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: a } = await client.createKey(HMAC);
    const { KeyMetadata: b } = await client.createKey(HMAC);
    await client.createAlias({ AliasName: 'alias/app/one_1-x', TargetKeyId: a.KeyId });
    const l = await client.listAliases();
    expect(l.Aliases).toHaveLength(1);
    expect(l.Aliases[0]).toEqual({
      AliasName: 'alias/app/one_1-x',
      AliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/app/one_1-x',
      TargetKeyId: a.KeyId,
      CreationDate: expect.any(Date),
      LastUpdatedDate: expect.any(Date),
    });
    expect(l.Truncated).toBe(false);
    await client.updateAlias({ AliasName: 'alias/app/one_1-x', TargetKeyId: b.Arn });
    const out = await client.generateMac({ KeyId: 'alias/app/one_1-x', MacAlgorithm: 'HMAC_SHA_256', Message: 'm' });
    expect(out.KeyId).toBe(b.Arn);
    expect((await client.listAliases({ KeyId: a.KeyId })).Aliases).toHaveLength(0);
    expect((await client.listAliases({ KeyId: b.KeyId })).Aliases).toHaveLength(1);
    await client.deleteAlias({ AliasName: 'alias/app/one_1-x' });
    expect((await client.listAliases()).Aliases).toHaveLength(0);
    const e = await caught(client.deleteAlias({ AliasName: 'alias/app/one_1-x' }));
    expect(e.name).toBe('NotFoundException');
    expect(e.message).toBe('Alias arn:aws:kms:us-east-1:111122223333:alias/app/one_1-x is not found.');
  });

  it('edge cases: prefix, characters, length, reserved, duplicates, target forms', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey(HMAC);
    let e = await caught(client.createAlias({ AliasName: 'noprefix', TargetKeyId: k.KeyId }));
    expect(e.name).toBe('ValidationException');
    expect(e.message).toBe(
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
    e = await caught(client.createAlias({ AliasName: 'alias/has space', TargetKeyId: k.KeyId }));
    expect(e.message).toBe(
      "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    );
    const long = `alias/${'a'.repeat(251)}`;
    e = await caught(client.createAlias({ AliasName: long, TargetKeyId: k.KeyId }));
    expect(e.message).toBe(
      `1 validation error detected: Value '${long}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256`,
    );
    await client.createAlias({ AliasName: `alias/${'a'.repeat(250)}`, TargetKeyId: k.KeyId });
    e = await caught(client.createAlias({ AliasName: 'alias/aws/s3', TargetKeyId: k.KeyId }));
    expect(e.name).toBe('NotAuthorizedException');
    e = await caught(client.createAlias({ AliasName: 'alias/my:alias', TargetKeyId: k.KeyId }));
    expect(e.name).toBe('ValidationException');
    expect(e.message).toBe('alias/my:alias contains invalid characters for an alias');
    await client.createAlias({ AliasName: 'alias/dup', TargetKeyId: k.KeyId });
    e = await caught(client.createAlias({ AliasName: 'alias/dup', TargetKeyId: k.KeyId }));
    expect(e).toBeInstanceOf(AlreadyExistsException);
    expect(e.message).toBe('An alias with the name arn:aws:kms:us-east-1:111122223333:alias/dup already exists');
    expect(e.$metadata.httpStatusCode).toBe(400);
    e = await caught(client.createAlias({ AliasName: 'alias/other', TargetKeyId: 'alias/dup' }));
    expect(e.name).toBe('NotFoundException');
    e = await caught(
      client.createAlias({ AliasName: 'alias/other', TargetKeyId: '99999999-9999-9999-9999-999999999999' }),
    );
    expect(e.message).toBe(
      "Key 'arn:aws:kms:us-east-1:111122223333:key/99999999-9999-9999-9999-999999999999' does not exist",
    );
    e = await caught(client.updateAlias({ AliasName: 'alias/missing', TargetKeyId: k.KeyId }));
    expect(e.message).toBe('Alias arn:aws:kms:us-east-1:111122223333:alias/missing is not found.');
  });

  it('ListAliases paging', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey(HMAC);
    for (let i = 0; i < 5; i++) await client.createAlias({ AliasName: `alias/a${i}`, TargetKeyId: k.KeyId });
    const p1 = await client.listAliases({ Limit: 2 });
    expect(p1.Aliases.map((a) => a.AliasName)).toEqual(['alias/a0', 'alias/a1']);
    expect(p1.Truncated).toBe(true);
    const p2 = await client.listAliases({ Limit: 10, Marker: p1.NextMarker! });
    expect(p2.Aliases.map((a) => a.AliasName)).toEqual(['alias/a2', 'alias/a3', 'alias/a4']);
    expect(p2.Truncated).toBe(false);
  });
});

describe('enable / disable / deletion lifecycle', () => {
  it('ScheduleKeyDeletion: window 7..30, default 30, metadata, cancel → Disabled, deletion after the window', async () => {
    const c = clockAt(1_800_000_000_000);
    const client = new KmsHmacClient({ clock: c.clock });
    const { KeyMetadata: k } = await client.createKey(HMAC);
    await client.createAlias({ AliasName: 'alias/doomed', TargetKeyId: k.KeyId });
    let e = await caught(client.scheduleKeyDeletion({ KeyId: k.KeyId, PendingWindowInDays: 6 }));
    expect(e.message).toBe(
      "1 validation error detected: Value '6' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 7",
    );
    e = await caught(client.scheduleKeyDeletion({ KeyId: k.KeyId, PendingWindowInDays: 31 }));
    expect(e.message).toMatch(/Member must have value less than or equal to 30$/);
    const s = await client.scheduleKeyDeletion({ KeyId: k.KeyId });
    expect(s).toEqual({
      KeyId: k.Arn,
      DeletionDate: new Date(c.now + 30 * DAY),
      KeyState: 'PendingDeletion',
      PendingWindowInDays: 30,
    });
    const md = (await client.describeKey({ KeyId: k.KeyId })).KeyMetadata;
    expect(md.KeyState).toBe('PendingDeletion');
    expect(md.Enabled).toBe(false);
    expect(md.DeletionDate).toEqual(new Date(c.now + 30 * DAY));
    e = await caught(client.scheduleKeyDeletion({ KeyId: k.KeyId }));
    expect(e.message).toBe(`${k.Arn} is pending deletion.`);
    e = await caught(client.enableKey({ KeyId: k.KeyId }));
    expect(e.name).toBe('KMSInvalidStateException');
    await client.cancelKeyDeletion({ KeyId: k.KeyId });
    const after = (await client.describeKey({ KeyId: k.KeyId })).KeyMetadata;
    expect(after.KeyState).toBe('Disabled');
    expect(after).not.toHaveProperty('DeletionDate');
    e = await caught(client.cancelKeyDeletion({ KeyId: k.KeyId }));
    expect(e.name).toBe('KMSInvalidStateException');

    await client.send(new ScheduleKeyDeletionCommand({ KeyId: k.Arn, PendingWindowInDays: 7 }));
    c.now += 7 * DAY - 1;
    expect((await client.describeKey({ KeyId: k.KeyId })).KeyMetadata.KeyState).toBe('PendingDeletion');
    c.now += 1;
    e = await caught(client.describeKey({ KeyId: k.KeyId }));
    expect(e.name).toBe('NotFoundException');
    expect(e.message).toBe(`Key '${k.Arn}' does not exist`);
    e = await caught(client.generateMac({ KeyId: 'alias/doomed', MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
    expect(e.name).toBe('NotFoundException');
    expect((await client.listKeys()).Keys).toHaveLength(0);
    // really deleted from the store (lazily), alias too
    await client.close();
    expect(client.keyStore.getKey(k.KeyId)).toBeUndefined();
    expect(client.keyStore.getAlias('alias/doomed')).toBeUndefined();
  });

  it('the hot path notices a deletion date passing without a store change', async () => {
    const c = clockAt(1_800_000_000_000);
    const client = new KmsHmacClient({ clock: c.clock });
    const { KeyMetadata: k } = await client.createKey(HMAC);
    await client.scheduleKeyDeletion({ KeyId: k.KeyId, PendingWindowInDays: 7 });
    await client.cancelKeyDeletion({ KeyId: k.KeyId });
    await client.enableKey({ KeyId: k.KeyId });
    client.generateMacSync({ KeyId: k.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' });
    await client.scheduleKeyDeletion({ KeyId: k.KeyId, PendingWindowInDays: 7 });
    c.now += 8 * DAY;
    const e = await caught(() =>
      client.generateMacSync({ KeyId: k.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }),
    );
    expect(e.name).toBe('NotFoundException');
  });

  it('management operations take a key ID or key ARN, not an alias', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey(HMAC);
    await client.createAlias({ AliasName: 'alias/m', TargetKeyId: k.KeyId });
    const e = await caught(client.disableKey({ KeyId: 'alias/m' }));
    expect(e.name).toBe('NotFoundException');
    expect(e.message).toBe("Invalid keyId 'alias/m'");
    await client.disableKey({ KeyId: k.Arn });
    expect((await client.describeKey({ KeyId: 'alias/m' })).KeyMetadata.Enabled).toBe(false);
  });
});

describe('tags and rotation', () => {
  it('TagResource / UntagResource / ListResourceTags', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey({ ...HMAC, Tags: [{ TagKey: 'a', TagValue: '1' }] });
    await client.tagResource({
      KeyId: k.KeyId,
      Tags: [
        { TagKey: 'b', TagValue: '2' },
        { TagKey: 'a', TagValue: '3' },
      ],
    });
    expect((await client.listResourceTags({ KeyId: k.Arn })).Tags).toEqual([
      { TagKey: 'a', TagValue: '3' },
      { TagKey: 'b', TagValue: '2' },
    ]);
    const p = await client.listResourceTags({ KeyId: k.KeyId, Limit: 1 });
    expect(p.Truncated).toBe(true);
    expect((await client.listResourceTags({ KeyId: k.KeyId, Marker: p.NextMarker! })).Tags).toEqual([
      { TagKey: 'b', TagValue: '2' },
    ]);
    await client.untagResource({ KeyId: k.KeyId, TagKeys: ['a'] });
    expect((await client.listResourceTags({ KeyId: k.KeyId })).Tags).toEqual([{ TagKey: 'b', TagValue: '2' }]);
    let e = await caught(client.tagResource({ KeyId: k.KeyId, Tags: [{ TagKey: 'aws:x', TagValue: '' }] }));
    expect(e.name).toBe('TagException');
    e = await caught(client.tagResource({ KeyId: k.KeyId, Tags: [{ TagKey: '', TagValue: '' }] }));
    expect(e.message).toBe(
      "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
  });

  it('EnableKeyRotation on an HMAC key → UnsupportedOperationException', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey(HMAC);
    const e = await caught(client.enableKeyRotation({ KeyId: k.KeyId }));
    expect(e).toBeInstanceOf(UnsupportedOperationException);
    expect(e.$metadata.httpStatusCode).toBe(400);
    const { EnableKeyRotationCommand } = await import('@aws-sdk/client-kms');
    const e2 = await caught(client.send(new EnableKeyRotationCommand({ KeyId: k.KeyId })));
    expect(e2.name).toBe('UnsupportedOperationException');
  });
});

describe('enum lists in validation messages', () => {
  it('hold exactly the values of the pinned @aws-sdk/client-kms model', async () => {
    const sdk = await import('@aws-sdk/client-kms');
    const v = await import('../src/kms/validation.js');
    const sorted = (values: Iterable<string>) => [...values].sort();
    expect(sorted(v.KEY_SPEC_ENUM)).toEqual(sorted(Object.values(sdk.KeySpec)));
    expect(sorted(v.KEY_USAGE_ENUM)).toEqual(sorted(Object.values(sdk.KeyUsageType)));
    expect(sorted(v.CUSTOMER_MASTER_KEY_SPEC_ENUM)).toEqual(sorted(Object.values(sdk.CustomerMasterKeySpec)));
    expect(sorted(v.ORIGIN_ENUM)).toEqual(sorted(Object.values(sdk.OriginType)));
    expect(sorted(v.WRAPPING_ALGORITHM_ENUM)).toEqual(sorted(Object.values(sdk.AlgorithmSpec)));
    expect(sorted(v.WRAPPING_KEY_SPEC_ENUM)).toEqual(sorted(Object.values(sdk.WrappingKeySpec)));
    expect(sorted(v.EXPIRATION_MODEL_ENUM)).toEqual(sorted(Object.values(sdk.ExpirationModelType)));
    expect(sorted(v.MAC_ALGORITHM_SET)).toEqual(sorted(Object.values(sdk.MacAlgorithmSpec)));
  });
});
