#!/usr/bin/env node
// npm run bench — HMAC throughput of every path against node:crypto, in one
// run, on this machine. Prints the environment, a table of medians (with the
// median absolute deviation as spread) and ratios to node:crypto, the WASM
// comparison, and the async/array targets as same-run ratios with the
// native async per-batch budget (bench/targets.js); writes
// bench/results/latest.json and bench/results/chart.svg.
//
//   npm run bench               full run (a few minutes)
//   npm run bench -- --quick    shorter sampling, same tables, nothing written
//
// Each task iteration is a whole pass over many distinct messages, so the
// per-iteration cost of the harness (~100 ns) never rivals a 100 ns MAC.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { createMacKey, loadBackend, packMessages } from '../dist/index.js';
import { benchChart } from './chart.js';
import { formatRows as formatWasmRows, runWasmBench } from './wasm.js';
import { environment, printEnvironment } from './env.js';
import { formatBudget, formatCeiling, formatTargets, runBudgets, runCeilings, runTargets } from './targets.js';

const quick = process.argv.includes('--quick');
const SIZES = [16, 64, 256, 1024, 4096];
const ALGORITHMS = ['HMAC_SHA_256', 'HMAC_SHA_512'];
const NODE_NAME = { HMAC_SHA_256: 'sha256', HMAC_SHA_512: 'sha512' };
const BASELINE = 'node:crypto createHmac';

/** Messages per pass: ~1 MiB of distinct messages, between 256 and 8192 of them. */
const passCount = (size) => Math.max(256, Math.min(8192, Math.floor(2 ** 20 / size)));

function backendsAvailable() {
  const available = [];
  for (const name of /** @type {const} */ (['native', 'wasm-simd', 'wasm-scalar'])) {
    try {
      available.push(loadBackend(name));
    } catch (error) {
      console.log(`# ${name} not measured: ${/** @type {Error} */ (error).message}`);
    }
  }
  return available;
}

function pathsFor(algorithm, size, backends) {
  const keyBytes = randomBytes(32);
  const count = passCount(size);
  const messages = Array.from({ length: count }, () => randomBytes(size));
  const { data, offsets } = packMessages(messages);
  // Async batches are bigger: they pay a thread handoff per call.
  const asyncMessages = Array.from({ length: count * 8 }, (_, i) => messages[i % count]);
  const asyncPacked = packMessages(asyncMessages);
  const nodeName = NODE_NAME[algorithm];

  const paths = [
    {
      name: BASELINE,
      count,
      fn: () => {
        for (let i = 0; i < count; i++) createHmac(nodeName, keyBytes).update(messages[i]).digest();
      },
    },
  ];
  for (const backend of backends) {
    const key = createMacKey(algorithm, keyBytes, { backend });
    const out = new Uint8Array(count * key.macLength);
    paths.push(
      {
        name: `${backend.name} mac()`,
        count,
        fn: () => {
          for (let i = 0; i < count; i++) key.mac(messages[i]);
        },
      },
      { name: `${backend.name} batch packed`, count, fn: () => key.macPackedInto(data, offsets, out) },
      { name: `${backend.name} batch array`, count, fn: () => key.macBatch(messages) },
      {
        name: `${backend.name} async batch`,
        count: asyncMessages.length,
        fn: () => key.macPackedAsync(asyncPacked.data, asyncPacked.offsets),
        async: true,
      },
    );
  }
  return paths;
}

