/**
 * Cross-process write lock: `<store>.lock`, created with O_CREAT|O_EXCL and
 * holding who owns it. A lock is stale (and broken) when its owner is on this
 * host and is gone: the pid is dead, the pid now belongs to a process that
 * started later (pid reuse, Linux), or the machine rebooted since (Linux
 * boot id). An unreadable lock file older than a few seconds (a crash between
 * create and write) is stale too. A lock from another host is never broken
 * automatically; the waiter times out with the holder named.
 *
 * Breaking a stale lock is itself guarded by `<store>.lock.break` (O_EXCL), so
 * two waiters cannot both break it and one of them then delete the other's
 * fresh lock.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyStoreLockTimeoutError } from './errors.js';

interface LockInfo {
  pid: number;
  hostname: string;
  bootId?: string;
  procStart?: string;
  createdAt: number;
  token: string;
}

const UNREADABLE_STALE_MS = 5_000;
const BREAK_STALE_MS = 10_000;

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

let cachedBootId: string | undefined | null = null;
function bootId(): string | undefined {
  if (cachedBootId === null) cachedBootId = readProc('/proc/sys/kernel/random/boot_id')?.trim();
  return cachedBootId;
}

/** Start time of a process in clock ticks since boot (Linux), to tell a reused pid from the original. */
function procStart(pid: number): string | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19]; // field 22 of proc(5); fields[0] is field 3
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describe(info: LockInfo | undefined): string {
  if (!info) return 'an unknown process (unreadable lock file)';
  return `pid ${info.pid} on ${info.hostname} since ${new Date(info.createdAt).toISOString()}`;
}

function parse(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as LockInfo;
    if (typeof v?.pid === 'number' && typeof v.hostname === 'string' && typeof v.token === 'string') return v;
  } catch {
    /* fall through */
  }
  return undefined;
}

function isStale(info: LockInfo | undefined, ageMs: number): boolean {
  if (!info) return ageMs > UNREADABLE_STALE_MS;
  if (info.hostname !== hostname()) return false;
  const myBoot = bootId();
  if (info.bootId && myBoot && info.bootId !== myBoot) return true;
  // Our own pid is alive by definition (another store instance in this process) unless the start time
  // says the lock is from an earlier process that had our pid (a restarted container's pid 1, say).
  if (info.pid !== process.pid && !pidAlive(info.pid)) return true;
  if (info.procStart) {
    const now = procStart(info.pid);
    if (now !== undefined && now !== info.procStart) return true;
  }
  return false;
}

async function tryCreate(file: string, content: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(content);
  } finally {
    await fh.close();
  }
  return true;
}

async function readLock(file: string): Promise<{ text: string; info: LockInfo | undefined; ageMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { text, info: parse(text), ageMs: Date.now() - st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Removes `file` if it still holds exactly `text` and is stale, under the break guard. */
async function breakStale(file: string, text: string): Promise<void> {
  const guard = `${file}.break`;
  if (!(await tryCreate(guard, String(process.pid)))) {
    const g = await stat(guard).catch(() => undefined);
    if (g && Date.now() - g.mtimeMs > BREAK_STALE_MS) await unlink(guard).catch(() => {});
    return;
  }
  try {
    const again = await readLock(file);
    if (again && again.text === text && isStale(again.info, again.ageMs)) await unlink(file).catch(() => {});
  } finally {
    await unlink(guard).catch(() => {});
  }
}

export class FileLock {
  readonly #file: string;
  readonly #token: string;

  private constructor(file: string, token: string) {
    this.#file = file;
    this.#token = token;
  }

  /** Waits up to `timeoutMs` for the lock; throws KeyStoreLockTimeoutError naming the holder. */
  static async acquire(file: string, storePath: string, timeoutMs: number): Promise<FileLock> {
    const token = randomBytes(12).toString('hex');
    const info: LockInfo = { pid: process.pid, hostname: hostname(), createdAt: Date.now(), token };
    const b = bootId();
    if (b) info.bootId = b;
    const ps = procStart(process.pid);
    if (ps) info.procStart = ps;
    const content = JSON.stringify(info);
    const deadline = Date.now() + timeoutMs;
    let delay = 2;
    for (;;) {
      if (await tryCreate(file, content)) return new FileLock(file, token);
      const held = await readLock(file);
      if (held === undefined) continue; // released meanwhile: retry at once
      if (isStale(held.info, held.ageMs)) {
        await breakStale(file, held.text);
        await sleep(1);
        continue;
      }
      if (Date.now() >= deadline) throw new KeyStoreLockTimeoutError(storePath, timeoutMs, describe(held.info));
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())) * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 50);
    }
  }

  /** Releases the lock if it is still ours (a lock broken by someone else is left alone). */
  async release(): Promise<void> {
    const held = await readLock(this.#file).catch(() => undefined);
    if (held?.info?.token === this.#token) await unlink(this.#file).catch(() => {});
  }
}
