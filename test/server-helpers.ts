/**
 * Helpers for the server suites: an independent SigV4 signer (the SDK's own,
 * `@smithy/signature-v4`) and a fast one for load loops, raw HTTP over
 * keep-alive agents, credentials, and `kms-hmac serve` as a child process.
 */
import http from 'node:http';
import { createHash, createHmac } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignatureV4 } from '@smithy/signature-v4';
import { track } from './support/process-group.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CRED = { accessKeyId: 'AKIDKMSHMACTEST', secretAccessKey: 'kms-hmac-test-secret/with+chars=' };
export const CRED2 = {
  accessKeyId: 'AKIDSECOND',
  secretAccessKey: 'second-secret-of-the-tests',
  sessionToken: 'session-token-xyz',
};

class Sha256 {
  private h;
  constructor(secret?: string | Uint8Array) {
    this.h = secret !== undefined ? createHmac('sha256', secret) : createHash('sha256');
  }
  update(d: string | Uint8Array): void {
    this.h.update(d);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown> | undefined;
}

export interface SignOptions {
  target?: string;
  body?: string | Buffer;
  credential?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  region?: string;
  service?: string;
  date?: Date;
  headers?: Record<string, string>;
  /** Send x-amz-content-sha256 (the JS SDK does; the Python clients do not). Default true. */
  checksum?: boolean;
}

/** Signs a KMS request the way the SDK does; returns headers to send. */
export async function signKms(url: string, o: SignOptions = {}): Promise<Record<string, string>> {
  const u = new URL(url);
  const body = o.body ?? '{}';
  const signer = new SignatureV4({
    credentials: o.credential ?? CRED,
    region: o.region ?? 'us-east-1',
    service: o.service ?? 'kms',
    sha256: Sha256 as never,
    applyChecksum: o.checksum ?? true,
  });
  const req = {
    method: 'POST',
    protocol: 'http:',
    hostname: u.hostname,
    port: Number(u.port),
    path: '/',
    query: {},
    headers: {
      host: u.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': o.target ?? 'TrentService.GenerateMac',
      ...(o.headers ?? {}),
    } as Record<string, string>,
    body,
  };
  const signed = await signer.sign(req as never, o.date ? { signingDate: o.date } : {});
  return (signed as unknown as { headers: Record<string, string> }).headers;
}

export function rawRequest(
  url: string,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string | string[]> | [string, string][];
    body?: string | Buffer;
    agent?: http.Agent;
  },
): Promise<RawResponse> {
  const u = new URL(url);
  // Headers given as pairs are sent as they are: declare the body's length as every AWS client does (not chunked).
  let headers = opts.headers;
  if (
    Array.isArray(headers) &&
    opts.body !== undefined &&
    !headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k))
  )
    headers = [...headers, ['content-length', String(Buffer.byteLength(opts.body))]];
  return new Promise((resolvePromise, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/',
        headers: headers as http.OutgoingHttpHeaders,
        agent: opts.agent ?? false,
        setHost: !hasHost(headers),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(body) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolvePromise({ status: res.statusCode!, headers: res.headers, body, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function hasHost(h: unknown): boolean {
  if (!h) return false;
  if (Array.isArray(h)) return h.some(([k]) => String(k).toLowerCase() === 'host');
  return Object.keys(h as object).some((k) => k.toLowerCase() === 'host');
}

/** Sends a request signed by the SDK signer. */
export async function signedCall(
  url: string,
  target: string,
  body: unknown,
  o: Omit<SignOptions, 'target' | 'body'> & { agent?: http.Agent } = {},
): Promise<RawResponse> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers = await signKms(url, { ...o, target: `TrentService.${target}`, body: text });
  return rawRequest(url, { headers, body: text, ...(o.agent ? { agent: o.agent } : {}) });
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestMtime(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The compiled serve entry for child-process tests (a child cannot import .ts).
 * `npm ci` builds dist/ (prepare → tsc); when dist/ is missing or older than
 * src/, this runs `npm run build:ts` once (type errors elsewhere do not stop
 * tsc from emitting) and checks again.
 */
export function builtServeEntry(): string {
  const entry = join(ROOT, 'dist/cli/serve.js');
  const fresh = () =>
    existsSync(entry) &&
    existsSync(join(ROOT, 'dist/server/worker.js')) &&
    statSync(entry).mtimeMs >= newestMtime(join(ROOT, 'src')) - 1;
  if (!fresh()) {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore', timeout: 240_000 });
  }
  if (!existsSync(entry)) throw new Error(`${entry} is missing and \`npm run build:ts\` did not produce it`);
  return entry;
}

const signingKeys = new Map<string, Buffer>();

/**
 * A fast SigV4 signer for load and fuzz loops (synchronous, no SDK): the JS
 * SDK's header set, optionally with extra headers. The verifier is checked
 * against the SDK's own signer elsewhere.
 */
export function signFast(
  host: string,
  target: string,
  body: Buffer,
  amzDate: string,
  extra: [string, string][] = [],
  credential: { accessKeyId: string; secretAccessKey: string } = CRED,
): [string, string][] {
  const date = amzDate.slice(0, 8);
  const headers: [string, string][] = [
    ['content-type', 'application/x-amz-json-1.1'],
    ['host', host],
    ['x-amz-date', amzDate],
    ['x-amz-target', target],
    ...extra,
  ];
  headers.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const signed = headers.map((h) => h[0]).join(';');
  const canonical = `POST\n/\n\n${headers.map(([k, v]) => `${k}:${v}\n`).join('')}\n${signed}\n${createHash('sha256').update(body).digest('hex')}`;
  const scope = `${date}/us-east-1/kms/aws4_request`;
  const sts = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
  const id = `${credential.secretAccessKey}/${date}`;
  let k = signingKeys.get(id);
  if (!k) {
    k = createHmac('sha256', `AWS4${credential.secretAccessKey}`).update(date).digest();
    for (const p of ['us-east-1', 'kms', 'aws4_request']) k = createHmac('sha256', k).update(p).digest();
    signingKeys.set(id, k);
  }
  const sig = createHmac('sha256', k).update(sts).digest('hex');
  return [
    ...headers,
    [
      'authorization',
      `AWS4-HMAC-SHA256 Credential=${credential.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${sig}`,
    ],
  ];
}

export function amzNow(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export interface ServeChild {
  proc: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `node dist/cli/serve.js --port 0 [--quiet] …args` (credentials CRED
 * in its environment, HOME = `home`) and resolves once it says where it listens.
 */
export function startServe(args: string[], home: string, env: NodeJS.ProcessEnv = {}): Promise<ServeChild> {
  const quiet = args.includes('--log') ? [] : ['--quiet'];
  const proc = track(
    spawn(process.execPath, [builtServeEntry(), '--port', '0', ...quiet, ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        KMS_HMAC_ACCESS_KEY_ID: CRED.accessKeyId,
        KMS_HMAC_SECRET_ACCESS_KEY: CRED.secretAccessKey,
        ...env,
      },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (https?:\/\/[^ ]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1]!, stdout: () => out, stderr: () => err, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening: ${err}`));
    });
  });
}

/** Stops a serve child with SIGTERM and resolves with how it exited. */
export async function stopServe(child: ServeChild): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
  return child.exited;
}
