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

const Kernel<uint32_t> kAvx2Sha256 = {CompressLanes<Sha256Params, GenericLanes<uint32_t, 8, true>>, 8};
const Kernel<uint64_t> kAvx2Sha512 = {CompressLanes<Sha512Params, GenericLanes<uint64_t, 4, true>>, 4};

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
