/**
 * Child processes that cannot outlive their test file.
 *
 * A test spawns a child with `detached: true`, which makes it the leader of a process group of its
 * own, and passes it to `track()`. Whatever the child starts stays in that group (a shell's
 * background jobs, `serve --workers`' workers), so `killGroup()` stops all of it at once, and every
 * group still alive when the file's tests end is killed with SIGKILL: after a test that failed or
 * timed out too (vitest runs afterAll hooks then), and when the test process itself exits or is
 * told to stop.
 *
 * What a program moves out of its group on purpose (pg_ctl's postmaster runs in a session of its
 * own) needs its own cleanup: the PostgreSQL helpers stop their servers in afterAll.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';

const groups = new Set<number>();

/** Signals the process group led by `pid`; false when no process is left in it. */
function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Registers a child spawned with `detached: true`, to be killed with its group after the file's tests. */
export function track<T extends ChildProcess>(child: T): T {
  const pid = child.pid;
  if (pid === undefined) return child; // it did not start: 'error' says why
  if (!signalGroup(pid, 0)) throw new Error(`${child.spawnfile} was not spawned with detached: true`);
  groups.add(pid);
  // The group outlives its leader while anything it started runs; forget it only once it is empty.
  child.once('exit', () => {
    if (!signalGroup(pid, 0)) groups.delete(pid);
  });
  return child;
}

/** Sends `signal` to the child's whole process group (the child and everything it started). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid !== undefined) signalGroup(child.pid, signal);
}

function killAll(): void {
  for (const pid of groups) signalGroup(pid, 'SIGKILL');
  groups.clear();
}

afterAll(killAll);
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal); // then as if no handler had been there
  });
}
