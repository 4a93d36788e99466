import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DescribeKeyCommand,
  GetKeyRotationStatusCommand,
  ReplicateKeyCommand,
  UpdateKeyDescriptionCommand,
  UpdatePrimaryRegionCommand,
} from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';
import { caught } from './caught.js';
import { PG_SKIP, usePostgres } from './postgres.js';
import { random } from './support/random.js';

const MRK = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', MultiRegion: true } as const;
const ACCOUNT = '111122223333';
const arn = (region: string, keyId: string) => `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`;
const DAY = 86_400_000;

const dir = mkdtempSync(join(tmpdir(), 'kms-mrk-'));
const FIXTURES = fileURLToPath(new URL('fixtures', import.meta.url));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A primary in us-east-1 replicated to eu-west-1: the two clients and the key id. */
async function replicated(client = new KmsHmacClient()) {
  const east = client.inRegion('us-east-1');
  const west = client.inRegion('eu-west-1');
  const { KeyMetadata } = await east.createKey({ ...MRK, Description: 'primary' });
  const keyId = KeyMetadata.KeyId;
  const out = await east.replicateKey({ KeyId: keyId, ReplicaRegion: 'eu-west-1', Description: 'replica' });
  return { client, east, west, keyId, out };
}

describe('multi-Region HMAC keys', () => {
  it('CreateKey MultiRegion: an mrk- key id and a PRIMARY configuration without replicas', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: md } = await client.createKey(MRK);
    expect(md.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(md.MultiRegion).toBe(true);
    expect(md.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'PRIMARY',
      PrimaryKey: { Arn: arn('us-east-1', md.KeyId), Region: 'us-east-1' },
      ReplicaKeys: [],
    });
    await client.close();
  });

  it('ReplicateKey: the replica has the key id, its own ARN, description and tags; both sides describe the set', async () => {
    const client = new KmsHmacClient();
    const east = client;
    const { KeyMetadata } = await east.createKey({ ...MRK, Description: 'primary' });
    const keyId = KeyMetadata.KeyId;
    const out = await east.replicateKey({
      KeyId: keyId,
      ReplicaRegion: 'eu-west-1',
      Description: 'replica',
      Tags: [{ TagKey: 'site', TagValue: 'dublin' }],
    });
    const config = {
      PrimaryKey: { Arn: arn('us-east-1', keyId), Region: 'us-east-1' },
      ReplicaKeys: [{ Arn: arn('eu-west-1', keyId), Region: 'eu-west-1' }],
    };
    expect(out.ReplicaTags).toEqual([{ TagKey: 'site', TagValue: 'dublin' }]);
    expect(out.ReplicaKeyMetadata).toMatchObject({
      KeyId: keyId,
      Arn: arn('eu-west-1', keyId),
      Description: 'replica',
      KeyState: 'Enabled',
      MultiRegion: true,
      MultiRegionConfiguration: { MultiRegionKeyType: 'REPLICA', ...config },
    });
    const west = client.inRegion('eu-west-1');
    expect((await west.describeKey({ KeyId: keyId })).KeyMetadata).toEqual(out.ReplicaKeyMetadata);
    const primary = (await east.describeKey({ KeyId: keyId })).KeyMetadata;
    expect(primary.Description).toBe('primary');
    expect(primary.MultiRegionConfiguration).toEqual({ MultiRegionKeyType: 'PRIMARY', ...config });
    // The same answers through send() with the SDK's commands.
    const viaSdk = await west.send(new DescribeKeyCommand({ KeyId: arn('eu-west-1', keyId) }));
    expect(viaSdk.KeyMetadata).toEqual(out.ReplicaKeyMetadata);
    expect((await west.listResourceTags({ KeyId: keyId })).Tags).toEqual([{ TagKey: 'site', TagValue: 'dublin' }]);
    expect((await east.listResourceTags({ KeyId: keyId })).Tags).toEqual([]);
    await client.close();
  });

  it('replicas share key material: a MAC from either Region verifies in the other, and equals node:crypto with the same key', async () => {
    const { client, east, west, keyId } = await replicated();
    const Message = random.bytes(100);
    const a = await east.generateMac({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message });
    const b = await west.generateMac({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message });
    expect(Buffer.from(a.Mac).equals(Buffer.from(b.Mac))).toBe(true);
    expect(a.KeyId).toBe(arn('us-east-1', keyId));
    expect(b.KeyId).toBe(arn('eu-west-1', keyId));
    expect((await west.verifyMac({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message, Mac: a.Mac })).MacValid).toBe(
      true,
    );
    expect((await east.verifyMac({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message, Mac: b.Mac })).MacValid).toBe(
      true,
    );
    await client.close();
  });

  it('each replica has its own key state: disabling the replica leaves the primary enabled', async () => {
    const { client, east, west, keyId } = await replicated();
    const input = { KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: random.bytes(8) };
    await west.disableKey({ KeyId: keyId });
    expect((await west.describeKey({ KeyId: keyId })).KeyMetadata.KeyState).toBe('Disabled');
    expect((await east.describeKey({ KeyId: keyId })).KeyMetadata.KeyState).toBe('Enabled');
    expect(await caught(west.generateMac(input))).toMatchObject({
      name: 'DisabledException',
      message: `${arn('eu-west-1', keyId)} is disabled.`,
    });
    expect((await east.generateMac(input)).Mac).toHaveLength(32);
    await client.close();
  });

  it('a key exists only in its Regions: a single-Region key and its aliases are not found elsewhere; ListKeys and ListAliases are per Region', async () => {
    const client = new KmsHmacClient();
    const west = client.inRegion('eu-west-1');
    const { KeyMetadata: k } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    await client.createAlias({ AliasName: 'alias/logs', TargetKeyId: k.KeyId });
    expect(await caught(west.describeKey({ KeyId: k.KeyId }))).toMatchObject({
      name: 'NotFoundException',
      message: `Key '${arn('eu-west-1', k.KeyId)}' does not exist`,
    });
    expect(await caught(west.describeKey({ KeyId: 'alias/logs' }))).toMatchObject({
      name: 'NotFoundException',
      message: `Alias arn:aws:kms:eu-west-1:${ACCOUNT}:alias/logs is not found.`,
    });
    // The same alias name in another Region is another alias, pointing to that Region's replica.
    const { KeyMetadata: m } = await client.createKey(MRK);
    await client.replicateKey({ KeyId: m.KeyId, ReplicaRegion: 'eu-west-1' });
    await west.createAlias({ AliasName: 'alias/logs', TargetKeyId: m.KeyId });
    expect((await west.describeKey({ KeyId: 'alias/logs' })).KeyMetadata.Arn).toBe(arn('eu-west-1', m.KeyId));
    expect((await client.describeKey({ KeyId: 'alias/logs' })).KeyMetadata.Arn).toBe(arn('us-east-1', k.KeyId));
    expect((await west.listKeys()).Keys).toEqual([{ KeyId: m.KeyId, KeyArn: arn('eu-west-1', m.KeyId) }]);
    expect((await client.listKeys()).Keys.map((x) => x.KeyArn).sort()).toEqual(
      [arn('us-east-1', k.KeyId), arn('us-east-1', m.KeyId)].sort(),
    );
    expect((await west.listAliases()).Aliases.map((a) => [a.AliasArn, a.TargetKeyId])).toEqual([
      [`arn:aws:kms:eu-west-1:${ACCOUNT}:alias/logs`, m.KeyId],
    ]);
    await west.deleteAlias({ AliasName: 'alias/logs' });
    expect((await client.describeKey({ KeyId: 'alias/logs' })).KeyMetadata.KeyId).toBe(k.KeyId);
    expect(await caught(west.createAlias({ AliasName: 'alias/x', TargetKeyId: k.KeyId }))).toMatchObject({
      name: 'NotFoundException',
    });
    await client.close();
  });

  it('UpdatePrimaryRegion swaps the key types, in every Region', async () => {
    const { client, east, west, keyId } = await replicated();
    await east.send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: 'eu-west-1' }));
    const config = {
      PrimaryKey: { Arn: arn('eu-west-1', keyId), Region: 'eu-west-1' },
      ReplicaKeys: [{ Arn: arn('us-east-1', keyId), Region: 'us-east-1' }],
    };
    expect((await west.describeKey({ KeyId: keyId })).KeyMetadata.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'PRIMARY',
      ...config,
    });
    expect((await east.describeKey({ KeyId: keyId })).KeyMetadata.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'REPLICA',
      ...config,
    });
    // The new primary replicates; the old one (now a replica) cannot.
    expect(await caught(east.replicateKey({ KeyId: keyId, ReplicaRegion: 'ap-south-1' }))).toMatchObject({
      name: 'UnsupportedOperationException',
      message: `${arn('us-east-1', keyId)} is not a multi-Region primary key.`,
    });
    await west.replicateKey({ KeyId: keyId, ReplicaRegion: 'ap-south-1' });
    expect(
      (await client.inRegion('ap-south-1').describeKey({ KeyId: keyId })).KeyMetadata.MultiRegionConfiguration,
    ).toEqual({
      MultiRegionKeyType: 'REPLICA',
      PrimaryKey: config.PrimaryKey,
      ReplicaKeys: [...config.ReplicaKeys, { Arn: arn('ap-south-1', keyId), Region: 'ap-south-1' }],
    });
    await client.close();
  });

  it('the errors AWS gives: own Region or an existing replica, single-Region keys, replicas, missing replica Regions', async () => {
    const { client, east, west, keyId } = await replicated();
    expect(await caught(east.replicateKey({ KeyId: keyId, ReplicaRegion: 'us-east-1' }))).toMatchObject({
      name: 'AlreadyExistsException',
    });
    expect(
      await caught(east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'eu-west-1' }))),
    ).toMatchObject({ name: 'AlreadyExistsException', message: `${arn('eu-west-1', keyId)} already exists.` });
    expect(await caught(west.replicateKey({ KeyId: keyId, ReplicaRegion: 'ap-south-1' }))).toMatchObject({
      name: 'UnsupportedOperationException',
      message: `${arn('eu-west-1', keyId)} is not a multi-Region primary key.`,
    });
    const { KeyMetadata: single } = await east.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(await caught(east.replicateKey({ KeyId: single.KeyId, ReplicaRegion: 'eu-west-1' }))).toMatchObject({
      name: 'UnsupportedOperationException',
      message: `${single.Arn} is not a multi-Region primary key.`,
    });
    expect(await caught(east.updatePrimaryRegion({ KeyId: keyId, PrimaryRegion: 'ap-south-1' }))).toMatchObject({
      name: 'NotFoundException',
      message: `Key '${arn('ap-south-1', keyId)}' does not exist`,
    });
    expect(await caught(east.replicateKey({ KeyId: keyId, ReplicaRegion: 'cn-north-1' }))).toMatchObject({
      name: 'UnsupportedOperationException',
    });
    expect(await caught(east.replicateKey({ KeyId: keyId, ReplicaRegion: 'Mars' }))).toMatchObject({
      name: 'ValidationException',
      message:
        "1 validation error detected: Value 'Mars' at 'replicaRegion' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$",
    });
    expect(await caught(east.replicateKey({ KeyId: keyId, ReplicaRegion: undefined }))).toMatchObject({
      name: 'ValidationException',
    });
    expect(await caught(east.replicateKey({ KeyId: `alias/x`, ReplicaRegion: 'ap-south-1' }))).toMatchObject({
      name: 'NotFoundException',
      message: "Invalid keyId 'alias/x'",
    });
    await east.disableKey({ KeyId: keyId });
    expect(await caught(east.replicateKey({ KeyId: keyId, ReplicaRegion: 'ap-south-1' }))).toMatchObject({
      name: 'DisabledException',
    });
    await client.close();
  });

  it('deletion: a primary with replicas is refused; a deleted replica leaves the set', async () => {
    const c = { now: Date.UTC(2026, 5, 1) };
    const { client, east, west, keyId } = await replicated(new KmsHmacClient({ clock: () => c.now }));
    expect(await caught(east.scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }))).toMatchObject({
      name: 'UnsupportedOperationException',
    });
    await west.createAlias({ AliasName: 'alias/w', TargetKeyId: keyId });
    await east.createAlias({ AliasName: 'alias/e', TargetKeyId: keyId });
    await west.scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 });
    expect((await east.describeKey({ KeyId: keyId })).KeyMetadata.KeyState).toBe('Enabled');
    c.now += 8 * DAY;
    await east.tagResource({ KeyId: keyId, Tags: [{ TagKey: 'a', TagValue: 'b' }] }); // a write applies the time rules
    expect(await caught(west.describeKey({ KeyId: keyId }))).toMatchObject({ name: 'NotFoundException' });
    expect((await east.describeKey({ KeyId: keyId })).KeyMetadata.MultiRegionConfiguration?.ReplicaKeys).toEqual([]);
    expect((await east.listAliases()).Aliases.map((a) => a.AliasName)).toEqual(['alias/e']);
    await east.scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 });
    // A new replica may take the Region again, after the old one is gone.
    await east.cancelKeyDeletion({ KeyId: keyId });
    await east.enableKey({ KeyId: keyId });
    await east.replicateKey({ KeyId: keyId, ReplicaRegion: 'eu-west-1' });
    expect((await west.describeKey({ KeyId: keyId })).KeyMetadata.KeyState).toBe('Enabled');
    await client.close();
  });

  it('imported material: the replica waits for the same material', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata } = await client.createKey({ ...MRK, Origin: 'EXTERNAL' });
    const out = await client.replicateKey({ KeyId: KeyMetadata.KeyId, ReplicaRegion: 'eu-west-1' });
    expect(out.ReplicaKeyMetadata).toMatchObject({ KeyState: 'PendingImport', Origin: 'EXTERNAL', Enabled: false });
    await client.close();
  });

  it('inRegion: the same client for the same Region, a RangeError for a malformed name', async () => {
    const client = new KmsHmacClient({ region: 'eu-west-1' });
    expect(client.inRegion('eu-west-1')).toBe(client);
    expect(client.inRegion('us-east-2')).toBe(client.inRegion('us-east-2'));
    expect(client.inRegion('us-east-2').region).toBe('us-east-2');
    expect(() => client.inRegion('../etc')).toThrow(RangeError);
    await client.close();
  });
});

