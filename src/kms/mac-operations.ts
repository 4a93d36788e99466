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
import { pooledMac } from '../mac/pool.js';
import { BatchItemError, withPackedMacs, withPackedMessages } from '../mac/pack.js';
import { byteLength, elementCount, isUint32Array, isUint8Array, plainView } from '../mac/views.js';
import { inspect } from 'node:util';
import { MAC_LENGTH, type BackendKey, type MacAlgorithm } from '../backend/types.js';
import { keyStoreId } from '../keystore/records.js';
import type { KeyRecord, KeyStore } from '../keystore/types.js';
import type { Caller } from './authorize.js';
import type { ClientContext } from './context.js';
import { kmsError, type KmsErrorLike } from './errors.js';
import { LIMITS } from './limits.js';
import { SPEC_ALGORITHM, timeDeadline } from './keys.js';
import {
  MAC_ALGORITHM_ENUM_TEXT,
  MAC_ALGORITHM_SET,
  validationError,
  validationMessage,
  Violations,
} from './validation.js';

// The hot path's inline checks (a request outside them takes the full validation path).
const MAX_MESSAGE = LIMITS.message[1];
const MAX_MAC = LIMITS.mac[1];
const MAX_KEY_ID = LIMITS.keyId[1];

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
  /**
   * Where the results go (an extension for streams of batches that allocate
   * nothing): at least n × MacLength bytes for generate, n for verify. `Macs`
   * / `MacValid` are then views of it. The async forms write it when they
   * settle: leave it alone until then.
   */
  Out?: Uint8Array;
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

/** A request the fast path (src/client/fast-path.ts) answers from a local copy of a remote key. */
export interface LocalTarget {
  /** The local key's ID. */
  keyId: string;
  /** The KeyId the response reports (the remote key's ARN). */
  responseKeyId: string;
}

type MacOperation = 'GenerateMac' | 'VerifyMac';

/** The bit of a MAC operation in HotEntry.allowed. */
const OPERATION_BIT: Record<MacOperation, number> = { GenerateMac: 1, VerifyMac: 2 };

/** One resolved, usable key on the hot path. */
interface HotEntry {
  readonly record: KeyRecord;
  /**
   * The authorization decisions taken for this record (authorize.ts), per
   * caller: a bit per MAC operation allowed with the key's own algorithm.
   * Dropped with the entry when the store's version changes.
   */
  readonly allowed: Map<Caller, number>;
  readonly arn: string;
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  readonly slot: KeySlot;
  readonly deadline: number;
}

/** A validated batch with a usable key: packed messages, and for verify the MACs at the key's stride. */
interface PreparedBatch {
  readonly entry: HotEntry;
  readonly alg: MacAlgorithm;
  readonly count: number;
  readonly data: Uint8Array;
  readonly offsets: Uint32Array;
  readonly macs: Uint8Array | undefined;
  /** Entries of an array of MACs that were not the MAC length: invalid whatever they compare as. */
  readonly wrongLength: readonly number[];
  /** Where the results go: the caller's `Out`, or a new buffer, exactly as long as the results. */
  readonly out: Uint8Array;
}

/**
 * A prepared backend key (HMAC inner/outer state) for one record's material,
 * destroyed when retired. Batches already running are unaffected: every
 * backend's async batch works on its own copy of the key state.
 */
class KeySlot {
  record: KeyRecord;
  readonly backendKey: BackendKey;
  constructor(record: KeyRecord, backendKey: BackendKey) {
    this.record = record;
    this.backendKey = backendKey;
  }
  retire(): void {
    this.backendKey.destroy();
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
  /** Store id (keyStoreId: one Region's record) → prepared MacKey for the record's current material. */
  readonly #slots = new Map<string, KeySlot>();

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
    this.#store = ctx.store;
    this.#clock = ctx.clock;
  }

