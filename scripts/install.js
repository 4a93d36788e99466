#!/usr/bin/env node
// Install hook: load a bundled prebuild or compile the addon from source.
// A failed native build must not fail `npm install`: the WebAssembly backend
// takes over at run time, and backendInfo() reports why native was skipped.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const bin = require.resolve('node-gyp-build/bin.js');
const result = spawnSync(process.execPath, [bin], { stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write(
    'kms-hmac: native addon unavailable (no prebuild for ' +
      `${process.platform}-${process.arch} and the source build failed); the WebAssembly backend will be used.\n`,
  );
}