describe('UpdateKeyDescription', () => {
  it('replaces the description, empty allowed; refused while pending deletion; validated as AWS', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(await client.send(new UpdateKeyDescriptionCommand({ KeyId: k.Arn, Description: 'logs of app' }))).toEqual({
      $metadata: expect.any(Object),
    });
    expect((await client.describeKey({ KeyId: k.KeyId })).KeyMetadata.Description).toBe('logs of app');
    await client.updateKeyDescription({ KeyId: k.KeyId, Description: '' });
    expect((await client.describeKey({ KeyId: k.KeyId })).KeyMetadata.Description).toBe('');
    await client.disableKey({ KeyId: k.KeyId });
    await client.updateKeyDescription({ KeyId: k.KeyId, Description: 'disabled' });
    expect(await caught(client.updateKeyDescription({ KeyId: k.KeyId, Description: 'x'.repeat(8193) }))).toMatchObject({
      name: 'ValidationException',
      message: `1 validation error detected: Value '${'x'.repeat(8193)}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192`,
    });
    expect(await caught(client.updateKeyDescription({ KeyId: k.KeyId, Description: undefined }))).toMatchObject({
      name: 'ValidationException',
      message:
        "1 validation error detected: Value null at 'description' failed to satisfy constraint: Member must not be null",
    });
    expect(await caught(client.updateKeyDescription({ KeyId: 'alias/x', Description: 'y' }))).toMatchObject({
      name: 'NotFoundException',
    });
    await client.scheduleKeyDeletion({ KeyId: k.KeyId });
    expect(await caught(client.updateKeyDescription({ KeyId: k.KeyId, Description: 'y' }))).toMatchObject({
      name: 'KMSInvalidStateException',
      message: `${k.Arn} is pending deletion.`,
    });
    await client.close();
  });
});

