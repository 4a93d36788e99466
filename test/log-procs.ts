/**
 * Child processes for the live-log tests: the built CLI (bin/ → dist/) and
 * the log writer (test/fixtures/log-writer.mjs), with their stdout lines
 * collected as they come and a wait for a condition on them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { track } from './support/process-group.js';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/kms-hmac.js', import.meta.url));
export const WRITER = fileURLToPath(new URL('./fixtures/log-writer.mjs', import.meta.url));

export interface Proc {
  child: ChildProcess;
  /** Complete stdout lines so far. */
  out: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `node script ...args` in `cwd`, with `env` added to the environment. */
export function start(script: string, args: string[], cwd: string, env: Record<string, string> = {}): Proc {
  const child = track(
    spawn(process.execPath, [script, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }),
  );
  const out: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    out.push(...parts);
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out, stderr: () => err, exited };
}

/** The JSON lines a process printed (sign --follow --json: its events). */
export const jsonLines = (p: Proc) =>
  p.out.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event?: string; [k: string]: unknown });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
