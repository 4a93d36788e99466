/**
 * The PostgreSQL store's edges (issue 26), against real PostgreSQL clusters
 * (scripts/postgres-cluster.js; one of them with TLS on TCP):
 * - a URL's password, in its user info or a `password` parameter, is never
 *   shown: describeKeyStore, the store's url, JSON, inspect, health, errors,
 *   `serve`'s listening line;
 * - KMS_HMAC_PG_REQUIRE_TLS=1 refuses, before connecting, a URL that does not
 *   ask for a verified TLS connection; `sslmode=verify-full` with the CA
 *   connects over TLS, and a server the CA did not certify is refused;
 * - replicas re-read the change log on a timer as well as on NOTIFY: with
 *   every notification dropped on the wire (a proxy that removes them), a
 *   DisableKey still reaches a replica within `pollIntervalMs`;
 * - a lost database makes health() degraded, told once, and its return ok.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { startPostgres, type PostgresCluster } from '../scripts/postgres-cluster.js';
import {
  describeKeyStore,
  KeyStoreError,
  PostgresKeyStore,
  type KeyStoreHealth,
  type PostgresKeyStoreOptions,
} from '../src/keystore/index.js';
import { key } from './keystore-contract.js';
import { PG_SKIP, usePostgres } from './postgres.js';
import { startServe, stopServe } from './server-helpers.js';

const FAST = { N: 1 << 10, r: 8, p: 1 };
const opened: PostgresKeyStore[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
async function open(url: string, options: PostgresKeyStoreOptions = {}): Promise<PostgresKeyStore> {
  const s = await PostgresKeyStore.open(url, { passphrase: 'pw', scrypt: FAST, queryTimeoutMs: 2_000, ...options });
  opened.push(s);
  return s;
}
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/**
 * A TCP proxy to the cluster's unix socket that passes everything but the
 * server's NotificationResponse messages ('A'): someone on the network
 * suppressing NOTIFY.
 */
