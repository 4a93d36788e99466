// What the passphrase's scrypt cost costs: opening an encrypted FileKeyStore
// (one derivation, on libuv's thread pool, plus the SQLite open) and the bare
// derivation, at kms-hmac 0.1's N=2^15 and today's N=2^17 (r=8, p=1), run
// alternately in one process, medians of ROUNDS. Prints the environment
// first (bench/env.js). Needs dist/ (`npm run build:ts`).
//
//   node bench/scrypt.js [--rounds 9] [--json]
import { scrypt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore } from '../dist/index.js';
import { environment, printEnvironment } from './env.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1]) || 9;
const COSTS = [
  { name: 'N=2^15 (kms-hmac 0.1)', N: 1 << 15, r: 8, p: 1 },
  { name: 'N=2^17 (now)', N: 1 << 17, r: 8, p: 1 },
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const derive = (c) =>
  /** @type {Promise<void>} */ (
    new Promise((resolve, reject) =>
      scrypt(
        'bench passphrase',
        'sixteen byte salt',
        32,
        { N: c.N, r: c.r, p: c.p, maxmem: 256 * c.N * c.r + (1 << 20) },
        (e) => (e ? reject(e) : resolve()),
      ),
    )
  );

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-bench-scrypt-'));
try {
  const env = environment();
  if (!args.includes('--json')) printEnvironment(env);
  const paths = [];
  for (const c of COSTS) {
    const path = join(dir, `${c.N}.db`);
    await (await FileKeyStore.open(path, { passphrase: 'bench passphrase', scrypt: c, pollIntervalMs: 0 })).close();
    paths.push(path);
  }
  const open = COSTS.map(() => /** @type {number[]} */ ([]));
  const bare = COSTS.map(() => /** @type {number[]} */ ([]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < COSTS.length; i++) {
      let t = performance.now();
      const s = await FileKeyStore.open(paths[i], { passphrase: 'bench passphrase', pollIntervalMs: 0 });
      open[i].push(performance.now() - t);
      await s.close();
      t = performance.now();
      await derive(COSTS[i]);
      bare[i].push(performance.now() - t);
    }
  }
  const rows = COSTS.map((c, i) => ({
    cost: c.name,
    openMs: Math.round(median(open[i])),
    scryptMs: Math.round(median(bare[i])),
  }));
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ env, rounds: ROUNDS, rows })}\n`);
  else {
    console.log(`\nopening an encrypted FileKeyStore, medians of ${ROUNDS} (alternating)\n`);
    console.log('| scrypt cost | open | scrypt alone |\n|---|---:|---:|');
    for (const r of rows) console.log(`| ${r.cost} | ${r.openMs} ms | ${r.scryptMs} ms |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
