/**
 * Who may do what over HTTP: `serve --credentials-file` entries with
 * principals and accounts, driven by the real AWS CLI v2 (`/usr/bin/aws`)
 * and boto3 (`/usr/bin/python3`; `.ci/run` installs both): a shipper that can
 * only GenerateMac, an auditor that can only VerifyMac, a grant to the
 * shipper with its token, the grant revoked, a second account using the
 * first's key by ARN when the policy allows it, the calls Terraform's
 * aws_kms_key makes on refresh, and the file reloaded on SIGHUP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../src/server/index.js';
import { signedCall } from './server-helpers.js';
import { run } from './support/run-command.js';

const AWS = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const A = '111122223333';
const B = '444455556666';
const ADMIN = `arn:aws:iam::${A}:user/admin`;
const SHIPPER = `arn:aws:iam::${A}:user/shipper`;
const AUDITOR = `arn:aws:iam::${A}:user/auditor`;
const CONSUMER = `arn:aws:iam::${B}:user/consumer`;

const awsPresent = existsSync(AWS);
const boto3Present = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import boto3'], {})).code === 0;
if (!awsPresent)
  console.warn(`\n*** SKIPPING the principals AWS CLI tests: ${AWS} is missing (apt-get install -y awscli) ***\n`);
if (!boto3Present)
  console.warn(
    `\n*** SKIPPING the principals boto3 tests: ${PYTHON} cannot import boto3 (apt-get install -y python3-boto3) ***\n`,
  );

describe.runIf(!awsPresent && process.env.KMS_HMAC_REQUIRE_AWSCLI === '1')('AWS CLI v2 required', () => {
  it(`${AWS} is installed`, () => expect(awsPresent, `${AWS} is missing (apt-get install -y awscli)`).toBe(true));
});
describe.runIf(!boto3Present && process.env.KMS_HMAC_REQUIRE_BOTO3 === '1')('boto3 required', () => {
  it(`${PYTHON} imports boto3`, () => expect(boto3Present, 'apt-get install -y python3-boto3').toBe(true));
});

/** One access key per principal; `root` names none (the server account's root, as a flag-given pair). */
const KEYS = {
  root: { accessKeyId: 'AKIDROOT', secretAccessKey: 'root-secret-of-the-principals-test' },
  admin: { accessKeyId: 'AKIDADMIN', secretAccessKey: 'admin-secret-of-the-principals-test', principal: ADMIN },
  shipper: { accessKeyId: 'AKIDSHIPPER', secretAccessKey: 'shipper-secret-of-the-principals', principal: SHIPPER },
  auditor: { accessKeyId: 'AKIDAUDITOR', secretAccessKey: 'auditor-secret-of-the-principals', principal: AUDITOR },
  consumer: { accessKeyId: 'AKIDCONSUMER', secretAccessKey: 'consumer-secret-of-the-principals', principal: CONSUMER },
} as const;
type Who = keyof typeof KEYS;

