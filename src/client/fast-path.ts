/**
 * Fast path for real AWS KMS keys.
 *
 * `createFastPathClient(kmsClient, localClient, options)` wraps an
 * `@aws-sdk/client-kms` `KMSClient` (or anything with the same `send`).
 * GenerateMac and VerifyMac commands naming a key that the local client holds
 * a copy of — a local key whose `remoteArn` is that AWS key, registered with
 * `localClient.importRemoteKey()` or `localClient.linkRemoteKey()` — are
 * answered locally while the key's lease is valid: same MAC bytes as KMS
 * (RFC 2104 HMAC over the same imported material), same errors, response
 * `KeyId` = the remote key ARN. Everything else goes to the real client
 * unchanged.
 *
 * A lease (./fast-path-leases.ts) carries AWS's own decision: a background
 * probe asks the real client, with its credentials, whether GenerateMac
 * would succeed (DryRun) and what state the key is in (DescribeKey). So a
 * local answer is what AWS decided for this caller at most `leaseSeconds`
 * ago. Until the first probe answers, a key's requests are forwarded.
 * Forwarded answers that show AWS would now refuse drop the lease at once.
 *
 * A request's KeyId matches a local copy when it is the remote key ARN, the
 * remote key ID, a local alias name pointing at the copy, or that alias's ARN
 * in the remote key's region and account.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { FAST_PATH, type KmsHmacClient, type GenerateMacInput, type VerifyMacInput } from './client.js';
import {
  errorName,
  LeaseTable,
  type KeyLease,
  type KeyLeaseStats,
  type LeaseEvent,
  type ProbeOutcome,
} from './fast-path-leases.js';

export type { KeyLeaseStats, LeaseEvent, LeaseState, ProbeResult } from './fast-path-leases.js';

export interface SendingClient {
  send(command: unknown, ...rest: unknown[]): Promise<unknown>;
}

export interface FastPathOptions {
  /** How long one "would succeed" from AWS lets the fast path answer locally. Default 60. */
  leaseSeconds?: number;
  /**
   * When probes cannot reach AWS and a lease runs out: `'fail-closed'` (default) forwards every
   * request (callers see AWS's unavailability); `'serve-stale'` keeps answering locally from the
   * last "would succeed" for as long as AWS stays unreachable, counting each answer as stale.
   */
  onUnreachable?: 'fail-closed' | 'serve-stale';
}

export const DEFAULT_LEASE_SECONDS = 60;

export interface FastPathStats {
  /** Commands answered locally (stale answers included). */
  local: number;
  /** Of those, answered from an expired lease while AWS was unreachable (`onUnreachable: 'serve-stale'`). */
  stale: number;
  /** Commands forwarded to the real client. */
  forwarded: number;
  /** Per remote key ARN, for every key a GenerateMac/VerifyMac named: its lease, last probe and counts. */
  keys: Record<string, KeyLeaseStats>;
}

export interface FastPathControl {
  /** `'lease'` events: a key's lease changed state (granted, revoked, expired). */
  on(event: 'lease', listener: (e: LeaseEvent) => void): FastPathControl;
  once(event: 'lease', listener: (e: LeaseEvent) => void): FastPathControl;
  off(event: 'lease', listener: (e: LeaseEvent) => void): FastPathControl;
  /**
   * Asks AWS now about the key a KeyId names (as a request would name it) and resolves with its
   * lease once AWS answered (or the probe gave up); undefined when no local copy matches. Lets a
   * caller start with a valid lease instead of forwarding until the first background probe.
   */
  probe(keyId: string): Promise<KeyLeaseStats | undefined>;
  readonly leaseSeconds: number;
  readonly onUnreachable: 'fail-closed' | 'serve-stale';
  /** Stops background probing (also done by the client's `destroy()`). */
  close(): void;
}

export type FastPathClient<T extends SendingClient> = T & {
  /** Counters and per-key leases, for monitoring how much traffic stays local and why. */
  readonly fastPathStats: FastPathStats;
  /** Lease events and explicit probes. */
  readonly fastPath: FastPathControl;
  /** The wrapped real client. */
  readonly remoteClient: T;
  readonly localClient: KmsHmacClient;
};

