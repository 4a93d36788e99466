/**
 * Fuzz: ≥ 10,000 malformed requests (bodies, members, headers, signatures)
 * over keep-alive connections, plus raw malformed HTTP on sockets. The
 * server must never answer 5xx, never crash, and still answer correctly
 * afterwards. Deterministic (seeded), so a failure reproduces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { startServer, type StartedServer } from '../src/server/index.js';
import { OPERATIONS } from '../src/server/codec.js';
import { CRED, amzNow, rawRequest, signFast as sign, signedCall } from './server-helpers.js';

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let server: StartedServer;
let keyId = '';

beforeAll(async () => {
  server = await startServer({ port: 0, credentials: [CRED], log: false });
  const r = await signedCall(server.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
  keyId = (r.json!.KeyMetadata as { KeyId: string }).KeyId;
});
afterAll(async () => {
  await server?.close();
});

describe('fuzz', () => {
  it('10,000+ malformed bodies and headers over keep-alive: no 5xx, no crash', async () => {
    const rand = rng(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const u = new URL(server.url);
    const host = u.host;
    const ops = [...OPERATIONS.keys(), 'Encrypt', 'Nope', ''];
    const strs = [
      '',
      'a',
      'alias/x',
      'alias/',
      keyId,
      `arn:aws:kms:us-east-1:111122223333:key/${keyId}`,
      'arn:aws:kms:eu-west-1:1:key/x',
      '\u0000',
      'é'.repeat(3000),
      'x'.repeat(9000),
      'HMAC_SHA_256',
      'HMAC_256',
      'GENERATE_VERIFY_MAC',
      'EXTERNAL',
    ];
    const values: unknown[] = [
      null,
      true,
      false,
      0,
      -1,
      1.5,
      2 ** 31,
      1e308,
      -1e308,
      'QQ==',
      '',
      '====',
      'A',
      '-_-_',
      'AAAA'.repeat(2000),
      [],
      [1],
      ['a'],
      {},
      { a: 1 },
      ...strs,
    ];
    const members = [
      'KeyId',
      'Message',
      'Mac',
      'MacAlgorithm',
      'GrantTokens',
      'DryRun',
      'KeySpec',
      'KeyUsage',
      'Origin',
      'Description',
      'Tags',
      'AliasName',
      'TargetKeyId',
      'Limit',
      'Marker',
      'PendingWindowInDays',
      'ImportToken',
      'EncryptedKeyMaterial',
      'ValidTo',
      'ExpirationModel',
      'WrappingAlgorithm',
      'WrappingKeySpec',
      'TagKeys',
      'MultiRegion',
      '__proto__',
      'constructor',
    ];

    const validMac = { KeyId: keyId, Message: 'aGVsbG8=', MacAlgorithm: 'HMAC_SHA_256' };
    function body(): Buffer {
      switch (Math.floor(rand() * 8)) {
        case 0: {
          // random bytes
          const n = Math.floor(rand() * 300);
          return Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
        }
        case 1: {
          // truncated / mutated valid JSON
          const s = JSON.stringify(validMac);
          const cut = s.slice(0, Math.floor(rand() * s.length));
          const i = Math.floor(rand() * s.length);
          return Buffer.from(
            rand() < 0.5 ? cut : s.slice(0, i) + String.fromCharCode(Math.floor(rand() * 128)) + s.slice(i + 1),
          );
        }
        case 2: // deep nesting
          return Buffer.from('['.repeat(Math.floor(rand() * 5000)) + ']'.repeat(Math.floor(rand() * 5000)));
        case 3: // JSON scalars, arrays
          return Buffer.from(JSON.stringify(pick([null, 1, 'x', [], [validMac], true])));
        default: {
          // objects with random members of random types
          const o: Record<string, unknown> = rand() < 0.5 ? { ...validMac } : {};
          const n = 1 + Math.floor(rand() * 5);
          for (let i = 0; i < n; i++) o[pick(members)] = pick(values);
          let s = JSON.stringify(o);
          if (rand() < 0.1) s = s.replace('{', '{"KeyId":"dup",');
          return Buffer.from(s);
        }
      }
    }

    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    const fivexx: string[] = [];
    let sent = 0;
    const TOTAL = 10_500;
    const amz = amzNow();

    function requestOnce(i: number): Promise<void> {
      const target = `TrentService.${pick(ops)}`;
      const b = body();
      let headers: [string, string][];
      const mode = rand();
      if (mode < 0.6) {
        headers = sign(host, target, b, amz); // signed: reaches the codec and the KMS layer
      } else if (mode < 0.7) {
        headers = sign(host, target, b, amz);
        const h = headers.find((x) => x[0] === 'authorization')!;
        const a = h[1];
        const j = Math.floor(rand() * a.length);
        h[1] = a.slice(0, j) + pick([',', '=', ' ', '/', '', 'Z', '\t']) + a.slice(j + 1);
      } else if (mode < 0.8) {
        headers = sign(host, target, b, pick(['20000101T000000Z', 'garbage', '', '99999999T999999Z', amz.slice(0, 8)]));
      } else if (mode < 0.9) {
        headers = sign(host, target, b, amz, [['x-amz-security-token', pick(['', 't', 'x'.repeat(4000)])]]);
        if (rand() < 0.5)
          headers = headers.filter((h) => h[0] !== pick(['host', 'x-amz-date', 'x-amz-target', 'authorization']));
      } else {
        headers = [
          ['host', host],
          [
            'authorization',
            pick([
              '',
              'AWS4-HMAC-SHA256',
              `AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host;x-amz-target, Signature=${'0'.repeat(64)}`,
              'Basic Zm9vOmJhcg==',
              `AWS4-HMAC-SHA256 ${','.repeat(100)}`,
            ]),
          ],
          ['x-amz-target', target],
          ['x-amz-date', amz],
          ['content-type', pick(['application/json', 'text/plain', '', 'application/x-amz-json-1.1; charset=utf-8'])],
        ];
      }
      const method = rand() < 0.03 ? pick(['GET', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) : 'POST';
      const path = rand() < 0.03 ? pick(['/x', '/?a=b', '//', '/%2F', '*']) : '/';
      // Node's client frames no body for OPTIONS/DELETE given raw header arrays; say the length explicitly.
      if (method !== 'GET') headers.push(['content-length', String(b.length)]);
      return new Promise<void>((resolve, reject) => {
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            method,
            path,
            headers: headers as unknown as http.OutgoingHttpHeaders,
            agent,
            setHost: false,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const st = res.statusCode!;
              statuses.set(st, (statuses.get(st) ?? 0) + 1);
              if (st >= 500) fivexx.push(`#${i} ${target} ${st} ${Buffer.concat(chunks).toString().slice(0, 200)}`);
              else if (st !== 200) {
                let j: { __type?: unknown } = {};
                try {
                  j = JSON.parse(Buffer.concat(chunks).toString()) as { __type?: unknown };
                } catch {
                  /* reported below */
                }
                if (typeof j.__type !== 'string')
                  fivexx.push(`#${i} ${method} ${path} no __type: ${st} ${JSON.stringify(res.headers)}`);
              }
              resolve();
            });
          },
        );
        const desc = `#${i} ${method} ${path} ${JSON.stringify(headers).slice(0, 600)} body ${JSON.stringify(b.toString('latin1').slice(0, 200))}`;
        req.on('socket', (sock) => {
          const prev = (sock as unknown as { __last?: string }).__last;
          (sock as unknown as { __prev?: string }).__prev = prev;
          (sock as unknown as { __last?: string }).__last = desc;
        });
        req.on('error', (e) =>
          reject(
            new Error(
              `${desc}: ${e.message}\nPREVIOUS ON SOCKET: ${(req.socket as unknown as { __prev?: string })?.__prev}`,
            ),
          ),
        );
        req.end(method === 'GET' ? undefined : b);
      });
    }

    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < TOTAL) await requestOnce(sent++);
      }),
    );
    agent.destroy();
    expect(fivexx).toEqual([]);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(TOTAL);
    // Spread sanity: the fuzz reached past auth (200s and SerializationException/ValidationException happen).
    expect(statuses.get(400) ?? 0).toBeGreaterThan(TOTAL / 2);
    console.log(
      `fuzz: ${TOTAL} requests in ${Date.now() - t0} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );

    // Still answers correctly (a fresh key: the fuzz may have disabled or scheduled deletion of the first).
    const created = await signedCall(server.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(created.status).toBe(200);
    const fresh = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
    const ok = await signedCall(server.url, 'GenerateMac', {
      KeyId: fresh,
      Message: 'aGVsbG8=',
      MacAlgorithm: 'HMAC_SHA_256',
    });
    expect(ok.status, ok.body).toBe(200);
  }, 120_000);

  it('malformed HTTP on raw sockets: a 4xx or a closed socket, never a crash', async () => {
    const rand = rng(42);
    const u = new URL(server.url);
    const garbage = [
      'GARBAGE\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      `POST / HTTP/1.1\r\nX-A: ${'a'.repeat(20000)}\r\n\r\n`,
      'POST / HTTP/9.9\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}',
      '\u0000\u0001\u0002\r\n\r\n',
    ];
    for (let i = 0; i < 200; i++) {
      let payload = garbage[i % garbage.length]!;
      if (i >= garbage.length) {
        const j = Math.floor(rand() * payload.length);
        payload = payload.slice(0, j) + String.fromCharCode(Math.floor(rand() * 256)) + payload.slice(j + 1);
      }
      const reply = await new Promise<string>((resolve) => {
        const s = net.connect(Number(u.port), u.hostname);
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('error', () => resolve(got));
        s.on('close', () => resolve(got));
        s.setTimeout(300, () => s.destroy()); // e.g. waiting for a body that never comes
        s.end(payload);
      });
      const m = /^HTTP\/1\.1 (\d{3})/.exec(reply);
      if (m) expect(Number(m[1]), reply.slice(0, 200)).toBeLessThan(500);
    }
    const ok = await signedCall(server.url, 'ListKeys', {});
    expect(ok.status).toBe(200);
    const r = await rawRequest(server.url, { method: 'GET' });
    expect(r.status).toBe(405);
  }, 120_000);
});
