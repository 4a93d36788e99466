/**
 * The KMS-compatible HTTP endpoint: AWS JSON 1.1 over `POST /`,
 * `X-Amz-Target: TrentService.<Operation>`, SigV4 on every request.
 *
 * Request pipeline (each step answers its own error; none buffers more than
 * `maxBodyBytes`): Host (hosts.ts) → method/path → SigV4 on the headers →
 * body (size-limited) → SigV4 on the body → target → JSON → member types →
 * KmsHmacClient → response. A request refused before its body is read (a
 * Host that is neither loopback nor allowed, wrong method or path, no or
 * unknown credentials, a bad scope or date, a body declared too large) is
 * answered at once and its connection closed: the body is never buffered.
 *
 * Resources a caller can hold are bounded: open connections
 * (`maxConnections`), time to send the headers (`headersTimeoutMs`) and the
 * whole request (`requestTimeoutMs`), body size (`maxBodyBytes`, and
 * `maxUnhashedBodyBytes` for a request whose signature can only be checked
 * once its body is in).
 *
 * Status policy: client errors are 4xx, always. A 5xx is only ever sent for a
 * read-only operation (GenerateMac, VerifyMac, Describe*, List*): clients
 * retry 5xx, so answering one after a mutation committed would make them
 * repeat it (a second CreateKey). Unexpected failures of mutating operations
 * are answered KMSInternalException with HTTP 400. The one 5xx a mutation
 * can get is DependencyTimeoutException (503): the key store was unreachable
 * and the write certainly did not commit, so a retry is what the client should do.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { toWireError } from '../kms/errors.js';
import { isRegionName } from '../kms/multi-region.js';
import { checkAllowedHosts, isAllowedHost } from './hosts.js';
import { AuthError, rawHeader, SigV4Verifier, type Credential, type PendingAuth } from './sigv4.js';
import {
  OPERATIONS,
  SerializationError,
  decodeInput,
  encodeGenerateMacOutput,
  encodeOutput,
  parseBody,
  type OperationSpec,
} from './codec.js';
import type { KeyStoreHealth } from '../keystore/types.js';
import { DRAIN_TIMEOUT_MS, drain, stopAccepting } from './drain.js';
import { answerProbe, probeOf, type ProbeSource } from './health.js';
import type { AccessLog } from './log.js';
import { CONNECTION_LIMIT, type RequestMetrics } from './metrics.js';
import { loadTlsPair, reloadTls, wipeTlsPair, type TlsCertificateInfo, type TlsFiles } from './tls.js';

export const DEFAULT_PORT = 4599;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_ACCOUNT_ID = '111122223333';
/** Request bodies above this are refused (413) without being buffered. */
export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * The body limit of a request that does not declare its payload hash
 * (`x-amz-content-sha256`; the Python clients and the AWS CLI never do). Its
 * signature can be checked only once the body is in, so whoever knows an
 * access key id (it is logged) could otherwise make the server buffer and
 * hash `maxBodyBytes` per connection. Such a request must declare a
 * Content-Length up to this, or it is refused before its body is read. Every
 * request the KMS HMAC operations take fits with room to spare.
 */
export const MAX_UNHASHED_BODY_BYTES = 64 * 1024;
/** Open connections beyond this are closed as they are accepted. */
export const MAX_CONNECTIONS = 1024;
/** A request's headers must arrive within this (from its first byte). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A whole request, body included, must arrive within this (from its first byte). */
export const REQUEST_TIMEOUT_MS = 30_000;
const TARGET_PREFIX = 'TrentService.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** The subset of KmsHmacClient the server calls: async methods by name, sync MAC twins for the hot path. */
export interface KmsApi {
  [method: string]: unknown;
  generateMacSync?(input: Record<string, unknown>): unknown;
  verifyMacSync?(input: Record<string, unknown>): unknown;
  /** The same client as another principal (KmsHmacClient#forPrincipal): needed for credentials that name one. */
  forPrincipal?(principal: { principal?: string; accountId?: string }): KmsApi;
  /** The same API in another Region (KmsHmacClient#inRegion); without it every request is answered in the client's. */
  inRegion?(region: string): KmsApi;
  close?(): Promise<void> | void;
}

