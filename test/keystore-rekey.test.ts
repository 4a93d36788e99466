/**
 * `kms-hmac keys rekey --new-passphrase-file F` and `store.rekey()` (issue
 * 26): an encrypted store, file or PostgreSQL, re-sealed under a new
 * passphrase with the current scrypt cost, in one commit. Killed with
 * SIGKILL at random instants (as test/keystore-crash.test.ts kills writers),
 * the store always opens with exactly one of the old and the new
 * passphrase, and holds every key and alias with its material.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import {
  FileKeyStore,
  KeyStorePassphraseError,
  PostgresKeyStore,
  type KeyStore,
  type KeyStoreHealth,
} from '../src/keystore/index.js';
import { runCli } from './cli-run.js';
import { useKeyStoreChild } from './keystore-child.js';
import { track } from './support/process-group.js';
import { key } from './keystore-contract.js';
import { PG_SKIP, usePostgres } from './postgres.js';

const FAST = { N: 1 << 10, r: 8, p: 1 };
const A = 'the old passphrase';
const B = 'the new passphrase';
const root = mkdtempSync(join(tmpdir(), 'kms-hmac-rekey-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const runChild = useKeyStoreChild();
const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

type Open = (pass: string) => Promise<KeyStore & { close(): Promise<void> }>;

/** Fills a store with `n` keys (one alias each); returns id → material hex. */
async function fill(store: KeyStore, n: number): Promise<Map<string, string>> {
  const want = new Map<string, string>();
  await store.transact((tx) => {
    for (let i = 0; i < n; i++) {
      const k = key({ keyMaterial: new Uint8Array(randomBytes(32)) });
      want.set(k.keyId, Buffer.from(k.keyMaterial!).toString('hex'));
      tx.insertKey(k);
      tx.insertAlias({
        aliasName: `alias/k${i}`,
        aliasArn: `arn:aws:kms:us-east-1:111122223333:alias/k${i}`,
        targetKeyId: k.keyId,
        creationDate: 1,
        lastUpdatedDate: 1,
      });
    }
  });
  return want;
}

/** Which passphrase opens the store (exactly one must), and that it holds every key as written. */
async function opensWith(open: Open, want: Map<string, string>): Promise<string> {
  const opened: string[] = [];
  for (const pass of [A, B]) {
    let s: Awaited<ReturnType<Open>> | undefined;
    try {
      s = await open(pass);
    } catch (err) {
      expect(err).toBeInstanceOf(KeyStorePassphraseError);
      expect((err as Error).message).toMatch(/wrong passphrase/);
      continue;
    }
    try {
      opened.push(pass);
      expect(s.listKeys()).toHaveLength(want.size);
      for (const [id, hex] of want) expect(Buffer.from(s.getKey(id)!.keyMaterial!).toString('hex')).toBe(hex);
      expect(s.listAliases()).toHaveLength(want.size);
    } finally {
      await s.close();
    }
  }
  expect(opened).toHaveLength(1);
  return opened[0]!;
}

/**
 * A child rekeys the store from the passphrase that opens it to the other,
 * over and over, killed at a random instant within `spreadMs` of opening
 * the store (every other one late in that window), until `kills` children died (a run that finished first narrows
 * the window to 1.2 times its own duration, so kills land in the rekey, its
 * commit included, not after it). `kills: 0`: one run to completion.
 */
async function killLane(path: string, open: Open, want: Map<string, string>, kills: number, spreadMs = 0) {
  let current = await opensWith(open, want);
  const outcome = { killedBefore: 0, killedAfter: 0, finished: 0, lastMs: 0 };
  for (let r = 0; outcome.killedBefore + outcome.killedAfter < kills || (kills === 0 && r === 0); r++) {
    if (r > kills * 3) throw new Error(`only ${JSON.stringify(outcome)} after ${r} rounds`);
    const next = current === A ? B : A;
    let acked = false;
    let readyAt = 0;
    const run = await runChild([path, 'rekey'], {
      pass: current,
      newPass: next,
      onLine: (line, kill) => {
        if (line.startsWith('ready ')) {
          readyAt = Date.now();
          // Every other kill in the window's last 40 %, where the rewrite and its commit are.
          if (kills > 0) setTimeout(kill, r % 2 ? rand(0, spreadMs) : rand(Math.round(spreadMs * 0.6), spreadMs));
        }
        if (line === 'ack rekeyed') {
          acked = true;
          outcome.lastMs = Date.now() - readyAt;
        }
      },
    });
    if (run.signal !== 'SIGKILL' && run.code !== 0) throw new Error(`child ended ${run.code}: ${run.stderr}`);
    const now = await opensWith(open, want);
    if (acked) expect(now, `round ${r}: acknowledged, yet the old passphrase opens it`).toBe(next);
    if (run.signal !== 'SIGKILL') {
      outcome.finished++;
      spreadMs = Math.max(10, Math.round(outcome.lastMs * 1.2));
    } else if (now === next) outcome.killedAfter++;
    else outcome.killedBefore++;
    current = now;
  }
  return outcome;
}

