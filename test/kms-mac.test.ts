import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisabledException,
  DryRunOperationException,
  GenerateMacCommand,
  InvalidKeyUsageException,
  KMSInvalidMacException,
  KMSInvalidStateException,
  KMSServiceException,
  NotFoundException,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';
import { toWireError, NotFoundException as OwnNotFound, KmsError } from '../src/kms/errors.js';

const enc = new TextEncoder();
const ENUM = '[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]';
const SPECS = [
  ['HMAC_224', 'HMAC_SHA_224', 'sha224', 28],
  ['HMAC_256', 'HMAC_SHA_256', 'sha256', 32],
  ['HMAC_384', 'HMAC_SHA_384', 'sha384', 48],
  ['HMAC_512', 'HMAC_SHA_512', 'sha512', 64],
] as const;

async function setup() {
  const client = new KmsHmacClient();
  const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
  return { client, key: KeyMetadata };
}

describe('GenerateMac / VerifyMac', () => {
  it('generates and verifies for all four specs; MAC sizes; KeyId is the key ARN', async () => {
    const client = new KmsHmacClient();
    for (const [spec, alg, , len] of SPECS) {
      const { KeyMetadata: md } = await client.createKey({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC' });
      const out = await client.generateMac({ KeyId: md.KeyId, MacAlgorithm: alg, Message: enc.encode('hello') });
      expect(out.Mac).toBeInstanceOf(Uint8Array);
      expect(out.Mac.length).toBe(len);
      expect(out.KeyId).toBe(md.Arn);
      expect(out.KeyId).toBe(`arn:aws:kms:us-east-1:111122223333:key/${md.KeyId}`);
      expect(out.MacAlgorithm).toBe(alg);
      const v = await client.verifyMac({
        KeyId: md.Arn,
        MacAlgorithm: alg,
        Message: enc.encode('hello'),
        Mac: out.Mac,
      });
      expect(v).toEqual({ KeyId: md.Arn, MacValid: true, MacAlgorithm: alg });
      expect(Object.keys(v)).toEqual(['KeyId', 'MacValid', 'MacAlgorithm']);
    }
  });

  it('accepts key ID, key ARN, alias name and alias ARN; response KeyId is always the key ARN', async () => {
    const { client, key } = await setup();
    await client.createAlias({ AliasName: 'alias/my-mac', TargetKeyId: key.KeyId });
    const msg = enc.encode('m');
    const ids = [key.KeyId, key.Arn, 'alias/my-mac', 'arn:aws:kms:us-east-1:111122223333:alias/my-mac'];
    const macs = ids.map((KeyId) => client.generateMacSync({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: msg }));
    for (const m of macs) {
      expect(m.KeyId).toBe(key.Arn);
      expect(m.Mac).toEqual(macs[0]!.Mac);
    }
  });

  it('sync and Promise forms give identical results, and strings are taken as UTF-8', async () => {
    const { client, key } = await setup();
    const a = client.generateMacSync({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'abc' });
    const b = await client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: enc.encode('abc') });
    expect(a).toEqual(b);
  });

  it('MACs do not alias each other (results are owned bytes)', async () => {
    const { client, key } = await setup();
    const a = client.generateMacSync({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'a' }).Mac;
    const copy = a.slice();
    for (let i = 0; i < 2000; i++)
      client.generateMacSync({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: `b${i}` });
    expect(a).toEqual(copy);
  });

  describe('ValidationException (Coral format)', () => {
    it('bad enum: AWS order of the value set', async () => {
      const { client, key } = await setup();
      const e = await caught(
        client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'INVALID', Message: enc.encode('x') }),
      );
      expect(e.name).toBe('ValidationException');
      expect(e.message).toBe(
        `1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: ${ENUM}`,
      );
      expect(e.$fault).toBe('client');
      expect(e.$metadata.httpStatusCode).toBe(400);
      expect(e).toBeInstanceOf(KMSServiceException);
    });

    it('message too long / empty: blob value never printed', async () => {
      const { client, key } = await setup();
      let e = await caught(
        client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: new Uint8Array(4097) }),
      );
      expect(e.message).toBe(
        "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096",
      );
      e = await caught(
        client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: new Uint8Array(0) }),
      );
      expect(e.message).toBe(
        "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
      // 4096 is fine
      const ok = await client.generateMac({
        KeyId: key.KeyId,
        MacAlgorithm: 'HMAC_SHA_256',
        Message: new Uint8Array(4096),
      });
      expect(ok.Mac.length).toBe(32);
    });

    it('mac length bounds on VerifyMac', async () => {
      const { client, key } = await setup();
      let e = await caught(
        client.verifyMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x', Mac: new Uint8Array(0) }),
      );
      expect(e.message).toBe(
        "1 validation error detected: Value at 'mac' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
      e = await caught(
        client.verifyMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x', Mac: new Uint8Array(6145) }),
      );
      expect(e.message).toBe(
        "1 validation error detected: Value at 'mac' failed to satisfy constraint: Member must have length less than or equal to 6144",
      );
    });

    it('empty and missing keyId; too long keyId', async () => {
      const { client } = await setup();
      let e = await caught(client.generateMac({ KeyId: '', MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e.message).toBe(
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
      e = await caught(client.generateMac({ KeyId: undefined, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e.message).toMatch(
        /^1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null$/,
      );
      const long = 'k'.repeat(2049);
      e = await caught(client.generateMac({ KeyId: long, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e.message).toBe(
        `1 validation error detected: Value '${long}' at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048`,
      );
    });

    it('missing message: prefix only', async () => {
      const { client, key } = await setup();
      const e = await caught(
        client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: undefined }),
      );
      expect(e.name).toBe('ValidationException');
      expect(e.message).toMatch(
        /^1 validation error detected: Value (null )?at 'message' failed to satisfy constraint: Member must not be null$/,
      );
    });

    it('several violations are counted and joined', async () => {
      const { client } = await setup();
      const e = await caught(client.generateMac({ KeyId: '', MacAlgorithm: 'NOPE', Message: new Uint8Array(5000) }));
      expect(e.message).toBe(
        "3 validation errors detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096; " +
          "Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
          `Value 'NOPE' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: ${ENUM}`,
      );
    });

    it('validation comes before key lookup', async () => {
      const { client } = await setup();
      const e = await caught(
        client.generateMac({ KeyId: 'nonexistent', MacAlgorithm: 'HMAC_SHA_256', Message: new Uint8Array(5000) }),
      );
      expect(e.name).toBe('ValidationException');
      const e2 = await caught(client.generateMac({ KeyId: 'nonexistent', MacAlgorithm: 'BAD', Message: 'x' }));
      expect(e2.name).toBe('ValidationException');
    });

    it('GrantTokens: 0..10 tokens, each 1..8192 characters', async () => {
      const { client, key } = await setup();
      const base = { KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };
      // Tokens are checked since grants exist (kms-grants.test.ts): ten real ones pass, a garbled one passes validation only.
      const { GrantToken } = await client.createGrant({
        KeyId: key.KeyId,
        GranteePrincipal: 'arn:aws:iam::111122223333:user/g',
        Operations: ['GenerateMac'],
      });
      await expect(client.generateMac({ ...base, GrantTokens: Array(10).fill(GrantToken) })).resolves.toBeTruthy();
      expect((await caught(client.generateMac({ ...base, GrantTokens: ['a'.repeat(8192)] }))).name).toBe(
        'InvalidGrantTokenException',
      );
      let e = await caught(client.generateMac({ ...base, GrantTokens: Array(11).fill('t') }));
      expect(e.name).toBe('ValidationException');
      expect(e.message).toMatch(
        /at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10$/,
      );
      e = await caught(client.generateMac({ ...base, GrantTokens: [''] }));
      expect(e.message).toMatch(
        /^1 validation error detected: Value '' at 'grantTokens\.1\.member' failed to satisfy constraint: Member must have length greater than or equal to 1$/,
      );
      e = await caught(client.generateMac({ ...base, GrantTokens: ['a'.repeat(8193)] }));
      expect(e.message).toMatch(/Member must have length less than or equal to 8192$/);
    });
  });

  describe('NotFoundException', () => {
    it('malformed KeyId → Invalid keyId', async () => {
      const { client } = await setup();
      const e = await caught(client.generateMac({ KeyId: 'key_id', MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e).toBeInstanceOf(NotFoundException);
      expect(e.message).toBe("Invalid keyId 'key_id'");
      expect(e.$metadata.httpStatusCode).toBe(400);
    });

    it('well-formed key ID that does not exist → ARN built from the client region/account', async () => {
      const client = new KmsHmacClient({ region: 'eu-west-1', accountId: '000000000000' });
      const id = '11111111-2222-3333-4444-555555555555';
      const e = await caught(client.generateMac({ KeyId: id, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e.message).toBe(`Key 'arn:aws:kms:eu-west-1:000000000000:key/${id}' does not exist`);
      const e2 = await caught(
        client.generateMac({
          KeyId: `arn:aws:kms:eu-west-1:000000000000:key/${id}`,
          MacAlgorithm: 'HMAC_SHA_256',
          Message: 'x',
        }),
      );
      expect(e2.message).toBe(`Key 'arn:aws:kms:eu-west-1:000000000000:key/${id}' does not exist`);
    });

    it('key ARN of another region → Invalid arn <region>', async () => {
      const { client, key } = await setup();
      const arn = key.Arn.replace('us-east-1', 'us-west-2');
      const e = await caught(client.generateMac({ KeyId: arn, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e).toBeInstanceOf(NotFoundException);
      expect(e.message).toBe('Invalid arn us-west-2');
    });

    it('alias not found (name and ARN)', async () => {
      const { client } = await setup();
      let e = await caught(client.generateMac({ KeyId: 'alias/nope', MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e.message).toBe('Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found.');
      e = await caught(
        client.generateMac({
          KeyId: 'arn:aws:kms:us-east-1:111122223333:alias/nope',
          MacAlgorithm: 'HMAC_SHA_256',
          Message: 'x',
        }),
      );
      expect(e.message).toBe('Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found.');
    });
  });

  describe('key state, usage, algorithm', () => {
    it('Disabled → DisabledException "<arn> is disabled."; re-enabled works', async () => {
      const { client, key } = await setup();
      const req = { KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' };
      client.generateMacSync(req); // warm the cache
      await client.disableKey({ KeyId: key.KeyId });
      const e = await caught(() => client.generateMacSync(req));
      expect(e).toBeInstanceOf(DisabledException);
      expect(e.message).toBe(`${key.Arn} is disabled.`);
      expect(e.$metadata.httpStatusCode).toBe(400);
      const e2 = await caught(client.verifyMac({ ...req, Mac: new Uint8Array(32) }));
      expect(e2.name).toBe('DisabledException');
      await client.enableKey({ KeyId: key.KeyId });
      expect(client.generateMacSync(req).KeyId).toBe(key.Arn);
    });

    it('PendingDeletion → KMSInvalidStateException "<arn> is pending deletion."', async () => {
      const { client, key } = await setup();
      await client.scheduleKeyDeletion({ KeyId: key.KeyId, PendingWindowInDays: 7 });
      const e = await caught(client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e).toBeInstanceOf(KMSInvalidStateException);
      expect(e.message).toBe(`${key.Arn} is pending deletion.`);
    });

    it('PendingImport → KMSInvalidStateException "<arn> is pending import."', async () => {
      const client = new KmsHmacClient();
      const { KeyMetadata: k } = await client.createKey({
        KeySpec: 'HMAC_256',
        KeyUsage: 'GENERATE_VERIFY_MAC',
        Origin: 'EXTERNAL',
      });
      const e = await caught(client.generateMac({ KeyId: k.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e.name).toBe('KMSInvalidStateException');
      expect(e.message).toBe(`${k.Arn} is pending import.`);
    });

    it('algorithm incompatible with key spec → InvalidKeyUsageException', async () => {
      const { client, key } = await setup();
      const e = await caught(client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_512', Message: 'x' }));
      expect(e).toBeInstanceOf(InvalidKeyUsageException);
      expect(e.message).toBe('Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.');
      const e2 = await caught(
        client.verifyMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_224', Message: 'x', Mac: new Uint8Array(28) }),
      );
      expect(e2.message).toBe('Algorithm HMAC_SHA_224 is incompatible with key spec HMAC_256.');
    });

    it('key usage other than GENERATE_VERIFY_MAC → InvalidKeyUsageException (a foreign record in a shared store)', async () => {
      const { client, key } = await setup();
      const rec = client.keyStore.getKey(key.KeyId)!;
      await client.keyStore.transact((tx) => tx.replaceKey({ ...rec, keyUsage: 'ENCRYPT_DECRYPT' as any }));
      const e = await caught(client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
      expect(e).toBeInstanceOf(InvalidKeyUsageException);
      expect(e.message).toBe(`${key.Arn} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.`);
      const e2 = await caught(
        client.verifyMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x', Mac: new Uint8Array(32) }),
      );
      expect(e2.message).toBe(`${key.Arn} key usage is ENCRYPT_DECRYPT which is not valid for VerifyMac.`);
    });

    it('state is checked before the algorithm', async () => {
      const { client, key } = await setup();
      await client.disableKey({ KeyId: key.KeyId });
      const e = await caught(client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_512', Message: 'x' }));
      expect(e.name).toBe('DisabledException');
    });
  });

  describe('VerifyMac mismatch', () => {
    it('KMSInvalidMacException with no message member on the wire; different message, wrong key, truncated MAC', async () => {
      const { client, key } = await setup();
      const { KeyMetadata: other } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
      const { Mac } = await client.generateMac({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'hello' });
      const cases = [
        { KeyId: key.KeyId, Message: 'hellO', Mac },
        { KeyId: other.KeyId, Message: 'hello', Mac },
        { KeyId: key.KeyId, Message: 'hello', Mac: Mac.subarray(0, 31) },
        { KeyId: key.KeyId, Message: 'hello', Mac: new Uint8Array([...Mac, 0]) },
      ];
      for (const c of cases) {
        const e = await caught(client.verifyMac({ ...c, MacAlgorithm: 'HMAC_SHA_256' }));
        expect(e).toBeInstanceOf(KMSInvalidMacException);
        expect(e.name).toBe('KMSInvalidMacException');
        expect(e.$metadata.httpStatusCode).toBe(400);
        expect(e.$fault).toBe('client');
        expect(e.message).toBe('UnknownError'); // what the SDK shows for AWS's message-less body
        expect(toWireError(e)).toEqual({ status: 400, type: 'KMSInvalidMacException' });
      }
    });
  });

  describe('DryRun', () => {
    it('DryRunOperationException only when everything else would succeed', async () => {
      const { client, key } = await setup();
      const base = { KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x', DryRun: true };
      let e = await caught(client.generateMac(base));
      expect(e).toBeInstanceOf(DryRunOperationException);
      expect(e.message).toBe('The request would have succeeded, but the DryRun option is set.');
      expect(e.$metadata.httpStatusCode).toBe(400);
      const { Mac } = await client.generateMac({ ...base, DryRun: false });
      e = await caught(client.verifyMac({ ...base, Mac }));
      expect(e.name).toBe('DryRunOperationException');
      // otherwise: the real error
      e = await caught(client.generateMac({ ...base, MacAlgorithm: 'HMAC_SHA_512' }));
      expect(e.name).toBe('InvalidKeyUsageException');
      e = await caught(client.generateMac({ ...base, KeyId: 'alias/missing' }));
      expect(e.name).toBe('NotFoundException');
      e = await caught(client.generateMac({ ...base, Message: new Uint8Array(0) }));
      expect(e.name).toBe('ValidationException');
      e = await caught(client.verifyMac({ ...base, Mac: new Uint8Array(32) }));
      expect(e.name).toBe('KMSInvalidMacException');
      await client.disableKey({ KeyId: key.KeyId });
      e = await caught(client.generateMac(base));
      expect(e.name).toBe('DisabledException');
    });
  });

  describe('send() with @aws-sdk/client-kms commands', () => {
    it('returns the output plus $metadata, and throws the SDK classes', async () => {
      const client = new KmsHmacClient();
      const created: any = await client.send(
        new CreateKeyCommand({ KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC' }),
      );
      expect(created.$metadata).toMatchObject({ httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 });
      expect(typeof created.$metadata.requestId).toBe('string');
      const keyId = created.KeyMetadata.KeyId;
      await client.send(new CreateAliasCommand({ AliasName: 'alias/sdk', TargetKeyId: keyId }));
      const msg = enc.encode('payload');
      const g: any = await client.send(
        new GenerateMacCommand({ KeyId: 'alias/sdk', MacAlgorithm: 'HMAC_SHA_384', Message: msg }),
      );
      expect(g.KeyId).toBe(created.KeyMetadata.Arn);
      expect(g.Mac.length).toBe(48);
      const v: any = await client.send(
        new VerifyMacCommand({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_384', Message: msg, Mac: g.Mac }),
      );
      expect(v.MacValid).toBe(true);
      expect(v.$metadata.httpStatusCode).toBe(200);
      const e = await caught(
        client.send(
          new VerifyMacCommand({
            KeyId: keyId,
            MacAlgorithm: 'HMAC_SHA_384',
            Message: enc.encode('other'),
            Mac: g.Mac,
          }),
        ),
      );
      expect(e).toBeInstanceOf(KMSInvalidMacException);
      expect(e).toBeInstanceOf(KMSServiceException);
      const nf = await caught(
        client.send(new GenerateMacCommand({ KeyId: 'alias/none', MacAlgorithm: 'HMAC_SHA_384', Message: msg })),
      );
      expect(nf).toBeInstanceOf(NotFoundException);
      expect(nf).toBeInstanceOf(OwnNotFound); // our class recognises SDK instances too
      expect(nf).toBeInstanceOf(KmsError);
      const val = await caught(
        client.send(new GenerateMacCommand({ KeyId: keyId, MacAlgorithm: 'X' as any, Message: msg })),
      );
      expect(val).toBeInstanceOf(KMSServiceException);
      expect(val.name).toBe('ValidationException');
    });

    it('unsupported commands are rejected clearly', async () => {
      const { EncryptCommand } = await import('@aws-sdk/client-kms');
      const client = new KmsHmacClient();
      const e = await caught(client.send(new EncryptCommand({ KeyId: 'alias/x', Plaintext: new Uint8Array(1) })));
      expect(e.name).toBe('UnsupportedOperationException');
    });
  });

  it('MACs from generated keys are standard HMAC (cross-checked after import in kms-import tests); inspect/JSON hide secrets', async () => {
    const { client, key } = await setup();
    client.generateMacSync({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' });
    expect(inspect(client)).not.toMatch(/keyMaterial|Uint8Array/);
    expect(JSON.stringify(client)).toBe('{"region":"us-east-1","accountId":"111122223333"}');
    const rec = client.keyStore.getKey(key.KeyId)!;
    const mac = createHmac('sha256', rec.keyMaterial!).update('x').digest();
    expect(client.generateMacSync({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }).Mac).toEqual(
      new Uint8Array(mac),
    );
    expect(rec.keyMaterial!.length).toBe(32);
  });
});
