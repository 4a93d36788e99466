/**
 * A store written by an earlier version opens, as it is, with this one:
 * test/fixtures/filestore-e7038e3.db was made by main e7038e3, whose file
 * store ran on better-sqlite3 (test/fixtures/make-filestore-fixture.mjs), and
 * filestore-e7038e3.json holds what that version answered about it. On
 * node:sqlite the same file gives the same answers and MACs, needs no schema
 * migration, is not rewritten by being read, takes new writes, and still
 * refuses an edit made without its passphrase.
 */
import { constants, createHmac, createPublicKey, publicEncrypt } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { FileKeyStore, KeyStoreCorruptError, KeyStorePassphraseError } from '../src/keystore/index.js';
import { runCli } from './cli-run.js';
import { random } from './support/random.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/filestore-e7038e3.db', import.meta.url));
const expected = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/filestore-e7038e3.json', import.meta.url)), 'utf8'),
) as {
  passphrase: string;
  message: string;
  keys: { KeyMetadata: Record<string, unknown> & { KeyId: string; KeySpec: string }; Tags: unknown[]; Mac?: string }[];
  aliases: unknown[];
  listKeys: unknown[];
  pendingImport: { KeyId: string; PublicKey: string; ImportToken: string; ParametersValidTo: string };
};
const ALGORITHM: Record<string, string> = {
  HMAC_224: 'HMAC_SHA_224',
  HMAC_256: 'HMAC_SHA_256',
  HMAC_384: 'HMAC_SHA_384',
  HMAC_512: 'HMAC_SHA_512',
};
// The fixture's own day: its deletion window and its import token's 24 hours are counted from it.
const CLOCK = () => Date.parse(expected.pendingImport.ParametersValidTo) - 3_600_000;

