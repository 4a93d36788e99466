/**
 * `startServer(options)`: the KMS-compatible endpoint with its key store,
 * credentials, access log and (optionally) several worker processes.
 */
import cluster, { type Worker } from 'node:cluster';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KmsHmacClient } from '../client/client.js';
import { resolvePassphrase } from '../keystore/crypto.js';
import { describeKeyStore } from '../keystore/index.js';
import type { KeyStore, KeyStoreHealth } from '../keystore/types.js';
import { resolveQuotas, type Quotas } from '../kms/quotas.js';
import { isRegionName } from '../kms/multi-region.js';
import { readSeedFile, wipeSeed, type Seed, type SeedResult } from '../kms/seed.js';
import type { AccessLogOptions } from './log.js';
import {
  checkCredential,
  checkSecretLengths,
  loadCredentialsFile,
  mergeCredentials,
  CredentialsError,
} from './credentials.js';
import { checkAllowedHosts, isLoopbackHost } from './hosts.js';
import { promClient, startMetricsServer, type MetricsServer } from './metrics.js';
import {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_REGION,
  serverLimits,
  type KmsApi,
  type RunningServer,
} from './server.js';
import type { Credential } from './sigv4.js';
import { seedClient, startInProcess, warnSeed } from './start.js';
import { loadTlsPair, TlsConfigError, wipeTlsPair, type TlsCertificateInfo, type TlsFiles } from './tls.js';

export {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_REGION,
  HEADERS_TIMEOUT_MS,
  MAX_BODY_BYTES,
  MAX_CONNECTIONS,
  MAX_UNHASHED_BODY_BYTES,
  REQUEST_TIMEOUT_MS,
  KmsRequestHandler,
} from './server.js';
export type { KmsApi, RunningServer } from './server.js';
export { SigV4Verifier, AuthError, deriveSigningKey, type Credential } from './sigv4.js';
export {
  CredentialsError,
  ENV_ACCESS_KEY_ID,
  ENV_SECRET_ACCESS_KEY,
  ENV_SESSION_TOKEN,
  MIN_SECRET_LENGTH,
} from './credentials.js';
export { isAllowedHost, isLoopbackHost } from './hosts.js';
export { DRAIN_TIMEOUT_MS, IDLE_GRACE_MS } from './drain.js';
export { readiness, type ProbeSource, type ReadinessStatus } from './health.js';
export { LATENCY_BUCKETS, registerFastPathMetrics, type FastPathStatsSource } from './metrics.js';
export { TLS_MIN_VERSION, TlsConfigError, type TlsCertificateInfo, type TlsFiles } from './tls.js';
export {
  applySeed,
  parseSeed,
  readSeedFile,
  SeedConflictError,
  SeedError,
  type Seed,
  type SeedResult,
} from '../kms/seed.js';