describe('GetKeyRotationStatus', () => {
  it('KeyRotationEnabled false for an HMAC key in every state; EnableKeyRotation stays refused', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey({ KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const out = await client.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId }));
    expect(out).toEqual({ KeyRotationEnabled: false, KeyId: k.Arn, $metadata: expect.any(Object) });
    await client.disableKey({ KeyId: k.KeyId });
    expect(await client.getKeyRotationStatus({ KeyId: k.Arn })).toEqual({ KeyRotationEnabled: false, KeyId: k.Arn });
    await client.scheduleKeyDeletion({ KeyId: k.KeyId });
    expect(await client.getKeyRotationStatus({ KeyId: k.KeyId })).toEqual({ KeyRotationEnabled: false, KeyId: k.Arn });
    expect(await caught(client.enableKeyRotation({ KeyId: k.KeyId }))).toMatchObject({
      name: 'KMSInvalidStateException',
    });
    const { KeyMetadata: k2 } = await client.createKey({ KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(await caught(client.enableKeyRotation({ KeyId: k2.KeyId }))).toMatchObject({
      name: 'UnsupportedOperationException',
    });
    expect(await caught(client.getKeyRotationStatus({ KeyId: 'alias/x' }))).toMatchObject({
      name: 'NotFoundException',
      message: "Invalid keyId 'alias/x'",
    });
    expect(await caught(client.getKeyRotationStatus({ KeyId: undefined }))).toMatchObject({
      name: 'ValidationException',
    });
    await client.close();
  });
});

