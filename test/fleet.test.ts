/**
 * What a fleet of `kms-hmac serve` replicas on one PostgreSQL is promised,
 * each tested against real processes and a real server (docs/fleet.md):
 *   - DisableKey, ScheduleKeyDeletion, DeleteAlias, UpdateAlias acknowledged by
 *     one replica are obeyed by the others (p99 reported here; the 1 s target
 *     is checked by `npm run bench:server`);
 *   - two replicas creating the same alias at once: one success, one
 *     AlreadyExistsException;
 *   - kill -9 of a replica during CreateKey / ImportKeyMaterial, 100 times:
 *     every key wholly present or absent, no acknowledged key lost;
 *   - PostgreSQL restarted under load: control-plane calls fail with KMS
 *     errors (DependencyTimeoutException 503 when nothing committed), MACs go
 *     on from the snapshot, everything recovers without restarting replicas.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, createHmac, createPublicKey, publicEncrypt } from 'node:crypto';
import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { PostgresKeyStore } from '../src/keystore/index.js';
import { PG_SKIP, usePostgres } from './postgres.js';
import { builtServeEntry, CRED, rawRequest, signKms, type RawResponse } from './server-helpers.js';
import { random } from './support/random.js';
import { killGroup, track } from './support/process-group.js';

const PASS = 'fleet passphrase';
const FAST = { N: 1 << 10, r: 8, p: 1 };
const pg = usePostgres();
let entry = '';
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

beforeAll(() => {
  if (!PG_SKIP) entry = builtServeEntry();
}, 300_000);
afterAll(() => agent.destroy());

interface Replica {
  url: string;
  proc: ChildProcess;
  exited: Promise<unknown>;
  stop(): Promise<void>;
}

const running = new Set<Replica>();
afterEach(async () => {
  await Promise.all([...running].map((r) => r.stop()));
});

/** A `kms-hmac serve` process on the PostgreSQL store at `storeUrl`. */
function replica(storeUrl: string): Promise<Replica> {
  const proc = track(
    spawn(process.execPath, [entry, '--port', '0', '--quiet', '--keystore', storeUrl], {
      env: {
        PATH: process.env.PATH,
        KMS_HMAC_ACCESS_KEY_ID: CRED.accessKeyId,
        KMS_HMAC_SECRET_ACCESS_KEY: CRED.secretAccessKey,
        KMS_HMAC_PASSPHRASE: PASS,
      },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  // A replica that dies by itself is a failure worth seeing (kills are SIGKILL, stops are ours).
  proc.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL') console.error(`[fleet] replica exited by itself (${code}, ${signal}): ${err}`);
  });
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^ ]+)/.exec(out);
      if (!m) return;
      const r: Replica = {
        url: m[1]!,
        proc,
        exited,
        stop: async () => {
          running.delete(r);
          if (proc.exitCode === null && proc.signalCode === null) killGroup(proc, 'SIGKILL');
          await exited;
        },
      };
      running.add(r);
      resolve(r);
    });
    void exited.then((code) => reject(new Error(`replica exited (${String(code)}) before listening: ${err}`)));
  });
}

async function call(r: Replica | string, op: string, body: unknown): Promise<RawResponse> {
  const url = typeof r === 'string' ? r : r.url;
  const text = JSON.stringify(body);
  const headers = await signKms(url, { target: `TrentService.${op}`, body: text });
  return rawRequest(url, { headers, body: text, agent });
}

/** Calls and expects 200; returns the JSON body. */
async function ok(r: Replica, op: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await call(r, op, body);
  if (res.status !== 200) throw new Error(`${op}: ${res.status} ${res.body}`);
  return res.json!;
}

/** A store database with its key store created (fast scrypt: replicas derive with the store's own parameters). */
async function fleetDatabase(): Promise<string> {
  const url = await pg.database();
  await (await PostgresKeyStore.open(url, { passphrase: PASS, scrypt: FAST })).close();
  return url;
}

const MAC = (KeyId: string) => ({
  KeyId,
  MacAlgorithm: 'HMAC_SHA_256',
  Message: Buffer.from('fleet').toString('base64'),
});

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)]!;
}

