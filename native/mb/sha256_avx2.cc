// SHA-256 compression, 8 independent messages at once in AVX2 registers
// (one 32-bit lane per message). Written from FIPS 180-4 section 6.2.2.
//
// Every function here carries target("avx2") instead of the build using a
// global -mavx2, so the addon still loads on CPUs without AVX2; callers only
// reach this code after mb::detect() confirmed AVX2 and the OS's YMM state.
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
  return _mm256_or_si256(_mm256_srli_epi32(x, N), _mm256_slli_epi32(x, 32 - N));
}
MB_INLINE __m256i add(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
MB_INLINE __m256i xor3(__m256i a, __m256i b, __m256i c) {
  return _mm256_xor_si256(_mm256_xor_si256(a, b), c);
}
// FIPS 180-4 (4.4)-(4.7).
MB_INLINE __m256i big_sigma0(__m256i x) { return xor3(ror<2>(x), ror<13>(x), ror<22>(x)); }
MB_INLINE __m256i big_sigma1(__m256i x) { return xor3(ror<6>(x), ror<11>(x), ror<25>(x)); }
MB_INLINE __m256i small_sigma0(__m256i x) {
  return xor3(ror<7>(x), ror<18>(x), _mm256_srli_epi32(x, 3));
}
MB_INLINE __m256i small_sigma1(__m256i x) {
  return xor3(ror<17>(x), ror<19>(x), _mm256_srli_epi32(x, 10));
}
// Ch(e,f,g) = (e & f) ^ (~e & g)   (4.2)
MB_INLINE __m256i ch(__m256i e, __m256i f, __m256i g) {
  return _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
}
// Maj(a,b,c) = (a & b) ^ (a & c) ^ (b & c) = (a & b) ^ (c & (a ^ b))   (4.3)
MB_INLINE __m256i maj(__m256i a, __m256i b, __m256i c) {
  return _mm256_xor_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_xor_si256(a, b)));
}

// Loads 32 bytes (8 big-endian words) at `off` of each lane's block and
// transposes them so that out[j] holds word j of all 8 lanes.
MB_INLINE void load_transpose(const uint8_t* const blk[8], size_t off, __m256i out[8]) {
  const __m256i bswap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,  //
                                         3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
  __m256i r[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i] + off));
  // r[i] = lane i: w0 w1 w2 w3 | w4 w5 w6 w7 (two 128-bit halves)
  __m256i t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);      // i:w0 i+1:w0 i:w1 i+1:w1 | same for w4,w5
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);  // w2,w3 | w6,w7
  }
  __m256i u[8];
  for (int g = 0; g < 8; g += 4) {
    u[g + 0] = _mm256_unpacklo_epi64(t[g + 0], t[g + 2]);  // 4 lanes of w0 | w4
    u[g + 1] = _mm256_unpackhi_epi64(t[g + 0], t[g + 2]);  // w1 | w5
    u[g + 2] = _mm256_unpacklo_epi64(t[g + 1], t[g + 3]);  // w2 | w6
    u[g + 3] = _mm256_unpackhi_epi64(t[g + 1], t[g + 3]);  // w3 | w7
  }
  for (int j = 0; j < 4; j++) {
    out[j] = _mm256_shuffle_epi8(_mm256_permute2x128_si256(u[j], u[j + 4], 0x20), bswap);
    out[j + 4] = _mm256_shuffle_epi8(_mm256_permute2x128_si256(u[j], u[j + 4], 0x31), bswap);
  }
}

}  // namespace

// One round, FIPS 180-4 6.2.2 step 3, with the working variables renamed
// instead of shifted: d += T1; h = T1 + T2.
#define MB_R256(a, b, c, d, e, f, g, h, i)                                                      \
  do {                                                                                          \
    __m256i t1 = add(add(h, big_sigma1(e)),                                                     \
                     add(ch(e, f, g), add(_mm256_set1_epi32(static_cast<int>(kK256[r + (i)])), \
                                          w[(i)])));                                            \
    __m256i t2 = add(big_sigma0(a), maj(a, b, c));                                              \
    d = add(d, t1);                                                                             \
    h = add(t1, t2);                                                                            \
  } while (0)

// Message schedule (6.2.2 step 1) in a 16-entry ring: W[t] for t >= 16.
#define MB_W256(i)                                                                      \
  w[(i)] = add(add(small_sigma1(w[((i) + 14) & 15]), w[((i) + 9) & 15]),                \
               add(small_sigma0(w[((i) + 1) & 15]), w[(i)]))

MB_AVX2 void sha256_x8_avx2(uint32_t st[8][8], const uint8_t* const blk[8]) {
  __m256i w[16];
  load_transpose(blk, 0, w);
  load_transpose(blk, 32, w + 8);

  __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[0]));
  __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[1]));
  __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[2]));
  __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[3]));
  __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[4]));
  __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[5]));
  __m256i g = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[6]));
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st[7]));

  for (int r = 0; r < 64; r += 16) {
    if (r > 0) {
      for (int i = 0; i < 16; i++) MB_W256(i);
    }
    MB_R256(a, b, c, d, e, f, g, h, 0);
    MB_R256(h, a, b, c, d, e, f, g, 1);
    MB_R256(g, h, a, b, c, d, e, f, 2);
    MB_R256(f, g, h, a, b, c, d, e, 3);
    MB_R256(e, f, g, h, a, b, c, d, 4);
    MB_R256(d, e, f, g, h, a, b, c, 5);
    MB_R256(c, d, e, f, g, h, a, b, 6);
    MB_R256(b, c, d, e, f, g, h, a, 7);
    MB_R256(a, b, c, d, e, f, g, h, 8);
    MB_R256(h, a, b, c, d, e, f, g, 9);
    MB_R256(g, h, a, b, c, d, e, f, 10);
    MB_R256(f, g, h, a, b, c, d, e, 11);
    MB_R256(e, f, g, h, a, b, c, d, 12);
    MB_R256(d, e, f, g, h, a, b, c, 13);
    MB_R256(c, d, e, f, g, h, a, b, 14);
    MB_R256(b, c, d, e, f, g, h, a, 15);
  }

  // Step 4: H(i) = H(i-1) + working variables.
  __m256i* s = reinterpret_cast<__m256i*>(st);
  _mm256_storeu_si256(s + 0, add(a, _mm256_loadu_si256(s + 0)));
  _mm256_storeu_si256(s + 1, add(b, _mm256_loadu_si256(s + 1)));
  _mm256_storeu_si256(s + 2, add(c, _mm256_loadu_si256(s + 2)));
  _mm256_storeu_si256(s + 3, add(d, _mm256_loadu_si256(s + 3)));
  _mm256_storeu_si256(s + 4, add(e, _mm256_loadu_si256(s + 4)));
  _mm256_storeu_si256(s + 5, add(f, _mm256_loadu_si256(s + 5)));
  _mm256_storeu_si256(s + 6, add(g, _mm256_loadu_si256(s + 6)));
  _mm256_storeu_si256(s + 7, add(h, _mm256_loadu_si256(s + 7)));
}

#undef MB_R256
#undef MB_W256

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_X86
