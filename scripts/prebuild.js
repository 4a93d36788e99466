#!/usr/bin/env node
// npm run prebuild: the native addons the npm tarball ships, built with
// prebuildify (N-API, stripped, tagged with the C library) into
// prebuilds/<platform>-<arch>/kms-hmac.<libc>.node.
//
//   node scripts/prebuild.js [--arch x64,arm64] [--out DIR]
//
// By default: this machine's platform and architecture, and on a linux-x64
// host linux-arm64 too, cross-compiled with Debian's aarch64 toolchain
// (apt-get install g++-aarch64-linux-gnu). --out puts prebuilds/ under DIR
// instead of the package root (tests build into a scratch package).
//
// Each build runs in a scratch copy of the addon sources, so the checkout's
// build/ is left alone, and is checked before it is kept: the compiler
// produced the requested architecture, node-gyp configured that architecture
// (the host's config.gypi carries x64 settings), and no host-tuned or
// foreign-architecture flag reached the compiler. The glibc floor of each
// Linux prebuild is printed (scripts/glibc-floor.js).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonScratchCopy } from './addon-scratch.js';
import { formatFloor, libcFloor } from './glibc-floor.js';
import { nodeHeadersDir } from './node-headers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The C library tag prebuildify and node-gyp-build agree on (they only tell Alpine's musl apart). */
export const HOST_LIBC = existsSync('/etc/alpine-release') ? 'musl' : 'glibc';

/**
 * Cross toolchains, by target arch, for a linux-x64 glibc host (Debian's
 * packages). Other targets are built natively on their own runners
 * (.github/workflows/release.yml).
 */
const CROSS_HOST = process.platform === 'linux' && process.arch === 'x64' && HOST_LIBC === 'glibc';
const CROSS = { arm64: { prefix: 'aarch64-linux-gnu-', apt: 'g++-aarch64-linux-gnu' } };

/** ELF e_machine of each Linux target, to check what the compiler produced. */
const ELF_MACHINE = { x64: 62, arm64: 183 };

/** Compiler flags no prebuild may carry: tuned to the build machine, or for another architecture. */
const HOST_TUNED = /\s-m(arch|tune|cpu)=native\b/;
const X86_ONLY = /\s-(m32|m64|msse[\d.]*|mavx\S*|msha|march=x86-64\S*)(?=\s)/;

/** What `npm run prebuild` builds by default: this host, and linux-arm64 too on a linux-x64 glibc host. */
export function defaultArches() {
  return CROSS_HOST ? [process.arch, ...Object.keys(CROSS)] : [process.arch];
}

/** A prebuild's path inside the package, as node-gyp-build looks for it. */
export function prebuildPath(arch) {
  return `prebuilds/${process.platform}-${arch}/kms-hmac.${HOST_LIBC}.node`;
}

function parseArgs(argv) {
  const options = { arches: defaultArches(), out: root };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--arch') options.arches = argv[++i].split(',');
    else if (argv[i] === '--out') options.out = resolve(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (usage: prebuild.js [--arch x64,arm64] [--out DIR])`);
  }
  return options;
}

/**
 * How to build for `arch`: the environment (release flags only, the cross
 * compiler when `arch` is not the host's) and prebuildify's strip tool.
 */
function toolchain(arch) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, JOBS: 'max' };
  // A developer's CFLAGS (say -march=native) must not end up in a shipped binary.
  for (const name of ['CFLAGS', 'CXXFLAGS', 'CPPFLAGS', 'LDFLAGS']) delete env[name];
  const nodedir = nodeHeadersDir();
  if (nodedir) env.npm_config_nodedir = nodedir;
  if (arch === process.arch) return { env, stripArgs: [] };
  const cross = CROSS_HOST ? CROSS[arch] : undefined;
  if (!cross)
    throw new Error(
      `no cross toolchain for ${process.platform}-${process.arch} -> ${arch}; build it on its own runner`,
    );
  const compiler = `${cross.prefix}g++`;
  if (spawnSync(compiler, ['--version']).status !== 0) {
    throw new Error(`${compiler} not found: apt-get install ${cross.apt} (or pass --arch ${process.arch})`);
  }
  return {
    env: { ...env, CC: `${cross.prefix}gcc`, CXX: compiler, LINK: compiler, AR: `${cross.prefix}ar` },
    stripArgs: [`--strip-bin=${cross.prefix}strip`],
  };
}

function elfMachine(file) {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  return header.toString('latin1', 1, 4) === 'ELF' ? header.readUInt16LE(18) : undefined;
}

/** Throws unless the scratch build in `scratch` is a clean build for `arch`. */
function checkBuild(scratch, arch, addon) {
  const config = readFileSync(join(scratch, 'build', 'config.gypi'), 'utf8');
  const configured = /"target_arch": "([^"]+)"/.exec(config)?.[1];
  if (configured !== arch) throw new Error(`node-gyp configured target_arch ${configured}, not ${arch}`);
  for (const makefile of readdirSync(join(scratch, 'build')).filter((f) => f.endsWith('.mk'))) {
    const flags = `${readFileSync(join(scratch, 'build', makefile), 'utf8').replace(/\s+/g, ' ')} `;
    const bad = HOST_TUNED.exec(flags) ?? (arch === 'x64' || arch === 'ia32' ? null : X86_ONLY.exec(flags));
    if (bad) throw new Error(`build/${makefile} passes ${bad[0].trim()} to the ${arch} compiler`);
  }
  if (process.platform === 'linux' && ELF_MACHINE[arch] !== undefined && elfMachine(addon) !== ELF_MACHINE[arch]) {
    throw new Error(`${addon} is not an ${arch} ELF file (e_machine ${elfMachine(addon)})`);
  }
}

/** Builds one prebuild and returns its path. */
function prebuild(arch, out) {
  const { env, stripArgs } = toolchain(arch);
  const platformDir = join(out, 'prebuilds', `${process.platform}-${arch}`);
  rmSync(platformDir, { recursive: true, force: true }); // no stale, differently tagged builds left beside it
  const scratch = addonScratchCopy(`kms-hmac-prebuild-${arch}-`);
  try {
    const prebuildify = join(root, 'node_modules', 'prebuildify', 'bin.js');
    // --target: this Node's headers (N-API, so any Node >= the engines floor
    // loads the result); left out, prebuildify asks node-gyp for the newest
    // Node it knows, whose headers node-gyp downloads when npm sets no nodedir.
    const args = [
      '--napi',
      '--strip',
      '--tag-libc',
      `--arch=${arch}`,
      `--target=${process.versions.node}`,
      ...stripArgs,
    ];
    execFileSync(process.execPath, [prebuildify, ...args, `--out=${out}`, scratch], {
      cwd: scratch,
      env,
      stdio: 'inherit',
    });
    const addon = join(out, prebuildPath(arch));
    if (!existsSync(addon)) throw new Error(`prebuildify did not produce ${addon}`);
    checkBuild(scratch, arch, addon);
    return addon;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { arches, out } = parseArgs(process.argv.slice(2));
  const built = arches.map((arch) => prebuild(arch, out));
  console.log('\nprebuilds:');
  for (const file of built) {
    console.log(`  ${relative(process.cwd(), file)}`);
    if (process.platform === 'linux' && HOST_LIBC === 'glibc') {
      for (const line of formatFloor(libcFloor(file))) console.log(`    ${line}`);
    }
  }
}
