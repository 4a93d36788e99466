/**
 * kms-hmac: the AWS KMS HMAC API (GenerateMac / VerifyMac) computed locally.
 * Public exports only; every module below owns one concern.
 */
export { createMacKey, MacKey, packMessages } from './mac-key.js';
export type { MacKeyOptions, PackedMessages } from './mac-key.js';
export { backendInfo, getBackend, loadBackend, BACKEND_NAMES } from './backend/index.js';
export type { BackendChoice, BackendInfo, BackendOptions } from './backend/index.js';
export { MAC_ALGORITHMS, MAC_LENGTH, BLOCK_LENGTH } from './backend/types.js';
export type { Backend, BackendKey, BackendName, MacAlgorithm } from './backend/types.js';
