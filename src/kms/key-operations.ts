/**
 * Key management: CreateKey, DescribeKey, ListKeys, the alias operations,
 * EnableKey/DisableKey, key deletion, tags and key rotation (which HMAC keys
 * do not support: the operations answer as AWS does for them).
 */
import { randomBytes } from 'node:crypto';
import type { HmacKeySpec, KeyRecord, KeyStoreTransaction, Tag } from '../keystore/types.js';
import type { ClientContext } from './context.js';
import { kmsError, type KmsErrorLike } from './errors.js';
import { authorize, keyAccount, type Caller } from './authorize.js';
import { aliasArn, arnAccount, keyArn, newKeyId } from './identifiers.js';
import { checkNewPolicy } from './policy-operations.js';
import { GENERATED_MATERIAL_LENGTH } from './import.js';
import {
  aliasListEntry,
  HMAC_KEY_SPECS,
  keyMetadata,
  timeAdjusted,
  timeDeadline,
  withChanges,
  type KeyMetadata,
} from './keys.js';
import { LIMITS } from './limits.js';
import { checkAliasQuota, checkKeyQuota, checkTagQuota } from './quotas.js';
import {
  aliasPrefixError,
  checkAliasName,
  checkNotPending,
  checkNotPendingDeletion,
  requireKeyId,
  validateTags,
} from './request-checks.js';
import {
  CUSTOMER_MASTER_KEY_SPEC_ENUM,
  KEY_SPEC_ENUM,
  KEY_USAGE_ENUM,
  ORIGIN_ENUM,
  validationMessage,
  Violations,
} from './validation.js';

export interface CreateKeyInput {
  Policy?: string;
  Description?: string;
  KeyUsage?: string;
  CustomerMasterKeySpec?: string;
  KeySpec?: string;
  Origin?: string;
  CustomKeyStoreId?: string;
  BypassPolicyLockoutSafetyCheck?: boolean;
  Tags?: Tag[];
  MultiRegion?: boolean;
  XksKeyId?: string;
}

const DAY_MS = 86_400_000;

