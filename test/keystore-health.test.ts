/**
 * Tampering found while running (issue 26): a background reload of the file
 * store that fails authentication is no longer only kept in
 * `lastLoadError`. It turns `health()` to `tampered` and is told once (the
 * `onHealthChange` option, or a process warning), MACs go on from the
 * snapshot last authenticated, and the recovery is told once too. `serve`
 * logs it at error level, and `--exit-on-tamper` stops it with exit code 4.
 * (The PostgreSQL store's `degraded`: test/keystore-postgres.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { FileKeyStore, KeyStoreCorruptError, MemoryKeyStore, type KeyStoreHealth } from '../src/keystore/index.js';
import { key } from './keystore-contract.js';
import { signedCall, startServe, stopServe } from './server-helpers.js';

const FAST = { N: 1 << 10, r: 8, p: 1 };
const PASS = 'the owner knows this';
const root = mkdtempSync(join(tmpdir(), 'kms-hmac-health-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * What an editor without the passphrase does so that running processes
 * reload: a Disabled key switched to Enabled, the generation moved on and
 * the change logged. Returns how to put the store back as it was.
 */
function tamper(path: string, keyId: string): () => void {
  const db = new Database(path);
  try {
    const row = db.prepare('SELECT body FROM kms_hmac_keys WHERE key_id = ?').get(keyId) as { body: string };
    const meta = db.prepare('SELECT generation, tag FROM kms_hmac_meta').get() as { generation: number; tag: string };
    const edited = JSON.stringify({ ...JSON.parse(row.body), keyState: 'Enabled' });
    db.transaction(() => {
      db.prepare('UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?').run(edited, keyId);
      db.prepare('UPDATE kms_hmac_meta SET generation = ?').run(meta.generation + 1);
      db.prepare("INSERT INTO kms_hmac_changes (rev, kind, id) VALUES (?, 'k', ?)").run(meta.generation + 1, keyId);
    })();
    return () => {
      const again = new Database(path);
      try {
        again.transaction(() => {
          again.prepare('UPDATE kms_hmac_keys SET body = ? WHERE key_id = ?').run(row.body, keyId);
          again.prepare('UPDATE kms_hmac_meta SET generation = ?, tag = ?').run(meta.generation, meta.tag);
          again.prepare('DELETE FROM kms_hmac_changes WHERE rev > ?').run(meta.generation);
        })();
      } finally {
        again.close();
      }
    };
  } finally {
    db.close();
  }
}

async function storeWithDisabledKey(name: string): Promise<{ path: string; keyId: string }> {
  const path = join(root, name);
  const s = await FileKeyStore.open(path, { passphrase: PASS, scrypt: FAST });
  const k = key({ keyState: 'Disabled' });
  await s.transact((tx) => tx.insertKey(k));
  await s.close();
  return { path, keyId: k.keyId };
}

