/**
 * Crash safety of FileKeyStore with real processes: children create keys and
 * are SIGKILLed at random moments; after every kill the store must load and
 * hold every key whose creation was acknowledged.
 *
 * The child (test/fixtures/keystore-child.mjs) is plain JS run by a bare
 * `node`, which cannot import TypeScript on Node 20. Rather than depend on a
 * possibly stale or half-built dist/ (other modules may not compile at any
 * given moment), beforeAll transpiles src/keystore/*.ts with the TypeScript
 * compiler API (transpile only, no type check: well under a second) into a
 * temp dir, and the child imports that. So this suite always tests the
 * current source and needs no build step.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileKeyStore, KeyStoreLockTimeoutError } from '../src/keystore/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, '..', 'src', 'keystore');
const child = join(here, 'fixtures', 'keystore-child.mjs');
let root: string;
let moduleUrl: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'kms-hmac-crash-'));
  const out = join(root, 'lib');
  mkdirSync(out);
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  for (const f of readdirSync(srcDir).filter((f) => f.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(srcDir, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: f,
    });
    writeFileSync(join(out, f.replace(/\.ts$/, '.js')), outputText);
  }
  moduleUrl = pathToFileURL(join(out, 'index.js')).href;
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

interface Run {
  acked: string[];
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child; `onLine` may kill it. Resolves with the complete lines it printed. */
function runChild(args: string[], pass: string, onLine?: (line: string, kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], {
      env: { ...process.env, KS_MODULE: moduleUrl, KS_PASS: pass },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    let stderr = '';
    const lines: string[] = [];
    const kill = () => p.kill('SIGKILL');
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        onLine?.(line, kill);
      }
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const acked = lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));
      resolve({ acked, lines, code, signal, stderr });
    });
  });
}

