#!/usr/bin/env node
// npm run bench:follow — `kms-hmac sign --follow` against a fast writer: does
// the signer keep up with 500,000 lines/s of 200-byte lines, and how far
// behind is it? A writer process (test/fixtures/log-writer.mjs) appends at
// the target rate for a while; the signer runs with its defaults (a
// checkpoint every 10,000 records or 10 s, each fdatasynced) and reports its
// lag — log bytes not yet covered by a checkpoint — with every checkpoint.
// Printed: the rate the writer reached, the signer's lag (median, p99, max,
// in bytes, lines and milliseconds of writing), and how long the signer took,
// stopped with SIGTERM as the writer stopped, to sign what was left and close. A measurement, not a pass/fail gate (the
// machine may be busy); it fails only if the final verify does.
//
//   npm run bench:follow                       500,000 lines/s for 10 s
//   npm run bench:follow -- --rate 1000000 --seconds 5 --line 120
//   --keep                                     keep the temporary directory
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { environment, printEnvironment } from './env.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kms-hmac.js');
const WRITER = join(ROOT, 'test', 'fixtures', 'log-writer.mjs');

const argv = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const rate = flag('--rate', 500_000);
const seconds = flag('--seconds', 10);
const lineBytes = flag('--line', 200);
const keep = argv.includes('--keep');

function start(cmd, args, env) {
  const child = spawn(process.execPath, [cmd, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = /** @type {string} */ (parts.pop());
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p));
  });
  const exited = new Promise((resolve) => child.on('close', resolve));
  return { child, lines, exited };
}

/** Runs the CLI to completion: its exit code and its stdout as JSON. */
function run(args, env) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, json: out.trim() ? JSON.parse(out) : null })),
  );
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');

const env = environment();
printEnvironment(env);
const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-bench-follow-'));
const cliEnv = { KMS_HMAC_KEYSTORE: join(dir, 'keystore.db') };
const log = join(dir, 'bench.log');
try {
  await run(['keys', 'create', '--key-spec', 'HMAC_256', '--alias', 'alias/bench'], cliEnv);
  writeFileSync(log, '');
  const signer = start(BIN, ['sign', '--follow', log, '--key-id', 'alias/bench', '--json'], cliEnv);
  while (!signer.lines.some((e) => e.event === 'start')) await sleep(20);

  console.log(
    `# writer: ${fmt(rate)} lines/s of ${lineBytes} bytes for ${seconds} s; signer: sign --follow with its default checkpoints`,
  );
  const t0 = performance.now();
  const writer = start(WRITER, [log, '--line', String(lineBytes), '--burst', '1000', '--rate', String(rate)], {});
  await sleep(seconds * 1000);
  writer.child.kill('SIGTERM');
  await writer.exited;
  const wrote = writer.lines[0];
  // stopped now, the signer reads what is left, seals it and closes the sidecar: how long that takes is its backlog
  const stoppedAt = performance.now();
  signer.child.kill('SIGTERM');
  const code = await signer.exited;
  const caughtUp = performance.now() - stoppedAt;
  const stop = signer.lines.find((e) => e.event === 'stop');

  const during = signer.lines.filter((e) => e.event === 'checkpoint');
  const lag = during.map((e) => e.lagBytes);
  const achieved = wrote.lines / (wrote.ms / 1000);
  const msOf = (bytes) => (bytes / lineBytes / achieved) * 1000;
  console.log('');
  console.log(`| measure | value |`);
  console.log(`|---|---:|`);
  console.log(`| lines written | ${fmt(wrote.lines)} (${(wrote.bytes / 2 ** 20).toFixed(0)} MiB) |`);
  console.log(`| writer rate reached | ${fmt(achieved)} lines/s |`);
  console.log(`| checkpoints | ${fmt(during.length)} |`);
  for (const [name, q] of [
    ['median', 0.5],
    ['p99', 0.99],
    ['max', 1],
  ]) {
    const b = quantile(lag, q);
    console.log(
      `| lag, ${name} | ${fmt(b)} bytes = ${fmt(b / lineBytes)} lines = ${msOf(b).toFixed(1)} ms of writing |`,
    );
  }
  console.log(
    `| signer done after the writer stopped (reads the rest, last checkpoint, trailer) | ${caughtUp.toFixed(0)} ms |`,
  );
  console.log(
    `| signer throughput over the run | ${fmt(wrote.lines / ((stoppedAt + caughtUp - t0) / 1000))} records/s |`,
  );
  const v = await run(['verify', log, '--key-id', 'alias/bench', '--json', '--no-progress'], cliEnv);
  const ok = code === 0 && stop?.summary.records === wrote.lines && v.code === 0 && v.json?.records === wrote.lines;
  console.log(
    `\nsigner exit ${code}; verify: ${ok ? `OK, all ${fmt(wrote.lines)} records` : `FAILED (exit ${v.code})`}`,
  );
  if (!ok) process.exitCode = 1;
} finally {
  if (keep) console.log(`# kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
