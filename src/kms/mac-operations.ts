/**
 * GenerateMac / VerifyMac and the batch extensions: the hot path.
 *
 * `generateMacSync` / `verifyMacSync`: a few type/range checks, one Map
 * lookup that yields the resolved key and its prepared MacKey (cached per
 * KeyId string until the store's version changes or a time rule — key
 * deletion, material expiry — fires), one backend call. Anything the fast
 * check does not accept takes the full evaluation order of spec §3, which
 * produces the exact KMS error.
 */
import { pooledMac } from '../mac-pool.js';
import { inspect } from 'node:util';
import { getBackend } from '../backend/index.js';
import type { BackendKey, MacAlgorithm } from '../backend/types.js';
import type { KeyRecord, KeyStore } from '../keystore/types.js';
import type { ClientContext } from './context.js';
import { kmsError, type KmsErrorLike } from './errors.js';
import { SPEC_ALGORITHM, timeDeadline } from './keys.js';
import { MAC_ALGORITHM_ENUM_TEXT, MAC_ALGORITHM_SET, validationError, validationMessage, Violations } from './validation.js';

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

/** A request the fast path (src/fast-path.ts) answers from a local copy of a remote key. */
export interface LocalTarget {
  /** The local key's ID. */
  keyId: string;
  /** The KeyId the response reports (the remote key's ARN). */
  responseKeyId: string;
}

type MacOperation = 'GenerateMac' | 'VerifyMac';

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

export class MacOperations {
  readonly #ctx: ClientContext;
  // Copies of the context's store and clock: the hot path reads them on every call.
  readonly #store: KeyStore;
  readonly #clock: () => number;
  /** KeyId string as given → resolved usable key. Cleared whenever the store version changes. */
  readonly #hot = new Map<string, HotEntry>();
  #hotVersion = -1;
  /** keyId → prepared MacKey for the record's current material. */
  readonly #slots = new Map<string, KeySlot>();

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
    this.#store = ctx.store;
    this.#clock = ctx.clock;
  }

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
      if (e.algorithm !== alg) throw incompatibleAlgorithm(alg, e);
      return { Mac: pooledMac(e.slot.macKey, msg), MacAlgorithm: alg, KeyId: e.arn };
    }
    return this.generateMacFull(input, undefined);
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
      if (e.algorithm !== alg) throw incompatibleAlgorithm(alg, e);
      if (!e.slot.macKey.verify(msg, mac)) throw kmsError('KMSInvalidMacException');
      return { KeyId: e.arn, MacValid: true, MacAlgorithm: alg };
    }
    return this.verifyMacFull(input, undefined);
  }

  /** GenerateMac in the full evaluation order; `local`: answer for the fast path's local copy of a remote key. */
  generateMacFull(input: GenerateMacInput, local: LocalTarget | undefined): GenerateMacOutput {
    const r = validateMacRequest(input, false);
    const e = this.#hotEntry(local ? local.keyId : r.keyId, 'GenerateMac');
    if (e.algorithm !== r.alg) throw incompatibleAlgorithm(r.alg, e);
    if (r.dryRun) throw dryRunError();
    return { Mac: pooledMac(e.slot.macKey, r.message), MacAlgorithm: r.alg, KeyId: local ? local.responseKeyId : e.arn };
  }

  /** VerifyMac in the full evaluation order; `local` as for generateMacFull. */
  verifyMacFull(input: VerifyMacInput, local: LocalTarget | undefined): VerifyMacOutput {
    const r = validateMacRequest(input, true);
    const e = this.#hotEntry(local ? local.keyId : r.keyId, 'VerifyMac');
    if (e.algorithm !== r.alg) throw incompatibleAlgorithm(r.alg, e);
    if (!e.slot.macKey.verify(r.message, r.mac!)) throw kmsError('KMSInvalidMacException');
    if (r.dryRun) throw dryRunError();
    return { KeyId: local ? local.responseKeyId : e.arn, MacValid: true, MacAlgorithm: r.alg };
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

  /**
   * Validates a batch and resolves its key. The returned slot is marked in
   * flight (the caller releases it), so a key retired while worker threads
   * still use it is destroyed only afterwards.
   */
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
    if (entry.algorithm !== alg) throw incompatibleAlgorithm(alg, entry);
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
  // Key slot cache

  /** Wipes every prepared key (the client is closing). */
  close(): void {
    for (const slot of this.#slots.values()) slot.retire();
    this.#slots.clear();
    this.#hot.clear();
  }

  /** Resolves a KeyId (any form) to a usable key for a MAC operation, or throws the KMS error. */
  #hotEntry(keyId: string, op: MacOperation): HotEntry {
    const version = this.#store.version;
    if (version !== this.#hotVersion) {
      this.#hot.clear();
      this.#hotVersion = version;
      this.#retireStaleSlots();
    }
    const cached = this.#hot.get(keyId);
    if (cached !== undefined && (cached.deadline === Infinity || cached.deadline > this.#clock())) return cached;
    const rec = this.#ctx.resolveRead(keyId, true);
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

  #usableEntry(rec: KeyRecord, op: MacOperation): HotEntry {
    if (this.#ctx.closed) throw new Error('KmsHmacClient is closed');
    checkMacState(rec, op);
    if (!rec.keyMaterial) throw kmsError('KMSInvalidStateException', `${rec.arn} is pending import.`);
    const slot = this.#slotFor(rec);
    const algorithm = SPEC_ALGORITHM[rec.keySpec];
    return { arn: rec.arn, algorithm, macLength: slot.macKey.macLength, slot, deadline: timeDeadline(rec) };
  }

  /** The prepared key for a record, reused while the material is the same bytes (a store write replaces records). */
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
    const backend = this.#ctx.backend;
    const macKey = getBackend(backend === undefined ? {} : { backend }).createKey(SPEC_ALGORITHM[rec.keySpec], rec.keyMaterial!);
    const slot = new KeySlot(rec, macKey);
    this.#slots.set(rec.keyId, slot);
    return slot;
  }
}

// ---------------------------------------------------------------------------

/** Full evaluation order (spec §3): validation → key → state → usage → algorithm → (verify) → DryRun. */
function validateMacRequest(input: GenerateMacInput | VerifyMacInput, verify: boolean) {
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

/** Key state, then key usage (spec §3 evaluation order steps 5 and 6). */
function checkMacState(rec: KeyRecord, op: MacOperation): void {
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

// The hot path's algorithm check: cheaper than MAC_ALGORITHM_SET.has() and narrows the type.
function isMacAlgorithm(a: unknown): a is MacAlgorithm {
  return a === 'HMAC_SHA_256' || a === 'HMAC_SHA_384' || a === 'HMAC_SHA_512' || a === 'HMAC_SHA_224';
}

function incompatibleAlgorithm(alg: string | undefined, e: HotEntry): KmsErrorLike {
  return kmsError('InvalidKeyUsageException', `Algorithm ${alg} is incompatible with key spec ${e.slot.record.keySpec}.`);
}

function dryRunError(): KmsErrorLike {
  return kmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

/** A batch item's violation, with the index of the offending item. */
function batchError(violation: string, index: number) {
  const err = validationError([violation]) as KmsErrorLike & { BatchIndex?: number };
  err.BatchIndex = index;
  return err;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
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