const pg = usePostgres();

const stores: [string, () => Promise<string>][] = [['file', async () => join(mkdtempSync(join(dir, 'f-')), 'keys.db')]];
if (!PG_SKIP) stores.push(['postgres', () => pg.database()]);

describe.each(stores)('a %s store holds a primary and its replica under one key id', (_name, location) => {
  it('both records survive a reopen, encrypted, with their own state and one material', async () => {
    const keyStore = await location();
    const keyStoreOptions = { passphrase: 'correct horse battery staple', scrypt: { N: 1024 } };
    const { client, west, keyId } = await replicated(new KmsHmacClient({ keyStore, keyStoreOptions }));
    await client.ready();
    await west.disableKey({ KeyId: keyId });
    await west.createAlias({ AliasName: 'alias/r', TargetKeyId: keyId });
    await client.createAlias({ AliasName: 'alias/r', TargetKeyId: keyId });
    const Message = random.bytes(40);
    const mac = (await client.generateMac({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message })).Mac;
    await client.close();

    const again = new KmsHmacClient({ keyStore, keyStoreOptions });
    await again.ready();
    const west2 = again.inRegion('eu-west-1');
    expect((await west2.describeKey({ KeyId: 'alias/r' })).KeyMetadata).toMatchObject({
      KeyState: 'Disabled',
      Arn: arn('eu-west-1', keyId),
      MultiRegionConfiguration: { MultiRegionKeyType: 'REPLICA' },
    });
    await west2.enableKey({ KeyId: keyId });
    const again1 = await west2.generateMac({ KeyId: 'alias/r', MacAlgorithm: 'HMAC_SHA_256', Message });
    expect(Buffer.from(again1.Mac).equals(Buffer.from(mac))).toBe(true);
    expect((await again.describeKey({ KeyId: 'alias/r' })).KeyMetadata.KeyState).toBe('Enabled');
    // The replica's row is its own: its sealed material is bound to its store id.
    const ids = again.keyStore.listKeys().map((r) => [r.keyId, r.idRegion]);
    expect(ids).toEqual(
      expect.arrayContaining([
        [keyId, undefined],
        [keyId, 'eu-west-1'],
      ]),
    );
    await again.close();
  }, 60_000);
});