  generateMacSync(input: GenerateMacInput, caller: Caller): GenerateMacOutput {
    const msg = input?.Message;
    const keyId = input?.KeyId;
    const alg = input?.MacAlgorithm;
    if (
      msg instanceof Uint8Array &&
      msg.byteLength !== 0 &&
      msg.byteLength <= MAX_MESSAGE &&
      typeof keyId === 'string' &&
      keyId.length !== 0 &&
      keyId.length <= MAX_KEY_ID &&
      isMacAlgorithm(alg) &&
      input.GrantTokens === undefined &&
      input.DryRun === undefined
    ) {
      const e = this.#hotEntry(keyId, 'GenerateMac', caller, alg, undefined);
      if (e.algorithm !== alg) throw incompatibleAlgorithm(alg, e);
      return { Mac: pooledMac(e.slot.backendKey, msg), MacAlgorithm: alg, KeyId: e.arn };
    }
    return this.generateMacFull(input, caller, undefined);
  }

  verifyMacSync(input: VerifyMacInput, caller: Caller): VerifyMacOutput {
    const msg = input?.Message;
    const keyId = input?.KeyId;
    const alg = input?.MacAlgorithm;
    const mac = input?.Mac;
    if (
      msg instanceof Uint8Array &&
      msg.byteLength !== 0 &&
      msg.byteLength <= MAX_MESSAGE &&
      typeof keyId === 'string' &&
      keyId.length !== 0 &&
      keyId.length <= MAX_KEY_ID &&
      isMacAlgorithm(alg) &&
      mac instanceof Uint8Array &&
      mac.byteLength !== 0 &&
      mac.byteLength <= MAX_MAC &&
      input.GrantTokens === undefined &&
      input.DryRun === undefined
    ) {
      const e = this.#hotEntry(keyId, 'VerifyMac', caller, alg, undefined);
      if (e.algorithm !== alg) throw incompatibleAlgorithm(alg, e);
      if (!e.slot.backendKey.verify(msg, mac)) throw kmsError('KMSInvalidMacException');
      return { KeyId: e.arn, MacValid: true, MacAlgorithm: alg };
    }
    return this.verifyMacFull(input, caller, undefined);
  }

  /** GenerateMac in the full evaluation order; `local`: answer for the fast path's local copy of a remote key. */
  generateMacFull(input: GenerateMacInput, caller: Caller, local: LocalTarget | undefined): GenerateMacOutput {
    const r = validateMacRequest(input, false);
    const e = this.#hotEntry(local ? local.keyId : r.keyId, 'GenerateMac', caller, r.alg, r.grantTokens);
    if (e.algorithm !== r.alg) throw incompatibleAlgorithm(r.alg, e);
    if (r.dryRun) throw dryRunError();
    return {
      Mac: pooledMac(e.slot.backendKey, r.message),
      MacAlgorithm: r.alg,
      KeyId: local ? local.responseKeyId : e.arn,
    };
  }

  /** VerifyMac in the full evaluation order; `local` as for generateMacFull. */
  verifyMacFull(input: VerifyMacInput, caller: Caller, local: LocalTarget | undefined): VerifyMacOutput {
    const r = validateMacRequest(input, true);
    const e = this.#hotEntry(local ? local.keyId : r.keyId, 'VerifyMac', caller, r.alg, r.grantTokens);
    if (e.algorithm !== r.alg) throw incompatibleAlgorithm(r.alg, e);
    if (!e.slot.backendKey.verify(r.message, r.mac!)) throw kmsError('KMSInvalidMacException');
    if (r.dryRun) throw dryRunError();
    return { KeyId: local ? local.responseKeyId : e.arn, MacValid: true, MacAlgorithm: r.alg };
  }

  // -------------------------------------------------------------------------
  // Batch extensions

