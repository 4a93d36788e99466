#!/usr/bin/env node
// Multi-buffer SIMD lanes vs this package's OpenSSL batch path, 1 thread,
// packed sync batch, in one process (the path is switched with the addon's
// setSimdPath between samples). Usage:
//   node bench/simd.js            the target cases (4096 messages: docs/benchmarks.md), every path
//   node bench/simd.js --sweep    auto/off for all four algorithms, 16 B .. 4 KiB,
//                                 4096 messages and small batches (1..64)
//   options: --samples N (pairs per cell, default 15), --sample-ms MS (default 4), --json FILE
//
// Paths: "off" = OpenSSL one message at a time (KMS_HMAC_SIMD=off), each lane
// path forced onto every batch (setSimdPath(p, true)), and "auto" = the
// shipped dispatch (the calibrated cost model choosing per batch).
//
// Method (a shared, loaded machine): plain timing loops, not tinybench, because
// the comparison needs paired samples, timed in CPU time (see cpuMs). Each
// sample times enough batch calls to last --sample-ms; off and the other path
// alternate, sample by sample, in alternating order, so both see the same
// background load. A cell's ratio is the median of the per-pair ratios
// off/path (> 1: the path is faster); "min" is min(off) / min(path), the
// least disturbed samples.
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const addon = require('node-gyp-build')(root);

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const SAMPLES = Number(opt('--samples', 15));
const SAMPLE_MS = Number(opt('--sample-ms', 4));
const SWEEP = args.includes('--sweep');
const JSON_OUT = opt('--json', undefined);

const ALGS = [
  { name: 'HMAC-SHA-224', index: 0, hash: 'sha224' },
  { name: 'HMAC-SHA-256', index: 1, hash: 'sha256' },
  { name: 'HMAC-SHA-384', index: 2, hash: 'sha384' },
  { name: 'HMAC-SHA-512', index: 3, hash: 'sha512' },
];
const ALG = Object.fromEntries(ALGS.map((a) => [a.name, a]));
const loadPath = addon.simdPath; // what KMS_HMAC_SIMD (or auto) chose at load
const lanePaths = addon.simdPaths.filter((p) => p !== 'off');
const KEY = new Uint8Array(32).fill(7);

// Deterministic data (xorshift32), so runs are comparable.
let seed = 0x9e3779b9;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};

function packed(lengths) {
  const total = lengths.reduce((a, b) => a + b, 0);
  const data = new Uint8Array(total);
  for (let i = 0; i < total; i++) data[i] = (rand() * 256) | 0;
  const offsets = new Uint32Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) offsets[i + 1] = offsets[i] + lengths[i];
  return { data, offsets, total };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// The process's CPU time (user + system) in ms. Wall time on this shared
// machine counts the time slices other tenants take from us, and that noise
// swamped the differences being measured; CPU time does not count them.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};

// path: [name for setSimdPath, always]
/** @typedef {[path: string, always: boolean]} PathChoice (addon.setSimdPath's arguments) */
/** @type {PathChoice} */
const OFF = ['off', false];
/** @type {PathChoice} */
const AUTO = ['auto', false];
/** @param {PathChoice} choice */
const use = ([p, always]) => addon.setSimdPath(p, always);

// One cell: off vs each of `paths`. Returns ratios per path label.
function runCell(alg, lengths, paths) {
  const key = new addon.Key(alg.index, KEY);
  const macLen = addon.macLengths[alg.index];
  const { data, offsets, total } = packed(lengths);
  const out = new Uint8Array(lengths.length * macLen);
  // Every path must agree with node:crypto before anything is timed.
  const want = Buffer.alloc(out.length);
  for (let i = 0; i < lengths.length; i++) {
    createHmac(alg.hash, KEY)
      .update(data.subarray(offsets[i], offsets[i + 1]))
      .digest()
      .copy(want, i * macLen);
  }
  for (const p of [OFF, ...Object.values(paths)]) {
    use(p);
    out.fill(0);
    key.macPackedInto(data, offsets, out);
    if (!want.equals(out)) throw new Error(`${alg.name}: path ${p[0]} disagrees with node:crypto`);
  }
  // Calls per sample, sized on the OpenSSL path (the slowest).
  use(OFF);
  let t0 = cpuMs();
  key.macPackedInto(data, offsets, out);
  const once = cpuMs() - t0;
  const calls = Math.max(1, Math.round(SAMPLE_MS / Math.max(once, 1e-3)));
  const sample = (p) => {
    use(p);
    key.macPackedInto(data, offsets, out); // the switch, and caches, outside the timing
    t0 = cpuMs();
    for (let c = 0; c < calls; c++) key.macPackedInto(data, offsets, out);
    return (cpuMs() - t0) / calls;
  };
  const res = { messages: lengths.length, bytes: total, ms: {}, ratio: {}, minRatio: {} };
  for (const [label, p] of Object.entries(paths)) {
    const offMs = [];
    const pathMs = [];
    for (let s = 0; s < SAMPLES; s++) {
      if (s % 2) {
        pathMs.push(sample(p));
        offMs.push(sample(OFF));
      } else {
        offMs.push(sample(OFF));
        pathMs.push(sample(p));
      }
    }
    res.ms.off = median(offMs);
    res.ms[label] = median(pathMs);
    res.ratio[label] = median(offMs.map((o, i) => o / pathMs[i]));
    res.minRatio[label] = Math.min(...offMs) / Math.min(...pathMs);
  }
  if (paths.auto) {
    use(AUTO);
    const uniform = lengths.every((l) => l === lengths[0]);
    res.autoPath = uniform ? addon.simdChoice(alg.index, lengths.length, lengths[0]) : '(per batch)';
  }
  use([loadPath, false]);
  key.destroy();
  return res;
}