function kdfOf(path: string): { N: number } {
  const db = new Database(path, { readonly: true });
  try {
    return JSON.parse((db.prepare('SELECT encryption FROM kms_hmac_meta').get() as { encryption: string }).encryption)
      .kdf;
  } finally {
    db.close();
  }
}

describe('FileKeyStore.rekey', () => {
  test('the new passphrase opens it, the old does not; N=2^15 becomes 2^17; a process holding it open reports tampered', async () => {
    const path = join(root, 'one.db');
    const made = await FileKeyStore.open(path, { passphrase: A, scrypt: { N: 1 << 15 } }); // as kms-hmac 0.1 made them
    const want = await fill(made, 20);
    await made.close();
    const s = await FileKeyStore.open(path, { passphrase: A });
    expect(s.scrypt).toEqual({ N: 1 << 15, r: 8, p: 1 });
    const changes: KeyStoreHealth[] = [];
    const other = await FileKeyStore.open(path, {
      passphrase: A,
      pollIntervalMs: 10,
      onHealthChange: (h) => changes.push(h),
    });
    await s.rekey(B);
    expect(s.scrypt).toEqual({ N: 1 << 17, r: 8, p: 1 });
    expect(kdfOf(path).N).toBe(1 << 17);
    await s.transact((tx) => tx.insertKey(key())); // goes on writing under the new keys
    await s.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(other.health()).toMatchObject({ state: 'tampered', lastError: { name: 'KeyStorePassphraseError' } });
    expect(changes.map((h) => h.state)).toEqual(['tampered']);
    for (const [id, hex] of want) expect(Buffer.from(other.getKey(id)!.keyMaterial!).toString('hex')).toBe(hex);
    await other.close();
    await expect(FileKeyStore.open(path, { passphrase: A })).rejects.toThrow(/wrong passphrase/);
    const b = await FileKeyStore.open(path, { passphrase: B });
    expect(b.listKeys()).toHaveLength(21);
    await b.close();
    const plain = await FileKeyStore.open(join(root, 'plain.db'), { passphrase: null });
    await expect(plain.rekey(B)).rejects.toThrow(/not encrypted.*keys encrypt/);
    await plain.close();
  });

  test(`survives SIGKILL at any instant: exactly one passphrase opens it, nothing is lost`, async () => {
    const path = join(root, 'crash.db');
    const s = await FileKeyStore.open(path, { passphrase: A, scrypt: FAST });
    const want = await fill(s, 300);
    await s.close();
    const open: Open = (pass) => FileKeyStore.open(path, { passphrase: pass, pollIntervalMs: 0 });
    // One run to completion measures how long a rekey takes here; kills then fall anywhere in 1.5 times that.
    const spread = Math.max(20, Math.round((await killLane(path, open, want, 0)).lastMs * 1.5));
    const outcome = await killLane(path, open, want, 30, spread);
    console.log(`[keystore-rekey] file: ${JSON.stringify(outcome)}`);
    expect(outcome.killedBefore).toBeGreaterThan(0);
  }, 600_000);
});

