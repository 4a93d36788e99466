/**
 * The shipped artifact: `npm run prebuild` (prebuildify) in a scratch copy of
 * the package, `npm pack`, then install the tarball into a fresh project and
 * check that it loads the bundled prebuild without compiling anything.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeHeadersDir } from '../scripts/node-headers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-pack-'));
const consumer = mkdtempSync(join(tmpdir(), 'kms-hmac-consumer-'));
const nodedir = nodeHeadersDir();
const env = { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) };

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(consumer, { recursive: true, force: true });
});

describe('prebuilt package', () => {
  it('packs a prebuild and installs without compiling', { timeout: 600_000 }, () => {
    expect(existsSync(join(root, 'dist', 'index.js')), 'dist/ is built by `npm ci` (prepare)').toBe(true);
    for (const entry of ['native', 'binding.gyp', 'package.json', 'dist', 'bin', 'scripts', 'README.md']) {
      if (existsSync(join(root, entry))) cpSync(join(root, entry), join(scratch, entry), { recursive: true });
    }
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));

    const prebuildify = join(root, 'node_modules', 'prebuildify', 'bin.js');
    execFileSync(process.execPath, [prebuildify, '--napi', '--strip'], { cwd: scratch, env, stdio: 'pipe' });
    const platformDir = join(scratch, 'prebuilds', `${process.platform}-${process.arch}`);
    expect(readdirSync(platformDir).some((f) => f.endsWith('.node'))).toBe(true);

    // --ignore-scripts: dist/ was copied already; prepare would rebuild it.
    const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json'], { cwd: scratch, env, encoding: 'utf8' });
    const [{ filename, files }] = JSON.parse(packed) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    expect(paths.some((p) => p.startsWith(`prebuilds/${process.platform}-${process.arch}/`))).toBe(true);
    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('native/addon.cc'); // sources for platforms without a prebuild

    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // better-sqlite3 (a dependency) downloads its own prebuilt binary at install, and compiles SQLite
    // where it cannot (no network here, minutes of compiling): the consumer gets the copy already built
    // for this checkout, which npm keeps, so what is checked is kms-hmac's own addon.
    cpSync(join(root, 'node_modules', 'better-sqlite3'), join(consumer, 'node_modules', 'better-sqlite3'), { recursive: true });
    const install = spawnSync(
      'npm',
      ['install', join(scratch, filename), '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'],
      { cwd: consumer, env, encoding: 'utf8' },
    );
    expect(install.status, install.stderr).toBe(0);
    const installed = join(consumer, 'node_modules', 'kms-hmac');
    expect(existsSync(join(installed, 'build')), 'install compiled the addon instead of using the prebuild').toBe(false);
    expect(`${install.stdout}${install.stderr}`).not.toMatch(/gyp info/);

    const probe = `import { backendInfo, createMacKey } from 'kms-hmac';
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const loadedFrom = require('node-gyp-build').resolve(${JSON.stringify(installed)});
      const mac = Buffer.from(createMacKey('HMAC_SHA_256', Buffer.from('k')).mac(Buffer.from('m'))).toString('hex');
      console.log(JSON.stringify({ backend: backendInfo().name, loadedFrom, mac }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: consumer, encoding: 'utf8' });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { backend: string; loadedFrom: string; mac: string };
    expect(result.backend).toBe('native');
    expect(result.loadedFrom).toContain(join('prebuilds', `${process.platform}-${process.arch}`));
    expect(result.mac).toBe(createHmac('sha256', 'k').update('m').digest('hex'));
  });
});
