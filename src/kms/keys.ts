/**
 * Key records → AWS shapes, and the time rules (scheduled deletion, expiring
 * imported material) applied lazily when a key is read.
 */
import type { AliasRecord, HmacKeySpec, KeyRecord, KeyStoreTransaction } from '../keystore/types.js';
import type { MacAlgorithm } from '../backend/types.js';
import { multiRegionConfiguration, removeKey } from './multi-region.js';

export const SPEC_ALGORITHM: Readonly<Record<HmacKeySpec, MacAlgorithm>> = {
  HMAC_224: 'HMAC_SHA_224',
  HMAC_256: 'HMAC_SHA_256',
  HMAC_384: 'HMAC_SHA_384',
  HMAC_512: 'HMAC_SHA_512',
};

export const HMAC_KEY_SPECS: ReadonlySet<string> = new Set(['HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512']);

/** `KeyMetadata` as `@aws-sdk/client-kms` returns it for an HMAC key. */
export interface KeyMetadata {
  AWSAccountId: string;
  KeyId: string;
  Arn: string;
  CreationDate: Date;
  Enabled: boolean;
  Description: string;
  KeyUsage: 'GENERATE_VERIFY_MAC';
  KeyState: string;
  DeletionDate?: Date;
  ValidTo?: Date;
  Origin: string;
  ExpirationModel?: string;
  KeyManager: 'CUSTOMER';
  CustomerMasterKeySpec: HmacKeySpec;
  KeySpec: HmacKeySpec;
  MacAlgorithms: MacAlgorithm[];
  MultiRegion: boolean;
  MultiRegionConfiguration?: {
    MultiRegionKeyType: 'PRIMARY' | 'REPLICA';
    PrimaryKey: { Arn: string; Region: string };
    ReplicaKeys: { Arn: string; Region: string }[];
  };
}

export function arnParts(arn: string): { partition: string; region: string; account: string } {
  const p = arn.split(':');
  return { partition: p[1] ?? 'aws', region: p[3] ?? '', account: p[4] ?? '' };
}

/** Member order follows AWS's responses (S5 recordings). */
export function keyMetadata(rec: KeyRecord): KeyMetadata {
  const { account } = arnParts(rec.arn);
  const md: Partial<KeyMetadata> = {
    AWSAccountId: account,
    KeyId: rec.keyId,
    Arn: rec.arn,
    CreationDate: new Date(rec.creationDate),
    Enabled: rec.keyState === 'Enabled',
    Description: rec.description ?? '',
    KeyUsage: 'GENERATE_VERIFY_MAC',
    KeyState: rec.keyState,
  };
  if (rec.keyState === 'PendingDeletion' && rec.deletionDate !== undefined)
    md.DeletionDate = new Date(rec.deletionDate);
  if (rec.expirationModel === 'KEY_MATERIAL_EXPIRES' && rec.validTo !== undefined) md.ValidTo = new Date(rec.validTo);
  md.Origin = rec.origin;
  if (rec.expirationModel !== undefined) md.ExpirationModel = rec.expirationModel;
  md.KeyManager = 'CUSTOMER';
  md.CustomerMasterKeySpec = rec.keySpec;
  md.KeySpec = rec.keySpec;
  md.MacAlgorithms = [SPEC_ALGORITHM[rec.keySpec]];
  md.MultiRegion = rec.multiRegion;
  if (rec.multiRegion) md.MultiRegionConfiguration = multiRegionConfiguration(rec);
  return md as KeyMetadata;
}

export function aliasListEntry(a: AliasRecord) {
  return {
    AliasName: a.aliasName,
    AliasArn: a.aliasArn,
    TargetKeyId: a.targetKeyId,
    CreationDate: new Date(a.creationDate),
    LastUpdatedDate: new Date(a.lastUpdatedDate),
  };
}

/** Copies a record with changes; `undefined` values remove the field. */
export function withChanges(rec: KeyRecord, changes: Partial<KeyRecord>): KeyRecord {
  const out: Record<string, unknown> = { ...rec };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out as unknown as KeyRecord;
}

/** What time has done to a record: deleted (undefined), material expired, or unchanged. */
export function timeAdjusted(rec: KeyRecord, now: number): KeyRecord | undefined {
  if (rec.keyState === 'PendingDeletion' && rec.deletionDate !== undefined && rec.deletionDate <= now) return undefined;
  if (rec.validTo !== undefined && rec.validTo <= now && rec.expirationModel === 'KEY_MATERIAL_EXPIRES') {
    return withChanges(rec, {
      keyState: rec.keyState === 'PendingDeletion' ? 'PendingDeletion' : 'PendingImport',
      keyMaterial: undefined,
      expirationModel: undefined,
      validTo: undefined,
    });
  }
  return rec;
}

/** The earliest instant at which `timeAdjusted` would change this record (Infinity if never). */
export function timeDeadline(rec: KeyRecord): number {
  let d = Infinity;
  if (rec.keyState === 'PendingDeletion' && rec.deletionDate !== undefined) d = rec.deletionDate;
  if (rec.validTo !== undefined && rec.expirationModel === 'KEY_MATERIAL_EXPIRES' && rec.validTo < d) d = rec.validTo;
  return d;
}

/** Applies the time rules to the whole store inside a transaction. Returns whether anything changed. */
export function applyTimeRules(tx: KeyStoreTransaction, now: number): boolean {
  let changed = false;
  // Only keys with a date can be due: the store indexes them, so this costs nothing per mutation.
  for (const rec of tx.listScheduledKeys?.() ?? tx.listKeys()) {
    if (timeDeadline(rec) > now) continue;
    const next = timeAdjusted(rec, now);
    changed = true;
    if (next === undefined) {
      removeKey(tx, rec);
    } else {
      tx.replaceKey(next);
    }
  }
  return changed;
}
