#!/usr/bin/env node
// Prints bench/results/latest.json (written by `npm run bench`) as the
// markdown tables the README shows, so README numbers always come from a run.
//
//   node bench/report.js                every table of the run
//   node bench/report.js --readme       the README's performance section, from the recorded runs
//   node bench/report.js --benchmarks   docs/benchmarks.md's "The recorded run": the targets, the
//                                       logs and the SIMD lanes per CPU measured
// (test/readme.test.ts keeps the README and docs/benchmarks.md equal to what these print)
import { readdirSync, readFileSync } from 'node:fs';

const results = (name) => JSON.parse(readFileSync(new URL(`./results/${name}`, import.meta.url), 'utf8'));
const { environment: env, rows, targets = [], budget = [] } = results('latest.json');
const sizes = [...new Set(rows.map((r) => r.size))];
const rate = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${(v / 1e3).toFixed(0)} k`);

if (process.argv.includes('--readme')) {
  readme();
  process.exit(0);
}
if (process.argv.includes('--benchmarks')) {
  benchmarks();
  process.exit(0);
}

console.log(
  `${env.cpu}, ${env.cores} cores, Node ${env.node}, OpenSSL ${env.openssl}, backend ${env.backend}` +
    ` (${Object.entries(env.backendDetails)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}), ${env.date.slice(0, 10)}.\n`,
);
for (const algorithm of [...new Set(rows.map((r) => r.algorithm))]) {
  console.log(`**${algorithm}** — messages/s (median) and × node:crypto in the same run\n`);
  console.log(`| path | ${sizes.map((s) => `${s} B`).join(' | ')} |`);
  console.log(`|---|${sizes.map(() => '---:').join('|')}|`);
  for (const path of [...new Set(rows.map((r) => r.path))]) {
    const cells = sizes.map((size) => {
      const row = rows.find((r) => r.algorithm === algorithm && r.path === path && r.size === size);
      return `${rate(row.messagesPerSecond)} (${row.ratioToNodeCrypto.toFixed(1)}×)`;
    });
    console.log(`| ${path} | ${cells.join(' | ')} |`);
  }
  console.log();
}

if (targets.length) {
  console.log('**Targets** — same-run ratios, median of rounds (range)\n');
  console.log('| target | faster | slower | ratio | goal |');
  console.log('|---|---:|---:|---:|---|');
  for (const t of targets) {
    if (t.skipped) continue;
    const goal = t.target === null ? '' : `≥ ${t.target}× ${t.met ? 'met' : '**missed**'}`;
    console.log(
      `| ${t.name.trim()} | ${t.fasterMs.toFixed(3)} ms | ${t.slowerMs.toFixed(3)} ms | ${t.ratio.toFixed(2)}× (${t.ratioMin.toFixed(2)}–${t.ratioMax.toFixed(2)}) | ${goal} |`,
    );
  }
  console.log();
}
for (const b of budget) {
  console.log(
    `Native async budget, ${b.messages} × ${b.size} B into a ${b.output}, ${b.threads} threads: ${b.wallUs} µs per batch = ` +
      `copy ${b.copyUs} + hand-off ${b.startUs} + hashing ${b.hashUs} + return ${b.returnUs} + settle ${b.settleUs} µs; ` +
      `${Math.round(b.bytesCopiedPerBatch)} bytes copied once, ${b.allocationsPerBatch} allocations per batch.`,
  );
}

function machine(e) {
  return `${e.cpu} (family ${e.cpuDetails.family} model ${e.cpuDetails.model}), ${e.cores} vCPUs, Node ${e.node.replace(/^v/, '')}, OpenSSL ${e.openssl}`;
}

/** The README's performance section: one table and the chart. */
function readme() {
  console.log(
    `Measured by \`npm run bench\` on ${env.date.slice(0, 10)}, on a VM shared with other jobs: ${machine(env)}.` +
      ' Messages per second (median) and × `node:crypto` `createHmac` in the same run.\n',
  );
  /** @type {[string, number][]} */
  const cells = [
    ['HMAC_SHA_256', 64],
    ['HMAC_SHA_256', 1024],
    ['HMAC_SHA_512', 64],
    ['HMAC_SHA_512', 1024],
  ];
  const paths = [
    'node:crypto createHmac',
    'native mac()',
    'native batch packed',
    'native batch array',
    'native async batch',
    'wasm-simd batch packed',
  ];
  console.log(
    `| path | ${cells.map(([a, s]) => `${a.replace('HMAC_SHA_', 'SHA-')} ${s < 1024 ? `${s} B` : `${s / 1024} KiB`}`).join(' | ')} |`,
  );
  console.log(`|---|${cells.map(() => '---:').join('|')}|`);
  for (const path of paths) {
    const row = cells.map(([algorithm, size]) => {
      const r = rows.find((x) => x.algorithm === algorithm && x.path === path && x.size === size);
      return r.path === 'node:crypto createHmac'
        ? rate(r.messagesPerSecond)
        : `${rate(r.messagesPerSecond)} (${r.ratioToNodeCrypto.toFixed(1)}×)`;
    });
    console.log(`| ${path} | ${row.join(' | ')} |`);
  }
  console.log('\n![HMAC throughput by message size](bench/results/chart.svg)\n');
  console.log(
    'How it is fast and what bounds it: [docs/performance.md](docs/performance.md). Every target and what was' +
      ' missed, how the runs are made and read, and every earlier run: [docs/benchmarks.md](docs/benchmarks.md).',
  );
}

