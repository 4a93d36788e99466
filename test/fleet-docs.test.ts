/**
 * docs/fleet.md, "Running a fleet": its walk-through runs exactly as written
 * (free ports instead of 4601/4602), with the real PostgreSQL programs, two
 * `kms-hmac serve` replicas and the AWS CLI, and prints what the text says
 * it prints. As root, it runs as the `postgres` user (PostgreSQL refuses root), in a working
 * directory that user can enter (the checkout may sit where it cannot).
 *
 * The walk-through's $(mktemp -d) lands in a directory of the test's (TMPDIR), so that whatever it
 * leaves running when it fails or times out is found and stopped: its shell and the replicas with
 * their process group, the PostgreSQL server (pg_ctl puts it in a session of its own) with pg_ctl.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresBinDir } from '../scripts/postgres-cluster.js';
import { PG_SKIP } from './postgres.js';
import { builtServeEntry, ROOT } from './server-helpers.js';
import { track } from './support/process-group.js';

const AWS = spawnSync('aws', ['--version']).status === 0;
if (!PG_SKIP && !AWS) console.log('[fleet-docs] skipped: the AWS CLI (aws) is not installed');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The walk-through: the first ```sh block after the "# Running a fleet" title. */
function walkThrough(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'fleet.md'), 'utf8');
  const m = /```sh\n([\s\S]*?)\n```/.exec(doc);
  if (!m) throw new Error('docs/fleet.md has no ```sh block');
  return m[1]!;
}

/**
 * This checkout as `npm install -g kms-hmac` lays it out (`prefix`/bin/kms-hmac, the package and
 * its dependencies under `prefix`/lib/node_modules), so that the walk-through's user can run it
 * even when it may not enter the checkout's directory.
 */
function installGlobally(prefix: string): string {
  const pkg = join(prefix, 'lib', 'node_modules', 'kms-hmac');
  for (const part of ['package.json', 'bin', 'dist', 'build/Release/kms_hmac.node', 'prebuilds'])
    if (existsSync(join(ROOT, part))) cpSync(join(ROOT, part), join(pkg, part), { recursive: true });
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  for (const [path, entry] of Object.entries(lock.packages))
    if (path.startsWith('node_modules/') && !entry.dev && existsSync(join(ROOT, path)))
      cpSync(join(ROOT, path), join(pkg, path), { recursive: true });
  const bin = join(prefix, 'bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'kms-hmac'),
    `#!/bin/sh\nexec "${process.execPath}" "${join(pkg, 'bin', 'kms-hmac.js')}" "$@"\n`,
  );
  chmodSync(join(bin, 'kms-hmac'), 0o755);
  chmodSync(prefix, 0o755);
  return bin;
}

const asRoot = process.getuid?.() === 0;
/** `command` as the user the walk-through runs as (postgres, when the tests run as root). */
const asWalker = (command: string[]): [string, string[]] =>
  asRoot ? ['runuser', ['-u', 'postgres', '--', ...command]] : [command[0]!, command.slice(1)];

const dirs: string[] = [];
let scratch: string | undefined; // the walk-through's TMPDIR
afterAll(() => {
  // A PostgreSQL server the walk-through started and did not stop (it failed, or the test timed out).
  for (const demo of scratch && existsSync(scratch) ? readdirSync(scratch) : []) {
    const data = join(scratch!, demo, 'pg');
    if (!existsSync(join(data, 'postmaster.pid'))) continue;
    const [cmd, args] = asWalker([join(postgresBinDir()!, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']);
    spawnSync(cmd, args, { cwd: '/', stdio: 'ignore', timeout: 60_000 });
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(PG_SKIP || !AWS)('docs/fleet.md', () => {
  test('the "Running a fleet" walk-through runs as written and shows what it says', async () => {
    builtServeEntry(); // dist/ current: bin/kms-hmac.js runs it
    const [a, b] = [await freePort(), await freePort()];
    const script = walkThrough().replaceAll('4601', String(a)).replaceAll('4602', String(b));
    // `kms-hmac` on PATH, as after `npm install -g kms-hmac`.
    const prefix = mkdtempSync(join(tmpdir(), 'kms-hmac-docs-prefix-'));
    const home = mkdtempSync(join(tmpdir(), 'kms-hmac-docs-home-'));
    dirs.push(prefix, home);
    const bin = installGlobally(prefix);
    scratch = join(home, 'tmp');
    mkdirSync(scratch);
    const env = {
      PATH: `${bin}:${postgresBinDir()}:/usr/local/bin:/usr/bin:/bin`,
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
      LANG: 'C.UTF-8',
      TMPDIR: scratch,
    };
    if (asRoot) {
      const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString());
      const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString());
      chownSync(home, uid, gid);
      chownSync(scratch, uid, gid);
    }
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const [cmd, args] = asWalker(['env', '-i', ...envArgs, 'bash', '-c', script]);
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const p = track(spawn(cmd, args, { cwd: home, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    const lines = out.stdout.split('\n').filter(Boolean);
    const mac = /^[A-Za-z0-9+/]{43}=$/;
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const detail = `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`;
    // Both replicas give the same MAC; it still comes while the database is down.
    const macs = lines.filter((l) => mac.test(l));
    expect(macs, detail).toHaveLength(3);
    expect(new Set(macs).size, detail).toBe(1);
    expect(out.stderr, detail).toMatch(/\(DisabledException\) when calling the GenerateMac operation/);
    expect(out.stderr, detail).toMatch(/\(DependencyTimeoutException\) when calling the CreateKey operation/);
    // After the restart: a new key from the other replica, with no replica restarted.
    expect(
      lines.slice(lines.lastIndexOf(macs[2]!)).some((l) => uuid.test(l)),
      detail,
    ).toBe(true);
    expect(out.code, detail).toBe(0);
  }, 240_000);
});
