#!/usr/bin/env node
// npm run test:asan — builds the addon with AddressSanitizer and
// UndefinedBehaviorSanitizer in a scratch copy of the package, then runs the
// native tests and the hostile-caller suite against that build with the
// sanitizer runtimes preloaded.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonScratchCopy } from './addon-scratch.js';
import { nodeHeadersDir } from './node-headers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = addonScratchCopy('kms-hmac-asan-');
try {
  const nodeGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const nodedir = nodeHeadersDir();
  const args = [nodeGyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : []), '--', '-Dkms_hmac_sanitize=true'];
  const built = spawnSync(process.execPath, args, {
    cwd: scratch,
    stdio: 'inherit',
  });
  if (built.status !== 0) process.exit(built.status ?? 1);

  const runtime = (name) => execFileSync('g++', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  const env = {
    ...process.env,
    KMS_HMAC_PREBUILD: scratch,
    KMS_HMAC_TEST_BACKENDS: 'native',
    LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so')].join(' '),
    // V8 and Node keep memory alive until exit by design: leaks are not what we look for here.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
  const tests = ['test/backend.test.ts', 'test/native.test.ts', 'test/native-simd.test.ts', 'test/hostile.test.ts'];
  const run = spawnSync(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...tests], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
