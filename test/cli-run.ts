/** Runs the built `kms-hmac` CLI (bin/ → dist/) as a child process and collects its output. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { track } from './support/process-group.js';

const BIN = fileURLToPath(new URL('../bin/kms-hmac.js', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; input?: string | Buffer },
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(process.execPath, [BIN, ...args], {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}
