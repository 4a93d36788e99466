/**
 * One serving process: the client and its key store, the access log, the
 * listener, and what the key store's health changes are told to. Used by
 * `startServer` for `workers: 1` and by each cluster worker (worker.ts), once
 * the options were checked and warned about (index.ts).
 */
import { KmsHmacClient } from '../client/client.js';
import { healthMessage, warnHealth } from '../keystore/health.js';
import type { KeyStoreHealth } from '../keystore/types.js';
import type { StartedServer, StartServerOptions } from './index.js';
import { createAccessLog } from './log.js';
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
  let srv: Awaited<ReturnType<typeof listen>>;
  try {
    // A PostgreSQL store opens asynchronously: answer nothing before the snapshot is loaded. (Keys another
    // process creates later are found by the client itself, which asks the store when a lookup misses.)
    await (client as { ready?: () => Promise<void> }).ready?.();
    srv = await listen({
      client,
      credentials,
      auth: options.auth ?? 'sigv4',
      region: options.region ?? DEFAULT_REGION,
      ...(options.regions !== undefined ? { regions: options.regions } : {}),
      host: options.host ?? DEFAULT_HOST,
      port: options.port ?? DEFAULT_PORT,
      log,
      ...(options.allowedHosts !== undefined ? { allowedHosts: options.allowedHosts } : {}),
      ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
      ...(options.maxUnhashedBodyBytes !== undefined ? { maxUnhashedBodyBytes: options.maxUnhashedBodyBytes } : {}),
      ...(options.shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs: options.shutdownTimeoutMs } : {}),
      ...serverLimits(options),
      // An injected client belongs to the caller.
      closeClient: options.client === undefined,
    });
  } catch (err) {
    if (!options.client && typeof client.close === 'function') await client.close();
    throw err;
  } finally {
    hooks.passphrase?.fill(0); // the store keeps its own copy
  }
  const close = async () => {
    await srv.close();
    log?.flush();
  };
  const health = client.keyStoreHealth as (() => KeyStoreHealth) | undefined;
  return {
    url: srv.url,
    host: srv.host,
    port: srv.port,
    close,
    workers: 1,
    setCredentials: (c) => srv.handler.setCredentials(c),
    keyStoreHealth: () =>
      typeof health === 'function' ? health.call(client) : { store: 'injected client', state: 'ok', reloadFailures: 0 },
  };
}
