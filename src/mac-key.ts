/**
 * MacKey: the public low-level API over whichever backend is active. It owns
 * the argument policy (types, shared/detached buffers, offsets, output sizes)
 * so every backend sees the same, already-checked input and every caller gets
 * the same TypeError/RangeError whatever backend runs.
 */
import { inspect } from 'node:util';
import { getBackend, type BackendChoice } from './backend/index.js';
import type { Backend, BackendKey, BackendName, MacAlgorithm } from './backend/types.js';
import { MAC_ALGORITHMS } from './backend/types.js';
import { pooledMac } from './mac-pool.js';

export interface MacKeyOptions {
  /** A backend name or instance; default: the process-wide selection (see backendInfo()). */
  backend?: BackendChoice | Backend;
}

/** Messages packed into one buffer: message i is `data[offsets[i] .. offsets[i+1])`. */
export interface PackedMessages {
  data: Uint8Array;
  offsets: Uint32Array;
}

export function createMacKey(algorithm: MacAlgorithm, keyMaterial: Uint8Array, options: MacKeyOptions = {}): MacKey {
  return new MacKey(algorithm, keyMaterial, options);
}

/** Packs messages into one buffer plus n+1 offsets: the zero-copy batch form. */
export function packMessages(messages: readonly Uint8Array[]): PackedMessages {
  assertArray(messages, 'messages');
  const offsets = new Uint32Array(messages.length + 1);
  let total = 0;
  for (let i = 0; i < messages.length; i++) {
    assertBytes(messages[i], `messages[${i}]`);
    offsets[i] = total;
    total += messages[i]!.length;
    if (total > 0xffffffff) throw new RangeError('messages total over 4 GiB; split the batch');
  }
  offsets[messages.length] = total;
  const data = new Uint8Array(total);
  for (let i = 0; i < messages.length; i++) data.set(messages[i]!, offsets[i]!);
  return { data, offsets };
}

export class MacKey {
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  /** The backend computing this key's MACs. */
  readonly backend: BackendName;
  #key: BackendKey | undefined;

  constructor(algorithm: MacAlgorithm, keyMaterial: Uint8Array, options: MacKeyOptions = {}) {
    if (!(MAC_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new TypeError(`algorithm must be one of ${MAC_ALGORITHMS.join(', ')}`);
    }
    assertBytes(keyMaterial, 'keyMaterial');
    const backend = getBackend({ backend: options.backend });
    this.#key = backend.createKey(algorithm, keyMaterial);
    this.algorithm = algorithm;
    this.macLength = this.#key.macLength;
    this.backend = backend.name;
  }

  /**
   * The MAC of `message`. The result is a view into a shared pool (like
   * Buffer.allocUnsafe); `.slice()` it if you need a standalone ArrayBuffer.
   */
  mac(message: Uint8Array): Uint8Array {
    const key = this.#live();
    assertBytes(message, 'message');
    return pooledMac(key, message);
  }

  /** Writes the MAC of `message` to `out` at `offset`; returns `out`. */
  macInto(message: Uint8Array, out: Uint8Array, offset = 0): Uint8Array {
    const key = this.#live();
    assertBytes(message, 'message');
    assertBytes(out, 'out');
    if (!Number.isInteger(offset) || offset < 0 || offset + this.macLength > out.length) {
      throw new RangeError(`out has no room for a ${this.macLength}-byte MAC at offset ${offset}`);
    }
    key.macInto(message, out, offset);
    return out;
  }

  /** Constant-time check; a MAC of another length is simply false. */
  verify(message: Uint8Array, mac: Uint8Array): boolean {
    const key = this.#live();
    assertBytes(message, 'message');
    assertBytes(mac, 'mac');
    return key.verify(message, mac);
  }

  /** One MAC per message, as views into one buffer. */
  macBatch(messages: readonly Uint8Array[]): Uint8Array[] {
    const key = this.#live();
    assertMessages(messages);
    const out = new Uint8Array(messages.length * this.macLength);
    key.macArrayInto(messages, out);
    return this.#split(out, messages.length);
  }

  /** Packed batch: returns n MACs back to back (MAC i at i * macLength). */
  macPacked(data: Uint8Array, offsets: Uint32Array): Uint8Array {
    const count = assertPacked(data, offsets);
    const out = new Uint8Array(count * this.macLength);
    this.#live().macPackedInto(data, offsets, out);
    return out;
  }

  /** Packed batch into a caller's buffer (the zero-allocation path). */
  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): Uint8Array {
    const count = assertPacked(data, offsets);
    assertBytes(out, 'out');
    if (out.length < count * this.macLength) {
      throw new RangeError(`out is too small: need ${count * this.macLength} bytes, have ${out.length}`);
    }
    this.#live().macPackedInto(data, offsets, out);
    return out;
  }