export interface StartServerOptions {
  /**
   * Default 127.0.0.1 (loopback only). `auth: 'any'` binds to loopback only;
   * any other address needs `tls`, or `insecureHttp` to serve plain HTTP.
   */
  host?: string;
  /** Serve HTTPS (TLS 1.2 at least) with this PEM certificate (chain) and private key; `reloadTls()` re-reads them. */
  tls?: TlsFiles;
  /** Serve plain HTTP on an address that is not loopback (warned about): messages and MACs cross the network in the clear. */
  insecureHttp?: boolean;
  /** Port of `/metrics` (Prometheus), `/healthz` and `/readyz`; none by default. 0 picks a free one. */
  metricsPort?: number;
  /** Address of the metrics port (default 127.0.0.1). */
  metricsHost?: string;
  /** Whether /readyz answers 200 while the key store is degraded (database lost, MACs from the snapshot). Default true. */
  degradedReady?: boolean;
  /**
   * A seed file (YAML or JSON; kms-hmac's format or local-kms's seed.yaml):
   * its keys and aliases are created before the endpoint answers, when
   * absent, never overwritten (src/kms/seed.ts).
   */
  seed?: string;
  /**
   * Host names or addresses requests may be addressed to (their `Host`
   * header), besides loopback ones; any port. Anything else is refused with
   * 403 before it is read (DNS rebinding). Needed when clients reach the
   * endpoint by another name or address than loopback.
   */
  allowedHosts?: readonly string[];
  /** Default 4599; 0 picks a free port (reported in the result). */
  port?: number;
  /** Key store: a file path (FileKeyStore), a postgres:// URL (PostgresKeyStore) or a KeyStore; default in memory. A path or URL for workers > 1. */
  keyStore?: string | KeyStore;
  /** Use this client instead of creating one (then keyStore/region/accountId are the client's business). */
  client?: KmsApi;
  region?: string;
  /**
   * More Regions answered besides `region` (whose SigV4 scopes are accepted):
   * each request is answered in the Region of its scope, with the client's
   * `inRegion()`. Multi-Region keys replicate across them.
   */
  regions?: readonly string[];
  accountId?: string;
  /** AWS's resource quotas and GetParametersForImport's rate (the client's `quotas` option; AWS's defaults). */
  quotas?: Partial<Quotas>;
  /** Accepted SigV4 credentials: one `{ accessKeyId, secretAccessKey, sessionToken? }` (the SDK's shape) or a list. */
  credentials?: Credential | readonly Credential[];
  /** JSON file with more pairs (see credentials.ts). */
  credentialsFile?: string;
  /**
   * `'sigv4'` (default) verifies signatures against the credentials, whose
   * secrets must have at least 16 characters. `'any'` is emulator mode: any
   * well-formed signature is accepted, on loopback only.
   */
  auth?: 'sigv4' | 'any';
  /** Worker processes (node:cluster) sharing the port and one durable key store. Default 1 (in-process). */
  workers?: number;
  /** Access log; `false` or `{ level: 'silent' }` disables it. Default: info to stderr. */
  log?: AccessLogOptions | false;
  maxBodyBytes?: number;
  /** Body limit of a request that does not declare x-amz-content-sha256 (default 64 KiB; server.ts says why). */
  maxUnhashedBodyBytes?: number;
  /** How long a drain (close(), SIGTERM) waits for in-flight requests before cutting connections (default 10 s). */
  shutdownTimeoutMs?: number;
  /** Open connections allowed at once, all workers together (default 1024); more are closed as they are accepted. */
  maxConnections?: number;
  /** Time allowed for a request's headers (default 10 s). */
  headersTimeoutMs?: number;
  /** Time allowed for a whole request, body included (default 30 s). */
  requestTimeoutMs?: number;
  /**
   * Called once at each change of the key store's health (a background
   * reload failed authentication, the database was lost, the recovery; with
   * workers, any worker's), after it was logged at error level (warn for a
   * recovery) to the access log, or as a process warning without one.
   */
  onKeyStoreHealth?: (health: KeyStoreHealth) => void;
}

export interface StartedServer extends RunningServer {
  workers: number;
  /** `http://host:port` of the metrics port, when `metricsPort` was given. */
  metricsUrl?: string;
  /** What the seed did (counts, never material), when `seed` was given. */
  seeded?: SeedResult;
  /**
   * Replaces the accepted credentials (and their principals) in every
   * worker; requests in flight finish as they began. Throws, leaving the old
   * set, when the new one is refused. `serve` calls it on SIGHUP.
   */
  setCredentials(credentials: readonly Credential[]): void;
  /** The key store's health: this process's store; with workers, the worst that any live worker last reported. */
  keyStoreHealth(): KeyStoreHealth;
}

const HEALTH_ORDER = ['ok', 'degraded', 'tampered'] as const;

/** What checkOptions read: the credentials and the parsed seed. */
interface Checked {
  credentials: Credential[];
  seed: Seed | undefined;
}

function checkPort(name: string, v: unknown): void {
  if (v !== undefined && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535))
    throw new RangeError(`${name} must be an integer from 0 to 65535`);
}

