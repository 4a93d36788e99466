/**
 * A format-1 JSON key store (kms-hmac 0.1) is migrated to SQLite on first
 * open, in place; the JSON file stays until the new store is durable, so a
 * kill at any moment leaves one or the other, complete.
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { canonical } from '../src/keystore/codec.js';
import { deriveMasterSync, newKdf, seal } from '../src/keystore/crypto.js';
import { FileKeyStore, KeyStoreCorruptError, KeyStorePassphraseError, type KeyRecord } from '../src/keystore/index.js';
import { key } from './keystore-contract.js';
import { useKeyStoreChild } from './keystore-child.js';
import { random } from './support/random.js';

const root = mkdtempSync(join(tmpdir(), 'kms-hmac-migrate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const runChild = useKeyStoreChild();
const FAST = { N: 1 << 10, r: 8, p: 1 };

/** Writes a store exactly as kms-hmac 0.1 did (format 1). `plaintextSecrets`: put the material in the clear even when encrypted. */
function writeLegacy(
  path: string,
  keys: KeyRecord[],
  o: { passphrase?: string; plaintextSecrets?: boolean; aliases?: object[] } = {},
): void {
  let raw: Buffer | undefined;
  let encryption: object | null = null;
  if (o.passphrase) {
    const kdf = newKdf(FAST);
    raw = deriveMasterSync(Buffer.from(o.passphrase), kdf);
    encryption = {
      kdf,
      cipher: 'aes-256-gcm',
      check: seal(raw, Buffer.from('kms-hmac-keystore passphrase check v1'), 'check'),
    };
  }
  const enc = (v: unknown, path: string, id: string): unknown => {
    if (v instanceof Uint8Array) {
      if (raw && !o.plaintextSecrets && (path === 'keyMaterial' || path === 'importParameters.privateKey'))
        return { $sealed: seal(raw, v, `${id}\0${path}`) };
      return { $bytes: Buffer.from(v).toString('base64') };
    }
    if (Array.isArray(v)) return v.map((x, i) => enc(x, `${path}[${i}]`, id));
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, x]) => x !== undefined)
          .map(([k, x]) => [k, enc(x, path ? `${path}.${k}` : k, id)]),
      );
    return v;
  };
  const doc = {
    format: 'kms-hmac-keystore',
    formatVersion: 1,
    generation: 7,
    encryption,
    keys: keys.map((k) => enc(k, '', k.keyId)),
    aliases: o.aliases ?? [],
  };
  writeFileSync(
    path,
    JSON.stringify({ ...doc, checksum: `sha256:${createHash('sha256').update(canonical(doc)).digest('hex')}` }),
    { mode: 0o600 },
  );
}

let n = 0;
function fresh(): string {
  return join(mkdtempSync(join(root, `m${n++}-`)), 'keystore.json');
}

const hex = (b: Uint8Array | undefined) => Buffer.from(b!).toString('hex');

