/** A cli-progress bar with records/s and MB/s, on a TTY only (quiet otherwise). */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import type { Progress } from '../logs/sign.js';
import { count } from './numbers.js';

export interface ProgressReporter {
  update(p: Progress): void;
  stop(): void;
}

const NOOP: ProgressReporter = { update() {}, stop() {} };

export function progressBar(label: string, totalBytes: number | undefined, enabled: boolean): ProgressReporter {
  if (!enabled || !process.stderr.isTTY) return NOOP;
  // Loaded for a terminal only: the commands' other runs need not pay for it.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
  const t0 = performance.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {percentage}% | {records} records | {rps} rec/s | {mbps} MB/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const total = totalBytes && totalBytes > 0 ? totalBytes : 1;
  bar.start(total, 0, { records: 0, rps: '0', mbps: '0.0' });
  return {
    update(p) {
      const s = (performance.now() - t0) / 1000 || 1e-9;
      bar.update(Math.min(p.bytes, total), {
        records: count(p.records),
        rps: count(p.records / s),
        mbps: (p.bytes / 1e6 / s).toFixed(1),
      });
    },
    stop() {
      bar.stop();
    },
  };
}