/** The credentials the options name (flags/option pairs and the credentials file), merged and checked. */
function resolveCredentials(o: StartServerOptions): Credential[] {
  const fromFile = o.credentialsFile ? loadCredentialsFile(o.credentialsFile, (m) => process.emitWarning(m)) : [];
  const given =
    o.credentials === undefined ? [] : Array.isArray(o.credentials) ? o.credentials : [o.credentials as Credential];
  const checked = given.map((c, i) =>
    checkCredential(c ?? {}, Array.isArray(o.credentials) ? `credentials[${i}]` : 'credentials'),
  );
  const credentials = mergeCredentials([checked, fromFile]);
  if (o.auth !== 'any') checkSecretLengths(credentials);
  if (o.auth !== 'any' && credentials.length === 0) {
    throw new CredentialsError(
      'no credentials configured: set KMS_HMAC_ACCESS_KEY_ID and KMS_HMAC_SECRET_ACCESS_KEY, ' +
        'or pass --access-key-id/--secret-access-key or --credentials-file, ' +
        'or run with --auth any to accept any well-formed signature (local emulator mode)',
    );
  }
  return credentials;
}

/** Checks what startServer would refuse, before anything is opened. */
function checkOptions(o: StartServerOptions): Checked {
  const credentials = resolveCredentials(o);
  const host = o.host ?? DEFAULT_HOST;
  checkAllowedHosts(o.allowedHosts);
  for (const r of [o.region ?? DEFAULT_REGION, ...(o.regions ?? [])])
    if (!isRegionName(r)) throw new TypeError(`Not a Region name: ${JSON.stringify(r)}`);
  if (o.auth === 'any' && !isLoopbackHost(host)) {
    throw new TypeError(
      `auth 'any' (emulator mode: signatures are not verified) serves loopback only, and ${host} is not loopback; verify signatures (auth 'sigv4' with credentials) to serve other machines`,
    );
  }
  if (o.tls !== undefined)
    wipeTlsPair(loadTlsPair(o.tls)); // a bad pair fails here, before anything is opened
  else if (!isLoopbackHost(host) && o.insecureHttp !== true) {
    throw new TlsConfigError(
      `binding to ${host}, which is not loopback, without TLS would send messages and MACs in the clear: give a certificate and key (--tls-cert, --tls-key), or --insecure-http to serve plain HTTP anyway`,
    );
  }
  checkPort('port', o.port);
  checkPort('metricsPort', o.metricsPort);
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw new RangeError('workers must be an integer from 1 to 64');
  if (workers > 1 && typeof o.keyStore !== 'string') {
    throw new TypeError(
      'workers > 1 needs a key store path or postgres:// URL (processes share keys through the durable store)',
    );
  }
  if (workers > 1 && o.client) throw new TypeError('workers > 1 cannot use an injected client');
  resolveQuotas(o.quotas);
  serverLimits(o);
  const seed = o.seed === undefined ? undefined : readSeedFile(o.seed);
  if (seed !== undefined && o.client !== undefined && !(o.client as { keyStore?: unknown }).keyStore)
    throw new TypeError('seed needs the key store: an injected client must have a keyStore (KmsHmacClient has)');
  return { credentials, seed };
}

/** What an operator must know before the endpoint answers anyone: said once, by the process that was asked to serve. */
function warnAboutExposure(o: StartServerOptions): void {
  if (o.auth === 'any') {
    process.emitWarning(
      '--auth any: SIGNATURES ARE NOT VERIFIED. Any well-formed, in-window SigV4 request is accepted, whoever signed it: local emulator use only',
      { type: 'ServerWarning', code: 'KMS_HMAC_AUTH_ANY' },
    );
  }
  const host = o.host ?? DEFAULT_HOST;
  if (!isLoopbackHost(host) && o.tls === undefined) {
    process.emitWarning(
      `--insecure-http: serving plain HTTP on ${host}, which is not loopback: messages, MACs and signed requests cross the network in the clear`,
      { type: 'ServerWarning', code: 'KMS_HMAC_INSECURE_HTTP' },
    );
  }
  if (!isLoopbackHost(host)) {
    const names = o.allowedHosts?.length ? o.allowedHosts.join(', ') : 'none given: add --allowed-host (allowedHosts)';
    process.emitWarning(
      `binding to ${host}, which is not loopback: other machines can reach this endpoint. It answers requests addressed to loopback names and to the allowed hosts (${names})`,
      { type: 'ServerWarning', code: 'KMS_HMAC_NOT_LOOPBACK' },
    );
  }
}