  /** One byte per message: 1 when macs[i] is the MAC of messages[i], else 0. */
  verifyBatch(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Uint8Array {
    const key = this.#live();
    assertVerifyArrays(messages, macs);
    const results = new Uint8Array(messages.length);
    key.verifyArrayInto(messages, macs, results);
    return results;
  }

  /** Packed verify: `macs` holds n MACs back to back. */
  verifyPacked(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Uint8Array {
    const count = assertPacked(data, offsets);
    this.#assertPackedMacs(macs, count);
    const results = new Uint8Array(count);
    this.#live().verifyPackedInto(data, offsets, macs, results);
    return results;
  }

  /** macBatch on worker threads, split across cores; inputs are copied before this returns. */
  async macBatchAsync(messages: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const key = this.#live();
    assertMessages(messages);
    return this.#split(await key.macArrayAsync(messages), messages.length);
  }

  async macPackedAsync(data: Uint8Array, offsets: Uint32Array): Promise<Uint8Array> {
    assertPacked(data, offsets);
    return this.#live().macPackedAsync(data, offsets);
  }

  async verifyBatchAsync(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Promise<Uint8Array> {
    const key = this.#live();
    assertVerifyArrays(messages, macs);
    return key.verifyArrayAsync(messages, macs);
  }

  async verifyPackedAsync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Promise<Uint8Array> {
    const count = assertPacked(data, offsets);
    this.#assertPackedMacs(macs, count);
    return this.#live().verifyPackedAsync(data, offsets, macs);
  }

  /** Wipes the key's states in the backend. Idempotent; later calls throw. */
  destroy(): void {
    this.#key?.destroy();
    this.#key = undefined;
  }

  get destroyed(): boolean {
    return this.#key === undefined;
  }

  toJSON(): object {
    return { algorithm: this.algorithm, backend: this.backend };
  }

  [inspect.custom](): string {
    return `MacKey { algorithm: '${this.algorithm}', backend: '${this.backend}'${this.destroyed ? ', destroyed' : ''} }`;
  }

  #live(): BackendKey {
    if (this.#key === undefined) throw new Error('the key was destroyed');
    return this.#key;
  }

  #split(out: Uint8Array, count: number): Uint8Array[] {
    const macs = new Array<Uint8Array>(count);
    for (let i = 0; i < count; i++) macs[i] = out.subarray(i * this.macLength, (i + 1) * this.macLength);
    return macs;
  }

  #assertPackedMacs(macs: Uint8Array, count: number): void {
    assertBytes(macs, 'macs');
    if (macs.length < count * this.macLength) {
      throw new RangeError(`macs is too small: need ${count * this.macLength} bytes for ${count} MACs, have ${macs.length}`);
    }
  }
}

function isDetached(view: Uint8Array): boolean {
  try {
    new Uint8Array(view.buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (value.buffer instanceof SharedArrayBuffer) {
    throw new TypeError(`${what} must not be backed by a SharedArrayBuffer`);
  }
  // A detached buffer looks empty; only an empty view needs the (costlier) check.
  if (value.length === 0 && isDetached(value)) throw new TypeError(`${what} is backed by a detached ArrayBuffer`);
}

function assertArray(value: unknown, what: string): asserts value is readonly unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`${what} must be an array of Uint8Array`);
}

function assertMessages(messages: readonly Uint8Array[]): void {
  assertArray(messages, 'messages');
  for (let i = 0; i < messages.length; i++) assertBytes(messages[i], `messages[${i}]`);
}

function assertVerifyArrays(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): void {
  assertMessages(messages);
  assertArray(macs, 'macs');
  if (macs.length !== messages.length) {
    throw new RangeError(`macs must have one entry per message (${messages.length}), got ${macs.length}`);
  }
  for (let i = 0; i < macs.length; i++) assertBytes(macs[i], `macs[${i}]`);
}

/** Checks a packed batch and returns its message count. */
function assertPacked(data: Uint8Array, offsets: Uint32Array): number {
  assertBytes(data, 'data');
  if (!(offsets instanceof Uint32Array)) throw new TypeError('offsets must be a Uint32Array');
  if (offsets.buffer instanceof SharedArrayBuffer) throw new TypeError('offsets must not be backed by a SharedArrayBuffer');
  if (offsets.length === 0) {
    try {
      new Uint32Array(offsets.buffer, 0, 0);
    } catch {
      throw new TypeError('offsets is backed by a detached ArrayBuffer');
    }
    throw new RangeError('offsets must have n+1 entries (at least 1)');
  }
  let previous = 0;
  for (let i = 0; i < offsets.length; i++) {
    const offset = offsets[i]!;
    if (offset > data.length) throw new RangeError(`offsets[${i}] is past the end of data`);
    if (offset < previous) throw new RangeError(`offsets must not decrease (offsets[${i}])`);
    previous = offset;
  }
  return offsets.length - 1;
}
