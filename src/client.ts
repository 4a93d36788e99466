/**
 * KmsHmacClient: the AWS KMS HMAC API (GenerateMac/VerifyMac and the key
 * management around them) with `@aws-sdk/client-kms`'s input and output
 * shapes, computed locally. Behaviour follows ../shared/spec/kms-semantics.md;
 * choices where AWS is not documented are listed in docs/compatibility.md.
 *
 * Hot path (`generateMacSync` / `verifyMacSync`): a few type/range checks,
 * one Map lookup that yields the resolved key and its prepared MacKey (cached
 * per KeyId string until the store's version changes or a time rule — key
 * deletion, material expiry — fires), one backend call.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { getBackend, type BackendChoice } from './backend/index.js';
import type { Backend, BackendKey, MacAlgorithm } from './backend/types.js';
import { openKeyStore, type FileKeyStoreOptions } from './keystore/index.js';
import type { AliasRecord, HmacKeySpec, KeyRecord, KeyStore, KeyStoreTransaction, Tag } from './keystore/types.js';
import { kmsError, type KmsErrorLike } from './kms/errors.js';
import {
  aliasArn,
  aliasNameProblem,
  ALIAS_NAME_PATTERN,
  keyArn,
  newKeyId,
  parseKeyId,
  partitionOf,
  type Scope,
} from './kms/identifiers.js';
import {
  generateWrappingKey,
  GENERATED_MATERIAL_LENGTH,
  IMPORT_MATERIAL_RANGE,
  IMPORT_PARAMETERS_TTL_MS,
  materialDigest,
  newImportToken,
  SUPPORTED_WRAPPING_ALGORITHMS,
  SUPPORTED_WRAPPING_KEY_SPECS,
  tokenIdOf,
  unwrapKeyMaterial,
} from './kms/import.js';
import {
  aliasListEntry,
  applyTimeRules,
  HMAC_KEY_SPECS,
  keyMetadata,
  SPEC_ALGORITHM,
  timeAdjusted,
  timeDeadline,
  withChanges,
  type KeyMetadata,
} from './kms/keys.js';
import {
  CUSTOMER_MASTER_KEY_SPEC_ENUM,
  EXPIRATION_MODEL_ENUM,
  KEY_SPEC_ENUM,
  KEY_USAGE_ENUM,
  MAC_ALGORITHM_ENUM_TEXT,
  MAC_ALGORITHM_SET,
  ORIGIN_ENUM,
  validationError,
  validationMessage,
  Violations,
  WRAPPING_ALGORITHM_ENUM,
  WRAPPING_KEY_SPEC_ENUM,
} from './kms/validation.js';

export type { KeyMetadata } from './kms/keys.js';

export interface KmsHmacClientOptions {
  /** A file path (durable FileKeyStore), a KeyStore instance, or omitted (in memory). */
  keyStore?: string | KeyStore;
  /** Options for a store opened from a path (passphrase, lock timeout, polling). */
  keyStoreOptions?: FileKeyStoreOptions;
  /** Default `us-east-1`. */
  region?: string;
  /** Default `111122223333`. */
  accountId?: string;
  /** HMAC backend (name or instance); default: the package's automatic selection. */
  backend?: BackendChoice | Backend;
  /** Epoch milliseconds; injectable for tests (deletion windows, token and material expiry). */
  clock?: () => number;
}

type Blob = Uint8Array | string;

export interface GenerateMacInput {
  Message: Blob | undefined;
  KeyId: string | undefined;
  MacAlgorithm: MacAlgorithm | string | undefined;
  GrantTokens?: string[];
  DryRun?: boolean;
}
export interface GenerateMacOutput {
  Mac: Uint8Array;
  MacAlgorithm: MacAlgorithm;
  KeyId: string;
}
export interface VerifyMacInput extends GenerateMacInput {
  Mac: Blob | undefined;
}
export interface VerifyMacOutput {
  KeyId: string;
  MacValid: true;
  MacAlgorithm: MacAlgorithm;
}

/** Batch input: either `Messages` or the packed `Data` + `Offsets` (message i = Data[Offsets[i]..Offsets[i+1])). */
export interface GenerateMacBatchInput {
  KeyId: string | undefined;
  MacAlgorithm: MacAlgorithm | string | undefined;
  Messages?: readonly Uint8Array[];
  Data?: Uint8Array;
  Offsets?: Uint32Array;
  GrantTokens?: string[];
  DryRun?: boolean;
}
export interface GenerateMacBatchOutput {
  KeyId: string;
  MacAlgorithm: MacAlgorithm;
  /** MAC length in bytes (the stride of `Macs`). */
  MacLength: number;
  /** All MACs, packed: MAC i is `Macs.subarray(i * MacLength, (i + 1) * MacLength)`. */
  Macs: Uint8Array;
}
export interface VerifyMacBatchInput extends GenerateMacBatchInput {
  /** One MAC per message: an array, or packed at a stride of the algorithm's MAC length. */
  Macs: readonly Uint8Array[] | Uint8Array | undefined;
}
export interface VerifyMacBatchOutput {
  KeyId: string;
  MacAlgorithm: MacAlgorithm;
  /** One byte per message: 1 valid, 0 invalid. */
  MacValid: Uint8Array;
}

/** Internal hook for the fast path (src/fast-path.ts). */
export const FAST_PATH = Symbol('kms-hmac.fastPath');

export interface FastPathHooks {
  /** The local key holding a copy of a remote (AWS KMS) key named by a request's KeyId. */
  findRemote(keyId: string): { keyId: string; remoteArn: string } | undefined;
  generate(input: GenerateMacInput, localKeyId: string, responseKeyId: string): GenerateMacOutput;
  verify(input: VerifyMacInput, localKeyId: string, responseKeyId: string): VerifyMacOutput;
  /** Whether the local copy can answer now (exists, Enabled). */
  usable(localKeyId: string): boolean;
}

const DAY_MS = 86_400_000;

/** One resolved, usable key on the hot path. */
interface HotEntry {
  readonly arn: string;
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  readonly slot: KeySlot;
  readonly deadline: number;
}

/**
 * A prepared backend key (HMAC inner/outer state) for one record's material;
 * destroyed when retired and idle. The façade has validated every argument
 * before it reaches `macKey`, so it talks to the backend key directly.
 */
