/**
 * `/metrics` (prom-client) on the metrics port: scraped during load and
 * after it, the counts equal the requests sent, by operation and exception;
 * strangers are counted before their body is read; label values are
 * bounded (no key id, access key id or address); with --workers the primary
 * sums the workers'; a fast-path client's lease states and answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { Registry } from 'prom-client';
import { KmsHmacClient } from '../src/client/client.js';
import { createFastPathClient } from '../src/client/fast-path.js';
import { registerFastPathMetrics, startServer, type StartedServer } from '../src/server/index.js';
import { CRED, rawRequest, signedCall, startServe, stopServe } from './server-helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-metrics-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Samples of the exposition text: `name{a="x",b="y"}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(metricsUrl: string): Promise<{ text: string; values: Map<string, number>; type: string }> {
  const res = await fetch(`${metricsUrl}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, values: samples(text), type: res.headers.get('content-type') ?? '' };
}

const count = (v: Map<string, number>, op: string, exc: string) =>
  v.get(`kms_hmac_requests_total{operation="${op}",exception="${exc}"}`) ?? 0;

describe('metrics, one process', () => {
  let server: StartedServer;
  beforeAll(async () => {
    server = await startServer({ port: 0, metricsPort: 0, credentials: [CRED], log: false });
  });
  afterAll(() => server?.close());

  it('a scrape during load, and one after: counts equal the requests sent, by operation and exception', async () => {
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const created = await signedCall(server.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const keyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const N = 400;
    let sent = 0;
    const during: Map<string, number>[] = [];
    const loops = Array.from({ length: 8 }, async () => {
      while (sent < N) {
        sent++;
        const r = await signedCall(
          server.url,
          'GenerateMac',
          { KeyId: keyId, Message: 'bWV0cmljcw==', MacAlgorithm: 'HMAC_SHA_256' },
          { agent },
        );
        expect(r.status, r.body).toBe(200);
      }
    });
    const scraper = (async () => {
      while (sent < N) {
        during.push((await scrape(server.metricsUrl!)).values);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all([...loops, scraper]);
    // Errors by exception: a wrong MAC, an unknown key, a malformed body.
    for (let i = 0; i < 7; i++) {
      const r = await signedCall(
        server.url,
        'VerifyMac',
        {
          KeyId: keyId,
          Message: 'bWV0cmljcw==',
          Mac: Buffer.alloc(32).toString('base64'),
          MacAlgorithm: 'HMAC_SHA_256',
        },
        { agent },
      );
      expect(r.json!.__type).toBe('KMSInvalidMacException');
    }
    for (let i = 0; i < 5; i++) {
      const r = await signedCall(
        server.url,
        'GenerateMac',
        { KeyId: 'alias/missing', Message: 'AA==', MacAlgorithm: 'HMAC_SHA_256' },
        { agent },
      );
      expect(r.json!.__type).toBe('NotFoundException');
    }
    // Strangers: a foreign Host, unknown credentials, none at all.
    for (let i = 0; i < 3; i++) {
      const r = await signedCall(server.url, 'ListKeys', {}, { headers: { host: 'evil.example' } });
      expect(r.status).toBe(403);
    }
    for (let i = 0; i < 4; i++) {
      const r = await signedCall(
        server.url,
        'ListKeys',
        {},
        {
          credential: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'not-a-known-secret-at-all' },
        },
      );
      expect(r.json!.__type).toBe('UnrecognizedClientException');
    }
    for (let i = 0; i < 2; i++) {
      const r = await rawRequest(server.url, { headers: { 'x-amz-target': 'TrentService.ListKeys' }, body: '{}' });
      expect(r.json!.__type).toBe('MissingAuthenticationTokenException');
    }
    agent.destroy();

    const { text, values: v, type } = await scrape(server.metricsUrl!);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(count(v, 'CreateKey', 'none')).toBe(1);
    expect(count(v, 'GenerateMac', 'none')).toBe(N);
    expect(count(v, 'VerifyMac', 'KMSInvalidMacException')).toBe(7);
    expect(count(v, 'GenerateMac', 'NotFoundException')).toBe(5);
    expect(count(v, 'none', 'AccessDeniedException')).toBe(3);
    expect(count(v, 'none', 'UnrecognizedClientException')).toBe(4);
    expect(count(v, 'none', 'MissingAuthenticationTokenException')).toBe(2);
    expect(v.get('kms_hmac_request_duration_seconds_count{operation="GenerateMac"}')).toBe(N + 5);
    expect(v.get('kms_hmac_request_duration_seconds_bucket{le="+Inf",operation="GenerateMac"}')).toBe(N + 5);
    expect(v.get('kms_hmac_strangers_rejected_total{reason="AccessDeniedException"}')).toBe(3);
    expect(v.get('kms_hmac_strangers_rejected_total{reason="UnrecognizedClientException"}')).toBe(4);
    expect(v.get('kms_hmac_strangers_rejected_total{reason="MissingAuthenticationTokenException"}')).toBe(2);
    expect(v.get('kms_hmac_requests_in_flight')).toBe(0);
    expect(v.get('kms_hmac_keystore_state{state="ok"}')).toBe(1);
    expect(v.get('kms_hmac_keystore_state{state="tampered"}')).toBe(0);
    expect(v.get('kms_hmac_keystore_reload_failures_total')).toBe(0);
    expect(v.get('kms_hmac_keystore_snapshot_age_seconds')).toBeGreaterThanOrEqual(0);
    const info = [...v.keys()].find((k) => k.startsWith('kms_hmac_info{'));
    expect(info).toMatch(/backend="(native|wasm-simd|wasm-scalar)",simd="[a-z0-9]+"/);
    // Scrapes during the load saw counts grow, never past what was sent.
    expect(during.length).toBeGreaterThan(0);
    let last = 0;
    for (const d of during) {
      const c = count(d, 'GenerateMac', 'none');
      expect(c).toBeGreaterThanOrEqual(last);
      expect(c).toBeLessThanOrEqual(N);
      last = c;
    }
    // Bounded labels: no key id, access key id or address in the text.
    for (const secret of [keyId, CRED.accessKeyId, 'AKIDUNKNOWN', 'evil.example', '127.0.0.1'])
      expect(text).not.toContain(secret);
  }, 120_000);

  it('the metrics port answers /metrics, /healthz and /readyz and nothing else', async () => {
    expect((await fetch(`${server.metricsUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${server.metricsUrl}/readyz`)).json()).toEqual({ status: 'ready' });
    expect((await fetch(`${server.metricsUrl}/`)).status).toBe(404);
    expect((await fetch(`${server.metricsUrl}/metrics`, { method: 'POST' })).status).toBe(404);
  });

  it('without metricsPort there is no metrics port', async () => {
    const plain = await startServer({ port: 0, credentials: [CRED], log: false });
    expect(plain.metricsUrl).toBeUndefined();
    await plain.close();
  });
});

describe('metrics with --workers 2', () => {
  it("the primary answers with the workers' sums: counts equal the requests sent through both", async () => {
    const child = await startServe(
      ['--keystore', join(dir, 'workers.db'), '--workers', '2', '--metrics-port', '0'],
      dir,
    );
    try {
      const metricsUrl = /metrics on (http:\/\/[^ ]+)\/metrics/.exec(child.stdout())![1]!;
      const created = await signedCall(child.url, 'CreateKey', {
        KeySpec: 'HMAC_256',
        KeyUsage: 'GENERATE_VERIFY_MAC',
      });
      const KeyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
      const N = 120;
      // A connection each (agent: false): the cluster primary hands them to both workers.
      for (let i = 0; i < N; i += 12)
        await Promise.all(
          Array.from({ length: 12 }, async () => {
            const r = await signedCall(child.url, 'GenerateMac', {
              KeyId,
              Message: 'AA==',
              MacAlgorithm: 'HMAC_SHA_256',
            });
            expect(r.status, r.body).toBe(200);
          }),
        );
      const { text, values: v } = await scrape(metricsUrl);
      expect(count(v, 'GenerateMac', 'none')).toBe(N);
      expect(count(v, 'CreateKey', 'none')).toBe(1);
      expect(v.get('kms_hmac_request_duration_seconds_count{operation="GenerateMac"}')).toBe(N);
      expect(v.get('kms_hmac_keystore_state{state="ok"}')).toBe(1);
      expect(text.match(/^kms_hmac_info\{.*\} 1$/gm)).toHaveLength(1);
      expect(await (await fetch(`${metricsUrl}/readyz`)).json()).toEqual({ status: 'ready' });
    } finally {
      expect(await stopServe(child)).toEqual({ code: 0, signal: null });
    }
  }, 120_000);
});

describe('fast-path metrics', () => {
  it('lease states and answers of a fast-path client, counted and never named', async () => {
    const material = Buffer.alloc(32, 7);
    const remote = await startServer({ port: 0, credentials: [CRED], log: false });
    const kms = new KMSClient({ endpoint: remote.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
    const local = new KmsHmacClient();
    try {
      // An EXTERNAL key on the "remote" (standing in for AWS KMS) with material the local copy shares.
      const created = await signedCall(remote.url, 'CreateKey', {
        KeySpec: 'HMAC_256',
        KeyUsage: 'GENERATE_VERIFY_MAC',
        Origin: 'EXTERNAL',
      });
      const arn = (created.json!.KeyMetadata as { Arn: string }).Arn;
      await importMaterial(remote.url, arn, material);
      await local.importRemoteKey({ RemoteArn: arn, KeySpec: 'HMAC_256', KeyMaterial: material });
      const fast = createFastPathClient(kms, local);
      const registry = registerFastPathMetrics(fast, new Registry());
      try {
        let v = samples(await registry.metrics());
        expect(v.get('kms_hmac_fast_path_leases{state="valid"}')).toBe(0);
        await fast.fastPath.probe(arn);
        const { GenerateMacCommand } = await import('@aws-sdk/client-kms');
        for (let i = 0; i < 5; i++)
          await fast.send(
            new GenerateMacCommand({ KeyId: arn, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_256' }),
          );
        const text = await registry.metrics();
        v = samples(text);
        expect(v.get('kms_hmac_fast_path_leases{state="valid"}')).toBe(1);
        expect(v.get('kms_hmac_fast_path_leases{state="revoked"}')).toBe(0);
        expect(v.get('kms_hmac_fast_path_requests_total{answer="local"}')).toBe(5);
        expect(v.get('kms_hmac_fast_path_requests_total{answer="forwarded"}')).toBe(0);
        expect(text).not.toContain(arn);
      } finally {
        fast.destroy();
      }
    } finally {
      kms.destroy();
      await local.close();
      await remote.close();
    }
  }, 60_000);
});

/** GetParametersForImport + ImportKeyMaterial over the wire (RSAES_OAEP_SHA_256). */
async function importMaterial(url: string, keyId: string, material: Buffer): Promise<void> {
  const { constants, createPublicKey, publicEncrypt } = await import('node:crypto');
  const params = await signedCall(url, 'GetParametersForImport', {
    KeyId: keyId,
    WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
    WrappingKeySpec: 'RSA_2048',
  });
  const p = params.json as { PublicKey: string; ImportToken: string };
  const wrapped = publicEncrypt(
    {
      key: createPublicKey({ key: Buffer.from(p.PublicKey, 'base64'), format: 'der', type: 'spki' }),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    },
    material,
  );
  const r = await signedCall(url, 'ImportKeyMaterial', {
    KeyId: keyId,
    ImportToken: p.ImportToken,
    EncryptedKeyMaterial: wrapped.toString('base64'),
    ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
  });
  expect(r.status, r.body).toBe(200);
}
