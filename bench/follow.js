#!/usr/bin/env node
// npm run bench:follow — `kms-hmac sign --follow` against a fast writer: does
// the signer keep up with 500,000 lines/s of 200-byte lines, and how far
// behind is it? A writer process (test/fixtures/log-writer.mjs) appends at
// the target rate for a while; the signer runs as a service would: its
// checkpoints shipped to a file (so forward-secure, the default with a
// sink: --epoch 5 s here, so that keys ratchet during the run), a checkpoint
// every 10,000 records or --interval seconds, each fdatasynced, and a
// heartbeat checkpoint every interval when no record comes. It reports its
// lag — log bytes not yet covered by a checkpoint — with every checkpoint.
// Then the writer stops and the signer idles for a few intervals: the
// heartbeats' spacing is reported.
// Printed: the rate the writer reached, the signer's lag (median, p99, max,
// in bytes, lines and milliseconds of writing), and how long the signer took,
// stopped with SIGTERM as the writer stopped, to sign what was left and close. A measurement, not a pass/fail gate (the
// machine may be busy); it fails only if the final verify does.
//
//   npm run bench:follow                       500,000 lines/s for 10 s, heartbeat 1 s, epochs of 5 s
//   npm run bench:follow -- --rate 1000000 --seconds 5 --line 120 --interval 10 --epoch 900 --idle 30
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
const interval = flag('--interval', 1);
const epoch = flag('--epoch', 5);
const idle = flag('--idle', 5);
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
  const shipped = join(dir, 'bench.checkpoints');
  const signer = start(
    BIN,
    [
      ...['sign', '--follow', log, '--key-id', 'alias/bench', '--json', '--checkpoints-out', shipped],
      ...['--checkpoint-interval', String(interval), '--epoch', `${epoch}s`],
    ],
    cliEnv,
  );
  while (!signer.lines.some((e) => e.event === 'start')) await sleep(20);

  console.log(
    `# writer: ${fmt(rate)} lines/s of ${lineBytes} bytes for ${seconds} s; signer: sign --follow --checkpoints-out (forward-secure, epochs of ${epoch} s), checkpoints every 10,000 records or ${interval} s, heartbeats every ${interval} s`,
  );
  const t0 = performance.now();
  const writer = start(WRITER, [log, '--line', String(lineBytes), '--burst', '1000', '--rate', String(rate)], {});
  await sleep(seconds * 1000);
  writer.child.kill('SIGTERM');
  await writer.exited;
  const wrote = writer.lines[0];
  const writerDone = performance.now();
  // the signer catches up (its checkpoints reach every line written), then idles: only heartbeats
  const last = () => signer.lines.filter((e) => e.event === 'checkpoint').at(-1);
  while ((last()?.records ?? 0) < wrote.lines) await sleep(5);
  const caughtUp = performance.now() - writerDone;
  const busy = signer.lines.filter((e) => e.event === 'checkpoint').length;
  await sleep(idle * 1000);
  const beats = signer.lines.filter((e) => e.event === 'checkpoint').slice(busy);
  const beatGaps = beats.slice(1).map((e, i) => Date.parse(e.time) - Date.parse(beats[i].time));
  const stoppedAt = performance.now();
  signer.child.kill('SIGTERM');
  const code = await signer.exited;
  const closedIn = performance.now() - stoppedAt;
  const stop = signer.lines.find((e) => e.event === 'stop');

  const during = signer.lines.filter((e) => e.event === 'checkpoint').slice(0, busy);
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
    `| signer caught up after the writer stopped (its checkpoints cover every line) | ${caughtUp.toFixed(0)} ms |`,
  );
  console.log(
    `| signer throughput over the run | ${fmt(wrote.lines / ((writerDone + caughtUp - t0) / 1000))} records/s |`,
  );
  console.log(`| key epochs reached | ${fmt(Math.max(0, ...signer.lines.map((e) => e.epoch ?? 0)))} |`);
  console.log(
    `| heartbeats while idle ${idle} s | ${fmt(beats.length)} (${fmt(beats.filter((e) => e.records === wrote.lines).length)} with no new record); spacing ${beatGaps.length ? `median ${quantile(beatGaps, 0.5)} ms, max ${quantile(beatGaps, 1)} ms` : '-'} (interval ${interval * 1000} ms) |`,
  );
  console.log(`| SIGTERM to closed (last checkpoint, trailer) | ${closedIn.toFixed(0)} ms |`);
  const v = await run(
    ['verify', log, '--key-id', 'alias/bench', '--checkpoints', shipped, '--json', '--no-progress'],
    cliEnv,
  );
  const ok = code === 0 && stop?.summary.records === wrote.lines && v.code === 0 && v.json?.records === wrote.lines;
  console.log(
    `\nsigner exit ${code}; verify: ${ok ? `OK, all ${fmt(wrote.lines)} records` : `FAILED (exit ${v.code})`}`,
  );
  if (!ok) process.exitCode = 1;
} finally {
  if (keep) console.log(`# kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
