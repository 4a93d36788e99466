#!/usr/bin/env node
// WebAssembly backends vs the other HMAC implementations on npm, same run.
// Run after `npm run build:ts` (imports ../dist):
//   node bench/wasm.js [--time MS] [--rounds N] [--clock wall|cpu] [--quick] [--json FILE]
// Cases: HMAC-SHA-256 and HMAC-SHA-512 at 64 B and 4096 B. Every task
// iteration is one whole pass over the same set of distinct messages, so
// msg/s = messages per pass / median pass time. Each case runs in N rounds
// (task order reversed every other round); a figure is the median over
// rounds of tinybench's median, and a ratio is the median of per-round
// ratios — robust on a shared, noisy machine. --clock cpu times the
// single-threaded tasks by process CPU time instead of wall time (steadier
// when other processes compete for the cores); async tasks are always timed
// by wall clock, since their point is finishing sooner.
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { createHMAC, createSHA256, createSHA512 } from 'hash-wasm';
import { Bench } from 'tinybench';
import { loadWasmBackend } from '../dist/backend/wasm.js';
import { BatchBuffer } from '../dist/index.js';

/** @type {{ alg: 'HMAC_SHA_256' | 'HMAC_SHA_512', label: string, size: number, count: number }[]} */
const CASES = [
  { alg: 'HMAC_SHA_256', label: 'HMAC-SHA-256', size: 64, count: 4096 },
  { alg: 'HMAC_SHA_256', label: 'HMAC-SHA-256', size: 4096, count: 128 },
  { alg: 'HMAC_SHA_512', label: 'HMAC-SHA-512', size: 64, count: 4096 },
  { alg: 'HMAC_SHA_512', label: 'HMAC-SHA-512', size: 4096, count: 128 },
];
const NODE_HASH = { HMAC_SHA_256: 'sha256', HMAC_SHA_512: 'sha512' };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Deterministic data (xorshift32), so runs are comparable.
function fill(buf, seed) {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

async function activeBackend() {
  try {
    const { backendInfo } = await import('../dist/backend/index.js');
    const info = backendInfo();
    return `${info.name}${info.simd ? ' (simd)' : ''}`;
  } catch (err) {
    return `unknown (${/** @type {Error} */ (err).message})`;
  }
}

export function header(active) {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `# ${cpu}, ${os.availableParallelism()} cores, Node ${process.version}, ${process.platform}-${process.arch}; active backend: ${active}`;
}

/**
 * Runs the WASM benchmark. Returns rows:
 * { case, algorithm, size, messages, task, medianMs, msgPerSec, mbPerSec, vsHashWasm }.
 */
export async function runWasmBench(opts = {}) {
  const time = opts.time ?? 250;
  const rounds = opts.rounds ?? 3;
  const clock = opts.clock ?? 'wall';
  // tinybench runs max(time, iterations): keep the iteration floors low so
  // the slow per-message baselines (noble, node:crypto) stay within budget.
  const benchOpts = { time, warmupTime: Math.min(100, time), iterations: 8, warmupIterations: 3, throws: true };
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const log = opts.log ?? (() => {});
  const cases = opts.quick ? CASES.map((c) => ({ ...c, count: Math.max(16, c.count >> 3) })) : CASES;
  const simd = loadWasmBackend('simd');
  const scalar = loadWasmBackend('scalar');
  const async1 = loadWasmBackend('simd', { threads: 1 });
  const async2 = loadWasmBackend('simd', { threads: 2 });
  const rows = [];

  for (const c of cases) {
    const key = fill(new Uint8Array(32), 7);
    const data = fill(new Uint8Array(c.size * c.count), c.size + c.count);
    const offsets = new Uint32Array(c.count + 1).map((_, i) => i * c.size);
    const messages = Array.from({ length: c.count }, (_, i) => data.subarray(i * c.size, (i + 1) * c.size));
    // The same messages in shared memory, which the workers read (and write MACs to) in place.
    const shared = new BatchBuffer(c.alg, { maxMessages: c.count, maxBytes: data.length });
    for (const m of messages) shared.append(m);
    const kSimd = simd.createKey(c.alg, key);
    const kScalar = scalar.createKey(c.alg, key);
    const kA1 = async1.createKey(c.alg, key);
    const kA2 = async2.createKey(c.alg, key);
    const ml = kSimd.macLength;
    const out = new Uint8Array(c.count * ml);
    const hw = await createHMAC(c.alg === 'HMAC_SHA_256' ? createSHA256() : createSHA512(), key);
    const nobleHash = c.alg === 'HMAC_SHA_256' ? nobleSha256 : nobleSha512;
    const nodeHash = NODE_HASH[c.alg];
    // Warm the worker pools (spawn + instantiate) outside the measurement.
    await kA1.macPackedAsync(data, offsets);
    await kA2.macPackedAsync(data, offsets);
    await shared.macAsync(kA2);

    /** @type {[name: string, fn: () => unknown, kind?: 'async'][]} */
    const tasks = [
      [
        'hash-wasm createHMAC (per message)',
        () => {
          for (let i = 0; i < c.count; i++) {
            hw.init();
            hw.update(messages[i]);
            hw.digest('binary');
          }
        },
      ],
      ['wasm-simd batch (packed)', () => kSimd.macPackedInto(data, offsets, out)],
      ['wasm-scalar batch (packed)', () => kScalar.macPackedInto(data, offsets, out)],
      [
        'wasm-simd macInto (per message)',
        () => {
          for (let i = 0; i < c.count; i++) kSimd.macInto(messages[i], out, i * ml);
        },
      ],
      [
        'wasm-scalar macInto (per message)',
        () => {
          for (let i = 0; i < c.count; i++) kScalar.macInto(messages[i], out, i * ml);
        },
      ],
      ['wasm-simd async batch, 1 worker', () => kA1.macPackedAsync(data, offsets), 'async'],
      ['wasm-simd async batch, 2 workers', () => kA2.macPackedAsync(data, offsets), 'async'],
      ['wasm-simd async batch, 2 workers, shared memory', () => shared.macAsync(kA2), 'async'],
      [
        '@noble/hashes hmac (per message)',
        () => {
          for (let i = 0; i < c.count; i++) nobleHmac(nobleHash, key, messages[i]);
        },
      ],
      [
        'node:crypto createHmac (per message)',
        () => {
          for (let i = 0; i < c.count; i++) createHmac(nodeHash, key).update(messages[i]).digest();
        },
      ],
    ];

    const perRound = new Map(tasks.map(([name]) => [name, /** @type {number[]} */ ([])]));
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...tasks].reverse() : tasks;
      /** @type {[Bench, typeof tasks][]} */
      const benches = [
        [new Bench({ ...benchOpts, ...(clock === 'cpu' ? { now: cpuNow } : {}) }), order.filter((t) => !t[2])],
        [new Bench(benchOpts), order.filter((t) => t[2] === 'async')],
      ];
      for (const [bench, list] of benches) {
        // Said, not detected: tinybench detects a promise by calling the task once and not awaiting it,
        // which leaves a batch in flight that a BatchBuffer (one batch at a time) then refuses.
        for (const [name, fn, kind] of list) bench.add(name, fn, { async: kind === 'async' });
        await bench.run();
        for (const t of bench.tasks) {
          // (throws: true: a failed task has thrown, so each result here is a completed one)
          const { latency } = /** @type {import('tinybench').TaskResultCompleted} */ (t.result);
          /** @type {number[]} */ (perRound.get(t.name)).push(latency.p50);
        }
      }
    }
    const ref = /** @type {number[]} */ (perRound.get(tasks[0][0]));
    for (const [name] of tasks) {
      const ms = /** @type {number[]} */ (perRound.get(name));
      const medianMs = median(ms);
      const row = {
        case: `${c.label} ${c.size} B`,
        algorithm: c.alg,
        size: c.size,
        messages: c.count,
        task: name,
        medianMs,
        msgPerSec: c.count / (medianMs / 1000),
        mbPerSec: (c.count * c.size) / (medianMs / 1000) / 1e6,
        vsHashWasm: median(ms.map((m, i) => ref[i] / m)),
      };
      rows.push(row);
      log(row);
    }
    for (const k of [kSimd, kScalar, kA1, kA2]) k.destroy();
  }
  return rows;
}

