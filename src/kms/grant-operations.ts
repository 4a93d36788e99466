/**
 * Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
 * RevokeGrant. A grant lets its grantee run the listed operations on one key
 * (authorize.ts consults them after the key policy). A grant is effective as
 * soon as CreateGrant returns, in every process sharing the store (a process
 * that has not seen it yet asks the store again when a request carries its
 * token): AWS's eventual consistency is never observable here.
 */
import { randomBytes } from 'node:crypto';
import type { GrantRecord, KeyRecord, KeyStoreTransaction } from '../keystore/types.js';
import { callerFrom, grantToken, parseGrantToken, type Caller } from './authorize.js';
import type { ClientContext } from './context.js';
import { kmsError } from './errors.js';
import { arnAccount, partitionOf } from './identifiers.js';
import { withChanges } from './keys.js';
import { LIMITS } from './limits.js';
import { checkNotPendingDeletion } from './request-checks.js';
import { paginate } from './key-operations.js';
import { validationMessage, Violations } from './validation.js';

/** The grant operations the KMS model lists, in the order AWS prints them in a ValidationException. */
const GRANT_OPERATION_ENUM = [
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'Sign',
  'Verify',
  'GetPublicKey',
  'CreateGrant',
  'RetireGrant',
  'DescribeKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
];
/** The grant operations an HMAC key accepts. */
const HMAC_GRANT_OPERATIONS = new Set(['GenerateMac', 'VerifyMac', 'DescribeKey', 'RetireGrant', 'CreateGrant']);
const GRANT_NAME_RE = /^[a-zA-Z0-9:/_-]+$/;

export interface CreateGrantInput {
  KeyId: string | undefined;
  GranteePrincipal: string | undefined;
  RetiringPrincipal?: string;
  Operations: string[] | undefined;
  Constraints?: unknown;
  GrantTokens?: string[];
  Name?: string;
  DryRun?: boolean;
}

export interface GrantListEntry {
  KeyId: string;
  GrantId: string;
  Name?: string;
  CreationDate: Date;
  GranteePrincipal: string;
  RetiringPrincipal?: string;
  IssuingAccount: string;
  Operations: string[];
}

