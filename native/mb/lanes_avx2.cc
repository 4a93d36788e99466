// The generic lane kernel (sha2_lanes.h) instantiated for AVX2: 8 SHA-256 or
// 4 SHA-512 lanes in 256-bit registers. AVX2 has no rotate and no ternary
// logic, so the generic operations are used as they are; its byte shuffle
// makes SHA-512's ROTR 8 and the message byte swaps one instruction each.
#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#define MB_TARGET "avx2"
#include "sha2_lanes.h"

namespace kmshmac {
namespace mb {
namespace detail {
namespace {

using Sha256x8 = Lanes<Sha256Params, GenericLanes<uint32_t, 8, true>>;
using Sha512x4 = Lanes<Sha512Params, GenericLanes<uint64_t, 4, true>>;

__attribute__((target(MB_TARGET))) void sha256_x8(uint32_t* st, const uint8_t* const* blk, size_t nblocks) {
  Sha256x8::compress(st, blk, nblocks);
}
__attribute__((target(MB_TARGET))) void sha512_x4(uint64_t* st, const uint8_t* const* blk, size_t nblocks) {
  Sha512x4::compress(st, blk, nblocks);
}

}  // namespace

const Kernel<uint32_t> kAvx2Sha256 = {sha256_x8, 8};
const Kernel<uint64_t> kAvx2Sha512 = {sha512_x4, 4};

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