class KeySlot {
  record: KeyRecord;
  readonly macKey: BackendKey;
  inflight = 0;
  retired = false;
  constructor(record: KeyRecord, macKey: BackendKey) {
    this.record = record;
    this.macKey = macKey;
  }
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) this.macKey.destroy();
  }
  release(): void {
    this.inflight--;
    if (this.retired && this.inflight === 0) this.macKey.destroy();
  }
  [inspect.custom](): string {
    return `KeySlot(${this.record.keyId})`;
  }
  toJSON(): object {
    return { keyId: this.record.keyId };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isMacAlgorithm(a: unknown): a is MacAlgorithm {
  return a === 'HMAC_SHA_256' || a === 'HMAC_SHA_384' || a === 'HMAC_SHA_512' || a === 'HMAC_SHA_224';
}

const OPERATIONS: Record<string, string> = {
  CreateKey: 'createKey',
  DescribeKey: 'describeKey',
  ListKeys: 'listKeys',
  CreateAlias: 'createAlias',
  UpdateAlias: 'updateAlias',
  DeleteAlias: 'deleteAlias',
  ListAliases: 'listAliases',
  EnableKey: 'enableKey',
  DisableKey: 'disableKey',
  ScheduleKeyDeletion: 'scheduleKeyDeletion',
  CancelKeyDeletion: 'cancelKeyDeletion',
  GetParametersForImport: 'getParametersForImport',
  ImportKeyMaterial: 'importKeyMaterial',
  DeleteImportedKeyMaterial: 'deleteImportedKeyMaterial',
  TagResource: 'tagResource',
  UntagResource: 'untagResource',
  ListResourceTags: 'listResourceTags',
  EnableKeyRotation: 'enableKeyRotation',
  DisableKeyRotation: 'disableKeyRotation',
  GetKeyRotationStatus: 'getKeyRotationStatus',
  GenerateMac: 'generateMac',
  VerifyMac: 'verifyMac',
};

/** The KMS operations `send()` and `execute()` accept (PascalCase names). */
export const SUPPORTED_OPERATIONS: readonly string[] = Object.freeze(Object.keys(OPERATIONS));

export class KmsHmacClient {
  readonly region: string;
  readonly accountId: string;
  readonly #scope: Scope;
  readonly #store: KeyStore;
  readonly #ownsStore: boolean;
  readonly #backend: BackendChoice | Backend | undefined;
  readonly #clock: () => number;
  /** KeyId string as given → resolved usable key. Cleared whenever the store version changes. */
  readonly #hot = new Map<string, HotEntry>();
  #hotVersion = -1;
  /** keyId → prepared MacKey for the record's current material. */
  readonly #slots = new Map<string, KeySlot>();
  #remoteIndex: Map<string, string> | undefined;
  #remoteIndexVersion = -1;
  #sweep: Promise<void> | undefined;
  #closed = false;

  constructor(options: KmsHmacClientOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '111122223333';
    this.#scope = { region: this.region, accountId: this.accountId, partition: partitionOf(this.region) };
    this.#ownsStore = !(typeof options.keyStore === 'object' && options.keyStore !== null);
    this.#store = openKeyStore(options.keyStore, options.keyStoreOptions);
    this.#backend = options.backend;
    this.#clock = options.clock ?? Date.now;
  }

  /** The store this client reads and writes. */
  get keyStore(): KeyStore {
    return this.#store;
  }

  // -------------------------------------------------------------------------
  // GenerateMac / VerifyMac

  generateMacSync(input: GenerateMacInput): GenerateMacOutput {
    const msg = input?.Message;
    const keyId = input?.KeyId;
    const alg = input?.MacAlgorithm;
    if (
      msg instanceof Uint8Array && msg.byteLength !== 0 && msg.byteLength <= 4096 &&
      typeof keyId === 'string' && keyId.length !== 0 && keyId.length <= 2048 &&
      isMacAlgorithm(alg) && input.GrantTokens === undefined && input.DryRun === undefined
    ) {
      const e = this.#hotEntry(keyId, 'GenerateMac');
      if (e.algorithm !== alg) throw kmsError('InvalidKeyUsageException', `Algorithm ${alg} is incompatible with key spec ${e.slot.record.keySpec}.`);
      return { Mac: macFromPool(e, msg), MacAlgorithm: alg, KeyId: e.arn };
    }
    return this.#generateMacFull(input, undefined);
  }

  verifyMacSync(input: VerifyMacInput): VerifyMacOutput {
    const msg = input?.Message;
    const keyId = input?.KeyId;
    const alg = input?.MacAlgorithm;
    const mac = input?.Mac;
    if (
      msg instanceof Uint8Array && msg.byteLength !== 0 && msg.byteLength <= 4096 &&
      typeof keyId === 'string' && keyId.length !== 0 && keyId.length <= 2048 &&
      isMacAlgorithm(alg) && mac instanceof Uint8Array && mac.byteLength !== 0 && mac.byteLength <= 6144 &&
      input.GrantTokens === undefined && input.DryRun === undefined
    ) {
      const e = this.#hotEntry(keyId, 'VerifyMac');
      if (e.algorithm !== alg) throw kmsError('InvalidKeyUsageException', `Algorithm ${alg} is incompatible with key spec ${e.slot.record.keySpec}.`);
      if (!e.slot.macKey.verify(msg, mac)) throw kmsError('KMSInvalidMacException');
      return { KeyId: e.arn, MacValid: true, MacAlgorithm: alg };
    }
    return this.#verifyMacFull(input, undefined);
  }

  generateMac(input: GenerateMacInput): Promise<GenerateMacOutput> {
    try {
      return Promise.resolve(this.generateMacSync(input));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  verifyMac(input: VerifyMacInput): Promise<VerifyMacOutput> {
    try {
      return Promise.resolve(this.verifyMacSync(input));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Full evaluation order (spec §3): validation → key → state → usage → algorithm → (verify) → DryRun. */
  #validateMacRequest(input: GenerateMacInput | VerifyMacInput, verify: boolean) {
    if (input === null || typeof input !== 'object') throw validationError(['Value null at \'keyId\' failed to satisfy constraint: Member must not be null']);
    const v = new Violations();
    const message = v.blob('message', input.Message, 1, 4096, true, true);
    const keyId = v.string('keyId', input.KeyId, 1, 2048, true);
    const alg = v.enumValue('macAlgorithm', input.MacAlgorithm, MAC_ALGORITHM_SET, MAC_ALGORITHM_ENUM_TEXT, true);
    const mac = verify ? v.blob('mac', (input as VerifyMacInput).Mac, 1, 6144, true, false) : undefined;
    v.grantTokens(input.GrantTokens);
    const dryRun = v.boolean('dryRun', input.DryRun);
    v.throwIfAny();
    return { message: message!, keyId: keyId!, alg: alg as MacAlgorithm, mac, dryRun: dryRun === true };
  }

  #generateMacFull(input: GenerateMacInput, local: { keyId: string; responseKeyId: string } | undefined): GenerateMacOutput {
    const r = this.#validateMacRequest(input, false);
    const e = local ? this.#entryForLocal(local.keyId, 'GenerateMac') : this.#hotEntry(r.keyId, 'GenerateMac');
    if (e.algorithm !== r.alg) throw kmsError('InvalidKeyUsageException', `Algorithm ${r.alg} is incompatible with key spec ${e.slot.record.keySpec}.`);
    if (r.dryRun) throw dryRunError();
    return { Mac: macFromPool(e, r.message), MacAlgorithm: r.alg, KeyId: local ? local.responseKeyId : e.arn };
  }

  #verifyMacFull(input: VerifyMacInput, local: { keyId: string; responseKeyId: string } | undefined): VerifyMacOutput {
    const r = this.#validateMacRequest(input, true);
    const e = local ? this.#entryForLocal(local.keyId, 'VerifyMac') : this.#hotEntry(r.keyId, 'VerifyMac');
    if (e.algorithm !== r.alg) throw kmsError('InvalidKeyUsageException', `Algorithm ${r.alg} is incompatible with key spec ${e.slot.record.keySpec}.`);
    if (!e.slot.macKey.verify(r.message, r.mac!)) throw kmsError('KMSInvalidMacException');
    if (r.dryRun) throw dryRunError();
    return { KeyId: local ? local.responseKeyId : e.arn, MacValid: true, MacAlgorithm: r.alg };
  }

  /** Resolves a KeyId (any form) to a usable key for a MAC operation, or throws the KMS error. */
  #hotEntry(keyId: string, op: 'GenerateMac' | 'VerifyMac'): HotEntry {
    const version = this.#store.version;
    if (version !== this.#hotVersion) {
      this.#hot.clear();
      this.#hotVersion = version;
      this.#retireStaleSlots();
    }
    const cached = this.#hot.get(keyId);
    if (cached !== undefined && (cached.deadline === Infinity || cached.deadline > this.#clock())) return cached;
    const rec = this.#resolveRead(keyId, true);
    const entry = this.#usableEntry(rec, op);
    if (this.#store.version === version) this.#hot.set(keyId, entry);
    return entry;
  }

  /** Wipes prepared keys whose key is gone or lost its material (deleted, expired, material deleted). */
  #retireStaleSlots(): void {
    for (const [keyId, slot] of this.#slots) {
      const rec = this.#store.getKey(keyId);
      if (rec === undefined || rec.keyMaterial === undefined) {
        slot.retire();
        this.#slots.delete(keyId);
      }
    }
  }

  #entryForLocal(localKeyId: string, op: 'GenerateMac' | 'VerifyMac'): HotEntry {
    return this.#hotEntry(localKeyId, op);
  }

  #usableEntry(rec: KeyRecord, op: string): HotEntry {
    if (this.#closed) throw new Error('KmsHmacClient is closed');
    checkMacState(rec, op);
    if (!rec.keyMaterial) throw kmsError('KMSInvalidStateException', `${rec.arn} is pending import.`);
    const slot = this.#slotFor(rec);
    const algorithm = SPEC_ALGORITHM[rec.keySpec];
    return { arn: rec.arn, algorithm, macLength: slot.macKey.macLength, slot, deadline: timeDeadline(rec) };
  }

  #slotFor(rec: KeyRecord): KeySlot {
    const existing = this.#slots.get(rec.keyId);
    if (existing !== undefined) {
      if (existing.record === rec) return existing;
      if (!existing.retired && existing.record.keySpec === rec.keySpec && existing.record.keyMaterial && sameBytes(existing.record.keyMaterial, rec.keyMaterial!)) {
        existing.record = rec;
        return existing;
      }
      existing.retire();
    }
    const macKey = getBackend(this.#backend === undefined ? {} : { backend: this.#backend }).createKey(SPEC_ALGORITHM[rec.keySpec], rec.keyMaterial!);
    const slot = new KeySlot(rec, macKey);
    this.#slots.set(rec.keyId, slot);
    return slot;
  }

  // -------------------------------------------------------------------------
  // Batch extensions

  generateMacBatch(input: GenerateMacBatchInput): GenerateMacBatchOutput {
    const b = this.#batchPrepare(input, false);
    try {
      const mk = b.entry.slot.macKey;
      const Macs = new Uint8Array(b.count * b.entry.macLength);
      if (b.packed) mk.macPackedInto(b.packed.data, b.packed.offsets, Macs);
      else mk.macArrayInto(b.messages!, Macs);
      return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacLength: b.entry.macLength, Macs };
    } finally {
      b.entry.slot.release();
    }
  }

  verifyMacBatch(input: VerifyMacBatchInput): VerifyMacBatchOutput {
    const b = this.#batchPrepare(input, true);
    try {
      const mk = b.entry.slot.macKey;
      const MacValid = new Uint8Array(b.count);
      if (b.packed) mk.verifyPackedInto(b.packed.data, b.packed.offsets, b.packedMacs!, MacValid);
      else mk.verifyArrayInto(b.messages!, b.macList!, MacValid);
      return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacValid };
    } finally {
      b.entry.slot.release();
    }
  }

  /** Like generateMacBatch, computed on worker threads (all cores); inputs may be reused once it returns. */
  async generateMacBatchAsync(input: GenerateMacBatchInput): Promise<GenerateMacBatchOutput> {
    const b = this.#batchPrepare(input, false);
    try {
      const mk = b.entry.slot.macKey;
      const Macs = b.packed
        ? await mk.macPackedAsync(b.packed.data, b.packed.offsets)
        : await mk.macArrayAsync(b.messages!);
      return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacLength: b.entry.macLength, Macs };
    } finally {
      b.entry.slot.release();
    }
  }

  async verifyMacBatchAsync(input: VerifyMacBatchInput): Promise<VerifyMacBatchOutput> {
    const b = this.#batchPrepare(input, true);
    try {
      const mk = b.entry.slot.macKey;
      const MacValid = b.packed
        ? await mk.verifyPackedAsync(b.packed.data, b.packed.offsets, b.packedMacs!)
        : await mk.verifyArrayAsync(b.messages!, b.macList!);
      return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacValid };
    } finally {
      b.entry.slot.release();
    }
  }

  #batchPrepare(input: GenerateMacBatchInput | VerifyMacBatchInput, verify: boolean) {
    if (input === null || typeof input !== 'object') throw validationError(['Value null at \'keyId\' failed to satisfy constraint: Member must not be null']);
    const v = new Violations();
    const keyId = v.string('keyId', input.KeyId, 1, 2048, true);
    const alg = v.enumValue('macAlgorithm', input.MacAlgorithm, MAC_ALGORITHM_SET, MAC_ALGORITHM_ENUM_TEXT, true) as MacAlgorithm | undefined;
    v.grantTokens(input.GrantTokens);
    const dryRun = v.boolean('dryRun', input.DryRun);
    let count = 0;
    let messages: readonly Uint8Array[] | undefined;
    let packed: { data: Uint8Array; offsets: Uint32Array } | undefined;
    if (input.Messages !== undefined && input.Messages !== null) {
      if (!Array.isArray(input.Messages)) throw validationMessage('Messages must be an array of Uint8Array');
      messages = input.Messages;
      count = messages.length;
      for (let i = 0; i < count; i++) {
        const m: unknown = messages[i];
        if (!(m instanceof Uint8Array)) throw batchError(`Value null at 'messages[${i}]' failed to satisfy constraint: Member must be a Uint8Array`, i);
        if (m.byteLength === 0) throw batchError(`Value at 'messages[${i}]' failed to satisfy constraint: Member must have length greater than or equal to 1`, i);
        if (m.byteLength > 4096) throw batchError(`Value at 'messages[${i}]' failed to satisfy constraint: Member must have length less than or equal to 4096`, i);
      }
    } else if (input.Data !== undefined || input.Offsets !== undefined) {
      const data = input.Data;
      const offsets = input.Offsets;
      if (!(data instanceof Uint8Array) || !(offsets instanceof Uint32Array) || offsets.length === 0) {
        throw validationMessage('Packed input needs Data (Uint8Array) and Offsets (Uint32Array with one more entry than there are messages)');
      }
      count = offsets.length - 1;
      if (offsets[count]! > data.byteLength) throw validationMessage(`Offsets[${count}] (${offsets[count]}) is beyond the end of Data (${data.byteLength} bytes)`);
      for (let i = 0; i < count; i++) {
        const len = offsets[i + 1]! - offsets[i]!;
        if (offsets[i + 1]! < offsets[i]!) throw batchError(`Offsets must not decrease (Offsets[${i + 1}] < Offsets[${i}])`, i);
        if (len === 0) throw batchError(`Value at 'messages[${i}]' failed to satisfy constraint: Member must have length greater than or equal to 1`, i);
        if (len > 4096) throw batchError(`Value at 'messages[${i}]' failed to satisfy constraint: Member must have length less than or equal to 4096`, i);
      }
      packed = { data, offsets };
    } else {
      v.add('messages', null, 'Member must not be null');
    }
    let macList: readonly Uint8Array[] | undefined;
    let packedMacs: Uint8Array | undefined;
    if (verify) {
      const macs = (input as VerifyMacBatchInput).Macs;
      if (macs === undefined || macs === null) v.add('macs', null, 'Member must not be null');
      else if (macs instanceof Uint8Array) packedMacs = macs;
      else if (Array.isArray(macs)) {
        if (macs.length !== count) throw validationMessage(`Macs has ${macs.length} entries but there are ${count} messages`);
        for (let i = 0; i < macs.length; i++) {
          const m: unknown = macs[i];
          if (!(m instanceof Uint8Array)) throw batchError(`Value null at 'macs[${i}]' failed to satisfy constraint: Member must be a Uint8Array`, i);
          if (m.byteLength === 0) throw batchError(`Value at 'macs[${i}]' failed to satisfy constraint: Member must have length greater than or equal to 1`, i);
          if (m.byteLength > 6144) throw batchError(`Value at 'macs[${i}]' failed to satisfy constraint: Member must have length less than or equal to 6144`, i);
        }
        macList = macs;
      } else throw validationMessage('Macs must be an array of Uint8Array or one packed Uint8Array');
    }
    v.throwIfAny();
    const entry = this.#hotEntry(keyId!, verify ? 'VerifyMac' : 'GenerateMac');
    if (entry.algorithm !== alg) throw kmsError('InvalidKeyUsageException', `Algorithm ${alg} is incompatible with key spec ${entry.slot.record.keySpec}.`);
    if (packedMacs !== undefined && packedMacs.byteLength !== count * entry.macLength) {
      throw validationMessage(`Packed Macs must be ${count} x ${entry.macLength} = ${count * entry.macLength} bytes for ${alg}, got ${packedMacs.byteLength}`);
    }
    if (packed && verify && packedMacs === undefined && macList) {
      // Packed messages with an array of MACs: verify per item through the array form.
      messages = splitPacked(packed.data, packed.offsets);
      packed = undefined;
    }
    if (!packed && packedMacs !== undefined) macList = splitStride(packedMacs, entry.macLength, count);
    if (dryRun === true) throw dryRunError();
    entry.slot.inflight++;
    return { entry, alg: alg!, count, messages, packed, macList, packedMacs };
  }

  // -------------------------------------------------------------------------
  // Key resolution

  /** Reads (no write lock). Applies time rules virtually and schedules their persistence. */
  #readKey(keyId: string): KeyRecord | undefined {
    const rec = this.#store.getKey(keyId);
    if (rec === undefined) return undefined;
    const deadline = timeDeadline(rec);
    if (deadline === Infinity) return rec;
    const now = this.#clock();
    if (deadline > now) return rec;
    this.#scheduleSweep();
    return timeAdjusted(rec, now);
  }

  #readAlias(name: string): AliasRecord | undefined {
    return this.#store.getAlias(name);
  }

  /**
   * Resolves a KeyId in any form allowed by the operation, from the read
   * view. `allowAlias` false: key ID or key ARN only.
   */
  #resolveRead(id: string, allowAlias: boolean): KeyRecord {
    return this.#resolveWith(id, allowAlias, (k) => this.#readKey(k), (a) => this.#readAlias(a));
  }

  #resolveTx(tx: KeyStoreTransaction, id: string, allowAlias: boolean): KeyRecord {
    return this.#resolveWith(id, allowAlias, (k) => tx.getKey(k), (a) => tx.getAlias(a));
  }

  #resolveWith(
    id: string,
    allowAlias: boolean,
    getKey: (k: string) => KeyRecord | undefined,
    getAlias: (a: string) => AliasRecord | undefined,
  ): KeyRecord {
    const p = parseKeyId(id);
    const s = this.#scope;
    switch (p.kind) {
      case 'keyId': {
        const rec = getKey(p.keyId);
        if (!rec) throw kmsError('NotFoundException', `Key '${keyArn(s, p.keyId)}' does not exist`);
        return rec;
      }
      case 'keyArn': {
        if (p.region !== s.region) throw kmsError('NotFoundException', `Invalid arn ${p.region}`);
        const rec = p.account === s.accountId && p.partition === s.partition ? getKey(p.keyId) : undefined;
        if (!rec) throw kmsError('NotFoundException', `Key '${p.arn}' does not exist`);
        return rec;
      }
      case 'aliasName':
      case 'aliasArn': {
        if (!allowAlias) throw kmsError('NotFoundException', `Invalid keyId '${id}'`);
        let arn: string;
        if (p.kind === 'aliasArn') {
          if (p.region !== s.region) throw kmsError('NotFoundException', `Invalid arn ${p.region}`);
          arn = p.arn;
          if (p.account !== s.accountId || p.partition !== s.partition) throw kmsError('NotFoundException', `Alias ${arn} is not found.`);
        } else arn = aliasArn(s, p.aliasName);
        const a = getAlias(p.aliasName);
        const rec = a ? getKey(a.targetKeyId) : undefined;
        if (!rec) throw kmsError('NotFoundException', `Alias ${arn} is not found.`);
        return rec;
      }
      default:
        throw kmsError('NotFoundException', `Invalid keyId '${id}'`);
    }
  }

  #scheduleSweep(): void {
    if (this.#sweep || this.#closed) return;
    this.#sweep = new Promise<void>((resolve) => {
      setImmediate(() => {
        this.#store
          .transact((tx) => {
            applyTimeRules(tx, this.#clock());
          })
          .catch(() => undefined)
          .finally(() => {
            this.#sweep = undefined;
            resolve();
          });
      });
    });
  }

  /** Runs a mutation with the time rules applied first (expired keys really deleted). */
  #mutate<T>(fn: (tx: KeyStoreTransaction, now: number) => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('KmsHmacClient is closed'));
    return this.#store.transact((tx) => {
      const now = this.#clock();
      applyTimeRules(tx, now);
      return fn(tx, now);
    });
  }

  // -------------------------------------------------------------------------
  // Key management

  async createKey(input: CreateKeyInput = {}): Promise<{ KeyMetadata: KeyMetadata }> {
    input ??= {};
    const v = new Violations();
    v.string('policy', input.Policy, 1, 32768, false);
    const description = v.string('description', input.Description, 0, 8192, false);
    const usage = v.enumValue('keyUsage', input.KeyUsage, KEY_USAGE_ENUM, `[${KEY_USAGE_ENUM.join(', ')}]`, false);
    const cmks = v.enumValue('customerMasterKeySpec', input.CustomerMasterKeySpec, CUSTOMER_MASTER_KEY_SPEC_ENUM, `[${CUSTOMER_MASTER_KEY_SPEC_ENUM.join(', ')}]`, false);
    const keySpec = v.enumValue('keySpec', input.KeySpec, KEY_SPEC_ENUM, `[${KEY_SPEC_ENUM.join(', ')}]`, false);
    const origin = v.enumValue('origin', input.Origin, ORIGIN_ENUM, `[${ORIGIN_ENUM.join(', ')}]`, false) ?? 'AWS_KMS';
    const customKeyStoreId = v.string('customKeyStoreId', input.CustomKeyStoreId, 1, 64, false);
    v.boolean('bypassPolicyLockoutSafetyCheck', input.BypassPolicyLockoutSafetyCheck);
    const tags = this.#validateTags(v, input.Tags);
    const multiRegion = v.boolean('multiRegion', input.MultiRegion) ?? false;
    v.string('xksKeyId', input.XksKeyId, 1, 128, false);
    v.throwIfAny();
    if (keySpec !== undefined && cmks !== undefined) {
      throw validationMessage('You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.');
    }
    const spec = keySpec ?? cmks ?? 'SYMMETRIC_DEFAULT';
    if (HMAC_KEY_SPECS.has(spec)) {
      if (usage === undefined) throw validationMessage('You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.');
      if (usage !== 'GENERATE_VERIFY_MAC') throw validationMessage(`KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
    } else {
      if (usage === 'GENERATE_VERIFY_MAC') throw validationMessage(`KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
      throw kmsError(
        'UnsupportedOperationException',
        `KeySpec ${spec} is not supported: this KMS-compatible service (kms-hmac) creates only HMAC keys (KeySpec HMAC_224, HMAC_256, HMAC_384 or HMAC_512 with KeyUsage GENERATE_VERIFY_MAC).`,
      );
    }
    if (origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE' || customKeyStoreId !== undefined) {
      throw kmsError('UnsupportedOperationException', `KeySpec ${spec} is not supported for KMS keys in a custom key store.`);
    }
    const hmacSpec = spec as HmacKeySpec;
    const id = newKeyId(multiRegion);
    const now = this.#clock();
    const external = origin === 'EXTERNAL';
    const record: KeyRecord = {
      keyId: id,
      arn: keyArn(this.#scope, id),
      keySpec: hmacSpec,
      keyUsage: 'GENERATE_VERIFY_MAC',
      keyState: external ? 'PendingImport' : 'Enabled',
      origin: external ? 'EXTERNAL' : 'AWS_KMS',
      description: description ?? '',
      multiRegion,
      creationDate: now,
      tags,
      ...(external ? {} : { keyMaterial: new Uint8Array(randomBytes(GENERATED_MATERIAL_LENGTH[hmacSpec])) }),
    };
    try {
      await this.#mutate((tx) => tx.insertKey(record));
    } finally {
      record.keyMaterial?.fill(0); // the store keeps its own copy
    }
    return { KeyMetadata: keyMetadata(record) };
  }

  async describeKey(input: { KeyId: string | undefined; GrantTokens?: string[] }): Promise<{ KeyMetadata: KeyMetadata }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    v.grantTokens(input?.GrantTokens);
    v.throwIfAny();
    return { KeyMetadata: keyMetadata(this.#resolveRead(keyId!, true)) };
  }

  async listKeys(input: { Limit?: number; Marker?: string } = {}): Promise<{ Keys: { KeyId: string; KeyArn: string }[]; Truncated: boolean; NextMarker?: string }> {
    const v = new Violations();
    const limit = v.integer('limit', input?.Limit, 1, 1000) ?? 100;
    const marker = v.string('marker', input?.Marker, 1, 1024, false);
    v.throwIfAny();
    const now = this.#clock();
    const keys = this.#store
      .listKeys()
      .map((r) => (timeDeadline(r) <= now ? timeAdjusted(r, now) : r))
      .filter((r): r is KeyRecord => r !== undefined)
      .sort(byCreation);
    const page = paginate(keys, limit, marker, (r) => [r.creationDate, r.keyId]);
    return {
      Keys: page.items.map((r) => ({ KeyId: r.keyId, KeyArn: r.arn })),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  async createAlias(input: { AliasName: string | undefined; TargetKeyId: string | undefined }): Promise<Record<string, never>> {
    const { aliasName, targetKeyId } = this.#validateAliasInput(input, 'targetKeyId', input?.TargetKeyId);
    await this.#mutate((tx, now) => {
      const rec = this.#resolveTx(tx, targetKeyId, false);
      if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
      const arn = aliasArn(this.#scope, aliasName);
      if (tx.getAlias(aliasName)) throw kmsError('AlreadyExistsException', `An alias with the name ${arn} already exists`);
      tx.insertAlias({ aliasName, aliasArn: arn, targetKeyId: rec.keyId, creationDate: now, lastUpdatedDate: now });
    });
    return {};
  }

  async updateAlias(input: { AliasName: string | undefined; TargetKeyId: string | undefined }): Promise<Record<string, never>> {
    const { aliasName, targetKeyId } = this.#validateAliasInput(input, 'targetKeyId', input?.TargetKeyId);
    await this.#mutate((tx, now) => {
      const arn = aliasArn(this.#scope, aliasName);
      const existing = tx.getAlias(aliasName);
      if (!existing) throw kmsError('NotFoundException', `Alias ${arn} is not found.`);
      const rec = this.#resolveTx(tx, targetKeyId, false);
      if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
      tx.replaceAlias({ ...existing, targetKeyId: rec.keyId, lastUpdatedDate: now });
    });
    return {};
  }

  async deleteAlias(input: { AliasName: string | undefined }): Promise<Record<string, never>> {
    const v = new Violations();
    const aliasName = v.string('aliasName', input?.AliasName, 1, 256, true);
    v.throwIfAny();
    if (!aliasName!.startsWith('alias/')) throw aliasPrefixError();
    await this.#mutate((tx) => {
      if (!tx.getAlias(aliasName!)) throw kmsError('NotFoundException', `Alias ${aliasArn(this.#scope, aliasName!)} is not found.`);
      tx.deleteAlias(aliasName!);
    });
    return {};
  }

  async listAliases(input: { KeyId?: string; Limit?: number; Marker?: string } = {}) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, false);
    const limit = v.integer('limit', input?.Limit, 1, 100) ?? 50;
    const marker = v.string('marker', input?.Marker, 1, 1024, false);
    v.throwIfAny();
    let target: string | undefined;
    if (keyId !== undefined) target = this.#resolveRead(keyId, false).keyId;
    const aliases = this.#store
      .listAliases()
      .filter((a) => (target === undefined ? this.#readKey(a.targetKeyId) !== undefined : a.targetKeyId === target))
      .sort((a, b) => (a.aliasName < b.aliasName ? -1 : a.aliasName > b.aliasName ? 1 : 0));
    const page = paginate(aliases, limit, marker, (a) => [0, a.aliasName]);
    return {
      Aliases: page.items.map(aliasListEntry),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  async enableKey(input: { KeyId: string | undefined }): Promise<Record<string, never>> {
    const keyId = requireKeyId(input);
    await this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId, false);
      checkNotPending(rec);
      if (rec.keyState !== 'Enabled') tx.replaceKey(withChanges(rec, { keyState: 'Enabled' }));
    });
    return {};
  }

  async disableKey(input: { KeyId: string | undefined }): Promise<Record<string, never>> {
    const keyId = requireKeyId(input);
    await this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId, false);
      checkNotPending(rec);
      if (rec.keyState !== 'Disabled') tx.replaceKey(withChanges(rec, { keyState: 'Disabled' }));
    });
    return {};
  }

  async scheduleKeyDeletion(input: { KeyId: string | undefined; PendingWindowInDays?: number }) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    const days = v.integer('pendingWindowInDays', input?.PendingWindowInDays, 7, 30) ?? 30;
    v.throwIfAny();
    return this.#mutate((tx, now) => {
      const rec = this.#resolveTx(tx, keyId!, false);
      if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
      const deletionDate = now + days * DAY_MS;
      tx.replaceKey(withChanges(rec, { keyState: 'PendingDeletion', deletionDate, pendingDeletionWindowInDays: days }));
      return { KeyId: rec.arn, DeletionDate: new Date(deletionDate), KeyState: 'PendingDeletion' as const, PendingWindowInDays: days };
    });
  }

  async cancelKeyDeletion(input: { KeyId: string | undefined }): Promise<{ KeyId: string }> {
    const keyId = requireKeyId(input);
    return this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId, false);
      if (rec.keyState !== 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is not pending deletion.`);
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

  async enableKeyRotation(input: { KeyId: string | undefined; RotationPeriodInDays?: number }): Promise<never> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    v.integer('rotationPeriodInDays', input?.RotationPeriodInDays, 90, 2560);
    v.throwIfAny();
    throw this.#rotationUnsupported(keyId!);
  }

  async disableKeyRotation(input: { KeyId: string | undefined }): Promise<never> {
    throw this.#rotationUnsupported(requireKeyId(input));
  }

  async getKeyRotationStatus(input: { KeyId: string | undefined }): Promise<never> {
    throw this.#rotationUnsupported(requireKeyId(input));
  }

  #rotationUnsupported(keyId: string): KmsErrorLike {
    const rec = this.#resolveRead(keyId, false);
    if (rec.keyState === 'PendingDeletion') return kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
    return kmsError('UnsupportedOperationException', `${rec.arn} key spec is ${rec.keySpec}, which does not support automatic key rotation.`);
  }

  // -------------------------------------------------------------------------
  // Tags

  #validateTags(v: Violations, tags: unknown): Tag[] {
    if (tags === undefined || tags === null) return [];
    if (!Array.isArray(tags)) throw validationMessage('Tags must be a list');
    const out: Tag[] = [];
    tags.forEach((t: unknown, i) => {
      const tag = (t ?? {}) as Partial<Tag>;
      const key = v.string(`tags.${i + 1}.member.tagKey`, tag.TagKey, 1, 128, true);
      const value = v.string(`tags.${i + 1}.member.tagValue`, tag.TagValue, 0, 256, true);
      if (key !== undefined && value !== undefined) out.push({ TagKey: key, TagValue: value });
    });
    const seen = new Set<string>();
    for (const t of out) {
      if (t.TagKey.startsWith('aws:')) throw kmsError('TagException', 'Tags beginning with aws: are reserved');
      if (seen.has(t.TagKey)) throw kmsError('TagException', `Duplicate tag keys: ${t.TagKey}`);
      seen.add(t.TagKey);
    }
    if (out.length > 50) throw kmsError('TagException', 'The request would exceed the 50 tag limit for a KMS key');
    return out;
  }

  async tagResource(input: { KeyId: string | undefined; Tags: Tag[] | undefined }): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    if (input?.Tags === undefined || input?.Tags === null) v.add('tags', null, 'Member must not be null');
    const tags = this.#validateTags(v, input?.Tags);
    v.throwIfAny();
    await this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId!, false);
      if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
      const merged = rec.tags.map((t) => ({ ...t }));
      for (const t of tags) {
        const i = merged.findIndex((m) => m.TagKey === t.TagKey);
        if (i >= 0) merged[i] = t;
        else merged.push(t);
      }
      if (merged.length > 50) throw kmsError('TagException', 'The request would exceed the 50 tag limit for a KMS key');
      tx.replaceKey(withChanges(rec, { tags: merged }));
    });
    return {};
  }

  async untagResource(input: { KeyId: string | undefined; TagKeys: string[] | undefined }): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    const keys = input?.TagKeys;
    if (keys === undefined || keys === null) v.add('tagKeys', null, 'Member must not be null');
    else if (!Array.isArray(keys)) throw validationMessage('TagKeys must be a list');
    else keys.forEach((k, i) => v.string(`tagKeys.${i + 1}.member`, k, 1, 128, true));
    v.throwIfAny();
    await this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId!, false);
      if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
      const drop = new Set(keys);
      tx.replaceKey(withChanges(rec, { tags: rec.tags.filter((t) => !drop.has(t.TagKey)).map((t) => ({ ...t })) }));
    });
    return {};
  }

  async listResourceTags(input: { KeyId: string | undefined; Limit?: number; Marker?: string }) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    const limit = v.integer('limit', input?.Limit, 1, 50) ?? 50;
    const marker = v.string('marker', input?.Marker, 1, 1024, false);
    v.throwIfAny();
    const rec = this.#resolveRead(keyId!, false);
    const tags = rec.tags.map((t, i) => ({ t, i }));
    const page = paginate(tags, limit, marker, (x) => [x.i, x.t.TagKey]);
    return {
      Tags: page.items.map((x) => ({ TagKey: x.t.TagKey, TagValue: x.t.TagValue })),
      Truncated: page.truncated,
      ...(page.next ? { NextMarker: page.next } : {}),
    };
  }

  // -------------------------------------------------------------------------
  // Import

  async getParametersForImport(input: { KeyId: string | undefined; WrappingAlgorithm: string | undefined; WrappingKeySpec: string | undefined }) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    const alg = v.enumValue('wrappingAlgorithm', input?.WrappingAlgorithm, WRAPPING_ALGORITHM_ENUM, `[${WRAPPING_ALGORITHM_ENUM.join(', ')}]`, true);
    const spec = v.enumValue('wrappingKeySpec', input?.WrappingKeySpec, WRAPPING_KEY_SPEC_ENUM, `[${WRAPPING_KEY_SPEC_ENUM.join(', ')}]`, true);
    v.throwIfAny();
    const rec = this.#resolveRead(keyId!, false);
    checkImportable(rec);
    if (!SUPPORTED_WRAPPING_ALGORITHMS.has(alg!)) {
      throw kmsError('UnsupportedOperationException', `WrappingAlgorithm ${alg} is not supported. Use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1.`);
    }
    if (SUPPORTED_WRAPPING_KEY_SPECS[spec!] === undefined) {
      throw kmsError('UnsupportedOperationException', `WrappingKeySpec ${spec} is not supported. Use RSA_2048, RSA_3072 or RSA_4096.`);
    }
    const pair = await generateWrappingKey(spec!);
    const { token, tokenId } = newImportToken();
    return this.#mutate((tx, now) => {
      const cur = this.#resolveTx(tx, rec.keyId, false);
      checkImportable(cur);
      const expiresAt = now + IMPORT_PARAMETERS_TTL_MS;
      tx.replaceKey(
        withChanges(cur, {
          importParameters: { tokenId, wrappingAlgorithm: alg!, wrappingKeySpec: spec!, privateKey: pair.privateKey, expiresAt },
        }),
      );
      pair.privateKey.fill(0);
      return { KeyId: cur.arn, ImportToken: token, PublicKey: pair.publicKey, ParametersValidTo: new Date(expiresAt) };
    });
  }

  async importKeyMaterial(input: {
    KeyId: string | undefined;
    ImportToken: Uint8Array | undefined;
    EncryptedKeyMaterial: Uint8Array | undefined;
    ValidTo?: Date | number;
    ExpirationModel?: string;
    ImportType?: string;
    KeyMaterialDescription?: string;
    KeyMaterialId?: string;
  }): Promise<{ KeyId: string }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
    const token = v.blob('importToken', input?.ImportToken, 1, 6144, true, false);
    const wrapped = v.blob('encryptedKeyMaterial', input?.EncryptedKeyMaterial, 1, 6144, true, false);
    let model = v.enumValue('expirationModel', input?.ExpirationModel, EXPIRATION_MODEL_ENUM, `[${EXPIRATION_MODEL_ENUM.join(', ')}]`, false);
    v.throwIfAny();
    const validToRaw = input.ValidTo;
    let validTo: number | undefined;
    if (validToRaw !== undefined && validToRaw !== null) {
      if (validToRaw instanceof Date) validTo = validToRaw.getTime();
      else if (typeof validToRaw === 'number') validTo = validToRaw * 1000; // wire form: epoch seconds
      else throw kmsError('SerializationException', "Unexpected value type for member 'validTo'");
      if (!Number.isFinite(validTo)) throw kmsError('SerializationException', "Unexpected value type for member 'validTo'");
    }
    model ??= validTo !== undefined ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE';
    if (model === 'KEY_MATERIAL_EXPIRES' && validTo === undefined) throw validationMessage('A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES');
    if (model === 'KEY_MATERIAL_DOES_NOT_EXPIRE' && validTo !== undefined) throw validationMessage('A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE');
    const arn = await this.#mutate((tx, now) => {
      const rec = this.#resolveTx(tx, keyId!, false);
      checkImportable(rec);
      if (validTo !== undefined && validTo <= now) throw validationMessage('The ValidTo date must be in the future');
      const params = rec.importParameters;
      if (!params || params.tokenId !== tokenIdOf(token!)) throw kmsError('InvalidImportTokenException', 'The import token is not valid for this KMS key.');
      if (params.expiresAt <= now) throw kmsError('ExpiredImportTokenException', 'The import token has expired. Call GetParametersForImport to get a new one.');
      const material = unwrapKeyMaterial(params.wrappingAlgorithm, params.privateKey, wrapped!);
      if (!material) throw kmsError('InvalidCiphertextException', 'The encrypted key material could not be decrypted with the wrapping key of this import token.');
      try {
        const [min, max] = IMPORT_MATERIAL_RANGE[rec.keySpec];
        if (material.byteLength < min || material.byteLength > max) {
          throw kmsError('IncorrectKeyMaterialException', `The key material is invalid: ${rec.keySpec} key material must be ${min} to ${max} bytes long.`);
        }
        const digest = materialDigest(material);
        if (rec.importedMaterialDigest !== undefined && rec.importedMaterialDigest !== digest) {
          throw kmsError('IncorrectKeyMaterialException', 'The key material in the request is not the same key material that was previously imported into this KMS key.');
        }
        tx.replaceKey(
          withChanges(rec, {
            keyMaterial: material,
            importedMaterialDigest: digest,
            expirationModel: model as KeyRecord['expirationModel'],
            validTo: model === 'KEY_MATERIAL_EXPIRES' ? validTo : undefined,
            keyState: rec.keyState === 'PendingImport' ? 'Enabled' : rec.keyState,
          }),
        );
      } finally {
        material.fill(0);
      }
      return rec.arn;
    });
    return { KeyId: arn };
  }

  async deleteImportedKeyMaterial(input: { KeyId: string | undefined; KeyMaterialId?: string }): Promise<{ KeyId: string }> {
    const keyId = requireKeyId(input);
    return this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId, false);
      if (rec.origin !== 'EXTERNAL') throw kmsError('UnsupportedOperationException', `${rec.arn} origin is ${rec.origin} which is not valid for this operation.`);
      tx.replaceKey(
        withChanges(rec, {
          keyMaterial: undefined,
          expirationModel: undefined,
          validTo: undefined,
          keyState: rec.keyState === 'PendingDeletion' ? 'PendingDeletion' : 'PendingImport',
        }),
      );
      return { KeyId: rec.arn };
    });
  }

  // -------------------------------------------------------------------------
  // Remote keys (fast path)

  /**
   * Registers a local copy of a key that exists in AWS KMS with the same
   * imported material, so `createFastPathClient` can answer GenerateMac /
   * VerifyMac for it locally. The local key is EXTERNAL-origin, Enabled,
   * with material that does not expire; its `remoteArn` is `RemoteArn`.
   */
  async importRemoteKey(input: {
    RemoteArn: string;
    KeySpec: HmacKeySpec | string;
    KeyMaterial: Uint8Array;
    Description?: string;
    AliasName?: string;
    Tags?: Tag[];
  }): Promise<{ KeyMetadata: KeyMetadata }> {
    const v = new Violations();
    const remoteArn = v.string('remoteArn', input?.RemoteArn, 1, 2048, true);
    const spec = v.enumValue('keySpec', input?.KeySpec, HMAC_KEY_SPECS, '[HMAC_224, HMAC_256, HMAC_384, HMAC_512]', true) as HmacKeySpec | undefined;
    const material = v.blob('keyMaterial', input?.KeyMaterial, 1, 128, true, true);
    const description = v.string('description', input?.Description, 0, 8192, false);
    const tags = this.#validateTags(v, input?.Tags);
    v.throwIfAny();
    const p = parseKeyId(remoteArn!);
    if (p.kind !== 'keyArn') throw validationMessage(`RemoteArn must be a key ARN (arn:aws:kms:<region>:<account>:key/<key-id>)`);
    const [min, max] = IMPORT_MATERIAL_RANGE[spec!];
    if (material!.byteLength < min || material!.byteLength > max) {
      throw kmsError('IncorrectKeyMaterialException', `The key material is invalid: ${spec} key material must be ${min} to ${max} bytes long.`);
    }
    if (input.AliasName !== undefined) this.#checkAliasName(input.AliasName);
    const id = newKeyId(p.keyId.startsWith('mrk-'));
    const now = this.#clock();
    const record: KeyRecord = {
      keyId: id,
      arn: keyArn(this.#scope, id),
      keySpec: spec!,
      keyUsage: 'GENERATE_VERIFY_MAC',
      keyState: 'Enabled',
      origin: 'EXTERNAL',
      description: description ?? '',
      multiRegion: p.keyId.startsWith('mrk-'),
      creationDate: now,
      keyMaterial: new Uint8Array(material!),
      importedMaterialDigest: materialDigest(material!),
      expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      tags,
      remoteArn: remoteArn!,
    };
    await this.#mutate((tx) => {
      for (const k of tx.listKeys()) {
        if (k.remoteArn === remoteArn) throw kmsError('AlreadyExistsException', `A local copy of ${remoteArn} already exists: ${k.arn}`);
      }
      if (input.AliasName !== undefined) {
        const arn = aliasArn(this.#scope, input.AliasName);
        if (tx.getAlias(input.AliasName)) throw kmsError('AlreadyExistsException', `An alias with the name ${arn} already exists`);
        tx.insertKey(record);
        tx.insertAlias({ aliasName: input.AliasName, aliasArn: arn, targetKeyId: id, creationDate: now, lastUpdatedDate: now });
      } else tx.insertKey(record);
    });
    record.keyMaterial!.fill(0);
    return { KeyMetadata: keyMetadata({ ...record, keyMaterial: undefined }) };
  }

  /** Links an existing local EXTERNAL key (material imported through ImportKeyMaterial) to a key in AWS KMS. */
  async linkRemoteKey(input: { KeyId: string; RemoteArn: string | undefined }): Promise<{ KeyId: string; RemoteArn: string | undefined }> {
    const keyId = requireKeyId(input);
    const remoteArn = input.RemoteArn;
    if (remoteArn !== undefined && parseKeyId(remoteArn).kind !== 'keyArn') {
      throw validationMessage(`RemoteArn must be a key ARN (arn:aws:kms:<region>:<account>:key/<key-id>)`);
    }
    return this.#mutate((tx) => {
      const rec = this.#resolveTx(tx, keyId, false);
      if (rec.origin !== 'EXTERNAL') {
        throw kmsError('UnsupportedOperationException', `${rec.arn} origin is ${rec.origin}: only keys with imported material can share material with AWS KMS.`);
      }
      tx.replaceKey(withChanges(rec, { remoteArn }));
      return { KeyId: rec.arn, RemoteArn: remoteArn };
    });
  }

  get [FAST_PATH](): FastPathHooks {
    return {
      findRemote: (keyId) => this.#findRemote(keyId),
      generate: (input, localKeyId, responseKeyId) => this.#generateMacFull(input, { keyId: localKeyId, responseKeyId }),
      verify: (input, localKeyId, responseKeyId) => this.#verifyMacFull(input, { keyId: localKeyId, responseKeyId }),
      usable: (localKeyId) => {
        const rec = this.#readKey(localKeyId);
        return rec !== undefined && rec.keyState === 'Enabled' && rec.keyMaterial !== undefined;
      },
    };
  }

  #findRemote(keyId: string): { keyId: string; remoteArn: string } | undefined {
    if (typeof keyId !== 'string') return undefined;
    const version = this.#store.version;
    if (this.#remoteIndex === undefined || this.#remoteIndexVersion !== version) {
      const idx = new Map<string, string>();
      for (const k of this.#store.listKeys()) {
        if (!k.remoteArn) continue;
        idx.set(k.remoteArn, k.keyId);
        const p = parseKeyId(k.remoteArn);
        if (p.kind === 'keyArn') idx.set(p.keyId, k.keyId);
      }
      for (const a of this.#store.listAliases()) {
        const k = this.#store.getKey(a.targetKeyId);
        if (k?.remoteArn) {
          idx.set(a.aliasName, k.keyId);
          const rp = parseKeyId(k.remoteArn);
          if (rp.kind === 'keyArn') idx.set(`arn:${rp.partition}:kms:${rp.region}:${rp.account}:${a.aliasName}`, k.keyId);
        }
      }
      this.#remoteIndex = idx;
      this.#remoteIndexVersion = version;
    }
    const local = this.#remoteIndex.get(keyId);
    if (local === undefined) return undefined;
    const rec = this.#store.getKey(local);
    return rec?.remoteArn ? { keyId: local, remoteArn: rec.remoteArn } : undefined;
  }

  // -------------------------------------------------------------------------
  // Aliases helpers

  #checkAliasName(name: string): void {
    const problem = aliasNameProblem(name);
    if (problem === 'pattern') {
      throw validationError([`Value '${name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ${ALIAS_NAME_PATTERN}`]);
    }
    if (problem === 'prefix') throw aliasPrefixError();
    if (problem === 'reserved') throw kmsError('NotAuthorizedException', `Alias names that begin with alias/aws/ are reserved for AWS managed keys: ${name}`);
    if (problem === 'characters') {
      throw kmsError('InvalidAliasNameException', `Alias name ${name} is not valid: use only alphanumeric characters, forward slashes (/), underscores (_) and dashes (-) after alias/.`);
    }
  }

  #validateAliasInput(input: { AliasName: string | undefined }, targetMember: string, target: unknown) {
    const v = new Violations();
    const aliasName = v.string('aliasName', input?.AliasName, 1, 256, true);
    const targetKeyId = v.string(targetMember, target, 1, 2048, true);
    v.throwIfAny();
    this.#checkAliasName(aliasName!);
    return { aliasName: aliasName!, targetKeyId: targetKeyId! };
  }

  // -------------------------------------------------------------------------
  // SDK drop-in

  /**
   * Runs an `@aws-sdk/client-kms` command object (GenerateMacCommand,
   * CreateKeyCommand, …) and resolves to what the real client resolves to,
   * `$metadata` included.
   */
  async send(command: { input?: unknown; constructor: { name: string } }, _options?: unknown): Promise<Record<string, unknown>> {
    const name = command?.constructor?.name ?? '';
    const op = name.endsWith('Command') ? name.slice(0, -'Command'.length) : name;
    const out = await this.execute(op, command?.input ?? {});
    return { ...out, $metadata: { httpStatusCode: 200, requestId: randomUUID(), attempts: 1, totalRetryDelay: 0 } };
  }

  /** Runs a KMS operation by its PascalCase name (as in `X-Amz-Target: TrentService.<Operation>`). */
  async execute(operation: string, input: unknown): Promise<Record<string, unknown>> {
    const method = Object.prototype.hasOwnProperty.call(OPERATIONS, operation) ? OPERATIONS[operation] : undefined;
    if (method === undefined) {
      throw kmsError('UnsupportedOperationException', `${operation || 'This operation'} is not supported by kms-hmac, which implements the KMS HMAC operations and the key management around them.`);
    }
    const fn = (this as unknown as Record<string, (i: unknown) => Promise<Record<string, unknown>>>)[method]!;
    return fn.call(this, input ?? {});
  }

  /** SDK compatibility: KMSClient#destroy(). Releases keys; a path-opened store is closed in the background. */
  destroy(): void {
    void this.close();
  }

  /** Wipes prepared keys and closes the key store if this client opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#sweep;
    this.#closed = true;
    for (const slot of this.#slots.values()) slot.retire();
    this.#slots.clear();
    this.#hot.clear();
    if (this.#ownsStore) await this.#store.close();
  }

  [inspect.custom](): string {
    return `KmsHmacClient { region: '${this.region}', accountId: '${this.accountId}' }`;
  }

  toJSON(): object {
    return { region: this.region, accountId: this.accountId };
  }
}

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

// ---------------------------------------------------------------------------

// MACs handed to callers are views into a shared pool, like Buffer.allocUnsafe():
// an ArrayBuffer per 32-byte MAC costs more than the MAC itself, and a small
// fresh Uint8Array would be materialized by V8 when the backend asks for its
// memory. A pool is never reused, so a MAC stays valid for as long as it is
// referenced; its `.buffer` is shared with other MACs (not secret: MAC outputs).
const POOL_SIZE = 64 * 1024;
let pool = new ArrayBuffer(POOL_SIZE);
let poolBytes = new Uint8Array(pool);
let poolOffset = 0;

function macFromPool(e: HotEntry, message: Uint8Array): Uint8Array {
  const length = e.macLength;
  if (poolOffset + length > POOL_SIZE) {
    pool = new ArrayBuffer(POOL_SIZE);
    poolBytes = new Uint8Array(pool);
    poolOffset = 0;
  }
  const offset = poolOffset;
  e.slot.macKey.macInto(message, poolBytes, offset);
  poolOffset = offset + length;
  return new Uint8Array(pool, offset, length);
}

function dryRunError() {
  return kmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

function aliasPrefixError() {
  return validationMessage('Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html');
}

function batchError(violation: string, index: number) {
  const err = validationError([violation]) as KmsErrorLike & { BatchIndex?: number };
  err.BatchIndex = index;
  return err;
}

/** Key state, then key usage (spec §3 evaluation order steps 5 and 6). */
function checkMacState(rec: KeyRecord, op: string): void {
  switch (rec.keyState as string) {
    case 'Enabled':
    case 'Updating': // multi-Region primary-region change: MAC operations succeed
      break;
    case 'Disabled':
      throw kmsError('DisabledException', `${rec.arn} is disabled.`);
    case 'PendingDeletion':
      throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
    case 'PendingImport':
      throw kmsError('KMSInvalidStateException', `${rec.arn} is pending import.`);
    default:
      throw kmsError('KMSInvalidStateException', `${rec.arn} is ${String(rec.keyState).toLowerCase()}.`);
  }
  if (rec.keyUsage !== 'GENERATE_VERIFY_MAC') {
    throw kmsError('InvalidKeyUsageException', `${rec.arn} key usage is ${rec.keyUsage} which is not valid for ${op}.`);
  }
}

