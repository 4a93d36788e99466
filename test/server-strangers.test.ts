/**
 * An endpoint that spends nothing on strangers (callers without valid credentials):
 * - a request with no credentials, unknown ones, a bad scope or date, or a
 *   signature forged over a declared payload hash is answered on its headers
 *   alone (here: before a single body byte is sent) and its connection closed;
 * - timeouts for headers and whole requests, and a cap on open connections;
 * - under 2,000 strangers trickling large bodies, `kms-hmac serve` (a child
 *   process, so its RSS is its own) grows by less than 100 MiB and does not
 *   make signed GenerateMac wait behind them. The latency target itself
 *   (p99 ≤ 50 ms) is measured by `npm run bench:server` (its strangers run);
 *   the bound here is loose enough for a busy machine and still far below
 *   what a server that queues signed requests behind strangers' bodies gives
 *   (hundreds of milliseconds to seconds: the server before strangers were
 *   refused on their headers measured a p99 past 300 ms under this load).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { listen, serverLimits, type KmsApi } from '../src/server/server.js';
import { CRED, CRED2, amzNow, rawRequest, signFast, signedCall, startServe, stopServe } from './server-helpers.js';
import { killGroup, track } from './support/process-group.js';

const BODY = JSON.stringify({ KeyId: 'alias/x', Message: 'aGVsbG8=', MacAlgorithm: 'HMAC_SHA_256' });

function recordingClient() {
  const calls: string[] = [];
  const client: KmsApi = {
    generateMacSync() {
      calls.push('GenerateMac');
      return {
        KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
        Mac: new Uint8Array([1, 2, 3]),
        MacAlgorithm: 'HMAC_SHA_256',
      };
    },
  };
  return { client, calls };
}

interface RawExchange {
  /** Everything the server sent before it closed the connection. */
  reply: string;
  status: number | undefined;
  errorType: string | undefined;
}

/**
 * Sends `head` (request line and headers) on a fresh socket, never a body
 * byte, and collects what the server answers until it closes the connection.
 */
function headersOnly(port: number, head: string): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () =>
      resolve({
        reply,
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]) || undefined,
        errorType: /x-amzn-errortype: ([^\r]+)/i.exec(reply)?.[1],
      }),
    );
    s.write(head);
  });
}

function headBlock(pairs: [string, string][], contentLength: number): string {
  return (
    ['POST / HTTP/1.1', ...pairs.map(([k, v]) => `${k}: ${v}`), `content-length: ${contentLength}`].join('\r\n') +
    '\r\n\r\n'
  );
}