export async function startServer(options: StartServerOptions = {}): Promise<StartedServer> {
  const { credentials, seed } = checkOptions(options);
  warnAboutExposure(options);
  if (seed !== undefined)
    for (const s of seed.skipped) warnSeed(`seed ${options.seed}: skipped ${s} (this endpoint holds HMAC keys only)`);
  const workers = options.workers ?? 1;
  let started: StartedServer;
  try {
    started =
      workers > 1
        ? await startWorkers(options, credentials, workers, seed)
        : await startInProcess(options, credentials, { ...(seed ? { seed } : {}) });
  } finally {
    if (seed !== undefined) wipeSeed(seed);
  }
  return options.credentialsFile === undefined ? started : reloadOnHangup(started, options);
}

/**
 * SIGHUP re-reads the credentials file (with the pairs given as options);
 * a set that fails to load or is refused leaves the old one, and says why.
 */
function reloadOnHangup(started: StartedServer, options: StartServerOptions): StartedServer {
  const reload = (): void => {
    try {
      const next = resolveCredentials(options);
      started.setCredentials(next);
      process.emitWarning(`credentials reloaded from ${options.credentialsFile}: ${next.length} access keys`, {
        type: 'ServerNotice',
        code: 'KMS_HMAC_CREDENTIALS_RELOADED',
      });
    } catch (err) {
      process.emitWarning(
        `credentials reload from ${options.credentialsFile} failed; the previous credentials stay in force: ${(err as Error).message}`,
        { type: 'ServerWarning', code: 'KMS_HMAC_CREDENTIALS_RELOAD_FAILED' },
      );
    }
  };
  process.on('SIGHUP', reload);
  const close = started.close;
  return {
    ...started,
    close: () => {
      process.removeListener('SIGHUP', reload);
      return close();
    },
  };
}

/** Worker entry (compiled JS: cluster workers cannot load .ts). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const js = here.endsWith('.ts')
    ? resolve(dirname(here), '../../dist/server/worker.js')
    : resolve(dirname(here), 'worker.js');
  if (!existsSync(js)) throw new Error(`worker script ${js} is missing: run \`npm run build:ts\``);
  return js;
}

/** What the primary sends each worker (over the IPC channel, so secrets never sit in argv or env). */
export interface WorkerStartMessage {
  type: 'start';
  options: Omit<
    StartServerOptions,
    'client' | 'workers' | 'credentialsFile' | 'onKeyStoreHealth' | 'seed' | 'metricsPort' | 'metricsHost'
  > & {
    keyStore: string;
    credentials: Credential[];
  };
  /** The key store's passphrase, base64 (null: none): workers do not read it from an environment. */
  passphrase: string | null;
  /** Count into a registry the primary aggregates (the primary serves the metrics port). */
  metrics: boolean;
}

/** A reloaded credential set, sent by the primary to each worker. */
export interface WorkerCredentialsMessage {
  type: 'credentials';
  credentials: Credential[];
}

/** What a worker tells the primary. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'listening'; port: number }
  | { type: 'failed'; error: string }
  | { type: 'health'; health: KeyStoreHealth }
  | { type: 'tls'; id: number; info?: TlsCertificateInfo; error?: string }
  | { type: 'not-accepting' };

/** What the primary tells a worker after 'start'. */
export type PrimaryMessage = { type: 'stop-accepting' } | { type: 'shutdown' } | { type: 'reload-tls'; id: number };