describe('format-1 JSON stores migrate on first open', () => {
  test('an unencrypted store: every key and alias, the same MACs, SQLite afterwards, nothing left over', async () => {
    const path = fresh();
    const keys = [
      key(),
      key({ keyState: 'Disabled' }),
      key({ keySpec: 'HMAC_512', keyMaterial: new Uint8Array(random.bytes(64)) }),
    ];
    writeLegacy(path, keys, {
      aliases: [
        {
          aliasName: 'alias/one',
          aliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/one',
          targetKeyId: keys[0]!.keyId,
          creationDate: 1,
          lastUpdatedDate: 2,
        },
      ],
    });
    const client = new KmsHmacClient({ keyStore: path, keyStoreOptions: { passphrase: null } });
    const mac = client.generateMacSync({ KeyId: 'alias/one', MacAlgorithm: 'HMAC_SHA_256', Message: 'm' }).Mac;
    expect(Buffer.from(mac)).toEqual(createHmac('sha256', keys[0]!.keyMaterial!).update('m').digest());
    const store = client.keyStore as FileKeyStore;
    expect(
      store
        .listKeys()
        .map((k) => [k.keyId, k.keyState, hex(k.keyMaterial)])
        .sort(),
    ).toEqual(keys.map((k) => [k.keyId, k.keyState, hex(k.keyMaterial)]).sort());
    await client.close();
    expect(readFileSync(path).subarray(0, 15).toString()).toBe('SQLite format 3');
    expect(readdirSync(join(path, '..'))).toEqual(['keystore.json']);
  });

  test('an encrypted store: needs its passphrase (a wrong one leaves the file as it was), and stays encrypted', async () => {
    const path = fresh();
    const k = key();
    writeLegacy(path, [k], { passphrase: 'old pass' });
    const before = readFileSync(path);
    await expect(FileKeyStore.open(path, { passphrase: 'wrong' })).rejects.toThrow(KeyStorePassphraseError);
    await expect(FileKeyStore.open(path, { passphrase: null })).rejects.toThrow(/encrypted/);
    expect(readFileSync(path).equals(before)).toBe(true);
    const s = await FileKeyStore.open(path, { passphrase: 'old pass' });
    expect(s.encrypted).toBe(true);
    expect(hex(s.getKey(k.keyId)!.keyMaterial)).toBe(hex(k.keyMaterial));
    await s.close();
    expect(readFileSync(path).includes(Buffer.from(k.keyMaterial!).toString('base64'))).toBe(false);
    await expect(FileKeyStore.open(path, { passphrase: 'wrong' })).rejects.toThrow(/wrong passphrase/);
  });

  test('what migration refuses, leaving the file untouched: plaintext material in an encrypted file, a bad checksum, a plaintext file when a passphrase is set', async () => {
    const cases: [string, (p: string) => void, RegExp, string | null][] = [
      [
        'plaintext material',
        (p) => writeLegacy(p, [key()], { passphrase: 'pw', plaintextSecrets: true }),
        /in the clear in an encrypted store/,
        'pw',
      ],
      [
        'bad checksum',
        (p) => {
          writeLegacy(p, [key()]);
          writeFileSync(p, readFileSync(p, 'utf8').replace('"Enabled"', '"Disabled"'));
        },
        /checksum mismatch/,
        null,
      ],
      ['plaintext file, passphrase set', (p) => writeLegacy(p, [key()]), /not encrypted/, 'pw'],
    ];
    for (const [name, make, pattern, pass] of cases) {
      const path = fresh();
      make(path);
      const before = readFileSync(path);
      await expect(FileKeyStore.open(path, { passphrase: pass }), name).rejects.toThrow(pattern);
      expect(readFileSync(path).equals(before), name).toBe(true);
      expect(readdirSync(join(path, '..')), name).toEqual(['keystore.json']);
    }
    const path = fresh();
    writeLegacy(path, [key()], { passphrase: 'pw', plaintextSecrets: true });
    await expect(FileKeyStore.open(path, { passphrase: 'pw' })).rejects.toBeInstanceOf(KeyStoreCorruptError);
    // The explicit way to encrypt a plaintext JSON store.
    const plain = fresh();
    const k = key();
    writeLegacy(plain, [k]);
    const s = await FileKeyStore.open(plain, { passphrase: 'pw', scrypt: FAST, encryptExisting: true });
    expect(s.encrypted).toBe(true);
    expect(hex(s.getKey(k.keyId)!.keyMaterial)).toBe(hex(k.keyMaterial));
    await s.close();
  });

  test('killed at random moments during migration: the path always holds the intact JSON file or the complete new store', async () => {
    const keys = Array.from({ length: 1000 }, () => key());
    const template = fresh();
    writeLegacy(template, keys);
    const json = readFileSync(template);
    // How long a child takes from spawn to a migrated, closed store; kills land anywhere in that span.
    const t0 = performance.now();
    const probe = await runChild([template, 'open']);
    expect([probe.code, probe.lines.at(-1)]).toEqual([0, 'keys 1000']);
    const span = performance.now() - t0;
    const seen = { json: 0, sqlite: 0 };
    for (let i = 0; i < 16; i++) {
      const path = fresh();
      writeFileSync(path, json, { mode: 0o600 });
      // Start-up takes most of the span; bias the kills towards its end, where the migration runs.
      const run = await runChild([path, 'open'], { killAfterMs: span * (0.4 + 0.7 * random.float()) });
      if (run.signal !== 'SIGKILL') expect(run.code, run.stderr).toBe(0);
      const bytes = readFileSync(path);
      if (bytes.equals(json)) seen.json++;
      else {
        expect(bytes.subarray(0, 15).toString()).toBe('SQLite format 3');
        seen.sqlite++;
      }
      // Either way the next open has every key (migrating now if it must) and leaves nothing else behind.
      const s = await FileKeyStore.open(path, { passphrase: null });
      expect(s.listKeys()).toHaveLength(1000);
      await s.close();
      expect(readdirSync(join(path, '..'))).toEqual(['keystore.json']);
    }
    console.log(
      `[keystore-migrate] 16 kills during a 1000-key migration (~${Math.round(span)} ms): ${seen.json} left the JSON file, ${seen.sqlite} the new store`,
    );
  }, 180_000);

  test('a setup lock left by a setup killed after placing the store is removed by the next open, unless it is held', async () => {
    const path = fresh();
    writeLegacy(path, [key()]);
    await (await FileKeyStore.open(path, { passphrase: null })).close();
    writeFileSync(`${path}.setup-lock`, '');
    await (await FileKeyStore.open(path, { passphrase: null })).close();
    expect(readdirSync(join(path, '..'))).toEqual(['keystore.json']);

    const holder = new Database(`${path}.setup-lock`);
    holder.exec('BEGIN EXCLUSIVE');
    await (await FileKeyStore.open(path, { passphrase: null })).close();
    expect(readdirSync(join(path, '..'))).toContain('keystore.json.setup-lock'); // with the holder's journal
    holder.close();
  });

  test('two processes opening the same JSON store at once: one migration, nothing lost afterwards', async () => {
    const keys = Array.from({ length: 500 }, () => key());
    const path = fresh();
    writeLegacy(path, keys);
    const [a, b] = await Promise.all([runChild([path, 'count', '5']), runChild([path, 'count', '5'])]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    const s = await FileKeyStore.open(path, { passphrase: null });
    const ids = new Set(s.listKeys().map((k) => k.keyId));
    for (const id of [...keys.map((k) => k.keyId), ...a.acked, ...b.acked]) expect(ids.has(id)).toBe(true);
    expect(ids.size).toBe(510);
    await s.close();
  });
});