/** A client as one principal in one Region, with its sync MAC twins bound. */
interface BoundClient {
  readonly client: KmsApi;
  readonly genSync: ((i: Record<string, unknown>) => unknown) | undefined;
  readonly verSync: ((i: Record<string, unknown>) => unknown) | undefined;
}

function bind(c: KmsApi): BoundClient {
  return {
    client: c,
    genSync: typeof c.generateMacSync === 'function' ? c.generateMacSync.bind(c) : undefined,
    verSync: typeof c.verifyMacSync === 'function' ? c.verifyMacSync.bind(c) : undefined,
  };
}

/** One principal's clients: in the server's Region, and in the others it was asked in (inRegion). */
interface PrincipalClients {
  readonly home: BoundClient;
  readonly regional: Map<string, BoundClient>;
}

function principalClients(c: KmsApi): PrincipalClients {
  return { home: bind(c), regional: new Map() };
}

/** Under `--auth any` (any scope accepted), the most distinct Regions answered, so a caller cannot grow the cache without end. */
const MAX_ANY_REGIONS = 64;

export interface HandlerOptions {
  client: KmsApi;
  /** Credential pairs accepted for SigV4; at least one unless `auth` is `'any'`. */
  credentials?: readonly Credential[];
  /** `'sigv4'` (default): verify signatures. `'any'`: emulator mode, any well-formed in-window signature. */
  auth?: 'sigv4' | 'any';
  /** Region the credential scope must name (default us-east-1), and the client's. `--auth any` accepts any region. */
  region?: string;
  /**
   * More Regions answered besides `region`: a request is answered by the
   * client's `inRegion(<its SigV4 scope's Region>)`. Under `--auth any`,
   * every well-formed Region name is answered.
   */
  regions?: readonly string[];
  maxBodyBytes?: number;
  /** Body limit when `x-amz-content-sha256` is not sent (default 64 KiB, at most `maxBodyBytes`). */
  maxUnhashedBodyBytes?: number;
  /** Host names or addresses answered besides loopback ones (DNS rebinding, hosts.ts); any port. */
  allowedHosts?: readonly string[];
  log?: AccessLog | null;
  /** Request counts and latencies (metrics.ts); none by default. */
  metrics?: RequestMetrics | null;
  /** Whether /readyz answers 200 while the key store is degraded (MACs from the snapshot). Default true. */
  degradedReady?: boolean;
  /** Clock for SigV4, for tests. */
  now?: () => number;
  /**
   * Re-reads the key store if another process changed it; true when it did.
   * Called only when a read-only operation failed on key lookup or state, so
   * a key created through another worker a moment ago is found at once
   * instead of after the store's next poll.
   */
  refresh?: () => boolean;
}

/** Errors that a stale view of the store can cause (another process created, enabled or imported the key). */
const STALE_ERRORS = new Set([
  'NotFoundException',
  'DisabledException',
  'KMSInvalidStateException',
  // A grant token that another process issued a moment ago.
  'InvalidGrantTokenException',
]);

interface Ctx {
  id: string;
  start: number;
  op: string | undefined;
  accessKeyId: string | undefined;
}