/** The README's policy: an administrator, a shipper that MACs, an auditor that verifies; the second account may MAC. */
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Sid: 'Admin', Effect: 'Allow', Principal: { AWS: ADMIN }, Action: 'kms:*', Resource: '*' },
    { Sid: 'Ship', Effect: 'Allow', Principal: { AWS: SHIPPER }, Action: 'kms:GenerateMac', Resource: '*' },
    { Sid: 'Audit', Effect: 'Allow', Principal: { AWS: AUDITOR }, Action: 'kms:VerifyMac', Resource: '*' },
    {
      Sid: 'Partner',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${B}:root` },
      Action: 'kms:GenerateMac',
      Resource: '*',
    },
  ],
});

function credentialsFile(path: string, entries: readonly object[]): void {
  writeFileSync(path, JSON.stringify({ credentials: entries }), { mode: 0o600 });
}

let server: StartedServer;
let dir: string;
let credsPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-principals-'));
  credsPath = join(dir, 'credentials.json');
  credentialsFile(credsPath, Object.values(KEYS));
  server = await startServer({ port: 0, credentialsFile: credsPath, log: false });
});
afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function envOf(who: Who): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: KEYS[who].accessKeyId,
    AWS_SECRET_ACCESS_KEY: KEYS[who].secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_MAX_ATTEMPTS: '1',
  };
}

describe.skipIf(!awsPresent)('AWS CLI v2: principals, policies, grants and accounts', () => {
  const aws = (who: Who, ...args: string[]) =>
    run(AWS, ['kms', ...args, '--endpoint-url', server.url, '--output', 'json'], envOf(who));

  it('shipper MACs, auditor verifies, neither administers; a grant with its token; revoked; a second account by ARN', async () => {
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, POLICY);
    const created = await aws(
      'admin',
      'create-key',
      '--key-spec',
      'HMAC_256',
      '--key-usage',
      'GENERATE_VERIFY_MAC',
      '--policy',
      `file://${policyFile}`,
    );
    expect(created.code, created.stderr).toBe(0);
    const md = JSON.parse(created.stdout).KeyMetadata;
    const msgFile = join(dir, 'm.bin');
    writeFileSync(msgFile, 'a log line\n');
    const mac = (who: Who, keyId: string = md.KeyId) =>
      aws(who, 'generate-mac', '--key-id', keyId, '--message', `fileb://${msgFile}`, '--mac-algorithm', 'HMAC_SHA_256');

    const gen = await mac('shipper');
    expect(gen.code, gen.stderr).toBe(0);
    const macFile = join(dir, 'mac.bin');
    writeFileSync(macFile, Buffer.from(JSON.parse(gen.stdout).Mac, 'base64'));
    const verify = (who: Who, ...extra: string[]) =>
      aws(
        who,
        'verify-mac',
        '--key-id',
        md.KeyId,
        '--message',
        `fileb://${msgFile}`,
        '--mac',
        `fileb://${macFile}`,
        '--mac-algorithm',
        'HMAC_SHA_256',
        ...extra,
      );

    let r = await verify('shipper');
    expect(r.code).toBe(254);
    expect(r.stderr).toContain('(AccessDeniedException) when calling the VerifyMac operation');
    expect(r.stderr).toContain(
      `: User: ${SHIPPER} is not authorized to perform: kms:VerifyMac on resource: ${md.Arn} because no resource-based policy allows the kms:VerifyMac action`,
    );
    r = await verify('auditor');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).MacValid).toBe(true);

    // A grant gives the shipper VerifyMac: with its token at once, and without it.
    r = await aws(
      'admin',
      'create-grant',
      '--key-id',
      md.KeyId,
      '--grantee-principal',
      SHIPPER,
      '--operations',
      'VerifyMac',
    );
    expect(r.code, r.stderr).toBe(0);
    const grant = JSON.parse(r.stdout);
    r = await verify('shipper', '--grant-tokens', grant.GrantToken);
    expect(r.code, r.stderr).toBe(0);
    r = await aws('admin', 'revoke-grant', '--key-id', md.KeyId, '--grant-id', grant.GrantId);
    expect(r.code, r.stderr).toBe(0);
    r = await verify('shipper');
    expect(r.stderr).toContain('AccessDeniedException');

    // The second account, by key ARN, as the policy allows (boto3 below: not by key ID; kms-policy.test.ts: the rest).
    r = await mac('consumer', md.Arn);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).KeyId).toBe(md.Arn);
  }, 300_000);

  it("the calls Terraform's aws_kms_key makes on refresh: GetKeyPolicy, DescribeKey, ListResourceTags", async () => {
    const r = await aws(
      'root',
      'create-key',
      '--key-spec',
      'HMAC_384',
      '--key-usage',
      'GENERATE_VERIFY_MAC',
      '--tags',
      'TagKey=team,TagValue=logs',
    );
    expect(r.code, r.stderr).toBe(0);
    const md = JSON.parse(r.stdout).KeyMetadata;
    const pol = await aws('root', 'get-key-policy', '--key-id', md.KeyId, '--policy-name', 'default');
    expect(pol.code, pol.stderr).toBe(0);
    expect(JSON.parse(JSON.parse(pol.stdout).Policy).Statement[0]).toEqual({
      Sid: 'Enable IAM User Permissions',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${A}:root` },
      Action: 'kms:*',
      Resource: '*',
    });
    expect(JSON.parse((await aws('root', 'list-key-policies', '--key-id', md.KeyId)).stdout).PolicyNames).toEqual([
      'default',
    ]);
    expect(JSON.parse((await aws('root', 'describe-key', '--key-id', md.KeyId)).stdout).KeyMetadata.Arn).toBe(md.Arn);
    expect(JSON.parse((await aws('root', 'list-resource-tags', '--key-id', md.KeyId)).stdout).Tags).toEqual([
      { TagKey: 'team', TagValue: 'logs' },
    ]);
  }, 120_000);
});

const BOTO3 = `
import json, sys, base64, boto3, botocore
url, policy = sys.argv[1], sys.argv[2]
keys = json.loads(sys.stdin.read())
def kms(who):
    k = keys[who]
    return boto3.client('kms', region_name='us-east-1', endpoint_url=url,
        aws_access_key_id=k['accessKeyId'], aws_secret_access_key=k['secretAccessKey'],
        config=botocore.config.Config(retries={'max_attempts': 1}))
def error(call):
    try:
        call()
        return None
    except botocore.exceptions.ClientError as e:
        return [e.response['Error']['Code'], e.response['Error'].get('Message', '')]
admin, shipper, auditor, consumer = kms('admin'), kms('shipper'), kms('auditor'), kms('consumer')
key = admin.create_key(KeySpec='HMAC_512', KeyUsage='GENERATE_VERIFY_MAC', Policy=policy)['KeyMetadata']
msg = b'a log line'
mac = shipper.generate_mac(KeyId=key['KeyId'], Message=msg, MacAlgorithm='HMAC_SHA_512')['Mac']
out = {
  'arn': key['Arn'],
  'shipperVerify': error(lambda: shipper.verify_mac(KeyId=key['KeyId'], Message=msg, Mac=mac, MacAlgorithm='HMAC_SHA_512')),
  'shipperSchedule': error(lambda: shipper.schedule_key_deletion(KeyId=key['KeyId'])),
  'auditorVerify': auditor.verify_mac(KeyId=key['KeyId'], Message=msg, Mac=mac, MacAlgorithm='HMAC_SHA_512')['MacValid'],
  'auditorGenerate': error(lambda: auditor.generate_mac(KeyId=key['KeyId'], Message=msg, MacAlgorithm='HMAC_SHA_512')),
}
g = admin.create_grant(KeyId=key['KeyId'], GranteePrincipal=keys['shipper']['principal'], Operations=['VerifyMac'])
out['grantWithToken'] = shipper.verify_mac(KeyId=key['KeyId'], Message=msg, Mac=mac, MacAlgorithm='HMAC_SHA_512', GrantTokens=[g['GrantToken']])['MacValid']
admin.revoke_grant(KeyId=key['KeyId'], GrantId=g['GrantId'])
out['afterRevoke'] = error(lambda: shipper.verify_mac(KeyId=key['KeyId'], Message=msg, Mac=mac, MacAlgorithm='HMAC_SHA_512'))
out['consumerByArn'] = consumer.generate_mac(KeyId=key['Arn'], Message=msg, MacAlgorithm='HMAC_SHA_512')['Mac'] == mac
out['consumerById'] = error(lambda: consumer.generate_mac(KeyId=key['KeyId'], Message=msg, MacAlgorithm='HMAC_SHA_512'))
out['policy'] = admin.get_key_policy(KeyId=key['KeyId'], PolicyName='default')['Policy'] == policy
out['malformed'] = error(lambda: admin.put_key_policy(KeyId=key['KeyId'], PolicyName='default', Policy='{"Statement":[]}'))
print(json.dumps(out))
`;

describe.skipIf(!boto3Present)('boto3: principals, policies, grants and accounts', () => {
  it('the same duties, grant and second account through boto3', async () => {
    const r = await run(PYTHON, ['-c', BOTO3, server.url, POLICY], envOf('root'), JSON.stringify(KEYS));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const denied = (who: string, action: string) => [
      'AccessDeniedException',
      `User: ${who} is not authorized to perform: kms:${action} on resource: ${out.arn} because no resource-based policy allows the kms:${action} action`,
    ];
    expect(out.shipperVerify).toEqual(denied(SHIPPER, 'VerifyMac'));
    expect(out.shipperSchedule).toEqual(denied(SHIPPER, 'ScheduleKeyDeletion'));
    expect(out.auditorVerify).toBe(true);
    expect(out.auditorGenerate).toEqual(denied(AUDITOR, 'GenerateMac'));
    expect(out.grantWithToken).toBe(true);
    expect(out.afterRevoke).toEqual(denied(SHIPPER, 'VerifyMac'));
    expect(out.consumerByArn).toBe(true);
    expect(out.consumerById[0]).toBe('NotFoundException');
    expect(out.policy).toBe(true);
    expect(out.malformed[0]).toBe('MalformedPolicyDocumentException');
  }, 120_000);
});

describe('the credentials file is reloaded on SIGHUP', () => {
  it('a new entry works after SIGHUP; a broken file leaves the previous set, with a warning', async () => {
    const late = { accessKeyId: 'AKIDLATE', secretAccessKey: 'late-secret-of-the-principals-test', principal: AUDITOR };
    const call = (op: string, input: object) => signedCall(server.url, op, input, { credential: late });
    const before = await call('ListKeys', {});
    expect(before.status).toBe(400);
    expect(before.json?.__type).toBe('UnrecognizedClientException');

    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      credentialsFile(credsPath, [...Object.values(KEYS), late]);
      process.kill(process.pid, 'SIGHUP');
      await waitFor(() => warnings.some((w) => w.includes('credentials reloaded')));
      // Evaluated as the auditor: its principal came with the reloaded entry.
      const created = await signedCall(
        server.url,
        'CreateKey',
        { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', Policy: POLICY, BypassPolicyLockoutSafetyCheck: true },
        { credential: KEYS.root },
      );
      const { KeyId, Arn } = created.json!.KeyMetadata as { KeyId: string; Arn: string };
      const after = await call('DisableKey', { KeyId });
      expect(after.json).toEqual({
        __type: 'AccessDeniedException',
        message: `User: ${AUDITOR} is not authorized to perform: kms:DisableKey on resource: ${Arn} because no resource-based policy allows the kms:DisableKey action`,
      });

      writeFileSync(credsPath, '{ not json');
      process.kill(process.pid, 'SIGHUP');
      await waitFor(() => warnings.some((w) => w.includes('failed; the previous credentials stay in force')));
      expect((await call('ListKeys', {})).status).toBe(200);
    } finally {
      process.removeListener('warning', onWarning);
      credentialsFile(credsPath, Object.values(KEYS));
    }
  });
});

/** Waits (bounded) for a condition the SIGHUP handler makes true. */
async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
}
