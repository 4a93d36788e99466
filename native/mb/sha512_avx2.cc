// SHA-512 compression, 4 independent messages at once in AVX2 registers
// (one 64-bit lane per message). Written from FIPS 180-4 section 6.4.2.
// SHA-384 is the same compression with another IV (folded into the key
// handle's states) and a truncated output.
//
// AVX2 has no 64-bit rotate, so rotations are two shifts and an OR, except
// ROTR 8, which is one byte shuffle.
#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#include <immintrin.h>

#define MB_AVX2 __attribute__((target("avx2")))
#define MB_INLINE static inline __attribute__((always_inline, target("avx2")))

namespace kmshmac {
namespace mb {
namespace detail {
namespace {

template <int N>
MB_INLINE __m256i ror(__m256i x) {
  return _mm256_or_si256(_mm256_srli_epi64(x, N), _mm256_slli_epi64(x, 64 - N));
}
MB_INLINE __m256i ror8(__m256i x) {
  const __m256i rot8 = _mm256_setr_epi8(1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8,  //
                                        1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8);
  return _mm256_shuffle_epi8(x, rot8);
}
MB_INLINE __m256i add(__m256i a, __m256i b) { return _mm256_add_epi64(a, b); }
MB_INLINE __m256i xor3(__m256i a, __m256i b, __m256i c) {
  return _mm256_xor_si256(_mm256_xor_si256(a, b), c);
}
// FIPS 180-4 (4.10)-(4.13).
MB_INLINE __m256i big_sigma0(__m256i x) { return xor3(ror<28>(x), ror<34>(x), ror<39>(x)); }
MB_INLINE __m256i big_sigma1(__m256i x) { return xor3(ror<14>(x), ror<18>(x), ror<41>(x)); }
MB_INLINE __m256i small_sigma0(__m256i x) { return xor3(ror<1>(x), ror8(x), _mm256_srli_epi64(x, 7)); }
MB_INLINE __m256i small_sigma1(__m256i x) {
  return xor3(ror<19>(x), ror<61>(x), _mm256_srli_epi64(x, 6));
}
MB_INLINE __m256i ch(__m256i e, __m256i f, __m256i g) {
  return _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
}
MB_INLINE __m256i maj(__m256i a, __m256i b, __m256i c) {
  return _mm256_xor_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_xor_si256(a, b)));
}

// Loads 32 bytes (4 big-endian 64-bit words) at `off` of each lane's block;
// out[j] = word j of the 4 lanes.
MB_INLINE void load_transpose(const uint8_t* const blk[4], size_t off, __m256i out[4]) {
  const __m256i bswap = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,  //
                                         7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
  __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0] + off));
  __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1] + off));
  __m256i r2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[2] + off));
  __m256i r3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[3] + off));
  // r_i = lane i: q0 q1 | q2 q3
  __m256i t0 = _mm256_unpacklo_epi64(r0, r1);  // 0:q0 1:q0 | 0:q2 1:q2
  __m256i t1 = _mm256_unpackhi_epi64(r0, r1);  // 0:q1 1:q1 | 0:q3 1:q3
  __m256i t2 = _mm256_unpacklo_epi64(r2, r3);  // 2:q0 3:q0 | 2:q2 3:q2
  __m256i t3 = _mm256_unpackhi_epi64(r2, r3);
  out[0] = _mm256_shuffle_epi8(_mm256_permute2x128_si256(t0, t2, 0x20), bswap);
  out[2] = _mm256_shuffle_epi8(_mm256_permute2x128_si256(t0, t2, 0x31), bswap);
  out[1] = _mm256_shuffle_epi8(_mm256_permute2x128_si256(t1, t3, 0x20), bswap);
  out[3] = _mm256_shuffle_epi8(_mm256_permute2x128_si256(t1, t3, 0x31), bswap);
}

}  // namespace

#define MB_R512(a, b, c, d, e, f, g, h, i)                                                           \
  do {                                                                                               \
    __m256i t1 = add(add(h, big_sigma1(e)),                                                          \
                     add(ch(e, f, g),                                                                \
                         add(_mm256_set1_epi64x(static_cast<long long>(kK512[r + (i)])), w[(i)]))); \
    __m256i t2 = add(big_sigma0(a), maj(a, b, c));                                                   \
    d = add(d, t1);                                                                                  \
    h = add(t1, t2);                                                                                 \
  } while (0)

#define MB_W512(i)                                                                      \
  w[(i)] = add(add(small_sigma1(w[((i) + 14) & 15]), w[((i) + 9) & 15]),                \
               add(small_sigma0(w[((i) + 1) & 15]), w[(i)]))

MB_AVX2 void sha512_x4_avx2(uint64_t st[8][4], const uint8_t* const blk[4]) {
  __m256i w[16];
  for (int k = 0; k < 4; k++) load_transpose(blk, 32 * static_cast<size_t>(k), w + 4 * k);

  __m256i* s = reinterpret_cast<__m256i*>(st);
  __m256i a = _mm256_loadu_si256(s + 0);
  __m256i b = _mm256_loadu_si256(s + 1);
  __m256i c = _mm256_loadu_si256(s + 2);
  __m256i d = _mm256_loadu_si256(s + 3);
  __m256i e = _mm256_loadu_si256(s + 4);
  __m256i f = _mm256_loadu_si256(s + 5);
  __m256i g = _mm256_loadu_si256(s + 6);
  __m256i h = _mm256_loadu_si256(s + 7);

  for (int r = 0; r < 80; r += 16) {
    if (r > 0) {
      for (int i = 0; i < 16; i++) MB_W512(i);
    }
    MB_R512(a, b, c, d, e, f, g, h, 0);
    MB_R512(h, a, b, c, d, e, f, g, 1);
    MB_R512(g, h, a, b, c, d, e, f, 2);
    MB_R512(f, g, h, a, b, c, d, e, 3);
    MB_R512(e, f, g, h, a, b, c, d, 4);
    MB_R512(d, e, f, g, h, a, b, c, 5);
    MB_R512(c, d, e, f, g, h, a, b, 6);
    MB_R512(b, c, d, e, f, g, h, a, 7);
    MB_R512(a, b, c, d, e, f, g, h, 8);
    MB_R512(h, a, b, c, d, e, f, g, 9);
    MB_R512(g, h, a, b, c, d, e, f, 10);
    MB_R512(f, g, h, a, b, c, d, e, 11);
    MB_R512(e, f, g, h, a, b, c, d, 12);
    MB_R512(d, e, f, g, h, a, b, c, 13);
    MB_R512(c, d, e, f, g, h, a, b, 14);
    MB_R512(b, c, d, e, f, g, h, a, 15);
  }

  _mm256_storeu_si256(s + 0, add(a, _mm256_loadu_si256(s + 0)));
  _mm256_storeu_si256(s + 1, add(b, _mm256_loadu_si256(s + 1)));
  _mm256_storeu_si256(s + 2, add(c, _mm256_loadu_si256(s + 2)));
  _mm256_storeu_si256(s + 3, add(d, _mm256_loadu_si256(s + 3)));
  _mm256_storeu_si256(s + 4, add(e, _mm256_loadu_si256(s + 4)));
  _mm256_storeu_si256(s + 5, add(f, _mm256_loadu_si256(s + 5)));
  _mm256_storeu_si256(s + 6, add(g, _mm256_loadu_si256(s + 6)));
  _mm256_storeu_si256(s + 7, add(h, _mm256_loadu_si256(s + 7)));
}

#undef MB_R512
#undef MB_W512

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