export function formatRows(rows) {
  const lines = [];
  let last = '';
  for (const r of rows) {
    if (r.case !== last) {
      lines.push('', `## ${r.case} (${r.messages} distinct messages per pass)`);
      lines.push(
        `${'task'.padEnd(40)} ${'median/pass'.padStart(12)} ${'msg/s'.padStart(12)} ${'MB/s'.padStart(9)} ${'vs hash-wasm'.padStart(13)}`,
      );
      last = r.case;
    }
    lines.push(
      `${r.task.padEnd(40)} ${(`${r.medianMs.toFixed(3)} ms`).padStart(12)} ${Math.round(r.msgPerSec).toLocaleString('en-US').padStart(12)} ${r.mbPerSec.toFixed(1).padStart(9)} ${(`${r.vsHashWasm.toFixed(2)}×`).padStart(13)}`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const opts = {
    time: Number(opt('--time', 250)),
    rounds: Number(opt('--rounds', 3)),
    clock: opt('--clock', 'wall'),
    quick: args.includes('--quick'),
  };
  process.stdout.write(`${header(await activeBackend())}\n`);
  process.stdout.write(
    `# tinybench ${opts.time} ms/task x ${opts.rounds} rounds, ${opts.clock} clock for 1-thread tasks; medians over rounds\n`,
  );
  const rows = await runWasmBench(opts);
  process.stdout.write(`${formatRows(rows)}\n`);
  const json = opt('--json', undefined);
  if (json) writeFileSync(json, JSON.stringify({ header: header(await activeBackend()), rows }, null, 2));
}