function dryRunError() {
  return kmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

/** A principal ARN as a grant names it (grantee or retiring principal): an IAM/STS principal ARN. */
function checkPrincipal(value: string, member: string): void {
  try {
    callerFrom(value, undefined, partitionOf('us-east-1'), '000000000000');
  } catch {
    throw validationMessage(`${member} ${value} is not a valid principal: use an IAM or STS principal ARN.`);
  }
}

function listEntry(rec: KeyRecord, g: GrantRecord): GrantListEntry {
  return {
    KeyId: rec.arn,
    GrantId: g.grantId,
    ...(g.name !== undefined ? { Name: g.name } : {}),
    CreationDate: new Date(g.creationDate),
    GranteePrincipal: g.granteePrincipal,
    ...(g.retiringPrincipal !== undefined ? { RetiringPrincipal: g.retiringPrincipal } : {}),
    IssuingAccount: g.issuingAccount,
    Operations: [...g.operations],
  };
}

export class GrantOperations {
  readonly #ctx: ClientContext;

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
  }

  async createGrant(input: CreateGrantInput, caller: Caller): Promise<{ GrantToken: string; GrantId: string }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const grantee = v.string('granteePrincipal', input?.GranteePrincipal, ...LIMITS.principal, true);
    const retiring = v.string('retiringPrincipal', input?.RetiringPrincipal, ...LIMITS.principal, false);
    const name = v.string('name', input?.Name, ...LIMITS.grantName, false);
    if (name !== undefined && !GRANT_NAME_RE.test(name))
      v.add('name', name, `Member must satisfy regular expression pattern: ${GRANT_NAME_RE.source}`);
    const ops = input?.Operations;
    if (ops === undefined || ops === null) v.add('operations', null, 'Member must not be null');
    else if (!Array.isArray(ops)) throw validationMessage('Operations must be a list');
    else
      ops.forEach((o, i) => {
        v.enumValue(
          `operations.${i + 1}.member`,
          o,
          GRANT_OPERATION_ENUM,
          `[${GRANT_OPERATION_ENUM.join(', ')}]`,
          true,
        );
      });
    v.grantTokens(input?.GrantTokens);
    const dryRun = v.boolean('dryRun', input?.DryRun) ?? false;
    v.throwIfAny();
    if (ops!.length === 0) throw validationMessage('Operations must name at least one grant operation.');
    checkPrincipal(grantee!, 'GranteePrincipal');
    if (retiring !== undefined) checkPrincipal(retiring, 'RetiringPrincipal');
    const grantTokens = input.GrantTokens ?? undefined;
    return this.#ctx.mutate((tx, now) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'CreateGrant', { grantTokens });
      checkNotPendingDeletion(rec);
      const wrong = ops!.filter((o) => !HMAC_GRANT_OPERATIONS.has(o));
      if (wrong.length > 0)
        throw validationMessage(
          `${rec.arn} key usage is GENERATE_VERIFY_MAC, which does not support the grant operations ${wrong.join(', ')}. ` +
            'A grant on an HMAC KMS key may allow GenerateMac, VerifyMac, DescribeKey, RetireGrant and CreateGrant.',
        );
      // Encryption context constraints apply to operations that take an encryption context; MAC operations take none.
      if (input.Constraints !== undefined && input.Constraints !== null)
        throw validationMessage(
          'Grant constraints are not supported for grants on an HMAC KMS key: GenerateMac and VerifyMac take no encryption context.',
        );
      const operations = [...new Set(ops!)];
      // AWS: a CreateGrant identical to an existing named grant returns that grant.
      const same = rec.grants?.find(
        (g) =>
          name !== undefined &&
          g.name === name &&
          g.granteePrincipal === grantee &&
          g.retiringPrincipal === retiring &&
          g.operations.length === operations.length &&
          operations.every((o) => g.operations.includes(o)),
      );
      if (dryRun) throw dryRunError();
      if (same) return { GrantToken: grantToken(rec.arn, same.grantId), GrantId: same.grantId };
      const grant: GrantRecord = {
        grantId: randomBytes(32).toString('hex'),
        ...(name !== undefined ? { name } : {}),
        granteePrincipal: grantee!,
        ...(retiring !== undefined ? { retiringPrincipal: retiring } : {}),
        issuingAccount: `arn:${partitionOf(this.#ctx.scope.region)}:iam::${caller.accountId}:root`,
        operations,
        creationDate: now,
      };
      tx.replaceKey(withChanges(rec, { grants: [...(rec.grants ?? []), grant] }));
      return { GrantToken: grantToken(rec.arn, grant.grantId), GrantId: grant.grantId };
    });
  }

  async listGrants(
    input: { KeyId: string | undefined; Limit?: number; Marker?: string; GrantId?: string; GranteePrincipal?: string },
    caller: Caller,
  ) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const limit = v.integer('limit', input?.Limit, ...LIMITS.listGrantsLimit) ?? 50;
    const marker = v.string('marker', input?.Marker, ...LIMITS.marker, false);
    const grantId = v.string('grantId', input?.GrantId, ...LIMITS.grantId, false);
    const grantee = v.string('granteePrincipal', input?.GranteePrincipal, ...LIMITS.principal, false);
    v.throwIfAny();
    const rec = this.#ctx.resolveRead(keyId!, false, caller, 'ListGrants');
    const grants = (rec.grants ?? []).filter(
      (g) =>
        (grantId === undefined || g.grantId === grantId) && (grantee === undefined || g.granteePrincipal === grantee),
    );
    const page = paginate(grants, limit, marker, (g) => [g.creationDate, g.grantId]);
    return {
      Grants: page.items.map((g) => listEntry(rec, g)),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  /**
   * The grants whose retiring principal is `RetiringPrincipal`, on any key.
   * An IAM permission (no key policy is consulted), limited here to retiring
   * principals of the caller's own account.
   */
  async listRetirableGrants(
    input: { RetiringPrincipal: string | undefined; Limit?: number; Marker?: string },
    caller: Caller,
  ) {
    const v = new Violations();
    const retiring = v.string('retiringPrincipal', input?.RetiringPrincipal, ...LIMITS.principal, true);
    const limit = v.integer('limit', input?.Limit, ...LIMITS.listGrantsLimit) ?? 50;
    const marker = v.string('marker', input?.Marker, ...LIMITS.marker, false);
    v.throwIfAny();
    if (arnAccount(retiring!) !== caller.accountId)
      throw kmsError(
        'AccessDeniedException',
        `User: ${caller.principalArn} is not authorized to perform: kms:ListRetirableGrants on resource: ${retiring} because the retiring principal is in another account`,
      );
    const found: { rec: KeyRecord; g: GrantRecord }[] = [];
    for (const rec of this.#ctx.store.listKeys())
      for (const g of rec.grants ?? []) if (g.retiringPrincipal === retiring) found.push({ rec, g });
    found.sort((a, b) => a.g.creationDate - b.g.creationDate || (a.g.grantId < b.g.grantId ? -1 : 1));
    const page = paginate(found, limit, marker, (x) => [x.g.creationDate, x.g.grantId]);
    return {
      Grants: page.items.map((x) => listEntry(x.rec, x.g)),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  /**
   * Retires a grant named by its token, or by KeyId (key ARN) and GrantId.
   * Allowed to the grant's retiring principal, to its grantee when the grant
   * includes RetireGrant, and to the root of the account that issued it.
   */
  async retireGrant(
    input: { GrantToken?: string; KeyId?: string; GrantId?: string; DryRun?: boolean },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const token = v.string('grantToken', input?.GrantToken, ...LIMITS.grantToken, false);
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, false);
    const grantIdIn = v.string('grantId', input?.GrantId, ...LIMITS.grantId, false);
    const dryRun = v.boolean('dryRun', input?.DryRun) ?? false;
    v.throwIfAny();
    let keyName: string;
    let grantId: string;
    if (token !== undefined) {
      const p = parseGrantToken(token);
      if (p === undefined) throw kmsError('InvalidGrantTokenException', 'The grant token is not valid.');
      keyName = p.keyArn;
      grantId = p.grantId;
    } else if (keyId !== undefined && grantIdIn !== undefined) {
      keyName = keyId;
      grantId = grantIdIn;
    } else throw validationMessage('RetireGrant needs a GrantToken, or both KeyId and GrantId.');
    await this.#ctx.mutate((tx) => {
      const { rec, grant } = this.#grant(tx, keyName, grantId, caller, token !== undefined);
      const mayRetire =
        grant.retiringPrincipal === caller.principalArn ||
        (grant.granteePrincipal === caller.principalArn && grant.operations.includes('RetireGrant')) ||
        // The issuing account as its root: IAM would have to delegate it to anyone else, and IAM is out of scope.
        grant.issuingAccount === caller.principalArn;
      if (!mayRetire)
        throw kmsError(
          'AccessDeniedException',
          `User: ${caller.principalArn} is not authorized to perform: kms:RetireGrant on resource: ${rec.arn} because no resource-based policy allows the kms:RetireGrant action`,
        );
      if (dryRun) throw dryRunError();
      tx.replaceKey(withChanges(rec, { grants: rec.grants!.filter((g) => g.grantId !== grantId) }));
    });
    return {};
  }

  async revokeGrant(
    input: { KeyId: string | undefined; GrantId: string | undefined; DryRun?: boolean },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const grantId = v.string('grantId', input?.GrantId, ...LIMITS.grantId, true);
    const dryRun = v.boolean('dryRun', input?.DryRun) ?? false;
    v.throwIfAny();
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'RevokeGrant');
      if (!rec.grants?.some((g) => g.grantId === grantId)) throw grantNotFound(grantId!);
      if (dryRun) throw dryRunError();
      tx.replaceKey(withChanges(rec, { grants: rec.grants.filter((g) => g.grantId !== grantId) }));
    });
    return {};
  }

  /** The key (resolved as the caller names it, no key policy consulted: RetireGrant is the grant's business) and grant. */
  #grant(tx: KeyStoreTransaction, keyName: string, grantId: string, caller: Caller, byToken: boolean) {
    const rec = this.#ctx.resolveTx(tx, keyName, false, caller, undefined);
    const grant = rec.grants?.find((g) => g.grantId === grantId);
    if (grant === undefined) {
      if (byToken) throw kmsError('InvalidGrantTokenException', 'The grant token is not valid.');
      throw grantNotFound(grantId);
    }
    return { rec, grant };
  }
}

function grantNotFound(grantId: string) {
  return kmsError('NotFoundException', `Grant ID ${grantId} not found`);
}
