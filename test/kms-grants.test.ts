import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import { KmsHmacClient } from '../src/client/client.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const A = '111122223333';
const ADMIN = `arn:aws:iam::${A}:user/admin`;
const SHIPPER = `arn:aws:iam::${A}:user/shipper`;
const HMAC = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } as const;
const ADMIN_ONLY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: ADMIN }, Action: 'kms:*', Resource: '*' }],
});

async function setup() {
  const admin = new KmsHmacClient({ principal: ADMIN });
  const { KeyMetadata } = await admin.createKey({ ...HMAC, Policy: ADMIN_ONLY });
  return { admin, keyId: KeyMetadata.KeyId, arn: KeyMetadata.Arn, shipper: admin.forPrincipal(SHIPPER) };
}

describe('grants', () => {
  it('a grant lets its grantee run its operations at once, with or without the token; revoked, it stops', async () => {
    const { admin, keyId, arn, shipper } = await setup();
    const msg = { KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };
    expect((await caught(shipper.generateMac(msg))).name).toBe('AccessDeniedException');
    const { GrantId, GrantToken } = await admin.createGrant({
      KeyId: keyId,
      GranteePrincipal: SHIPPER,
      Operations: ['GenerateMac'],
      Name: 'ship',
    });
    expect(GrantId).toMatch(/^[0-9a-f]{64}$/);
    const withToken = await shipper.generateMac({ ...msg, GrantTokens: [GrantToken] });
    expect(withToken.KeyId).toBe(arn);
    expect((await shipper.generateMac(msg)).Mac).toEqual(withToken.Mac);
    // Only the granted operation.
    expect((await caught(shipper.verifyMac({ ...msg, Mac: withToken.Mac }))).name).toBe('AccessDeniedException');
    expect((await caught(shipper.describeKey({ KeyId: keyId }))).name).toBe('AccessDeniedException');

    const { Grants } = await admin.listGrants({ KeyId: keyId });
    expect(Grants).toEqual([
      {
        KeyId: arn,
        GrantId,
        Name: 'ship',
        CreationDate: expect.any(Date),
        GranteePrincipal: SHIPPER,
        IssuingAccount: `arn:aws:iam::${A}:root`,
        Operations: ['GenerateMac'],
      },
    ]);
    // The same named grant again: the same grant.
    const again = await admin.createGrant({
      KeyId: keyId,
      GranteePrincipal: SHIPPER,
      Operations: ['GenerateMac'],
      Name: 'ship',
    });
    expect(again.GrantId).toBe(GrantId);

    await admin.revokeGrant({ KeyId: keyId, GrantId });
    expect((await caught(shipper.generateMac(msg))).name).toBe('AccessDeniedException');
    expect((await caught(() => shipper.generateMacSync(msg))).name).toBe('AccessDeniedException');
    // Its token names a grant that is gone.
    expect((await caught(shipper.generateMac({ ...msg, GrantTokens: [GrantToken] }))).name).toBe(
      'InvalidGrantTokenException',
    );
    expect((await caught(admin.revokeGrant({ KeyId: keyId, GrantId }))).name).toBe('NotFoundException');
    expect((await admin.listGrants({ KeyId: keyId })).Grants).toEqual([]);
    await admin.close();
  });

  it('garbled tokens are InvalidGrantTokenException; CreateGrant checks operations and refuses constraints', async () => {
    const { admin, keyId, shipper } = await setup();
    const msg = { KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };
    expect((await caught(admin.generateMac({ ...msg, GrantTokens: ['garbled'] }))).name).toBe(
      'InvalidGrantTokenException',
    );
    let e = await caught(
      admin.createGrant({ KeyId: keyId, GranteePrincipal: SHIPPER, Operations: ['Encrypt', 'GenerateMac'] }),
    );
    expect(e.name).toBe('ValidationException');
    expect(e.message).toContain('GENERATE_VERIFY_MAC');
    e = await caught(admin.createGrant({ KeyId: keyId, GranteePrincipal: SHIPPER, Operations: ['Fly'] }));
    expect(e.message).toMatch(/^1 validation error detected: Value 'Fly' at 'operations.1.member'/);
    e = await caught(
      admin.createGrant({
        KeyId: keyId,
        GranteePrincipal: SHIPPER,
        Operations: ['GenerateMac'],
        Constraints: { EncryptionContextSubset: { a: 'b' } },
      }),
    );
    expect(e.name).toBe('ValidationException');
    expect(e.message).toMatch(/constraints are not supported/);
    e = await caught(admin.createGrant({ KeyId: keyId, GranteePrincipal: 'nobody', Operations: ['GenerateMac'] }));
    expect(e.name).toBe('ValidationException');
    // Without kms:CreateGrant, no grant.
    e = await caught(shipper.createGrant({ KeyId: keyId, GranteePrincipal: SHIPPER, Operations: ['GenerateMac'] }));
    expect(e.name).toBe('AccessDeniedException');
    e = await caught(
      admin.createGrant({ KeyId: keyId, GranteePrincipal: SHIPPER, Operations: ['GenerateMac'], DryRun: true }),
    );
    expect(e.name).toBe('DryRunOperationException');
    expect((await admin.listGrants({ KeyId: keyId })).Grants).toEqual([]);
    await admin.close();
  });

  it('RetireGrant: by token or id, by the retiring principal, a grantee with RetireGrant, or the issuing account’s root', async () => {
    const { admin, keyId, arn, shipper } = await setup();
    const retirer = admin.forPrincipal(`arn:aws:iam::${A}:role/retirer`);
    const g1 = await admin.createGrant({
      KeyId: keyId,
      GranteePrincipal: SHIPPER,
      RetiringPrincipal: `arn:aws:iam::${A}:role/retirer`,
      Operations: ['GenerateMac'],
    });
    expect(
      (await retirer.listRetirableGrants({ RetiringPrincipal: `arn:aws:iam::${A}:role/retirer` })).Grants.map(
        (g) => g.GrantId,
      ),
    ).toEqual([g1.GrantId]);
    // The grantee may not retire a grant that does not include RetireGrant.
    expect((await caught(shipper.retireGrant({ GrantToken: g1.GrantToken }))).name).toBe('AccessDeniedException');
    await retirer.retireGrant({ GrantToken: g1.GrantToken });
    const g2 = await admin.createGrant({
      KeyId: keyId,
      GranteePrincipal: SHIPPER,
      Operations: ['GenerateMac', 'RetireGrant'],
    });
    await shipper.retireGrant({ KeyId: arn, GrantId: g2.GrantId });
    const g3 = await admin.createGrant({ KeyId: keyId, GranteePrincipal: SHIPPER, Operations: ['DescribeKey'] });
    await admin.forPrincipal({ accountId: A }).retireGrant({ KeyId: arn, GrantId: g3.GrantId });
    expect((await admin.listGrants({ KeyId: keyId })).Grants).toEqual([]);
    expect((await caught(admin.retireGrant({ GrantToken: 'x' }))).name).toBe('InvalidGrantTokenException');
    expect((await caught(admin.retireGrant({}))).name).toBe('ValidationException');
    await admin.close();
  });

  it('grants and policies are stored by the file store and survive a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-grants-'));
    try {
      const path = join(dir, 'keys.db');
      const admin = new KmsHmacClient({ keyStore: path, principal: ADMIN });
      const { KeyMetadata } = await admin.createKey({ ...HMAC, Policy: ADMIN_ONLY });
      const { GrantId, GrantToken } = await admin.createGrant({
        KeyId: KeyMetadata.KeyId,
        GranteePrincipal: SHIPPER,
        Operations: ['GenerateMac'],
      });
      await admin.close();
      const reopened = new KmsHmacClient({ keyStore: path, principal: ADMIN });
      expect((await reopened.getKeyPolicy({ KeyId: KeyMetadata.KeyId })).Policy).toBe(ADMIN_ONLY);
      expect((await reopened.listGrants({ KeyId: KeyMetadata.KeyId })).Grants.map((g) => g.GrantId)).toEqual([GrantId]);
      const out = await reopened.forPrincipal(SHIPPER).generateMac({
        KeyId: KeyMetadata.KeyId,
        MacAlgorithm: 'HMAC_SHA_256',
        Message: 'x',
        GrantTokens: [GrantToken],
      });
      expect(out.KeyId).toBe(KeyMetadata.Arn);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
