/**
 * Regions: which record a key id or alias name names in a Region, and
 * multi-Region keys (ReplicateKey, UpdatePrimaryRegion, the
 * `MultiRegionConfiguration` of their metadata).
 *
 * A key is one record per Region. A single-Region key (a UUID) has one; a
 * multi-Region key (`mrk-…`) has one per Region it is in, all with the same
 * key id and key material, each with its own state, description, tags and
 * aliases. Every record of a multi-Region key carries `regions` (primary and
 * replicas), rewritten in all of them together whenever the set changes.
 * The store ids follow keyStoreId (src/keystore/records.ts): the first
 * record keeps the bare key id, so stores written before replicas existed
 * are read unchanged.
 */
import { aliasStoreId, keyStoreId, qualifiedId } from '../keystore/records.js';
import type { AliasRecord, KeyRecord, KeyStoreTransaction, Tag } from '../keystore/types.js';
import { authorize, type Caller } from './authorize.js';
import type { ClientContext } from './context.js';
import { kmsError } from './errors.js';
import type { KeyMetadata } from './keys.js';
import { partitionOf } from './identifiers.js';
import { LIMITS } from './limits.js';
import { checkNewPolicy } from './policy-operations.js';
import { checkKeyQuota, checkTagQuota } from './quotas.js';
import { checkNotPendingDeletion, validateTags } from './request-checks.js';
import { Violations } from './validation.js';

/** The model's pattern for a Region name (`RegionType`). */
const REGION_RE = /^([a-z]+-){2,3}\d+$/;

/** Whether `region` is a well-formed Region name (the model's length and pattern). */
export function isRegionName(region: unknown): region is string {
  return typeof region === 'string' && region.length <= LIMITS.region[1] && REGION_RE.test(region);
}

/** `arn:partition:kms:region:account:`: what a resource's ARN says of where it lives. */
export function arnScope(arn: string): string {
  let at = -1;
  for (let i = 0; i < 5; i++) {
    at = arn.indexOf(':', at + 1);
    if (at < 0) return arn;
  }
  return arn.slice(0, at + 1);
}

/** The Region field of an ARN. */
export function arnRegion(arn: string): string {
  return arn.split(':')[3] ?? '';
}

/** The same resource's ARN in another Region. */
export function arnInRegion(arn: string, region: string): string {
  const p = arn.split(':');
  p[3] = region;
  return p.join(':');
}

/** The record of key `keyId` whose ARN is `arn` (the key in one Region), from store reads. */
export function findKey(
  get: (storeId: string) => KeyRecord | undefined,
  keyId: string,
  arn: string,
): KeyRecord | undefined {
  const rec = get(keyId);
  if (rec?.arn === arn) return rec;
  if (!keyId.startsWith('mrk-')) return undefined; // a single-Region key has one record
  const other = get(qualifiedId(keyId, arnRegion(arn)));
  return other?.arn === arn ? other : undefined;
}

/** The alias `aliasName` whose ARN is `arn`, from store reads. */
export function findAlias(
  get: (storeId: string) => AliasRecord | undefined,
  aliasName: string,
  arn: string,
): AliasRecord | undefined {
  const a = get(aliasName);
  if (a?.aliasArn === arn) return a;
  const other = get(qualifiedId(aliasName, arnRegion(arn)));
  return other?.aliasArn === arn ? other : undefined;
}

/**
 * Whether an alias `aliasName` with ARN `arn` cannot be created: it exists,
 * or another account's alias of that name in the same Region holds the store
 * id it would get (alias names are unique per Region across accounts).
 */
export function aliasTaken(get: (storeId: string) => AliasRecord | undefined, aliasName: string, arn: string): boolean {
  const region = arnRegion(arn);
  const bare = get(aliasName);
  if (bare !== undefined && arnRegion(bare.aliasArn) === region) return true;
  return get(qualifiedId(aliasName, region)) !== undefined;
}

/** `rec` with the store id it gets when inserted now: the bare id, unless another Region's record holds it. */
export function placeKey(tx: KeyStoreTransaction, rec: KeyRecord): KeyRecord {
  return tx.getKey(rec.keyId) === undefined ? rec : { ...rec, idRegion: arnRegion(rec.arn) };
}

export function placeAlias(tx: KeyStoreTransaction, alias: AliasRecord): AliasRecord {
  return tx.getAlias(alias.aliasName) === undefined ? alias : { ...alias, idRegion: arnRegion(alias.aliasArn) };
}

/** Whether an alias and a key are in the same Region of the same account. */
export function sameScope(alias: AliasRecord, key: KeyRecord): boolean {
  return arnScope(alias.aliasArn) === arnScope(key.arn);
}

interface Family {
  primary: string;
  replicas: string[];
}

