/**
 * The native backend: the Node-API addon loaded through node-gyp-build
 * (a bundled prebuild for this platform, else `build/Release`).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Backend, BackendKey, MacAlgorithm } from './types.js';
import { MAC_ALGORITHMS } from './types.js';

const require = createRequire(import.meta.url);

/** The package root: src/backend/ and dist/backend/ both sit two levels below it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface NativeKey {
  macInto(message: Uint8Array, out: Uint8Array, outOffset: number): void;
  verify(message: Uint8Array, mac: Uint8Array): boolean;
  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): void;
  macArrayInto(messages: readonly Uint8Array[], out: Uint8Array): void;
  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): void;
  verifyArrayInto(messages: readonly Uint8Array[], macs: readonly Uint8Array[], results: Uint8Array): void;
  macPackedAsync(data: Uint8Array, offsets: Uint32Array): Promise<Uint8Array>;
  macArrayAsync(messages: readonly Uint8Array[]): Promise<Uint8Array>;
  verifyPackedAsync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Promise<Uint8Array>;
  verifyArrayAsync(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Promise<Uint8Array>;
  destroy(): void;
}

/** What the addon exports (native/addon.cc). */
export interface NativeBinding {
  Key: new (algorithm: number, keyMaterial: Uint8Array) => NativeKey;
  opensslVersion: string;
  opensslVersionNumber: number;
  macLengths: number[];
  blockLengths: number[];
  asyncThreads: number;
  /** Multi-buffer SIMD path in use for batches, when the addon has one. */
  simdPath?: string;
}

/**
 * Loads the addon from `root` (default: this package). Throws whatever
 * node-gyp-build or dlopen threw — including the addon's own "OpenSSL
 * missing or not 3.x" error — so callers can report it.
 */
export function loadNativeBinding(root: string = process.env.KMS_HMAC_NATIVE_DIR || PACKAGE_ROOT): NativeBinding {
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  return nodeGypBuild(root) as NativeBinding;
}

class NativeBackendKey implements BackendKey {
  readonly macLength: number;
  #key: NativeKey;

  constructor(
    binding: NativeBinding,
    readonly algorithm: MacAlgorithm,
    keyMaterial: Uint8Array,
  ) {
    const index = MAC_ALGORITHMS.indexOf(algorithm);
    this.#key = new binding.Key(index, keyMaterial);
    this.macLength = binding.macLengths[index]!;
  }

  macInto(message: Uint8Array, out: Uint8Array, outOffset: number): void {
    this.#key.macInto(message, out, outOffset);
  }
  verify(message: Uint8Array, mac: Uint8Array): boolean {
    return this.#key.verify(message, mac);
  }
  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): void {
    this.#key.macPackedInto(data, offsets, out);
  }
  macArrayInto(messages: readonly Uint8Array[], out: Uint8Array): void {
    this.#key.macArrayInto(messages, out);
  }
  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): void {
    this.#key.verifyPackedInto(data, offsets, macs, results);
  }
  verifyArrayInto(messages: readonly Uint8Array[], macs: readonly Uint8Array[], results: Uint8Array): void {
    this.#key.verifyArrayInto(messages, macs, results);
  }
  macPackedAsync(data: Uint8Array, offsets: Uint32Array): Promise<Uint8Array> {
    return this.#key.macPackedAsync(data, offsets);
  }
  macArrayAsync(messages: readonly Uint8Array[]): Promise<Uint8Array> {
    return this.#key.macArrayAsync(messages);
  }
  verifyPackedAsync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Promise<Uint8Array> {
    return this.#key.verifyPackedAsync(data, offsets, macs);
  }
  verifyArrayAsync(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Promise<Uint8Array> {
    return this.#key.verifyArrayAsync(messages, macs);
  }
  destroy(): void {
    this.#key.destroy();
  }
}

export function createNativeBackend(binding: NativeBinding = loadNativeBinding()): Backend {
  const details: Record<string, string | number | boolean> = {
    openssl: binding.opensslVersion,
    asyncThreads: binding.asyncThreads,
  };
  if (binding.simdPath !== undefined) details.simdPath = binding.simdPath;
  return {
    name: 'native',
    details,
    createKey: (algorithm, keyMaterial) => new NativeBackendKey(binding, algorithm, keyMaterial),
  };
}
