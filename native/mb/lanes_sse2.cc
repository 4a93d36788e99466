// The generic lane kernel (sha2_lanes.h) instantiated for baseline x86-64
// (SSE2, which every x86-64 CPU has).
#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#define MB_TARGET "sse2"
#include "sha2_lanes.h"

#ifndef MB_SSE2_LANES
#define MB_SSE2_LANES 4
#endif

namespace kmshmac {
namespace mb {
namespace detail {
namespace {

using Sha256xN = Lanes<Sha256Params, GenericLanes<uint32_t, MB_SSE2_LANES, false>>;
using Sha512xN = Lanes<Sha512Params, GenericLanes<uint64_t, MB_SSE2_LANES / 2, false>>;

__attribute__((target(MB_TARGET))) void sha256_xn(uint32_t* st, const uint8_t* const* blk, size_t nblocks) {
  Sha256xN::compress(st, blk, nblocks);
}
__attribute__((target(MB_TARGET))) void sha512_xn(uint64_t* st, const uint8_t* const* blk, size_t nblocks) {
  Sha512xN::compress(st, blk, nblocks);
}

}  // namespace

const Kernel<uint32_t> kSse2Sha256 = {sha256_xn, MB_SSE2_LANES};
const Kernel<uint64_t> kSse2Sha512 = {sha512_xn, MB_SSE2_LANES / 2};

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
