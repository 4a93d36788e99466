/**
 * Who may do what, in every Region: a principal's client in another Region
 * (forPrincipal and inRegion composed), a replica's own key policy
 * (ReplicateKey's Policy, or the default), ReplicateKey/UpdatePrimaryRegion
 * authorized, and accounts scoped per Region.
 */
import { describe, expect, it } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { caught } from './caught.js';

const A = '111122223333';
const B = '444455556666';
const ADMIN = `arn:aws:iam::${A}:user/admin`;
const SHIPPER = `arn:aws:iam::${A}:user/shipper`;
const MRK = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', MultiRegion: true } as const;
const ALG = 'HMAC_SHA_256';

function policy(...statements: object[]): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}
const allow = (principal: string, action: string | string[]) => ({
  Effect: 'Allow',
  Principal: { AWS: principal },
  Action: action,
  Resource: '*',
});

/** In us-east-1 the shipper may only GenerateMac; the eu-west-1 replica lets it only VerifyMac. */
async function replicatedWithPolicies() {
  const admin = new KmsHmacClient({ principal: ADMIN });
  const east = admin.inRegion('us-east-1');
  const { KeyMetadata } = await east.createKey({
    ...MRK,
    Policy: policy(allow(ADMIN, 'kms:*'), allow(SHIPPER, 'kms:GenerateMac')),
  });
  const keyId = KeyMetadata.KeyId;
  const replicaPolicy = policy(allow(ADMIN, 'kms:*'), allow(SHIPPER, 'kms:VerifyMac'));
  const { ReplicaKeyMetadata } = await east.replicateKey({
    KeyId: keyId,
    ReplicaRegion: 'eu-west-1',
    Policy: replicaPolicy,
  });
  return { admin, east, keyId, replicaArn: ReplicaKeyMetadata.Arn, replicaPolicy };
}