  generateMacBatch(input: GenerateMacBatchInput, caller: Caller): GenerateMacBatchOutput {
    return this.#withBatch(input, false, caller, (b) => {
      b.entry.slot.backendKey.macPackedInto(b.data, b.offsets, b.out);
      return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacLength: b.entry.macLength, Macs: b.out };
    });
  }

  verifyMacBatch(input: VerifyMacBatchInput, caller: Caller): VerifyMacBatchOutput {
    return this.#withBatch(input, true, caller, (b) => {
      b.entry.slot.backendKey.verifyPackedInto(b.data, b.offsets, b.macs!, b.out);
      for (const i of b.wrongLength) b.out[i] = 0;
      return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacValid: b.out };
    });
  }

  async generateMacBatchAsync(input: GenerateMacBatchInput, caller: Caller): Promise<GenerateMacBatchOutput> {
    const { b, done } = this.#withBatch(input, false, caller, (b) => ({
      b,
      done: b.entry.slot.backendKey.macPackedAsync(b.data, b.offsets, b.out),
    }));
    const { entry, alg } = b;
    await done;
    return { KeyId: entry.arn, MacAlgorithm: alg, MacLength: entry.macLength, Macs: b.out };
  }

  async verifyMacBatchAsync(input: VerifyMacBatchInput, caller: Caller): Promise<VerifyMacBatchOutput> {
    const { b, done } = this.#withBatch(input, true, caller, (b) => ({
      b,
      done: b.entry.slot.backendKey.verifyPackedAsync(b.data, b.offsets, b.macs!, b.out),
    }));
    await done;
    for (const i of b.wrongLength) b.out[i] = 0;
    return { KeyId: b.entry.arn, MacAlgorithm: b.alg, MacValid: b.out };
  }

  /**
   * Validates a batch, resolves its key and runs `use` on it. Array inputs
   * are packed (src/mac/pack.ts) into memory that is reused once `use` returns:
   * each element is read once, and the KMS length rules are checked on the
   * packed copy, so what is checked is what is MACed. Every caller-supplied
   * element is read before the key is resolved: nothing the caller's code
   * does can change the key under the call.
   */
  #withBatch<T>(
    input: GenerateMacBatchInput | VerifyMacBatchInput,
    verify: boolean,
    caller: Caller,
    use: (batch: PreparedBatch) => T,
  ): T {
    if (input === null || typeof input !== 'object')
      throw validationError(["Value null at 'keyId' failed to satisfy constraint: Member must not be null"]);
    const v = new Violations();
    const keyId = v.string('keyId', input.KeyId, ...LIMITS.keyId, true);
    const alg = v.enumValue('macAlgorithm', input.MacAlgorithm, MAC_ALGORITHM_SET, MAC_ALGORITHM_ENUM_TEXT, true) as
      | MacAlgorithm
      | undefined;
    v.grantTokens(input.GrantTokens);
    const grantTokens = input.GrantTokens ?? undefined;
    const dryRun = v.boolean('dryRun', input.DryRun);
    const macs = verify ? (input as VerifyMacBatchInput).Macs : undefined;
    const out = input.Out;
    if (out !== undefined && !isUint8Array(out)) throw validationMessage('Out must be a Uint8Array');

    const withMessages = (data: Uint8Array, offsets: Uint32Array, count: number): T => {
      checkMessageLengths(offsets, count);
      if (verify && (macs === undefined || macs === null)) v.add('macs', null, 'Member must not be null');
      const prepare = (packedMacs: Uint8Array | undefined, wrongLength: readonly number[]): T => {
        v.throwIfAny();
        const entry = this.#hotEntry(keyId!, verify ? 'VerifyMac' : 'GenerateMac', caller, alg!, grantTokens);
        if (entry.algorithm !== alg) throw incompatibleAlgorithm(alg, entry);
        if (verify && packedMacs!.byteLength !== count * entry.macLength) {
          throw validationMessage(
            `Packed Macs must be ${count} x ${entry.macLength} = ${count * entry.macLength} bytes for ${alg}, got ${packedMacs!.byteLength}`,
          );
        }
        const resultBytes = verify ? count : count * entry.macLength;
        if (out !== undefined && byteLength(out) < resultBytes) {
          throw validationMessage(
            `Out must hold at least ${resultBytes} bytes (${verify ? `${count} results` : `${count} x ${entry.macLength} for ${alg}`}), got ${byteLength(out)}`,
          );
        }
        if (dryRun === true) throw dryRunError();
        const results = out === undefined ? new Uint8Array(resultBytes) : plainView(out).subarray(0, resultBytes);
        return use({ entry, alg: alg!, count, data, offsets, macs: packedMacs, wrongLength, out: results });
      };
      if (!verify || macs === undefined || macs === null || isUint8Array(macs))
        return prepare(isUint8Array(macs) ? macs : undefined, []);
      if (!Array.isArray(macs)) throw validationMessage('Macs must be an array of Uint8Array or one packed Uint8Array');
      if (macs.length !== count)
        throw validationMessage(`Macs has ${macs.length} entries but there are ${count} messages`);
      // An invalid MacAlgorithm is reported by prepare(); the MACs are still checked first, as they always were.
      const macLength = alg === undefined ? 0 : MAC_LENGTH[alg];
      return kmsItems(() =>
        withPackedMacs(macs, count, macLength, (packed) => prepare(packed.macs, packed.wrongLength), checkMacLength),
      );
    };

    const messages = input.Messages;
    const data = input.Data;
    const offsets = input.Offsets;
    if (messages !== undefined && messages !== null) {
      if (!Array.isArray(messages)) throw validationMessage('Messages must be an array of Uint8Array');
      return kmsItems(() =>
        withPackedMessages(messages, (packed, count) => withMessages(packed.data, packed.offsets, count)),
      );
    }
    if (data !== undefined || offsets !== undefined) {
      if (!isUint8Array(data) || !isUint32Array(offsets) || elementCount(offsets) === 0) {
        throw validationMessage(
          'Packed input needs Data (Uint8Array) and Offsets (Uint32Array with one more entry than there are messages)',
        );
      }
      const count = elementCount(offsets) - 1;
      if (offsets[count]! > byteLength(data))
        throw validationMessage(
          `Offsets[${count}] (${offsets[count]}) is beyond the end of Data (${byteLength(data)} bytes)`,
        );
      return withMessages(data, offsets, count);
    }
    v.add('messages', null, 'Member must not be null');
    return withMessages(new Uint8Array(0), new Uint32Array(1), 0);
  }

  // -------------------------------------------------------------------------
  // Key slot cache

  /** Wipes every prepared key (the client is closing). */
  close(): void {
    for (const slot of this.#slots.values()) slot.retire();
    this.#slots.clear();
    this.#hot.clear();
  }

  /**
   * Resolves a KeyId (any form) to a usable key for a MAC operation that
   * `caller` may run with `alg`, or throws the KMS error. A decision taken
   * once for (record, caller, operation) with the key's own algorithm and no
   * grant tokens is remembered in the entry.
   */
  #hotEntry(
    keyId: string,
    op: MacOperation,
    caller: Caller,
    alg: string | undefined,
    grantTokens: readonly string[] | undefined,
  ): HotEntry {
    const version = this.#store.version;
    if (version !== this.#hotVersion) {
      this.#hot.clear();
      this.#hotVersion = version;
      this.#retireStaleSlots();
    }
    let cached = this.#hot.get(keyId);
    if (cached !== undefined && cached.deadline !== Infinity && cached.deadline <= this.#clock()) cached = undefined;
    const bit = OPERATION_BIT[op];
    if (cached !== undefined && ((cached.allowed.get(caller) ?? 0) & bit) !== 0 && alg === cached.algorithm)
      return cached;
    const rec = this.#ctx.resolveRead(keyId, true, caller, op, { macAlgorithm: alg, grantTokens });
    const entry = cached !== undefined && cached.record === rec ? cached : this.#usableEntry(rec, op);
    if (alg === entry.algorithm && grantTokens === undefined)
      entry.allowed.set(caller, (entry.allowed.get(caller) ?? 0) | bit);
    if (this.#store.version === version) this.#hot.set(keyId, entry);
    return entry;
  }

  /** Wipes prepared keys whose key is gone or lost its material (deleted, expired, material deleted). */
  #retireStaleSlots(): void {
    for (const [storeId, slot] of this.#slots) {
      const rec = this.#store.getKey(storeId);
      if (rec === undefined || rec.keyMaterial === undefined) {
        slot.retire();
        this.#slots.delete(storeId);
      }
    }
  }

  #usableEntry(rec: KeyRecord, op: MacOperation): HotEntry {
    if (this.#ctx.closed) throw new Error('KmsHmacClient is closed');
    checkMacState(rec, op);
    if (!rec.keyMaterial) throw kmsError('KMSInvalidStateException', `${rec.arn} is pending import.`);
    const slot = this.#slotFor(rec);
    const algorithm = SPEC_ALGORITHM[rec.keySpec];
    return {
      record: rec,
      allowed: new Map(),
      arn: rec.arn,
      algorithm,
      macLength: slot.backendKey.macLength,
      slot,
      deadline: timeDeadline(rec),
    };
  }

  /** The prepared key for a record, reused while the material is the same bytes (a store write replaces records). */
  #slotFor(rec: KeyRecord): KeySlot {
    const existing = this.#slots.get(keyStoreId(rec));
    if (existing !== undefined) {
      if (existing.record === rec) return existing;
      if (
        existing.record.keySpec === rec.keySpec &&
        existing.record.keyMaterial &&
        sameBytes(existing.record.keyMaterial, rec.keyMaterial!)
      ) {
        existing.record = rec;
        return existing;
      }
      existing.retire();
    }
    const backendKey = this.#ctx.backend.createKey(SPEC_ALGORITHM[rec.keySpec], rec.keyMaterial!);
    const slot = new KeySlot(rec, backendKey);
    this.#slots.set(keyStoreId(rec), slot);
    return slot;
  }
}

