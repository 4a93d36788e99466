/**
 * Backend selection. Precedence: explicit option > env KMS_HMAC_BACKEND >
 * native (if it loads and passes its known-answer self-test) > wasm-simd >
 * wasm-scalar. The choice and the reasons for every skipped backend are kept
 * and exposed through backendInfo(), so a fallback is never silent.
 */
import type { Backend, BackendName } from './types.js';
import { createNativeBackend } from './native.js';
import { loadWasmBackend } from './wasm.js';

export * from './types.js';

/** `wasm` means the best WebAssembly build this runtime supports. */
export type BackendChoice = BackendName | 'wasm';

export interface BackendOptions {
  /** A backend name, or a Backend instance to use as is. */
  backend?: BackendChoice | Backend;
  /** Fail instead of falling back when native is unavailable (also env KMS_HMAC_REQUIRE_NATIVE=1). */
  requireNative?: boolean;
}

export interface BackendInfo {
  name: BackendName;
  /** True when the active backend runs SIMD code (WASM SIMD128 or a native multi-buffer path). */
  simd: boolean;
  details: Readonly<Record<string, string | number | boolean>>;
  /** Backends tried before the active one, with the exact reason each was skipped. */
  skipped: { name: BackendName; reason: string }[];
  /** How the choice was made. */
  selectedBy: 'option' | 'env' | 'auto';
}

export const BACKEND_NAMES: readonly BackendName[] = ['native', 'wasm-simd', 'wasm-scalar'];
const CHOICES: readonly BackendChoice[] = [...BACKEND_NAMES, 'wasm'];

const loaders: Record<BackendName, () => Backend> = {
  native: () => createNativeBackend(),
  'wasm-simd': () => loadWasmBackend('simd'),
  'wasm-scalar': () => loadWasmBackend('scalar'),
};

const loaded = new Map<BackendName, Backend>();
let selected: BackendInfo | undefined;

/**
 * Loads one backend by name and runs its known-answer self-test. Throws when
 * it cannot load or answers wrongly; never falls back.
 */
export function loadBackend(name: BackendName): Backend {
  const cached = loaded.get(name);
  if (cached) return cached;
  const loader = loaders[name];
  if (!loader) throw new TypeError(`unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.join(', ')}`);
  const backend = loader();
  selfTest(backend);
  loaded.set(name, backend);
  return backend;
}

/** The backend for `options`, or the process-wide default when none is given. */
export function getBackend(options: BackendOptions = {}): Backend {
  if (typeof options.backend === 'object' && options.backend !== null) return options.backend;
  if (options.backend === undefined && !options.requireNative) return loadBackend(defaultSelection().name);
  return loadBackend(select(options).name);
}

/** The process-wide default backend and why it was chosen. */
export function backendInfo(): BackendInfo {
  const info = defaultSelection();
  return { ...info, skipped: info.skipped.map((s) => ({ ...s })) };
}

/** Forgets the default selection and loaded backends (for tests that change the environment). */
export function resetBackendSelection(): void {
  selected = undefined;
  loaded.clear();
}

function defaultSelection(): BackendInfo {
  selected ??= select({});
  return selected;
}

function parseChoice(value: string, source: string): BackendChoice {
  if ((CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new TypeError(`${source} must be one of ${CHOICES.join(', ')} (got '${value}')`);
}

function select(options: BackendOptions): BackendInfo {
  const requireNative = options.requireNative ?? process.env.KMS_HMAC_REQUIRE_NATIVE === '1';
  let choice: BackendChoice | undefined;
  let selectedBy: BackendInfo['selectedBy'] = 'auto';
  if (typeof options.backend === 'string') {
    choice = parseChoice(options.backend, 'the backend option');
    selectedBy = 'option';
  } else if (process.env.KMS_HMAC_BACKEND) {
    choice = parseChoice(process.env.KMS_HMAC_BACKEND, 'KMS_HMAC_BACKEND');
    selectedBy = 'env';
  }

  // An explicit single backend fails loudly rather than falling back.
  if (choice !== undefined && choice !== 'wasm') {
    if (requireNative && choice !== 'native') {
      throw new Error(`native backend required (KMS_HMAC_REQUIRE_NATIVE) but ${choice} was selected`);
    }
    return describe(loadBackend(choice), [], selectedBy);
  }

  const candidates: BackendName[] = choice === 'wasm' ? ['wasm-simd', 'wasm-scalar'] : [...BACKEND_NAMES];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    try {
      const backend = loadBackend(name);
      if (requireNative && name !== 'native') break;
      if (skipped.some((s) => s.name === 'native')) warnFallback(name, skipped[0]!.reason);
      return describe(backend, skipped, selectedBy);
    } catch (error) {
      skipped.push({ name, reason: error instanceof Error ? error.message : String(error) });
      if (requireNative && name === 'native') break;
    }
  }
  const reasons = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  if (requireNative) throw new Error(`native backend required (KMS_HMAC_REQUIRE_NATIVE) but unavailable: ${reasons}`);
  throw new Error(`no kms-hmac backend could be loaded: ${reasons}`);
}

function describe(
  backend: Backend,
  skipped: BackendInfo['skipped'],
  selectedBy: BackendInfo['selectedBy'],
): BackendInfo {
  const simdPath = backend.details.simdPath;
  const simd = backend.name === 'wasm-simd' || (typeof simdPath === 'string' && simdPath !== 'off');
  return { name: backend.name, simd, details: backend.details, skipped, selectedBy };
}

let warned = false;
function warnFallback(name: BackendName, reason: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(`kms-hmac: native backend unavailable (${reason}); using ${name}`, { code: 'KMS_HMAC_FALLBACK' });
}

// RFC 4231 test case 2 ("Jefe"), checked through the single and packed paths
// before a backend is reported usable.
const SELF_TEST = {
  key: new TextEncoder().encode('Jefe'),
  data: new TextEncoder().encode('what do ya want for nothing?'),
  HMAC_SHA_256: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  HMAC_SHA_512:
    '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
} as const;

function selfTest(backend: Backend): void {
  for (const algorithm of ['HMAC_SHA_256', 'HMAC_SHA_512'] as const) {
    const key = backend.createKey(algorithm, SELF_TEST.key);
    try {
      const single = new Uint8Array(key.macLength);
      key.macInto(SELF_TEST.data, single, 0);
      const packed = new Uint8Array(key.macLength);
      key.macPackedInto(SELF_TEST.data, new Uint32Array([0, SELF_TEST.data.length]), packed);
      const expected = SELF_TEST[algorithm];
      if (Buffer.from(single).toString('hex') !== expected || Buffer.from(packed).toString('hex') !== expected) {
        throw new Error(`${backend.name} failed its ${algorithm} known-answer self-test`);
      }
    } finally {
      key.destroy();
    }
  }
}