/** A request handler bound to one client; exposed separately so tests can drive it without a listener. */
export class KmsRequestHandler {
  readonly client: KmsApi;
  private readonly verifier: SigV4Verifier;
  private readonly maxBody: number;
  private readonly maxUnhashedBody: number;
  private readonly allowedHosts: readonly string[];
  private readonly log: AccessLog | null;
  private readonly metrics: RequestMetrics | null;
  /** What /healthz and /readyz answer from (health.ts). */
  readonly probes: ProbeSource;
  /** The client as the server's account's root: emulator mode, and credentials that name no principal. */
  private readonly root: PrincipalClients;
  /** accessKeyId → the client as that credential's principal (only credentials that name one). */
  private byAccessKey = new Map<string, PrincipalClients>();
  private readonly homeRegion: string;
  private readonly refresh: (() => boolean) | undefined;
  /** Set during shutdown: responses carry `Connection: close`. */
  closing = false;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: HandlerOptions) {
    this.client = opts.client;
    const acceptAny = opts.auth === 'any';
    this.verifier = new SigV4Verifier({
      credentials: opts.credentials ?? [],
      acceptAny,
      region: acceptAny ? '*' : (opts.region ?? DEFAULT_REGION),
      ...(opts.regions ? { regions: opts.regions } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
    this.maxUnhashedBody = Math.min(this.maxBody, opts.maxUnhashedBodyBytes ?? MAX_UNHASHED_BODY_BYTES);
    this.allowedHosts = checkAllowedHosts(opts.allowedHosts);
    this.log = opts.log ?? null;
    this.metrics = opts.metrics ?? null;
    const c = this.client;
    const health =
      typeof c.keyStoreHealth === 'function' ? (c.keyStoreHealth as () => KeyStoreHealth).bind(c) : undefined;
    this.probes = {
      keyStoreHealth: () => health?.() ?? { store: 'injected client', state: 'ok', reloadFailures: 0 },
      draining: () => this.closing,
      degradedReady: opts.degradedReady ?? true,
    };
    this.root = principalClients(this.client);
    this.byAccessKey = this.principals(opts.credentials ?? []);
    this.homeRegion = opts.region ?? DEFAULT_REGION;
    this.refresh = opts.refresh;
  }

  /** The clients of the credentials that name a principal or account. */
  private principals(credentials: readonly Credential[]): Map<string, PrincipalClients> {
    const out = new Map<string, PrincipalClients>();
    for (const c of credentials) {
      if (c.principal === undefined && c.accountId === undefined) continue;
      if (typeof this.client.forPrincipal !== 'function')
        throw new TypeError(
          `credential ${c.accessKeyId} names a principal, but the client has no forPrincipal() to evaluate it with`,
        );
      out.set(
        c.accessKeyId,
        principalClients(
          this.client.forPrincipal({
            ...(c.principal !== undefined ? { principal: c.principal } : {}),
            ...(c.accountId !== undefined ? { accountId: c.accountId } : {}),
          }),
        ),
      );
    }
    return out;
  }

  /** Replaces the accepted credentials and their principals (a reloaded credentials file), all or nothing. */
  setCredentials(credentials: readonly Credential[]): void {
    const next = this.principals(credentials);
    this.verifier.setCredentials(credentials);
    this.byAccessKey = next;
  }

  /**
   * The client that answers a request of access key `accessKeyId` scoped to
   * `region` (the verifier accepted both): that credential's principal (the
   * root of the server's account without one) in that Region. Undefined: a
   * Region this server will not answer.
   */
  private apiFor(accessKeyId: string | undefined, region: string): BoundClient | undefined {
    const p = (accessKeyId !== undefined ? this.byAccessKey.get(accessKeyId) : undefined) ?? this.root;
    if (region === this.homeRegion || typeof p.home.client.inRegion !== 'function') return p.home;
    let api = p.regional.get(region);
    if (api === undefined) {
      if (!isRegionName(region) || p.regional.size >= MAX_ANY_REGIONS) return undefined;
      api = bind(p.home.client.inRegion(region));
      p.regional.set(region, api);
    }
    return api;
  }

  /** True when `err` may come from a stale store view and the store did change since: worth one retry. */
  private staleRetry(err: unknown): boolean {
    if (this.refresh === undefined || !(err instanceof Error) || !STALE_ERRORS.has(err.name)) return false;
    try {
      return this.refresh();
    } catch {
      return false;
    }
  }

  private callSync(fn: (i: Record<string, unknown>) => unknown, input: Record<string, unknown>): unknown {
    try {
      return fn(input);
    } catch (err) {
      if (this.staleRetry(err)) return fn(input);
      throw err;
    }
  }

  /** Wipes cached signing keys (after shutdown). */
  destroy(): void {
    this.verifier.destroy();
  }

  /** Requests being processed now (past their headers' checks, answer not yet written). */
  get inflightRequests(): number {
    return this.inflight;
  }

  /** Resolves when no request is being processed (used by shutdown before closing the store). */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const ctx: Ctx = {
      id: randomUUID(),
      start: this.log || this.metrics ? performance.now() : 0,
      op: undefined,
      accessKeyId: undefined,
    };
    // Probes first: a Kubernetes probe addresses the pod by its IP and signs nothing; the answer is one word (health.ts).
    if (req.method !== 'POST') {
      const probe = probeOf(req);
      if (probe !== undefined) {
        answerProbe(probe, req, res, this.probes);
        return;
      }
    }
    // Then, before anything else: a request addressed to another host may come from a page that rebound its name to us.
    const host = rawHeader(req.rawHeaders, 'host');
    if (!isAllowedHost(host, this.allowedHosts)) {
      this.refuse(
        req,
        res,
        ctx,
        403,
        'AccessDeniedException',
        host === undefined
          ? 'The request has no Host header.'
          : `Host '${truncate(host)}' is not allowed: this endpoint answers requests addressed to a loopback name or address, or to a host given with --allowed-host.`,
      );
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      this.refuse(
        req,
        res,
        ctx,
        405,
        'MethodNotAllowedException',
        `Method ${req.method} is not allowed: the KMS JSON 1.1 protocol uses POST / with an X-Amz-Target header.`,
      );
      return;
    }
    if (req.url !== '/') {
      this.refuse(
        req,
        res,
        ctx,
        404,
        'UnknownOperationException',
        `No endpoint at this path: the KMS JSON 1.1 protocol uses POST / with an X-Amz-Target header.`,
      );
      return;
    }
    // Strangers (no credentials, unknown ones, out-of-window or mis-scoped signatures) are answered now,
    // before a byte of their body is read.
    let pending: PendingAuth;
    try {
      pending = this.verifier.checkHeaders('POST', '/', req.rawHeaders);
    } catch (err) {
      if (err instanceof AuthError) this.refuse(req, res, ctx, 400, err.name, err.message);
      else this.sendUnexpected(req, res, ctx, err, undefined, true);
      return;
    }
    // Without a declared payload hash the signature is still unproven: such a body must be small and announced.
    const unhashed = pending.declaredHash === undefined;
    const limit = unhashed ? this.maxUnhashedBody : this.maxBody;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      this.refuseTooLarge(req, res, ctx, unhashed);
      return;
    }
    if (unhashed && declared === undefined && req.headers['transfer-encoding'] !== undefined) {
      this.refuse(
        req,
        res,
        ctx,
        411,
        'LengthRequiredException',
        `A request without x-amz-content-sha256 must declare its Content-Length (at most ${this.maxUnhashedBody} bytes).`,
      );
      return;
    }
    this.inflight++;
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.leave();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeListener('data', onData);
        req.removeListener('end', onEnd);
        first = undefined;
        chunks = undefined;
        finish();
        this.refuseTooLarge(req, res, ctx, unhashed);
        return;
      }
      if (first === undefined) first = chunk;
      else {
        chunks ??= [first];
        chunks.push(chunk);
      }
    };
    const onEnd = () => {
      const body = chunks ? Buffer.concat(chunks, size) : (first ?? EMPTY);
      let p: Promise<void> | undefined;
      try {
        p = this.process(req, res, ctx, pending, body);
      } catch (err) {
        this.sendUnexpected(req, res, ctx, err, undefined);
      }
      if (p) {
        p.then(finish, (err: unknown) => {
          // process() answers its own errors; this is a last resort that must not become an unhandled rejection.
          finish();
          this.sendUnexpected(req, res, ctx, err, undefined);
        });
      } else {
        finish();
      }
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', finish);
    req.on('close', () => {
      if (!req.complete) finish();
    });
  };

  private leave(): void {
    if (--this.inflight === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private refuseTooLarge(req: http.IncomingMessage, res: http.ServerResponse, ctx: Ctx, unhashed: boolean): void {
    this.refuse(
      req,
      res,
      ctx,
      413,
      'RequestEntityTooLargeException',
      unhashed && this.maxUnhashedBody < this.maxBody
        ? `Request body exceeds the limit of ${this.maxUnhashedBody} bytes for a request without x-amz-content-sha256 (declare the payload hash to send up to ${this.maxBody} bytes).`
        : `Request body exceeds the limit of ${this.maxBody} bytes.`,
    );
  }

  /**
   * Answers a request that will not be served, without waiting for (or storing) its body, and
   * closes the connection once the answer is written: node:http discards whatever body bytes
   * arrive before then, so a refused request costs its headers and nothing more.
   */
  private refuse(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    status: number,
    type: string,
    message: string,
  ): void {
    this.metrics?.rejected(type);
    this.sendError(req, res, ctx, status, type, message, true);
  }

  /** Returns a promise only for async operations. */
  private process(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    pending: PendingAuth,
    body: Buffer,
  ): Promise<void> | undefined {
    let api: BoundClient | undefined;
    try {
      ctx.accessKeyId = this.verifier.checkBody(pending, body).accessKeyId;
      api = this.apiFor(ctx.accessKeyId, pending.region);
      if (api === undefined) {
        throw new AuthError(
          'InvalidSignatureException',
          `Credential should be scoped to a valid region, not '${truncate(pending.region)}'. `,
        );
      }
    } catch (err) {
      if (err instanceof AuthError) {
        this.sendError(req, res, ctx, 400, err.name, err.message);
        return undefined;
      }
      throw err;
    }
    const { client, genSync, verSync } = api;
    const target = req.headers['x-amz-target'];
    const opName =
      typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
    const spec = opName === undefined ? undefined : OPERATIONS.get(opName);
    if (spec === undefined) {
      this.sendError(
        req,
        res,
        ctx,
        400,
        'UnknownOperationException',
        typeof target === 'string' ? `Unknown operation ${truncate(target)}` : 'Missing X-Amz-Target header',
      );
      return undefined;
    }
    ctx.op = opName;
    let input: Record<string, unknown>;
    try {
      input = decodeInput(spec, parseBody(body));
    } catch (err) {
      if (err instanceof SerializationError) {
        this.sendError(req, res, ctx, 400, 'SerializationException', err.message);
        return undefined;
      }
      throw err;
    }
    // Hot path: MAC operations run synchronously (no promise, no extra tick). A key lookup that fails
    // on this process's snapshot falls through to the async method below, which asks the key store
    // first (a key another replica created or enabled a moment ago).
    if (opName === 'GenerateMac' && genSync) {
      let out: unknown;
      try {
        out = this.callSync(genSync, input);
      } catch (err) {
        if (!STALE_ERRORS.has((err as Error)?.name)) {
          this.sendKmsError(req, res, ctx, err, spec);
          return undefined;
        }
      }
      if (out !== undefined) {
        this.send(req, res, ctx, 200, encodeGenerateMacOutput(out as Record<string, never>), undefined);
        return undefined;
      }
    }
    if (opName === 'VerifyMac' && verSync) {
      let out: unknown;
      try {
        out = this.callSync(verSync, input);
      } catch (err) {
        if (!STALE_ERRORS.has((err as Error)?.name)) {
          this.sendKmsError(req, res, ctx, err, spec);
          return undefined;
        }
      }
      if (out !== undefined) {
        this.send(req, res, ctx, 200, encodeOutput(out), undefined);
        return undefined;
      }
    }
    const fn = client[spec.method];
    if (typeof fn !== 'function') {
      this.sendError(req, res, ctx, 400, 'UnknownOperationException', `Unknown operation ${truncate(String(target))}`);
      return undefined;
    }
    const call = () => Promise.resolve((fn as (i: unknown) => unknown).call(client, input));
    let result: Promise<unknown>;
    try {
      result = call();
    } catch (err) {
      this.sendKmsError(req, res, ctx, err, spec);
      return undefined;
    }
    if (!spec.mutating) result = result.catch((err) => (this.staleRetry(err) ? call() : Promise.reject(err)));
    return result.then(
      (out) => {
        let text: string;
        try {
          text = encodeOutput(out);
        } catch (err) {
          this.sendUnexpected(req, res, ctx, err, spec);
          return;
        }
        this.send(req, res, ctx, 200, text, undefined);
      },
      (err) => this.sendKmsError(req, res, ctx, err, spec),
    );
  }

  private sendKmsError(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    err: unknown,
    spec: OperationSpec | undefined,
  ): void {
    const w = toWireError(err);
    if (w.type === 'KMSInternalException' && this.log) this.log.error(ctx.id, ctx.op, err);
    let status = w.status;
    // DependencyTimeoutException (503) means the write certainly did not commit: safe for clients to retry.
    if (status >= 500 && (spec === undefined || spec.mutating) && w.type !== 'DependencyTimeoutException') status = 400;
    this.sendError(req, res, ctx, status, w.type, w.message);
  }

  private sendUnexpected(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    err: unknown,
    spec: OperationSpec | undefined,
    close = false,
  ): void {
    if (this.log) this.log.error(ctx.id, ctx.op, err);
    const status = spec === undefined || spec.mutating ? 400 : 500;
    this.sendError(req, res, ctx, status, 'KMSInternalException', 'An internal error occurred.', close);
  }

  private sendError(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    status: number,
    type: string,
    message: string | undefined,
    close = false,
  ): void {
    const body =
      message === undefined
        ? `{"__type":${JSON.stringify(type)}}`
        : `{"__type":${JSON.stringify(type)},"message":${JSON.stringify(message)}}`;
    this.send(req, res, ctx, status, body, type, close);
  }

  private send(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    status: number,
    body: string,
    errorType: string | undefined,
    close = false,
  ): void {
    if (res.headersSent || res.destroyed) return;
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': CONTENT_TYPE,
      'Content-Length': Buffer.byteLength(body),
      'x-amzn-RequestId': ctx.id,
    };
    if (errorType !== undefined) headers['x-amzn-ErrorType'] = errorType;
    if (close || this.closing) headers.Connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
    this.metrics?.request(ctx.op, errorType, (performance.now() - ctx.start) / 1000);
    if (this.log)
      this.log.request(req, ctx.id, ctx.op, status, errorType, ctx.accessKeyId, performance.now() - ctx.start);
  }
}