describe('refused on the headers, before the body', () => {
  const { client, calls } = recordingClient();
  let port = 0;
  let host = '';
  let close: () => Promise<void>;

  beforeAll(async () => {
    const s = await listen({ client, credentials: [CRED, CRED2], port: 0, log: null });
    port = s.port;
    host = `127.0.0.1:${port}`;
    close = s.close;
  });
  afterAll(() => close());

  it('no credentials, unknown or mis-scoped ones, a forged signature: answered at once, connection closed', async () => {
    const body = Buffer.from(BODY);
    const declaredHash = (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
    const now = amzNow();
    const signed = (
      o: { date?: string; cred?: { accessKeyId: string; secretAccessKey: string }; extra?: [string, string][] } = {},
    ) => signFast(host, 'TrentService.GenerateMac', body, o.date ?? now, o.extra ?? [], o.cred ?? CRED);
    const cases: Array<[string, [string, string][], string]> = [
      [
        'no Authorization',
        [
          ['host', host],
          ['x-amz-target', 'TrentService.GenerateMac'],
        ],
        'MissingAuthenticationTokenException',
      ],
      [
        'unknown access key',
        signed({ cred: { accessKeyId: 'AKIDSTRANGER', secretAccessKey: 'x' } }),
        'UnrecognizedClientException',
      ],
      ['session credentials without their token', signed({ cred: CRED2 }), 'UnrecognizedClientException'],
      [
        'expired date',
        signed({
          date: new Date(Date.now() - 20 * 60_000)
            .toISOString()
            .replace(/[-:]/g, '')
            .replace(/\.\d{3}/, ''),
        }),
        'InvalidSignatureException',
      ],
      [
        'garbled Authorization',
        [
          ['host', host],
          ['authorization', 'AWS4-HMAC-SHA256 Credential=x'],
          ['x-amz-date', now],
        ],
        'IncompleteSignatureException',
      ],
      [
        'a known key, the wrong secret, the payload hash declared',
        signed({
          cred: { accessKeyId: CRED.accessKeyId, secretAccessKey: 'guessed' },
          extra: [['x-amz-content-sha256', declaredHash]],
        }),
        'InvalidSignatureException',
      ],
    ];
    for (const [name, headers, type] of cases) {
      // The body is declared 100 MB and never sent: only an answer on the headers can arrive.
      const r = await headersOnly(port, headBlock(headers, 100_000_000));
      expect(r.status, `${name}: ${r.reply}`).toBe(400);
      expect(r.errorType, name).toBe(type);
      expect(r.reply.toLowerCase(), name).toContain('connection: close');
    }
    expect(calls).toEqual([]);
  });

  it('a signed request that declares its payload hash is verified before its body; the body must then match', async () => {
    const { createHash } = await import('node:crypto');
    const body = Buffer.from(BODY);
    const declared = createHash('sha256').update(body).digest('hex');
    const headers = signFast(host, 'TrentService.GenerateMac', body, amzNow(), [['x-amz-content-sha256', declared]]);
    const ok = await rawRequest(`http://${host}`, { headers, body });
    expect(ok.status, ok.body).toBe(200);
    const swapped = await rawRequest(`http://${host}`, { headers, body: Buffer.from(BODY.replace('aGVs', 'aGVt')) });
    expect(swapped.json).toEqual({
      __type: 'InvalidSignatureException',
      message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
    });
    // A declared hash that no body can match is refused on the headers.
    const junk = signFast(host, 'TrentService.GenerateMac', body, amzNow(), [
      ['x-amz-content-sha256', 'UNSIGNED-PAYLOAD'],
    ]);
    expect((await headersOnly(port, headBlock(junk, 100_000_000))).errorType).toBe('InvalidSignatureException');
  });

  it('a known access key without x-amz-content-sha256: a body over 64 KiB, or of undeclared length, is refused before it is read', async () => {
    const body = Buffer.from(BODY);
    const forged = signFast(host, 'TrentService.GenerateMac', body, amzNow(), [], {
      accessKeyId: CRED.accessKeyId,
      secretAccessKey: 'guessed',
    });
    // Declared 1 MiB (the body limit of a request that declares its hash): never read.
    const big = await headersOnly(port, headBlock(forged, 1024 * 1024));
    expect(big.status, big.reply).toBe(413);
    expect(big.errorType).toBe('RequestEntityTooLargeException');
    expect(big.reply).toContain('65536 bytes for a request without x-amz-content-sha256');
    expect(big.reply.toLowerCase()).toContain('connection: close');
    // Chunked, length unknown: never read either.
    const head = ['POST / HTTP/1.1', ...forged.map(([k, v]) => `${k}: ${v}`), 'transfer-encoding: chunked'].join(
      '\r\n',
    );
    const chunked = await headersOnly(port, `${head}\r\n\r\n`);
    expect(chunked.status, chunked.reply).toBe(411);
    expect(chunked.errorType).toBe('LengthRequiredException');
    // A body within the limit is read, then its signature checked; a good one is served (the Python clients' form).
    const small = await rawRequest(`http://${host}`, { headers: forged, body });
    expect(small.json?.__type).toBe('InvalidSignatureException');
    const good = await rawRequest(`http://${host}`, {
      headers: signFast(host, 'TrentService.GenerateMac', body, amzNow()),
      body,
    });
    expect(good.status, good.body).toBe(200);
  });

  it('wrong method or path: answered without reading the body, connection closed', async () => {
    for (const line of ['GET / HTTP/1.1', 'POST /keys HTTP/1.1']) {
      const r = await headersOnly(port, `${line}\r\nhost: ${host}\r\ncontent-length: 100000000\r\n\r\n`);
      expect([405, 404]).toContain(r.status);
      expect(r.reply.toLowerCase()).toContain('connection: close');
    }
  });
});

describe('timeouts and the connection cap', () => {
  it('headers and whole requests that take too long get 408 and a closed connection', async () => {
    const { client, calls } = recordingClient();
    const s = await listen({
      client,
      credentials: [CRED],
      port: 0,
      log: null,
      headersTimeoutMs: 300,
      requestTimeoutMs: 800,
    });
    try {
      // Headers that never end.
      const slowHeaders = await headersOnly(s.port, 'POST / HTTP/1.1\r\nhost: x\r\n');
      expect(slowHeaders.status).toBe(408);
      expect(slowHeaders.errorType).toBe('RequestTimeoutException');
      // A signed request whose body never arrives in full.
      const body = Buffer.from(BODY);
      const headers = signFast(`127.0.0.1:${s.port}`, 'TrentService.GenerateMac', body, amzNow());
      const slowBody = await headersOnly(s.port, headBlock(headers, body.length + 1) + BODY);
      expect(slowBody.status).toBe(408);
      expect(slowBody.errorType).toBe('RequestTimeoutException');
      expect(calls).toEqual([]);
      // An idle keep-alive connection is not a slow request: it is reused after longer than both timeouts.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await signedCall(s.url, 'GenerateMac', BODY, { agent });
        await new Promise((r) => setTimeout(r, 1200));
        const second = await signedCall(s.url, 'GenerateMac', BODY, { agent });
        expect([first.status, second.status]).toEqual([200, 200]);
        expect(first.headers.connection).toBe('keep-alive');
      } finally {
        agent.destroy();
      }
    } finally {
      await s.close();
    }
  });

  it('connections past maxConnections are closed as they are accepted', async () => {
    const { client } = recordingClient();
    const s = await listen({ client, credentials: [CRED], port: 0, log: null, maxConnections: 3 });
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const sock = net.connect(s.port, '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        held.push(sock);
      }
      // Past the cap: accepted by the kernel, then closed by the server without a byte.
      const extra = await headersOnly(s.port, 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n').catch(
        (e: NodeJS.ErrnoException) => ({
          reply: '',
          status: undefined,
          errorType: e.code,
        }),
      );
      expect(extra.reply).toBe('');
      held.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 50));
      const ok = await signedCall(s.url, 'GenerateMac', BODY);
      expect(ok.status, ok.body).toBe(200);
    } finally {
      for (const sock of held) sock.destroy();
      await s.close();
    }
  });

  it('limits are checked: a bad value is a RangeError, never an unlimited server', () => {
    expect(serverLimits({})).toEqual({ maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 });
    for (const bad of [
      { maxConnections: 0 },
      { headersTimeoutMs: -1 },
      { requestTimeoutMs: 1.5 },
      { maxConnections: Number.NaN },
      { headersTimeoutMs: 40_000 },
    ]) {
      expect(() => serverLimits(bad), JSON.stringify(bad)).toThrow(RangeError);
    }
  });
});

