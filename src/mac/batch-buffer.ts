/**
 * BatchBuffer: packed batch storage in shared memory, filled message by
 * message and reused batch after batch. Every backend reads a batch in
 * shared memory where it lies (the native pool threads; the WebAssembly
 * workers, unit by unit into their module instances) and writes its MACs there, so
 * the calling thread copies nothing of an async batch from a BatchBuffer
 * but its offsets (docs/performance.md, "Shared memory").
 *
 *   buffer (one SharedArrayBuffer)
 *   ├── data      maxBytes                  the messages, back to back
 *   ├── offsets   (maxMessages + 1) x u32   message i is data[offsets[i] .. offsets[i+1])
 *   ├── macs      maxMessages x macLength   MACs out (mac), expected MACs in (verify)
 *   └── results   maxMessages               verify: 1 valid, 0 invalid
 *
 * The views are public: a framer may write records straight into `data`
 * (reserve() hands out the next message's bytes) and expected MACs into
 * `macs`. Writing a region while a batch reads it, from this thread or
 * another that was given `buffer`, is a data race and the caller's to
 * avoid: it can change which bytes are hashed, so which MACs come out,
 * never crash or make the backend read outside the buffer. The buffer's own
 * methods refuse to run while one of its batches is in flight.
 */
import type { BackendKey, MacAlgorithm } from '../backend/types.js';
import { MAC_ALGORITHMS, MAC_LENGTH } from '../backend/types.js';
import { byteLength, copyInto, isUint8Array } from './views.js';

/** The key a BatchBuffer's batches take: a MacKey, or a backend's own key. */
export type BatchKey = Pick<
  BackendKey,
  'algorithm' | 'macPackedInto' | 'verifyPackedInto' | 'macPackedAsync' | 'verifyPackedAsync'
>;

export interface BatchBufferOptions {
  /** Messages per batch (default 16,384). */
  maxMessages?: number;
  /** Bytes of message data per batch (default 4 MiB; at most 4 GiB − 1, offsets are 32-bit). */
  maxBytes?: number;
}

const MAX_BYTES = 0xffffffff;

