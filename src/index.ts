/**
 * kms-hmac: the AWS KMS HMAC API (GenerateMac / VerifyMac) computed locally.
 * Public exports only; every module below owns one concern.
 */

// Low level: keys with precomputed HMAC states on the active backend.
export { createMacKey, MacKey, packMessages } from './mac/key.js';
export type { MacKeyOptions, PackedMessages } from './mac/key.js';
// Packed batch storage in shared memory, which async batches read and write in place.
export { BatchBuffer } from './mac/batch-buffer.js';
export type { BatchBufferOptions, BatchKey } from './mac/batch-buffer.js';
export { backendInfo, getBackend, loadBackend, BACKEND_NAMES } from './backend/index.js';
export type { BackendChoice, BackendInfo, BackendOptions } from './backend/index.js';
// A WebAssembly backend with its own worker count (loadBackend('wasm-simd') uses the default).
export { loadWasmBackend, wasmSimdSupported } from './backend/wasm.js';
export type { WasmBackendOptions, WasmVariant } from './backend/wasm.js';
export { MAC_ALGORITHMS, MAC_LENGTH, BLOCK_LENGTH } from './backend/types.js';
export type { Backend, BackendKey, BackendName, MacAlgorithm } from './backend/types.js';

// The KMS API.
export { KmsHmacClient, SUPPORTED_OPERATIONS } from './client/client.js';
export { QUOTAS } from './kms/quotas.js';
export type {
  KmsHmacClientOptions,
  Quotas,
  ImportKeyMaterialInput,
  CreateKeyInput,
  KeyMetadata,
  GenerateMacInput,
  GenerateMacOutput,
  VerifyMacInput,
  VerifyMacOutput,
  GenerateMacBatchInput,
  GenerateMacBatchOutput,
  VerifyMacBatchInput,
  VerifyMacBatchOutput,
} from './client/client.js';
export { createFastPathClient, DEFAULT_LEASE_SECONDS } from './client/fast-path.js';
export type {
  FastPathClient,
  FastPathControl,
  FastPathOptions,
  FastPathStats,
  KeyLeaseStats,
  LeaseEvent,
  LeaseState,
  ProbeResult,
  SendingClient,
} from './client/fast-path.js';
export * from './kms/errors.js';

// Key stores.
export * from './keystore/index.js';

// Log integrity: sidecars and record streams.
export * from './logs/index.js';
