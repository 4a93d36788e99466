/**
 * The package as it ships: `npm run prebuild` (scripts/prebuild.js: this
 * platform's addon and, on linux-x64, the cross-built linux-arm64 one) in a
 * scratch copy of the package, `npm pack`, then scripts/check-tarball.js:
 * install with no compiler on PATH, the prebuild loads and agrees with
 * node:crypto, `npx kms-hmac demo` runs, WebAssembly takes over without it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultArches, prebuildPath } from '../scripts/prebuild.js';
import { packPackage } from '../scripts/tarball.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-pack-'));
const packageDir = join(scratch, 'package');
let tarball: string;
let packed: string[];

beforeAll(() => {
  expect(existsSync(join(root, 'dist', 'index.js')), 'dist/ is built by `npm ci` (prepare)').toBe(true);
  // The package's publish allowlist as built in this checkout, minus any prebuilds lying around.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
  for (const entry of ['package.json', ...pkg.files.filter((f) => !f.startsWith('prebuilds'))]) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(packageDir, entry), { recursive: true });
  }
  execFileSync(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--out', packageDir], { stdio: 'pipe' });
  ({ tarball, files: packed } = packPackage(packageDir, scratch));
}, 900_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the npm tarball', () => {
  it('holds the prebuilds, dist/, the WebAssembly, the CLI and the sources for other platforms', () => {
    // This platform's, and linux-arm64's too on a linux-x64 glibc host (cross-built).
    for (const arch of defaultArches()) expect(packed).toContain(prebuildPath(arch));
    expect(packed).toContain('dist/index.js');
    expect(packed).toContain('dist/backend/wasm-binaries.js'); // both WebAssembly builds, embedded
    expect(packed).toContain('dist/backend/wasm-worker.js'); // the async WebAssembly pool's worker module
    expect(packed).toContain('bin/kms-hmac.js');
    expect(packed).toContain('binding.gyp');
    expect(packed).toContain('native/addon.cc');
    expect(packed.filter((p) => /^(build|src|test)\//.test(p))).toEqual([]);
  });

  it('carries the licence its package.json names (Apache-2.0 requires the text) and the changelog', () => {
    expect(packed).toContain('LICENSE');
    expect(readFileSync(join(packageDir, 'LICENSE'), 'utf8')).toMatch(
      /^\s*Apache License\s+Version 2\.0, January 2004/,
    );
    expect(packed).toContain('CHANGELOG.md');
  });

  it('installs without a compiler, loads its prebuild, runs the demo, falls back to WebAssembly', {
    timeout: 300_000,
  }, () => {
    const check = spawnSync(
      process.execPath,
      [join(root, 'scripts', 'check-tarball.js'), tarball, '--messages', '2000'],
      {
        encoding: 'utf8',
      },
    );
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    expect(check.stdout).toContain(join('prebuilds', `${process.platform}-${process.arch}`));
  });
});
