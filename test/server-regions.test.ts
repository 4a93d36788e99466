import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server/index.js';
import { CRED } from './server-helpers.js';
import { run } from './support/run-command.js';
import { random } from './support/random.js';

const AWS = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const awsPresent = existsSync(AWS);
const boto3Present = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import boto3'], {})).code === 0;
if (!awsPresent)
  console.warn(`\n*** SKIPPING the multi-Region AWS CLI tests: ${AWS} is missing (apt-get install -y awscli) ***\n`);
if (!boto3Present)
  console.warn(
    `\n*** SKIPPING the multi-Region boto3 tests: ${PYTHON} cannot import boto3 (apt-get install -y python3-boto3) ***\n`,
  );

describe.runIf(!awsPresent && process.env.KMS_HMAC_REQUIRE_AWSCLI === '1')('AWS CLI v2 required', () => {
  it(`${AWS} is installed`, () => expect(awsPresent, `${AWS} is missing (apt-get install -y awscli)`).toBe(true));
});
describe.runIf(!boto3Present && process.env.KMS_HMAC_REQUIRE_BOTO3 === '1')('boto3 required', () => {
  it(`${PYTHON} imports boto3`, () => expect(boto3Present, 'apt-get install -y python3-boto3').toBe(true));
});

let server: StartedServer;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startServer({ port: 0, credentials: [CRED], regions: ['eu-west-1'], log: false });
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-regions-'));
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: CRED.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CRED.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_MAX_ATTEMPTS: '1',
  };
});
afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!awsPresent)('AWS CLI v2: multi-Region keys across the Regions serve answers', () => {
  async function aws(region: string, ...args: string[]) {
    const r = await run(
      AWS,
      ['kms', ...args, '--region', region, '--endpoint-url', server.url, '--output', 'json'],
      env,
    );
    return { ...r, json: r.code === 0 && r.stdout.trim() !== '' ? JSON.parse(r.stdout) : undefined };
  }

  it('create in us-east-1, replicate to eu-west-1, MACs verify across Regions, replica state apart, primary swapped', async () => {
    const created = await aws(
      'us-east-1',
      'create-key',
      '--key-spec',
      'HMAC_256',
      '--key-usage',
      'GENERATE_VERIFY_MAC',
      '--multi-region',
    );
    expect(created.code, created.stderr).toBe(0);
    const keyId: string = created.json.KeyMetadata.KeyId;
    expect(keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(created.json.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType).toBe('PRIMARY');

    const rep = await aws(
      'us-east-1',
      'replicate-key',
      '--key-id',
      keyId,
      '--replica-region',
      'eu-west-1',
      '--description',
      'dublin',
    );
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.json.ReplicaKeyMetadata).toMatchObject({
      Arn: `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`,
      Description: 'dublin',
      MultiRegionConfiguration: { MultiRegionKeyType: 'REPLICA', PrimaryKey: { Region: 'us-east-1' } },
    });
    const again = await aws('us-east-1', 'replicate-key', '--key-id', keyId, '--replica-region', 'eu-west-1');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('AlreadyExistsException');

    const msg = join(dir, 'message.bin');
    writeFileSync(msg, random.bytes(64));
    const east = await aws(
      'us-east-1',
      'generate-mac',
      '--key-id',
      keyId,
      '--mac-algorithm',
      'HMAC_SHA_256',
      '--message',
      `fileb://${msg}`,
    );
    const west = await aws(
      'eu-west-1',
      'generate-mac',
      '--key-id',
      keyId,
      '--mac-algorithm',
      'HMAC_SHA_256',
      '--message',
      `fileb://${msg}`,
    );
    expect(east.code, east.stderr).toBe(0);
    expect(west.code, west.stderr).toBe(0);
    expect(west.json.KeyId).toBe(`arn:aws:kms:eu-west-1:111122223333:key/${keyId}`);
    for (const [region, mac] of [
      ['eu-west-1', east.json.Mac],
      ['us-east-1', west.json.Mac],
    ] as const) {
      const macFile = join(dir, `mac-${region}.bin`);
      writeFileSync(macFile, Buffer.from(mac, 'base64'));
      const v = await aws(
        region,
        'verify-mac',
        '--key-id',
        keyId,
        '--mac-algorithm',
        'HMAC_SHA_256',
        '--message',
        `fileb://${msg}`,
        '--mac',
        `fileb://${macFile}`,
      );
      expect(v.code, v.stderr).toBe(0);
      expect(v.json.MacValid).toBe(true);
    }

    expect((await aws('eu-west-1', 'disable-key', '--key-id', keyId)).code).toBe(0);
    expect((await aws('eu-west-1', 'describe-key', '--key-id', keyId)).json.KeyMetadata.KeyState).toBe('Disabled');
    expect((await aws('us-east-1', 'describe-key', '--key-id', keyId)).json.KeyMetadata.KeyState).toBe('Enabled');
    const refused = await aws(
      'eu-west-1',
      'generate-mac',
      '--key-id',
      keyId,
      '--mac-algorithm',
      'HMAC_SHA_256',
      '--message',
      `fileb://${msg}`,
    );
    expect(refused.stderr).toContain('DisabledException');
    expect((await aws('eu-west-1', 'enable-key', '--key-id', keyId)).code).toBe(0);

    const upd = await aws('us-east-1', 'update-primary-region', '--key-id', keyId, '--primary-region', 'eu-west-1');
    expect(upd.code, upd.stderr).toBe(0);
    const w = (await aws('eu-west-1', 'describe-key', '--key-id', keyId)).json.KeyMetadata.MultiRegionConfiguration;
    const e = (await aws('us-east-1', 'describe-key', '--key-id', keyId)).json.KeyMetadata.MultiRegionConfiguration;
    expect(w.MultiRegionKeyType).toBe('PRIMARY');
    expect(e.MultiRegionKeyType).toBe('REPLICA');
    expect(e.PrimaryKey).toEqual({ Arn: `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`, Region: 'eu-west-1' });

    // A Region serve does not answer is refused before anything runs.
    const other = await aws('ap-south-1', 'list-keys');
    expect(other.stderr).toContain('InvalidSignatureException');
  }, 120_000);

  it("Terraform's refresh calls: DescribeKey, GetKeyRotationStatus, ListResourceTags; UpdateKeyDescription", async () => {
    const created = await aws(
      'us-east-1',
      'create-key',
      '--key-spec',
      'HMAC_512',
      '--key-usage',
      'GENERATE_VERIFY_MAC',
      '--tags',
      'TagKey=env,TagValue=test',
    );
    expect(created.code, created.stderr).toBe(0);
    const { KeyId } = created.json.KeyMetadata;
    expect((await aws('us-east-1', 'describe-key', '--key-id', KeyId)).json.KeyMetadata.KeySpec).toBe('HMAC_512');
    // (The CLI's and Debian boto3's models predate the response's KeyId member and drop it; the SDK's test reads it.)
    expect((await aws('us-east-1', 'get-key-rotation-status', '--key-id', KeyId)).json.KeyRotationEnabled).toBe(false);
    expect((await aws('us-east-1', 'list-resource-tags', '--key-id', KeyId)).json.Tags).toEqual([
      { TagKey: 'env', TagValue: 'test' },
    ]);
    const upd = await aws(
      'us-east-1',
      'update-key-description',
      '--key-id',
      KeyId,
      '--description',
      'managed by terraform',
    );
    expect(upd.code, upd.stderr).toBe(0);
    expect((await aws('us-east-1', 'describe-key', '--key-id', KeyId)).json.KeyMetadata.Description).toBe(
      'managed by terraform',
    );
    const rot = await aws('us-east-1', 'enable-key-rotation', '--key-id', KeyId);
    expect(rot.stderr).toContain('UnsupportedOperationException');
  }, 120_000);
});

