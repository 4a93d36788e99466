#!/usr/bin/env node
// npm run bench:logs — `kms-hmac sign` and `kms-hmac verify` on a generated
// log of 200-byte lines (1 GiB by default) against bench/logs-baseline.js
// (node:crypto createHmac per line, same file, same sidecar format), in one
// run. Both sides run as their own process, as a user would run them, and
// report wall time and CPU time (all threads) measured inside the process.
// The two sidecars must be byte-identical (an end-to-end format check).
//
//   npm run bench:logs                      1 GiB
//   npm run bench:logs -- --size 64MiB      (or KMS_HMAC_BENCH_LOG_SIZE=64MiB)
//   npm run bench:logs -- --line 120        line length in bytes, newline included
//   --keep                                  keep the temporary directory
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { environment, printEnvironment } from './env.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kms-hmac.js');
const BASELINE = join(ROOT, 'bench', 'logs-baseline.js');
const TARGET = 10;

const argv = process.argv.slice(2);
const flag = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g)?i?b?$/i.exec(String(s).trim());
  if (!m) throw new Error(`bad size: ${s} (e.g. 1GiB, 64MiB, 100000000)`);
  const mult = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

const size = parseSize(flag('--size') ?? process.env.KMS_HMAC_BENCH_LOG_SIZE ?? '1GiB');
const lineLen = Number(flag('--line') ?? 200);
const keep = argv.includes('--keep');

