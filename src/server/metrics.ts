/**
 * Prometheus metrics for `serve` (prom-client, loaded only when metrics are
 * on), served with the probes on a port of their own (`--metrics-port`,
 * off by default, loopback by default).
 *
 *   kms_hmac_requests_total{operation,exception}       answered requests
 *   kms_hmac_request_duration_seconds{operation}       histogram, first byte of the answer
 *   kms_hmac_requests_in_flight                        requests being processed now
 *   kms_hmac_strangers_rejected_total{reason}          refused before their body was read, and
 *                                                      connections closed at --max-connections
 *   kms_hmac_keystore_snapshot_age_seconds             since the snapshot was last known current
 *   kms_hmac_keystore_reload_failures_total            background reloads that failed
 *   kms_hmac_keystore_state{state}                     1 for the store's state (ok, degraded, tampered)
 *   kms_hmac_fast_path_leases{state}                   keys per lease state (registerFastPathMetrics)
 *   kms_hmac_fast_path_requests_total{answer}          local, stale or forwarded (same)
 *   kms_hmac_info{version,node,backend,simd,simd_paths} 1
 *
 * Label values are bounded: operations come from the operation registry
 * (`none` before one is known), exceptions from the error catalogue (`none`
 * for a success, `other` for anything else); no key id, alias, access key id
 * or address is ever a label. The request path pays one counter increment
 * and one histogram observation, through label children cached on first
 * use; everything else is read when Prometheus scrapes.
 *
 * With `--workers N` each worker keeps its own registry and the cluster
 * primary answers a scrape by asking every worker for theirs
 * (prom-client's AggregatorRegistry): counters and histograms are summed,
 * the snapshot age and store state take the worst worker, the info metric
 * the first.
 */
import { createRequire } from 'node:module';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Prom from 'prom-client';
import { backendInfo } from '../backend/index.js';
import type { KeyStoreHealth } from '../keystore/types.js';
import { KMS_ERROR_NAMES } from '../kms/errors.js';
import { OPERATIONS } from '../kms/operations.js';
import { answerProbe, probeOf, type ProbeSource } from './health.js';

type PromClient = typeof Prom;
const require = createRequire(import.meta.url);
let loaded: PromClient | undefined;
/** prom-client, loaded by the first process that turns metrics on (not on every CLI start). */
export function promClient(): PromClient {
  loaded ??= require('prom-client') as PromClient;
  return loaded;
}

/** Seconds: from 100 µs (a MAC on loopback) to 10 s (a write waiting on a lost database). */
export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];

/** What the endpoint answers besides the KMS layer's exceptions: its own refusals and SigV4's. */
const SERVER_EXCEPTIONS = [
  'AccessDeniedException',
  'MethodNotAllowedException',
  'RequestEntityTooLargeException',
  'LengthRequiredException',
  'RequestHeaderFieldsTooLargeException',
  'RequestTimeoutException',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'InvalidSignatureException',
  'UnrecognizedClientException',
];
const EXCEPTIONS: ReadonlySet<string> = new Set([...KMS_ERROR_NAMES, ...SERVER_EXCEPTIONS]);
/** The reason of a connection closed as it was accepted, at --max-connections. */
export const CONNECTION_LIMIT = 'connection_limit';

const exceptionLabel = (e: string | undefined) => (e === undefined ? 'none' : EXCEPTIONS.has(e) ? e : 'other');
const operationLabel = (op: string | undefined) => (op !== undefined && OPERATIONS.has(op) ? op : 'none');

export interface MetricsSource {
  /** Requests being processed now. */
  inflight(): number;
  keyStoreHealth(): KeyStoreHealth;
}

/** What the request handler calls (server.ts). */
export interface RequestMetrics {
  /** One answered request. */
  request(operation: string | undefined, exception: string | undefined, seconds: number): void;
  /** A request refused before its body was read (reason: its exception name), or a connection at the limit. */
  rejected(reason: string): void;
}

type Child = { inc(): void };
type Timer = { observe(v: number): void };

