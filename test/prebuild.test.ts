/**
 * The package as it ships: `npm run prebuild` (scripts/prebuild.js: this
 * platform's addon and, on linux-x64, the cross-built linux-arm64 one) in a
 * scratch copy of the package, `npm pack`, then `npm install` of the tarball
 * into an empty project whose PATH has no compiler, make or python.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultArches, prebuildPath } from '../scripts/prebuild.js';
import { WINDOWS_SHELL, compilerFreeEnv, installTarball, packPackage } from '../scripts/tarball.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-pack-'));
const packageDir = join(scratch, 'package');
const consumer = join(scratch, 'consumer');
const installed = join(consumer, 'node_modules', 'kms-hmac');

const env = compilerFreeEnv(scratch, { ...process.env, XDG_DATA_HOME: join(scratch, 'data') });
let packed: string[] = [];
let install: { status: number | null; stdout: string; stderr: string };

beforeAll(() => {
  expect(existsSync(join(root, 'dist', 'index.js')), 'dist/ is built by `npm ci` (prepare)').toBe(true);
  // The package's publish allowlist, as built in this checkout, minus any prebuilds lying around.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
  for (const entry of ['package.json', ...pkg.files.filter((f) => !f.startsWith('prebuilds'))]) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(packageDir, entry), { recursive: true });
  }
  execFileSync(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--out', packageDir], { stdio: 'pipe' });
  let tarball: string;
  ({ tarball, files: packed } = packPackage(packageDir, scratch));
  install = installTarball(tarball, consumer, env);
}, 900_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the npm tarball', () => {
  it('holds the prebuilds, dist/, the WebAssembly, the CLI and the sources for other platforms', () => {
    // This platform's, and linux-arm64's too on a linux-x64 glibc host (cross-built).
    for (const arch of defaultArches()) expect(packed).toContain(prebuildPath(arch));
    expect(packed).toContain('dist/index.js');
    expect(packed).toContain('dist/backend/wasm-binaries.js'); // both WebAssembly builds, embedded
    expect(packed).toContain('bin/kms-hmac.js');
    expect(packed).toContain('binding.gyp');
    expect(packed).toContain('native/addon.cc');
    expect(packed.filter((p) => p.startsWith('build/') || p.startsWith('test/') || p.startsWith('src/'))).toEqual([]);
  });

  it('installs with no compiler on PATH and compiles nothing', () => {
    expect(install.status, install.stderr).toBe(0);
    expect(existsSync(join(installed, 'build')), 'install compiled the addon instead of using the prebuild').toBe(false);
    expect(`${install.stdout}${install.stderr}`).not.toMatch(/gyp (info|ERR)|native addon unavailable/);
  });

  it('loads the native prebuild, which agrees with node:crypto', () => {
    // The same check test:arm64 runs under qemu: loads from prebuilds/, RFC 4231, random messages.
    const check = spawnSync(
      process.execPath,
      [join(root, 'scripts', 'check-prebuild.js'), '--package', installed, '--messages', '2000'],
      { env, encoding: 'utf8' },
    );
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    expect(check.stdout).toContain(join(installed, prebuildPath(process.arch)));
  });

  it('runs `npx kms-hmac demo`', { timeout: 180_000 }, () => {
    const demo = spawnSync('npx', ['kms-hmac', 'demo'], { cwd: consumer, env, encoding: 'utf8', shell: WINDOWS_SHELL });
    expect(demo.status, `${demo.stdout}${demo.stderr}`).toBe(0);
    expect(demo.stdout).toMatch(/kms-hmac demo — backend native/);
    expect(demo.stdout).toMatch(/kms-hmac verify app\.log {2}-> OK/);
  });

  it('falls back to WebAssembly, with its notice, once the prebuild is gone', () => {
    rmSync(join(installed, 'prebuilds'), { recursive: true });
    const probe = `import { backendInfo, createMacKey } from 'kms-hmac';
      const mac = Buffer.from(createMacKey('HMAC_SHA_256', Buffer.from('k')).mac(Buffer.from('m'))).toString('hex');
      console.log(JSON.stringify({ backend: backendInfo().name, mac }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: consumer, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim()) as { backend: string; mac: string };
    expect(result.backend).toMatch(/^wasm-/);
    expect(result.mac).toBe(createHmac('sha256', 'k').update('m').digest('hex'));
    expect(run.stderr).toMatch(/KMS_HMAC_FALLBACK.*native backend unavailable/);
  });
});