async function measure(algorithm, size, backends) {
  const bench = new Bench({
    time: quick ? 150 : 500,
    iterations: 5,
    warmupTime: quick ? 30 : 100,
    warmupIterations: 2,
  });
  const paths = pathsFor(algorithm, size, backends);
  // Said, not detected: tinybench detects a promise by calling the task once without awaiting it.
  for (const path of paths) bench.add(path.name, path.fn, { async: path.async === true });
  await bench.run();
  /**
   * @type {{ algorithm: string, size: number, path: string, messagesPerCall: number, nsPerMessage: number,
   *   messagesPerSecond: number, megabytesPerSecond: number, spreadPercent: number, samples: number,
   *   ratioToNodeCrypto?: number }[]}
   */
  const rows = [];
  for (const [i, task] of bench.tasks.entries()) {
    const result = task.result;
    if (result.state !== 'completed')
      throw new Error(`${task.name}: ${result.state} ${'error' in result ? result.error : ''}`);
    const path = paths[i];
    const medianMs = result.latency.p50;
    rows.push({
      algorithm,
      size,
      path: path.name,
      messagesPerCall: path.count,
      nsPerMessage: (medianMs * 1e6) / path.count,
      messagesPerSecond: path.count / (medianMs / 1000),
      megabytesPerSecond: (path.count * size) / (medianMs / 1000) / 1e6,
      spreadPercent: (result.latency.mad / medianMs) * 100,
      samples: result.latency.samplesCount ?? result.totalTime,
    });
  }
  const baseline = /** @type {(typeof rows)[number]} */ (rows.find((r) => r.path === BASELINE)).messagesPerSecond;
  for (const row of rows) row.ratioToNodeCrypto = row.messagesPerSecond / baseline;
  return rows;
}

const formatRate = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(0)}k`);

function printTable(algorithm, rows) {
  console.log(`\n${algorithm}: messages/s (median, ±MAD%) and × node:crypto`);
  const header = ['path'.padEnd(26), ...SIZES.map((s) => `${s} B`.padStart(22))].join('');
  console.log(header);
  const paths = [...new Set(rows.map((r) => r.path))];
  for (const path of paths) {
    const cells = SIZES.map((size) => {
      const row = rows.find((r) => r.path === path && r.size === size);
      const text = `${formatRate(row.messagesPerSecond)} ±${row.spreadPercent.toFixed(0)}% ${row.ratioToNodeCrypto.toFixed(1)}×`;
      return text.padStart(22);
    });
    console.log(path.padEnd(26) + cells.join(''));
  }
}

const env = environment();
printEnvironment(env);
const backends = backendsAvailable();
const rows = [];
for (const algorithm of ALGORITHMS) {
  const algorithmRows = [];
  for (const size of SIZES) algorithmRows.push(...(await measure(algorithm, size, backends)));
  printTable(algorithm, algorithmRows);
  rows.push(...algorithmRows);
}

// The WebAssembly backend against the other WASM/JS HMACs on npm (hash-wasm,
// @noble/hashes), one thread and the async worker pool (bench/wasm.js).
console.log('\nWebAssembly backend against hash-wasm and @noble/hashes (ratios to hash-wasm createHMAC):');
const wasmRows = await runWasmBench({ quick, time: quick ? 150 : 250, rounds: quick ? 2 : 3 });
console.log(formatWasmRows(wasmRows));

// The async and array-form targets, each a median of per-round ratios.
console.log('\nTargets (HMAC-SHA-256; same-run ratios, median of rounds, range in brackets):');
const targets = await runTargets({ quick });
console.log(formatTargets(targets));
const budget = await runBudgets();
for (const b of budget) console.log(formatBudget(b));
const ceilings = await runCeilings({ quick });
for (const c of ceilings) console.log(formatCeiling(c));

if (quick) {
  console.log('\n(--quick: bench/results/latest.json keeps the recorded full run: not overwritten)');
} else {
  const results = new URL('./results/', import.meta.url);
  mkdirSync(results, { recursive: true });
  writeFileSync(
    new URL('latest.json', results),
    `${JSON.stringify({ environment: env, quick, rows, wasmRows, targets, budget, ceilings }, null, 2)}\n`,
  );
  writeFileSync(new URL('chart.svg', results), benchChart(env, rows));
  console.log('\nwrote bench/results/latest.json and bench/results/chart.svg');
}