/** docs/benchmarks.md's "The recorded run": the targets (misses included), the logs, the SIMD lanes per CPU. */
function benchmarks() {
  const raised = /nice -\d+/.exec(env.schedulerGroup ?? '')?.[0];
  const logs = results('logs-latest.json');
  console.log(
    `\`npm run bench\` on ${env.date.slice(0, 10)} and \`npm run bench:logs\` on ${logs.env.date.slice(0, 10)}:` +
      ` ${machine(env)}` +
      `${raised ? `, in a scheduler group raised to ${raised.replace('-', '−')} (see "Measuring on a shared machine")` : ''}.` +
      ' Files: `bench/results/latest.json`, `chart.svg`, `logs-latest.json`; every table of the run:' +
      ' `node bench/report.js`.\n',
  );
  console.log(
    "The README's table: the async row awaits one batch of 8 × as many messages at a time, each into a new buffer" +
      " (its page faults included); into a caller's `out` buffer, against the sync batch, see the targets below.\n",
  );
  const x = (v) => `${v.toFixed(1)}×`;
  console.log('Batches and logs against their targets (same-run ratios, median of rounds):\n');
  console.log('| | ratio | target |');
  console.log('|---|---:|---|');
  for (const t of targets) {
    if (t.skipped || t.target === null) continue;
    console.log(
      `| ${t.name.trim().replace(/ x /g, ' × ')} | ${t.ratio.toFixed(2)}× | ≥ ${t.target}× ${t.met ? 'met' : '**missed**'} |`,
    );
  }
  const mib = logs.log.bytes / 2 ** 20;
  for (const op of ['sign', 'verify']) {
    const r = logs[op];
    console.log(
      `| \`kms-hmac ${op}\`, ${mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`} of ${logs.log.lineBytes}-byte lines, vs a per-line \`createHmac\` script | ` +
        `${x(r.ratio)} | ≥ ${logs.targets.ratio}× ${r.ratio >= logs.targets.ratio ? 'met' : '**missed**'} |`,
    );
  }
  const worst = Math.max(...logs.inProcess.sign.filter((s) => !s.cold).map((s) => s.timer.worstMs));
  console.log(
    `| a 10 ms timer during an in-process \`signLog\` of the same log: worst lateness | ${worst.toFixed(1)} ms | ≤ ${logs.targets.timerLateMs} ms ` +
      `${worst <= logs.targets.timerLateMs ? 'met' : '**missed**'} |`,
  );
  console.log(
    '\nMulti-buffer SIMD lanes against OpenSSL alone (packed batch of 4,096 messages, 1 thread, `npm run bench:simd`), per CPU measured:\n',
  );
  const simd = readdirSync(new URL('./results/', import.meta.url))
    .filter((f) => /^simd-.*-targets\.json$/.test(f))
    .sort()
    .map(results);
  const cpu = (s) => `${s.cpu}, ${s.cpuid.replace(/^(AuthenticAMD|GenuineIntel) /, '')}`;
  console.log(`| case | ${simd.map(cpu).join(' | ')} |`);
  console.log(`|---|${simd.map(() => '---:').join('|')}|`);
  for (const [i, r] of simd[0].results.entries()) {
    const cells = simd.map(
      (s) => `${s.results[i].ratio.auto.toFixed(2)}× (${s.results[i].autoPath.replace(/[()]/g, '')})`,
    );
    console.log(`| ${r.algorithm.replace('HMAC-', '')} ${r.size} | ${cells.join(' | ')} |`);
  }
}
