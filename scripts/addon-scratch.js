// A scratch copy of what a source build of the addon reads, and nothing else:
// binding.gyp, native/ and package.json (the same files the npm tarball ships
// for platforms without a prebuild), with this checkout's node_modules linked
// in for node-addon-api and node-gyp. Builds run there leave the checkout's
// own build/ alone.
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Creates the copy in a new temporary directory and returns its path; the caller removes it. */
export function addonScratchCopy(prefix) {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  for (const entry of ['binding.gyp', 'native', 'package.json']) {
    cpSync(join(root, entry), join(scratch, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'), 'junction'); // junction: no admin rights needed on Windows
  return scratch;
}
