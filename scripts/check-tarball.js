#!/usr/bin/env node
// Checks an npm tarball of kms-hmac the way a user meets it, on this machine:
//
//   node scripts/check-tarball.js kms-hmac-0.1.0.tgz [--messages N]
//
//   1. `npm install <tarball>` into an empty project whose PATH holds no
//      compiler, make or python: it succeeds and compiles nothing, and the
//      only native code installed is the package's own prebuild;
//   2. the native prebuild for this platform loads and agrees with
//      node:crypto (scripts/check-prebuild.js);
//   3. `npx kms-hmac demo` and `keys create` run on the native backend, with
//      the default file key store (node:sqlite);
//   4. with the prebuild deleted, the install script still succeeds (no
//      compiler: it says WebAssembly will be used), WebAssembly is selected
//      with its notice, and the demo and `keys create` run on it.
//
// Whatever Node runs this script runs the consumer's npm and the package.
//
// Run by test/prebuild.test.ts on a freshly packed tarball, and by the release
// workflow on the tarball it assembled from every platform's prebuild.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WINDOWS_SHELL, compilerFreeEnv, installTarball } from './tarball.js';

const here = fileURLToPath(new URL('.', import.meta.url));

function run(command, args, options) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  return { ...result, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

function step(name, ok, detail) {
  if (!ok) throw new Error(`${name}\n${detail}`);
  console.log(`ok - ${name}`);
}

function main() {
  const args = process.argv.slice(2);
  const tarball = args[0] && !args[0].startsWith('--') ? resolve(args[0]) : undefined;
  if (!tarball || !existsSync(tarball)) throw new Error('usage: check-tarball.js <kms-hmac-*.tgz> [--messages N]');
  const messages = args.includes('--messages') ? args[args.indexOf('--messages') + 1] : '10000';

  const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-tarball-'));
  try {
    const consumer = join(scratch, 'consumer');
    const installed = join(consumer, 'node_modules', 'kms-hmac');
    // The CLI's default key store (in $XDG_DATA_HOME), no passphrase, the package's own backend choice.
    const userEnv = { ...process.env, XDG_DATA_HOME: join(scratch, 'data') };
    for (const name of Object.keys(userEnv)) if (/^KMS_HMAC_/.test(name)) delete userEnv[name];
    const env = compilerFreeEnv(scratch, userEnv);
    const defaultStore = join(scratch, 'data', 'kms-hmac', 'keystore.db');
    const npx = (...args) => run('npx', args, { cwd: consumer, env, shell: WINDOWS_SHELL });

    const install = installTarball(tarball, consumer, env);
    const installOutput = `${install.stdout}${install.stderr}`;
    step('npm install with no compiler on PATH', install.status === 0, installOutput);
    step(
      'the install compiled nothing',
      !existsSync(join(installed, 'build')) && !/gyp (info|ERR)|native addon unavailable/.test(installOutput),
      installOutput,
    );
    const addons = nativeFiles(join(consumer, 'node_modules'));
    step(
      'the only native code installed is the package’s own prebuild',
      addons.length > 0 && addons.every((f) => f.startsWith(join(installed, 'prebuilds'))),
      addons.join('\n'),
    );

    const check = run(
      process.execPath,
      [join(here, 'check-prebuild.js'), '--package', installed, '--messages', messages],
      { env },
    );
    step('the native prebuild loads and agrees with node:crypto', check.status === 0, check.output);
    console.log(check.stdout.trimEnd().replace(/^/gm, '    '));

    const demo = npx('kms-hmac', 'demo');
    step(
      '`npx kms-hmac demo` runs on the native backend, with the default file key store',
      demo.status === 0 &&
        /demo — backend native\b/.test(demo.stdout) &&
        demo.stdout.includes(`key store ${defaultStore}\n`) &&
        /verify app\.log --key-id \S+ +-> OK/.test(demo.stdout),
      demo.output,
    );
    keysCreate(npx, 'alias/on-native', /^$/);

    rmSync(join(installed, 'prebuilds'), { recursive: true });
    // What an install on a platform without a prebuild and without a compiler runs.
    const rebuild = run('npm', ['rebuild', 'kms-hmac', '--foreground-scripts'], {
      cwd: consumer,
      env,
      shell: WINDOWS_SHELL,
    });
    step(
      'without the prebuild and with no compiler, the install script still succeeds and says WebAssembly will be used',
      rebuild.status === 0 && /native addon unavailable.*the WebAssembly backend will be used/.test(rebuild.output),
      rebuild.output,
    );
    // The async batch starts the WebAssembly pool's workers from the installed
    // dist/backend/wasm-worker.js: the tarball must carry it.
    const probe = `import { backendInfo, createMacKey } from 'kms-hmac';
      const key = createMacKey('HMAC_SHA_256', Buffer.from('k'));
      const mac = Buffer.from(key.mac(Buffer.from('m'))).toString('hex');
      const macs = await key.macBatchAsync(Array.from({ length: 5000 }, () => Buffer.from('m')));
      const asyncMac = Buffer.from(macs[4999]).toString('hex');
      console.log(JSON.stringify({ backend: backendInfo().name, mac, asyncMac }));`;
    const fallback = run(process.execPath, ['--input-type=module', '-e', probe], { cwd: consumer, env });
    const result =
      fallback.status === 0 ? JSON.parse(/** @type {string} */ (fallback.stdout.trim().split('\n').pop())) : {};
    step(
      'without the prebuild: WebAssembly, with its notice, and the right MACs (sync and on the worker pool)',
      /^wasm-/.test(result.backend) &&
        result.mac === createHmac('sha256', 'k').update('m').digest('hex') &&
        result.asyncMac === result.mac &&
        /KMS_HMAC_FALLBACK.*native backend unavailable/.test(fallback.stderr),
      fallback.output,
    );
    const wasmDemo = npx('kms-hmac', 'demo');
    step(
      '`npx kms-hmac demo` runs on WebAssembly, with its notice, on the same key store',
      wasmDemo.status === 0 &&
        /demo — backend wasm-/.test(wasmDemo.stdout) &&
        /key alias\/kms-hmac-demo -> \S+ \(reused\)/.test(wasmDemo.stdout) &&
        /verify app\.log --key-id \S+ +-> OK/.test(wasmDemo.stdout) &&
        /native backend unavailable/.test(wasmDemo.stderr),
      wasmDemo.output,
    );
    keysCreate(npx, 'alias/on-wasm', /^kms-hmac: warning: kms-hmac: native backend unavailable/);
    const list = npx('kms-hmac', 'keys', 'list', '--json');
    const aliases = list.status === 0 ? JSON.parse(list.stdout).Keys.flatMap((k) => k.Aliases) : [];
    step(
      '`keys list` shows the keys made on both backends',
      ['alias/kms-hmac-demo', 'alias/on-native', 'alias/on-wasm'].every((a) => aliases.includes(a)),
      list.output,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * `kms-hmac keys create` in the default store: exit 0, no ExperimentalWarning, and on stderr,
 * besides the warning that a new store is unencrypted, only what `expected` matches.
 */
function keysCreate(npx, alias, expected) {
  const made = npx('kms-hmac', 'keys', 'create', '--key-spec', 'HMAC_256', '--alias', alias);
  const stderr = made.stderr.replace(/^kms-hmac: warning: created key store .* unencrypted.*\n/m, '');
  step(
    `\`npx kms-hmac keys create --alias ${alias}\` with the default file key store`,
    made.status === 0 &&
      JSON.parse(made.stdout).KeyMetadata.KeyState === 'Enabled' &&
      !/ExperimentalWarning/.test(made.stderr) &&
      expected.test(stderr.trim()),
    made.output,
  );
}

/** Every native addon (.node file) under `dir`. */
function nativeFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.node'))
    .map((e) => join(e.parentPath, e.name));
}

try {
  main();
} catch (error) {
  console.error(`check-tarball: not ok - ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
