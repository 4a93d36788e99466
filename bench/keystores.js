// Key store costs, for every store (part of `npm run bench:kms`; also `node bench/keystores.js`):
//
//   1. mutation cost through KmsHmacClient (CreateKey, DisableKey/EnableKey, CreateAlias/DeleteAlias,
//      TagResource) with 10, 1,000 and 10,000 keys in the store. Target: at 10,000 keys ≤ 1.5× the
//      cost at 10 keys, in every store.
//   2. opening a 100,000-key store (FileKeyStore, plain and encrypted; PostgresKeyStore).
//      Target: < 2 s.
//   3. the MAC hot path (generateMacSync) on a PostgresKeyStore against a MemoryKeyStore.
//      Target: ≥ 0.95×.
//
// Stores: memory, file (SQLite, no passphrase), file-encrypted, postgres (a throwaway cluster with
// fsync on, when PostgreSQL is installed). Each figure is the median of per-call timings.
// Env: BENCH_STORES=memory,file,file-encrypted,postgres  BENCH_STORE_SIZES=10,1000,10000
// `--quick`: fewer repetitions and a 20,000-key open. Needs dist/ (`npm run build:ts`).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileKeyStore, KmsHmacClient, MemoryKeyStore, PostgresKeyStore } from '../dist/index.js';
import { startPostgres } from '../scripts/postgres-cluster.js';
import { environment, printEnvironment } from './env.js';

const PASS = 'bench passphrase';
const SIZES = (process.env.BENCH_STORE_SIZES ?? '10,1000,10000').split(',').map(Number);
const KINDS = (process.env.BENCH_STORES ?? 'memory,file,file-encrypted,postgres').split(',');
export const MUTATION_TARGET = 1.5;
export const OPEN_TARGET_MS = 2_000;
export const MAC_TARGET = 0.95;

