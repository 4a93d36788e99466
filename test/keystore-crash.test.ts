/**
 * Crash safety of FileKeyStore with real processes: children create keys and
 * are SIGKILLed at random moments; after every kill the store must load and
 * hold every key whose creation was acknowledged. And the write lock: a
 * holder in another pid namespace is waited for, never broken; a killed
 * holder's lock is gone at once. (The children run the current source:
 * test/keystore-child.ts.)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileKeyStore, KeyStoreLockTimeoutError } from '../src/keystore/index.js';
import { useKeyStoreChild } from './keystore-child.js';
import { random } from './support/random.js';

const runChild = useKeyStoreChild();
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'kms-hmac-crash-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

interface LaneStats {
  kills: number;
  acked: number;
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
  const stats: LaneStats = { kills: 0, acked: 0 };
  let unacknowledgedMax = 0;
  for (let r = 0; r < rounds; r++) {
    const runs = await Promise.all(
      Array.from({ length: writers }, () => {
        let armed = false;
        return runChild([path, 'loop'], {
          pass,
          onLine: (line, kill) => {
            const trigger = from === 'ready' ? line.startsWith('ready ') : line.startsWith('ack ');
            if (trigger && !armed) {
              armed = true;
              setTimeout(kill, random.between(5, 80));
            }
          },
        });
      }),
    );
    for (const run of runs) {
      if (run.signal !== 'SIGKILL')
        throw new Error(
          `child ended with ${run.code}/${run.signal}: ${run.stderr} ${JSON.stringify(run.lines.slice(-3))}`,
        );
      stats.kills++;
      for (const id of run.acked) acked.add(id);
      if (run.acked.length) lastAcked = run.acked.at(-1);
    }
    unacknowledgedMax += writers; // each killed child may have one commit on disk it never acknowledged

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
  // Nothing is left behind once the last connection closed (SQLite folds the WAL back in).
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
    const total = results.reduce((a, s) => ({ kills: a.kills + s.kills, acked: a.acked + s.acked }), {
      kills: 0,
      acked: 0,
    });
    console.log(`[keystore-crash] ${JSON.stringify(total)} in ${Date.now() - t0} ms`);
    expect(total.kills).toBeGreaterThanOrEqual(200);
    expect(total.acked).toBeGreaterThan(0);
  }, 600_000);

  test('two processes writing at once lose nothing', async () => {
    const path = join(mkdtempSync(join(root, 'two-')), 'keys.json');
    const [a, b] = await Promise.all([runChild([path, 'count', '40']), runChild([path, 'count', '40'])]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    expect(a.acked).toHaveLength(40);
    expect(b.acked).toHaveLength(40);
    const store = await FileKeyStore.open(path, { passphrase: null });
    try {
      expect(new Set(store.listKeys().map((k) => k.keyId))).toEqual(new Set([...a.acked, ...b.acked]));
    } finally {
      await store.close();
    }
  });

  test('a writer killed while holding the lock does not block the next writer', async () => {
    const path = join(mkdtempSync(join(root, 'stale-')), 'keys.json');
    const run = await runChild([path, 'hold'], {
      onLine: (line, kill) => {
        if (line === 'locked') kill();
      },
    });
    expect(run.signal).toBe('SIGKILL');
    const store = await FileKeyStore.open(path, { passphrase: null, lockTimeoutMs: 5_000 });
    try {
      const t0 = Date.now();
      await store.transact((tx) => tx.deleteKey('none'));
      expect(Date.now() - t0).toBeLessThan(500); // the kernel released the lock with the process
    } finally {
      await store.close();
    }
  });

  // The old lock file recorded a pid, which means nothing in another pid namespace (a container):
  // the lock is now the kernel's, so a live holder anywhere is waited for.
  const canUnshare = process.platform === 'linux' && spawnSync('unshare', ['--pid', '--fork', 'true']).status === 0;
  if (!canUnshare)
    console.log(
      '[keystore-crash] skipped the pid-namespace lock test: `unshare --pid --fork` needs root (CAP_SYS_ADMIN)',
    );
  test.skipIf(!canUnshare)(
    'a live holder in another pid namespace is waited for, never broken; killing it frees the lock',
    async () => {
      const path = join(mkdtempSync(join(root, 'ns-')), 'keys.json');
      await (await FileKeyStore.open(path, { passphrase: null })).close();
      let innerPid = '';
      let kill!: () => void;
      const locked = new Promise<void>((resolve) => {
        void runChild([path, 'hold'], {
          onLine: (line, k) => {
            kill = k;
            if (line.startsWith('ready ')) innerPid = line.slice(6);
            if (line === 'locked') resolve();
          },
          wrap: ['unshare', '--pid', '--fork', '--kill-child'],
        });
      });
      await locked;
      expect(innerPid).toBe('1'); // the holder's pid in its own namespace: meaningless here
      const store = await FileKeyStore.open(path, { passphrase: null, lockTimeoutMs: 1_000 });
      try {
        const err = await store.transact((tx) => tx.insertKey(record())).catch((e) => e);
        expect(err).toBeInstanceOf(KeyStoreLockTimeoutError);
        expect(err.message).toMatch(/held by pid \d+/); // the pid as this namespace sees it (from /proc/locks)
        expect(store.listKeys()).toEqual([]);
        kill();
        await store.transact((tx) => tx.insertKey(record()));
        expect(store.listKeys()).toHaveLength(1);
      } finally {
        await store.close();
      }
    },
  );
});

function record() {
  const keyId = random.bytes(16).toString('hex');
  return {
    keyId,
    arn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`,
    keySpec: 'HMAC_256' as const,
    keyUsage: 'GENERATE_VERIFY_MAC' as const,
    keyState: 'Enabled' as const,
    origin: 'AWS_KMS' as const,
    description: '',
    multiRegion: false,
    creationDate: Date.now(),
    tags: [],
    keyMaterial: new Uint8Array(random.bytes(32)),
  };
}
