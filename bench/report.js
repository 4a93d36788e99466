#!/usr/bin/env node
// Prints bench/results/latest.json (written by `npm run bench`) as the
// markdown tables the README shows, so README numbers always come from a run.
import { readFileSync } from 'node:fs';

const { environment: env, rows, targets = [], budget = [] } = JSON.parse(readFileSync(new URL('./results/latest.json', import.meta.url), 'utf8'));
const sizes = [...new Set(rows.map((r) => r.size))];
const rate = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${(v / 1e3).toFixed(0)} k`);

console.log(
  `${env.cpu}, ${env.cores} cores, Node ${env.node}, OpenSSL ${env.openssl}, backend ${env.backend}` +
    ` (${Object.entries(env.backendDetails).map(([k, v]) => `${k} ${v}`).join(', ')}), ${env.date.slice(0, 10)}.\n`,
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
