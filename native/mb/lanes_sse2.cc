// The generic lane kernel (sha2_lanes.h) instantiated for baseline x86-64
// (SSE2, which every x86-64 CPU has).
#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#define MB_TARGET "sse2"
#include "sha2_lanes.h"

namespace kmshmac {
namespace mb {
namespace detail {

// 4 lanes: measured faster than 8 or 16, which spill the 16 XMM registers.
const Kernel<uint32_t> kSse2Sha256 = {CompressLanes<Sha256Params, GenericLanes<uint32_t, 4, false>>, 4};
const Kernel<uint64_t> kSse2Sha512 = {CompressLanes<Sha512Params, GenericLanes<uint64_t, 2, false>>, 2};

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
