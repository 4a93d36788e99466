#!/usr/bin/env node
// Part of `npm run bench:logs`: the ceiling sign and verify are measured
// against. The same records as `kms-hmac sign` MACs (each line's raw-record
// MAC input, docs/log-format.md: stream id | u64 seq | kind | record),
// framed into memory before the clock starts, then hashed by the engine's
// own packed async batches on the worker threads — BatchBuffers (shared
// memory, read in place), `--batch` records each, `--inflight` at a time —
// and verified the same way against the MACs just made. Nothing is read,
// framed or written while the clock runs: what is left is the machine's hash
// rate through the package's fastest packed path.
//
//   node bench/logs-ceiling.js LOG --key-hex HEX [--batch 65536] [--inflight 2] [--passes 3]
//
// Prints one JSON line: { records, bytes, backend, batch, inflight, mac: { ms, cpuMs, runs }, verify: { … }, ok }
// (ms and cpuMs: medians over the passes; bytes: the log's, so MiB/s compare with sign's and verify's).
import { readFileSync } from 'node:fs';
import { BatchBuffer, createMacKey } from '../dist/index.js';

const [logPath, ...rest] = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : fallback;
};
const keyHex = arg('--key-hex');
if (!logPath || !keyHex) {
  console.error('usage: logs-ceiling.js LOG --key-hex HEX [--batch N] [--inflight N] [--passes N]');
  process.exit(2);
}
const batchRecords = Number(arg('--batch', 65_536));
const inflight = Math.max(1, Number(arg('--inflight', 2)));
const passes = Math.max(1, Number(arg('--passes', 3)));
const PREFIX = 25; // stream id (16) | u64 seq | kind

const key = createMacKey('HMAC_SHA_256', Buffer.from(keyHex, 'hex'));
const log = readFileSync(logPath);

// frame every record (newline included; the last may lack one) into BatchBuffers of `batchRecords`
/** @type {BatchBuffer[]} */
const batches = [];
let bb = /** @type {BatchBuffer | undefined} */ (undefined);
let records = 0;
const maxBytes = batchRecords * (PREFIX + 256);
for (let p = 0; p < log.length; ) {
  const nl = log.indexOf(10, p);
  const end = nl < 0 ? log.length : nl + 1;
  let slot = bb?.count === batchRecords ? undefined : bb?.reserve(PREFIX + end - p);
  if (!slot) {
    bb = new BatchBuffer('HMAC_SHA_256', { maxMessages: batchRecords, maxBytes: Math.max(maxBytes, PREFIX + end - p) });
    batches.push(bb);
    slot = /** @type {Uint8Array} */ (bb.reserve(PREFIX + end - p));
  }
  const dv = new DataView(slot.buffer, slot.byteOffset, PREFIX);
  dv.setUint32(16, Math.floor(records / 2 ** 32));
  dv.setUint32(20, records >>> 0);
  slot[24] = 0; // raw record
  slot.set(log.subarray(p, end), PREFIX);
  records++;
  p = end;
}

/** Runs `op` over every batch, `inflight` at a time; wall and CPU time of the pass. */
async function pass(op) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const pending = new Set();
  for (const b of batches) {
    if (pending.size >= inflight) await Promise.race(pending);
    const p = op(b).then(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const summary = (runs) => ({
  ms: median(runs.map((r) => r.ms)),
  cpuMs: median(runs.map((r) => r.cpuMs)),
  runs: runs.map((r) => ({ ms: Math.round(r.ms), cpuMs: Math.round(r.cpuMs) })),
});

await pass((b) => b.macAsync(key)); // warm-up: the pool's threads, the memory's pages
const macRuns = [];
for (let i = 0; i < passes; i++) macRuns.push(await pass((b) => b.macAsync(key)));
const verifyRuns = [];
let ok = true;
for (let i = 0; i < passes; i++)
  verifyRuns.push(
    await pass(async (b) => {
      const r = await b.verifyAsync(key);
      if (r.indexOf(0) >= 0) ok = false;
    }),
  );
console.log(
  JSON.stringify({
    records,
    bytes: log.length,
    backend: key.backend,
    batch: batchRecords,
    inflight,
    mac: summary(macRuns),
    verify: summary(verifyRuns),
    ok,
  }),
);
