#!/usr/bin/env node
// Checks an npm tarball of kms-hmac the way a user meets it, on this machine:
//
//   node scripts/check-tarball.js kms-hmac-0.1.0.tgz [--messages N]
//
//   1. `npm install <tarball>` into an empty project whose PATH holds no
//      compiler, make or python: it succeeds and compiles nothing;
//   2. the native prebuild for this platform loads and agrees with
//      node:crypto (scripts/check-prebuild.js);
//   3. `npx kms-hmac demo` runs, on the native backend;
//   4. with the prebuild deleted, WebAssembly is selected, with its notice.
//
// Run by test/prebuild.test.ts on a freshly packed tarball, and by the release
// workflow on the tarball it assembled from every platform's prebuild.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
    const env = compilerFreeEnv(scratch, { ...process.env, XDG_DATA_HOME: join(scratch, 'data') });

    const install = installTarball(tarball, consumer, env);
    const installOutput = `${install.stdout}${install.stderr}`;
    step('npm install with no compiler on PATH', install.status === 0, installOutput);
    step(
      'the install compiled nothing',
      !existsSync(join(installed, 'build')) && !/gyp (info|ERR)|native addon unavailable/.test(installOutput),
      installOutput,
    );

    const check = run(
      process.execPath,
      [join(here, 'check-prebuild.js'), '--package', installed, '--messages', messages],
      { env },
    );
    step('the native prebuild loads and agrees with node:crypto', check.status === 0, check.output);
    console.log(check.stdout.trimEnd().replace(/^/gm, '    '));

    const demo = run('npx', ['kms-hmac', 'demo'], { cwd: consumer, env, shell: WINDOWS_SHELL });
    step(
      '`npx kms-hmac demo` runs on the native backend',
      demo.status === 0 &&
        /demo — backend native/.test(demo.stdout) &&
        /verify app\.log --key-id \S+ +-> OK/.test(demo.stdout),
      demo.output,
    );

    rmSync(join(installed, 'prebuilds'), { recursive: true });
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
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  console.error(`check-tarball: not ok - ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