describe('kms-hmac keys rekey', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { cwd: root, env: { KMS_HMAC_PASSPHRASE: '', KMS_HMAC_PASSPHRASE_FILE: '', ...env } });
  const oldFile = join(root, 'old-pass');
  const newFile = join(root, 'new-pass');
  writeFileSync(oldFile, `${A}\n`, { mode: 0o600 });
  writeFileSync(newFile, `${B}\n`, { mode: 0o600 });

  test('--new-passphrase-file re-seals the store; the old passphrase no longer opens it', async () => {
    const ks = join(root, 'cli.db');
    const c = await cli([
      'keys',
      'create',
      '--key-spec',
      'HMAC_256',
      '--alias',
      'alias/r',
      '--keystore',
      ks,
      '--passphrase-file',
      oldFile,
    ]);
    expect(c.code).toBe(0);
    const mac = await runCli(
      ['mac', 'generate', '--key-id', 'alias/r', '--keystore', ks, '--passphrase-file', oldFile],
      {
        cwd: root,
        input: 'hello',
      },
    );
    const r = await cli([
      'keys',
      'rekey',
      '--keystore',
      ks,
      '--passphrase-file',
      oldFile,
      '--new-passphrase-file',
      newFile,
    ]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(JSON.parse(r.stdout)).toEqual({ KeyStore: ks, Encrypted: true, Keys: 1, Scrypt: { N: 131072, r: 8, p: 1 } });
    expect((await cli(['keys', 'list', '--keystore', ks, '--passphrase-file', oldFile])).stderr).toMatch(
      /wrong passphrase/,
    );
    const after = await runCli(['mac', 'generate', '--key-id', 'alias/r', '--keystore', ks], {
      cwd: root,
      env: { KMS_HMAC_PASSPHRASE: B, KMS_HMAC_PASSPHRASE_FILE: '' },
      input: 'hello',
    });
    expect(after.stdout).toBe(mac.stdout);
    // The new passphrase file must be private too.
    chmodSync(newFile, 0o644);
    const open = await cli([
      'keys',
      'rekey',
      '--keystore',
      ks,
      '--passphrase-file',
      newFile,
      '--new-passphrase-file',
      newFile,
    ]);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/readable by group or others/);
    chmodSync(newFile, 0o600);
  });

  test('killed at random instants (the real command, default scrypt cost): exactly one passphrase opens the store', async () => {
    const ks = join(root, 'cli-crash.db');
    const s = await FileKeyStore.open(ks, { passphrase: A, scrypt: FAST });
    const want = await fill(s, 50);
    await s.close();
    const open: Open = (pass) => FileKeyStore.open(ks, { passphrase: pass, pollIntervalMs: 0 });
    const bin = new URL('../bin/kms-hmac.js', import.meta.url).pathname;
    let current = A;
    const seen = new Set<string>();
    let fullMs = 0;
    for (let r = 0; r < 7; r++) {
      const [from, to] = current === A ? [oldFile, newFile] : [newFile, oldFile];
      const t0 = Date.now();
      const p = track(
        spawn(
          process.execPath,
          [bin, 'keys', 'rekey', '--keystore', ks, '--passphrase-file', from, '--new-passphrase-file', to],
          {
            env: { ...process.env, KMS_HMAC_PASSPHRASE: '', KMS_HMAC_PASSPHRASE_FILE: '' },
            detached: true,
            stdio: 'ignore',
          },
        ),
      );
      // The first run goes to its end and times the command; the others are killed anywhere in that time.
      const timer = r === 0 ? undefined : setTimeout(() => p.kill('SIGKILL'), rand(0, fullMs));
      const code = await new Promise((res) => p.on('exit', (c) => res(c)));
      clearTimeout(timer);
      if (r === 0) {
        expect(code).toBe(0);
        fullMs = Date.now() - t0;
      }
      const before = current;
      current = await opensWith(open, want);
      seen.add(code !== null ? `exit ${code}` : current === before ? 'killed before the commit' : 'killed after it');
    }
    console.log(`[keystore-rekey] CLI kills: ${[...seen].join(', ')}`);
  }, 300_000);
});

describe.skipIf(PG_SKIP)('PostgresKeyStore.rekey', () => {
  const pg = usePostgres();

  test('re-seals the store in one transaction; SIGKILL at any instant leaves exactly one passphrase that opens it', async () => {
    const url = await pg.database();
    const s = await PostgresKeyStore.open(url, { passphrase: A, scrypt: FAST });
    const want = await fill(s, 100);
    await s.close();
    const open: Open = (pass) => PostgresKeyStore.open(url, { passphrase: pass, pollIntervalMs: 0 });
    const spread = Math.max(20, Math.round((await killLane(url, open, want, 0)).lastMs * 1.5));
    const outcome = await killLane(url, open, want, 15, spread);
    console.log(`[keystore-rekey] postgres: ${JSON.stringify(outcome)}`);
    expect(outcome.killedBefore).toBeGreaterThan(0);
  }, 600_000);
});
