/**
 * Who may do what: the caller of a request, and the one decision every
 * operation on a key asks for (spec §3 step 4, right after the key is
 * resolved and before anything else about it is looked at or changed).
 *
 * A request is allowed when the key policy allows it (an explicit Deny
 * wins), or when a grant on the key gives the caller that operation. The
 * key policy is the record's (as PutKeyPolicy stored it) or, for a key that
 * never had one, the default policy of the key's account.
 */
import type { GrantRecord, KeyRecord } from '../keystore/types.js';
import { kmsError } from './errors.js';
import { arnAccount } from './identifiers.js';
import { defaultPolicy, evaluatePolicy, parsePolicy, type ParsedPolicy } from './policy.js';

/** The principal a request is evaluated as. */
export interface Caller {
  /** `arn:aws:iam::111122223333:user/shipper`, `arn:aws:iam::111122223333:root`, … */
  readonly principalArn: string;
  readonly accountId: string;
}

const PRINCIPAL_ARN_RE = /^arn:([a-z-]+):(iam|sts)::(\d{12}):(root|user\/\S+|role\/\S+|assumed-role\/\S+)$/;
const ACCOUNT_RE = /^\d{12}$/;

/** The account's root principal. */
export function rootCaller(partition: string, accountId: string): Caller {
  return Object.freeze({ principalArn: `arn:${partition}:iam::${accountId}:root`, accountId });
}

/**
 * A caller from a principal ARN and/or an account id (either may be
 * omitted: no principal is the account's root, no account is the
 * principal's, neither is `defaultAccount`'s root). Throws TypeError.
 */
export function callerFrom(
  principal: string | undefined,
  accountId: string | undefined,
  partition: string,
  defaultAccount: string,
): Caller {
  if (accountId !== undefined && !ACCOUNT_RE.test(accountId))
    throw new TypeError(`accountId must be 12 digits, got '${accountId}'`);
  if (principal === undefined) return rootCaller(partition, accountId ?? defaultAccount);
  const m = PRINCIPAL_ARN_RE.exec(principal);
  if (!m)
    throw new TypeError(
      `principal must be an IAM ARN such as arn:aws:iam::111122223333:user/shipper (root, user/, role/ or sts assumed-role/), got '${principal}'`,
    );
  if (accountId !== undefined && m[3] !== accountId)
    throw new TypeError(`principal ${principal} is not in account ${accountId}`);
  return Object.freeze({ principalArn: principal, accountId: m[3]! });
}

/** The account a key belongs to (from its ARN). */
export function keyAccount(rec: KeyRecord): string {
  return arnAccount(rec.arn);
}

function keyPartition(rec: KeyRecord): string {
  return rec.arn.split(':')[1]!;
}

/** The key policy as GetKeyPolicy returns it. */
export function keyPolicyText(rec: KeyRecord): string {
  return rec.policy ?? defaultPolicy(keyPartition(rec), keyAccount(rec));
}

// Stored records are frozen and replaced on change: the parsed policy is cached per record.
const parsed = new WeakMap<KeyRecord, ParsedPolicy>();

function policyOf(rec: KeyRecord): ParsedPolicy {
  let p = parsed.get(rec);
  if (p === undefined) {
    try {
      p = parsePolicy(keyPolicyText(rec));
    } catch {
      // Stored policies were checked when they were put; one that no longer parses allows nothing.
      p = { statements: [] };
    }
    parsed.set(rec, p);
  }
  return p;
}

/** What an operation adds to the policy's condition keys and the grant check. */
export interface AccessDetails {
  /** GenerateMac/VerifyMac: the request's MacAlgorithm (condition key kms:MacAlgorithm). */
  readonly macAlgorithm?: string;
  /** The request's GrantTokens (checked: an unknown or garbled token is InvalidGrantTokenException). */
  readonly grantTokens?: readonly string[];
}

