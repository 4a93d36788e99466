import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import { KmsHmacClient } from '../src/client/client.js';
import { defaultPolicy, evaluatePolicy, parsePolicy, PolicyError, type Decision } from '../src/kms/policy.js';

const A = '111122223333';
const B = '444455556666';
const KEY = `arn:aws:kms:us-east-1:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const SHIPPER = `arn:aws:iam::${A}:user/shipper`;
const AUDITOR = `arn:aws:iam::${A}:user/auditor`;
const ADMIN = `arn:aws:iam::${A}:user/admin`;
const HMAC = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } as const;

function policy(...statements: object[]): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}
const allow = (principal: unknown, action: unknown, extra: object = {}) => ({
  Effect: 'Allow',
  Principal: principal,
  Action: action,
  Resource: '*',
  ...extra,
});
const deny = (principal: unknown, action: unknown, extra: object = {}) => ({
  ...allow(principal, action, extra),
  Effect: 'Deny',
});

/** The separation of duties the README describes: an administrator, a shipper that only MACs, an auditor that only verifies. */
const DUTIES = policy(
  allow({ AWS: ADMIN }, 'kms:*'),
  allow({ AWS: SHIPPER }, 'kms:GenerateMac'),
  allow({ AWS: AUDITOR }, ['kms:VerifyMac', 'kms:DescribeKey']),
);

interface Row {
  what: string;
  policy: string;
  principal: string;
  action: string;
  context?: Record<string, string>;
  want: Decision;
}

function account(arn: string): string {
  return arn.split(':')[4]!;
}

// Statements from AWS's key policy documentation (default key policy, key users, cross-account access,
// condition keys), each asked the question the documentation answers.
const ROWS: Row[] = [
  {
    what: 'default policy: the account root',
    policy: defaultPolicy('aws', A),
    principal: `arn:aws:iam::${A}:root`,
    action: 'kms:PutKeyPolicy',
    want: 'Allow',
  },
  {
    what: 'default policy: any principal of the account (IAM allowing)',
    policy: defaultPolicy('aws', A),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'default policy: another account',
    policy: defaultPolicy('aws', A),
    principal: `arn:aws:iam::${B}:root`,
    action: 'kms:GenerateMac',
    want: 'ImplicitDeny',
  },
  {
    what: 'account id as principal',
    policy: policy(allow({ AWS: B }, 'kms:GenerateMac')),
    principal: `arn:aws:iam::${B}:user/x`,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'cross-account root principal',
    policy: policy(allow({ AWS: [`arn:aws:iam::${B}:root`] }, ['kms:GenerateMac', 'kms:VerifyMac'])),
    principal: `arn:aws:iam::${B}:role/app`,
    action: 'kms:VerifyMac',
    want: 'Allow',
  },
  { what: 'named user: its action', policy: DUTIES, principal: SHIPPER, action: 'kms:GenerateMac', want: 'Allow' },
  {
    what: 'named user: another action',
    policy: DUTIES,
    principal: SHIPPER,
    action: 'kms:VerifyMac',
    want: 'ImplicitDeny',
  },
  {
    what: 'named user: administration',
    policy: DUTIES,
    principal: SHIPPER,
    action: 'kms:DisableKey',
    want: 'ImplicitDeny',
  },
  { what: 'auditor verifies', policy: DUTIES, principal: AUDITOR, action: 'kms:VerifyMac', want: 'Allow' },
  { what: 'auditor cannot forge', policy: DUTIES, principal: AUDITOR, action: 'kms:GenerateMac', want: 'ImplicitDeny' },
  {
    what: 'actions are case-insensitive',
    policy: policy(allow({ AWS: SHIPPER }, 'KMS:generatemac')),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'action wildcard kms:Generate*',
    policy: policy(allow({ AWS: SHIPPER }, 'kms:Generate*')),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'action wildcard kms:*Mac',
    policy: policy(allow({ AWS: SHIPPER }, 'kms:*Mac')),
    principal: SHIPPER,
    action: 'kms:DisableKey',
    want: 'ImplicitDeny',
  },
  {
    what: 'action ? wildcard',
    policy: policy(allow({ AWS: SHIPPER }, 'kms:?erifyMac')),
    principal: SHIPPER,
    action: 'kms:VerifyMac',
    want: 'Allow',
  },
  {
    what: 'Principal "*"',
    policy: policy(allow('*', 'kms:DescribeKey')),
    principal: `arn:aws:iam::${B}:user/z`,
    action: 'kms:DescribeKey',
    want: 'Allow',
  },
  {
    what: 'explicit Deny wins over the root statement',
    policy: policy(
      allow({ AWS: `arn:aws:iam::${A}:root` }, 'kms:*'),
      deny({ AWS: SHIPPER }, 'kms:ScheduleKeyDeletion'),
    ),
    principal: SHIPPER,
    action: 'kms:ScheduleKeyDeletion',
    want: 'Deny',
  },
  {
    what: 'a Deny for others leaves an Allow',
    policy: policy(
      allow({ AWS: `arn:aws:iam::${A}:root` }, 'kms:*'),
      deny({ AWS: SHIPPER }, 'kms:ScheduleKeyDeletion'),
    ),
    principal: AUDITOR,
    action: 'kms:ScheduleKeyDeletion',
    want: 'Allow',
  },
  {
    what: 'Deny with NotAction: everything but GenerateMac',
    policy: policy(allow({ AWS: A }, 'kms:*'), {
      Effect: 'Deny',
      Principal: { AWS: SHIPPER },
      NotAction: 'kms:GenerateMac',
      Resource: '*',
    }),
    principal: SHIPPER,
    action: 'kms:VerifyMac',
    want: 'Deny',
  },
  {
    what: 'Deny with NotAction: GenerateMac stays',
    policy: policy(allow({ AWS: A }, 'kms:*'), {
      Effect: 'Deny',
      Principal: { AWS: SHIPPER },
      NotAction: 'kms:GenerateMac',
      Resource: '*',
    }),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'NotPrincipal Deny: everyone but the admin',
    policy: policy(allow('*', 'kms:*'), {
      Effect: 'Deny',
      NotPrincipal: { AWS: ADMIN },
      Action: 'kms:PutKeyPolicy',
      Resource: '*',
    }),
    principal: SHIPPER,
    action: 'kms:PutKeyPolicy',
    want: 'Deny',
  },
  {
    what: 'NotPrincipal Deny: the admin',
    policy: policy(allow('*', 'kms:*'), {
      Effect: 'Deny',
      NotPrincipal: { AWS: ADMIN },
      Action: 'kms:PutKeyPolicy',
      Resource: '*',
    }),
    principal: ADMIN,
    action: 'kms:PutKeyPolicy',
    want: 'Allow',
  },
  {
    what: 'Resource: the key ARN',
    policy: JSON.stringify({
      Statement: { Effect: 'Allow', Principal: { AWS: SHIPPER }, Action: 'kms:GenerateMac', Resource: KEY },
    }),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'Resource: another key',
    policy: policy({ Effect: 'Allow', Principal: { AWS: SHIPPER }, Action: 'kms:GenerateMac', Resource: `${KEY}0` }),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'ImplicitDeny',
  },
  {
    what: 'a role ARN matches its sessions',
    policy: policy(allow({ AWS: `arn:aws:iam::${A}:role/path/shipper` }, 'kms:GenerateMac')),
    principal: `arn:aws:sts::${A}:assumed-role/shipper/i-0abc`,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'kms:CallerAccount StringEquals',
    policy: policy(allow('*', 'kms:GenerateMac', { Condition: { StringEquals: { 'kms:CallerAccount': B } } })),
    principal: `arn:aws:iam::${B}:user/x`,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'kms:CallerAccount StringEquals, other account',
    policy: policy(allow('*', 'kms:GenerateMac', { Condition: { StringEquals: { 'kms:CallerAccount': B } } })),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'ImplicitDeny',
  },
  {
    what: 'kms:CallerAccount StringNotEquals in a Deny',
    policy: policy(
      allow('*', 'kms:*'),
      deny('*', 'kms:*', { Condition: { StringNotEquals: { 'kms:CallerAccount': A } } }),
    ),
    principal: `arn:aws:iam::${B}:user/x`,
    action: 'kms:DescribeKey',
    want: 'Deny',
  },
  {
    what: 'kms:ViaService is never present: an Allow on it allows nothing',
    policy: policy(
      allow({ AWS: A }, 'kms:GenerateMac', {
        Condition: { StringEquals: { 'kms:ViaService': 'ec2.us-east-1.amazonaws.com' } },
      }),
    ),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'ImplicitDeny',
  },
  {
    what: 'kms:ViaService Null true',
    policy: policy(allow({ AWS: A }, 'kms:GenerateMac', { Condition: { Null: { 'kms:ViaService': 'true' } } })),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'StringEqualsIfExists on an absent key',
    policy: policy(
      allow({ AWS: A }, 'kms:GenerateMac', { Condition: { StringEqualsIfExists: { 'kms:ViaService': 'x' } } }),
    ),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'aws:PrincipalArn StringLike',
    policy: policy(
      allow('*', 'kms:VerifyMac', { Condition: { StringLike: { 'aws:PrincipalArn': `arn:aws:iam::${A}:user/aud*` } } }),
    ),
    principal: AUDITOR,
    action: 'kms:VerifyMac',
    want: 'Allow',
  },
  {
    what: 'aws:PrincipalArn ArnNotLike in a Deny',
    policy: policy(
      allow({ AWS: A }, 'kms:*'),
      deny('*', 'kms:GenerateMac', {
        Condition: { ArnNotLike: { 'aws:PrincipalArn': `arn:aws:iam::${A}:user/ship*` } },
      }),
    ),
    principal: AUDITOR,
    action: 'kms:GenerateMac',
    want: 'Deny',
  },
  {
    what: 'kms:GrantIsForAWSResource is false',
    policy: policy(
      allow({ AWS: A }, 'kms:CreateGrant', { Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } } }),
    ),
    principal: SHIPPER,
    action: 'kms:CreateGrant',
    want: 'ImplicitDeny',
  },
  {
    what: 'kms:GrantIsForAWSResource Bool false (JSON boolean)',
    policy: policy(
      allow({ AWS: A }, 'kms:CreateGrant', { Condition: { Bool: { 'kms:GrantIsForAWSResource': false } } }),
    ),
    principal: SHIPPER,
    action: 'kms:CreateGrant',
    want: 'Allow',
  },
  {
    what: 'kms:MacAlgorithm matches',
    policy: policy(
      allow({ AWS: SHIPPER }, 'kms:GenerateMac', {
        Condition: { StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_512' } },
      }),
    ),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    context: { 'kms:macalgorithm': 'HMAC_SHA_512' },
    want: 'Allow',
  },
  {
    what: 'kms:MacAlgorithm differs',
    policy: policy(
      allow({ AWS: SHIPPER }, 'kms:GenerateMac', {
        Condition: { StringEquals: { 'kms:MacAlgorithm': ['HMAC_SHA_384', 'HMAC_SHA_512'] } },
      }),
    ),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    context: { 'kms:macalgorithm': 'HMAC_SHA_256' },
    want: 'ImplicitDeny',
  },
  {
    what: 'condition keys are case-insensitive',
    policy: policy(allow('*', 'kms:GenerateMac', { Condition: { stringequals: { 'KMS:CALLERACCOUNT': A } } })),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'Allow',
  },
  {
    what: 'all conditions must hold',
    policy: policy(
      allow('*', 'kms:GenerateMac', {
        Condition: { StringEquals: { 'kms:CallerAccount': A, 'aws:PrincipalArn': AUDITOR } },
      }),
    ),
    principal: SHIPPER,
    action: 'kms:GenerateMac',
    want: 'ImplicitDeny',
  },
];

describe('key policy evaluation (table)', () => {
  it.each(ROWS)('$what → $want', (row) => {
    const context = new Map<string, string>([
      ['kms:calleraccount', account(row.principal)],
      ['aws:principalarn', row.principal],
      ['aws:principalaccount', account(row.principal)],
      ['kms:grantisforawsresource', 'false'],
      ...Object.entries(row.context ?? {}),
    ]);
    const decision = evaluatePolicy(parsePolicy(row.policy), {
      action: row.action,
      principalArn: row.principal,
      principalAccount: account(row.principal),
      resourceArn: KEY,
      context,
    });
    expect(decision).toBe(row.want);
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['no statement', '{"Version":"2012-10-17","Statement":[]}', /at least one Statement/],
    ['bad Effect', policy({ Effect: 'Maybe', Principal: '*', Action: '*', Resource: '*' }), /Effect/],
    ['no Principal', policy({ Effect: 'Allow', Action: '*', Resource: '*' }), /Principal/],
    ['no Resource', policy({ Effect: 'Allow', Principal: '*', Action: '*' }), /Resource/],
    ['bad principal', policy(allow({ AWS: 'shipper' }, '*')), /invalid principals/],
    ['wildcard principal ARN', policy(allow({ AWS: `arn:aws:iam::${A}:user/*` }, '*')), /invalid principals/],
    [
      'unknown operator',
      policy(allow('*', '*', { Condition: { StringSortOf: { 'kms:CallerAccount': A } } })),
      /unsupported condition operator/,
    ],
    ['bad action', policy(allow('*', 'GenerateMac')), /invalid action/],
  ])('refuses a policy with %s', (_what, text, message) => {
    const e = (() => {
      try {
        parsePolicy(text);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(PolicyError);
    expect((e as Error).message).toMatch(message);
  });
});

async function dutiesKey() {
  const admin = new KmsHmacClient({ principal: ADMIN });
  const { KeyMetadata } = await admin.createKey({ ...HMAC, Policy: DUTIES });
  return {
    admin,
    keyId: KeyMetadata.KeyId,
    arn: KeyMetadata.Arn,
    shipper: admin.forPrincipal(SHIPPER),
    auditor: admin.forPrincipal(AUDITOR),
  };
}

describe('who may do what, in-process', () => {
  it('a shipper can GenerateMac but not VerifyMac or DisableKey; an auditor can VerifyMac only', async () => {
    const { admin, keyId, arn, shipper, auditor } = await dutiesKey();
    const msg = { KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: new TextEncoder().encode('line 1') };
    const { Mac } = await shipper.generateMac(msg);
    // Twice: the second answer comes from the decision cache.
    expect((await shipper.generateMac(msg)).Mac).toEqual(Mac);
    expect(shipper.generateMacSync(msg).Mac).toEqual(Mac);

    let e = await caught(shipper.verifyMac({ ...msg, Mac }));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toBe(
      `User: ${SHIPPER} is not authorized to perform: kms:VerifyMac on resource: ${arn} because no resource-based policy allows the kms:VerifyMac action`,
    );
    expect(e.$metadata.httpStatusCode).toBe(400);
    e = await caught(shipper.disableKey({ KeyId: keyId }));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toContain('kms:DisableKey');

    expect((await auditor.verifyMac({ ...msg, Mac })).MacValid).toBe(true);
    expect(auditor.verifyMacSync({ ...msg, Mac }).MacValid).toBe(true);
    e = await caught(auditor.generateMac(msg));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toContain(`User: ${AUDITOR} is not authorized to perform: kms:GenerateMac`);
    e = await caught(() => auditor.generateMacSync(msg));
    expect(e.name).toBe('AccessDeniedException');
    expect((await caught(() => auditor.generateMacBatch({ ...msg, Messages: [msg.Message] }))).name).toBe(
      'AccessDeniedException',
    );
    expect((await caught(auditor.scheduleKeyDeletion({ KeyId: keyId }))).name).toBe('AccessDeniedException');
    // The auditor's policy statement gives it DescribeKey.
    expect((await auditor.describeKey({ KeyId: keyId })).KeyMetadata.Arn).toBe(arn);
    await admin.close();
  });

  it('authorization comes after key resolution and before key state (spec evaluation order)', async () => {
    const { admin, keyId, shipper, auditor } = await dutiesKey();
    await admin.disableKey({ KeyId: keyId });
    const msg = { KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };
    expect((await caught(shipper.generateMac(msg))).name).toBe('DisabledException');
    expect((await caught(auditor.generateMac(msg))).name).toBe('AccessDeniedException');
    // An unknown key is NotFoundException for everyone; a wrong algorithm is refused to an allowed caller only.
    expect((await caught(auditor.generateMac({ ...msg, KeyId: '00000000-0000-0000-0000-000000000000' }))).name).toBe(
      'NotFoundException',
    );
    await admin.enableKey({ KeyId: keyId });
    expect((await caught(auditor.generateMac({ ...msg, MacAlgorithm: 'HMAC_SHA_512' }))).name).toBe(
      'AccessDeniedException',
    );
    expect((await caught(shipper.generateMac({ ...msg, MacAlgorithm: 'HMAC_SHA_512' }))).name).toBe(
      'InvalidKeyUsageException',
    );
    // DryRun tells an unauthorized caller AccessDeniedException, as AWS's "testing permissions" does.
    expect((await caught(auditor.generateMac({ ...msg, DryRun: true }))).name).toBe('AccessDeniedException');
    expect((await caught(shipper.generateMac({ ...msg, DryRun: true }))).name).toBe('DryRunOperationException');
    await admin.close();
  });

  it('a decision is remembered only until the policy changes', async () => {
    const { admin, keyId, shipper } = await dutiesKey();
    const msg = { KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };
    shipper.generateMacSync(msg);
    await admin.putKeyPolicy({ KeyId: keyId, Policy: policy(allow({ AWS: ADMIN }, 'kms:*')) });
    expect((await caught(() => shipper.generateMacSync(msg))).name).toBe('AccessDeniedException');
    await admin.putKeyPolicy({ KeyId: keyId, Policy: DUTIES });
    expect(shipper.generateMacSync(msg).KeyId).toContain(keyId);
    await admin.close();
  });

  it('the default client is its account root: the default policy lets it do everything, as before', async () => {
    const client = new KmsHmacClient();
    expect(client.principal).toBe(`arn:aws:iam::${A}:root`);
    const { KeyMetadata } = await client.createKey(HMAC);
    const { Policy, PolicyName } = await client.getKeyPolicy({ KeyId: KeyMetadata.KeyId });
    expect(PolicyName).toBe('default');
    expect(Policy).toBe(defaultPolicy('aws', A));
    expect(JSON.parse(Policy).Statement[0].Principal.AWS).toBe(`arn:aws:iam::${A}:root`);
    // Any principal of the account, the IAM side assumed to allow.
    const other = client.forPrincipal(`arn:aws:iam::${A}:role/anything`);
    await other.disableKey({ KeyId: KeyMetadata.KeyId });
    await client.close();
  });

  it('principal option: an ARN, checked; its account is the ARN’s', async () => {
    expect(new KmsHmacClient({ principal: SHIPPER }).accountId).toBe(A);
    expect(new KmsHmacClient({ principal: `arn:aws:iam::${B}:user/x` }).accountId).toBe(B);
    expect(() => new KmsHmacClient({ principal: 'shipper' })).toThrow(/IAM ARN/);
    expect(() => new KmsHmacClient({ principal: SHIPPER, accountId: B })).toThrow(/not in account/);
    expect(() => new KmsHmacClient({ accountId: '12' })).toThrow(/12 digits/);
    expect(JSON.stringify(new KmsHmacClient({ principal: SHIPPER }))).toBe(
      `{"region":"us-east-1","accountId":"${A}","principal":"${SHIPPER}"}`,
    );
  });
});

describe('PutKeyPolicy / GetKeyPolicy / ListKeyPolicies', () => {
  it('GetKeyPolicy returns the text verbatim, as PutKeyPolicy or CreateKey stored it', async () => {
    const client = new KmsHmacClient();
    const text = `{ "Version": "2012-10-17",\n  "Statement": [ { "Effect": "Allow", "Principal": { "AWS": "${A}" }, "Action": "kms:*", "Resource": "*" } ] }`;
    const { KeyMetadata } = await client.createKey({ ...HMAC, Policy: text });
    expect((await client.getKeyPolicy({ KeyId: KeyMetadata.KeyId })).Policy).toBe(text);
    const next = `${text} `;
    await client.putKeyPolicy({ KeyId: KeyMetadata.Arn, PolicyName: 'default', Policy: next });
    expect((await client.getKeyPolicy({ KeyId: KeyMetadata.KeyId, PolicyName: 'default' })).Policy).toBe(next);
    expect(await client.listKeyPolicies({ KeyId: KeyMetadata.KeyId })).toEqual({
      PolicyNames: ['default'],
      Truncated: false,
    });
    expect((await caught(client.getKeyPolicy({ KeyId: KeyMetadata.KeyId, PolicyName: 'other' }))).name).toBe(
      'NotFoundException',
    );
    // Aliases are not accepted by the key policy operations (key ID or key ARN only).
    await client.createAlias({ AliasName: 'alias/p', TargetKeyId: KeyMetadata.KeyId });
    expect((await caught(client.getKeyPolicy({ KeyId: 'alias/p' }))).name).toBe('NotFoundException');
    await client.close();
  });

  it('MalformedPolicyDocumentException: bad documents, and the lockout safety check', async () => {
    const client = new KmsHmacClient();
    const bad = await caught(client.createKey({ ...HMAC, Policy: '{"Statement": "x"}' }));
    expect(bad.name).toBe('MalformedPolicyDocumentException');
    const lockout = policy(allow({ AWS: SHIPPER }, 'kms:GenerateMac'));
    const e = await caught(client.createKey({ ...HMAC, Policy: lockout }));
    expect(e.name).toBe('MalformedPolicyDocumentException');
    expect(e.message).toBe('The new key policy will not allow you to update the key policy in the future.');
    const { KeyMetadata } = await client.createKey({ ...HMAC, Policy: lockout, BypassPolicyLockoutSafetyCheck: true });
    // Locked out: even the root of the key's account may not change it now (IAM policies are out of scope).
    expect(
      (await caught(client.putKeyPolicy({ KeyId: KeyMetadata.KeyId, Policy: defaultPolicy('aws', A) }))).name,
    ).toBe('AccessDeniedException');
    const { KeyMetadata: k2 } = await client.createKey(HMAC);
    expect((await caught(client.putKeyPolicy({ KeyId: k2.KeyId, Policy: lockout }))).name).toBe(
      'MalformedPolicyDocumentException',
    );
    expect((await caught(client.putKeyPolicy({ KeyId: k2.KeyId, Policy: undefined }))).name).toBe(
      'ValidationException',
    );
    await client.close();
  });
});

describe('accounts and cross-account use', () => {
  it('keys belong to the creator’s account; another account uses them by ARN only, and only when the policy allows', async () => {
    const a = new KmsHmacClient();
    const b = a.forPrincipal(`arn:aws:iam::${B}:user/consumer`);
    const { KeyMetadata: denied } = await a.createKey(HMAC);
    const { KeyMetadata: shared } = await a.createKey({
      ...HMAC,
      Policy: policy(allow({ AWS: A }, 'kms:*'), allow({ AWS: B }, ['kms:GenerateMac', 'kms:DescribeKey'])),
    });
    await a.createAlias({ AliasName: 'alias/shared', TargetKeyId: shared.KeyId });
    const msg = { MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };

    // By ARN (key or alias): the policy decides.
    const out = await b.generateMac({ ...msg, KeyId: shared.Arn });
    expect(out.KeyId).toBe(shared.Arn);
    expect((await a.generateMac({ ...msg, KeyId: shared.KeyId })).Mac).toEqual(out.Mac);
    expect((await b.generateMac({ ...msg, KeyId: `arn:aws:kms:us-east-1:${A}:alias/shared` })).Mac).toEqual(out.Mac);
    const e = await caught(b.generateMac({ ...msg, KeyId: denied.Arn }));
    expect(e.name).toBe('AccessDeniedException');
    expect(e.message).toBe(
      `User: arn:aws:iam::${B}:user/consumer is not authorized to perform: kms:GenerateMac on resource: ${denied.Arn} because no resource-based policy allows the kms:GenerateMac action`,
    );
    expect((await caught(b.verifyMac({ ...msg, KeyId: shared.Arn, Mac: out.Mac }))).name).toBe('AccessDeniedException');

    // By key ID or alias name: resolved in the caller's own account, where the key does not exist.
    let nf = await caught(b.generateMac({ ...msg, KeyId: shared.KeyId }));
    expect(nf.name).toBe('NotFoundException');
    expect(nf.message).toBe(`Key 'arn:aws:kms:us-east-1:${B}:key/${shared.KeyId}' does not exist`);
    nf = await caught(b.generateMac({ ...msg, KeyId: 'alias/shared' }));
    expect(nf.message).toBe(`Alias arn:aws:kms:us-east-1:${B}:alias/shared is not found.`);

    // Lists show the caller's own account only; B's own key is B's.
    const { KeyMetadata: own } = await b.createKey(HMAC);
    expect(own.AWSAccountId).toBe(B);
    expect(own.Arn).toBe(`arn:aws:kms:us-east-1:${B}:key/${own.KeyId}`);
    expect((await b.listKeys()).Keys.map((k) => k.KeyId)).toEqual([own.KeyId]);
    expect((await a.listKeys()).Keys.map((k) => k.KeyId).sort()).toEqual([denied.KeyId, shared.KeyId].sort());
    expect((await b.listAliases()).Aliases).toEqual([]);
    expect((await a.listAliases()).Aliases.map((x) => x.AliasName)).toEqual(['alias/shared']);
    // And A's default policy does not let B's principals near A's keys: B's key is not A's either.
    expect((await caught(a.describeKey({ KeyId: own.Arn }))).name).toBe('AccessDeniedException');
    await a.close();
  });

  it('another account may call only the operations AWS lets cross accounts, whatever the policy grants it', async () => {
    const a = new KmsHmacClient();
    const b = a.forPrincipal(`arn:aws:iam::${B}:user/consumer`);
    const { KeyMetadata: k } = await a.createKey({
      ...HMAC,
      Policy: policy(allow({ AWS: A }, 'kms:*'), allow({ AWS: B }, 'kms:*')),
    });
    const { Mac } = await b.generateMac({ KeyId: k.Arn, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' });
    expect((await b.verifyMac({ KeyId: k.Arn, MacAlgorithm: 'HMAC_SHA_256', Message: 'x', Mac })).MacValid).toBe(true);
    expect((await b.describeKey({ KeyId: k.Arn })).KeyMetadata.KeyId).toBe(k.KeyId);
    for (const [op, call] of [
      ['DisableKey', () => b.disableKey({ KeyId: k.Arn })],
      ['ScheduleKeyDeletion', () => b.scheduleKeyDeletion({ KeyId: k.Arn, PendingWindowInDays: 7 })],
      ['GetKeyPolicy', () => b.getKeyPolicy({ KeyId: k.Arn, PolicyName: 'default' })],
      ['UpdateKeyDescription', () => b.updateKeyDescription({ KeyId: k.Arn, Description: 'mine now' })],
    ] as const) {
      const e = await caught((call as () => Promise<unknown>)());
      expect(e.name, op).toBe('AccessDeniedException');
      expect(e.message).toBe(
        `User: arn:aws:iam::${B}:user/consumer is not authorized to perform: kms:${op} on resource: ${k.Arn} because no resource-based policy allows the kms:${op} action`,
      );
    }
    expect((await a.describeKey({ KeyId: k.KeyId })).KeyMetadata.Enabled).toBe(true);
    await a.close();
  });
});
