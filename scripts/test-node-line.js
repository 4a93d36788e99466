#!/usr/bin/env node
// Runs `npm run test:lines` (the backend, KMS, key-store, hostile, log and
// tarball suites) on another Node line, as a user of that line gets the
// package: the official binary from the npm registry (scripts/node-dist.js),
// a copy of this checkout (its tracked and unignored files: nothing built
// here comes along), `npm ci` in it, which compiles the addon against that
// line's own headers, then the suites. .ci/run runs it for 22 and 26.
//
//   node scripts/test-node-line.js <line|version> [--workers N] [--keep]
//
// Every line of output is prefixed with the Node version; the last says how
// long it took. --workers caps vitest's workers (two lines in parallel on
// two cores: 1 each); --keep leaves the copy in place.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeDist } from './node-dist.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function parseArgs(argv) {
  /** @type {{ line: string | undefined, workers: number | undefined, keep: boolean }} */
  const options = { line: undefined, workers: undefined, keep: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--workers') options.workers = Number(argv[++i]);
    else if (argv[i] === '--keep') options.keep = true;
    else if (!options.line && !argv[i].startsWith('--')) options.line = argv[i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!options.line) throw new Error('usage: test-node-line.js <line|version> [--workers N] [--keep]');
  return { ...options, line: options.line };
}

/** This checkout as git sees it (tracked and untracked-but-not-ignored files), copied into `dest`. */
function copyCheckout(dest) {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    const from = join(root, file);
    if (!existsSync(from)) continue; // deleted in the work tree
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    copyFileSync(from, join(dest, file));
  }
  return files.length;
}

/** Runs a command with every output line prefixed; resolves with its exit code. */
function run(prefix, command, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.setEncoding('utf8').on('data', (chunk) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) process.stdout.write(`${prefix} ${line}\n`);
      });
      stream.on('end', () => rest && process.stdout.write(`${prefix} ${rest}\n`));
    }
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function main() {
  const t0 = Date.now();
  const { line, workers, keep } = parseArgs(process.argv.slice(2));
  const dist = nodeDist(line);
  const prefix = `[node ${dist.version}]`;
  const copy = mkdtempSync(join(tmpdir(), `kms-hmac-node${dist.version}-`));
  /** @type {NodeJS.ProcessEnv} */
  const env = {
    ...process.env,
    PATH: `${dist.bin}${delimiter}${process.env.PATH}`,
    npm_config_nodedir: dist.dir,
  };
  // The caller's npm stays (these binaries have none); it runs on this line's node.
  delete env.npm_node_execpath;
  delete env.NODE;
  let code = 1;
  try {
    const files = copyCheckout(copy);
    const version = execFileSync('node', ['--version'], { env, encoding: 'utf8' }).trim();
    console.log(`${prefix} ${version} (${dist.node}), headers ${dist.dir}/include/node; ${files} files in ${copy}`);
    code = await run(prefix, 'npm', ['ci', '--no-audit', '--no-fund'], { cwd: copy, env });
    if (code !== 0) throw new Error(`npm ci failed (${code})`);
    const gypi = readFileSync(join(copy, 'build', 'config.gypi'), 'utf8');
    if (!gypi.includes(`"nodedir": "${dist.dir}"`)) throw new Error(`the addon was not built against ${dist.dir}`);
    const args = ['run', 'test:lines', ...(workers ? ['--', `--maxWorkers=${workers}`] : [])];
    code = await run(prefix, 'npm', args, { cwd: copy, env });
    if (code !== 0) throw new Error(`the suites failed (${code})`);
    console.log(`${prefix} passed on Node ${version} in ${Math.round((Date.now() - t0) / 1000)} s`);
  } catch (error) {
    console.error(
      `${prefix} FAILED after ${Math.round((Date.now() - t0) / 1000)} s: ${error instanceof Error ? error.message : error}`,
    );
    code ||= 1;
  } finally {
    if (!keep) rmSync(copy, { recursive: true, force: true });
  }
  process.exitCode = code;
}

await main();
