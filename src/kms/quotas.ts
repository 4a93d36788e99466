/**
 * AWS KMS's resource quotas (per account and Region: KMS keys, aliases per
 * key, tags per key) and the request quota of GetParametersForImport, with
 * AWS's default values, as this service enforces them. Every process holds
 * the whole key store in memory, so an unbounded CreateKey/CreateAlias/
 * TagResource would let any authenticated caller grow every replica.
 *
 * Each is configurable: `new KmsHmacClient({ quotas })`, `startServer({
 * quotas })`, `kms-hmac serve --keys-quota` and the like. Past a resource
 * quota the request fails with LimitExceededException (400, which the SDKs
 * do not retry into success); past the request rate, ThrottlingException.
 * The messages are ours: AWS documents the exception, not its text.
 */
import { kmsError } from './errors.js';

export interface Quotas {
  /** KMS keys in the account and Region, in any key state, pending deletion included (AWS: 100,000). */
  keys: number;
  /** Aliases that point to one KMS key (AWS: 50). */
  aliasesPerKey: number;
  /** Tags on one KMS key (AWS: 50). */
  tagsPerKey: number;
  /** GetParametersForImport requests per key and second (AWS's request quota: 0.25, one in a 4-second interval). */
  getParametersForImportPerSecond: number;
}

/** AWS's defaults (developer guide, "Resource quotas" and "Request quotas"). */
export const QUOTAS: Readonly<Quotas> = Object.freeze({
  keys: 100_000,
  aliasesPerKey: 50,
  tagsPerKey: 50,
  getParametersForImportPerSecond: 0.25,
});

/** The quotas with the defaults filled in; a value that is not a positive number (Infinity allowed) is a RangeError. */
export function resolveQuotas(given: Partial<Quotas> | undefined): Quotas {
  const q = { ...QUOTAS, ...given };
  for (const name of Object.keys(QUOTAS) as (keyof Quotas)[]) {
    const v = q[name];
    const counted = name !== 'getParametersForImportPerSecond';
    if (typeof v !== 'number' || !(v > 0) || (counted && v !== Infinity && !Number.isInteger(v)))
      throw new RangeError(`quotas.${name} must be a positive ${counted ? 'integer' : 'number'} (or Infinity)`);
  }
  return q;
}

export function checkKeyQuota(count: number, q: Quotas): void {
  if (count >= q.keys)
    throw kmsError(
      'LimitExceededException',
      `The request would exceed the quota of ${q.keys} KMS keys in this account and Region.`,
    );
}

/** `count`: the aliases the key has before this request adds one. */
export function checkAliasQuota(count: number, keyArn: string, q: Quotas): void {
  if (count >= q.aliasesPerKey)
    throw kmsError(
      'LimitExceededException',
      `The request would exceed the quota of ${q.aliasesPerKey} aliases for the KMS key ${keyArn}.`,
    );
}

/** `count`: the tags the key would hold. */
export function checkTagQuota(count: number, q: Quotas): void {
  if (count > q.tagsPerKey)
    throw kmsError('LimitExceededException', `The request would exceed the ${q.tagsPerKey} tag limit for a KMS key.`);
}

/** AWS's text for a throttled request (spec §3, a raw KMS body). */
const THROTTLED = 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.';

/**
 * A request rate per key: a call is allowed when `1 / perSecond` seconds have
 * passed since the key's last allowed one (a token bucket of one token, as
 * AWS's "one in a 4-second interval" reads). Remembers only keys inside
 * their interval.
 */
export class PerKeyRate {
  readonly #intervalMs: number;
  readonly #next = new Map<string, number>();

  constructor(perSecond: number) {
    this.#intervalMs = 1000 / perSecond;
  }

  /** Throws ThrottlingException when `keyId` was allowed less than the interval ago (clock: `now`, epoch ms). */
  take(keyId: string, now: number): void {
    const next = this.#next.get(keyId);
    if (next !== undefined && now < next) throw kmsError('ThrottlingException', THROTTLED);
    if (this.#next.size >= 1024) for (const [k, t] of this.#next) if (t <= now) this.#next.delete(k);
    this.#next.set(keyId, now + this.#intervalMs);
  }
}