/** Answers from AWS that mean "not now, for reasons unrelated to this key or caller": the lease is not renewed, not dropped. */
const THROTTLING = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'Throttling',
]);
/** The caller's credentials were refused: no key may be answered locally. */
const CREDENTIALS_REFUSED = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
]);
/** A forwarded request naming a key got one of these: AWS would refuse that key now. */
const KEY_REFUSED = new Set([
  'DisabledException',
  'KMSInvalidStateException',
  'NotFoundException',
  'AccessDeniedException',
  'KeyUnavailableException',
]);
/** Commands that, once AWS accepted them, stop the key's MACs in AWS. */
const REVOKING = new Set(['DisableKeyCommand', 'ScheduleKeyDeletionCommand', 'DeleteImportedKeyMaterialCommand']);
/** Commands that may let the key's MACs succeed again: probe at once rather than at the next renewal. */
const RESTORING = new Set(['EnableKeyCommand', 'CancelKeyDeletionCommand', 'ImportKeyMaterialCommand']);
const PROBE_MESSAGE = new Uint8Array(1);

/**
 * How a probe reads an error. A refusal for the key or the caller refuses, whatever its status
 * (KeyUnavailableException is a 500). Otherwise no HTTP status (network, timeout, abort), 5xx
 * or throttling is "unreachable", and any other answer refuses.
 */
function probeOutcome(err: unknown): ProbeOutcome {
  const e = err as
    | { $metadata?: { httpStatusCode?: number }; $fault?: unknown; $retryable?: { throttling?: boolean } }
    | undefined;
  const name = errorName(err);
  if (KEY_REFUSED.has(name) || CREDENTIALS_REFUSED.has(name)) return { result: 'refused', error: name };
  const status = e?.$metadata?.httpStatusCode;
  const unreachable =
    status === undefined ||
    status >= 500 ||
    status === 429 ||
    e?.$fault === 'server' ||
    e?.$retryable?.throttling === true ||
    THROTTLING.has(name);
  return { result: unreachable ? 'unreachable' : 'refused', error: name };
}

type SdkCommands = {
  GenerateMacCommand: new (input: object) => unknown;
  DescribeKeyCommand: new (input: object) => unknown;
};
let sdkCommands: Promise<SdkCommands> | undefined;

/** The SDK's command classes, loaded when the first probe runs (the SDK is an optional peer dependency). */
function loadSdkCommands(): Promise<SdkCommands> {
  sdkCommands ??= import('@aws-sdk/client-kms').then(
    (m) => m as unknown as SdkCommands,
    (err: unknown) => {
      sdkCommands = undefined;
      throw new Error(
        `the fast path probes AWS KMS with @aws-sdk/client-kms, which did not load: ${(err as Error).message}`,
      );
    },
  );
  return sdkCommands;
}

function metadata() {
  return { httpStatusCode: 200, requestId: randomUUID(), attempts: 1, totalRetryDelay: 0 };
}

function checkOptions(o: FastPathOptions): { leaseSeconds: number; onUnreachable: 'fail-closed' | 'serve-stale' } {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object');
  const leaseSeconds = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  if (
    typeof leaseSeconds !== 'number' ||
    !Number.isFinite(leaseSeconds) ||
    leaseSeconds < 0.1 ||
    leaseSeconds > 86_400
  ) {
    throw new RangeError(`leaseSeconds must be a number from 0.1 to 86400, got ${String(leaseSeconds)}`);
  }
  const onUnreachable = o.onUnreachable ?? 'fail-closed';
  if (onUnreachable !== 'fail-closed' && onUnreachable !== 'serve-stale') {
    throw new TypeError(`onUnreachable must be 'fail-closed' or 'serve-stale', got ${String(onUnreachable)}`);
  }
  return { leaseSeconds, onUnreachable };
}