describe('a file store written before replicas existed (test/fixtures/keystore-main-96f04dd.*)', () => {
  it('opens unchanged: same keys, aliases and MACs; its multi-Region key replicates', async () => {
    const fixture = JSON.parse(readFileSync(join(FIXTURES, 'keystore-main-96f04dd.json'), 'utf8'));
    const keyStore = join(mkdtempSync(join(dir, 'fixture-')), 'keys.db');
    copyFileSync(join(FIXTURES, 'keystore-main-96f04dd.db'), keyStore);
    const keyStoreOptions = { passphrase: fixture.passphrase, scrypt: { N: 1024 } };
    const client = new KmsHmacClient({ keyStore, keyStoreOptions });
    const Message = Buffer.from(fixture.message, 'base64');
    const m = await client.generateMac({ KeyId: 'alias/mrk', MacAlgorithm: 'HMAC_SHA_256', Message });
    const s = await client.generateMac({ KeyId: 'alias/single', MacAlgorithm: 'HMAC_SHA_384', Message });
    expect(Buffer.from(m.Mac).toString('base64')).toBe(fixture.mrk.mac);
    expect(Buffer.from(s.Mac).toString('base64')).toBe(fixture.single.mac);
    expect(m.KeyId).toBe(arn('us-east-1', fixture.mrk.keyId));
    await client.replicateKey({ KeyId: fixture.mrk.keyId, ReplicaRegion: 'eu-west-1' });
    await client.close();
    const again = new KmsHmacClient({ keyStore, keyStoreOptions, region: 'eu-west-1' });
    const w = await again.generateMac({ KeyId: fixture.mrk.keyId, MacAlgorithm: 'HMAC_SHA_256', Message });
    expect(Buffer.from(w.Mac).toString('base64')).toBe(fixture.mrk.mac);
    expect(
      (await again.inRegion('us-east-1').describeKey({ KeyId: 'alias/mrk' })).KeyMetadata.MultiRegionConfiguration,
    ).toEqual({
      MultiRegionKeyType: 'PRIMARY',
      PrimaryKey: { Arn: arn('us-east-1', fixture.mrk.keyId), Region: 'us-east-1' },
      ReplicaKeys: [{ Arn: arn('eu-west-1', fixture.mrk.keyId), Region: 'eu-west-1' }],
    });
    await again.close();
  });
});
