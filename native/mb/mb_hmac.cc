// Multi-buffer HMAC-SHA-2: CPU/OS detection, the lane scheduler that feeds
// the SIMD kernels, and the dispatch policy. Baseline x86-64 code only; the
// AVX2 instructions live in sha256_avx2.cc / sha512_avx2.cc behind
// per-function target attributes and are reached only after detect().
#include "mb_hmac.h"

#include <cstdlib>
#include <cstring>

#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#include <cpuid.h>
#endif

namespace kmshmac {
namespace mb {
namespace detail {

// FIPS 180-4 4.2.2: first 32 bits of the fractional parts of the cube roots
// of the first 64 primes (derived with exact integer cube roots).
const uint32_t kK256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

// FIPS 180-4 4.2.3: first 64 bits of the same for the first 80 primes.
const uint64_t kK512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

}  // namespace detail

namespace {

// Messages interleaved by the SHA-NI kernel (see sha256_shani.cc). Why not
// 4: a 4-stream kernel needs more than the 16 XMM registers, spills to the
// stack, and measured anywhere from 10% faster to 30% slower than 2 streams
// depending on where the stack and the messages land (Zen 3); 2 streams run
// without spills and steadily.
constexpr size_t kShaNiStreams = 2;

struct Detected {
  Path path;
  const char* reason;
};

#if KMS_HMAC_MB_X86
uint64_t read_xcr0() {
  uint32_t eax, edx;
  // xgetbv with ecx=0, encoded as bytes so no -mxsave is needed.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool cpu_has_avx2_uncached() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx) return false;
  // XCR0 bits 1 (SSE) and 2 (AVX/YMM): the OS saves YMM state.
  if ((read_xcr0() & 0x6) != 0x6) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return (b >> 5) & 1;  // AVX2
}

bool cpu_has_shani_uncached() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
  if (!ssse3 || !sse41) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return (b >> 29) & 1;  // SHA extensions (XMM state only: no XCR0 bits beyond SSE needed)
}

// cpuid can trap to the hypervisor (microseconds): ask once per process.
bool cpu_has_avx2() {
  static const bool v = cpu_has_avx2_uncached();
  return v;
}
bool cpu_has_shani() {
  static const bool v = cpu_has_shani_uncached();
  return v;
}
#else
bool cpu_has_avx2() { return false; }
bool cpu_has_shani() { return false; }
#endif

Detected compute() {
  if (!KMS_HMAC_MB_X86) return {Path::Off, "no multi-buffer kernels in this build (architecture/compiler)"};
  const bool avx2 = cpu_has_avx2(), shani = cpu_has_shani();
  const char* env = std::getenv("KMS_HMAC_SIMD");
  if (env != nullptr && env[0] != '\0') {
    Path forced;
    if (!parse_path(env, &forced)) {
      return {Path::Off, "KMS_HMAC_SIMD has an unknown value (expected off|avx2|shani|avx512); using OpenSSL"};
    }
    if (forced == Path::Off) return {Path::Off, "forced off by KMS_HMAC_SIMD"};
    if (forced == Path::Avx512) {
      return {Path::Off,
              "KMS_HMAC_SIMD=avx512 requested, but this build has no AVX-512 lanes (they could not be "
              "tested on the development hardware); using OpenSSL"};
    }
    if (forced == Path::ShaNi) {
      if (!shani) return {Path::Off, "KMS_HMAC_SIMD=shani requested, but the CPU lacks SHA-NI; using OpenSSL"};
      return {Path::ShaNi, "forced shani by KMS_HMAC_SIMD"};
    }
    if (!avx2) return {Path::Off, "KMS_HMAC_SIMD=avx2 requested, but the CPU/OS lacks AVX2; using OpenSSL"};
    return {Path::Avx2, "forced avx2 by KMS_HMAC_SIMD"};
  }
  if (shani && avx2) return {Path::ShaNi, "SHA-NI and AVX2 detected (cpuid + xgetbv)"};
  if (shani) return {Path::ShaNi, "SHA-NI detected, no AVX2: SHA-384/512 stay on OpenSSL"};
  if (avx2) return {Path::Avx2, "AVX2 detected (cpuid + xgetbv), no SHA-NI"};
  return {Path::Off, "CPU/OS lacks AVX2 and SHA-NI"};
}

const Detected& detected() {
  static const Detected d = compute();  // thread-safe static init
  return d;
}

}  // namespace

Path detect() { return detected().path; }
const char* detect_reason() { return detected().reason; }

const char* path_name(Path p) {
  switch (p) {
    case Path::Avx2:
      return "avx2";
    case Path::Avx512:
      return "avx512";
    case Path::ShaNi:
      return "shani";
    case Path::Off:
    default:
      return "off";
  }
}

bool parse_path(const char* s, Path* out) {
  if (s == nullptr) return false;
  if (std::strcmp(s, "off") == 0) {
    *out = Path::Off;
  } else if (std::strcmp(s, "avx2") == 0) {
    *out = Path::Avx2;
  } else if (std::strcmp(s, "shani") == 0) {
    *out = Path::ShaNi;
  } else if (std::strcmp(s, "avx512") == 0) {
    *out = Path::Avx512;
  } else {
    return false;
  }
  return true;
}

bool path_available(Path p) {
  switch (p) {
    case Path::Off:
      return true;
    case Path::Avx2:
      return KMS_HMAC_MB_X86 && cpu_has_avx2();
    case Path::ShaNi:
      return KMS_HMAC_MB_X86 && cpu_has_shani();
    case Path::Avx512:  // not implemented: see mb_hmac.h
    default:
      return false;
  }
}

size_t lanes_sha256(Path p) {
  if (!path_available(p)) return 0;
  return p == Path::Avx2 ? 8 : p == Path::ShaNi ? kShaNiStreams : 0;
}
// The SHA-NI path has no SHA-512 instructions; it uses the AVX2 lanes when
// the CPU has them.
size_t lanes_sha512(Path p) {
  if (p != Path::Avx2 && p != Path::ShaNi) return 0;
  return path_available(p) && path_available(Path::Avx2) ? 4 : 0;
}

namespace {

#if KMS_HMAC_MB_X86
// A compression kernel and its state layout: word w of lane l lives at
// st[w * L + l] (word-major: the AVX2 lanes, one register per word) or at
// st[l * 8 + w] (lane-major: SHA-NI, one stream's state contiguous).
template <typename W_, size_t L_, size_t B_, bool LaneMajor, void (*C)(W_*, const uint8_t* const*)>
struct Kernel {
  using W = W_;
  static constexpr size_t L = L_, B = B_, LB = B_ == 64 ? 8 : 16;
  static size_t at(size_t w, size_t l) { return LaneMajor ? l * 8 + w : w * L + l; }
  static void compress(W* st, const uint8_t* const* blk) { C(st, blk); }
};

void avx2_256(uint32_t* st, const uint8_t* const* blk) {
  detail::sha256_x8_avx2(reinterpret_cast<uint32_t(*)[8]>(st), blk);
}
void avx2_512(uint64_t* st, const uint8_t* const* blk) {
  detail::sha512_x4_avx2(reinterpret_cast<uint64_t(*)[4]>(st), blk);
}
void shani_256(uint32_t* st, const uint8_t* const* blk) {
  detail::sha256_x2_shani(reinterpret_cast<uint32_t(*)[8]>(st), blk);
}
using Avx2Sha256 = Kernel<uint32_t, 8, 64, false, avx2_256>;
using Avx2Sha512 = Kernel<uint64_t, 4, 128, false, avx2_512>;
using ShaNiSha256 = Kernel<uint32_t, kShaNiStreams, 64, true, shani_256>;

inline void put_be(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void put_be(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}

// Stores the first n_words words of lane `lane` big-endian.
template <typename K>
void store_digest(const typename K::W* st, size_t lane, size_t n_words, uint8_t* out) {
  for (size_t w = 0; w < n_words; w++) put_be(out + w * sizeof(typename K::W), st[K::at(w, lane)]);
}

// Copies n bytes without reading outside [src, src+n) and without the
// `rep movs`/`rep stos` sequences compilers emit for variable-size
// memcpy/memset, whose start-up cost dominated small messages (perf).
// Overlapping fixed-size moves cover the ragged ends.
inline void copy_small(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 < n; i += 16) std::memcpy(dst + i, src + i, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
  }
}

// Writes the FIPS 180-4 5.1 padding for a message whose last `rem` bytes
// (rem < B) are at `src` and whose total length (including the key block
// already hashed) is `total_bytes`, into `dst` (2*B bytes). Returns the
// number of blocks (1 or 2). LB = length field size (8 or 16).
template <size_t B, size_t LB>
size_t pad_tail(const uint8_t* src, size_t rem, uint64_t total_bytes, uint8_t* dst) {
  const size_t blocks = rem + 1 + LB <= B ? 1 : 2;
  if (blocks == 1) {
    std::memset(dst, 0, B);  // constant sizes: plain vector stores
  } else {
    std::memset(dst, 0, 2 * B);
  }
  copy_small(dst, src, rem);
  dst[rem] = 0x80;
  // The bit length fits 64 bits for any in-memory message; the upper 64 bits
  // of SHA-512's 128-bit length field stay zero.
  put_be(dst + blocks * B - 8, static_cast<uint64_t>(total_bytes * 8));
  return blocks;
}

// The lane scheduler. Each lane walks one message: full blocks straight from
// the caller's memory, then 1-2 padded tail blocks from a lane-local buffer
// (so nothing past data+len is ever read). When a lane's message ends its
// inner digest is parked in `out` and the lane takes the next message,
// restarting from the inner state. Idle lanes hash a dummy block. Then a
// second pass runs the outer hash, one block per message, over the digests.
template <typename K>
void hmac_batch(const typename K::W inner[8], const typename K::W outer[8], size_t out_len, const Span* spans, size_t n,
                uint8_t* out) {
  using W = typename K::W;
  constexpr size_t L = K::L, B = K::B, LB = K::LB;
  struct Lane {
    const uint8_t* p;    // next full block in the caller's message
    size_t full_left;    // full blocks still to hash from p
    size_t tail_blocks;  // padded tail blocks (1 or 2)
    size_t tail_next;    // next tail block index
    size_t msg;          // message index
    bool active;
    alignas(32) uint8_t tail[2 * B];
  };
  alignas(32) static const uint8_t kDummy[B] = {};
  alignas(32) W st[8 * L];
  Lane lanes[L];
  const uint8_t* blk[L];
  const size_t out_words = out_len / sizeof(W);

  size_t next = 0;
  auto assign = [&](size_t l) {
    Lane& ln = lanes[l];
    if (next >= n) {
      ln.active = false;
      return;
    }
    const Span& s = spans[next];
    ln.msg = next++;
    ln.active = true;
    ln.p = s.data;
    ln.full_left = s.len / B;
    ln.tail_next = 0;
    const size_t rem = s.len % B;
    ln.tail_blocks = pad_tail<B, LB>(s.data + (s.len - rem), rem, static_cast<uint64_t>(s.len) + B, ln.tail);
    for (size_t w = 0; w < 8; w++) st[K::at(w, l)] = inner[w];
  };

  size_t active = 0;
  for (size_t l = 0; l < L; l++) {
    assign(l);
    active += lanes[l].active;
  }
  while (active > 0) {
    for (size_t l = 0; l < L; l++) {
      Lane& ln = lanes[l];
      if (!ln.active) {
        blk[l] = kDummy;
      } else if (ln.full_left > 0) {
        blk[l] = ln.p;
        ln.p += B;
        ln.full_left--;
      } else {
        blk[l] = ln.tail + B * ln.tail_next++;
      }
    }
    K::compress(st, blk);
    for (size_t l = 0; l < L; l++) {
      Lane& ln = lanes[l];
      if (ln.active && ln.full_left == 0 && ln.tail_next == ln.tail_blocks) {
        store_digest<K>(st, l, out_words, out + ln.msg * out_len);
        assign(l);
        active -= !ln.active;
      }
    }
  }

  // Outer hash: H(outer state, inner digest || padding), one block each.
  // The padding is the same for every message (out_len + 9 or 17 <= B):
  // lay it out once per lane, then copy in each digest.
  alignas(32) uint8_t ob[L][B];
  std::memset(ob, 0, sizeof ob);
  for (size_t l = 0; l < L; l++) {
    ob[l][out_len] = 0x80;
    put_be(ob[l] + B - 8, static_cast<uint64_t>((out_len + B) * 8));
  }
  for (size_t base = 0; base < n; base += L) {
    const size_t m = n - base < L ? n - base : L;
    for (size_t l = 0; l < L; l++) {
      for (size_t w = 0; w < 8; w++) st[K::at(w, l)] = outer[w];
      if (l < m) {
        copy_small(ob[l], out + (base + l) * out_len, out_len);
        blk[l] = ob[l];
      } else {
        blk[l] = kDummy;
      }
    }
    K::compress(st, blk);
    for (size_t l = 0; l < m; l++) store_digest<K>(st, l, out_words, out + (base + l) * out_len);
  }
}
#endif  // KMS_HMAC_MB_X86

}  // namespace

bool hmac_sha256_batch(Path p, const uint32_t inner[8], const uint32_t outer[8], size_t out_len,
                       const Span* spans, size_t n, uint8_t* out) {
  if (out_len != 28 && out_len != 32) return false;
  if (lanes_sha256(p) == 0) return false;
  if (n == 0) return true;
#if KMS_HMAC_MB_X86
  if (p == Path::ShaNi) {
    hmac_batch<ShaNiSha256>(inner, outer, out_len, spans, n, out);
  } else {
    hmac_batch<Avx2Sha256>(inner, outer, out_len, spans, n, out);
  }
  return true;
#else
  (void)inner, (void)outer, (void)spans, (void)out;
  return false;
#endif
}

bool hmac_sha512_batch(Path p, const uint64_t inner[8], const uint64_t outer[8], size_t out_len,
                       const Span* spans, size_t n, uint8_t* out) {
  if (out_len != 48 && out_len != 64) return false;
  if (lanes_sha512(p) == 0) return false;
  if (n == 0) return true;
#if KMS_HMAC_MB_X86
  hmac_batch<Avx2Sha512>(inner, outer, out_len, spans, n, out);
  return true;
#else
  (void)inner, (void)outer, (void)spans, (void)out;
  return false;
#endif
}

bool worth_it(Path p, bool sha512, size_t n, size_t total_bytes) {
  // Crossovers measured with `node bench/simd.js --sweep` on AMD Zen 3 (EPYC,
  // SHA-NI + AVX2), against OpenSSL 3.0 one message at a time:
  if (sha512) {
    // 4 AVX2 lanes: n=1 0.4-0.7x, n=2 0.7-0.9x, n=3 ~1.1x, n>=4 1.1-1.6x.
    return lanes_sha512(p) != 0 && n >= 3;
  }
  if (p == Path::ShaNi) {
    // 2 SHA-NI streams: n=1 0.8-0.96x (one stream idles); 64 B messages
    // break even at n=2-4 and win from 6 (1.1-1.3x); from 256 B on average
    // n >= 2 wins (1.1-1.6x).
    return n >= 6 || (n >= 2 && total_bytes >= 256 * n);
  }
  if (p == Path::Avx2) {
    // 8 AVX2 lanes lose to OpenSSL's SHA-NI code (0.6-0.8x on Zen 3), so
    // where SHA-NI exists SHA-256 stays on OpenSSL. Without SHA-NI, OpenSSL's
    // single stream is ~3-4x slower per byte than SHA-NI while the lanes are
    // not; n >= 8 (full lanes) is an estimate, not measured here: no AVX2
    // machine without SHA-NI was available.
    return !cpu_has_shani() && n >= 8;
  }
  return false;
}

}  // namespace mb
}  // namespace kmshmac
