/**
 * The server as users run it: a child process (`node dist/cli/serve.js`, the
 * compiled serve command — a child cannot load .ts; see builtServeEntry) on a
 * durable FileKeyStore.
 * - SIGTERM under load: exit 0, and every CreateKey that was acknowledged is
 *   in the store when it is reopened.
 * - --workers 2: one port, one store; a key created through one worker is
 *   usable through the other at once.
 * - refusing to start without credentials.
 * - --max-connections, --headers-timeout and --request-timeout reach the listener.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore } from '../src/keystore/file.js';
import {
  CRED,
  builtServeEntry,
  signKms,
  rawRequest,
  startServe,
  type RawResponse,
  type ServeChild,
} from './server-helpers.js';
import { track } from './support/process-group.js';

let entry = '';
let dir = '';

beforeAll(() => {
  entry = builtServeEntry();
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-serve-'));
}, 300_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeChild> {
  return startServe(args, dir, env);
}

async function call(url: string, op: string, body: unknown, agent?: http.Agent): Promise<RawResponse> {
  const text = JSON.stringify(body);
  const headers = await signKms(url, { target: `TrentService.${op}`, body: text });
  return rawRequest(url, { headers, body: text, ...(agent ? { agent } : {}) });
}

describe('kms-hmac serve as a process', () => {
  it('refuses to start without credentials, saying how to set them', async () => {
    const proc = track(
      spawn(process.execPath, [entry, '--port', '0', '--keystore', join(dir, 'none.json')], {
        env: { PATH: process.env.PATH, HOME: dir },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let err = '';
    proc.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('KMS_HMAC_ACCESS_KEY_ID');
    expect(err).toContain('--auth any');
  }, 60_000);

  it('--max-connections, --headers-timeout and --request-timeout bound what callers hold', async () => {
    const child = await serve([
      '--keystore',
      join(dir, 'limits.json'),
      '--max-connections',
      '2',
      '--headers-timeout',
      '300',
      '--request-timeout',
      '600',
    ]);
    const port = Number(new URL(child.url).port);
    const held: net.Socket[] = [];
    try {
      const replies: Array<Promise<string>> = [];
      for (let i = 0; i < 2; i++) {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d));
        replies.push(new Promise((resolve) => s.on('close', () => resolve(got))));
        s.on('error', () => undefined);
        await new Promise((r) => s.once('connect', r));
        held.push(s);
      }
      // A third connection while two are open: closed at once, no answer.
      const third = await new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('error', () => undefined);
        s.on('close', () => resolve(got));
        s.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n');
      });
      expect(third).toBe('');
      // The two silent ones: 408 after the headers timeout, then closed.
      for (const r of await Promise.all(replies)) expect(r).toMatch(/^HTTP\/1\.1 408 [\s\S]*RequestTimeoutException/);
      const ok = await call(child.url, 'ListKeys', {});
      expect(ok.status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  }, 60_000);

  it('writes a structured access log without secrets, signatures or bodies', async () => {
    const logFile = join(dir, 'access.log');
    const child = await serve(['--keystore', join(dir, 'log.json'), '--log', logFile, '--log-level', 'info']);
    const created = await call(child.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const KeyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
    const message = Buffer.from('very secret log record').toString('base64');
    const mac = await call(child.url, 'GenerateMac', { KeyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' });
    expect(mac.status).toBe(200);
    const bad = await call(child.url, 'VerifyMac', {
      KeyId,
      Message: message,
      MacAlgorithm: 'HMAC_SHA_256',
      Mac: 'AAAA',
    });
    expect(bad.json?.__type).toBe('KMSInvalidMacException');
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
    const text = readFileSync(logFile, 'utf8');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.op, l.status, l.err ?? null])).toEqual([
      ['CreateKey', 200, null],
      ['GenerateMac', 200, null],
      ['VerifyMac', 400, 'KMSInvalidMacException'],
    ]);
    for (const l of lines) {
      expect(l.akid).toBe(CRED.accessKeyId);
      expect(typeof l.reqId).toBe('string');
      expect(typeof l.ms).toBe('number');
    }
    for (const secret of [CRED.secretAccessKey, message, mac.json!.Mac as string, 'Signature=', 'very secret']) {
      expect(text).not.toContain(secret);
    }
  }, 120_000);

  it('SIGTERM under load: exit 0 and no acknowledged CreateKey is lost', async () => {
    const store = join(dir, 'shutdown.json');
    const child = await serve(['--keystore', store]);
    const acked: string[] = [];
    const statuses: number[] = [];
    let failures = 0;
    let stop = false;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const loops = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const r = await call(child.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }, agent);
          statuses.push(r.status);
          if (r.status === 200) acked.push((r.json!.KeyMetadata as { KeyId: string }).KeyId);
        } catch {
          failures++; // connection refused/reset once the server stopped: not acknowledged
          if (failures > 50) return;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    });
    // Let load build up, then signal mid-flight.
    while (acked.length < 40) await new Promise((r) => setTimeout(r, 10));
    const atSignal = acked.length;
    child.proc.kill('SIGTERM');
    const { code, signal } = await child.exited;
    stop = true;
    await Promise.all(loops);
    agent.destroy();
    expect({ code, signal }, child.stderr()).toEqual({ code: 0, signal: null });
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(acked.length).toBeGreaterThanOrEqual(atSignal);

    const reopened = await FileKeyStore.open(store, { pollIntervalMs: 0 });
    try {
      const present = new Set(reopened.listKeys().map((k) => k.keyId));
      const lost = acked.filter((id) => !present.has(id));
      expect(lost).toEqual([]);
    } finally {
      await reopened.close();
    }
  }, 180_000);

  it('--workers 2: one port, one store; keys created through one worker work through the other at once', async () => {
    const store = join(dir, 'workers.json');
    const child = await serve(['--keystore', store, '--workers', '2']);
    try {
      // Separate connections (agent: false) are spread across the workers by the cluster primary.
      for (let i = 0; i < 12; i++) {
        const created = await call(child.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
        expect(created.status, created.body).toBe(200);
        const KeyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
        const mac = await call(child.url, 'GenerateMac', { KeyId, Message: 'aGk=', MacAlgorithm: 'HMAC_SHA_256' });
        expect(mac.status, mac.body).toBe(200);
        const ver = await call(child.url, 'VerifyMac', {
          KeyId,
          Message: 'aGk=',
          MacAlgorithm: 'HMAC_SHA_256',
          Mac: mac.json!.Mac,
        });
        expect(ver.json?.MacValid, ver.body).toBe(true);
      }
      const listed = await call(child.url, 'ListKeys', {});
      expect((listed.json!.Keys as unknown[]).length).toBe(12);
    } finally {
      child.proc.kill('SIGTERM');
      const { code } = await child.exited;
      expect(code).toBe(0);
    }
  }, 180_000);
});
