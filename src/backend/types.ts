/**
 * The backend contract: what every HMAC engine (native addon, WebAssembly
 * SIMD, WebAssembly scalar) implements. Nothing here knows about KMS; the
 * façade (`MacKey`, `src/kms/`) validates everything before calling in, so a
 * backend may trust its arguments' types and ranges — but it must still never
 * crash the process on bad input.
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

export type BackendName = 'native' | 'wasm-simd' | 'wasm-scalar';

/**
 * A key with its HMAC inner/outer hash states precomputed, owned by one
 * backend. Packed batches: message i is `data[offsets[i] .. offsets[i+1])`
 * (offsets has n+1 non-decreasing entries, all <= data.length); MAC i is
 * written at `out[i * macLength ..]`. Verify results are one byte per
 * message: 1 valid, 0 invalid. Async variants copy their inputs before
 * returning, so the caller may reuse its buffers at once.
 */
export interface BackendKey {
  readonly algorithm: MacAlgorithm;
  readonly macLength: number;
  macInto(message: Uint8Array, out: Uint8Array, outOffset: number): void;
  /** Constant-time; a MAC of another length is simply false. */
  verify(message: Uint8Array, mac: Uint8Array): boolean;
  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): void;
  macArrayInto(messages: readonly Uint8Array[], out: Uint8Array): void;
  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): void;
  verifyArrayInto(messages: readonly Uint8Array[], macs: readonly Uint8Array[], results: Uint8Array): void;
  macPackedAsync(data: Uint8Array, offsets: Uint32Array): Promise<Uint8Array>;
  macArrayAsync(messages: readonly Uint8Array[]): Promise<Uint8Array>;
  verifyPackedAsync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Promise<Uint8Array>;
  verifyArrayAsync(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Promise<Uint8Array>;
  /** Wipes the key states; later calls throw. Idempotent. */
  destroy(): void;
}

export interface Backend {
  readonly name: BackendName;
  /** Facts worth reporting: OpenSSL version, SIMD path, thread count… */
  readonly details: Readonly<Record<string, string | number | boolean>>;
  createKey(algorithm: MacAlgorithm, keyMaterial: Uint8Array): BackendKey;
}