describe('FileKeyStore: a background reload that fails authentication', () => {
  test('turns health() tampered, is told once, keeps the authenticated snapshot; the recovery is told once', async () => {
    const { path, keyId } = await storeWithDisabledKey('told.db');
    const changes: KeyStoreHealth[] = [];
    const store = await FileKeyStore.open(path, {
      passphrase: PASS,
      pollIntervalMs: 10,
      onHealthChange: (h) => changes.push(h),
    });
    try {
      const opened = store.health();
      expect(opened).toMatchObject({ store: path, state: 'ok', reloadFailures: 0 });
      expect(opened.snapshotLoadedAt).toBeGreaterThan(Date.now() - 60_000);
      const restore = tamper(path, keyId);
      await until('tampered', () => store.health().state === 'tampered');
      await until('more failed reloads', () => store.health().reloadFailures >= 3);
      expect(changes.map((h) => h.state)).toEqual(['tampered']);
      const h = store.health();
      expect(h.lastError?.name).toBe('KeyStoreCorruptError');
      expect(h.lastError?.message).toMatch(/fail authentication/);
      expect(store.lastLoadError).toBeInstanceOf(KeyStoreCorruptError);
      expect(store.getKey(keyId)!.keyState).toBe('Disabled'); // never what the editor wrote
      restore();
      await until('recovered', () => store.health().state === 'ok');
      expect(changes.map((x) => x.state)).toEqual(['tampered', 'ok']);
      expect(store.health().lastError?.name).toBe('KeyStoreCorruptError'); // kept for diagnosis
    } finally {
      await store.close();
    }
  });

  test('without onHealthChange: one process warning (KMS_HMAC_KEYSTORE_TAMPERED), and the client reports it', async () => {
    const { path, keyId } = await storeWithDisabledKey('warned.db');
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const client = new KmsHmacClient({ keyStore: path, keyStoreOptions: { passphrase: PASS, pollIntervalMs: 10 } });
    try {
      expect(client.keyStoreHealth().state).toBe('ok');
      tamper(path, keyId);
      await until('tampered', () => client.keyStoreHealth().state === 'tampered');
      await until('more failed reloads', () => client.keyStoreHealth().reloadFailures >= 3);
      const told = warn.mock.calls.filter((c) => (c[1] as { code?: string })?.code === 'KMS_HMAC_KEYSTORE_TAMPERED');
      expect(told).toHaveLength(1);
      expect(told[0]![0]).toBe(
        `key store ${path} failed authentication while running (KeyStoreCorruptError: ${client.keyStoreHealth().lastError!.message}); MACs are served from the snapshot it last authenticated`,
      );
      const e = await client.generateMac({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' }).catch((x) => x);
      expect(e.name).toBe('DisabledException');
    } finally {
      await client.close();
    }
  });

  test('a memory store is always ok', () => {
    expect(new MemoryKeyStore().health()).toEqual({ store: 'memory', state: 'ok', reloadFailures: 0 });
    expect(new KmsHmacClient().keyStoreHealth()).toEqual({ store: 'memory', state: 'ok', reloadFailures: 0 });
  });
});

describe('kms-hmac serve and a store tampered with while it runs', () => {
  const passFile = join(root, 'pass');
  writeFileSync(passFile, `${PASS}\n`, { mode: 0o600 });

  test('logs it once at error level and goes on serving from its snapshot', async () => {
    const { path, keyId } = await storeWithDisabledKey('serve-log.db');
    const child = await startServe(['--keystore', path, '--passphrase-file', passFile, '--log', 'stderr'], root);
    try {
      tamper(path, keyId);
      await until('logged', () => child.stderr().includes('failed authentication while running'), 20_000);
      await sleep(500);
      const lines = child
        .stderr()
        .split('\n')
        .filter((l) => l.includes('failed authentication while running'))
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(1);
      expect(lines[0].level).toBe(50); // pino's error
      expect(lines[0].keyStore).toMatchObject({ store: path, state: 'tampered' });
      const mac = await signedCall(child.url, 'GenerateMac', {
        KeyId: keyId,
        MacAlgorithm: 'HMAC_SHA_256',
        Message: 'eA==',
      });
      expect(mac.json?.__type).toBe('DisabledException');
    } finally {
      expect((await stopServe(child)).code).toBe(0);
    }
  });

  test('--exit-on-tamper stops it with exit code 4', async () => {
    const { path, keyId } = await storeWithDisabledKey('serve-exit.db');
    const child = await startServe(['--keystore', path, '--passphrase-file', passFile, '--exit-on-tamper'], root);
    expect((await signedCall(child.url, 'ListKeys', {})).status).toBe(200);
    tamper(path, keyId);
    const exit = await Promise.race([child.exited, sleep(20_000).then(() => 'still running')]);
    expect(exit, child.stderr()).toEqual({ code: 4, signal: null });
    expect(child.stderr()).toMatch(/failed authentication while running .*: stopping \(--exit-on-tamper\)/);
  });
});