// ---------------------------------------------------------------------------

/** Full evaluation order (spec §3): validation → key → state → usage → algorithm → (verify) → DryRun. */
function validateMacRequest(input: GenerateMacInput | VerifyMacInput, verify: boolean) {
  if (input === null || typeof input !== 'object')
    throw validationError(["Value null at 'keyId' failed to satisfy constraint: Member must not be null"]);
  const v = new Violations();
  const message = v.blob('message', input.Message, ...LIMITS.message, true, true);
  const keyId = v.string('keyId', input.KeyId, ...LIMITS.keyId, true);
  const alg = v.enumValue('macAlgorithm', input.MacAlgorithm, MAC_ALGORITHM_SET, MAC_ALGORITHM_ENUM_TEXT, true);
  const mac = verify ? v.blob('mac', (input as VerifyMacInput).Mac, ...LIMITS.mac, true, false) : undefined;
  v.grantTokens(input.GrantTokens);
  const dryRun = v.boolean('dryRun', input.DryRun);
  v.throwIfAny();
  const grantTokens = input.GrantTokens ?? undefined;
  return { message: message!, keyId: keyId!, alg: alg as MacAlgorithm, mac, dryRun: dryRun === true, grantTokens };
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
  return kmsError(
    'InvalidKeyUsageException',
    `Algorithm ${alg} is incompatible with key spec ${e.slot.record.keySpec}.`,
  );
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

/** KMS's per-message rule on a packed batch: each message within LIMITS.message, offsets non-decreasing. */
function checkMessageLengths(offsets: Uint32Array, count: number): void {
  for (let i = 0; i < count; i++) {
    const start = offsets[i]!;
    const end = offsets[i + 1]!;
    if (end < start) throw batchError(`Offsets must not decrease (Offsets[${i + 1}] < Offsets[${i}])`, i);
    if (end === start)
      throw batchError(
        `Value at 'messages[${i}]' failed to satisfy constraint: Member must have length greater than or equal to 1`,
        i,
      );
    if (end - start > MAX_MESSAGE)
      throw batchError(
        `Value at 'messages[${i}]' failed to satisfy constraint: Member must have length less than or equal to ${MAX_MESSAGE}`,
        i,
      );
  }
}

/** KMS's rule for each MAC of an array: within LIMITS.mac. */
function checkMacLength(length: number, i: number): void {
  if (length === 0)
    throw batchError(
      `Value at 'macs[${i}]' failed to satisfy constraint: Member must have length greater than or equal to 1`,
      i,
    );
  if (length > MAX_MAC)
    throw batchError(
      `Value at 'macs[${i}]' failed to satisfy constraint: Member must have length less than or equal to ${MAX_MAC}`,
      i,
    );
}

/** Runs `pack`, reporting a batch element that is not a usable Uint8Array as KMS does. */
function kmsItems<T>(pack: () => T): T {
  try {
    return pack();
  } catch (error) {
    if (!(error instanceof BatchItemError)) throw error;
    if (error.reason === 'detached') {
      throw batchError(
        `Value at '${error.list}[${error.index}]' failed to satisfy constraint: Member must have length greater than or equal to 1`,
        error.index,
      );
    }
    throw batchError(
      `Value null at '${error.list}[${error.index}]' failed to satisfy constraint: Member must be a Uint8Array`,
      error.index,
    );
  }
}