const EMPTY = Buffer.alloc(0);

function truncate(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}

export interface ListenOptions extends HandlerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** How long a drain (shutdown) waits for in-flight requests before cutting connections (default 10 s; drain.ts). */
  shutdownTimeoutMs?: number;
  /** Serve HTTPS with this PEM certificate and key (tls.ts); `reloadTls()` re-reads them. */
  tls?: TlsFiles;
  /** Open connections allowed at once (default 1024); more are closed as they are accepted. */
  maxConnections?: number;
  /** Time allowed for a request's headers, from its first byte (default 10 s); then 408 and the connection is closed. */
  headersTimeoutMs?: number;
  /** Time allowed for a whole request, body included, from its first byte (default 30 s); then the connection is closed. */
  requestTimeoutMs?: number;
  /** Closes the client (its key store) after the last request finished. Default true. */
  closeClient?: boolean;
}

export interface RunningServer {
  /** `http://host:port`, or `https://…` with TLS */
  url: string;
  host: string;
  port: number;
  /** Graceful drain (drain.ts): stop accepting, finish in-flight requests, close the client/store. Idempotent. */
  close(): Promise<void>;
  /** The drain's first step alone: the listener closes, open connections carry on (drain.ts). */
  stopAccepting(): void;
  /**
   * Re-reads the TLS certificate and key for new connections (SIGHUP in
   * `serve`). Rejects with TlsConfigError, the old pair still in use, when the
   * new one does not load; with workers, when any worker's did not. Undefined without TLS.
   */
  reloadTls?(): Promise<TlsCertificateInfo>;
}