export class KeyOperations {
  readonly #ctx: ClientContext;

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
  }

  async createKey(input: CreateKeyInput, caller: Caller): Promise<{ KeyMetadata: KeyMetadata }> {
    input ??= {};
    const v = new Violations();
    const policy = v.string('policy', input.Policy, ...LIMITS.policy, false);
    const description = v.string('description', input.Description, ...LIMITS.description, false);
    const usage = v.enumValue('keyUsage', input.KeyUsage, KEY_USAGE_ENUM, `[${KEY_USAGE_ENUM.join(', ')}]`, false);
    const cmks = v.enumValue(
      'customerMasterKeySpec',
      input.CustomerMasterKeySpec,
      CUSTOMER_MASTER_KEY_SPEC_ENUM,
      `[${CUSTOMER_MASTER_KEY_SPEC_ENUM.join(', ')}]`,
      false,
    );
    const keySpec = v.enumValue('keySpec', input.KeySpec, KEY_SPEC_ENUM, `[${KEY_SPEC_ENUM.join(', ')}]`, false);
    const origin = v.enumValue('origin', input.Origin, ORIGIN_ENUM, `[${ORIGIN_ENUM.join(', ')}]`, false) ?? 'AWS_KMS';
    const customKeyStoreId = v.string('customKeyStoreId', input.CustomKeyStoreId, ...LIMITS.customKeyStoreId, false);
    const bypass = v.boolean('bypassPolicyLockoutSafetyCheck', input.BypassPolicyLockoutSafetyCheck) ?? false;
    const tags = validateTags(v, input.Tags);
    const multiRegion = v.boolean('multiRegion', input.MultiRegion) ?? false;
    v.string('xksKeyId', input.XksKeyId, ...LIMITS.xksKeyId, false);
    v.throwIfAny();
    checkTagQuota(tags.length, this.#ctx.quotas);
    if (keySpec !== undefined && cmks !== undefined) {
      throw validationMessage(
        'You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.',
      );
    }
    const spec = keySpec ?? cmks ?? 'SYMMETRIC_DEFAULT';
    if (HMAC_KEY_SPECS.has(spec)) {
      if (usage === undefined)
        throw validationMessage(
          'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
        );
      if (usage !== 'GENERATE_VERIFY_MAC')
        throw validationMessage(`KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
    } else {
      if (usage === 'GENERATE_VERIFY_MAC')
        throw validationMessage(`KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
      throw kmsError(
        'UnsupportedOperationException',
        `KeySpec ${spec} is not supported: this KMS-compatible service (kms-hmac) creates only HMAC keys (KeySpec HMAC_224, HMAC_256, HMAC_384 or HMAC_512 with KeyUsage GENERATE_VERIFY_MAC).`,
      );
    }
    if (origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE' || customKeyStoreId !== undefined) {
      throw kmsError(
        'UnsupportedOperationException',
        `KeySpec ${spec} is not supported for KMS keys in a custom key store.`,
      );
    }
    const hmacSpec = spec as HmacKeySpec;
    const id = newKeyId(multiRegion);
    const arn = keyArn(this.#ctx.scopeOf(caller), id);
    if (policy !== undefined) checkNewPolicy(policy, arn, caller, bypass);
    const now = this.#ctx.clock();
    const external = origin === 'EXTERNAL';
    const record: KeyRecord = {
      keyId: id,
      arn,
      keySpec: hmacSpec,
      keyUsage: 'GENERATE_VERIFY_MAC',
      keyState: external ? 'PendingImport' : 'Enabled',
      origin: external ? 'EXTERNAL' : 'AWS_KMS',
      description: description ?? '',
      multiRegion,
      creationDate: now,
      tags,
      ...(policy !== undefined ? { policy } : {}),
      ...(external ? {} : { keyMaterial: new Uint8Array(randomBytes(GENERATED_MATERIAL_LENGTH[hmacSpec])) }),
    };
    try {
      await this.#ctx.mutate((tx) => {
        checkKeyQuota(tx.listKeys().length, this.#ctx.quotas);
        tx.insertKey(record);
      });
    } finally {
      record.keyMaterial?.fill(0); // the store keeps its own copy
    }
    return { KeyMetadata: keyMetadata(record) };
  }

  async describeKey(
    input: {
      KeyId: string | undefined;
      GrantTokens?: string[];
    },
    caller: Caller,
  ): Promise<{ KeyMetadata: KeyMetadata }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    v.grantTokens(input?.GrantTokens);
    v.throwIfAny();
    const grantTokens = input.GrantTokens ?? undefined;
    return {
      KeyMetadata: keyMetadata(this.#ctx.resolveRead(keyId!, true, caller, 'DescribeKey', { grantTokens })),
    };
  }

  async listKeys(
    input: { Limit?: number; Marker?: string },
    caller: Caller,
  ): Promise<{ Keys: { KeyId: string; KeyArn: string }[]; Truncated: boolean; NextMarker?: string }> {
    const v = new Violations();
    const limit = v.integer('limit', input?.Limit, ...LIMITS.listKeysLimit) ?? 100;
    const marker = v.string('marker', input?.Marker, ...LIMITS.marker, false);
    v.throwIfAny();
    const now = this.#ctx.clock();
    const keys = this.#ctx.store
      .listKeys()
      .map((r) => (timeDeadline(r) <= now ? timeAdjusted(r, now) : r))
      .filter((r): r is KeyRecord => r !== undefined && keyAccount(r) === caller.accountId)
      .sort(byCreation);
    const page = paginate(keys, limit, marker, (r) => [r.creationDate, r.keyId]);
    return {
      Keys: page.items.map((r) => ({ KeyId: r.keyId, KeyArn: r.arn })),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  // -------------------------------------------------------------------------
  // Aliases

  async createAlias(
    input: {
      AliasName: string | undefined;
      TargetKeyId: string | undefined;
    },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const { aliasName, targetKeyId } = validateAliasInput(input);
    await this.#ctx.mutate((tx, now) => {
      const rec = this.#ctx.resolveTx(tx, targetKeyId, false, caller, 'CreateAlias');
      checkNotPendingDeletion(rec);
      const arn = aliasArn(this.#ctx.scopeOf(caller), aliasName);
      if (tx.getAlias(aliasName))
        throw kmsError('AlreadyExistsException', `An alias with the name ${arn} already exists`);
      checkAliasQuota(aliasCount(tx, rec.keyId), rec.arn, this.#ctx.quotas);
      tx.insertAlias({ aliasName, aliasArn: arn, targetKeyId: rec.keyId, creationDate: now, lastUpdatedDate: now });
    });
    return {};
  }

  async updateAlias(
    input: {
      AliasName: string | undefined;
      TargetKeyId: string | undefined;
    },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const { aliasName, targetKeyId } = validateAliasInput(input);
    await this.#ctx.mutate((tx, now) => {
      const arn = aliasArn(this.#ctx.scopeOf(caller), aliasName);
      const existing = tx.getAlias(aliasName);
      if (!existing || arnAccount(existing.aliasArn) !== caller.accountId)
        throw kmsError('NotFoundException', `Alias ${arn} is not found.`);
      const current = tx.getKey(existing.targetKeyId);
      if (current) authorize(current, caller, 'UpdateAlias');
      const rec = this.#ctx.resolveTx(tx, targetKeyId, false, caller, 'UpdateAlias');
      checkNotPendingDeletion(rec);
      if (existing.targetKeyId !== rec.keyId) checkAliasQuota(aliasCount(tx, rec.keyId), rec.arn, this.#ctx.quotas);
      tx.replaceAlias({ ...existing, targetKeyId: rec.keyId, lastUpdatedDate: now });
    });
    return {};
  }

  async deleteAlias(input: { AliasName: string | undefined }, caller: Caller): Promise<Record<string, never>> {
    const v = new Violations();
    const aliasName = v.string('aliasName', input?.AliasName, ...LIMITS.aliasName, true);
    v.throwIfAny();
    if (!aliasName!.startsWith('alias/')) throw aliasPrefixError();
    await this.#ctx.mutate((tx) => {
      const existing = tx.getAlias(aliasName!);
      if (!existing || arnAccount(existing.aliasArn) !== caller.accountId)
        throw kmsError('NotFoundException', `Alias ${aliasArn(this.#ctx.scopeOf(caller), aliasName!)} is not found.`);
      const target = tx.getKey(existing.targetKeyId);
      if (target) authorize(target, caller, 'DeleteAlias');
      tx.deleteAlias(aliasName!);
    });
    return {};
  }

  async listAliases(input: { KeyId?: string; Limit?: number; Marker?: string }, caller: Caller) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, false);
    const limit = v.integer('limit', input?.Limit, ...LIMITS.listAliasesLimit) ?? 50;
    const marker = v.string('marker', input?.Marker, ...LIMITS.marker, false);
    v.throwIfAny();
    let target: string | undefined;
    // ListAliases is an IAM permission: no key policy is consulted, and only the caller's own aliases are listed.
    if (keyId !== undefined) target = this.#ctx.resolveRead(keyId, false, caller, undefined).keyId;
    const aliases = this.#ctx.store
      .listAliases()
      .filter((a) => arnAccount(a.aliasArn) === caller.accountId)
      .filter((a) => (target === undefined ? this.#ctx.readKey(a.targetKeyId) !== undefined : a.targetKeyId === target))
      .sort((a, b) => (a.aliasName < b.aliasName ? -1 : a.aliasName > b.aliasName ? 1 : 0));
    const page = paginate(aliases, limit, marker, (a) => [0, a.aliasName]);
    return {
      Aliases: page.items.map(aliasListEntry),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  // -------------------------------------------------------------------------
  // Key state

  async enableKey(input: { KeyId: string | undefined }, caller: Caller): Promise<Record<string, never>> {
    const keyId = requireKeyId(input);
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId, false, caller, 'EnableKey');
      checkNotPending(rec);
      if (rec.keyState !== 'Enabled') tx.replaceKey(withChanges(rec, { keyState: 'Enabled' }));
    });
    return {};
  }

  async disableKey(input: { KeyId: string | undefined }, caller: Caller): Promise<Record<string, never>> {
    const keyId = requireKeyId(input);
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId, false, caller, 'DisableKey');
      checkNotPending(rec);
      if (rec.keyState !== 'Disabled') tx.replaceKey(withChanges(rec, { keyState: 'Disabled' }));
    });
    return {};
  }

  async scheduleKeyDeletion(input: { KeyId: string | undefined; PendingWindowInDays?: number }, caller: Caller) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const days = v.integer('pendingWindowInDays', input?.PendingWindowInDays, ...LIMITS.pendingWindowInDays) ?? 30;
    v.throwIfAny();
    return this.#ctx.mutate((tx, now) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'ScheduleKeyDeletion');
      checkNotPendingDeletion(rec);
      const deletionDate = now + days * DAY_MS;
      tx.replaceKey(withChanges(rec, { keyState: 'PendingDeletion', deletionDate, pendingDeletionWindowInDays: days }));
      return {
        KeyId: rec.arn,
        DeletionDate: new Date(deletionDate),
        KeyState: 'PendingDeletion' as const,
        PendingWindowInDays: days,
      };
    });
  }

  async cancelKeyDeletion(input: { KeyId: string | undefined }, caller: Caller): Promise<{ KeyId: string }> {
    const keyId = requireKeyId(input);
    return this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId, false, caller, 'CancelKeyDeletion');
      if (rec.keyState !== 'PendingDeletion')
        throw kmsError('KMSInvalidStateException', `${rec.arn} is not pending deletion.`);
      tx.replaceKey(
        withChanges(rec, {
          keyState: rec.keyMaterial ? 'Disabled' : 'PendingImport',
          deletionDate: undefined,
          pendingDeletionWindowInDays: undefined,
        }),
      );
      return { KeyId: rec.arn };
    });
  }

  // -------------------------------------------------------------------------
  // Rotation: HMAC keys have none; AWS answers UnsupportedOperationException after resolving the key.

  async enableKeyRotation(
    input: { KeyId: string | undefined; RotationPeriodInDays?: number },
    caller: Caller,
  ): Promise<never> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    v.integer('rotationPeriodInDays', input?.RotationPeriodInDays, ...LIMITS.rotationPeriodInDays);
    v.throwIfAny();
    throw this.#rotationUnsupported(keyId!, caller, 'EnableKeyRotation');
  }

  async disableKeyRotation(input: { KeyId: string | undefined }, caller: Caller): Promise<never> {
    throw this.#rotationUnsupported(requireKeyId(input), caller, 'DisableKeyRotation');
  }

  /** HMAC keys never rotate automatically: AWS answers `false` for them, in every key state (Ansible reads it after ScheduleKeyDeletion). */
  async getKeyRotationStatus(
    input: { KeyId: string | undefined },
    caller: Caller,
  ): Promise<{ KeyId: string; KeyRotationEnabled: false }> {
    const rec = this.#ctx.resolveRead(requireKeyId(input), false, caller, 'GetKeyRotationStatus');
    return { KeyId: rec.arn, KeyRotationEnabled: false };
  }

  async updateKeyDescription(
    input: { KeyId: string | undefined; Description: string | undefined },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const description = v.string('description', input?.Description, ...LIMITS.description, true);
    v.throwIfAny();
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'UpdateKeyDescription');
      checkNotPendingDeletion(rec);
      tx.replaceKey(withChanges(rec, { description: description! }));
    });
    return {};
  }

  #rotationUnsupported(keyId: string, caller: Caller, operation: string): KmsErrorLike {
    const rec = this.#ctx.resolveRead(keyId, false, caller, operation);
    if (rec.keyState === 'PendingDeletion')
      return kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
    return kmsError(
      'UnsupportedOperationException',
      `${rec.arn} key spec is ${rec.keySpec}, which does not support automatic key rotation.`,
    );
  }

  // -------------------------------------------------------------------------
  // Tags

  async tagResource(
    input: { KeyId: string | undefined; Tags: Tag[] | undefined },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    if (input?.Tags === undefined || input?.Tags === null) v.add('tags', null, 'Member must not be null');
    const tags = validateTags(v, input?.Tags);
    v.throwIfAny();
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'TagResource');
      checkNotPendingDeletion(rec);
      const merged = rec.tags.map((t) => ({ ...t }));
      for (const t of tags) {
        const i = merged.findIndex((m) => m.TagKey === t.TagKey);
        if (i >= 0) merged[i] = t;
        else merged.push(t);
      }
      checkTagQuota(merged.length, this.#ctx.quotas);
      tx.replaceKey(withChanges(rec, { tags: merged }));
    });
    return {};
  }

  async untagResource(
    input: {
      KeyId: string | undefined;
      TagKeys: string[] | undefined;
    },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const keys = input?.TagKeys;
    if (keys === undefined || keys === null) v.add('tagKeys', null, 'Member must not be null');
    else if (!Array.isArray(keys)) throw validationMessage('TagKeys must be a list');
    else
      keys.forEach((k, i) => {
        v.string(`tagKeys.${i + 1}.member`, k, ...LIMITS.tagKey, true);
      });
    v.throwIfAny();
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'UntagResource');
      checkNotPendingDeletion(rec);
      const drop = new Set(keys);
      tx.replaceKey(withChanges(rec, { tags: rec.tags.filter((t) => !drop.has(t.TagKey)).map((t) => ({ ...t })) }));
    });
    return {};
  }

  async listResourceTags(input: { KeyId: string | undefined; Limit?: number; Marker?: string }, caller: Caller) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const limit = v.integer('limit', input?.Limit, ...LIMITS.listResourceTagsLimit) ?? 50;
    const marker = v.string('marker', input?.Marker, ...LIMITS.marker, false);
    v.throwIfAny();
    const rec = this.#ctx.resolveRead(keyId!, false, caller, 'ListResourceTags');
    const tags = rec.tags.map((t, i) => ({ t, i }));
    const page = paginate(tags, limit, marker, (x) => [x.i, x.t.TagKey]);
    return {
      Tags: page.items.map((x) => ({ TagKey: x.t.TagKey, TagValue: x.t.TagValue })),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }
}