// ---------------------------------------------------------------------------

/** Resident set size of a Linux process, in bytes (from /proc; the test runs on Linux). */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const STRANGERS = 2000;
const WINDOW_MS = 3000;
const WINDOWS = 5;
const P99_LIMIT_MS = 250;
const RSS_LIMIT = 100 * 1024 * 1024;

describe.runIf(process.platform === 'linux')('2,000 strangers trickling large bodies', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kms-hmac-strangers-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`serve grows < 100 MiB and signed GenerateMac does not wait behind strangers (p99 ≤ ${P99_LIMIT_MS} ms)`, async () => {
    const child = await startServe(['--keystore', join(dir, 'keys.json')], dir);
    const pid = child.proc.pid!;
    const port = Number(new URL(child.url).port);
    const host = `127.0.0.1:${port}`;
    const created = await signedCall(child.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const KeyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;

    // Signed GenerateMac requests, as an SDK with a connection pool sends them (replaying one is allowed within the window).
    const amz = amzNow();
    const requests = Array.from({ length: 64 }, (_, i) => {
      const body = Buffer.from(
        JSON.stringify({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from(`record ${i}`).toString('base64') }),
      );
      return { headers: signFast(host, 'TrentService.GenerateMac', body, amz), body };
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let next = 0;
    const failures: string[] = [];
    const timedCall = async (): Promise<number> => {
      const r = requests[next++ % requests.length]!;
      const t0 = performance.now();
      const res = await rawRequest(child.url, { headers: r.headers, body: r.body, agent });
      const ms = performance.now() - t0;
      if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
      return ms;
    };
    const measure = async (ms: number): Promise<number[]> => {
      const latencies: number[] = [];
      const until = performance.now() + ms;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (performance.now() < until) latencies.push(await timedCall());
        }),
      );
      return latencies.sort((a, b) => a - b);
    };

    let attacker: ReturnType<typeof spawn> | undefined;
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(pid))), 50);
    try {
      const quiet = await measure(1500); // warm-up: JIT, the pool's four connections
      const baseRss = rssBytes(pid);
      peakRss = baseRss;

      attacker = spawn(
        process.execPath,
        [
          join(import.meta.dirname, '..', 'bench', 'stranger-load.js'),
          JSON.stringify({
            port,
            slots: STRANGERS,
            declaredBytes: 1024 * 1024, // the largest body the server accepts
            firstBytes: 16 * 1024,
            chunkBytes: 1024,
            trickleMs: 100,
            reconnectMs: 2000,
            knownAccessKeyId: CRED.accessKeyId,
          }),
        ],
        { detached: true, stdio: ['pipe', 'pipe', 'inherit'] },
      );
      track(attacker);
      // Strangers bring their own CPUs; here they share ours. Lower their priority so the figures
      // measure the server's cost of refusing them, not the load generator's cost of sending.
      setPriority(attacker.pid!, 10);
      let out = '';
      attacker.stdout!.on('data', (d) => (out += d));
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (!out.includes('ready')) return;
          clearInterval(t);
          resolve();
        }, 20);
        attacker!.once('exit', (code) => {
          clearInterval(t);
          reject(new Error(`load generator exited (${code}): ${out}`));
        });
      });

      // Up to WINDOWS windows under attack: a machine shared with other jobs can stall any
      // process for a moment, so one clean window proves the property; a server that buffers
      // strangers' bodies or queues behind them fails every window.
      const windows: Array<{ n: number; p50: number; p99: number; max: number }> = [];
      for (let w = 0; w < WINDOWS; w++) {
        const l = await measure(WINDOW_MS);
        windows.push({ n: l.length, p50: percentile(l, 50), p99: percentile(l, 99), max: l.at(-1)! });
        if (windows.at(-1)!.p99 <= P99_LIMIT_MS) break;
      }

      attacker.stdin!.write('stop\n');
      await new Promise((r) => attacker!.once('exit', r));
      const stats = JSON.parse(out.slice(out.indexOf('\n') + 1)) as {
        connections: number;
        answers: Record<string, number>;
        statuses: Record<string, number>;
        closedWithoutAnswer: number;
        bytesSent: number;
      };
      const grew = peakRss - baseRss;
      const report = {
        quietP99: percentile(quiet, 99),
        windows,
        baseRssMiB: +(baseRss / 2 ** 20).toFixed(1),
        peakRssMiB: +(peakRss / 2 ** 20).toFixed(1),
        strangers: stats,
      };
      console.log(`strangers: ${JSON.stringify(report)}`);

      expect(failures).toEqual([]);
      expect(stats.connections).toBeGreaterThanOrEqual(STRANGERS);
      expect(Object.keys(stats.statuses)).toEqual(['400']);
      expect(new Set(Object.keys(stats.answers))).toEqual(
        new Set(['MissingAuthenticationTokenException', 'UnrecognizedClientException', 'InvalidSignatureException']),
      );
      expect(grew, JSON.stringify(report)).toBeLessThan(RSS_LIMIT);
      expect(Math.min(...windows.map((x) => x.p99)), JSON.stringify(report)).toBeLessThanOrEqual(P99_LIMIT_MS);
    } finally {
      clearInterval(sampler);
      if (attacker) killGroup(attacker, 'SIGKILL');
      agent.destroy();
      expect((await stopServe(child)).code, child.stderr()).toBe(0);
    }
  }, 120_000);
});