export function createFastPathClient<T extends SendingClient>(
  kmsClient: T,
  localClient: KmsHmacClient,
  options: FastPathOptions = {},
): FastPathClient<T> {
  if (!kmsClient || typeof kmsClient.send !== 'function')
    throw new TypeError('kmsClient must have a send(command) method');
  const { leaseSeconds, onUnreachable } = checkOptions(options);
  const hooks = localClient[FAST_PATH];
  const counts = { local: 0, stale: 0, forwarded: 0 };

  /** What AWS would do for this key and this caller, now: GenerateMac DryRun (permission, state) and DescribeKey (state, material expiry). */
  async function probe(keyId: string, macAlgorithm: string, signal: AbortSignal): Promise<ProbeOutcome> {
    let sdk: SdkCommands;
    try {
      sdk = await loadSdkCommands();
    } catch (err) {
      return { result: 'unreachable', error: (err as Error).message };
    }
    const opts = { abortSignal: signal };
    const [dryRun, described] = await Promise.all([
      kmsClient
        .send(
          new sdk.GenerateMacCommand({
            KeyId: keyId,
            MacAlgorithm: macAlgorithm,
            Message: PROBE_MESSAGE,
            DryRun: true,
          }),
          opts,
        )
        .then(
          (): ProbeOutcome => ({ result: 'granted' }), // a remote that ignores DryRun and answers: it would succeed
          (err: unknown): ProbeOutcome =>
            errorName(err) === 'DryRunOperationException' ? { result: 'granted' } : probeOutcome(err),
        ),
      kmsClient.send(new sdk.DescribeKeyCommand({ KeyId: keyId }), opts).then(
        (out): ProbeOutcome => {
          const md = (out as { KeyMetadata?: { KeyState?: string; ValidTo?: Date } }).KeyMetadata;
          if (md?.KeyState !== undefined && md.KeyState !== 'Enabled')
            return { result: 'refused', error: `KeyState ${md.KeyState}` };
          return md?.ValidTo instanceof Date
            ? { result: 'granted', validTo: md.ValidTo.getTime() }
            : { result: 'granted' };
        },
        (err: unknown): ProbeOutcome => {
          // Many callers may MAC with a key they may not describe: the DryRun alone decides then.
          if (errorName(err) === 'AccessDeniedException') return { result: 'granted' };
          return probeOutcome(err);
        },
      ),
    ]);
    // A definite "no" from either wins; then no answer; then yes, until the material's expiry if it has one.
    for (const r of ['refused', 'unreachable'] as const) {
      if (dryRun.result === r) return dryRun;
      if (described.result === r) return described;
    }
    return described;
  }

  const leases = new LeaseTable({ leaseMs: leaseSeconds * 1000, serveStale: onUnreachable === 'serve-stale', probe });

  /** The lease of the key a KeyId names, if a local copy matches and a request already started one. */
  function leaseOf(keyId: unknown): KeyLease | undefined {
    if (typeof keyId !== 'string') return undefined;
    const found = hooks.findRemote(keyId);
    return found === undefined ? undefined : leases.get(found.remoteArn);
  }

  /** Reads a forwarded answer for what it shows about AWS's decision (never changes the answer). */
  function observe(name: string, input: { KeyId?: unknown } | undefined, answer: Promise<unknown>): Promise<unknown> {
    return answer.then(
      (out) => {
        try {
          if (REVOKING.has(name) || RESTORING.has(name) || name === 'DescribeKeyCommand') {
            const lease = leaseOf(input?.KeyId);
            if (lease === undefined) return out;
            const state = (out as { KeyMetadata?: { KeyState?: string } })?.KeyMetadata?.KeyState;
            if (REVOKING.has(name)) leases.revoke(lease, `forwarded ${name.slice(0, -7)} succeeded`);
            else if (RESTORING.has(name)) void leases.probeNow(lease);
            else if (state !== undefined && state !== 'Enabled')
              leases.revoke(lease, `forwarded DescribeKey: KeyState ${state}`, `KeyState ${state}`);
          }
        } catch {
          /* observation must never turn an answer into a failure */
        }
        return out;
      },
      (err: unknown) => {
        try {
          const e = errorName(err);
          const short = name.endsWith('Command') ? name.slice(0, -7) : name;
          if (CREDENTIALS_REFUSED.has(e)) leases.revokeAll(`forwarded ${short}: ${e}`, e);
          else if (KEY_REFUSED.has(e)) {
            const lease = leaseOf(input?.KeyId);
            if (lease !== undefined) leases.revoke(lease, `forwarded ${short}: ${e}`, e);
          }
        } catch {
          /* as above */
        }
        throw err;
      },
    );
  }

  /** The local copy a request's KeyId names, and its key's lease (started if new, marked used). */
  function useLease(keyId: string): { copy: string; lease: KeyLease } | undefined {
    const found = hooks.findRemote(keyId);
    if (found === undefined) return undefined;
    const lease = leases.use(found.remoteArn, () => hooks.macAlgorithm(found.keyId));
    return lease === undefined ? undefined : { copy: found.keyId, lease };
  }

  function tryLocal(name: string, input: GenerateMacInput | VerifyMacInput): Record<string, unknown> | undefined {
    const used = useLease(input.KeyId as string);
    if (used === undefined) return undefined;
    const { copy, lease } = used;
    // DryRun exists to ask AWS about permissions: always AWS's answer.
    const decision = input.DryRun === true ? 'forward' : leases.decide(lease);
    if (decision === 'forward' || !hooks.usable(copy)) {
      lease.forwarded++;
      return undefined;
    }
    lease.local++;
    counts.local++;
    if (decision === 'stale') {
      lease.stale++;
      counts.stale++;
    }
    const out =
      name === 'GenerateMacCommand'
        ? hooks.generate(input, copy, lease.keyId)
        : hooks.verify(input as VerifyMacInput, copy, lease.keyId);
    return { ...out, $metadata: metadata() };
  }

  const send = (command: unknown, ...rest: unknown[]): Promise<unknown> => {
    const c = command as { constructor?: { name?: string }; input?: unknown } | undefined;
    const name = c?.constructor?.name ?? '';
    const input = c?.input as (GenerateMacInput & { DryRun?: boolean }) | undefined;
    if ((name === 'GenerateMacCommand' || name === 'VerifyMacCommand') && typeof input?.KeyId === 'string') {
      let local: Record<string, unknown> | undefined;
      try {
        local = tryLocal(name, input);
      } catch (err) {
        return Promise.reject(err);
      }
      if (local !== undefined) return Promise.resolve(local);
    }
    counts.forwarded++;
    return observe(name, input, kmsClient.send(command, ...rest));
  };

  const control: FastPathControl = {
    on(event, listener) {
      leases.on(event, listener);
      return control;
    },
    once(event, listener) {
      leases.once(event, listener);
      return control;
    },
    off(event, listener) {
      leases.off(event, listener);
      return control;
    },
    async probe(keyId: string) {
      const used = typeof keyId === 'string' ? useLease(keyId) : undefined;
      if (used === undefined) return undefined;
      await leases.probeNow(used.lease);
      return leases.stats()[used.lease.keyId];
    },
    leaseSeconds,
    onUnreachable,
    close: () => leases.close(),
  };
  const stats = (): FastPathStats => ({ ...counts, keys: leases.stats() });

  return new Proxy(kmsClient, {
    get(target, prop, receiver) {
      if (prop === 'send') return send;
      if (prop === 'fastPathStats') return stats();
      if (prop === 'fastPath') return control;
      if (prop === 'remoteClient') return target;
      if (prop === 'localClient') return localClient;
      if (prop === inspect.custom) {
        return () =>
          `FastPathClient { local: ${counts.local}, stale: ${counts.stale}, forwarded: ${counts.forwarded}, leaseSeconds: ${leaseSeconds} }`;
      }
      const v = Reflect.get(target, prop, receiver);
      if (prop === 'destroy' && typeof v === 'function') {
        return (...args: unknown[]) => {
          leases.close();
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as FastPathClient<T>;
}