// ---------------------------------------------------------------------------

/** CreateAlias/UpdateAlias members: model constraints first (one ValidationException), then the alias-name rules. */
function validateAliasInput(input: { AliasName: string | undefined; TargetKeyId: string | undefined }) {
  const v = new Violations();
  const aliasName = v.string('aliasName', input?.AliasName, ...LIMITS.aliasName, true);
  const targetKeyId = v.string('targetKeyId', input?.TargetKeyId, ...LIMITS.keyId, true);
  v.throwIfAny();
  checkAliasName(aliasName!);
  return { aliasName: aliasName!, targetKeyId: targetKeyId! };
}

/** The aliases that point to `keyId`. */
function aliasCount(tx: KeyStoreTransaction, keyId: string): number {
  let n = 0;
  for (const a of tx.listAliases()) if (a.targetKeyId === keyId) n++;
  return n;
}

function byCreation(a: KeyRecord, b: KeyRecord): number {
  return a.creationDate - b.creationDate || (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0);
}

/**
 * Opaque markers: base64url of the sort position of the last item returned,
 * so a page boundary survives items added or removed between calls.
 */
export function paginate<T>(items: T[], limit: number, marker: string | undefined, pos: (t: T) => [number, string]) {
  let start = 0;
  if (marker !== undefined) {
    let after: [number, string];
    try {
      const decoded = JSON.parse(Buffer.from(marker, 'base64url').toString('utf8')) as unknown;
      if (!Array.isArray(decoded) || typeof decoded[0] !== 'number' || typeof decoded[1] !== 'string')
        throw new Error('bad');
      after = decoded as [number, string];
    } catch {
      throw kmsError('InvalidMarkerException', 'The marker is not valid. Use the NextMarker of the previous response.');
    }
    start = items.findIndex((t) => {
      const [n, s] = pos(t);
      return n > after[0] || (n === after[0] && s > after[1]);
    });
    if (start < 0) start = items.length;
  }
  const page = items.slice(start, start + limit);
  const truncated = start + limit < items.length;
  const next = truncated ? Buffer.from(JSON.stringify(pos(page[page.length - 1]!))).toString('base64url') : undefined;
  return { items: page, truncated, next };
}