const fmt = (x, d = 2) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const lines = [];
const say = (s = '') => {
  console.log(s);
  lines.push(s);
};

function header() {
  const cal = addon.simdCalibration();
  say(
    `CPU: ${os.cpus()[0]?.model ?? 'unknown'} (${cal.cpu}), ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}`,
  );
  say(`Node ${process.version}, ${addon.opensslVersion}`);
  say(`SIMD selection at load: ${addon.simdPath} (${addon.simdReason})`);
  say(`Path status: ${addon.simdStatus}`);
  say(
    `Calibration at first use (CPU time): SHA-224/256 ${fmt(cal.sha256.calibrationCpuMs)} ms, SHA-384/512 ${fmt(cal.sha512.calibrationCpuMs)} ms`,
  );
  for (const fam of ['sha256', 'sha512']) {
    const cells = Object.entries(cal[fam].paths).map(
      ([p, c]) =>
        `${p} ${fmt(c.perBatchNs, 0)} + ${fmt(c.perMessageNs, 0)}/msg + ${fmt(c.perRoundNs, 0)}/round x${c.lanes}`,
    );
    say(`  cost model ${fam} (ns): ${cells.join('; ')}`);
  }
  say(
    `1 thread, packed sync batch; ${SAMPLES} paired samples of ~${SAMPLE_MS} ms per cell; ratio = OpenSSL CPU time / path CPU time`,
  );
  if (!lanePaths.length) say('No multi-buffer path on this machine: auto is OpenSSL.');
}

header();
const results = [];
let worst = { ratio: Infinity };
if (SWEEP) {
  const SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
  const BATCHES = [1, 2, 3, 4, 8, 16, 32, 64];
  const cell = (alg, size, n) => {
    const r = runCell(alg, Array(n).fill(size), { auto: AUTO });
    results.push({ algorithm: alg.name, size, n, ...r });
    if (r.ratio.auto < worst.ratio) worst = { ratio: r.ratio.auto, where: `${alg.name} ${size} B x${n}` };
    return `${fmt(r.ratio.auto)} ${r.autoPath}`;
  };
  say();
  say('auto/off, 4096 messages per batch (the target cells):');
  const rows = {};
  for (const alg of ALGS) {
    rows[alg.name] = {};
    for (const size of SIZES) rows[alg.name][`${size} B`] = cell(alg, size, 4096);
  }
  console.table(rows);
  lines.push(JSON.stringify(rows, null, 1));
  for (const alg of ALGS) {
    say();
    say(`${alg.name}, auto/off by message size (rows) and batch size (columns):`);
    const grid = {};
    for (const size of SIZES) {
      grid[`${size} B`] = {};
      for (const n of BATCHES) grid[`${size} B`][`x${n}`] = cell(alg, size, n);
    }
    console.table(grid);
    lines.push(JSON.stringify(grid, null, 1));
  }
  say();
  say(
    `Lowest cell: ${fmt(worst.ratio)} (${worst.where}); cells below 0.95: ${results.filter((r) => r.ratio.auto < 0.95).length} of ${results.length}`,
  );
} else {
  const mixed = (n) => Array.from({ length: n }, () => 16 + Math.floor(rand() * (4096 - 16 + 1)));
  /** @type {[algorithm: string, size: string, lengths: number[], target: number | undefined][]} */
  const cases = [
    ['HMAC-SHA-256', '64 B', Array(4096).fill(64), 2.0],
    ['HMAC-SHA-256', '4096 B', Array(4096).fill(4096), 2.0],
    ['HMAC-SHA-256', 'mixed 16..4096 B', mixed(4096), 1.8],
    ['HMAC-SHA-512', '64 B', Array(4096).fill(64), 2.0],
    ['HMAC-SHA-512', '4096 B', Array(4096).fill(4096), 3.0],
    ['HMAC-SHA-512', 'mixed 16..4096 B', mixed(4096), undefined],
    ['HMAC-SHA-384', '1024 B', Array(4096).fill(1024), undefined],
    ['HMAC-SHA-512', '16 B', Array(4096).fill(16), undefined],
  ];
  const rows = [];
  for (const [algName, size, lengths, target] of cases) {
    const alg = ALG[algName];
    const paths = {};
    for (const p of lanePaths) if (alg.index < 2 || p !== 'shani') paths[p] = [p, true];
    paths.auto = AUTO;
    const r = runCell(alg, lengths, paths);
    results.push({ algorithm: algName, size, target, ...r });
    const row = { case: `${algName} ${size}`, 'off MB/s': fmt(r.bytes / r.ms.off / 1e3, 0) };
    for (const label of Object.keys(paths)) row[label] = `${fmt(r.ratio[label])} (min ${fmt(r.minRatio[label])})`;
    row['auto path'] = r.autoPath;
    if (target) row.target = `>= ${target}x: ${r.ratio.auto >= target ? 'met' : 'MISSED'}`;
    rows.push(row);
  }
  console.table(rows);
  lines.push(JSON.stringify(rows, null, 1));
  say(
    'Cells: OpenSSL time / path time, median of paired samples (min: of the fastest samples). Targets are judged on auto.',
  );
}
if (JSON_OUT) {
  writeFileSync(
    JSON_OUT,
    JSON.stringify(
      {
        cpu: os.cpus()[0]?.model,
        cpuid: addon.simdCalibration().cpu,
        node: process.version,
        openssl: addon.opensslVersion,
        simdPath: addon.simdPath,
        simdStatus: addon.simdStatus,
        calibration: addon.simdCalibration(),
        loadAverage: os.loadavg()[0],
        results,
        text: lines.join('\n'),
      },
      null,
      2,
    ),
  );
}
