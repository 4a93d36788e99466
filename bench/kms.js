#!/usr/bin/env node
// node bench/kms.js [--quick] [--json] [--no-stores]
//
// Then the key stores (bench/keystores.js; --no-stores skips them): mutation cost with 10, 1,000
// and 10,000 keys in every store, opening a 100,000-key store, and the MAC hot path on a
// PostgreSQL store against the memory store.
//
// KmsHmacClient against node:crypto, 64-byte HMAC-SHA-256, in one run:
// the KMS façade (validation, KeyId resolution, key state, response shape)
// included in every figure. Needs `npm run build:ts` first (reads ../dist).
//
// Each task iteration is a pass over COUNT distinct messages, so the
// harness's per-iteration cost never rivals a sub-microsecond call.
// Targets: generateMacSync ≥ 3.5×, generateMacBatch ≥ 12×,
// generateMac (Promise) ≥ 2× node:crypto createHmac.
// Then the fast path's local GenerateMac against a forwarded one (bench/fast-path.js).
import { createHmac, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import * as pkg from '../dist/index.js';
import { environment, printEnvironment } from './env.js';
import { printFastPathRows, runFastPathBench } from './fast-path.js';
import { printKeyStoreBench, runKeyStoreBench } from './keystores.js';

const KmsHmacClient = pkg.KmsHmacClient ?? (await import('../dist/client/client.js')).KmsHmacClient;
const packMessages = pkg.packMessages;

const SIZE = 64;
const COUNT = 1024;
const BASELINE = 'node:crypto createHmac';
/** @type {Record<string, number>} */
export const TARGETS = { generateMacSync: 3.5, 'generateMacBatch packed': 12, 'generateMac (Promise)': 2 };

export async function runKmsBench({ quick = false, size = SIZE, count = COUNT } = {}) {
  const client = new KmsHmacClient();
  const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
  // Import known material so node:crypto uses the same key.
  const key = randomBytes(32);
  const local = await client.importRemoteKey({
    RemoteArn: `arn:aws:kms:us-east-1:111122223333:key/${KeyMetadata.KeyId}`,
    KeySpec: 'HMAC_256',
    KeyMaterial: key,
  });
  const KeyId = local.KeyMetadata.KeyId;
  const MacAlgorithm = 'HMAC_SHA_256';
  const messages = Array.from({ length: count }, () => randomBytes(size));
  const { data, offsets } = packMessages(messages);
  const asyncCount = count * 16;
  const asyncPacked = packMessages(Array.from({ length: asyncCount }, (_, i) => messages[i % count]));

  // Sanity: same bytes as node:crypto before timing anything.
  const check = client.generateMacSync({ KeyId, MacAlgorithm, Message: messages[0] }).Mac;
  if (Buffer.compare(Buffer.from(check), createHmac('sha256', key).update(messages[0]).digest()) !== 0) {
    throw new Error('generateMacSync disagrees with node:crypto');
  }

  const paths = [
    {
      name: BASELINE,
      count,
      fn: () => {
        for (let i = 0; i < count; i++) createHmac('sha256', key).update(messages[i]).digest();
      },
    },
    {
      name: 'generateMacSync',
      count,
      fn: () => {
        for (let i = 0; i < count; i++) client.generateMacSync({ KeyId, MacAlgorithm, Message: messages[i] });
      },
    },
    {
      // A principal other than the root (the default policy allows its account): the decision is cached like the root's.
      name: 'generateMacSync as a named principal',
      count,
      setup: () => {
        const shipper = client.forPrincipal?.('arn:aws:iam::111122223333:user/shipper');
        if (shipper === undefined) return undefined; // a build without principals: measured as the root
        shipper.generateMacSync({ KeyId, MacAlgorithm, Message: messages[0] });
        return shipper;
      },
      fn(as) {
        const c = as ?? client;
        for (let i = 0; i < count; i++) c.generateMacSync({ KeyId, MacAlgorithm, Message: messages[i] });
      },
    },
    {
      name: 'verifyMacSync',
      count,
      setup: () => messages.map((m) => client.generateMacSync({ KeyId, MacAlgorithm, Message: m }).Mac),
      fn(macs) {
        for (let i = 0; i < count; i++)
          client.verifyMacSync({ KeyId, MacAlgorithm, Message: messages[i], Mac: macs[i] });
      },
    },
    {
      name: 'generateMac (Promise)',
      count,
      fn: async () => {
        for (let i = 0; i < count; i++) await client.generateMac({ KeyId, MacAlgorithm, Message: messages[i] });
      },
    },
    {
      name: 'generateMacBatch packed',
      count,
      fn: () => client.generateMacBatch({ KeyId, MacAlgorithm, Data: data, Offsets: offsets }),
    },
    {
      name: 'generateMacBatch array',
      count,
      fn: () => client.generateMacBatch({ KeyId, MacAlgorithm, Messages: messages }),
    },
    {
      name: 'generateMacBatchAsync packed',
      count: asyncCount,
      fn: () =>
        client.generateMacBatchAsync({ KeyId, MacAlgorithm, Data: asyncPacked.data, Offsets: asyncPacked.offsets }),
    },
  ];

  const bench = new Bench({
    time: quick ? 200 : 1000,
    iterations: 5,
    warmupTime: quick ? 50 : 200,
    warmupIterations: 3,
  });
  for (const path of paths) {
    const state = path.setup ? path.setup() : undefined;
    bench.add(path.name, () => path.fn(state));
  }
  await bench.run();

  /**
   * @type {{ path: string, size: number, messagesPerCall: number, nsPerMessage: number, messagesPerSecond: number,
   *   spreadPercent: number, cpuNsPerMessage?: number, ratioToNodeCrypto?: number, cpuRatioToNodeCrypto?: number,
   *   target?: number, met?: boolean }[]}
   */
  const rows = bench.tasks.map((task, i) => {
    const result = task.result;
    if (result.state !== 'completed')
      throw new Error(`${task.name}: ${result.state} ${'error' in result ? result.error : ''}`);
    const medianMs = result.latency.p50;
    return {
      path: paths[i].name,
      size,
      messagesPerCall: paths[i].count,
      nsPerMessage: (medianMs * 1e6) / paths[i].count,
      messagesPerSecond: paths[i].count / (medianMs / 1000),
      spreadPercent: (result.latency.mad / medianMs) * 100,
    };
  });
  // CPU time per message as a second opinion on a shared machine: wall-clock
  // medians include time spent waiting for a core, CPU time mostly does not.
  // (Async paths count their worker threads' CPU too.)
  for (const [i, path] of paths.entries()) {
    const state = path.setup ? path.setup() : undefined;
    const budgetMs = quick ? 150 : 500;
    let calls = 0;
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    while (performance.now() - wallStart < budgetMs) {
      await path.fn(state);
      calls++;
    }
    const cpu = process.cpuUsage(cpuStart);
    rows[i].cpuNsPerMessage = ((cpu.user + cpu.system) * 1000) / (calls * path.count);
  }
  const base = /** @type {(typeof rows)[number]} */ (rows.find((r) => r.path === BASELINE));
  const baseline = base.messagesPerSecond;
  const cpuBaseline = /** @type {number} */ (base.cpuNsPerMessage);
  for (const row of rows) {
    row.ratioToNodeCrypto = row.messagesPerSecond / baseline;
    row.cpuRatioToNodeCrypto = cpuBaseline / /** @type {number} */ (row.cpuNsPerMessage);
    const target = TARGETS[row.path];
    if (target !== undefined) {
      row.target = target;
      row.met = row.ratioToNodeCrypto >= target;
    }
  }
  await client.close();
  return rows;
}

function printRows(rows) {
  console.log(`\nKmsHmacClient, ${SIZE} B HMAC-SHA-256 (medians; each figure includes the KMS façade)`);
  console.log(
    `${'path'.padEnd(30)}${'ns/msg'.padStart(10)}${'msg/s'.padStart(12)}${'±MAD'.padStart(7)}${'× node'.padStart(9)}${'cpu ns/msg'.padStart(12)}${'cpu ×'.padStart(8)}  target (wall)`,
  );
  for (const r of rows) {
    const rate =
      r.messagesPerSecond >= 1e6
        ? `${(r.messagesPerSecond / 1e6).toFixed(2)}M`
        : `${(r.messagesPerSecond / 1e3).toFixed(0)}k`;
    const target = r.target === undefined ? '' : `≥ ${r.target}× ${r.met ? 'met' : 'MISSED'}`;
    console.log(
      `${r.path.padEnd(30)}${r.nsPerMessage.toFixed(0).padStart(10)}${rate.padStart(12)}${`${r.spreadPercent.toFixed(0)}%`.padStart(7)}${`${r.ratioToNodeCrypto.toFixed(2)}×`.padStart(9)}${r.cpuNsPerMessage.toFixed(0).padStart(12)}${`${r.cpuRatioToNodeCrypto.toFixed(2)}×`.padStart(8)}  ${target}`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const env = environment();
  printEnvironment(env);
  const rows = await runKmsBench({ quick });
  const fastPath = await runFastPathBench({ quick });
  const keyStores = process.argv.includes('--no-stores') ? undefined : await runKeyStoreBench({ quick });
  if (process.argv.includes('--json'))
    console.log(JSON.stringify({ environment: env, rows, fastPath, keyStores }, null, 2));
  else {
    printRows(rows);
    printFastPathRows(fastPath);
    if (keyStores) printKeyStoreBench(keyStores);
  }
}
