/**
 * Graceful drain on SIGTERM (drain.ts): under a 2,000 req/s load (autocannon,
 * pre-signed GenerateMac over keep-alive connections) no request fails
 * except new connections refused once the listener closed, and the process
 * exits 0 within --drain-timeout; with --workers 2 every worker drains. A
 * request in flight when SIGTERM arrives is answered; one that never
 * finishes is cut at the timeout.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { amzNow, signedCall, signFast, startServe, type ServeChild } from './server-helpers.js';

const DRAIN_MS = 5000;

async function keyOn(child: ServeChild): Promise<string> {
  const r = await signedCall(child.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
  expect(r.status, r.body).toBe(200);
  return (r.json!.KeyMetadata as { KeyId: string }).KeyId;
}

/** Load at `rate` req/s until the server is gone; SIGTERM after `signalAfterMs`. */
async function sigtermUnderLoad(child: ServeChild, rate: number, signalAfterMs: number) {
  const KeyId = await keyOn(child);
  const u = new URL(child.url);
  const requests = Array.from({ length: 64 }, (_, i) => {
    const body = Buffer.from(
      JSON.stringify({ KeyId, Message: Buffer.from(`drain ${i}`).toString('base64'), MacAlgorithm: 'HMAC_SHA_256' }),
    );
    return {
      method: 'POST' as const,
      path: '/',
      headers: Object.fromEntries(signFast(u.host, 'TrentService.GenerateMac', body, amzNow())),
      body: body.toString(),
    };
  });
  const errors = new Map<string, number>();
  const statuses = new Map<number, number>();
  let ok = 0;
  const inst = autocannon({
    url: child.url,
    connections: 16,
    overallRate: rate,
    duration: (signalAfterMs + DRAIN_MS + 2000) / 1000,
    requests,
    timeout: 10,
  });
  inst.on('reqError', (err: NodeJS.ErrnoException) =>
    errors.set(err.code ?? err.message, (errors.get(err.code ?? err.message) ?? 0) + 1),
  );
  inst.on('response', (_c: unknown, status: number) => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status === 200) ok++;
  });
  await new Promise((r) => setTimeout(r, signalAfterMs));
  const before = ok;
  const t0 = performance.now();
  child.proc.kill('SIGTERM');
  const exit = await child.exited;
  const exitMs = performance.now() - t0;
  inst.stop();
  await new Promise((r) => setTimeout(r, 100));
  return { exit, exitMs, errors, statuses, okBefore: before, ok };
}

describe('SIGTERM during a 2,000 req/s load', () => {
  for (const workers of [1, 2]) {
    it(`--workers ${workers}: no failed request except refused new connections; exit 0 within the drain timeout`, async () => {
      const home = mkdtempSync(join(tmpdir(), 'kms-hmac-drain-'));
      const child = await startServe(
        ['--keystore', join(home, 'ks.db'), '--workers', String(workers), '--drain-timeout', String(DRAIN_MS)],
        home,
      );
      const r = await sigtermUnderLoad(child, 2000, 2500);
      expect(r.exit, child.stderr()).toEqual({ code: 0, signal: null });
      expect(r.exitMs).toBeLessThan(DRAIN_MS);
      // The load asks for 2,000 req/s; what a shared two-core machine delivers is printed, and must be real load.
      console.log(
        `drain, --workers ${workers}: ${Math.round(r.okBefore / 2.5)} req/s answered before SIGTERM, exit after ${Math.round(r.exitMs)} ms, errors ${JSON.stringify(Object.fromEntries(r.errors))}`,
      );
      expect(r.okBefore).toBeGreaterThan(500);
      expect([...r.statuses.keys()]).toEqual([200]);
      for (const code of r.errors.keys()) expect(code).toBe('ECONNREFUSED');
      expect(child.stderr()).toMatch(/SIGTERM: finishing in-flight requests[\s\S]*stopped/);
    }, 120_000);
  }
});

describe('requests in flight at SIGTERM', () => {
  it('one whose body arrives after the signal is answered (Connection: close); one that never ends is cut at the timeout', async () => {
    const home = mkdtempSync(join(tmpdir(), 'kms-hmac-drain-'));
    const child = await startServe(['--drain-timeout', '1500', '--auth', 'any'], home);
    const u = new URL(child.url);
    const partial = (body: string) => {
      const headers = signFast(u.host, 'TrentService.ListKeys', Buffer.from(body), amzNow());
      const sock = connect(Number(u.port), u.hostname);
      let answer = '';
      sock.on('data', (d) => (answer += d));
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      sock.on('error', () => {});
      sock.write(
        `POST / HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 1)}`,
      );
      return { sock, closed, answer: () => answer, rest: () => sock.write(body.slice(1)) };
    };
    const finishing = partial('{}');
    const stuck = partial('{}');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    child.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    finishing.rest();
    await finishing.closed;
    expect(finishing.answer()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(finishing.answer()).toMatch(/\r\nConnection: close\r\n/i);
    await stuck.closed; // cut at the drain timeout
    expect(stuck.answer()).toBe('');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(1400);
    expect(ms).toBeLessThan(1500 + 2000);
  }, 60_000);
});
