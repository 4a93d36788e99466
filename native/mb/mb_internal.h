// Internal declarations shared by the multi-buffer sources (not installed).
#ifndef KMS_HMAC_MB_INTERNAL_H_
#define KMS_HMAC_MB_INTERNAL_H_

#include <cstddef>
#include <cstdint>

// The AVX2 kernels need GCC/Clang per-function target attributes and x86-64.
// Elsewhere (other arches, MSVC) the multi-buffer path simply does not exist.
// -DKMS_HMAC_MB_DISABLE compiles it out on x86-64 too (and is how the
// non-x86 build of this code is checked).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(KMS_HMAC_MB_DISABLE)
#define KMS_HMAC_MB_X86 1
#else
#define KMS_HMAC_MB_X86 0
#endif

namespace kmshmac {
namespace mb {
namespace detail {

// FIPS 180-4 section 4.2.2 / 4.2.3 round constants.
extern const uint32_t kK256[64];
extern const uint64_t kK512[80];

#if KMS_HMAC_MB_X86
// Lane-transposed state: st[w][lane] is word w (a..h) of lane `lane`.
// blk[lane] points at 64 (SHA-256) / 128 (SHA-512) readable bytes.
// Only call after the CPU/OS were found to support AVX2.
void sha256_x8_avx2(uint32_t st[8][8], const uint8_t* const blk[8]);
void sha512_x4_avx2(uint64_t st[8][4], const uint8_t* const blk[4]);
// SHA-NI, 2 messages interleaved. Lane-major state: st[s][w] is word w of
// stream s. Only call after the CPU was found to support SHA and SSE4.1.
void sha256_x2_shani(uint32_t st[2][8], const uint8_t* const blk[2]);
#endif

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_INTERNAL_H_