function familyOf(rec: KeyRecord): Family {
  return rec.regions ?? { primary: arnRegion(rec.arn), replicas: [] };
}

/** `MultiRegionConfiguration` as DescribeKey shows it, for a multi-Region key's record. */
export function multiRegionConfiguration(rec: KeyRecord) {
  const fam = familyOf(rec);
  return {
    MultiRegionKeyType: fam.primary === arnRegion(rec.arn) ? ('PRIMARY' as const) : ('REPLICA' as const),
    PrimaryKey: { Arn: arnInRegion(rec.arn, fam.primary), Region: fam.primary },
    ReplicaKeys: fam.replicas.map((r) => ({ Arn: arnInRegion(rec.arn, r), Region: r })),
  };
}

/** Every Region's record of `rec`'s key (itself included), inside a transaction. */
function members(tx: KeyStoreTransaction, rec: KeyRecord): KeyRecord[] {
  const fam = familyOf(rec);
  const out: KeyRecord[] = [];
  for (const region of [fam.primary, ...fam.replicas]) {
    const m = findKey((id) => tx.getKey(id), rec.keyId, arnInRegion(rec.arn, region));
    if (m) out.push(m);
  }
  return out;
}

/** Writes `fam` into every record of `recs` (a key's records in the store; a new one is the caller's). */
function rewriteFamily(tx: KeyStoreTransaction, recs: KeyRecord[], fam: Family): void {
  const regions = fam.replicas.length === 0 ? undefined : fam;
  for (const m of recs) {
    const next: Record<string, unknown> = { ...m };
    if (regions) next.regions = { primary: regions.primary, replicas: [...regions.replicas] };
    else delete next.regions;
    tx.replaceKey(next as unknown as KeyRecord);
  }
}

/**
 * Deletes a key's record whose waiting period ended, with the aliases that
 * point to it in its Region, and takes its Region out of the other records of
 * a multi-Region key.
 */
export function removeKey(tx: KeyStoreTransaction, rec: KeyRecord): void {
  for (const a of tx.listAliases())
    if (a.targetKeyId === rec.keyId && sameScope(a, rec)) tx.deleteAlias(aliasStoreId(a));
  tx.deleteKey(keyStoreId(rec));
  if (!rec.multiRegion || rec.regions === undefined) return;
  const region = arnRegion(rec.arn);
  const fam = familyOf(rec);
  const rest = members(tx, rec);
  if (rest.length === 0) return;
  // A primary is deleted only once it has no replicas (scheduleKeyDeletion), so this is a replica.
  rewriteFamily(tx, rest, { primary: fam.primary, replicas: fam.replicas.filter((r) => r !== region) });
}

/** Refuses ScheduleKeyDeletion of a primary key that still has replicas (AWS waits in PendingReplicaDeletion). */
export function checkDeletable(rec: KeyRecord): void {
  if (!rec.multiRegion) return;
  const fam = familyOf(rec);
  if (fam.primary !== arnRegion(rec.arn) || fam.replicas.length === 0) return;
  throw kmsError(
    'UnsupportedOperationException',
    `${rec.arn} is a multi-Region primary key with replica keys in ${fam.replicas.join(', ')}. Delete the replica keys first, or make another Region primary with UpdatePrimaryRegion.`,
  );
}

function notPrimary(rec: KeyRecord): never {
  throw kmsError('UnsupportedOperationException', `${rec.arn} is not a multi-Region primary key.`);
}

function isPrimary(rec: KeyRecord): boolean {
  return rec.multiRegion && familyOf(rec).primary === arnRegion(rec.arn);
}

function usableForReplication(rec: KeyRecord): void {
  checkNotPendingDeletion(rec);
  if (rec.keyState === 'Disabled') throw kmsError('DisabledException', `${rec.arn} is disabled.`);
}

export interface ReplicateKeyInput {
  KeyId: string | undefined;
  ReplicaRegion: string | undefined;
  Policy?: string;
  BypassPolicyLockoutSafetyCheck?: boolean;
  Description?: string;
  Tags?: Tag[];
}

/** ReplicateKey and UpdatePrimaryRegion, in the caller's Region (the primary key's). */
export class MultiRegionOperations {
  readonly #ctx: ClientContext;
  readonly #keyMetadata: (rec: KeyRecord) => KeyMetadata;

  // keys.ts's keyMetadata, passed in: keys.ts imports this module (MultiRegionConfiguration, removeKey).
  constructor(ctx: ClientContext, keyMetadata: (rec: KeyRecord) => KeyMetadata) {
    this.#ctx = ctx;
    this.#keyMetadata = keyMetadata;
  }

