/**
 * The file store's SQLite is the runtime's node:sqlite (src/keystore/sqlite.ts),
 * loaded when the first file store opens. Node 22 prints an ExperimentalWarning
 * when node:sqlite first loads: kms-hmac drops that one warning, and no other.
 * Where node:sqlite is missing, the file store says so and nothing else breaks.
 * Each case runs in a child process (a fresh module cache, the real warning).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { builtServeEntry } from './server-helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const MODULE = pathToFileURL(join(root, 'dist', 'index.js')).href;
const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-sqlite-'));
beforeAll(() => builtServeEntry(), 300_000); // the children import dist/, as current as src/
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SQLITE_WARNING = /ExperimentalWarning: SQLite is an experimental feature/;

function node(flags: string[], code: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [...flags, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, KMS_HMAC_PASSPHRASE: '', KMS_HMAC_PASSPHRASE_FILE: '', ...env },
  });
}

const openStore = (path: string) => `
  const { FileKeyStore } = await import(${JSON.stringify(MODULE)});
  const store = await FileKeyStore.open(${JSON.stringify(path)}, { passphrase: null });
  await store.close();`;

describe("node:sqlite's ExperimentalWarning", () => {
  test('kms-hmac never shows it; every other warning, ExperimentalWarnings too, still shows; an app that loads node:sqlite itself sees it as Node prints it', () => {
    // Whether this Node prints it at all (Node 22 does; 24 and 26 do not).
    const bare = node([], `process.getBuiltinModule('node:sqlite');`);
    const printed = SQLITE_WARNING.test(bare.stderr);
    console.log(`[keystore-sqlite] Node ${process.version} prints the node:sqlite ExperimentalWarning: ${printed}`);

    const ours = node(
      [],
      `process.emitWarning('before the store', 'ExperimentalWarning');
       ${openStore(join(scratch, 'a.db'))}
       process.emitWarning('after the store', { type: 'ExperimentalWarning' });
       process.emitWarning('another kind');`,
    );
    expect(ours.status, ours.stderr).toBe(0);
    expect(ours.stderr).not.toMatch(SQLITE_WARNING);
    for (const w of [
      /ExperimentalWarning: before the store/,
      /ExperimentalWarning: after the store/,
      /Warning: another kind/,
    ])
      expect(ours.stderr).toMatch(w);

    const theirs = node([], `await import('node:sqlite'); ${openStore(join(scratch, 'b.db'))}`);
    expect(theirs.status, theirs.stderr).toBe(0);
    expect(SQLITE_WARNING.test(theirs.stderr)).toBe(printed);
  });
});

describe('a runtime without node:sqlite (node --no-experimental-sqlite)', () => {
  test('the file store is a KeyStoreUnavailableError saying what is missing, before any file is made; the memory store works', () => {
    const path = join(mkdtempSync(join(scratch, 'none-')), 'sub', 'keystore.db');
    const cli = spawnSync(
      process.execPath,
      [
        '--no-experimental-sqlite',
        join(root, 'bin', 'kms-hmac.js'),
        'keys',
        'create',
        '--key-spec',
        'HMAC_256',
        '--keystore',
        path,
      ],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, KMS_HMAC_PASSPHRASE: 'p', KMS_HMAC_PASSPHRASE_FILE: '' },
      },
    );
    expect(cli.status, cli.stderr).toBe(3);
    expect(cli.stderr).toMatch(/KeyStoreUnavailableError: key store .* needs node:sqlite .*this runtime \(Node v/);
    expect(existsSync(join(path, '..'))).toBe(false); // not even its directory

    const memory = node(
      ['--no-experimental-sqlite'],
      `const { KmsHmacClient } = await import(${JSON.stringify(MODULE)});
       const kms = new KmsHmacClient();
       const { KeyMetadata } = await kms.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
       const { Mac } = await kms.generateMac({ KeyId: KeyMetadata.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'm' });
       console.log(Mac.length);`,
    );
    expect([memory.status, memory.stdout.trim(), memory.stderr]).toEqual([0, '32', '']);
  });
});
