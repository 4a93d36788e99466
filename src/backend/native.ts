/**
 * The native backend: the Node-API addon loaded through node-gyp-build
 * (a bundled prebuild for this platform, else `build/Release`).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Backend, BackendKey } from './types.js';
import { algorithmCode, checkAlgorithmTable, MAC_LENGTH } from './types.js';

const require = createRequire(import.meta.url);

/** The package root: src/backend/ and dist/backend/ both sit two levels below it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The addon's key handle: the BackendKey methods, implemented in native/addon.cc. */
type NativeKey = Omit<BackendKey, 'algorithm' | 'macLength'>;

/** What the addon exports (native/addon.cc). */
export interface NativeBinding {
  Key: new (algorithm: number, keyMaterial: Uint8Array) => NativeKey;
  opensslVersion: string;
  opensslVersionNumber: number;
  macLengths: number[];
  blockLengths: number[];
  /** Threads of the addon's own pool for async batches (one per core this process may use). */
  asyncThreads: number;
  /** Only in the sanitizer build (npm run test:asan): its async batches fail on a marked message. */
  faultInjection?: true;
  /** Cumulative counters of the async batch path (native/stats.h): copies, allocations, where the time goes. */
  batchStats(): NativeBatchStats;
  /** Multi-buffer SIMD selection (native/mb): 'auto' (per batch, the fastest path on this CPU) or the forced path: 'off' | 'sse2' | 'avx2' | 'shani' | 'avx512'. */
  simdPath: string;
  /** Why that selection (CPU, KMS_HMAC_SIMD). */
  simdReason: string;
  /** The paths this CPU can run and whose load-time self-test passed. */
  simdPaths: string[];
  /** Each path's state: 'sse2: ok; ...; avx512: <why not>' (CPU support, self-test failure). */
  simdStatus: string;
  /** Switches the selection ('auto' or a path; tests and benchmarks); `force` sends every batch to the path. Returns the selection; throws if unavailable. */
  setSimdPath(path: string, force?: boolean): string;
}

export interface NativeBatchStats {
  inlineBatches: number;
  poolBatches: number;
  /** Pool batches small enough that the calling thread hashed units too, ended them and settled them in the call. */
  settledInCall: number;
  chunks: number;
  bytesCopied: number;
  buffersReused: number;
  buffersAllocated: number;
  /** Nanoseconds summed over pool batches, by phase. */
  copyNs: number;
  startNs: number;
  hashNs: number;
  returnNs: number;
  settleNs: number;
  threads: number;
}

/**
 * Loads the addon from `root` (default: this package). Throws whatever
 * node-gyp-build or dlopen threw — including the addon's own "OpenSSL
 * missing or not 3.x" error — so callers can report it.
 */
export function loadNativeBinding(root: string = PACKAGE_ROOT): NativeBinding {
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  const binding = nodeGypBuild(root) as Partial<NativeBinding>;
  // A runtime that drops the error an addon's initialisation threw (Deno 2.9) hands back its empty exports.
  if (typeof binding.Key !== 'function' || !Array.isArray(binding.macLengths)) {
    throw new Error(
      'kms-hmac native backend unavailable: the addon loaded but its initialisation exported nothing ' +
        '(this runtime dropped the error it threw; the addon needs the OpenSSL 3 of a Node.js process)',
    );
  }
  return binding as NativeBinding;
}

export function createNativeBackend(binding: NativeBinding = loadNativeBinding()): Backend {
  checkAlgorithmTable(
    'the native addon',
    binding.macLengths.length,
    (c) => binding.macLengths[c]!,
    (c) => binding.blockLengths[c]!,
  );
  const details: Record<string, string | number | boolean> = {
    openssl: binding.opensslVersion,
    asyncThreads: binding.asyncThreads,
    simdStatus: binding.simdStatus,
  };
  return {
    name: 'native',
    // A getter: tests and benchmarks may switch the path after load.
    get details() {
      return { ...details, simdPath: binding.simdPath };
    },
    createKey(algorithm, keyMaterial) {
      // The native handle already has every BackendKey method; only the two
      // descriptive fields are added, so calls go straight into the addon.
      const key = new binding.Key(algorithmCode(algorithm), keyMaterial);
      return Object.defineProperties(key, {
        algorithm: { value: algorithm, enumerable: true },
        macLength: { value: MAC_LENGTH[algorithm], enumerable: true },
      }) as BackendKey;
    },
  };
}
