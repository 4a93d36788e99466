#!/usr/bin/env node
// Formats the C++ in native/ with the pinned clang-format (the clang-format-node
// devDependency, so every machine formats alike), or with --check fails on any
// difference without writing (what `npm run lint` and .ci/run do).
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const files = execFileSync('git', ['ls-files', '--', 'native/*.cc', 'native/*.h'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter(Boolean);
const args = check ? ['--dry-run', '--Werror', ...files] : ['-i', ...files];
try {
  execFileSync(resolve(root, 'node_modules/.bin/clang-format'), args, { cwd: root, stdio: 'inherit' });
} catch {
  process.stderr.write(check ? 'clang-format: native/ is not formatted (run npm run format)\n' : '');
  process.exit(1);
}
