/**
 * The library's quick start (test/fixtures/quick-start.mjs: createMacKey,
 * KmsHmacClient on the memory and the file store, signLog/verifyLog) under
 * Bun and Deno, the versions pinned in package.json, installed from the npm
 * registry (and under this Node, as the control). Each gets the right MACs
 * on whichever backend loads there, and backendInfo() says which and why.
 * (A runtime without node:sqlite: test/keystore-sqlite.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { builtServeEntry } from './server-helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const QUICK_START = join(root, 'test', 'fixtures', 'quick-start.mjs');
const MODULE = pathToFileURL(join(root, 'dist', 'index.js')).href;
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-runtimes-'));
beforeAll(() => builtServeEntry(), 300_000); // dist/ as current as src/
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What each runtime runs: its command line (a runtime missing here fails the test, it is not skipped). */
const RUNTIMES: [string, string, string[]][] = [
  ['Node (this one)', process.execPath, []],
  ['Bun', bin('bun'), []],
  ['Deno', bin('deno'), ['run', '--allow-all']],
];

interface QuickStart {
  runtime: string;
  backend: { name: string; skipped: { name: string; reason: string }[] };
  material: string;
  mac: string;
  verified: boolean;
  batch: string[];
  memory: { valid: boolean; forged: string };
  file: { same: boolean; macLength: number };
  logs: { signed: number; intact: boolean; edited: boolean; issues: string[] };
}

describe.each(RUNTIMES)('the quick start under %s', (name, command, args) => {
  test('right MACs on the backend that loads there, the file store, log signing; only the fallback notice on stderr', () => {
    const dir = mkdtempSync(join(scratch, 'qs-'));
    const run = spawnSync(command, [...args, QUICK_START], {
      cwd: root,
      env: { ...process.env, KMS_HMAC_MODULE: MODULE, QS_DIR: dir, KMS_HMAC_BACKEND: '', KMS_HMAC_PREBUILD: '' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.error).toBeUndefined();
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as QuickStart;
    console.log(`[runtimes] ${out.runtime}: ${out.backend.name}`);
    expect(out.runtime).toMatch(name === 'Bun' ? /^bun / : name === 'Deno' ? /^deno / : /^node /);

    const hmac = (m: string) => createHmac('sha256', Buffer.from(out.material, 'hex')).update(m).digest('hex');
    expect(out.mac).toBe(hmac('hello'));
    expect(out.verified).toBe(true);
    expect(out.batch).toEqual([hmac('record 0'), hmac('record 9999'), hmac('record 0'), hmac('record 9999')]);
    expect(out.memory).toEqual({ valid: true, forged: 'KMSInvalidMacException' });
    expect(out.file).toEqual({ same: true, macLength: 64 });
    expect(out.logs).toEqual({ signed: 1000, intact: true, edited: false, issues: ['modified 501'] });

    // The addon where it loads; else WebAssembly, and backendInfo() tells why native was skipped.
    const { name: backend, skipped } = out.backend;
    if (name.startsWith('Node')) expect(backend).toBe('native');
    if (backend !== 'native') {
      expect(backend).toMatch(/^wasm-/);
      expect(skipped.find((s) => s.name === 'native')?.reason).toMatch(/native backend unavailable: \S/);
      expect(run.stderr).toMatch(/KMS_HMAC_FALLBACK/);
    }
    const stderr = run.stderr
      .split('\n')
      .filter((l) => l && !/KMS_HMAC_FALLBACK|--trace-warnings/.test(l))
      .join('\n');
    expect(stderr).toBe(''); // no ExperimentalWarning for node:sqlite, nothing else
  });
});