/** The grants on `rec` that let `caller` run `operation`. */
function grantAllows(grants: readonly GrantRecord[] | undefined, caller: Caller, operation: string): boolean {
  if (grants === undefined) return false;
  for (const g of grants)
    if (g.granteePrincipal === caller.principalArn && g.operations.includes(operation)) return true;
  return false;
}

/**
 * Throws AccessDeniedException unless `caller` may run `operation` (the
 * KMS operation name, e.g. `GenerateMac`) on `rec`; InvalidGrantTokenException
 * for a grant token this service did not issue for a live grant of this key.
 */
/**
 * The operations AWS lets a principal of another account call on a key (its API reference's
 * "Cross-account use: Yes"); for every other one a key policy cannot grant another account access.
 */
const CROSS_ACCOUNT_OPERATIONS: ReadonlySet<string> = new Set([
  'GenerateMac',
  'VerifyMac',
  'DescribeKey',
  'GetKeyRotationStatus',
  'CreateGrant',
  'ListGrants',
  'RetireGrant',
  'RevokeGrant',
]);

export function authorize(rec: KeyRecord, caller: Caller, operation: string, details?: AccessDetails): void {
  if (details?.grantTokens !== undefined) checkGrantTokens(rec, details.grantTokens);
  const action = `kms:${operation}`;
  if (rec.arn.split(':')[4] !== caller.accountId && !CROSS_ACCOUNT_OPERATIONS.has(operation)) {
    throw kmsError(
      'AccessDeniedException',
      `User: ${caller.principalArn} is not authorized to perform: ${action} on resource: ${rec.arn} because no resource-based policy allows the ${action} action`,
    );
  }
  const context = new Map<string, string>([
    ['kms:calleraccount', caller.accountId],
    ['aws:principalarn', caller.principalArn],
    ['aws:principalaccount', caller.accountId],
    ['kms:grantisforawsresource', 'false'],
  ]);
  if (details?.macAlgorithm !== undefined) context.set('kms:macalgorithm', details.macAlgorithm);
  const decision = evaluatePolicy(policyOf(rec), {
    action,
    principalArn: caller.principalArn,
    principalAccount: caller.accountId,
    resourceArn: rec.arn,
    context,
  });
  if (decision === 'Allow') return;
  if (decision === 'ImplicitDeny' && grantAllows(rec.grants, caller, operation)) return;
  throw kmsError(
    'AccessDeniedException',
    `User: ${caller.principalArn} is not authorized to perform: ${action} on resource: ${rec.arn} because ` +
      (decision === 'Deny'
        ? 'with an explicit deny in a resource-based policy'
        : `no resource-based policy allows the ${action} action`),
  );
}

// ---------------------------------------------------------------------------
// Grant tokens: base64url of {"g": grant id, "k": key ARN, "v": 1}. A grant is
// effective as soon as CreateGrant returns, so a token adds no permission; it
// is checked so that a token nobody issued is refused as AWS refuses it.

export function grantToken(keyArn: string, grantId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, k: keyArn, g: grantId })).toString('base64url');
}

/** The key ARN and grant id a token names, or undefined when it is not a token of this service. */
export function parseGrantToken(token: string): { keyArn: string; grantId: string } | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  try {
    const o = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (o?.v !== 1 || typeof o.k !== 'string' || typeof o.g !== 'string') return undefined;
    return { keyArn: o.k, grantId: o.g };
  } catch {
    return undefined;
  }
}

function checkGrantTokens(rec: KeyRecord, tokens: readonly string[]): void {
  for (const t of tokens) {
    const p = parseGrantToken(t);
    // A token for another key is that key's business (AWS accepts tokens for other keys in one list).
    if (p !== undefined && p.keyArn !== rec.arn) continue;
    if (p === undefined || !rec.grants?.some((g) => g.grantId === p.grantId))
      throw kmsError('InvalidGrantTokenException', 'The grant token is not valid.');
  }
}
