/**
 * Passphrases and key material kept out of reach (issue 26):
 * - new stores derive their keys with scrypt N=2^17 (OWASP's minimum); a
 *   store made with N=2^15 (kms-hmac 0.1) opens with the cost it records;
 * - a passphrase file that group or others may read is refused, by the
 *   library and by every command;
 * - KMS_HMAC_PASSPHRASE leaves the environment once read: child processes
 *   and `serve --workers` workers do not inherit it (workers get it over IPC);
 * - `keys import` takes material from a file or stdin; the argv forms warn.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { DEFAULT_SCRYPT, resolvePassphrase } from '../src/keystore/crypto.js';
import { FileKeyStore, PassphraseFileError } from '../src/keystore/index.js';
import { runCli } from './cli-run.js';
import { key } from './keystore-contract.js';
import { signedCall, startServe, stopServe } from './server-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const NO_PASS = { KMS_HMAC_PASSPHRASE: '', KMS_HMAC_PASSPHRASE_FILE: '' };
const cli = (args: string[], env: Record<string, string> = {}, input?: string | Buffer) =>
  runCli(args, { cwd: dir, env: { ...NO_PASS, ...env }, input });

function kdfOf(path: string): { N: number; r: number; p: number } {
  const db = new Database(path, { readonly: true });
  try {
    return JSON.parse((db.prepare('SELECT encryption FROM kms_hmac_meta').get() as { encryption: string }).encryption)
      .kdf;
  } finally {
    db.close();
  }
}

describe('scrypt cost', () => {
  test('a new store uses N=2^17, r=8, p=1; a store made with N=2^15 opens with its own cost', async () => {
    expect(DEFAULT_SCRYPT).toEqual({ N: 1 << 17, r: 8, p: 1 });
    const path = join(dir, 'new.db');
    const t0 = performance.now();
    const s = await FileKeyStore.open(path, { passphrase: 'new store' });
    console.log(`[keystore-secrets] create at N=2^17: ${Math.round(performance.now() - t0)} ms (shared machine)`);
    await s.close();
    expect(kdfOf(path)).toMatchObject({ N: 1 << 17, r: 8, p: 1 });
    const t1 = performance.now();
    (await FileKeyStore.open(path, { passphrase: 'new store' })).close();
    console.log(`[keystore-secrets] open at N=2^17: ${Math.round(performance.now() - t1)} ms (shared machine)`);

    const old = join(dir, 'old.db');
    const o = await FileKeyStore.open(old, { passphrase: 'old store', scrypt: { N: 1 << 15 } });
    await o.transact((tx) => tx.insertKey(key()));
    await o.close();
    const again = await FileKeyStore.open(old, { passphrase: 'old store' });
    try {
      expect(again.listKeys()).toHaveLength(1);
      expect(again.scrypt).toEqual({ N: 1 << 15, r: 8, p: 1 });
    } finally {
      await again.close();
    }
    expect(kdfOf(old).N).toBe(1 << 15); // opening never rewrites it: `keys rekey` does (keystore-rekey.test.ts)
  });
});

describe('a passphrase file others can read', () => {
  const open = join(dir, 'open-pass');
  writeFileSync(open, 'readable by all\n');
  chmodSync(open, 0o644);
  const grp = join(dir, 'group-pass');
  writeFileSync(grp, 'readable by the group\n');
  chmodSync(grp, 0o640);

  test('is refused by the library (KMS_HMAC_PASSPHRASE_FILE), naming the mode and the fix; nothing is created', () => {
    for (const file of [open, grp]) {
      const path = join(dir, `perm-${readdirSync(dir).length}.db`);
      const saved = process.env.KMS_HMAC_PASSPHRASE_FILE;
      process.env.KMS_HMAC_PASSPHRASE_FILE = file;
      try {
        const err = (() => {
          try {
            new KmsHmacClient({ keyStore: path });
          } catch (e) {
            return e as Error;
          }
        })();
        expect(err).toBeInstanceOf(PassphraseFileError);
        expect(err!.message).toBe(
          `passphrase file ${file} is readable by group or others (mode 0${file === open ? '644' : '640'}): chmod 600 ${file} (or 400; a Kubernetes secret: defaultMode 0400)`,
        );
      } finally {
        if (saved === undefined) delete process.env.KMS_HMAC_PASSPHRASE_FILE;
        else process.env.KMS_HMAC_PASSPHRASE_FILE = saved;
      }
      expect(readdirSync(dir).some((n) => n.startsWith(path.slice(dir.length + 1)))).toBe(false);
    }
  });

  test('is a usage error (exit 2) for every command, by flag or variable', async () => {
    const ks = join(dir, 'cli-perm.db');
    const byFlag = await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--keystore', ks, '--passphrase-file', open]);
    expect(byFlag.code).toBe(2);
    expect(byFlag.stderr).toMatch(
      /PassphraseFileError: passphrase file .* is readable by group or others \(mode 0644\): chmod 600/,
    );
    const byEnv = await cli(['keys', 'list', '--keystore', ks], { KMS_HMAC_PASSPHRASE_FILE: grp });
    expect(byEnv.code).toBe(2);
    expect(byEnv.stderr).toMatch(/mode 0640/);
    chmodSync(grp, 0o600);
    expect((await cli(['keys', 'list', '--keystore', ks], { KMS_HMAC_PASSPHRASE_FILE: grp })).code).toBe(0);
  });
});

describe('KMS_HMAC_PASSPHRASE leaves the environment once read', () => {
  test('the library: a child process started afterwards does not inherit it; the store still opens', async () => {
    const path = join(dir, 'env.db');
    process.env.KMS_HMAC_PASSPHRASE = 'from the environment';
    try {
      const client = new KmsHmacClient({ keyStore: path });
      await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
      await client.close();
      expect(process.env.KMS_HMAC_PASSPHRASE).toBeUndefined();
      const child = spawnSync(
        process.execPath,
        ['-e', 'process.stdout.write(String(process.env.KMS_HMAC_PASSPHRASE))'],
        {
          encoding: 'utf8',
        },
      );
      expect(child.stdout).toBe('undefined');
      // This process still has it: a second store opens with it.
      const again = new KmsHmacClient({ keyStore: path });
      expect((await again.listKeys()).Keys).toHaveLength(1);
      await again.close();
    } finally {
      process.env.KMS_HMAC_PASSPHRASE = ''; // "none", for the tests after this one
      resolvePassphrase(undefined);
    }
  });

  test.runIf(process.platform === 'linux')(
    '`serve --workers 2`: the workers do not have it, and they open the store',
    async () => {
      const path = join(dir, 'workers.db');
      const child = await startServe(['--keystore', path, '--workers', '2'], dir, {
        KMS_HMAC_PASSPHRASE: 'workers passphrase',
      });
      try {
        const created = await signedCall(child.url, 'CreateKey', {
          KeySpec: 'HMAC_256',
          KeyUsage: 'GENERATE_VERIFY_MAC',
        });
        expect(created.status, created.body).toBe(200);
        const pid = child.proc.pid!;
        const workers = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        expect(workers).toHaveLength(2);
        for (const w of workers)
          expect(readFileSync(`/proc/${w}/environ`, 'latin1')).not.toContain('KMS_HMAC_PASSPHRASE=');
      } finally {
        expect((await stopServe(child)).code).toBe(0);
      }
      const s = await FileKeyStore.open(path, { passphrase: 'workers passphrase' });
      try {
        expect(s.encrypted).toBe(true);
        expect(s.listKeys()).toHaveLength(1);
      } finally {
        await s.close();
      }
    },
  );
});

describe('keys import', () => {
  test('--material-file FILE and --material-file - (stdin); the argv forms still work, with a warning', async () => {
    const ks = join(dir, 'import.db');
    const material = Buffer.alloc(32, 9);
    const file = join(dir, 'material.bin');
    writeFileSync(file, material, { mode: 0o600 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--origin', 'EXTERNAL', '--keystore', ks]);
      ids.push(JSON.parse(c.stdout).KeyMetadata.KeyId);
    }
    const fromFile = await cli(['keys', 'import', '--key-id', ids[0]!, '--material-file', file, '--keystore', ks]);
    expect([fromFile.code, fromFile.stderr]).toEqual([0, '']);
    const fromStdin = await cli(
      ['keys', 'import', '--key-id', ids[1]!, '--material-file', '-', '--keystore', ks],
      {},
      material,
    );
    expect([fromStdin.code, fromStdin.stderr]).toEqual([0, '']);
    const fromArgv = await cli([
      'keys',
      'import',
      '--key-id',
      ids[2]!,
      '--material-hex',
      material.toString('hex'),
      '--keystore',
      ks,
    ]);
    expect(fromArgv.code).toBe(0);
    expect(fromArgv.stderr).toMatch(
      /^kms-hmac: warning: --material-hex puts key material in argv, .*--material-file.*next major version\.\n$/,
    );
    const expected = createHmac('sha256', material).update('hello').digest('base64');
    for (const id of ids) {
      const g = await cli(['mac', 'generate', '--key-id', id, '--keystore', ks], {}, 'hello');
      expect(g.stdout.trim()).toBe(expected);
    }
    const none = await cli(['keys', 'import', '--key-id', ids[0]!, '--keystore', ks]);
    expect([none.code, none.stderr]).toEqual([
      2,
      'kms-hmac: keys import: give --material-file FILE (or - for stdin)\n',
    ]);
  });
});
