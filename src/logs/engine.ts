/**
 * What the log pipeline needs from a key: packed batch MAC and verify on
 * worker threads, plus single MACs for the header and trailer. The CLI builds
 * one from the KMS layer (key resolution and key-state checks on every call);
 * library users and benchmarks can build one from a MacKey.
 */
import { timingSafeEqual } from 'node:crypto';
import { MAC_LENGTH, type MacAlgorithm } from '../backend/types.js';

export interface MacEngine {
  /** ARN of the key, written into sidecar headers. */
  readonly keyArn: string;
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  /**
   * MACs of message i = data[offsets[i]..offsets[i+1]) at i*macLength, in
   * `out` when given (left alone until this settles), else in a new buffer.
   * Inputs may be reused once this returns.
   */
  macPacked(data: Uint8Array, offsets: Uint32Array, out?: Uint8Array): Promise<Uint8Array>;
  /** One byte per message: 1 valid, 0 invalid; in `results` when given. */
  verifyPacked(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results?: Uint8Array): Promise<Uint8Array>;
  /** Same, on the calling thread: cheaper than a worker round trip for a handful of messages (the verifier's search). */
  verifyPackedSync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Uint8Array;
  /**
   * A fresh (not pooled) MAC, which the caller owns: the engine keeps no
   * other copy of it (it may be a forward-secure stream's seed, keys.ts).
   */
  mac(message: Uint8Array): Promise<Uint8Array>;
  verify(message: Uint8Array, mac: Uint8Array): Promise<boolean>;
}

/** The parts of a MacKey (src/mac/key.ts) or a backend key the engine uses. */
export interface PackedMacKey {
  verifyPacked(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Uint8Array;
  macPackedAsync(data: Uint8Array, offsets: Uint32Array, out?: Uint8Array): Promise<Uint8Array>;
  verifyPackedAsync(
    data: Uint8Array,
    offsets: Uint32Array,
    macs: Uint8Array,
    results?: Uint8Array,
  ): Promise<Uint8Array>;
}

/** An engine over a MacKey-like object (no KMS key-state checks: the caller owns the key). */
export function engineFromMacKey(key: PackedMacKey, keyArn: string, algorithm: MacAlgorithm): MacEngine {
  const macLength = MAC_LENGTH[algorithm];
  return {
    keyArn,
    algorithm,
    macLength,
    macPacked: async (data, offsets, out) => {
      const n = (offsets.length - 1) * macLength;
      return out ? (await key.macPackedAsync(data, offsets, out)).subarray(0, n) : key.macPackedAsync(data, offsets);
    },
    verifyPacked: async (data, offsets, macs, results) =>
      results
        ? (await key.verifyPackedAsync(data, offsets, macs, results)).subarray(0, offsets.length - 1)
        : key.verifyPackedAsync(data, offsets, macs),
    verifyPackedSync: (data, offsets, macs) => key.verifyPacked(data, offsets, macs),
    async mac(message) {
      // a fresh copy for the caller, and nothing left behind: this MAC may be a stream's seed (keys.ts)
      const offs = new Uint32Array([0, message.length]);
      const r = await key.macPackedAsync(message, offs);
      const out = secretBuffer(r.length);
      out.set(r);
      r.fill(0);
      return out;
    },
    async verify(message, mac) {
      if (mac.length !== macLength) return false;
      const r = await key.verifyPackedAsync(message, new Uint32Array([0, message.length]), mac);
      return r[0] === 1;
    },
  };
}

/**
 * `n` zero bytes for a secret that will be wiped, in an ArrayBuffer of its
 * own: outside the JavaScript heap, never pooled. A small typed array made by
 * length (Buffer.alloc(32), Uint8Array.from(…)) lives on the heap, where a
 * garbage collection may move it and the first native call that reads it
 * copies it out, each leaving a copy behind that no fill(0) reaches.
 */
export function secretBuffer(n: number): Buffer {
  return Buffer.from(new ArrayBuffer(n));
}

/** Constant-time compare that treats a length difference as a mismatch. */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
