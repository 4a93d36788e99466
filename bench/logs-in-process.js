#!/usr/bin/env node
// Part of `npm run bench:logs`: signLog (or verifyLog) used in-process, as a
// library user would, while a 10 ms interval timer measures how late the
// event loop runs it. The key comes from the keystore in KMS_HMAC_KEYSTORE,
// through the KMS client (the same path as the CLI).
//
// The library is warmed up first, as in a process that has been signing
// logs: it signs the log's first 16 MiB (full batches). The first use in a
// process loads the backend, starts its threads and times its SIMD paths
// (~10–20 ms once), and page-faults in the memory the pipeline recycles from
// then on: the framer's 16 MiB and the native backend's batch copies (about 20 µs a
// page in this VM, in the first batches). With --cold there is no warm-up:
// that first use is what is measured.
//
//   node bench/logs-in-process.js sign   LOG SIDECAR KEY-ID [--cold]
//   node bench/logs-in-process.js verify LOG SIDECAR KEY-ID
//
// Prints one JSON line: { op, cold, ms, cpuMs, ok, timer: { ticks, worstMs, worstAtMs, p99Ms, p50Ms } }.
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { KmsHmacClient, signLog, verifyLog } from '../dist/index.js';

const [op, log, sidecar, keyId] = process.argv.slice(2);
const cold = process.argv.includes('--cold');
if (!['sign', 'verify'].includes(op) || !log || !sidecar || !keyId) {
  console.error('usage: logs-in-process.js sign|verify LOG SIDECAR KEY-ID');
  process.exit(2);
}

const client = new KmsHmacClient({ keyStore: process.env.KMS_HMAC_KEYSTORE });
if (!cold) {
  const fh = await open(log);
  const head = Buffer.alloc(16 << 20);
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  await fh.close();
  await signLog(head.subarray(0, bytesRead), `${sidecar}.warm`, { client, keyId });
  rmSync(`${sidecar}.warm`);
}
const late = [];
let worst = 0;
let worstAt = 0;
const t0 = performance.now();
let last = t0;
const tick = (now) => {
  const l = Math.max(0, now - last - 10);
  if (l > worst) [worst, worstAt] = [l, now - t0];
  late.push(l);
  last = now;
};
const timer = setInterval(() => tick(performance.now()), 10);
const c0 = process.cpuUsage();
let ok = true;
try {
  if (op === 'sign') await signLog(log, sidecar, { client, keyId });
  else ok = (await verifyLog(log, sidecar, { client, keyId })).ok;
} finally {
  clearInterval(timer);
  await client.close();
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
tick(performance.now()); // the stretch after the last tick counts too
const sorted = [...late].sort((a, b) => a - b);
const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(
  JSON.stringify({
    op,
    cold,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    ok,
    timer: { ticks: late.length, worstMs: sorted.at(-1), worstAtMs: worstAt, p99Ms: q(0.99), p50Ms: q(0.5) },
  }),
);
