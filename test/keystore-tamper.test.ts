/**
 * An encrypted key store, edited by someone who can write the file but does
 * not know the passphrase (the store's whole-store authentication,
 * docs/key-stores.md "Encryption and authentication"). Every edit below is refused
 * with a typed error, the file is left exactly as the attacker left it, and
 * no client ever MACs with what the attacker wrote.
 */
import { createHmac } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { StoreKeys } from '../src/keystore/crypto.js';
import { FileKeyStore, KeyStoreCorruptError, KeyStorePassphraseError } from '../src/keystore/index.js';
import { key } from './keystore-contract.js';
import { random } from './support/random.js';

const FAST = { N: 1 << 10, r: 8, p: 1 };
const PASS = 'the owner knows this';
const root = mkdtempSync(join(tmpdir(), 'kms-hmac-tamper-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A closed, encrypted store holding an Enabled and a Disabled key and an alias. */
async function victim(): Promise<{ path: string; enabled: string; disabled: string }> {
  const path = join(root, `v${n++}.db`);
  const s = await FileKeyStore.open(path, { passphrase: PASS, scrypt: FAST });
  const enabled = key();
  const disabled = key({ keyState: 'Disabled' });
  await s.transact((tx) => {
    tx.insertKey(enabled);
    tx.insertKey(disabled);
    tx.insertAlias({
      aliasName: 'alias/app',
      aliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/app',
      targetKeyId: enabled.keyId,
      creationDate: 1,
      lastUpdatedDate: 1,
    });
  });
  await s.close();
  return { path, enabled: enabled.keyId, disabled: disabled.keyId };
}

function edit(path: string, sql: string, ...params: unknown[]): void {
  const db = new Database(path);
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

function body(path: string, keyId: string): Record<string, unknown> {
  const db = new Database(path, { readonly: true });
  try {
    return JSON.parse(
      (db.prepare('SELECT body FROM kms_hmac_keys WHERE key_id = ?').get(keyId) as { body: string }).body,
    );
  } finally {
    db.close();
  }
}

/** Opening fails with `type`, by every route a user takes (async, sync, the client), and the file is byte-identical. */
async function refused(path: string, type: new (...a: never[]) => Error, pattern: RegExp): Promise<void> {
  const before = readFileSync(path);
  await expect(FileKeyStore.open(path, { passphrase: PASS })).rejects.toThrow(type);
  expect(() => FileKeyStore.openSync(path, { passphrase: PASS })).toThrow(pattern);
  expect(() => new KmsHmacClient({ keyStore: path, keyStoreOptions: { passphrase: PASS } })).toThrow(type);
  expect(readFileSync(path).equals(before)).toBe(true);
}

describe('an encrypted store edited without the passphrase', () => {
  test('a Disabled key switched to Enabled', async () => {
    const v = await victim();
    const b = body(v.path, v.disabled);
    edit(
      v.path,
      'UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?',
      JSON.stringify({ ...b, keyState: 'Enabled' }),
      v.disabled,
    );
    await refused(v.path, KeyStoreCorruptError, /fail authentication/);
  });

  test('sealed material replaced by plaintext material the editor knows ({"$bytes": …})', async () => {
    const v = await victim();
    const known = random.bytes(32);
    const b = body(v.path, v.enabled);
    edit(
      v.path,
      'UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?',
      JSON.stringify({ ...b, keyMaterial: { $bytes: known.toString('base64') } }),
      v.enabled,
    );
    await refused(v.path, KeyStoreCorruptError, /fail authentication/);
  });

  test('plaintext material, with the tag recomputed as if the store were unencrypted (the editor knows that construction)', async () => {
    const v = await victim();
    const b = body(v.path, v.enabled);
    edit(
      v.path,
      'UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?',
      JSON.stringify({ ...b, keyMaterial: { $bytes: random.bytes(32).toString('base64') } }),
      v.enabled,
    );
    forgeUnencryptedTag(v.path, true);
    await refused(v.path, KeyStoreCorruptError, /fail authentication/);
  });

  test('"encryption": null — the whole store rewritten unencrypted, consistently, by the editor: refused when opened with the passphrase', async () => {
    const v = await victim();
    const known = random.bytes(32);
    const db = new Database(v.path);
    for (const id of [v.enabled, v.disabled]) {
      const b = JSON.parse(
        (db.prepare('SELECT body FROM kms_hmac_keys WHERE key_id = ?').get(id) as { body: string }).body,
      );
      db.prepare('UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?').run(
        JSON.stringify({ ...b, keyState: 'Enabled', keyMaterial: { $bytes: known.toString('base64') } }),
        id,
      );
    }
    db.close();
    forgeUnencryptedTag(v.path, false);
    // A self-consistent unencrypted store: it opens without a passphrase (it is one)...
    const plain = await FileKeyStore.open(v.path, { passphrase: null });
    expect(plain.encrypted).toBe(false);
    await plain.close();
    // ...but whoever expects an encrypted store (passphrase set) never uses it.
    await refused(v.path, KeyStorePassphraseError, /not encrypted/);
  });

  test('a record moved from another store with the same passphrase', async () => {
    const v = await victim();
    const other = await victim();
    const db = new Database(v.path);
    const theirs = new Database(other.path, { readonly: true });
    const row = theirs.prepare('SELECT key_id, rev, body FROM kms_hmac_keys WHERE key_id = ?').get(other.enabled) as {
      key_id: string;
      rev: number;
      body: string;
    };
    theirs.close();
    db.prepare('INSERT INTO kms_hmac_keys (key_id, rev, body) VALUES (?, ?, ?)').run(row.key_id, row.rev, row.body);
    db.close();
    await refused(v.path, KeyStoreCorruptError, /fail authentication/);
  });

  test('sealed material moved from one key to another in the same store', async () => {
    const v = await victim();
    const a = body(v.path, v.enabled);
    const b = body(v.path, v.disabled);
    edit(
      v.path,
      'UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?',
      JSON.stringify({ ...b, keyMaterial: a.keyMaterial }),
      v.disabled,
    );
    await refused(v.path, KeyStoreCorruptError, /fail authentication/);
  });

  test('a row deleted, an alias retargeted, the encryption header altered, an old row put back', async () => {
    const del = await victim();
    edit(del.path, 'DELETE FROM kms_hmac_keys WHERE key_id = ?', del.disabled);
    await refused(del.path, KeyStoreCorruptError, /fail authentication/);

    const ali = await victim();
    edit(ali.path, `UPDATE kms_hmac_aliases SET body = replace(body, ?, ?)`, ali.enabled, ali.disabled);
    await refused(ali.path, KeyStoreCorruptError, /fail authentication/);

    const hdr = await victim();
    edit(hdr.path, `UPDATE kms_hmac_meta SET encryption = replace(encryption, '"N":1024', '"N":2048')`);
    await expect(FileKeyStore.open(hdr.path, { passphrase: PASS })).rejects.toThrow(
      /wrong passphrase|fail authentication/,
    );

    // Replay: the Disabled key's row from before it was disabled, rev and all.
    const path = join(root, 'replay.db');
    const s = await FileKeyStore.open(path, { passphrase: PASS, scrypt: FAST });
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    const db0 = new Database(path, { readonly: true });
    const old = db0.prepare('SELECT rev, body FROM kms_hmac_keys').get() as { rev: number; body: string };
    db0.close();
    await s.transact((tx) => tx.replaceKey({ ...tx.getKey(k.keyId)!, keyState: 'Disabled' }));
    await s.close();
    edit(path, 'UPDATE kms_hmac_keys SET rev = ?, body = ?', old.rev, old.body);
    await refused(path, KeyStoreCorruptError, /fail authentication/);
  });

  test('no MAC is ever computed with material the editor planted', async () => {
    const v = await victim();
    const known = random.bytes(32);
    const b = body(v.path, v.enabled);
    edit(
      v.path,
      'UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?',
      JSON.stringify({ ...b, keyMaterial: { $bytes: known.toString('base64') } }),
      v.enabled,
    );
    let client: KmsHmacClient | undefined;
    try {
      client = new KmsHmacClient({ keyStore: v.path, keyStoreOptions: { passphrase: PASS } });
      const mac = client.generateMacSync({ KeyId: 'alias/app', MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }).Mac;
      expect(Buffer.from(mac).equals(createHmac('sha256', known).update('x').digest())).toBe(false);
    } catch (err) {
      expect(err).toBeInstanceOf(KeyStoreCorruptError);
    } finally {
      await client?.close();
    }
  });
});

describe('an open store never goes back', () => {
  test('an older copy of the store put back under a running process is refused; the process keeps its newer state', async () => {
    const path = join(root, 'rollback.db');
    const live = await FileKeyStore.open(path, { passphrase: PASS, scrypt: FAST, pollIntervalMs: 0 });
    const k = key();
    await live.transact((tx) => tx.insertKey(k));
    // The attacker's copy: a complete, valid store of generation 1 (copied while nothing was in the WAL).
    await live.close();
    const copy = join(root, 'rollback-old.db');
    copyFileSync(path, copy);
    const again = await FileKeyStore.open(path, { passphrase: PASS, pollIntervalMs: 0 });
    await again.transact((tx) => tx.replaceKey({ ...tx.getKey(k.keyId)!, keyState: 'Disabled' }));
    // Put every row of the old copy back (rows and meta: the old generation with its valid tag).
    const db = new Database(path);
    db.exec(`ATTACH DATABASE '${copy}' AS old`);
    db.transaction(() => {
      for (const t of ['kms_hmac_keys', 'kms_hmac_aliases', 'kms_hmac_meta', 'kms_hmac_changes']) {
        db.exec(`DELETE FROM main.${t}; INSERT INTO main.${t} SELECT * FROM old.${t}`);
      }
    })();
    db.close();
    await expect(again.refresh()).rejects.toThrow(/generation went back/);
    expect(again.getKey(k.keyId)!.keyState).toBe('Disabled');
    await expect(again.transact((tx) => tx.insertKey(key()))).rejects.toThrow(/generation went back/);
    await again.close();
  });
});

/**
 * Recomputes the meta tag the way an unencrypted store's is computed (public
 * keys), over the rows as they are now: what an editor who read the source
 * can do. `keepHeader`: leave the encryption header in place.
 */
function forgeUnencryptedTag(path: string, keepHeader: boolean): void {
  const keys = StoreKeys.unencrypted();
  const db = new Database(path);
  const digest = Buffer.alloc(32);
  const xor = (h: Buffer) => {
    for (let i = 0; i < 32; i++) digest[i]! ^= h[i]!;
  };
  for (const r of db.prepare('SELECT key_id AS id, rev, body FROM kms_hmac_keys').all() as {
    id: string;
    rev: number;
    body: string;
  }[])
    xor(keys.rowHash('k', r.id, r.rev, r.body));
  for (const r of db.prepare('SELECT alias_name AS id, rev, body FROM kms_hmac_aliases').all() as {
    id: string;
    rev: number;
    body: string;
  }[])
    xor(keys.rowHash('a', r.id, r.rev, r.body));
  const meta = db.prepare('SELECT generation FROM kms_hmac_meta').get() as { generation: number };
  const tag = keys.headerTag(meta.generation, digest);
  if (keepHeader) db.prepare('UPDATE kms_hmac_meta SET tag = ?').run(tag);
  else db.prepare('UPDATE kms_hmac_meta SET tag = ?, encryption = NULL').run(tag);
  db.close();
}