/** Polls `check` against the replica as fast as it answers; resolves the ms from `since` until it held. */
async function obeyed(since: number, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  for (;;) {
    if (await check()) return performance.now() - since;
    if (performance.now() - since > timeoutMs) throw new Error('not obeyed in time');
  }
}

describe.skipIf(PG_SKIP)('a fleet of serve replicas on one PostgreSQL', () => {
  test('DisableKey, ScheduleKeyDeletion, DeleteAlias and UpdateAlias on one replica are obeyed by the others (p99 reported)', async () => {
    const url = await fleetDatabase();
    const [a, b, c] = await Promise.all([replica(url), replica(url), replica(url)]);
    const times: Record<string, number[]> = {
      DisableKey: [],
      ScheduleKeyDeletion: [],
      DeleteAlias: [],
      UpdateAlias: [],
    };
    const create = async () =>
      (await ok(a, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata as {
        KeyId: string;
        Arn: string;
      };
    const errorOn = (r: Replica, keyId: string, type: string) => async () =>
      (await call(r, 'GenerateMac', MAC(keyId))).json?.__type === type;
    for (let i = 0; i < 10; i++) {
      const k = await create();
      const alias = `alias/fleet-${i}`;
      await ok(a, 'CreateAlias', { AliasName: alias, TargetKeyId: k.KeyId });
      for (const r of [b, c]) await ok(r, 'GenerateMac', MAC(alias)); // every replica uses it now
      const other = await create();

      await ok(a, 'UpdateAlias', { AliasName: alias, TargetKeyId: other.KeyId });
      let t = performance.now();
      for (const r of [b, c])
        times.UpdateAlias!.push(
          await obeyed(t, async () => (await ok(r, 'GenerateMac', MAC(alias))).KeyId === other.Arn),
        );

      await ok(a, 'DeleteAlias', { AliasName: alias });
      t = performance.now();
      for (const r of [b, c]) times.DeleteAlias!.push(await obeyed(t, errorOn(r, alias, 'NotFoundException')));

      await ok(a, 'DisableKey', { KeyId: k.KeyId });
      t = performance.now();
      for (const r of [b, c]) times.DisableKey!.push(await obeyed(t, errorOn(r, k.KeyId, 'DisabledException')));

      await ok(a, 'ScheduleKeyDeletion', { KeyId: other.KeyId, PendingWindowInDays: 7 });
      t = performance.now();
      for (const r of [b, c])
        times.ScheduleKeyDeletion!.push(await obeyed(t, errorOn(r, other.KeyId, 'KMSInvalidStateException')));
    }
    const all = Object.values(times).flat();
    const line = Object.entries(times).map(
      ([op, xs]) => `${op} p50 ${percentile(xs, 0.5).toFixed(1)} / p99 ${percentile(xs, 0.99).toFixed(1)} ms`,
    );
    console.log(
      `[fleet] propagation to 2 other replicas, ${all.length} measurements: ${line.join('; ')}; all p99 ${percentile(all, 0.99).toFixed(1)} ms`,
    );
    // The 1 s promise is measured by `npm run bench:server` (targets live in benchmarks); this bound
    // only catches propagation that is broken or waits for a poll, whatever the machine's load.
    expect(percentile(all, 0.99)).toBeLessThan(5_000);
  }, 180_000);

  test('a key created on one replica is usable on another as soon as CreateKey returned (the miss asks the database)', async () => {
    const url = await fleetDatabase();
    const [a, b] = await Promise.all([replica(url), replica(url)]);
    for (let i = 0; i < 20; i++) {
      const k = (await ok(a, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata as {
        KeyId: string;
      };
      expect((await call(b, 'GenerateMac', MAC(k.KeyId))).status).toBe(200);
    }
  }, 120_000);

  test('two replicas creating the same alias at the same moment: one success, one AlreadyExistsException', async () => {
    const url = await fleetDatabase();
    const [a, b] = await Promise.all([replica(url), replica(url)]);
    for (let i = 0; i < 20; i++) {
      const [ka, kb] = await Promise.all(
        [a, b].map(
          async (r) =>
            (
              (await ok(r, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata as {
                KeyId: string;
              }
            ).KeyId,
        ),
      );
      const alias = `alias/race-${i}`;
      const res = await Promise.all([
        call(a, 'CreateAlias', { AliasName: alias, TargetKeyId: ka }),
        call(b, 'CreateAlias', { AliasName: alias, TargetKeyId: kb }),
      ]);
      expect(res.map((r) => r.status).sort()).toEqual([200, 400]);
      expect(res.find((r) => r.status === 400)!.json!.__type).toBe('AlreadyExistsException');
    }
  }, 120_000);

  test('kill -9 of a replica during CreateKey / ImportKeyMaterial, 100 times: every key wholly present or absent, nothing acknowledged lost', async () => {
    const url = await fleetDatabase();
    const acked = new Map<string, Buffer | null>(); // key id → imported material (null: generated by CreateKey)
    const attempted = new Map<string, Buffer>(); // EXTERNAL keys created, with the material whose import may or may not have landed
    let kills = 0;
    const lane = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        const r = await replica(url);
        // Killed 0–400 ms after its first acknowledged call: requests of both kinds are in flight then.
        let firstAck!: () => void;
        const acking = new Promise<void>((res) => (firstAck = res));
        let alive = true;
        const worker = async () => {
          while (alive) {
            try {
              if (random.float() < 0.5) {
                const md = (await ok(r, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))
                  .KeyMetadata as { KeyId: string };
                acked.set(md.KeyId, null);
                firstAck();
              } else {
                const md = (
                  await ok(r, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL' })
                ).KeyMetadata as { KeyId: string };
                const material = random.bytes(32);
                attempted.set(md.KeyId, material);
                const p = (await ok(r, 'GetParametersForImport', {
                  KeyId: md.KeyId,
                  WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
                  WrappingKeySpec: 'RSA_2048',
                })) as { PublicKey: string; ImportToken: string };
                const wrapped = publicEncrypt(
                  {
                    key: createPublicKey({ key: Buffer.from(p.PublicKey, 'base64'), format: 'der', type: 'spki' }),
                    padding: constants.RSA_PKCS1_OAEP_PADDING,
                    oaepHash: 'sha256',
                  },
                  material,
                );
                await ok(r, 'ImportKeyMaterial', {
                  KeyId: md.KeyId,
                  ImportToken: p.ImportToken,
                  EncryptedKeyMaterial: wrapped.toString('base64'),
                  ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
                });
                acked.set(md.KeyId, material);
                firstAck();
              }
            } catch {
              return; // the replica is gone
            }
          }
        };
        const killer = (async () => {
          await Promise.race([acking, new Promise((res) => setTimeout(res, 2_000))]);
          await new Promise((res) => setTimeout(res, random.float() * 400));
          r.proc.kill('SIGKILL');
          alive = false;
          kills++;
        })();
        await Promise.all([worker(), worker(), killer]);
        await r.stop();
      }
    };
    const t0 = Date.now();
    await Promise.all([lane(25), lane(25), lane(25), lane(25)]);
    expect(new Set([...acked.values()].map((m) => m === null)).size).toBe(2); // both kinds were acknowledged
    // Check through a fresh client of the same store: the database is the truth.
    const client = new KmsHmacClient({ keyStore: url, keyStoreOptions: { passphrase: PASS } });
    await client.ready();
    const store = client.keyStore;
    let imported = 0;
    for (const [id, material] of acked) {
      const rec = store.getKey(id);
      expect(rec, `acknowledged key ${id} lost`).toBeDefined();
      expect(rec!.keyState).toBe('Enabled');
      expect(rec!.keyMaterial).toHaveLength(32);
      if (material) {
        imported++;
        const mac = client.generateMacSync({ KeyId: id, MacAlgorithm: 'HMAC_SHA_256', Message: 'm' }).Mac;
        expect(Buffer.from(mac)).toEqual(createHmac('sha256', material).update('m').digest());
      }
    }
    for (const rec of store.listKeys()) {
      // Unacknowledged: present only as a whole key — generated material, or an import that landed whole, or none yet.
      if (rec.origin === 'AWS_KMS') expect(rec.keyMaterial).toHaveLength(32);
      else if (rec.keyState === 'PendingImport') expect(rec.keyMaterial).toBeUndefined();
      else expect(Buffer.from(rec.keyMaterial!)).toEqual(attempted.get(rec.keyId));
    }
    console.log(
      `[fleet] ${kills} kills in ${Date.now() - t0} ms: ${acked.size} acknowledged keys (${imported} imported) all present; ${store.listKeys().length} keys in the store`,
    );
    expect(kills).toBeGreaterThanOrEqual(100);
    await client.close();
  }, 600_000);
});

describe.skipIf(PG_SKIP)('PostgreSQL restarted under load', () => {
  const own = usePostgres();

  test('control-plane calls fail with KMS errors, MACs go on from the snapshot, everything recovers without restarting replicas', async () => {
    const url = await own.database();
    await (await PostgresKeyStore.open(url, { passphrase: PASS, scrypt: FAST })).close();
    const [a, b] = await Promise.all([replica(url), replica(url)]);
    const key = (
      (await ok(a, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata as {
        KeyId: string;
      }
    ).KeyId;
    await ok(b, 'GenerateMac', MAC(key));

    const macs = { ok: 0, failed: [] as string[] };
    const creates: { status: number; type?: string; keyId?: string }[] = [];
    let load = true;
    const macLoop = async (r: Replica) => {
      while (load) {
        const res = await call(r, 'GenerateMac', MAC(key));
        if (res.status === 200) macs.ok++;
        else macs.failed.push(`${res.status} ${res.body}`);
      }
    };
    const createLoop = async (r: Replica) => {
      while (load) {
        const t = performance.now();
        const res = await call(r, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
        creates.push({
          status: res.status,
          type: res.json?.__type as string | undefined,
          keyId: (res.json?.KeyMetadata as { KeyId?: string } | undefined)?.KeyId,
        });
        await new Promise((r2) => setTimeout(r2, Math.max(0, 20 - (performance.now() - t))));
      }
    };
    const loops = Promise.all([macLoop(a), macLoop(b), createLoop(a), createLoop(b)]);
    await new Promise((r) => setTimeout(r, 300));
    await own.cluster().stop('fast');
    const during = creates.length;
    await new Promise((r) => setTimeout(r, 1_500));
    await own.cluster().start();
    const restarted = Date.now();
    // Both replicas take writes again, by themselves.
    const recovered = async (r: Replica) => {
      for (;;) {
        const res = await call(r, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
        if (res.status === 200) return Date.now() - restarted;
        if (Date.now() - restarted > 20_000) throw new Error(`no recovery: ${res.status} ${res.body}`);
        await new Promise((r2) => setTimeout(r2, 50));
      }
    };
    const recovery = await Promise.all([recovered(a), recovered(b)]);
    load = false;
    await loops;

    const outage = creates.slice(during).filter((c) => c.status !== 200);
    const types = new Set(outage.map((c) => `${c.status} ${c.type}`));
    console.log(
      `[fleet] PostgreSQL down ~1.5 s: ${macs.ok} MACs answered, ${macs.failed.length} failed; CreateKey answers during the outage: ${[...types].join(', ')}; ` +
        `writes back ${recovery.join(' / ')} ms after the restart`,
    );
    expect(macs.failed).toEqual([]);
    expect(outage.length).toBeGreaterThan(0);
    for (const t of types) expect(t).toMatch(/^(503 DependencyTimeoutException|400 KMSInternalException)$/);
    expect(types.has('503 DependencyTimeoutException')).toBe(true);
    // Nothing acknowledged was lost, and changes propagate again.
    const check = await PostgresKeyStore.open(url, { passphrase: PASS });
    for (const c of creates) if (c.status === 200) expect(check.getKey(c.keyId!)).toBeDefined();
    await check.close();
    await ok(a, 'DisableKey', { KeyId: key });
    const t = performance.now();
    await obeyed(t, async () => (await call(b, 'GenerateMac', MAC(key))).json?.__type === 'DisabledException');
  }, 180_000);
});