async function startWorkers(
  options: StartServerOptions,
  credentials: Credential[],
  n: number,
  seed: Seed | undefined,
): Promise<StartedServer> {
  const exec = workerScript();
  cluster.setupPrimary({ exec, args: [], silent: false });
  const wOptions: WorkerStartMessage['options'] = {
    host: options.host ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
    keyStore: options.keyStore as string,
    region: options.region ?? DEFAULT_REGION,
    ...(options.regions !== undefined ? { regions: options.regions } : {}),
    accountId: options.accountId ?? DEFAULT_ACCOUNT_ID,
    ...(options.quotas !== undefined ? { quotas: options.quotas } : {}),
    credentials,
    auth: options.auth ?? 'sigv4',
    log: options.log ?? {},
    ...(options.allowedHosts !== undefined ? { allowedHosts: options.allowedHosts } : {}),
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
    ...(options.maxUnhashedBodyBytes !== undefined ? { maxUnhashedBodyBytes: options.maxUnhashedBodyBytes } : {}),
    ...(options.shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs: options.shutdownTimeoutMs } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ...(options.degradedReady !== undefined ? { degradedReady: options.degradedReady } : {}),
    ...serverLimits(options),
  };
  const metricsOn = options.metricsPort !== undefined;
  // The cluster primary hands connections to workers in turn: each worker holds its share of the cap.
  wOptions.maxConnections = Math.ceil(wOptions.maxConnections! / n);
  // Read here once (KMS_HMAC_PASSPHRASE then leaves this process's environment, which workers inherit).
  const secret = resolvePassphrase(undefined);
  const passphrase = secret ? secret.toString('base64') : null;
  let seeded: SeedResult | undefined;
  try {
    // Seeded once, here, before any worker answers: one transaction, one summary.
    if (seed !== undefined) seeded = await seedStore(options, wOptions, secret ?? null, seed);
  } finally {
    secret?.fill(0);
  }
  let closing = false;
  const live = new Set<Worker>();
  /** Pending reloadTls() calls: each worker's answer, by request id. */
  const tlsReplies = new Map<number, (m: Extract<WorkerMessage, { type: 'tls' }>) => void>();
  const healthOf = new Map<Worker, KeyStoreHealth>();
  let restarts = 0;

  const fork = (requested: number): Promise<number> =>
    new Promise((resolveFork, rejectFork) => {
      const w = cluster.fork();
      live.add(w);
      let started = false;
      w.on('message', (m: WorkerMessage) => {
        if (m?.type === 'ready') {
          // Sent once the worker's message handler exists (a message sent on 'online' could arrive before it and be dropped).
          w.send({
            type: 'start',
            options: { ...wOptions, port: requested },
            passphrase,
            metrics: metricsOn,
          } satisfies WorkerStartMessage);
        } else if (m?.type === 'listening') {
          started = true;
          resolveFork(m.port);
        } else if (m?.type === 'health') {
          healthOf.set(w, m.health);
          options.onKeyStoreHealth?.(m.health);
        } else if (m?.type === 'tls') {
          tlsReplies.get(m.id)?.(m);
        } else if (m?.type === 'not-accepting') {
          w.emit('not-accepting');
        } else if (m?.type === 'failed') {
          rejectFork(new Error(`worker ${w.process.pid} failed to start: ${m.error}`));
        }
      });
      w.once('exit', (code, signal) => {
        live.delete(w);
        healthOf.delete(w);
        if (!started) {
          rejectFork(new Error(`worker ${w.process.pid} exited during startup (code ${code}, signal ${signal})`));
          return;
        }
        if (!closing && restarts < 20) {
          restarts++;
          process.emitWarning(
            `kms-hmac serve: worker ${w.process.pid} exited (code ${code}, signal ${signal}); starting another`,
          );
          fork(requested).catch((err) => process.emitWarning(String(err)));
        }
      });
    });

  /**
   * A drain's first step, in every worker before any drains: each closes its listener and says so
   * after the cluster's own message that takes it out of the primary's round robin (one IPC channel,
   * in order). Draining closes connections, whose clients reconnect at once; were one worker to drain
   * while another had closed its listener but was still counted by the primary, the primary would
   * accept such a connection, find no worker left to take it, and reset it. This way the primary's
   * listening socket is gone (new connections are refused) before any connection is closed.
   */
  let notAccepting: Promise<void> | undefined;
  const stopAccepting = (): Promise<void> =>
    (notAccepting ??= Promise.all(
      [...live].map(
        (w) =>
          new Promise<void>((res) => {
            if (!w.isConnected()) return res();
            const timer = setTimeout(res, 1000); // a stuck worker is not waited for: the drain goes on
            const done = () => {
              clearTimeout(timer);
              res();
            };
            w.once('not-accepting', done);
            w.once('exit', done);
            try {
              w.send({ type: 'stop-accepting' } satisfies PrimaryMessage);
            } catch {
              done();
            }
          }),
      ),
    ).then(() => undefined));

  const stopAll = async (): Promise<void> => {
    closing = true;
    await stopAccepting();
    await Promise.all(
      [...live].map(
        (w) =>
          new Promise<void>((res) => {
            if (w.isDead()) return res();
            w.once('exit', () => res());
            try {
              w.send({ type: 'shutdown' } satisfies PrimaryMessage);
            } catch {
              w.kill('SIGTERM');
            }
          }),
      ),
    );
  };

  let port: number;
  try {
    // Every worker asks for the same port: with 0, the cluster primary binds one free port, shared by all.
    const wanted = options.port ?? DEFAULT_PORT;
    port = await fork(wanted);
    const others = await Promise.all(Array.from({ length: n - 1 }, () => fork(wanted)));
    if (others.some((p) => p !== port))
      throw new Error(`workers listen on different ports: ${[port, ...others].join(', ')}`);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const host = wOptions.host!;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let done: Promise<void> | undefined;
  const keyStoreHealth = (): KeyStoreHealth => {
    let worst: KeyStoreHealth = { store: describeKeyStore(wOptions.keyStore), state: 'ok', reloadFailures: 0 };
    for (const h of healthOf.values()) if (HEALTH_ORDER.indexOf(h.state) > HEALTH_ORDER.indexOf(worst.state)) worst = h;
    return worst;
  };
  let metricsServer: MetricsServer | undefined;
  if (metricsOn) {
    // Each worker answers the aggregator over IPC (its registry is set in worker.ts).
    const aggregator = new (promClient().AggregatorRegistry)();
    try {
      metricsServer = await startMetricsServer({
        host: options.metricsHost ?? DEFAULT_HOST,
        port: options.metricsPort!,
        scrape: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
        probes: { keyStoreHealth, draining: () => closing, degradedReady: options.degradedReady ?? true },
      });
    } catch (err) {
      await stopAll();
      throw err;
    }
  }
  let tlsRequests = 0;
  const reloadTls = async (): Promise<TlsCertificateInfo> => {
    const id = ++tlsRequests;
    const workers = [...live].filter((w) => w.isConnected());
    const replies = await new Promise<Extract<WorkerMessage, { type: 'tls' }>[]>((resolveAll) => {
      const got: Extract<WorkerMessage, { type: 'tls' }>[] = [];
      tlsReplies.set(id, (m) => {
        got.push(m);
        if (got.length === workers.length) resolveAll(got);
      });
      for (const w of workers) w.send({ type: 'reload-tls', id } satisfies PrimaryMessage);
      if (workers.length === 0) resolveAll(got);
    }).finally(() => tlsReplies.delete(id));
    const failed = replies.find((r) => r.error !== undefined);
    if (failed) throw new TlsConfigError(failed.error!);
    // No worker running (all restarting): each new one loads the files as it starts.
    if (replies.length === 0) throw new TlsConfigError('no worker is running to reload its certificate');
    return replies[0]!.info!;
  };
  const setCredentials = (next: readonly Credential[]): void => {
    wOptions.credentials = [...next]; // what a worker started later gets
    for (const w of live) if (!w.isDead()) w.send({ type: 'credentials', credentials: wOptions.credentials });
  };
  return {
    url: `${options.tls ? 'https' : 'http'}://${shownHost}:${port}`,
    host,
    port,
    workers: n,
    stopAccepting: () => void stopAccepting(),
    close: () =>
      (done ??= stopAll().then(async () => {
        await metricsServer?.close();
      })),
    keyStoreHealth,
    ...(options.tls ? { reloadTls } : {}),
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    ...(seeded ? { seeded } : {}),
    setCredentials,
  };
}

/** Applies the seed in the primary, on a client of its own that is closed at once. */
async function seedStore(
  options: StartServerOptions,
  wOptions: WorkerStartMessage['options'],
  passphrase: Buffer | null,
  seed: Seed,
): Promise<SeedResult> {
  const copy = passphrase === null ? null : Buffer.from(passphrase);
  const client = new KmsHmacClient({
    keyStore: wOptions.keyStore,
    keyStoreOptions: { passphrase: copy },
    region: wOptions.region!,
    accountId: wOptions.accountId!,
  });
  try {
    await client.ready();
    return await seedClient(client as unknown as KmsApi, seed, options.seed ?? 'seed');
  } finally {
    copy?.fill(0); // the store keeps its own copy
    await client.close();
  }
}
