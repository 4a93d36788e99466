/**
 * MacKey: the public low-level API over whichever backend is active.
 *
 * The backends check every argument themselves, with the same rules and
 * messages (native/js_args.cc, src/backend/wasm.ts), so this layer adds no
 * second set of checks: it packs the array forms (src/mac/pack.ts) and hands
 * everything to the backend key, which runs no caller code while it works.
 */
import { inspect } from 'node:util';
import { getBackend, type BackendOptions } from '../backend/index.js';
import type { BackendKey, BackendName, MacAlgorithm } from '../backend/types.js';
import { MAC_ALGORITHMS } from '../backend/types.js';
import { pooledMac } from './pool.js';
import { splitMacs, withPackedMacs, withPackedMessages } from './pack.js';
import { elementCount, isUint32Array } from './views.js';

export { packMessages, type PackedMessages } from './pack.js';

/**
 * `backend`: a name or instance (default: the process-wide selection, see backendInfo());
 * `requireNative`: throw here instead of falling back to WebAssembly.
 */
export type MacKeyOptions = BackendOptions;

export function createMacKey(algorithm: MacAlgorithm, keyMaterial: Uint8Array, options: MacKeyOptions = {}): MacKey {
  return new MacKey(algorithm, keyMaterial, options);
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
    const backend = getBackend(options);
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
    return pooledMac(this.#live(), message);
  }

  /** Writes the MAC of `message` to `out` at `offset`; returns `out`. */
  macInto(message: Uint8Array, out: Uint8Array, offset = 0): Uint8Array {
    this.#live().macInto(message, out, offset);
    return out;
  }

  /** Constant-time check; a MAC of another length is simply false. */
  verify(message: Uint8Array, mac: Uint8Array): boolean {
    return this.#live().verify(message, mac);
  }

  /** One MAC per message, as views into one buffer. */
  macBatch(messages: readonly Uint8Array[]): Uint8Array[] {
    const key = this.#live();
    return withPackedMessages(messages, ({ data, offsets }, count) => {
      const out = new Uint8Array(count * this.macLength);
      key.macPackedInto(data, offsets, out);
      return splitMacs(out, count, this.macLength);
    });
  }

  /** Packed batch: returns n MACs back to back (MAC i at i * macLength). */
  macPacked(data: Uint8Array, offsets: Uint32Array): Uint8Array {
    return this.macPackedInto(data, offsets, new Uint8Array(this.#outputLength(offsets, this.macLength)));
  }

  /** Packed batch into a caller's buffer (the zero-allocation path). */
  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): Uint8Array {
    this.#live().macPackedInto(data, offsets, out);
    return out;
  }

  /** One byte per message: 1 when macs[i] is the MAC of messages[i], else 0. */
  verifyBatch(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Uint8Array {
    const key = this.#live();
    return withPackedMessages(messages, ({ data, offsets }, count) =>
      withPackedMacs(macs, count, this.macLength, (packed) => {
        const results = new Uint8Array(count);
        key.verifyPackedInto(data, offsets, packed.macs, results);
        return invalidateWrongLengths(results, packed.wrongLength);
      }),
    );
  }

  /** Packed verify: `macs` holds n MACs back to back. */
  verifyPacked(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Uint8Array {
    return this.verifyPackedInto(data, offsets, macs, new Uint8Array(this.#outputLength(offsets, 1)));
  }

  /** Packed verify into a caller's buffer: one byte per message, 1 valid, 0 invalid; returns `results`. */
  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): Uint8Array {
    this.#live().verifyPackedInto(data, offsets, macs, results);
    return results;
  }

  /** macBatch on the worker threads; inputs are copied before this returns. */
  async macBatchAsync(messages: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const key = this.#live();
    let views: Uint8Array[] = [];
    await withPackedMessages(messages, ({ data, offsets }, count) => {
      const out = new Uint8Array(count * this.macLength);
      const done = key.macPackedAsync(data, offsets, out);
      views = splitMacs(out, count, this.macLength); // while the threads hash
      return done;
    });
    return views;
  }

  /** macPacked on the worker threads. With `out`, the MACs are written there (and `out` is the result). */
  async macPackedAsync(data: Uint8Array, offsets: Uint32Array, out?: Uint8Array): Promise<Uint8Array> {
    return this.#live().macPackedAsync(data, offsets, out);
  }

  async verifyBatchAsync(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Promise<Uint8Array> {
    const key = this.#live();
    let wrongLength: number[] = [];
    const results = await withPackedMessages(messages, ({ data, offsets }, count) =>
      withPackedMacs(macs, count, this.macLength, (packed) => {
        wrongLength = packed.wrongLength;
        return key.verifyPackedAsync(data, offsets, packed.macs);
      }),
    );
    return invalidateWrongLengths(results, wrongLength);
  }

  /** verifyPacked on the worker threads. With `results`, the 1/0 bytes are written there. */
  async verifyPackedAsync(
    data: Uint8Array,
    offsets: Uint32Array,
    macs: Uint8Array,
    results?: Uint8Array,
  ): Promise<Uint8Array> {
    return this.#live().verifyPackedAsync(data, offsets, macs, results);
  }

  /** Wipes the key's states in the backend. Idempotent; later calls throw. Batches already started still finish. */
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

  /** Bytes of output for a packed batch's offsets (the backend checks the offsets themselves). */
  #outputLength(offsets: Uint32Array, perMessage: number): number {
    if (!isUint32Array(offsets)) throw new TypeError('offsets must be a Uint32Array');
    return Math.max(0, elementCount(offsets) - 1) * perMessage;
  }
}

/** A MAC that was not macLength bytes long is invalid, whatever its zeroed slot compared as. */
function invalidateWrongLengths(results: Uint8Array, wrongLength: readonly number[]): Uint8Array {
  for (const i of wrongLength) results[i] = 0;
  return results;
}
