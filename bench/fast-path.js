#!/usr/bin/env node
// node bench/fast-path.js [--quick] [--json]   (also run by `npm run bench:kms`)
//
// createFastPathClient: GenerateMac answered locally (the key's lease valid)
// against GenerateMac forwarded to the remote, both through the same fast-path
// client, a real @aws-sdk/client-kms KMSClient, to `kms-hmac serve` on loopback
// (a child process standing in for AWS KMS; real AWS adds a network round trip
// to every forwarded call). 64-byte messages, HMAC-SHA-256, one call at a time
// (latency) and 32 in flight (throughput). Needs dist/ (`npm run build:ts`).
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import {
  CreateKeyCommand,
  GenerateMacCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { createFastPathClient, KmsHmacClient } from '../dist/index.js';
import { startChild, stopChild } from './child.js';
import { environment, printEnvironment } from './env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SERVE = join(ROOT, 'dist/cli/serve.js');
const CRED = { accessKeyId: 'AKIDBENCHFAST', secretAccessKey: 'bench-fast-path-secret' };
const IN_FLIGHT = 32;

/** An EXTERNAL key in the remote with material the local copy also gets, made the way a user makes one. */
async function importedKey(kms) {
  const { KeyMetadata } = await kms.send(
    new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL' }),
  );
  const params = await kms.send(
    new GetParametersForImportCommand({
      KeyId: KeyMetadata.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
      WrappingKeySpec: 'RSA_2048',
    }),
  );
  const material = randomBytes(32);
  const EncryptedKeyMaterial = publicEncrypt(
    {
      key: createPublicKey({ key: Buffer.from(params.PublicKey), format: 'der', type: 'spki' }),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    },
    material,
  );
  await kms.send(
    new ImportKeyMaterialCommand({
      KeyId: KeyMetadata.KeyId,
      ImportToken: params.ImportToken,
      EncryptedKeyMaterial,
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
    }),
  );
  return { arn: KeyMetadata.Arn, material };
}

export async function runFastPathBench({ quick = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-bench-fast-path-'));
  const { proc, ready: url } = await startChild(
    [SERVE, '--port', '0', '--quiet', '--keystore', join(dir, 'remote.json')],
    /listening on (http:\/\/[^ ]+)/,
    CRED,
  );
  const kms = new KMSClient({ endpoint: url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
  const local = new KmsHmacClient();
  const client = createFastPathClient(kms, local);
  try {
    const held = await importedKey(kms);
    await local.importRemoteKey({ RemoteArn: held.arn, KeySpec: 'HMAC_256', KeyMaterial: held.material });
    // A key with no local copy: every GenerateMac for it goes to the remote.
    const { KeyMetadata: remoteOnly } = /** @type {{ KeyMetadata: { Arn: string } }} */ (
      await kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))
    );
    const lease = await client.fastPath.probe(held.arn);
    if (lease?.lease !== 'valid') throw new Error(`no lease for the local copy: ${JSON.stringify(lease)}`);

    const messages = Array.from({ length: 256 }, () => randomBytes(64));
    let i = 0;
    const command = (KeyId) =>
      new GenerateMacCommand({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: messages[i++ & 255] });
    // Sanity: the local answer is the remote's MAC, byte for byte.
    const a = await client.send(
      new GenerateMacCommand({ KeyId: held.arn, MacAlgorithm: 'HMAC_SHA_256', Message: messages[0] }),
    );
    const b = await kms.send(
      new GenerateMacCommand({ KeyId: held.arn, MacAlgorithm: 'HMAC_SHA_256', Message: messages[0] }),
    );
    if (
      Buffer.compare(Buffer.from(/** @type {Uint8Array} */ (a.Mac)), Buffer.from(/** @type {Uint8Array} */ (b.Mac))) !==
      0
    )
      throw new Error('local and remote MACs differ');

    const paths = [
      { name: 'local (lease valid), 1 in flight', keyId: held.arn, inFlight: 1, local: true },
      { name: 'forwarded to serve, 1 in flight', keyId: remoteOnly.Arn, inFlight: 1, local: false },
      { name: `local (lease valid), ${IN_FLIGHT} in flight`, keyId: held.arn, inFlight: IN_FLIGHT, local: true },
      { name: `forwarded to serve, ${IN_FLIGHT} in flight`, keyId: remoteOnly.Arn, inFlight: IN_FLIGHT, local: false },
    ];
    const bench = new Bench({
      time: quick ? 300 : 1500,
      iterations: 10,
      warmupTime: quick ? 100 : 300,
      warmupIterations: 5,
    });
    for (const p of paths) {
      bench.add(p.name, () =>
        p.inFlight === 1
          ? client.send(command(p.keyId))
          : Promise.all(Array.from({ length: p.inFlight }, () => client.send(command(p.keyId)))),
      );
    }
    const before = client.fastPathStats;
    await bench.run();
    const after = client.fastPathStats;
    // Every "local" call stayed local and every "forwarded" one went out: the figures measure what they say.
    if (after.keys[held.arn].forwarded !== before.keys[held.arn].forwarded || after.keys[held.arn].lease !== 'valid') {
      throw new Error(`the local path forwarded calls: ${JSON.stringify(after.keys[held.arn])}`);
    }
    /** @type {{ path: string, inFlight: number, local: boolean, medianUsPerBatch: number, callsPerSecond: number, spreadPercent: number, ratioToForwarded?: number }[]} */
    const rows = bench.tasks.map((task, k) => {
      const r = task.result;
      if (r.state !== 'completed') throw new Error(`${task.name}: ${r.state} ${'error' in r ? r.error : ''}`);
      const medianMs = r.latency.p50;
      return {
        path: paths[k].name,
        inFlight: paths[k].inFlight,
        local: paths[k].local,
        medianUsPerBatch: medianMs * 1000,
        callsPerSecond: paths[k].inFlight / (medianMs / 1000),
        spreadPercent: (r.latency.mad / medianMs) * 100,
      };
    });
    for (const row of rows) {
      const forwarded = /** @type {(typeof rows)[number]} */ (
        rows.find((r) => !r.local && r.inFlight === row.inFlight)
      );
      row.ratioToForwarded = row.callsPerSecond / forwarded.callsPerSecond;
    }
    return rows;
  } finally {
    client.destroy();
    await local.close();
    await stopChild(proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printFastPathRows(rows) {
  console.log(
    '\nFast path: GenerateMac (64 B, HMAC-SHA-256) through createFastPathClient + @aws-sdk/client-kms, remote = kms-hmac serve on loopback (medians)',
  );
  console.log(
    `${'path'.padEnd(36)}${'µs/batch'.padStart(10)}${'calls/s'.padStart(11)}${'±MAD'.padStart(7)}${'× forwarded'.padStart(13)}`,
  );
  for (const r of rows) {
    const rate =
      r.callsPerSecond >= 1e6 ? `${(r.callsPerSecond / 1e6).toFixed(2)}M` : `${(r.callsPerSecond / 1e3).toFixed(1)}k`;
    console.log(
      `${r.path.padEnd(36)}${r.medianUsPerBatch.toFixed(1).padStart(10)}${rate.padStart(11)}${`${r.spreadPercent.toFixed(0)}%`.padStart(7)}${`${r.ratioToForwarded.toFixed(1)}×`.padStart(13)}`,
    );
  }
  console.log(
    '# forwarded calls here cross loopback to a local server; against AWS KMS each adds a network round trip.',
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const env = environment();
  printEnvironment(env);
  const rows = await runFastPathBench({ quick });
  if (process.argv.includes('--json')) console.log(JSON.stringify({ environment: env, rows }, null, 2));
  else printFastPathRows(rows);
}