function sizeOption(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}`);
  }
  return value;
}

export class BatchBuffer {
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  readonly maxMessages: number;
  readonly maxBytes: number;
  /** The shared memory behind every view below. */
  readonly buffer: SharedArrayBuffer;
  readonly data: Uint8Array;
  readonly offsets: Uint32Array;
  readonly macs: Uint8Array;
  readonly results: Uint8Array;
  #count = 0;
  #bytes = 0;
  #inFlight = false;

  /** Storage for batches of `algorithm`'s MACs (the keys it takes must be of that algorithm). */
  constructor(algorithm: MacAlgorithm, options: BatchBufferOptions = {}) {
    if (!(MAC_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new TypeError(`algorithm must be one of ${MAC_ALGORITHMS.join(', ')}`);
    }
    this.algorithm = algorithm;
    this.macLength = MAC_LENGTH[algorithm];
    this.maxMessages = sizeOption(options.maxMessages, 'maxMessages', 16_384, 1 << 26);
    this.maxBytes = sizeOption(options.maxBytes, 'maxBytes', 4 << 20, MAX_BYTES);
    const n = this.maxMessages;
    // offsets first: 4-aligned at offset 0 whatever the other sizes are.
    const offsetsBytes = (n + 1) * 4;
    const macsAt = offsetsBytes;
    const resultsAt = macsAt + n * this.macLength;
    const dataAt = Math.ceil((resultsAt + n) / 64) * 64; // on a cache line of its own
    this.buffer = new SharedArrayBuffer(dataAt + this.maxBytes);
    this.offsets = new Uint32Array(this.buffer, 0, n + 1);
    this.macs = new Uint8Array(this.buffer, macsAt, n * this.macLength);
    this.results = new Uint8Array(this.buffer, resultsAt, n);
    this.data = new Uint8Array(this.buffer, dataAt, this.maxBytes);
  }

  /** Messages in the batch. */
  get count(): number {
    return this.#count;
  }

  /** Bytes of message data in the batch. */
  get byteLength(): number {
    return this.#bytes;
  }

  /** Whether one of this buffer's async batches has not settled yet. */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /**
   * Copies `message` in as the next message, and `mac` (macLength bytes, for
   * verify) into its slot of `macs`. Returns false, and adds nothing, when
   * the message does not fit.
   */
  append(message: Uint8Array, mac?: Uint8Array): boolean {
    this.#idle();
    if (!isUint8Array(message)) throw new TypeError('message must be a Uint8Array');
    if (mac !== undefined && (!isUint8Array(mac) || byteLength(mac) !== this.macLength)) {
      throw new TypeError(`mac must be a Uint8Array of ${this.macLength} bytes`);
    }
    const at = this.#add(byteLength(message));
    if (at < 0) return false;
    copyInto(this.data, message, at);
    if (mac !== undefined) copyInto(this.macs, mac, (this.#count - 1) * this.macLength);
    return true;
  }

  /**
   * Adds a message of `length` bytes and returns the view to write it into
   * (a record framed in place, without an intermediate copy); undefined,
   * and nothing added, when it does not fit. Its expected MAC, for verify,
   * goes at `macs[i * macLength]`, i = count − 1.
   */
  reserve(length: number): Uint8Array | undefined {
    this.#idle();
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
    const at = this.#add(length);
    return at < 0 ? undefined : this.data.subarray(at, at + length);
  }

  /** Empties the batch; the memory is reused. */
  reset(): void {
    this.#idle();
    this.#count = 0;
    this.#bytes = 0;
    this.offsets[0] = 0;
  }

  /** The batch's MACs, written into `macs`: a view of its first count × macLength bytes. */
  mac(key: BatchKey): Uint8Array {
    this.#idle();
    const macs = this.#macsView(key);
    key.macPackedInto(this.data, this.#offsetsView(), macs);
    return macs;
  }

  /** mac() on the worker threads, reading the batch in place. Resolves with the same view. */
  macAsync(key: BatchKey): Promise<Uint8Array> {
    return this.#async(async () => {
      const macs = this.#macsView(key);
      await key.macPackedAsync(this.data, this.#offsetsView(), macs);
      return macs;
    });
  }

  /** Checks each message against the MAC in its slot of `macs`: a view of the first count bytes of `results`. */
  verify(key: BatchKey): Uint8Array {
    this.#idle();
    const results = this.#resultsView();
    key.verifyPackedInto(this.data, this.#offsetsView(), this.#macsView(key), results);
    return results;
  }

  /** verify() on the worker threads, reading the batch in place. Resolves with the same view. */
  verifyAsync(key: BatchKey): Promise<Uint8Array> {
    return this.#async(async () => {
      const results = this.#resultsView();
      await key.verifyPackedAsync(this.data, this.#offsetsView(), this.#macsView(key), results);
      return results;
    });
  }

  /** Where a message of `length` bytes starts once added, or -1 when it does not fit. */
  #add(length: number): number {
    const at = this.#bytes;
    if (this.#count >= this.maxMessages || length > this.maxBytes - at) return -1;
    this.#bytes = at + length;
    this.offsets[++this.#count] = this.#bytes;
    return at;
  }

  #offsetsView(): Uint32Array {
    return this.offsets.subarray(0, this.#count + 1);
  }

  #macsView(key: BatchKey): Uint8Array {
    if (key.algorithm !== this.algorithm) {
      throw new TypeError(`this BatchBuffer holds ${this.algorithm} MACs, not ${key.algorithm}`);
    }
    return this.macs.subarray(0, this.#count * this.macLength);
  }

  #resultsView(): Uint8Array {
    return this.results.subarray(0, this.#count);
  }

  #idle(): void {
    if (this.#inFlight) throw new Error('this BatchBuffer has a batch in flight: await it first');
  }

  /** Runs `batch` as this buffer's batch in flight. */
  async #async(batch: () => Promise<Uint8Array>): Promise<Uint8Array> {
    this.#idle();
    this.#inFlight = true;
    try {
      return await batch();
    } finally {
      this.#inFlight = false;
    }
  }
}
