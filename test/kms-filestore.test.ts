import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { MemoryKeyStore } from '../src/keystore/index.js';
import { random } from './support/random.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('KmsHmacClient on a FileKeyStore', () => {
  it('keys, aliases and imported material survive a restart; MACs unchanged; material not in the file in clear when encrypted', async () => {
    const path = join(dir, 'keys.json');
    const passphrase = 'correct horse battery staple';
    const opts = { keyStore: path, keyStoreOptions: { passphrase, scrypt: { N: 1024 } } };
    const a = new KmsHmacClient(opts);
    const { KeyMetadata: k } = await a.createKey({
      KeySpec: 'HMAC_512',
      KeyUsage: 'GENERATE_VERIFY_MAC',
      Description: 'durable',
    });
    await a.createAlias({ AliasName: 'alias/durable', TargetKeyId: k.KeyId });
    const material = random.bytes(64);
    const { KeyMetadata: r } = await a.importRemoteKey({
      RemoteArn: 'arn:aws:kms:us-east-1:111122223333:key/44444444-4444-4444-4444-444444444444',
      KeySpec: 'HMAC_512',
      KeyMaterial: material,
    });
    const mac1 = a
      .generateMacSync({ KeyId: 'alias/durable', MacAlgorithm: 'HMAC_SHA_512', Message: 'persist' })
      .Mac.slice();
    await a.close();

    const b = new KmsHmacClient(opts);
    const mac2 = b.generateMacSync({ KeyId: 'alias/durable', MacAlgorithm: 'HMAC_SHA_512', Message: 'persist' }).Mac;
    expect(mac2).toEqual(mac1);
    expect((await b.describeKey({ KeyId: k.Arn })).KeyMetadata).toEqual(k);
    const m = await b.generateMac({ KeyId: r.KeyId, MacAlgorithm: 'HMAC_SHA_512', Message: 'x' });
    expect(Buffer.from(m.Mac)).toEqual(createHmac('sha512', material).update('x').digest());
    await b.close();

    if (process.platform !== 'win32') expect(statSync(path).mode & 0o777).toBe(0o600);
    for (const f of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, f));
      expect(bytes.includes(material)).toBe(false);
      expect(bytes.toString('utf8')).not.toContain(material.toString('base64'));
      expect(bytes.toString('utf8')).not.toContain(material.toString('hex'));
    }
  });

  it('a KeyStore instance is used as is and not closed by the client', async () => {
    const store = new MemoryKeyStore();
    const a = new KmsHmacClient({ keyStore: store });
    const { KeyMetadata: k } = await a.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    await a.close();
    const b = new KmsHmacClient({ keyStore: store });
    expect((await b.describeKey({ KeyId: k.KeyId })).KeyMetadata.KeyId).toBe(k.KeyId);
  });
});
