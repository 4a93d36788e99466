/**
 * The PostgreSQL suites from a checkout in a directory the `postgres` user cannot enter, as a
 * checkout in `mktemp -d` (mode 0700) is when the tests run as root: every program the tests run as
 * `postgres` (initdb, pg_ctl, psql; the fleet walk-through) must start in a directory that user can
 * enter, and nothing may read psql's "could not change directory" warning as an answer.
 *
 * The checkout is copied into a 0700 directory (node_modules linked, not copied) and vitest runs
 * there: keystore-postgres (the cluster helper and psql), cli-keystore (the CLI on a postgres://
 * store) and fleet-docs (the walk-through run as `postgres`). fleet.test.ts starts its server the
 * same way as keystore-postgres, and is left out for time.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_SKIP } from './postgres.js';
import { builtServeEntry, ROOT } from './server-helpers.js';
import { track } from './support/process-group.js';

const SUITES = ['test/keystore-postgres.test.ts', 'test/cli-keystore.test.ts', 'test/fleet-docs.test.ts'];

const outer = mkdtempSync(join(tmpdir(), 'kms-hmac-0700-'));
afterAll(() => rmSync(outer, { recursive: true, force: true }));

describe.skipIf(PG_SKIP)('a checkout in a 0700 directory', () => {
  it('passes the PostgreSQL suites', { timeout: 600_000 }, async () => {
    builtServeEntry(); // dist/ current, so that the copy need not build it
    chmodSync(outer, 0o700);
    const checkout = join(outer, 'kms-hmac');
    cpSync(ROOT, checkout, {
      recursive: true,
      preserveTimestamps: true, // dist/ stays newer than src/
      filter: (src) => !['node_modules', '.git'].includes(relative(ROOT, src)),
    });
    symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
    expect(statSync(outer).mode & 0o777).toBe(0o700);
    if (process.getuid?.() === 0) {
      // The premise: the user the PostgreSQL programs run as cannot enter the checkout.
      expect(spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', checkout], { cwd: '/' }).status).not.toBe(0);
    }

    const env: NodeJS.ProcessEnv = { ...process.env, KMS_HMAC_REQUIRE_POSTGRES: '1', NO_COLOR: '1' };
    for (const name of Object.keys(env))
      if (name.startsWith('VITEST') || name === 'NODE_OPTIONS' || name === 'FORCE_COLOR') delete env[name];
    const vitest = join(checkout, 'node_modules', 'vitest', 'vitest.mjs');
    const run = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = track(
        spawn(process.execPath, [vitest, 'run', ...SUITES], {
          cwd: checkout,
          env,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });
    expect(run.code, run.output.slice(-20_000)).toBe(0);
    for (const suite of SUITES) expect(run.output).toContain(suite);
    // What ran in the 0700 checkout (skipped tests are listed as such).
    console.log(`[postgres-0700] ${/Tests\s+.*\)/.exec(run.output)?.[0]}`);
  });
});