function record(now) {
  const keyId = randomUUID();
  return {
    keyId,
    arn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`,
    keySpec: 'HMAC_256',
    keyUsage: 'GENERATE_VERIFY_MAC',
    keyState: 'Enabled',
    origin: 'AWS_KMS',
    description: '',
    multiRegion: false,
    creationDate: now,
    tags: [],
    keyMaterial: new Uint8Array(randomBytes(32)),
  };
}

/** Fills a store with `n` keys, a few thousand per transaction (setting up, not measured). */
async function fill(store, n) {
  const now = Date.now();
  for (let done = 0; done < n; ) {
    const batch = Math.min(5_000, n - done);
    await store.transact((tx) => {
      for (let i = 0; i < batch; i++) tx.insertKey(record(now));
    });
    done += batch;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};

class Stores {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'kms-hmac-bench-stores-'));
    this.n = 0;
    this.pg = undefined;
  }

  async postgres() {
    if (this.pg === undefined) this.pg = (await startPostgres({ durable: true })) ?? null;
    return this.pg;
  }

  /** A new, empty store of `kind` (undefined when it cannot run here). */
  async open(kind) {
    const name = `s${this.n++}`;
    const scrypt = { N: 1 << 10, r: 8, p: 1 }; // the open benchmark measures the default cost separately
    switch (kind) {
      case 'memory':
        return new MemoryKeyStore();
      case 'file':
        return FileKeyStore.open(join(this.dir, `${name}.db`), { passphrase: null, pollIntervalMs: 0 });
      case 'file-encrypted':
        return FileKeyStore.open(join(this.dir, `${name}.db`), { passphrase: PASS, scrypt, pollIntervalMs: 0 });
      case 'postgres': {
        const pg = await this.postgres();
        if (!pg) return undefined;
        return PostgresKeyStore.open(await pg.createDatabase(name), { passphrase: PASS, scrypt });
      }
      default:
        throw new Error(`unknown store ${kind}`);
    }
  }

  async close() {
    await this.pg?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The four mutations, through the KMS layer, on one store (each call leaves the store as big as it was, but CreateKey). */
async function mutationsOn(store) {
  const client = new KmsHmacClient({ keyStore: store });
  const spec = { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' };
  const { KeyMetadata } = await client.createKey(spec);
  const id = KeyMetadata.KeyId;
  let flip = false;
  let alias = 0;
  let tag = 0;
  return {
    client,
    ops: {
      CreateKey: () => client.createKey(spec),
      'DisableKey/EnableKey': () => {
        flip = !flip;
        return flip ? client.disableKey({ KeyId: id }) : client.enableKey({ KeyId: id });
      },
      'CreateAlias/DeleteAlias': () =>
        alias % 2 === 0
          ? client.createAlias({ AliasName: `alias/b${alias++}`, TargetKeyId: id })
          : client.deleteAlias({ AliasName: `alias/b${alias++ - 1}` }),
      TagResource: () => client.tagResource({ KeyId: id, Tags: [{ TagKey: 'k', TagValue: String(tag++) }] }),
    },
  };
}

/**
 * Median µs per call of each mutation on stores of `kind` holding each of
 * SIZES keys. The sizes are measured in turns, call by call, so that a busy
 * machine slows them all alike; a first pass on every store warms the code up.
 */
async function mutationCosts(stores, kind, reps) {
  /** @type {any[]} */
  const subjects = [];
  for (const size of SIZES) {
    const store = await stores.open(kind);
    if (!store) return undefined;
    await fill(store, size);
    subjects.push({ size, store, ...(await mutationsOn(store)) });
  }
  const names = Object.keys(subjects[0].ops);
  const times = subjects.map(() => Object.fromEntries(names.map((n) => [n, /** @type {number[]} */ ([])])));
  for (const name of names) {
    for (let i = 0; i < reps / 4; i++) for (const s of subjects) await s.ops[name]();
    globalThis.gc?.(); // (node --expose-gc, as `npm run bench:kms` runs it)
    for (let i = 0; i < reps; i++) {
      for (let j = 0; j < subjects.length; j++) {
        const t = performance.now();
        await subjects[j].ops[name]();
        times[j][name].push((performance.now() - t) * 1000);
      }
    }
  }
  for (const s of subjects) {
    await s.client.close();
    await s.store.close();
  }
  return subjects.map((s, j) => ({
    store: kind,
    keys: s.size,
    usPerOp: Object.fromEntries(names.map((n) => [n, median(times[j][n])])),
  }));
}

/** ms to open a store of `n` keys (median of 3), with the default scrypt cost when encrypted. */
async function openCost(stores, kind, n) {
  const pass = kind === 'file' ? null : PASS;
  let spec;
  if (kind === 'postgres') {
    const pg = await stores.postgres();
    if (!pg) return undefined;
    spec = await pg.createDatabase(`open_${stores.n++}`);
    const s = await PostgresKeyStore.open(spec, { passphrase: pass });
    await fill(s, n);
    await s.close();
  } else {
    spec = join(stores.dir, `open-${stores.n++}.db`);
    const s = await FileKeyStore.open(spec, { passphrase: pass, pollIntervalMs: 0 });
    await fill(s, n);
    await s.close();
  }
  const times = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const s =
      kind === 'postgres'
        ? await PostgresKeyStore.open(spec, { passphrase: pass })
        : await FileKeyStore.open(spec, { passphrase: pass, pollIntervalMs: 0 });
    times.push(performance.now() - t);
    if (s.listKeys().length !== n) throw new Error(`${kind}: opened ${s.listKeys().length} keys, expected ${n}`);
    await s.close();
  }
  return median(times);
}

/** generateMacSync ns per message on `store` (64-byte messages, one key). */
async function macNs(store, ms) {
  const client = new KmsHmacClient({ keyStore: store });
  await client.ready();
  const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
  const input = (m) => ({ KeyId: KeyMetadata.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: m });
  const msgs = Array.from({ length: 1024 }, () => randomBytes(64));
  const rounds = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    for (const m of msgs) client.generateMacSync(input(m));
    rounds.push(((performance.now() - t) * 1e6) / msgs.length);
  }
  await client.close();
  return median(rounds);
}

export async function runKeyStoreBench({ quick = false } = {}) {
  const stores = new Stores();
  const reps = {
    memory: quick ? 500 : 3000,
    file: quick ? 50 : 200,
    'file-encrypted': quick ? 50 : 200,
    postgres: quick ? 50 : 200,
  };
  /** @type {{ mutations: object[], open: object[], mac: object | undefined, skipped: string[] }} */
  const result = { mutations: [], open: [], mac: undefined, skipped: [] };
  try {
    for (const kind of KINDS) {
      const rows = await mutationCosts(stores, kind, reps[kind]);
      if (rows) result.mutations.push(...rows);
      else result.skipped.push(`${kind}: PostgreSQL is not installed`);
    }
    const openN = quick ? 20_000 : 100_000;
    for (const kind of ['file', 'file-encrypted', 'postgres'].filter((k) => KINDS.includes(k))) {
      const ms = await openCost(stores, kind, openN);
      if (ms !== undefined) result.open.push({ store: kind, keys: openN, ms });
    }
    if (KINDS.includes('postgres')) {
      const pgStore = await stores.open('postgres');
      if (pgStore) {
        const memory = await macNs(new MemoryKeyStore(), quick ? 300 : 1500);
        const postgres = await macNs(pgStore, quick ? 300 : 1500);
        const memory2 = await macNs(new MemoryKeyStore(), quick ? 300 : 1500); // either side of the PostgreSQL run
        const mem = Math.min(memory, memory2);
        result.mac = { memoryNsPerMac: mem, postgresNsPerMac: postgres, ratio: mem / postgres };
        await pgStore.close();
      }
    }
  } finally {
    await stores.close();
  }
  return result;
}

export function printKeyStoreBench(r) {
  const ops = Object.keys(r.mutations[0]?.usPerOp ?? {});
  console.log(
    `\nKey store mutations through KmsHmacClient: median µs per call (target: ${SIZES.at(-1)} keys ≤ ${MUTATION_TARGET}× ${SIZES[0]} keys)`,
  );
  console.log(`${'store'.padEnd(16)}${'keys'.padStart(7)}${ops.map((o) => o.padStart(26)).join('')}`);
  for (const m of r.mutations) {
    console.log(
      `${m.store.padEnd(16)}${String(m.keys).padStart(7)}${ops.map((o) => m.usPerOp[o].toFixed(1).padStart(26)).join('')}`,
    );
  }
  for (const store of [...new Set(r.mutations.map((m) => m.store))]) {
    const rows = r.mutations.filter((m) => m.store === store);
    const [lo, hi] = [rows[0], rows.at(-1)];
    const ratios = ops.map((o) => hi.usPerOp[o] / lo.usPerOp[o]);
    const worst = Math.max(...ratios);
    console.log(
      `${store.padEnd(16)}${`${hi.keys}/${lo.keys}`.padStart(7)}${ratios.map((x) => `${x.toFixed(2)}×`.padStart(26)).join('')}   ${worst <= MUTATION_TARGET ? 'met' : 'MISSED'}`,
    );
  }
  for (const o of r.open)
    console.log(
      `open a ${o.keys.toLocaleString('en-US')}-key ${o.store} store: ${o.ms.toFixed(0)} ms (target < ${OPEN_TARGET_MS} ms: ${o.ms < OPEN_TARGET_MS ? 'met' : 'MISSED'})`,
    );
  if (r.mac) {
    console.log(
      `generateMacSync, 64 B: memory store ${r.mac.memoryNsPerMac.toFixed(0)} ns, PostgreSQL store ${r.mac.postgresNsPerMac.toFixed(0)} ns: ` +
        `${r.mac.ratio.toFixed(3)}× (target ≥ ${MAC_TARGET}×: ${r.mac.ratio >= MAC_TARGET ? 'met' : 'MISSED'})`,
    );
  }
  for (const s of r.skipped) console.log(`# skipped ${s}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const env = environment();
  printEnvironment(env);
  const r = await runKeyStoreBench({ quick: process.argv.includes('--quick') });
  if (process.argv.includes('--json')) console.log(JSON.stringify({ environment: env, ...r }, null, 2));
  else printKeyStoreBench(r);
}
