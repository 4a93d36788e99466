/**
 * The backend contract: what every backend (native addon, WebAssembly
 * SIMD, WebAssembly scalar) implements. Nothing here knows about KMS; the
 * façade (`MacKey`, `src/kms/`) validates everything before calling in, so a
 * backend may trust its arguments' types and ranges — but it must still never
 * crash the process on bad input.
 */

/**
 * The algorithm table. An algorithm's code is its index here: the native
 * addon and the WebAssembly module number theirs the same way, and each
 * one's own lengths are checked against this table when it loads
 * (checkAlgorithmTable), so the three can never drift apart silently.
 */
export const MAC_ALGORITHMS = ['HMAC_SHA_224', 'HMAC_SHA_256', 'HMAC_SHA_384', 'HMAC_SHA_512'] as const;
export type MacAlgorithm = (typeof MAC_ALGORITHMS)[number];

/** MAC (digest) length in bytes for each algorithm. */
export const MAC_LENGTH: Readonly<Record<MacAlgorithm, number>> = {
  HMAC_SHA_224: 28,
  HMAC_SHA_256: 32,
  HMAC_SHA_384: 48,
  HMAC_SHA_512: 64,
};

/** Hash block length in bytes: keys longer than this are hashed first (RFC 2104). */
export const BLOCK_LENGTH: Readonly<Record<MacAlgorithm, number>> = {
  HMAC_SHA_224: 64,
  HMAC_SHA_256: 64,
  HMAC_SHA_384: 128,
  HMAC_SHA_512: 128,
};

/** The code the addon and the WebAssembly module use for `algorithm`. */
export function algorithmCode(algorithm: MacAlgorithm): number {
  return MAC_ALGORITHMS.indexOf(algorithm);
}

/**
 * Throws unless `implementation` (the addon or the WebAssembly module)
 * numbers the algorithms as this table does: `count` algorithms, and for each
 * code the same MAC and block lengths.
 */
export function checkAlgorithmTable(
  implementation: string,
  count: number,
  macLength: (code: number) => number,
  blockLength: (code: number) => number,
): void {
  const wrong = MAC_ALGORITHMS.filter(
    (algorithm, code) => macLength(code) !== MAC_LENGTH[algorithm] || blockLength(code) !== BLOCK_LENGTH[algorithm],
  );
  if (count !== MAC_ALGORITHMS.length || wrong.length > 0) {
    throw new Error(
      `${implementation} does not match the algorithm table (${count} algorithms for ${MAC_ALGORITHMS.length}` +
        `${wrong.length > 0 ? `; lengths differ for ${wrong.join(', ')}` : ''}): it was built from other sources`,
    );
  }
}

export type BackendName = 'native' | 'wasm-simd' | 'wasm-scalar';

/**
 * A key with its HMAC inner/outer hash states precomputed, owned by one
 * backend. Its primitives are a single message and packed batches
 * (the array forms are packed by the façade, src/mac/pack.ts):
 *
 * - message i is `data[offsets[i] .. offsets[i+1])` (offsets has n+1
 *   non-decreasing entries, all <= data.length);
 * - MAC i is written at `out[i * macLength ..]`; verify results are one byte
 *   per message, 1 valid and 0 invalid, and `macs` holds n MACs at a stride
 *   of macLength.
 *
 * Every method checks its own arguments (TypeError/RangeError) and never runs
 * caller code while it works, so nothing can change an input under it. An
 * output that overlaps an input is computed as if every input had been read
 * first. Async variants copy their inputs before returning, so the caller may
 * reuse its buffers at once; they reject rather than throw, and always
 * settle. With `out` (or `results`) they write into that buffer when the
 * work is done, after checking it is still attached and large enough, and
 * resolve with it; without, they resolve with a new buffer.
 */
export interface BackendKey {
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  macInto(message: Uint8Array, out: Uint8Array, outOffset: number): void;
  /** Constant-time; a MAC of another length is simply false. */
  verify(message: Uint8Array, mac: Uint8Array): boolean;
  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): void;
  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): void;
  macPackedAsync(data: Uint8Array, offsets: Uint32Array, out?: Uint8Array): Promise<Uint8Array>;
  verifyPackedAsync(
    data: Uint8Array,
    offsets: Uint32Array,
    macs: Uint8Array,
    results?: Uint8Array,
  ): Promise<Uint8Array>;
  /** Wipes the key states; later calls throw. Idempotent. Batches already started finish with their own copy. */
  destroy(): void;
}

export interface Backend {
  readonly name: BackendName;
  /** Facts worth reporting: OpenSSL version, SIMD path, thread count… */
  readonly details: Readonly<Record<string, string | number | boolean>>;
  createKey(algorithm: MacAlgorithm, keyMaterial: Uint8Array): BackendKey;
}
