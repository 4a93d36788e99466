/**
 * /healthz and /readyz: answered on the serving port before the Host check
 * and SigV4 (a Kubernetes probe addresses the pod by IP and signs nothing),
 * and on the metrics port; they say one word and nothing else. Readiness
 * follows the key store's health: `degraded` while PostgreSQL is stopped
 * (200 by default, 503 with degradedReady false) and `ready` again once it
 * is back; `tampered` is not ready; a draining server is not ready.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { MemoryKeyStore, type KeyStoreHealth } from '../src/keystore/index.js';
import { startServer, type StartedServer } from '../src/server/index.js';
import { PG_SKIP, usePostgres } from './postgres.js';
import { CRED, rawRequest, signedCall } from './server-helpers.js';

const started: StartedServer[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await s.close();
});
async function serve(o: Parameters<typeof startServer>[0]): Promise<StartedServer> {
  const s = await startServer({ port: 0, credentials: [CRED], log: false, ...o });
  started.push(s);
  return s;
}

async function probe(url: string, path: string, host?: string) {
  const r = await rawRequest(url, { method: 'GET', path, ...(host ? { headers: { host } } : {}) });
  return { status: r.status, body: r.json, headers: r.headers };
}

describe('probes on the serving port', () => {
  it('answer before the Host check and SigV4, with one word; everything else is still checked', async () => {
    const s = await serve({});
    for (const host of ['10.1.2.3:4599', 'evil.example', undefined]) {
      expect(await probe(s.url, '/healthz', host)).toMatchObject({ status: 200, body: { status: 'up' } });
      const r = await probe(s.url, '/readyz', host);
      expect(r).toMatchObject({ status: 200, body: { status: 'ready' } });
      expect(r.headers['cache-control']).toBe('no-store');
    }
    const head = await rawRequest(s.url, { method: 'HEAD', path: '/readyz' });
    expect([head.status, head.body]).toEqual([200, '']);
    // Any other GET, or a POST to a probe path, goes through the Host check and the protocol as before.
    expect((await probe(s.url, '/metrics', 'evil.example')).status).toBe(403);
    expect((await probe(s.url, '/healthz?x=1')).status).toBe(405);
    const post = await rawRequest(s.url, { method: 'POST', path: '/healthz', body: '{}' });
    expect(post.status).toBe(404);
    const keys = await signedCall(s.url, 'ListKeys', {});
    expect(keys.status).toBe(200);
  });

  it('tampered is not ready (503); the answer names no store and no error', async () => {
    class Tampered extends MemoryKeyStore {
      override health(): KeyStoreHealth {
        return {
          store: '/secret/path/keystore.db',
          state: 'tampered',
          reloadFailures: 3,
          lastError: { name: 'KeyStoreCorruptError', message: 'the store failed authentication', at: Date.now() },
        };
      }
    }
    const s = await serve({ keyStore: new Tampered(), metricsPort: 0 });
    for (const url of [s.url, s.metricsUrl!]) {
      const r = await rawRequest(url, { method: 'GET', path: '/readyz' });
      expect(r.status).toBe(503);
      expect(r.body).toBe('{"status":"tampered"}');
      expect((await probe(url, '/healthz')).status).toBe(200);
    }
  });

  it('a draining server answers /readyz 503 "draining" (and closes the probe connection) while requests finish', async () => {
    const s = await serve({ metricsPort: 0, shutdownTimeoutMs: 5000 });
    // A request whose body never ends holds the drain open until the timeout.
    const { connect } = await import('node:net');
    const u = new URL(s.url);
    const sock = connect(Number(u.port), u.hostname);
    const headers = await (await import('./server-helpers.js')).signKms(s.url, {
      target: 'TrentService.ListKeys',
      body: '{}',
    });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(
      `POST / HTTP/1.1\r\n${Object.entries({ ...headers, 'content-length': '2' })
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n')}\r\n\r\n{`,
    );
    await new Promise((r) => setTimeout(r, 100));
    const closing = s.close();
    await new Promise((r) => setTimeout(r, 100));
    const r = await probe(s.metricsUrl!, '/readyz');
    expect(r).toMatchObject({ status: 503, body: { status: 'draining' } });
    expect(r.headers.connection).toBe('close');
    expect((await probe(s.metricsUrl!, '/healthz')).status).toBe(200);
    sock.end('}');
    sock.on('data', () => {});
    sock.on('error', () => {});
    await closing;
    started.splice(started.indexOf(s), 1);
  });
});

describe.skipIf(PG_SKIP)('readiness while PostgreSQL stops and comes back', () => {
  const pg = usePostgres();

  it('degraded when the database is unreachable (MACs go on), ready again once it is back; degradedReady false → 503', async () => {
    const url = await pg.database();
    const tolerant = await serve({ keyStore: url, metricsPort: 0 });
    const strict = await serve({ keyStore: url, degradedReady: false });
    const created = await signedCall(tolerant.url, 'CreateKey', {
      KeySpec: 'HMAC_256',
      KeyUsage: 'GENERATE_VERIFY_MAC',
    });
    const KeyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
    const mac = { KeyId, Message: 'cmVhZHk=', MacAlgorithm: 'HMAC_SHA_256' };
    expect((await signedCall(strict.url, 'GenerateMac', mac)).status).toBe(200);
    for (const u of [tolerant.url, tolerant.metricsUrl!, strict.url])
      expect(await probe(u, '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });

    await pg.cluster().stop('fast');
    const readyz = async (u: string) => (await probe(u, '/readyz')).body?.status;
    await expect.poll(() => readyz(tolerant.url), { timeout: 30_000, interval: 100 }).toBe('degraded');
    await expect.poll(() => readyz(strict.url), { timeout: 30_000, interval: 100 }).toBe('degraded');
    expect(await probe(tolerant.url, '/readyz')).toMatchObject({ status: 200, body: { status: 'degraded' } });
    expect(await probe(tolerant.metricsUrl!, '/readyz')).toMatchObject({ status: 200, body: { status: 'degraded' } });
    expect(await probe(strict.url, '/readyz')).toMatchObject({ status: 503, body: { status: 'degraded' } });
    expect((await probe(strict.url, '/healthz')).status).toBe(200);
    // Degraded: MACs from the snapshot.
    const during = await signedCall(strict.url, 'GenerateMac', mac);
    expect(during.status, during.body).toBe(200);
    const metrics = await (await fetch(`${tolerant.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/^kms_hmac_keystore_state\{state="degraded"\} 1$/m);

    await pg.cluster().start();
    await expect.poll(() => readyz(tolerant.url), { timeout: 30_000, interval: 100 }).toBe('ready');
    await expect.poll(() => readyz(strict.url), { timeout: 30_000, interval: 100 }).toBe('ready');
    expect((await probe(strict.url, '/readyz')).status).toBe(200);
    expect(
      Number(
        /^kms_hmac_keystore_reload_failures_total (\d+)$/m.exec(
          await (await fetch(`${tolerant.metricsUrl}/metrics`)).text(),
        )![1],
      ),
    ).toBeGreaterThan(0);
  }, 120_000);
});

describe('the library without a store of its own', () => {
  it('an injected client without keyStoreHealth is taken to be ready', async () => {
    const client = new KmsHmacClient();
    const s = await serve({ client: { generateMac: client.generateMac.bind(client) } });
    expect(await probe(s.url, '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
    await client.close();
  });
});