function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function json(cmd, args, env) {
  const r = await run(cmd, args, env);
  const text = r.out.trim();
  try {
    return JSON.parse(text.startsWith('{') && text.includes('\n{') ? text.slice(text.lastIndexOf('\n{') + 1) : text);
  } catch {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${text}`);
  }
}

async function generate(path, bytes, len) {
  // lines of `len` bytes (newline included), varied text, written 4 MiB at a time
  const fh = await open(path, 'w');
  const perChunk = Math.max(1, Math.floor((4 << 20) / len));
  const words = ['GET', 'POST', 'user', 'order', 'status=200', 'status=500', 'latency', 'cache-hit', 'eu-west-1', 'trace'];
  let written = 0;
  let n = 0;
  while (written < bytes) {
    const lines = [];
    for (let i = 0; i < perChunk && written < bytes; i++, n++) {
      let s = `${new Date(1767225600000 + n * 7).toISOString()} ${n} ${words[n % 10]} ${words[(n * 7) % 10]} `;
      while (s.length < len - 1) s += words[(n + s.length) % 10] + ' ';
      const line = s.slice(0, Math.min(len - 1, bytes - written - 1)) + '\n';
      lines.push(line);
      written += line.length;
    }
    await fh.write(lines.join(''));
  }
  await fh.close();
  return { bytes: written, records: n };
}

async function sha256(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c);
  return h.digest('hex');
}

const env = environment();
printEnvironment(env);
const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-bench-logs-'));
const ks = join(dir, 'keystore.json');
const log = join(dir, 'bench.log');
const cliEnv = { KMS_HMAC_KEYSTORE: ks };
try {
  console.log(`# generating ${(size / 2 ** 20).toFixed(0)} MiB of ${lineLen}-byte lines in ${dir} …`);
  const gen = await generate(log, size, lineLen);
  console.log(`# ${gen.records.toLocaleString('en-US')} records, ${gen.bytes.toLocaleString('en-US')} bytes`);

  // a key with known material, so the baseline can compute the same MACs
  const material = randomBytes(32);
  const created = await json(BIN, ['keys', 'create', '--key-spec', 'HMAC_256', '--origin', 'EXTERNAL', '--alias', 'alias/bench'], cliEnv);
  await json(BIN, ['keys', 'import', '--key-id', created.KeyMetadata.KeyId, '--material-hex', material.toString('hex')], cliEnv);
  const keyHex = material.toString('hex');

  // every timed step starts with its inputs in the page cache (read once just before), so a step
  // is not charged for disk reads that an earlier step's memory use caused
  const warm = async (...paths) => {
    for (const p of paths) for await (const _ of createReadStream(p, { highWaterMark: 4 << 20 }));
  };
  await warm(log);
  const oursSign = await json(BIN, ['sign', log, '--key-id', 'alias/bench', '--out', join(dir, 'ours.mac'), '--json', '--no-progress'], cliEnv);
  await warm(log, join(dir, 'ours.mac'));
  const oursVerify = await json(BIN, ['verify', log, '--sidecar', join(dir, 'ours.mac'), '--key-id', 'alias/bench', '--json', '--no-progress'], cliEnv);
  await warm(log);
  const baseSign = await json(BASELINE, ['sign', log, join(dir, 'base.mac'), '--key-hex', keyHex, '--like', join(dir, 'ours.mac')]);
  await warm(log, join(dir, 'ours.mac'));
  const baseVerify = await json(BASELINE, ['verify', log, join(dir, 'ours.mac'), '--key-hex', keyHex]);
  const same = (await sha256(join(dir, 'ours.mac'))) === (await sha256(join(dir, 'base.mac')));

  const rows = [
    ['sign', 'kms-hmac sign', oursSign.elapsedMs, oursSign.cpuMs, oursSign.ok],
    ['sign', 'node:crypto baseline', baseSign.ms, baseSign.cpuMs, baseSign.ok],
    ['verify', 'kms-hmac verify', oursVerify.elapsedMs, oursVerify.cpuMs, oursVerify.ok],
    ['verify', 'node:crypto baseline', baseVerify.ms, baseVerify.cpuMs, baseVerify.ok],
  ];
  const rps = (ms) => gen.records / (ms / 1000);
  const mbs = (ms) => gen.bytes / 2 ** 20 / (ms / 1000);
  console.log('');
  console.log(`| op | implementation | wall s | records/s | MiB/s | CPU s | ok |`);
  console.log(`|---|---|---:|---:|---:|---:|---|`);
  for (const [op, name, ms, cpu, ok] of rows) {
    console.log(`| ${op} | ${name} | ${(ms / 1000).toFixed(2)} | ${Math.round(rps(ms)).toLocaleString('en-US')} | ${mbs(ms).toFixed(0)} | ${(cpu / 1000).toFixed(2)} | ${ok} |`);
  }
  const signRatio = baseSign.ms / oursSign.elapsedMs;
  const verifyRatio = baseVerify.ms / oursVerify.elapsedMs;
  const signCpu = baseSign.cpuMs / oursSign.cpuMs;
  const verifyCpu = baseVerify.cpuMs / oursVerify.cpuMs;
  console.log('');
  console.log(`sign:   ${signRatio.toFixed(1)}x the baseline (wall), ${signCpu.toFixed(1)}x (CPU time) — target >= ${TARGET}x: ${signRatio >= TARGET ? 'met' : 'MISSED'}`);
  console.log(`verify: ${verifyRatio.toFixed(1)}x the baseline (wall), ${verifyCpu.toFixed(1)}x (CPU time) — target >= ${TARGET}x: ${verifyRatio >= TARGET ? 'met' : 'MISSED'}`);
  console.log(`sidecars byte-identical (kms-hmac vs node:crypto baseline): ${same}`);
  const result = {
    env,
    log: { bytes: gen.bytes, records: gen.records, lineBytes: lineLen },
    sign: { ours: { ms: oursSign.elapsedMs, cpuMs: oursSign.cpuMs }, baseline: { ms: baseSign.ms, cpuMs: baseSign.cpuMs }, ratio: signRatio, cpuRatio: signCpu },
    verify: { ours: { ms: oursVerify.elapsedMs, cpuMs: oursVerify.cpuMs }, baseline: { ms: baseVerify.ms, cpuMs: baseVerify.cpuMs }, ratio: verifyRatio, cpuRatio: verifyCpu },
    identicalSidecars: same,
    target: TARGET,
  };
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'logs-latest.json'), JSON.stringify(result, null, 2) + '\n');
  if (!same || !oursSign.ok || !oursVerify.ok || !baseVerify.ok) process.exitCode = 1;
} finally {
  if (keep) console.log(`# kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
