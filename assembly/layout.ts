// Static memory layout of the kms-hmac WebAssembly HMAC module.
//
// Every region is a fixed static reservation (`memory.data`): the module is
// built with initial == maximum memory and never allocates, so the JS views
// onto these regions never detach. Addresses are exported (index.ts) so the
// JS side reads them instead of hard-coding numbers.
//
//   DATA   1 MiB     batch / single message input (packed, offsets relative)
//   OFFS   (MAX_BATCH+1) x u32   batch offsets (absolute, minus `base`)
//   OUT    MAX_BATCH x 64 B      MACs out at macLength stride; for verify the
//                                expected MACs in, at the same stride
//   RES    MAX_BATCH x u8        verify results (1 valid, 0 invalid)
//   KEYS   KEY_SLOTS x 128 B     per key: inner state @0, outer state @64
//   KEYWIN 4 KiB                 raw key material in (wiped after setup)
//   scratch                      padding blocks, schedules, stream context

export const DATA_SIZE: u32 = 1 << 20;
export const MAX_BATCH: u32 = 16384;
export const KEY_SLOTS: u32 = 8192;
export const SLOT_SIZE: u32 = 128;
export const KEYWIN_SIZE: u32 = 4096;

export const DATA: usize = memory.data(DATA_SIZE, 64);
export const OFFS: usize = memory.data((MAX_BATCH + 1) << 2, 16);
export const OUT: usize = memory.data(MAX_BATCH << 6, 16);
export const RES: usize = memory.data(MAX_BATCH, 16);
export const KEYS: usize = memory.data(KEY_SLOTS * SLOT_SIZE, 16);
export const KEYWIN: usize = memory.data(KEYWIN_SIZE, 16);

// Scratch. PAD: one padded tail block (<= 128 B); TMP: one computed MAC for
// verify; CTX: streaming hash context. (Message schedules live in locals.)
export const PAD: usize = memory.data(256, 16);
export const TMP: usize = memory.data(64, 16);
// CTX: state (64 B) @0, buffer (128 B) @64, buffered byte count u32 @192,
// total byte count u64 @200.
export const CTX: usize = memory.data(256, 16);

// Algorithm codes: the index in src/backend/types.ts MAC_ALGORITHMS, which
// checks them (and the lengths below) when the module loads.
export const ALGORITHM_COUNT: u32 = 4;
export const ALG_SHA224: u32 = 0;
export const ALG_SHA256: u32 = 1;
export const ALG_SHA384: u32 = 2;
export const ALG_SHA512: u32 = 3;

@inline export function isSha512Family(alg: u32): bool {
  return alg >= ALG_SHA384;
}

@inline export function blockLen(alg: u32): u32 {
  return alg >= ALG_SHA384 ? 128 : 64;
}

@inline export function digestLen(alg: u32): u32 {
  // 28, 32, 48, 64
  return alg == ALG_SHA224 ? 28 : alg == ALG_SHA256 ? 32 : alg == ALG_SHA384 ? 48 : 64;
}