export interface ServerLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** The connection limits with their defaults, checked (a bad value is a RangeError, never a silently unlimited server). */
export function serverLimits(o: Partial<ServerLimits>): ServerLimits {
  const limits = {
    maxConnections: o.maxConnections ?? MAX_CONNECTIONS,
    headersTimeoutMs: o.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
    requestTimeoutMs: o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
  };
  for (const [name, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(
      `headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed requestTimeoutMs (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

/** Listens with one process. `startServer` (index) adds key store opening, logging and workers. */
export async function listen(
  opts: ListenOptions,
): Promise<RunningServer & { handler: KmsRequestHandler; server: http.Server }> {
  const handler = new KmsRequestHandler(opts);
  const limits = serverLimits(opts);
  const tls = opts.tls === undefined ? undefined : loadTlsPair(opts.tls);
  const serverOptions: http.ServerOptions = {
    keepAlive: true,
    noDelay: true,
    requireHostHeader: false,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // node:http enforces both timeouts on this tick (default 30 s, which would stretch a 10 s limit to 40 s).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
  const server: http.Server =
    tls === undefined
      ? http.createServer(serverOptions, handler.handle)
      : https.createServer({ ...serverOptions, ...tls.options }, handler.handle);
  if (tls !== undefined) wipeTlsPair(tls); // the server holds its own secure context
  server.maxConnections = limits.maxConnections;
  if (opts.metrics) {
    const metrics = opts.metrics;
    server.on('drop', () => metrics.rejected(CONNECTION_LIMIT));
  }
  // Clients pool connections for a while; outlive their idle timers so they never reuse a socket we just closed.
  // (An idle connection is not a request: the headers timeout starts with a request's first byte.)
  server.keepAliveTimeout = 65_000;
  server.maxHeadersCount = 100;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Unparseable HTTP or a timeout: answer in JSON when the socket is still writable and no answer has begun.
    const pending = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (socket.writable && !pending?.headersSent) {
      const [status, type, message]: [number, string, string] =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'RequestHeaderFieldsTooLargeException', 'Malformed HTTP request.']
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? [408, 'RequestTimeoutException', 'The request was not received in time.']
            : [400, 'SerializationException', 'Malformed HTTP request.'];
      opts.metrics?.rejected(type);
      const body = JSON.stringify({ __type: type, message });
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: ${CONTENT_TYPE}\r\n` +
          `x-amzn-ErrorType: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        // Closed once written: the socket is half-open, and a peer that never closes its side must not keep it.
        () => socket.destroy(),
      );
    } else {
      socket.destroy();
    }
  });
  const host = opts.host ?? DEFAULT_HOST;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      handler.closing = true;
      await drain(server, opts.shutdownTimeoutMs ?? DRAIN_TIMEOUT_MS, () => handler.idle());
      handler.destroy();
      if (opts.closeClient !== false && typeof handler.client.close === 'function') await handler.client.close();
    })();
    return closing;
  };
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const files = opts.tls;
  return {
    url: `${files ? 'https' : 'http'}://${shownHost}:${port}`,
    host,
    port,
    close,
    stopAccepting: () => void stopAccepting(server),
    handler,
    server,
    ...(files ? { reloadTls: async () => reloadTls(server as https.Server, files) } : {}),
  };
}
