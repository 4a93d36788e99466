#!/usr/bin/env node
// Part of `npm run bench:logs`: signLog (or verifyLog) used in-process, as a
// library user would, while a 10 ms interval timer measures how late the
// event loop runs it. The key comes from the keystore in KMS_HMAC_KEYSTORE,
// through the KMS client (the same path as the CLI). The library is warmed
// up first with a small log, as in a process that has been running: the
// first use in a process loads the backend, starts its threads and times its
// SIMD paths (a one-time ~10–20 ms), which is not what this measures.
//
//   node bench/logs-in-process.js sign   LOG SIDECAR KEY-ID
//   node bench/logs-in-process.js verify LOG SIDECAR KEY-ID
//
// Prints one JSON line: { op, ms, cpuMs, ok, timer: { ticks, worstMs, worstAtMs, p99Ms, p50Ms } }.
import { rmSync } from 'node:fs';
import { KmsHmacClient, signLog, verifyLog } from '../dist/index.js';

const [op, log, sidecar, keyId] = process.argv.slice(2);
if (!['sign', 'verify'].includes(op) || !log || !sidecar || !keyId) {
  console.error('usage: logs-in-process.js sign|verify LOG SIDECAR KEY-ID');
  process.exit(2);
}

const client = new KmsHmacClient({ keyStore: process.env.KMS_HMAC_KEYSTORE });
await signLog(Buffer.from('warm-up record\n'.repeat(20_000)), `${sidecar}.warm`, { client, keyId });
rmSync(`${sidecar}.warm`);
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
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    ok,
    timer: { ticks: late.length, worstMs: sorted.at(-1), worstAtMs: worstAt, p99Ms: q(0.99), p50Ms: q(0.5) },
  }),
);