describe('principals in every Region', () => {
  it("a non-root principal's client in a second Region is that principal there, under the replica's policy", async () => {
    const { admin, keyId, replicaArn, replicaPolicy } = await replicatedWithPolicies();
    const shipper = admin.forPrincipal(SHIPPER);
    const shipperWest = shipper.inRegion('eu-west-1');
    expect(shipperWest.principal).toBe(SHIPPER);
    expect(shipperWest.region).toBe('eu-west-1');
    // The same view whichever way it is composed, and back home it is still the shipper.
    expect(admin.inRegion('eu-west-1').forPrincipal(SHIPPER).principal).toBe(SHIPPER);
    expect(shipperWest.inRegion('us-east-1').principal).toBe(SHIPPER);
    expect(shipper.inRegion('eu-west-1')).toBe(shipperWest);

    const msg = { KeyId: keyId, MacAlgorithm: ALG, Message: new TextEncoder().encode('line 1') } as const;
    const { Mac } = await shipper.generateMac(msg); // us-east-1: GenerateMac allowed
    // eu-west-1: the replica's policy, not the primary's.
    expect((await shipperWest.verifyMac({ ...msg, Mac })).MacValid).toBe(true);
    expect(shipperWest.verifyMacSync({ ...msg, Mac }).MacValid).toBe(true);
    const e = await caught(shipperWest.generateMac(msg));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toBe(
      `User: ${SHIPPER} is not authorized to perform: kms:GenerateMac on resource: ${replicaArn} because no resource-based policy allows the kms:GenerateMac action`,
    );
    expect(() => shipperWest.generateMacSync(msg)).toThrow(/kms:GenerateMac/);
    expect((await caught(shipper.verifyMac({ ...msg, Mac }))).name).toBe('AccessDeniedException');

    const west = admin.inRegion('eu-west-1');
    expect((await west.getKeyPolicy({ KeyId: keyId })).Policy).toBe(replicaPolicy);
    expect((await caught(shipperWest.getKeyRotationStatus({ KeyId: keyId }))).name).toBe('AccessDeniedException');
    expect(await west.getKeyRotationStatus({ KeyId: keyId })).toEqual({ KeyRotationEnabled: false, KeyId: replicaArn });
    await admin.close();
  });

  it('a replica without Policy gets the default key policy and none of the primary grants', async () => {
    const admin = new KmsHmacClient(); // the account's root
    const { KeyMetadata } = await admin.createKey({
      ...MRK,
      Policy: policy(allow(`arn:aws:iam::${A}:root`, 'kms:*'), allow(SHIPPER, 'kms:GenerateMac')),
    });
    const keyId = KeyMetadata.KeyId;
    await admin.createGrant({ KeyId: keyId, GranteePrincipal: SHIPPER, Operations: ['VerifyMac'] });
    await admin.replicateKey({ KeyId: keyId, ReplicaRegion: 'eu-west-1' });
    const west = admin.inRegion('eu-west-1');
    const defaultPolicy = JSON.parse((await west.getKeyPolicy({ KeyId: keyId })).Policy);
    expect(defaultPolicy.Id).toBe('key-default-1');
    expect((await west.listGrants({ KeyId: keyId })).Grants).toEqual([]);
    // The default policy's root statement allows every principal of the account (IAM taken to allow).
    const shipperWest = admin.forPrincipal(SHIPPER).inRegion('eu-west-1');
    const msg = { KeyId: keyId, MacAlgorithm: ALG, Message: new Uint8Array(3) } as const;
    expect((await shipperWest.generateMac(msg)).KeyId).toBe(KeyMetadata.Arn.replace('us-east-1', 'eu-west-1'));
    // Another account's principal: nothing in either Region.
    const other = admin.forPrincipal(`arn:aws:iam::${B}:user/x`).inRegion('eu-west-1');
    const arnWest = KeyMetadata.Arn.replace('us-east-1', 'eu-west-1');
    expect((await caught(other.generateMac({ ...msg, KeyId: arnWest }))).name).toBe('AccessDeniedException');
    await admin.close();
  });

  it('ReplicateKey and UpdatePrimaryRegion are authorized; the replica policy passes the lockout check', async () => {
    const { admin, east, keyId, replicaArn } = await replicatedWithPolicies();
    const shipper = admin.forPrincipal(SHIPPER);
    let e = await caught(shipper.replicateKey({ KeyId: keyId, ReplicaRegion: 'ap-south-1' }));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toContain('kms:ReplicateKey');
    e = await caught(shipper.updatePrimaryRegion({ KeyId: keyId, PrimaryRegion: 'eu-west-1' }));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toContain('kms:UpdatePrimaryRegion');
    // A replica policy that would lock the caller out is refused unless bypassed.
    e = await caught(
      east.replicateKey({ KeyId: keyId, ReplicaRegion: 'ap-south-1', Policy: policy(allow(SHIPPER, 'kms:*')) }),
    );
    expect(e.name).toBe('MalformedPolicyDocumentException');
    // UpdatePrimaryRegion needs the permission on the replica too.
    await admin.inRegion('eu-west-1').putKeyPolicy({
      KeyId: keyId,
      Policy: policy(allow(ADMIN, ['kms:PutKeyPolicy', 'kms:DescribeKey'])),
    });
    e = await caught(east.updatePrimaryRegion({ KeyId: keyId, PrimaryRegion: 'eu-west-1' }));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toContain(replicaArn);
    await admin.close();
  });

  it('ListKeys and ListAliases: the caller account in the client Region; alias names per account and Region', async () => {
    const a = new KmsHmacClient();
    const b = a.forPrincipal({ accountId: B });
    const { KeyMetadata: ka } = await a.createKey({ ...MRK });
    const { KeyMetadata: kb } = await b.createKey({ ...MRK });
    await a.createAlias({ AliasName: 'alias/app', TargetKeyId: ka.KeyId });
    await a.replicateKey({ KeyId: ka.KeyId, ReplicaRegion: 'eu-west-1' });
    await a.inRegion('eu-west-1').createAlias({ AliasName: 'alias/app', TargetKeyId: ka.KeyId });
    // Another account's alias of a name taken in the same Region is refused; in another Region it is its own.
    const e = await caught(b.createAlias({ AliasName: 'alias/app', TargetKeyId: kb.KeyId }));
    expect(e.name).toBe('AlreadyExistsException');
    await b.replicateKey({ KeyId: kb.KeyId, ReplicaRegion: 'ap-south-1' });
    await b.inRegion('ap-south-1').createAlias({ AliasName: 'alias/app', TargetKeyId: kb.KeyId });

    expect((await a.listKeys()).Keys.map((k) => k.KeyArn)).toEqual([ka.Arn]);
    expect((await b.listKeys()).Keys.map((k) => k.KeyArn)).toEqual([kb.Arn]);
    expect((await b.inRegion('eu-west-1').listKeys()).Keys).toEqual([]);
    expect((await b.inRegion('eu-west-1').listAliases()).Aliases).toEqual([]);
    const apAliases = (await b.inRegion('ap-south-1').listAliases()).Aliases;
    expect(apAliases.map((x) => x.AliasArn)).toEqual([`arn:aws:kms:ap-south-1:${B}:alias/app`]);
    expect((await a.inRegion('ap-south-1').listAliases()).Aliases).toEqual([]);
    // Each account's alias names its own key.
    const bAp = b.inRegion('ap-south-1');
    expect((await bAp.describeKey({ KeyId: 'alias/app' })).KeyMetadata.AWSAccountId).toBe(B);
    expect((await a.inRegion('eu-west-1').describeKey({ KeyId: 'alias/app' })).KeyMetadata.AWSAccountId).toBe(A);
    await a.close();
  });
});
