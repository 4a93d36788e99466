/**
 * Fast path for real AWS KMS keys.
 *
 * `createFastPathClient(kmsClient, localClient)` wraps an `@aws-sdk/client-kms`
 * `KMSClient` (or anything with the same `send`). GenerateMac and VerifyMac
 * commands naming a key that the local client holds a copy of — a local key
 * whose `remoteArn` is that AWS key, registered with
 * `localClient.importRemoteKey()` or `localClient.linkRemoteKey()` — are
 * answered locally: same MAC bytes as KMS (RFC 2104 HMAC over the same
 * imported material), same errors, response `KeyId` = the remote key ARN.
 * Everything else goes to the real client unchanged: other commands, keys
 * not held locally, local copies that are not Enabled, and DryRun requests
 * (a DryRun exists to test IAM permissions, which only AWS can answer).
 *
 * A request's KeyId matches a local copy when it is the remote key ARN, the
 * remote key ID, a local alias name pointing at the copy, or that alias's ARN
 * in the remote key's region and account.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { FAST_PATH, type KmsHmacClient, type GenerateMacInput, type VerifyMacInput } from './client.js';

export interface SendingClient {
  send(command: unknown, ...rest: unknown[]): Promise<unknown>;
}

export interface FastPathStats {
  /** Commands answered locally (successes and KMS errors). */
  local: number;
  /** Commands forwarded to the real client. */
  forwarded: number;
}

export type FastPathClient<T extends SendingClient> = T & {
  /** Counters, for monitoring how much traffic stays local. */
  readonly fastPathStats: FastPathStats;
  /** The wrapped real client. */
  readonly remoteClient: T;
  readonly localClient: KmsHmacClient;
};

function metadata() {
  return { httpStatusCode: 200, requestId: randomUUID(), attempts: 1, totalRetryDelay: 0 };
}

export function createFastPathClient<T extends SendingClient>(kmsClient: T, localClient: KmsHmacClient): FastPathClient<T> {
  if (!kmsClient || typeof kmsClient.send !== 'function') throw new TypeError('kmsClient must have a send(command) method');
  const hooks = localClient[FAST_PATH];
  const stats: FastPathStats = { local: 0, forwarded: 0 };

  function tryLocal(command: { constructor?: { name?: string }; input?: unknown }): Record<string, unknown> | undefined {
    const name = command?.constructor?.name;
    if (name !== 'GenerateMacCommand' && name !== 'VerifyMacCommand') return undefined;
    const input = command.input as GenerateMacInput | VerifyMacInput | undefined;
    if (!input || typeof input.KeyId !== 'string' || input.DryRun === true) return undefined;
    const found = hooks.findRemote(input.KeyId);
    if (!found || !hooks.usable(found.keyId)) return undefined;
    stats.local++;
    const out =
      name === 'GenerateMacCommand'
        ? hooks.generate(input, found.keyId, found.remoteArn)
        : hooks.verify(input as VerifyMacInput, found.keyId, found.remoteArn);
    return { ...out, $metadata: metadata() };
  }

  const send = (command: unknown, ...rest: unknown[]): Promise<unknown> => {
    let local: Record<string, unknown> | undefined;
    try {
      local = tryLocal(command as { constructor?: { name?: string }; input?: unknown });
    } catch (err) {
      return Promise.reject(err);
    }
    if (local !== undefined) return Promise.resolve(local);
    stats.forwarded++;
    return kmsClient.send(command, ...rest);
  };

  return new Proxy(kmsClient, {
    get(target, prop, receiver) {
      if (prop === 'send') return send;
      if (prop === 'fastPathStats') return stats;
      if (prop === 'remoteClient') return target;
      if (prop === 'localClient') return localClient;
      if (prop === inspect.custom) return () => `FastPathClient { local: ${stats.local}, forwarded: ${stats.forwarded} }`;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as FastPathClient<T>;
}
