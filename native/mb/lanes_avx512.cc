// The generic lane kernel (sha2_lanes.h) instantiated for AVX-512 (F + BW):
// 16 SHA-256 or 8 SHA-512 lanes in 512-bit registers.
//
// What AVX-512 brings beyond width: vprord/vprorq rotate in one instruction
// (AVX2 needs two shifts and an or), and vpternlog evaluates any function of
// three inputs in one instruction, which covers Ch, Maj and the three-way
// xor of every Σ/σ. That cuts a SHA-256 round from about 29 vector
// operations to 17. They are stated here with intrinsics rather than left to
// the compiler's pattern matching.
#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#include <immintrin.h>

#define MB_TARGET "avx512f,avx512bw"
#include "sha2_lanes.h"

namespace kmshmac {
namespace mb {
namespace detail {
namespace {

template <typename W, size_t L>
struct Avx512Ops : GenericLanes<W, L, true> {
  using V = typename GenericLanes<W, L, true>::V;
  static_assert(sizeof(V) == 64, "one zmm register per vector");

  // (The all-lanes mask form: GCC 12's plain _mm512_ror_epi* trips
  // -Wmaybe-uninitialized on its own _mm512_undefined_epi32.)
  template <int N>
  static MB_FN V Ror(V x) {
    if constexpr (sizeof(W) == 4) {
      return (V)_mm512_maskz_ror_epi32(static_cast<__mmask16>(-1), (__m512i)x, N);
    } else {
      return (V)_mm512_maskz_ror_epi64(static_cast<__mmask8>(-1), (__m512i)x, N);
    }
  }
  // vpternlog: imm8 is the truth table, indexed by (a << 2) | (b << 1) | c.
  template <int Table>
  static MB_FN V Ternlog(V a, V b, V c) {
    return (V)_mm512_ternarylogic_epi64((__m512i)a, (__m512i)b, (__m512i)c, Table);
  }
  static MB_FN V Xor3(V a, V b, V c) { return Ternlog<0x96>(a, b, c); }  // odd number of ones
  static MB_FN V Ch(V e, V f, V g) { return Ternlog<0xCA>(e, f, g); }    // e ? f : g
  static MB_FN V Maj(V a, V b, V c) { return Ternlog<0xE8>(a, b, c); }   // two or more ones
};

}  // namespace

const Kernel<uint32_t> kAvx512Sha256 = {CompressLanes<Sha256Params, Avx512Ops<uint32_t, 16>>, 16};
const Kernel<uint64_t> kAvx512Sha512 = {CompressLanes<Sha512Params, Avx512Ops<uint64_t, 8>>, 8};

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
