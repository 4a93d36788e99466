import { constants, createCipheriv, createHmac, createPublicKey, publicEncrypt } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import {
  ExpiredImportTokenException,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  IncorrectKeyMaterialException,
  InvalidImportTokenException,
} from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';
import { random } from './support/random.js';

const HOUR = 3_600_000;

function wrap(publicKeyDer: Uint8Array, material: Uint8Array, algorithm: string): Uint8Array {
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  if (algorithm.startsWith('RSAES_OAEP')) {
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, material);
  }
  const aes = random.bytes(32);
  const wrappedAes = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, aes);
  const c = createCipheriv('id-aes256-wrap-pad', aes, Buffer.from('A65959A6', 'hex'));
  return Buffer.concat([wrappedAes, c.update(material), c.final()]);
}

async function externalKey(client: KmsHmacClient, spec = 'HMAC_256') {
  return (await client.createKey({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL' })).KeyMetadata;
}

describe('import flow', () => {
  it('EXTERNAL key starts PendingImport; import makes it Enabled; MACs equal node:crypto for every spec and wrapping algorithm', async () => {
    const client = new KmsHmacClient();
    const cases = [
      ['HMAC_224', 'HMAC_SHA_224', 'sha224', 28, 'RSAES_OAEP_SHA_256'],
      ['HMAC_256', 'HMAC_SHA_256', 'sha256', 32, 'RSAES_OAEP_SHA_1'],
      ['HMAC_384', 'HMAC_SHA_384', 'sha384', 128, 'RSA_AES_KEY_WRAP_SHA_256'],
      ['HMAC_512', 'HMAC_SHA_512', 'sha512', 100, 'RSA_AES_KEY_WRAP_SHA_1'],
    ] as const;
    for (const [spec, alg, hash, len, wrapping] of cases) {
      const md = await externalKey(client, spec);
      expect(md.KeyState).toBe('PendingImport');
      expect(md.Enabled).toBe(false);
      expect(md.Origin).toBe('EXTERNAL');
      const p = await client.getParametersForImport({
        KeyId: md.KeyId,
        WrappingAlgorithm: wrapping,
        WrappingKeySpec: 'RSA_2048',
      });
      expect(p.KeyId).toBe(md.Arn);
      expect(p.ImportToken).toBeInstanceOf(Uint8Array);
      expect(p.PublicKey).toBeInstanceOf(Uint8Array);
      const material = random.bytes(len);
      await client.importKeyMaterial({
        KeyId: md.KeyId,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: wrap(p.PublicKey, material, wrapping),
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      });
      const after = (await client.describeKey({ KeyId: md.KeyId })).KeyMetadata;
      expect(after.KeyState).toBe('Enabled');
      expect(after.Enabled).toBe(true);
      expect(after.ExpirationModel).toBe('KEY_MATERIAL_DOES_NOT_EXPIRE');
      expect(after).not.toHaveProperty('ValidTo');
      for (const msg of [Buffer.from('a'), random.bytes(64), random.bytes(4096)]) {
        const out = client.generateMacSync({ KeyId: md.KeyId, MacAlgorithm: alg, Message: msg });
        expect(Buffer.from(out.Mac).toString('hex')).toBe(createHmac(hash, material).update(msg).digest('hex'));
      }
    }
  });

  it('GetParametersForImport: real RSA key of the asked size, valid 24 h; errors for AWS_KMS keys and unsupported algorithms', async () => {
    const client = new KmsHmacClient({ clock: () => 1_900_000_000_000 });
    const md = await externalKey(client);
    const p: any = await client.send(
      new GetParametersForImportCommand({
        KeyId: md.Arn,
        WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
        WrappingKeySpec: 'RSA_3072',
      }),
    );
    const pub = createPublicKey({ key: Buffer.from(p.PublicKey), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyType).toBe('rsa');
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(p.ParametersValidTo).toEqual(new Date(1_900_000_000_000 + 24 * HOUR));
    expect(p.$metadata.httpStatusCode).toBe(200);
    const { KeyMetadata: normal } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    let e = await caught(
      client.getParametersForImport({
        KeyId: normal.KeyId,
        WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
        WrappingKeySpec: 'RSA_2048',
      }),
    );
    expect(e.name).toBe('UnsupportedOperationException');
    expect(e.message).toBe(`${normal.Arn} origin is AWS_KMS which is not valid for this operation.`);
    e = await caught(
      client.getParametersForImport({
        KeyId: md.KeyId,
        WrappingAlgorithm: 'RSAES_PKCS1_V1_5',
        WrappingKeySpec: 'RSA_2048',
      }),
    );
    expect(e.name).toBe('UnsupportedOperationException');
    e = await caught(
      client.getParametersForImport({ KeyId: md.KeyId, WrappingAlgorithm: 'NOPE', WrappingKeySpec: 'RSA_2048' }),
    );
    expect(e.name).toBe('ValidationException');
    expect(e.message).toMatch(
      /at 'wrappingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set/,
    );
  });

  it('RSA_4096 wrapping key', async () => {
    const client = new KmsHmacClient();
    const md = await externalKey(client);
    const p = await client.getParametersForImport({
      KeyId: md.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
      WrappingKeySpec: 'RSA_4096',
    });
    const pub = createPublicKey({ key: Buffer.from(p.PublicKey), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(4096);
    const material = random.bytes(32);
    await client.importKeyMaterial({
      KeyId: md.KeyId,
      ImportToken: p.ImportToken,
      EncryptedKeyMaterial: wrap(p.PublicKey, material, 'RSAES_OAEP_SHA_256'),
    });
    const out = await client.generateMac({ KeyId: md.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' });
    expect(Buffer.from(out.Mac)).toEqual(createHmac('sha256', material).update('x').digest());
  }, 60_000);

  it('wrong token, expired token, wrong length, undecryptable material, different material on reimport', async () => {
    const t = { now: 1_900_000_000_000 };
    const client = new KmsHmacClient({ clock: () => t.now });
    const md = await externalKey(client);
    const other = await externalKey(client);
    const p = await client.getParametersForImport({
      KeyId: md.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
      WrappingKeySpec: 'RSA_2048',
    });
    const po = await client.getParametersForImport({
      KeyId: other.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
      WrappingKeySpec: 'RSA_2048',
    });
    const material = random.bytes(32);
    const enc = (m: Uint8Array, pk = p.PublicKey) => wrap(pk, m, 'RSAES_OAEP_SHA_256');

    // another key's token
    let e = await caught(
      client.importKeyMaterial({
        KeyId: md.KeyId,
        ImportToken: po.ImportToken,
        EncryptedKeyMaterial: enc(material, po.PublicKey),
      }),
    );
    expect(e).toBeInstanceOf(InvalidImportTokenException);
    // garbage token
    e = await caught(
      client.importKeyMaterial({ KeyId: md.KeyId, ImportToken: random.bytes(66), EncryptedKeyMaterial: enc(material) }),
    );
    expect(e.name).toBe('InvalidImportTokenException');
    // material wrapped with another public key
    e = await caught(
      client.importKeyMaterial({
        KeyId: md.KeyId,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: enc(material, po.PublicKey),
      }),
    );
    expect(e.name).toBe('InvalidCiphertextException');
    // wrong lengths (HMAC_256: 32..64)
    for (const len of [31, 65]) {
      e = await caught(
        client.importKeyMaterial({
          KeyId: md.KeyId,
          ImportToken: p.ImportToken,
          EncryptedKeyMaterial: enc(random.bytes(len)),
        }),
      );
      expect(e).toBeInstanceOf(IncorrectKeyMaterialException);
      expect(e.message).toMatch(/32 to 64 bytes/);
      expect(e.message).not.toMatch(/[0-9a-f]{20}/);
    }
    expect((await client.describeKey({ KeyId: md.KeyId })).KeyMetadata.KeyState).toBe('PendingImport');
    // KEY_MATERIAL_EXPIRES needs ValidTo
    e = await caught(
      client.importKeyMaterial({
        KeyId: md.KeyId,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: enc(material),
        ExpirationModel: 'KEY_MATERIAL_EXPIRES',
      }),
    );
    expect(e.name).toBe('ValidationException');
    expect(e.message).toBe('A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES');
    // success
    await client.importKeyMaterial({
      KeyId: md.KeyId,
      ImportToken: p.ImportToken,
      EncryptedKeyMaterial: enc(material),
    });
    // different material on reimport
    e = await caught(
      client.importKeyMaterial({
        KeyId: md.KeyId,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: enc(random.bytes(32)),
      }),
    );
    expect(e).toBeInstanceOf(IncorrectKeyMaterialException);
    // after DeleteImportedKeyMaterial too
    await client.deleteImportedKeyMaterial({ KeyId: md.KeyId });
    const d = (await client.describeKey({ KeyId: md.KeyId })).KeyMetadata;
    expect(d.KeyState).toBe('PendingImport');
    expect(d.Enabled).toBe(false);
    expect(d).not.toHaveProperty('ExpirationModel');
    e = await caught(client.generateMac({ KeyId: md.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }));
    expect(e.message).toBe(`${md.Arn} is pending import.`);
    e = await caught(
      client.importKeyMaterial({
        KeyId: md.KeyId,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: enc(random.bytes(32)),
      }),
    );
    expect(e.name).toBe('IncorrectKeyMaterialException');
    // same material again: fine
    await client.importKeyMaterial({
      KeyId: md.KeyId,
      ImportToken: p.ImportToken,
      EncryptedKeyMaterial: enc(material),
    });
    expect((await client.describeKey({ KeyId: md.KeyId })).KeyMetadata.KeyState).toBe('Enabled');
    // a new GetParametersForImport (one per key every 4 s: AWS's request quota) supersedes the old token
    t.now += 4_000;
    const p2 = await client.getParametersForImport({
      KeyId: md.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
      WrappingKeySpec: 'RSA_2048',
    });
    e = await caught(
      client.importKeyMaterial({ KeyId: md.KeyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc(material) }),
    );
    expect(e.name).toBe('InvalidImportTokenException');
    await client.importKeyMaterial({
      KeyId: md.KeyId,
      ImportToken: p2.ImportToken,
      EncryptedKeyMaterial: enc(material, p2.PublicKey),
    });
    // expired token (24 h)
    t.now += 24 * HOUR;
    e = await caught(
      client.send(
        new ImportKeyMaterialCommand({
          KeyId: md.KeyId,
          ImportToken: p2.ImportToken,
          EncryptedKeyMaterial: enc(material, p2.PublicKey),
        }),
      ),
    );
    expect(e).toBeInstanceOf(ExpiredImportTokenException);
    // nothing secret in what we can print
    const rec = client.keyStore.getKey(md.KeyId)!;
    expect(inspect(rec)).not.toContain(Buffer.from(material).toString('hex').slice(0, 8));
    expect(JSON.stringify(rec)).not.toContain(Buffer.from(material).toString('base64').slice(0, 8));
  });

  it('ExpirationModel KEY_MATERIAL_EXPIRES: ValidTo shown; expiry puts the key back into PendingImport', async () => {
    const t = { now: 1_900_000_000_000 };
    const client = new KmsHmacClient({ clock: () => t.now });
    const md = await externalKey(client);
    const p = await client.getParametersForImport({
      KeyId: md.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_1',
      WrappingKeySpec: 'RSA_2048',
    });
    const material = random.bytes(40);
    const validTo = new Date(t.now + 2 * HOUR);
    await client.importKeyMaterial({
      KeyId: md.KeyId,
      ImportToken: p.ImportToken,
      EncryptedKeyMaterial: wrap(p.PublicKey, material, 'RSAES_OAEP_SHA_1'),
      ExpirationModel: 'KEY_MATERIAL_EXPIRES',
      ValidTo: validTo,
    });
    const d = (await client.describeKey({ KeyId: md.KeyId })).KeyMetadata;
    expect(d.ExpirationModel).toBe('KEY_MATERIAL_EXPIRES');
    expect(d.ValidTo).toEqual(validTo);
    expect(client.generateMacSync({ KeyId: md.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }).Mac.length).toBe(32);
    t.now = validTo.getTime();
    const e = await caught(() =>
      client.generateMacSync({ KeyId: md.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }),
    );
    expect(e.name).toBe('KMSInvalidStateException');
    expect(e.message).toBe(`${md.Arn} is pending import.`);
    const after = (await client.describeKey({ KeyId: md.KeyId })).KeyMetadata;
    expect(after.KeyState).toBe('PendingImport');
    expect(after).not.toHaveProperty('ValidTo');
    await client.close();
    expect(client.keyStore.getKey(md.KeyId)!.keyMaterial).toBeUndefined();
  });
});