async function notifyDroppingProxy(
  cluster: PostgresCluster,
): Promise<{ port: number; dropped: () => number; close: () => void }> {
  let dropped = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(join(cluster.socketDir, `.s.PGSQL.${cluster.port}`));
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    let buf = Buffer.alloc(0);
    upstream.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const out: Buffer[] = [];
      while (buf.length >= 5) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 1 + len) break;
        if (buf[0] === 0x41) dropped++;
        else out.push(buf.subarray(0, 1 + len));
        buf = buf.subarray(1 + len);
      }
      if (out.length) client.write(Buffer.concat(out));
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    dropped: () => dropped,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.skipIf(PG_SKIP)('PostgreSQL store URLs and NOTIFY', () => {
  const pg = usePostgres();

  test('a password in the user info or in ?password= is never shown', async () => {
    const url = await pg.database();
    const secret = url
      .replace('postgres://postgres@', 'postgres://postgres:hunter2-userinfo@')
      .replace('?', '?password=hunter3-param&');
    const shown = [describeKeyStore(secret)];
    const s = await open(secret);
    shown.push(s.url, JSON.stringify(s), String(s), inspect(s), JSON.stringify(s.health()));
    const dead = new PostgresKeyStore('postgres://u:hunter2-userinfo@127.0.0.1:1/db?password=hunter3-param', {
      queryTimeoutMs: 500,
    });
    const err = (await dead.ready().catch((e: Error) => e)) as Error;
    shown.push(err.message, String(err), dead.url);
    for (const text of shown) {
      expect(text).not.toMatch(/hunter[23]/);
      expect(text).toMatch(/\*\*\*/);
    }
    expect(describeKeyStore(secret)).toBe(
      secret.replace(':hunter2-userinfo@', ':***@').replace('password=hunter3-param', 'password=***'),
    );
    // And `serve`'s listening line.
    const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-pgurl-'));
    try {
      const child = await startServe(['--keystore', secret], dir, { KMS_HMAC_PASSPHRASE: 'pw' });
      await stopServe(child);
      expect(child.stdout()).toContain(`key store ${describeKeyStore(secret)},`);
      expect(child.stdout() + child.stderr()).not.toMatch(/hunter[23]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a replica whose NOTIFYs are dropped on the wire still sees a DisableKey within pollIntervalMs', async () => {
    const url = await pg.database();
    const db = url.slice(url.lastIndexOf('/') + 1, url.indexOf('?'));
    const writer = await open(url);
    const k = key();
    await writer.transact((tx) => tx.insertKey(k));
    const proxy = await notifyDroppingProxy(pg.cluster());
    try {
      const through = `postgres://postgres@127.0.0.1:${proxy.port}/${db}`;
      const polling = await open(through, { pollIntervalMs: 300 });
      const deaf = await open(through, { pollIntervalMs: 0 });
      expect(polling.getKey(k.keyId)!.keyState).toBe('Enabled');
      await writer.transact((tx) => tx.replaceKey({ ...tx.getKey(k.keyId)!, keyState: 'Disabled' }));
      const ms = await until(
        'the polling replica sees it',
        () => polling.getKey(k.keyId)!.keyState === 'Disabled',
        5_000,
      );
      console.log(`[pg-edges] DisableKey reached the replica without NOTIFY in ${Math.round(ms)} ms (poll 300 ms)`);
      expect(ms).toBeLessThan(300 + 1_500); // a poll and its catch-up, on a shared machine
      await new Promise((r) => setTimeout(r, 1_000));
      expect(proxy.dropped()).toBeGreaterThan(0); // the notifications were sent, and removed
      expect(deaf.getKey(k.keyId)!.keyState).toBe('Enabled'); // NOTIFY alone: the change never arrives
    } finally {
      proxy.close();
    }
  });
});

describe.skipIf(PG_SKIP)('a lost database', () => {
  const pg = usePostgres();

  test('makes health() degraded, told once, while MACs go on from the snapshot; the return is told once', async () => {
    const url = await pg.database();
    const changes: KeyStoreHealth[] = [];
    const s = await open(url, { onHealthChange: (h) => changes.push(h) });
    const k = key();
    await s.transact((tx) => tx.insertKey(k));
    expect(s.health().state).toBe('ok');
    await pg.cluster().stop('fast');
    await until('degraded', () => s.health().state === 'degraded');
    await expect(s.transact((tx) => tx.insertKey(key()))).rejects.toThrow(/unavailable/);
    expect(s.getKey(k.keyId)).toBeDefined();
    expect(changes.map((h) => h.state)).toEqual(['degraded']);
    expect(changes[0]!.lastError?.name).toBe('KeyStoreUnavailableError');
    await pg.cluster().start();
    await until('recovered', () => s.health().state === 'ok', 20_000);
    expect(changes.map((h) => h.state)).toEqual(['degraded', 'ok']);
    await s.transact((tx) => tx.insertKey(key()));
  });
});

describe.skipIf(PG_SKIP)('KMS_HMAC_PG_REQUIRE_TLS=1', () => {
  let cluster: PostgresCluster | undefined;
  let dir = '';
  beforeAll(async () => {
    cluster = await startPostgres({ tls: true });
    dir = mkdtempSync(join(tmpdir(), 'kms-hmac-pgtls-'));
  }, 120_000);
  afterAll(async () => {
    await cluster?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('refuses a URL that does not ask for verified TLS, before connecting; verify-full with the CA connects over TLS', async () => {
    const c = cluster!;
    await c.createDatabase('tls');
    vi.stubEnv('KMS_HMAC_PG_REQUIRE_TLS', '1');
    for (const [query, why] of [
      ['', /does not ask for TLS/],
      ['sslmode=disable', /sslmode=disable is not a verified TLS connection/],
      ['sslmode=require', /sslmode=require does not verify the server's name/],
      ['sslmode=no-verify', /sslmode=no-verify is not a verified TLS connection/],
    ] as const) {
      let err: unknown;
      try {
        new PostgresKeyStore(c.tcpUrl('tls', query));
      } catch (e) {
        err = e;
      }
      expect(err, query).toBeInstanceOf(KeyStoreError);
      expect((err as KeyStoreError).code).toBe('TLS_REQUIRED');
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).toMatch(/add \?sslmode=verify-full&sslrootcert=/);
    }
    // The form docs/fleet.md shows.
    const s = await open(c.tcpUrl('tls', `sslmode=verify-full&sslrootcert=${c.caFile}`));
    await s.transact((tx) => tx.insertKey(key()));
    const ssl = await c.psql(
      "SELECT string_agg(DISTINCT ssl::text, ',') FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'kms-hmac'",
    );
    expect(ssl).toBe('true');
    // A unix socket never leaves the machine: allowed.
    await open(c.url('tls'));
    // A CA that did not sign the server's certificate: refused by the verification.
    const otherCa = join(dir, 'other-ca.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=other',
        '-keyout',
        join(dir, 'other.key'),
        '-out',
        otherCa,
      ],
      {
        stdio: 'ignore',
      },
    );
    const wrong = new PostgresKeyStore(c.tcpUrl('tls', `sslmode=verify-full&sslrootcert=${otherCa}`), {
      passphrase: 'pw',
      scrypt: FAST,
      queryTimeoutMs: 2_000,
    });
    await expect(wrong.ready()).rejects.toThrow(/certificate/);
    await wrong.close();
  });
});
