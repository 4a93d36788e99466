/**
 * `kms-hmac bench`: runs the package's benchmark (bench/run.js, or
 * bench/logs.js with --logs) when this is a checkout that has it; otherwise a
 * short built-in comparison against node:crypto.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { backendInfo } from '../backend/index.js';
import { createMacKey } from '../mac/key.js';
import { count } from './numbers.js';

export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(script: string, args: string[], nodeArgs: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: 'inherit', cwd: PACKAGE_ROOT });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 3 : 0)));
  });
}

/** MACs of `n` 200-byte messages: node:crypto per message vs packed batches (sync and async). */
export async function quickComparison(n = 200_000, size = 200): Promise<{ name: string; perSecond: number }[]> {
  const key = randomBytes(32);
  const data = randomBytes(n * size);
  const offsets = new Uint32Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = i * size;
  const time = (fn: () => void) => {
    const t = performance.now();
    fn();
    return performance.now() - t;
  };
  const node = time(() => {
    for (let i = 0; i < n; i++)
      createHmac('sha256', key)
        .update(data.subarray(i * size, (i + 1) * size))
        .digest();
  });
  const mk = createMacKey('HMAC_SHA_256', key);
  const sync = time(() => {
    for (let i = 0; i < n; i += 4096) {
      const j = Math.min(n, i + 4096);
      mk.macPacked(data.subarray(i * size, j * size), offsets.subarray(0, j - i + 1));
    }
  });
  const t = performance.now();
  const jobs: Promise<Uint8Array>[] = [];
  for (let i = 0; i < n; i += 4096) {
    const j = Math.min(n, i + 4096);
    jobs.push(mk.macPackedAsync(data.subarray(i * size, j * size), offsets.subarray(0, j - i + 1)));
  }
  await Promise.all(jobs);
  const async_ = performance.now() - t;
  mk.destroy();
  return [
    { name: 'node:crypto createHmac per message', perSecond: n / (node / 1000) },
    { name: 'kms-hmac macPacked (sync, batches of 4096)', perSecond: n / (sync / 1000) },
    { name: 'kms-hmac macPackedAsync (worker threads)', perSecond: n / (async_ / 1000) },
  ];
}

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'benchmark against node:crypto: bench/run.js from a checkout (or a built-in quick comparison); --logs runs bench/logs.js',
    )
    .option('--logs', 'the log signing benchmark (npm run bench:logs)')
    .option('--quick', 'the built-in 200-byte comparison only')
    .argument('[args...]', 'passed to the benchmark script (put them after --)')
    .action(async (args: string[], flags: { logs?: boolean; quick?: boolean }) => {
      const script = join(PACKAGE_ROOT, 'bench', flags.logs ? 'logs.js' : 'run.js');
      if (!flags.quick && existsSync(script)) {
        process.exitCode = await run(script, args, flags.logs ? [] : ['--expose-gc']);
        return;
      }
      const info = backendInfo();
      process.stdout.write(`backend ${info.name}${info.simd ? ' (SIMD)' : ''}; 200-byte messages, HMAC_SHA_256\n`);
      const rows = await quickComparison();
      const base = rows[0]!.perSecond;
      for (const r of rows) {
        process.stdout.write(
          `  ${r.name.padEnd(44)} ${count(r.perSecond).padStart(12)} msg/s  ${(r.perSecond / base).toFixed(1)}x\n`,
        );
      }
    });
}