  /**
   * The replica gets `Policy`, or the default key policy without it (as
   * AWS: the key policy is not shared by a multi-Region key's records), and
   * no grants. The caller needs `kms:ReplicateKey` on the primary key
   * (kms:CreateKey in the replica's Region is an IAM permission).
   */
  async replicateKey(
    input: ReplicateKeyInput,
    caller: Caller,
  ): Promise<{ ReplicaKeyMetadata: KeyMetadata; ReplicaTags: Tag[] }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const region = regionMember(v, 'replicaRegion', input?.ReplicaRegion);
    const policy = v.string('policy', input?.Policy, ...LIMITS.policy, false);
    const bypass = v.boolean('bypassPolicyLockoutSafetyCheck', input?.BypassPolicyLockoutSafetyCheck) ?? false;
    const description = v.string('description', input?.Description, ...LIMITS.description, false);
    const tags = validateTags(v, input?.Tags);
    v.throwIfAny();
    checkTagQuota(tags.length, this.#ctx.quotas);
    const replica = await this.#ctx.mutate((tx, now) => {
      const primary = this.#ctx.resolveTx(tx, keyId!, false, caller, 'ReplicateKey');
      if (!isPrimary(primary)) notPrimary(primary);
      usableForReplication(primary);
      if (partitionOf(region!) !== this.#ctx.scope.partition) {
        throw kmsError(
          'UnsupportedOperationException',
          `The replica Region ${region} is not in the partition of ${primary.arn}.`,
        );
      }
      const arn = arnInRegion(primary.arn, region!);
      const fam = familyOf(primary);
      if (region === fam.primary || fam.replicas.includes(region!))
        throw kmsError('AlreadyExistsException', `${arn} already exists.`);
      if (policy !== undefined) checkNewPolicy(policy, arn, caller, bypass);
      checkKeyQuota(tx.listKeys().length, this.#ctx.quotas);
      const family = members(tx, primary);
      const next: Family = { primary: fam.primary, replicas: [...fam.replicas, region!] };
      const material = primary.keyMaterial;
      // Imported material is not copied: the replica waits for the same material (AWS).
      const rec: KeyRecord = {
        keyId: primary.keyId,
        arn,
        keySpec: primary.keySpec,
        keyUsage: primary.keyUsage,
        keyState: primary.origin === 'EXTERNAL' ? 'PendingImport' : 'Enabled',
        origin: primary.origin,
        description: description ?? '',
        multiRegion: true,
        creationDate: now,
        tags,
        ...(policy !== undefined ? { policy } : {}),
        regions: { primary: next.primary, replicas: [...next.replicas] },
        ...(primary.origin === 'EXTERNAL' || material === undefined ? {} : { keyMaterial: material }),
        ...(primary.importedMaterialDigest === undefined
          ? {}
          : { importedMaterialDigest: primary.importedMaterialDigest }),
      };
      rewriteFamily(tx, family, next);
      const placed = placeKey(tx, rec);
      tx.insertKey(placed);
      return placed;
    });
    return { ReplicaKeyMetadata: this.#keyMetadata(replica), ReplicaTags: replica.tags.map((t) => ({ ...t })) };
  }

  /** The caller needs `kms:UpdatePrimaryRegion` on the primary key and on the replica that becomes primary (AWS). */
  async updatePrimaryRegion(
    input: { KeyId: string | undefined; PrimaryRegion: string | undefined },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const region = regionMember(v, 'primaryRegion', input?.PrimaryRegion);
    v.throwIfAny();
    await this.#ctx.mutate((tx) => {
      const primary = this.#ctx.resolveTx(tx, keyId!, false, caller, 'UpdatePrimaryRegion');
      if (!isPrimary(primary)) notPrimary(primary);
      usableForReplication(primary);
      const fam = familyOf(primary);
      if (region === fam.primary) return; // already primary there: nothing to change
      const arn = arnInRegion(primary.arn, region!);
      const family = members(tx, primary);
      const target = family.find((m) => m.arn === arn);
      if (!fam.replicas.includes(region!) || target === undefined)
        throw kmsError('NotFoundException', `Key '${arn}' does not exist`);
      authorize(target, caller, 'UpdatePrimaryRegion');
      checkNotPendingDeletion(target);
      const replicas = [...fam.replicas.filter((r) => r !== region), fam.primary];
      rewriteFamily(tx, family, { primary: region!, replicas });
    });
    return {};
  }
}

/** A required Region member (ReplicaRegion, PrimaryRegion): the model's length and pattern. */
function regionMember(v: Violations, member: string, value: unknown): string | undefined {
  const region = v.string(member, value, ...LIMITS.region, true);
  if (region !== undefined && !REGION_RE.test(region))
    v.add(member, region, `Member must satisfy regular expression pattern: ${REGION_RE.source}`);
  return region;
}