function packageVersion(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The info metric's labels: what runs the MACs. */
function infoLabels(): Record<string, string> {
  const b = backendInfo();
  const status = String(b.details.simdStatus ?? '');
  const paths = status
    .split('; ')
    .filter((s) => s.endsWith(': ok'))
    .map((s) => s.slice(0, -4));
  return {
    version: packageVersion(),
    node: process.versions.node,
    backend: b.name,
    simd: b.name === 'native' ? String(b.details.simdPath ?? 'off') : b.simd ? 'simd128' : 'off',
    simd_paths: paths.join(','),
  };
}

export class ServerMetrics implements RequestMetrics {
  readonly registry: Prom.Registry;
  readonly #requests: Prom.Counter<'operation' | 'exception'>;
  readonly #latency: Prom.Histogram<'operation'>;
  readonly #rejected: Prom.Counter<'reason'>;
  readonly #counts = new Map<string | undefined, Map<string | undefined, Child>>();
  readonly #timers = new Map<string | undefined, Timer>();

  /** `registry`: where to register (default a new one; a worker passes the one the primary aggregates). */
  constructor(source: MetricsSource, registry?: Prom.Registry) {
    const p = promClient();
    this.registry = registry ?? new p.Registry();
    const registers = [this.registry];
    this.#requests = new p.Counter({
      name: 'kms_hmac_requests_total',
      help: 'Requests answered, by operation (none: refused before one was known) and exception (none: success).',
      labelNames: ['operation', 'exception'],
      registers,
    });
    this.#latency = new p.Histogram({
      name: 'kms_hmac_request_duration_seconds',
      help: 'Time from a request reaching the handler to its answer being written, by operation.',
      labelNames: ['operation'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#rejected = new p.Counter({
      name: 'kms_hmac_strangers_rejected_total',
      help: 'Requests refused before their body was read (Host, credentials, signature scope or date, size), by exception; connection_limit: connections closed at --max-connections.',
      labelNames: ['reason'],
      registers,
    });
    new p.Gauge({
      name: 'kms_hmac_requests_in_flight',
      help: 'Requests being processed now.',
      registers,
      collect() {
        this.set(source.inflight());
      },
    });
    new p.Gauge({
      name: 'kms_hmac_keystore_snapshot_age_seconds',
      help: 'Seconds since the key store snapshot was last known current (loaded, caught up or checked unchanged).',
      aggregator: 'max',
      registers,
      collect() {
        const at = source.keyStoreHealth().snapshotLoadedAt;
        if (at === undefined) this.reset();
        else this.set(Math.max(0, (Date.now() - at) / 1000));
      },
    });
    new p.Counter({
      name: 'kms_hmac_keystore_reload_failures_total',
      help: 'Background reloads of the key store that failed since it was opened.',
      registers,
      collect() {
        this.reset();
        this.inc(source.keyStoreHealth().reloadFailures);
      },
    });
    new p.Gauge({
      name: 'kms_hmac_keystore_state',
      help: 'The key store health: 1 for its state (ok; degraded: the database is unreachable, MACs come from the snapshot; tampered: a reload failed authentication).',
      labelNames: ['state'],
      aggregator: 'max',
      registers,
      collect() {
        const state = source.keyStoreHealth().state;
        for (const s of ['ok', 'degraded', 'tampered']) this.set({ state: s }, s === state ? 1 : 0);
      },
    });
    const info = infoLabels();
    new p.Gauge({
      name: 'kms_hmac_info',
      help: 'What serves: the package version, Node, the MAC backend and its SIMD selection (simd_paths: the paths this CPU passed).',
      labelNames: Object.keys(info),
      aggregator: 'first',
      registers,
    }).set(info, 1);
  }

  request(operation: string | undefined, exception: string | undefined, seconds: number): void {
    let byException = this.#counts.get(operation);
    if (byException === undefined) {
      byException = new Map();
      this.#counts.set(operation, byException);
    }
    let count = byException.get(exception);
    if (count === undefined) {
      count = this.#requests.labels(operationLabel(operation), exceptionLabel(exception));
      byException.set(exception, count);
    }
    count.inc();
    let timer = this.#timers.get(operation);
    if (timer === undefined) {
      timer = this.#latency.labels(operationLabel(operation));
      this.#timers.set(operation, timer);
    }
    timer.observe(seconds);
  }

  rejected(reason: string): void {
    this.#rejected.inc({ reason: reason === CONNECTION_LIMIT ? reason : exceptionLabel(reason) });
  }
}

/** The figures a fast-path client keeps (`createFastPathClient(…).fastPathStats`). */
export interface FastPathStatsSource {
  readonly fastPathStats: {
    local: number;
    stale: number;
    forwarded: number;
    keys: Record<string, { lease: string }>;
  };
}

const LEASE_STATES = ['pending', 'valid', 'expired', 'revoked'] as const;

/**
 * Adds a fast-path client's lease states and answer counts to `registry`
 * (default prom-client's global one): `kms_hmac_fast_path_leases{state}` (how
 * many keys' leases are pending, valid, expired, revoked) and
 * `kms_hmac_fast_path_requests_total{answer}` (local, stale, forwarded). Keys
 * are counted, never named. One fast-path client per registry.
 */
export function registerFastPathMetrics(client: FastPathStatsSource, registry?: Prom.Registry): Prom.Registry {
  const p = promClient();
  const registers = [registry ?? p.register];
  new p.Gauge({
    name: 'kms_hmac_fast_path_leases',
    help: 'Keys the fast path serves, by lease state (valid: answered locally; pending, expired, revoked: forwarded).',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<string, number>(LEASE_STATES.map((s) => [s, 0]));
      for (const k of Object.values(client.fastPathStats.keys)) counts.set(k.lease, (counts.get(k.lease) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new p.Counter({
    name: 'kms_hmac_fast_path_requests_total',
    help: 'GenerateMac and VerifyMac commands by answer: local (lease valid), stale (expired lease, AWS unreachable, serve-stale), forwarded.',
    labelNames: ['answer'],
    registers,
    collect() {
      const s = client.fastPathStats;
      this.reset();
      // local counts stale answers too (FastPathStats): each answer is counted once here.
      this.inc({ answer: 'local' }, s.local - s.stale);
      this.inc({ answer: 'stale' }, s.stale);
      this.inc({ answer: 'forwarded' }, s.forwarded);
    },
  });
  return registers[0]!;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** The exposition text and its content type (with workers: the aggregate of theirs). */
  scrape(): Promise<{ contentType: string; body: string }>;
  probes: ProbeSource;
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The metrics port: `GET /metrics`, `/healthz`, `/readyz`, nothing else. It
 * answers whatever the Host header names, as Prometheus addresses a target
 * by its IP, and holds nothing secret: counts, states and versions.
 */
export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer({ keepAlive: true, requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    const probe = probeOf(req);
    if (probe !== undefined) return answerProbe(probe, req, res, o.probes);
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      (req.url === '/metrics' || req.url?.startsWith('/metrics?'))
    ) {
      o.scrape().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          const text = `metrics unavailable: ${(err as Error)?.message ?? String(err)}\n`;
          res.writeHead(500, {
            'Content-Type': 'text/plain; charset=utf-8',
            'Content-Length': Buffer.byteLength(text),
          });
          res.end(text);
        },
      );
      return;
    }
    const text = 'GET /metrics, /healthz or /readyz\n';
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  });
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${port}`,
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
