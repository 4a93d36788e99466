import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  GenerateMacCommand,
  KMSInvalidMacException,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client.js';
import { createFastPathClient } from '../src/fast-path.js';

const REMOTE_ARN = 'arn:aws:kms:eu-west-1:444455556666:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const REMOTE_ID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

/** Stands in for KMSClient: records what it is sent, answers GenerateMac like KMS would with `material`. */
class FakeRemote {
  sent: string[] = [];
  config = { region: 'eu-west-1' };
  constructor(private material: Buffer) {}
  async send(command: any): Promise<any> {
    this.sent.push(command.constructor.name);
    if (command.constructor.name === 'GenerateMacCommand') {
      return {
        Mac: new Uint8Array(createHmac('sha256', this.material).update(command.input.Message).digest()),
        MacAlgorithm: command.input.MacAlgorithm,
        KeyId: REMOTE_ARN,
        $metadata: { httpStatusCode: 200 },
      };
    }
    return { remote: true, $metadata: { httpStatusCode: 200 } };
  }
  destroy() {
    this.sent.push('destroy');
  }
}

async function setup() {
  const material = randomBytes(32);
  const remote = new FakeRemote(material);
  const local = new KmsHmacClient();
  const { KeyMetadata } = await local.importRemoteKey({ RemoteArn: REMOTE_ARN, KeySpec: 'HMAC_256', KeyMaterial: material, AliasName: 'alias/signing' });
  const client = createFastPathClient(remote, local);
  return { material, remote, local, client, localKey: KeyMetadata };
}

describe('fast path for real KMS keys', () => {
  it('answers GenerateMac/VerifyMac locally, byte-identical to KMS, with the remote ARN as KeyId', async () => {
    const { remote, client, localKey } = await setup();
    expect(localKey.Origin).toBe('EXTERNAL');
    const msg = randomBytes(64);
    const fromRemote = await remote.send(new GenerateMacCommand({ KeyId: REMOTE_ARN, MacAlgorithm: 'HMAC_SHA_256', Message: msg }));
    remote.sent = [];
    for (const KeyId of [REMOTE_ARN, REMOTE_ID, 'alias/signing', 'arn:aws:kms:eu-west-1:444455556666:alias/signing']) {
      const out: any = await client.send(new GenerateMacCommand({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: msg }));
      expect(out.Mac).toEqual(fromRemote.Mac);
      expect(out.KeyId).toBe(REMOTE_ARN);
      expect(out.$metadata.httpStatusCode).toBe(200);
      const v: any = await client.send(new VerifyMacCommand({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: msg, Mac: out.Mac }));
      expect(v).toMatchObject({ KeyId: REMOTE_ARN, MacValid: true, MacAlgorithm: 'HMAC_SHA_256' });
    }
    expect(remote.sent).toEqual([]);
    expect(client.fastPathStats.local).toBe(8);
    const bad = await client.send(new VerifyMacCommand({ KeyId: REMOTE_ARN, MacAlgorithm: 'HMAC_SHA_256', Message: msg, Mac: new Uint8Array(32) })).catch((e) => e);
    expect(bad).toBeInstanceOf(KMSInvalidMacException);
    const val = await client.send(new GenerateMacCommand({ KeyId: REMOTE_ARN, MacAlgorithm: 'HMAC_SHA_512', Message: msg })).catch((e) => e);
    expect(val.name).toBe('InvalidKeyUsageException');
    expect(remote.sent).toEqual([]);
  });

  it('forwards every other command, unknown keys, DryRun and keys not usable locally', async () => {
    const { remote, local, client, localKey } = await setup();
    await client.send(new DescribeKeyCommand({ KeyId: REMOTE_ARN }));
    await client.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
    await client.send(new GenerateMacCommand({ KeyId: 'arn:aws:kms:eu-west-1:444455556666:key/11111111-1111-1111-1111-111111111111', MacAlgorithm: 'HMAC_SHA_256', Message: new Uint8Array(1) }));
    await client.send(new GenerateMacCommand({ KeyId: REMOTE_ARN, MacAlgorithm: 'HMAC_SHA_256', Message: new Uint8Array(1), DryRun: true }));
    await local.disableKey({ KeyId: localKey.KeyId });
    await client.send(new GenerateMacCommand({ KeyId: REMOTE_ARN, MacAlgorithm: 'HMAC_SHA_256', Message: new Uint8Array(1) }));
    expect(remote.sent).toEqual(['DescribeKeyCommand', 'CreateKeyCommand', 'GenerateMacCommand', 'GenerateMacCommand', 'GenerateMacCommand']);
    expect(client.fastPathStats.forwarded).toBe(5);
    // other members pass through to the real client
    expect(client.config.region).toBe('eu-west-1');
    client.destroy();
    expect(remote.sent.at(-1)).toBe('destroy');
  });

  it('linkRemoteKey links a key whose material came through the import flow; a local key is never linked twice', async () => {
    const { local } = await setup();
    const dup = await local.importRemoteKey({ RemoteArn: REMOTE_ARN, KeySpec: 'HMAC_256', KeyMaterial: randomBytes(32) }).catch((e) => e);
    expect(dup.name).toBe('AlreadyExistsException');
    const { KeyMetadata: normal } = await local.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const e = await local.linkRemoteKey({ KeyId: normal.KeyId, RemoteArn: 'arn:aws:kms:eu-west-1:444455556666:key/22222222-2222-2222-2222-222222222222' }).catch((x) => x);
    expect(e.name).toBe('UnsupportedOperationException');
    const short = await local.importRemoteKey({ RemoteArn: 'arn:aws:kms:eu-west-1:1:key/33333333-3333-3333-3333-333333333333', KeySpec: 'HMAC_256', KeyMaterial: randomBytes(16) }).catch((x) => x);
    expect(short.name).toBe('IncorrectKeyMaterialException');
  });
});
