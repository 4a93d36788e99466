// Every [H] behaviour of the spec, through both the methods and send() with
// real @aws-sdk/client-kms command objects, asserting the SDK classes.
import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import * as sdk from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';

const ENUM = '[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]';
const enc = new TextEncoder();

type Call = (client: KmsHmacClient, op: string, input: any) => Promise<any>;
const viaMethod: Call = (client, op, input) => (client as any)[op[0]!.toLowerCase() + op.slice(1)](input);
const viaSend: Call = (client, op, input) => client.send(new (sdk as any)[`${op}Command`](input));

describe.each([
  ['method', viaMethod],
  ['send()', viaSend],
] as const)('[H] behaviours via %s', (_name, call) => {
  async function world() {
    const client = new KmsHmacClient();
    const key = (await call(client, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata;
    await call(client, 'CreateAlias', { AliasName: 'alias/k', TargetKeyId: key.KeyId });
    return { client, key };
  }
  const gen = (KeyId: string, extra: object = {}) => ({
    KeyId,
    MacAlgorithm: 'HMAC_SHA_256',
    Message: enc.encode('m'),
    ...extra,
  });

  it('success shapes: GenerateMac / VerifyMac KeyId is the ARN for every KeyId form', async () => {
    const { client, key } = await world();
    for (const id of [key.KeyId, key.Arn, 'alias/k', 'arn:aws:kms:us-east-1:111122223333:alias/k']) {
      const g = await call(client, 'GenerateMac', gen(id));
      expect(g.KeyId).toBe(key.Arn);
      expect(g.MacAlgorithm).toBe('HMAC_SHA_256');
      expect(g.Mac).toHaveLength(32);
      const v = await call(client, 'VerifyMac', { ...gen(id), Mac: g.Mac });
      expect(v).toMatchObject({ KeyId: key.Arn, MacValid: true, MacAlgorithm: 'HMAC_SHA_256' });
    }
  });

  const errorCases: [
    string,
    (k: any) => [string, object],
    string,
    string | RegExp,
    (new (...a: any[]) => Error) | undefined,
  ][] = [
    [
      'bad enum',
      (k) => ['GenerateMac', gen(k.KeyId, { MacAlgorithm: 'INVALID' })],
      'ValidationException',
      `1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: ${ENUM}`,
      sdk.KMSServiceException,
    ],
    [
      'message > 4096',
      (k) => ['GenerateMac', gen(k.KeyId, { Message: new Uint8Array(4097) })],
      'ValidationException',
      "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096",
      sdk.KMSServiceException,
    ],
    [
      'empty keyId',
      () => ['GenerateMac', gen('')],
      'ValidationException',
      "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1",
      sdk.KMSServiceException,
    ],
    [
      'invalid keyId',
      () => ['GenerateMac', gen('key_id')],
      'NotFoundException',
      "Invalid keyId 'key_id'",
      sdk.NotFoundException,
    ],
    [
      'missing key',
      () => ['VerifyMac', { ...gen('12345678-1234-1234-1234-123456789012'), Mac: new Uint8Array(32) }],
      'NotFoundException',
      "Key 'arn:aws:kms:us-east-1:111122223333:key/12345678-1234-1234-1234-123456789012' does not exist",
      sdk.NotFoundException,
    ],
    [
      'other region',
      (k) => ['DescribeKey', { KeyId: k.Arn.replace('us-east-1', 'ap-south-1') }],
      'NotFoundException',
      'Invalid arn ap-south-1',
      sdk.NotFoundException,
    ],
    [
      'alias not found',
      () => ['GenerateMac', gen('alias/none')],
      'NotFoundException',
      'Alias arn:aws:kms:us-east-1:111122223333:alias/none is not found.',
      sdk.NotFoundException,
    ],
    [
      'algorithm vs spec',
      (k) => ['GenerateMac', gen(k.KeyId, { MacAlgorithm: 'HMAC_SHA_512' })],
      'InvalidKeyUsageException',
      'Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.',
      sdk.InvalidKeyUsageException,
    ],
    [
      'MAC mismatch',
      (k) => ['VerifyMac', { ...gen(k.KeyId), Mac: new Uint8Array(32) }],
      'KMSInvalidMacException',
      'UnknownError',
      sdk.KMSInvalidMacException,
    ],
    [
      'DryRun',
      (k) => ['GenerateMac', gen(k.KeyId, { DryRun: true })],
      'DryRunOperationException',
      'The request would have succeeded, but the DryRun option is set.',
      sdk.DryRunOperationException,
    ],
    [
      'CreateKey without KeyUsage',
      () => ['CreateKey', { KeySpec: 'HMAC_256' }],
      'ValidationException',
      'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
      sdk.KMSServiceException,
    ],
    [
      'alias without prefix',
      (k) => ['CreateAlias', { AliasName: 'k2', TargetKeyId: k.KeyId }],
      'ValidationException',
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
      sdk.KMSServiceException,
    ],
    [
      'rotation of an HMAC key',
      (k) => ['EnableKeyRotation', { KeyId: k.KeyId }],
      'UnsupportedOperationException',
      /HMAC_256/,
      sdk.UnsupportedOperationException,
    ],
    [
      'import without ValidTo',
      (k) => [
        'ImportKeyMaterial',
        {
          KeyId: k.KeyId,
          ImportToken: new Uint8Array(8),
          EncryptedKeyMaterial: new Uint8Array(8),
          ExpirationModel: 'KEY_MATERIAL_EXPIRES',
        },
      ],
      'ValidationException',
      'A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES',
      sdk.KMSServiceException,
    ],
  ];

  it.each(errorCases)('%s', async (_label, make, name, message, cls) => {
    const { client, key } = await world();
    const [op, input] = make(key);
    const e = await caught(call(client, op, input));
    expect(e.name).toBe(name);
    if (typeof message === 'string') expect(e.message).toBe(message);
    else expect(e.message).toMatch(message);
    expect(e.$fault).toBe('client');
    expect(e.$metadata.httpStatusCode).toBe(400);
    if (cls) expect(e).toBeInstanceOf(cls);
  });

  it('state errors: disabled, pending deletion, pending import', async () => {
    const { client, key } = await world();
    await call(client, 'DisableKey', { KeyId: key.KeyId });
    let e = await caught(call(client, 'GenerateMac', gen('alias/k')));
    expect(e).toBeInstanceOf(sdk.DisabledException);
    expect(e.message).toBe(`${key.Arn} is disabled.`);
    await call(client, 'ScheduleKeyDeletion', { KeyId: key.KeyId, PendingWindowInDays: 7 });
    e = await caught(call(client, 'VerifyMac', { ...gen(key.Arn), Mac: new Uint8Array(32) }));
    expect(e).toBeInstanceOf(sdk.KMSInvalidStateException);
    expect(e.message).toBe(`${key.Arn} is pending deletion.`);
    const ext = (
      await call(client, 'CreateKey', { KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL' })
    ).KeyMetadata;
    expect(ext).toMatchObject({ KeyState: 'PendingImport', Enabled: false, Origin: 'EXTERNAL' });
    e = await caught(call(client, 'GenerateMac', gen(ext.KeyId, { MacAlgorithm: 'HMAC_SHA_384' })));
    expect(e).toBeInstanceOf(sdk.KMSInvalidStateException);
    expect(e.message).toBe(`${ext.Arn} is pending import.`);
  });

  it('DescribeKey metadata members', async () => {
    const { client, key } = await world();
    const md = (await call(client, 'DescribeKey', { KeyId: 'alias/k' })).KeyMetadata;
    expect(md).toEqual(key);
    expect(md).toMatchObject({
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'HMAC_256',
      KeySpec: 'HMAC_256',
      MacAlgorithms: ['HMAC_SHA_256'],
      MultiRegion: false,
      Description: '',
      Origin: 'AWS_KMS',
      Enabled: true,
    });
  });
});

describe('the operation registry (src/kms/operations.ts)', () => {
  it('names real SDK commands, and client methods that exist', async () => {
    const { OPERATIONS } = await import('../src/kms/operations.js');
    for (const [name, spec] of OPERATIONS) {
      expect(typeof (sdk as Record<string, unknown>)[`${name}Command`], name).toBe('function');
      expect(typeof (KmsHmacClient.prototype as unknown as Record<string, unknown>)[spec.method], spec.method).toBe(
        'function',
      );
    }
  });
});