function checkNotPending(rec: KeyRecord): void {
  if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
  if (rec.keyState === 'PendingImport') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending import.`);
}

function checkImportable(rec: KeyRecord): void {
  if (rec.origin !== 'EXTERNAL') throw kmsError('UnsupportedOperationException', `${rec.arn} origin is ${rec.origin} which is not valid for this operation.`);
  if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
}

function requireKeyId(input: { KeyId?: unknown } | undefined): string {
  const v = new Violations();
  const keyId = v.string('keyId', input?.KeyId, 1, 2048, true);
  v.throwIfAny();
  return keyId!;
}

function byCreation(a: KeyRecord, b: KeyRecord): number {
  return a.creationDate - b.creationDate || (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0);
}

/** Opaque markers: base64url of the sort position of the last item returned. */
function paginate<T>(items: T[], limit: number, marker: string | undefined, pos: (t: T) => [number, string]) {
  let start = 0;
  if (marker !== undefined) {
    let after: [number, string];
    try {
      const decoded = JSON.parse(Buffer.from(marker, 'base64url').toString('utf8')) as unknown;
      if (!Array.isArray(decoded) || typeof decoded[0] !== 'number' || typeof decoded[1] !== 'string') throw new Error('bad');
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

function splitPacked(data: Uint8Array, offsets: Uint32Array): Uint8Array[] {
  const out: Uint8Array[] = new Array(offsets.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = data.subarray(offsets[i]!, offsets[i + 1]!);
  return out;
}

function splitStride(packed: Uint8Array, stride: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = packed.subarray(i * stride, (i + 1) * stride);
  return out;
}