const BOTO3_SCRIPT = `
import json, sys, boto3, botocore
url = sys.argv[1]
east = boto3.client('kms', region_name='us-east-1', endpoint_url=url)
west = boto3.client('kms', region_name='eu-west-1', endpoint_url=url)
out = {}
key = east.create_key(KeySpec='HMAC_384', KeyUsage='GENERATE_VERIFY_MAC', MultiRegion=True)['KeyMetadata']
kid = key['KeyId']
out['keyId'] = kid
out['replica'] = east.replicate_key(KeyId=kid, ReplicaRegion='eu-west-1')['ReplicaKeyMetadata']['MultiRegionConfiguration']
msg = b'record 1'
mac = east.generate_mac(KeyId=kid, MacAlgorithm='HMAC_SHA_384', Message=msg)['Mac']
out['verifiedInWest'] = west.verify_mac(KeyId=kid, MacAlgorithm='HMAC_SHA_384', Message=msg, Mac=mac)['MacValid']
west.disable_key(KeyId=kid)
out['states'] = [east.describe_key(KeyId=kid)['KeyMetadata']['KeyState'], west.describe_key(KeyId=kid)['KeyMetadata']['KeyState']]
try:
    west.generate_mac(KeyId=kid, MacAlgorithm='HMAC_SHA_384', Message=msg)
    out['disabledError'] = None
except botocore.exceptions.ClientError as e:
    out['disabledError'] = e.response['Error']['Code']
west.enable_key(KeyId=kid)
east.update_primary_region(KeyId=kid, PrimaryRegion='eu-west-1')
out['types'] = [east.describe_key(KeyId=kid)['KeyMetadata']['MultiRegionConfiguration']['MultiRegionKeyType'],
                west.describe_key(KeyId=kid)['KeyMetadata']['MultiRegionConfiguration']['MultiRegionKeyType']]
out['rotation'] = west.get_key_rotation_status(KeyId=kid)['KeyRotationEnabled']
west.update_key_description(KeyId=kid, Description='from boto3')
out['descriptions'] = [east.describe_key(KeyId=kid)['KeyMetadata']['Description'], west.describe_key(KeyId=kid)['KeyMetadata']['Description']]
print(json.dumps(out))
`;

describe.skipIf(!boto3Present)('boto3: multi-Region keys across the Regions serve answers', () => {
  it('replicate, verify across Regions, replica state apart, primary swapped, rotation status, description', async () => {
    const r = await run(PYTHON, ['-', server.url], env, BOTO3_SCRIPT);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.replica).toMatchObject({ MultiRegionKeyType: 'REPLICA', PrimaryKey: { Region: 'us-east-1' } });
    expect(out.verifiedInWest).toBe(true);
    expect(out.states).toEqual(['Enabled', 'Disabled']);
    expect(out.disabledError).toBe('DisabledException');
    expect(out.types).toEqual(['REPLICA', 'PRIMARY']);
    expect(out.rotation).toBe(false);
    expect(out.descriptions).toEqual(['', 'from boto3']);
  }, 120_000);
});