function rand(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

interface LaneStats {
  kills: number;
  acked: number;
  killedHoldingLock: number;
  leftoverTemps: number;
}

/**
 * One lane: a store that `writers` children at a time write to, each killed
 * 5–80 ms after it is ready (`from: 'ready'`: most kills land in the first
 * transaction, lock held) or after its first acknowledged commit (`'ack'`: the
 * store already holds keys the child acknowledged). After every round the
 * store is opened and checked against everything acknowledged so far.
 */
async function lane(rounds: number, writers: number, pass: string, from: 'ready' | 'ack'): Promise<LaneStats> {
  const path = join(mkdtempSync(join(root, 'lane-')), 'keys.json');
  const acked = new Set<string>();
  let lastAcked: string | undefined;
  const stats: LaneStats = { kills: 0, acked: 0, killedHoldingLock: 0, leftoverTemps: 0 };
  let unacknowledgedMax = 0;
  for (let r = 0; r < rounds; r++) {
    const runs = await Promise.all(
      Array.from({ length: writers }, () => {
        let armed = false;
        return runChild([path, 'loop'], pass, (line, kill) => {
          const trigger = from === 'ready' ? line === 'ready' : line.startsWith('ack ');
          if (trigger && !armed) {
            armed = true;
            setTimeout(kill, rand(5, 80));
          }
        });
      }),
    );
    for (const run of runs) {
      if (run.signal !== 'SIGKILL') throw new Error(`child ended with ${run.code}/${run.signal}: ${run.stderr}`);
      stats.kills++;
      for (const id of run.acked) acked.add(id);
      if (run.acked.length) lastAcked = run.acked.at(-1);
    }
    unacknowledgedMax += writers; // each killed child may have one commit on disk it never acknowledged
    if (existsSync(`${path}.lock`)) stats.killedHoldingLock++;
    stats.leftoverTemps += readdirSync(dirname(path)).filter((n) => n.endsWith('.tmp')).length;

    const store = await FileKeyStore.open(path, { passphrase: pass || null, pollIntervalMs: 0 });
    try {
      const ids = new Set(store.listKeys().map((k) => k.keyId));
      const missing = [...acked].filter((id) => !ids.has(id));
      expect(missing, `round ${r}: acknowledged keys lost`).toEqual([]);
      expect(ids.size).toBeLessThanOrEqual(acked.size + unacknowledgedMax);
      for (const id of acked) expect(store.getKey(id)!.keyMaterial).toHaveLength(32);
      const latest = store.getAlias('alias/latest');
      if (writers === 1 && lastAcked) {
        // The alias moves with every commit: it names the last acknowledged key or a later, unacknowledged one.
        expect(latest && ids.has(latest.targetKeyId)).toBe(true);
        if (latest!.targetKeyId !== lastAcked) expect(acked.has(latest!.targetKeyId)).toBe(false);
      }
    } finally {
      await store.close();
    }
  }
  // The next writer removes crash debris (temp files, the stale lock) under the lock.
  const store = await FileKeyStore.open(path, { passphrase: pass || null, pollIntervalMs: 0 });
  try {
    await store.transact((tx) => tx.deleteKey('none'));
    expect(store.listKeys().length).toBeGreaterThanOrEqual(acked.size);
  } finally {
    await store.close();
  }
  expect(readdirSync(dirname(path))).toEqual(['keys.json']);
  stats.acked = acked.size;
  return stats;
}

describe('FileKeyStore crash safety (child processes, SIGKILL)', () => {
  test('≥200 random kills: every acknowledged key survives, the store always loads', async () => {
    const t0 = Date.now();
    // 8 lanes run in parallel (child start-up dominates): plaintext and encrypted stores, with one
    // writer, or two writers per store (lock contention, stale locks broken under contention).
    // 4 × 25 + 4 × 13 × 2 = 204 kills.
    const results = await Promise.all([
      lane(25, 1, '', 'ready'),
      lane(25, 1, '', 'ack'),
      lane(25, 1, 'crash-pass', 'ready'),
      lane(25, 1, 'crash-pass', 'ack'),
      lane(13, 2, '', 'ready'),
      lane(13, 2, '', 'ack'),
      lane(13, 2, 'crash-pass', 'ready'),
      lane(13, 2, 'crash-pass', 'ack'),
    ]);
    const total = results.reduce(
      (a, s) => ({
        kills: a.kills + s.kills,
        acked: a.acked + s.acked,
        killedHoldingLock: a.killedHoldingLock + s.killedHoldingLock,
        leftoverTemps: a.leftoverTemps + s.leftoverTemps,
      }),
      { kills: 0, acked: 0, killedHoldingLock: 0, leftoverTemps: 0 },
    );
    console.log(`[keystore-crash] ${JSON.stringify(total)} in ${Date.now() - t0} ms`);
    expect(total.kills).toBeGreaterThanOrEqual(200);
    expect(total.acked).toBeGreaterThan(0);
  }, 180_000);

  test('two processes writing at once lose nothing', async () => {
    const path = join(mkdtempSync(join(root, 'two-')), 'keys.json');
    const [a, b] = await Promise.all([runChild([path, 'count', '40'], ''), runChild([path, 'count', '40'], '')]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    expect(a.acked).toHaveLength(40);
    expect(b.acked).toHaveLength(40);
    const store = await FileKeyStore.open(path, { passphrase: null });
    try {
      expect(new Set(store.listKeys().map((k) => k.keyId))).toEqual(new Set([...a.acked, ...b.acked]));
    } finally {
      await store.close();
    }
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test('a lock left by a killed process does not block the next writer', async () => {
    const path = join(mkdtempSync(join(root, 'stale-')), 'keys.json');
    const run = await runChild([path, 'hold'], '', (line, kill) => {
      if (line === 'locked') kill();
    });
    expect(run.signal).toBe('SIGKILL');
    expect(existsSync(`${path}.lock`)).toBe(true);
    const store = await FileKeyStore.open(path, { passphrase: null, lockTimeoutMs: 5_000 });
    try {
      const t0 = Date.now();
      await store.transact((tx) => tx.deleteKey('none'));
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      await store.close();
    }
  });

  test('stale-lock rules: reused pid, unreadable old lock; a live holder is waited for', async () => {
    const path = join(mkdtempSync(join(root, 'rules-')), 'keys.json');
    const store = await FileKeyStore.open(path, { passphrase: null, lockTimeoutMs: 300 });
    try {
      // A live process (this one's parent) whose recorded start time does not match: pid reuse → stale (Linux).
      if (existsSync('/proc/self/stat')) {
        writeFileSync(
          `${path}.lock`,
          JSON.stringify({ pid: process.ppid, hostname: hostname(), createdAt: Date.now(), token: 'x', procStart: '1' }),
        );
        await store.transact((tx) => tx.deleteKey('none'));
        expect(existsSync(`${path}.lock`)).toBe(false);
      }
      // Our own pid with another start time: an earlier process that had our pid (container restart) → stale.
      if (existsSync('/proc/self/stat')) {
        writeFileSync(
          `${path}.lock`,
          JSON.stringify({ pid: process.pid, hostname: hostname(), createdAt: Date.now(), token: 'w', procStart: '1' }),
        );
        await store.transact((tx) => tx.deleteKey('none'));
        expect(existsSync(`${path}.lock`)).toBe(false);
      }
      // Empty lock file (crash between create and write), older than 5 s → stale.
      writeFileSync(`${path}.lock`, '');
      const old = new Date(Date.now() - 60_000);
      utimesSync(`${path}.lock`, old, old);
      await store.transact((tx) => tx.deleteKey('none'));
      // A live holder on this host (the parent process, no start time recorded) is waited for, then reported.
      writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.ppid, hostname: hostname(), createdAt: Date.now(), token: 'y' }));
      const err = await store.transact((tx) => tx.deleteKey('none')).catch((e) => e);
      expect(err).toBeInstanceOf(KeyStoreLockTimeoutError);
      expect(err.message).toContain(`pid ${process.ppid}`);
      // Another host's lock is never broken automatically.
      writeFileSync(`${path}.lock`, JSON.stringify({ pid: 1, hostname: `not-${hostname()}`, createdAt: Date.now(), token: 'z' }));
      await expect(store.transact(() => undefined)).rejects.toBeInstanceOf(KeyStoreLockTimeoutError);
      expect(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).token).toBe('z');
    } finally {
      rmSync(`${path}.lock`, { force: true });
      await store.close();
    }
  });
});

