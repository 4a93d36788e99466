/**
 * One serving process: the client and its key store, the seed, the access
 * log, the listener, the metrics port, and what the key store's health
 * changes are told to. Used by `startServer` for `workers: 1` and by each
 * cluster worker (worker.ts), once the options were checked and warned
 * about (index.ts).
 */
import type { Registry } from 'prom-client';
import { KmsHmacClient } from '../client/client.js';
import { healthMessage, warnHealth } from '../keystore/health.js';
import type { KeyStoreHealth } from '../keystore/types.js';
import { partitionOf } from '../kms/identifiers.js';
import { applySeed, seedSummary, type Seed, type SeedResult } from '../kms/seed.js';
import type { StartedServer, StartServerOptions } from './index.js';
import { createAccessLog } from './log.js';
import { ServerMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_REGION,
  listen,
  serverLimits,
  type KmsApi,
} from './server.js';
import type { Credential } from './sigv4.js';

export interface InProcessHooks {
  /** The store's passphrase as the primary resolved it (workers; `null`: none). Undefined: the store reads the environment. */
  passphrase?: Buffer | null;
  /** The seed as startServer read it (workers: the primary applied it). */
  seed?: Seed;
  /** Count into this registry, which the cluster primary aggregates (workers with metrics on). */
  metricsRegistry?: Registry;
}

/** A seed's note (a skipped key, an alias left pointing elsewhere), as a process warning. */
export function warnSeed(message: string): void {
  process.emitWarning(message, { type: 'SeedWarning', code: 'KMS_HMAC_SEED' });
}

/** Applies a seed through `client`'s key store and scope, and warns about what was left as it is. */
export async function seedClient(client: KmsApi, seed: Seed, source: string): Promise<SeedResult> {
  const c = client as unknown as KmsHmacClient;
  const scope = { region: c.region, accountId: c.accountId, partition: partitionOf(c.region) };
  const result = await applySeed(c.keyStore, scope, seed);
  for (const n of result.notes) warnSeed(`seed ${source}: ${n}`);
  return result;
}

export async function startInProcess(
  options: StartServerOptions,
  credentials: Credential[],
  hooks: InProcessHooks = {},
): Promise<StartedServer> {
  const log = options.log === false ? null : createAccessLog(options.log ?? {});
  // Each change of the store's health is logged once, at error level (a recovery at warn), then handed on.
  const onHealthChange = (h: KeyStoreHealth): void => {
    if (log) {
      log.logger[h.state === 'ok' ? 'warn' : 'error']({ keyStore: h }, healthMessage(h));
      log.flush(); // written now, not when the access log's buffer next fills
    } else warnHealth(h);
    options.onKeyStoreHealth?.(h);
  };
  const client =
    options.client ??
    (new KmsHmacClient({
      keyStore: options.keyStore,
      keyStoreOptions: { onHealthChange, ...(hooks.passphrase !== undefined ? { passphrase: hooks.passphrase } : {}) },
      region: options.region ?? DEFAULT_REGION,
      accountId: options.accountId ?? DEFAULT_ACCOUNT_ID,
      ...(options.quotas !== undefined ? { quotas: options.quotas } : {}),
    }) as unknown as KmsApi);
  const storeHealth = client.keyStoreHealth as (() => KeyStoreHealth) | undefined;
  const keyStoreHealth = (): KeyStoreHealth =>
    typeof storeHealth === 'function'
      ? storeHealth.call(client)
      : { store: 'injected client', state: 'ok', reloadFailures: 0 };
  let srv: Awaited<ReturnType<typeof listen>> | undefined;
  let metricsServer: MetricsServer | undefined;
  let seeded: SeedResult | undefined;
  try {
    // A PostgreSQL store opens asynchronously: answer nothing before the snapshot is loaded. (Keys another
    // process creates later are found by the client itself, which asks the store when a lookup misses.)
    await (client as { ready?: () => Promise<void> }).ready?.();
    if (hooks.seed !== undefined) {
      seeded = await seedClient(client, hooks.seed, options.seed ?? 'seed');
      log?.logger.info(
        { seed: { file: options.seed ?? null, ...seeded } },
        seedSummary(options.seed ?? 'seed', seeded),
      );
    }
    const metricsOn = options.metricsPort !== undefined || hooks.metricsRegistry !== undefined;
    const metrics = metricsOn
      ? new ServerMetrics({ inflight: () => srv?.handler.inflightRequests ?? 0, keyStoreHealth }, hooks.metricsRegistry)
      : null;
    srv = await listen({
      client,
      credentials,
      auth: options.auth ?? 'sigv4',
      region: options.region ?? DEFAULT_REGION,
      ...(options.regions !== undefined ? { regions: options.regions } : {}),
      host: options.host ?? DEFAULT_HOST,
      port: options.port ?? DEFAULT_PORT,
      log,
      metrics,
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
      ...(options.degradedReady !== undefined ? { degradedReady: options.degradedReady } : {}),
      ...(options.allowedHosts !== undefined ? { allowedHosts: options.allowedHosts } : {}),
      ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
      ...(options.maxUnhashedBodyBytes !== undefined ? { maxUnhashedBodyBytes: options.maxUnhashedBodyBytes } : {}),
      ...(options.shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs: options.shutdownTimeoutMs } : {}),
      ...serverLimits(options),
      // An injected client belongs to the caller.
      closeClient: options.client === undefined,
    });
    if (metrics !== null && options.metricsPort !== undefined) {
      const registry = metrics.registry;
      metricsServer = await startMetricsServer({
        host: options.metricsHost ?? DEFAULT_HOST,
        port: options.metricsPort,
        scrape: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        probes: srv.handler.probes,
      });
    }
  } catch (err) {
    if (srv !== undefined) await srv.close();
    else if (!options.client && typeof client.close === 'function') await client.close();
    throw err;
  } finally {
    hooks.passphrase?.fill(0); // the store keeps its own copy
  }
  const running = srv;
  const close = async () => {
    await running.close();
    await metricsServer?.close(); // after the drain: /readyz said "draining" meanwhile
    log?.flush();
  };
  return {
    url: running.url,
    host: running.host,
    port: running.port,
    close,
    stopAccepting: running.stopAccepting,
    workers: 1,
    setCredentials: (c) => srv.handler.setCredentials(c),
    keyStoreHealth,
    ...(running.reloadTls ? { reloadTls: running.reloadTls } : {}),
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    ...(seeded ? { seeded } : {}),
  };
}
