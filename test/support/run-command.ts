/** A command run to its end in its own process group (killed after 60 s), with what it printed. */
import { spawn } from 'node:child_process';
import { killGroup, track } from './process-group.js';

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = track(spawn(cmd, args, { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => killGroup(child), 60_000);
    child.on('error', () => resolve({ code: -1, stdout, stderr }));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