const root = mkdtempSync(join(tmpdir(), 'kms-hmac-fixture-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function copy(): string {
  const dir = mkdtempSync(join(root, `f${n++}-`));
  const path = join(dir, 'keystore.db');
  copyFileSync(FIXTURE, path);
  return path;
}

/** Dates as JSON has them, as the fixture's answers were recorded. */
const json = (v: unknown) => JSON.parse(JSON.stringify(v));

function client(path: string): KmsHmacClient {
  return new KmsHmacClient({ keyStore: path, keyStoreOptions: { passphrase: expected.passphrase }, clock: CLOCK });
}

async function expectFixtureContents(kms: KmsHmacClient): Promise<void> {
  for (const k of expected.keys) {
    const id = k.KeyMetadata.KeyId;
    expect(json((await kms.describeKey({ KeyId: id })).KeyMetadata), id).toEqual(k.KeyMetadata);
    expect(json((await kms.listResourceTags({ KeyId: id })).Tags), id).toEqual(k.Tags);
    if (k.Mac === undefined) continue;
    const MacAlgorithm = ALGORITHM[k.KeyMetadata.KeySpec]!;
    const { Mac } = await kms.generateMac({ KeyId: id, MacAlgorithm, Message: expected.message });
    expect(Buffer.from(Mac).toString('base64'), id).toBe(k.Mac);
    const Mac0 = Buffer.from(k.Mac, 'base64');
    expect((await kms.verifyMac({ KeyId: id, MacAlgorithm, Message: expected.message, Mac: Mac0 })).MacValid).toBe(
      true,
    );
  }
  expect(json((await kms.listAliases({})).Aliases)).toEqual(expected.aliases);
  expect(json((await kms.listKeys({})).Keys)).toEqual(expected.listKeys);
}

describe('a FileKeyStore written by main e7038e3 (better-sqlite3)', () => {
  test('opens with its passphrase and answers as the version that wrote it: keys, states, tags, aliases, MACs', async () => {
    const path = copy();
    const before = readFileSync(path);
    const kms = client(path);
    await expectFixtureContents(kms);
    await kms.close();
    // Reading it needed no migration and rewrote nothing; nothing is left beside it.
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(join(path, '..'))).toEqual(['keystore.db']);
    const db = new DatabaseSync(path, { readOnly: true });
    expect(
      db
        .prepare('SELECT version FROM kms_hmac_migrations')
        .all()
        .map((r) => r.version),
    ).toEqual([1]);
    db.close();
  });

  test('a wrong passphrase, or none, is refused and leaves it byte-identical', async () => {
    const path = copy();
    const before = readFileSync(path);
    await expect(FileKeyStore.open(path, { passphrase: 'not it' })).rejects.toThrow(KeyStorePassphraseError);
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toThrow(KeyStorePassphraseError);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test('takes new writes: the pending key imported with the wrapping key that version issued, a new key; all there after a reopen', async () => {
    const path = copy();
    const a = client(path);
    const { KeyId, PublicKey, ImportToken } = expected.pendingImport;
    const material = random.bytes(32);
    const wrapped = publicEncrypt(
      {
        key: createPublicKey({ key: Buffer.from(PublicKey, 'base64'), format: 'der', type: 'spki' }),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      material,
    );
    await a.importKeyMaterial({
      KeyId,
      ImportToken: Buffer.from(ImportToken, 'base64'),
      EncryptedKeyMaterial: wrapped,
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
    });
    const { KeyMetadata: fresh } = await a.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    await a.close();

    const b = client(path);
    const mac = await b.generateMac({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'm' });
    expect(Buffer.from(mac.Mac)).toEqual(createHmac('sha256', material).update('m').digest());
    expect((await b.describeKey({ KeyId: fresh.KeyId })).KeyMetadata.KeyState).toBe('Enabled');
    for (const k of expected.keys.filter((k) => k.KeyMetadata.KeyId !== KeyId)) {
      expect(json((await b.describeKey({ KeyId: k.KeyMetadata.KeyId })).KeyMetadata)).toEqual(k.KeyMetadata);
    }
    await b.close();
  });

  test('an edit made without the passphrase (its disabled key switched on) is refused', async () => {
    const path = copy();
    const disabled = expected.keys.find((k) => k.KeyMetadata.KeyState === 'Disabled')!.KeyMetadata.KeyId;
    const db = new DatabaseSync(path);
    const { body } = db.prepare('SELECT body FROM kms_hmac_keys WHERE key_id = ?').get(disabled) as { body: string };
    db.prepare('UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?').run(
      JSON.stringify({ ...JSON.parse(body), keyState: 'Enabled' }),
      disabled,
    );
    db.close();
    await expect(FileKeyStore.open(path, { passphrase: expected.passphrase })).rejects.toThrow(KeyStoreCorruptError);
  });

  test('the CLI lists it and MACs with its keys', async () => {
    const path = copy();
    const env = { KMS_HMAC_PASSPHRASE: expected.passphrase, KMS_HMAC_PASSPHRASE_FILE: '' };
    const list = await runCli(['keys', 'list', '--json', '--keystore', path], { cwd: root, env });
    expect([list.code, list.stderr]).toEqual([0, '']);
    const listed = JSON.parse(list.stdout).Keys as { KeyId: string; Aliases: string[] }[];
    // The CLI runs on today's clock: the key pending deletion is gone once its 30 days are over.
    const lasting = expected.keys.filter((k) => k.KeyMetadata.KeyState !== 'PendingDeletion');
    const ids = listed.map((k) => k.KeyId);
    for (const k of lasting) expect(ids).toContain(k.KeyMetadata.KeyId);
    expect(ids.length).toBeLessThanOrEqual(expected.keys.length);
    expect(listed.flatMap((k) => k.Aliases).sort()).toEqual(
      (expected.aliases as { AliasName: string }[]).map((a) => a.AliasName).sort(),
    );
    const mac = await runCli(['mac', 'generate', '--key-id', 'alias/logs', '--keystore', path], {
      cwd: root,
      env,
      input: expected.message,
    });
    expect([mac.code, mac.stdout.trim()]).toEqual([0, expected.keys[0]!.Mac]);
  });
});
