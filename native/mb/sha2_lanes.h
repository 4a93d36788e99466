// The multi-lane SHA-256 / SHA-512 compression, written once from FIPS 180-4
// (sections 4.1.2, 4.1.3, 6.2.2 and 6.4.2) and generic over the lane width:
// one vector holds the same state word of L independent messages, so each
// operation below advances L messages at once.
//
// How it is instantiated: an instruction set's translation unit
// (lanes_sse2.cc, lanes_avx2.cc, lanes_avx512.cc) defines MB_TARGET (a
// GCC/Clang target attribute string), includes this file and instantiates
// Lanes<...> at its natural width, optionally with faster operations for its
// ISA. Every function here carries target(MB_TARGET), so only the kernel is
// compiled for that ISA; the rest of the addon stays baseline x86-64 and
// loads on any CPU. Everything sits in an anonymous namespace: each ISA's
// translation unit owns its copy, so the linker can never merge (ODR) an
// AVX-512 build of an inline function into code running on another CPU.
//
// The vectors are GCC/Clang vector extensions (vector_size), so +, ^, &, >>
// are lane-wise and the compiler picks the instructions: on AVX-512, GCC
// turns the rotate idiom into vprord/vprorq on its own, but the AVX-512
// instantiation states vprord/vprorq and vpternlog (Ch, Maj, 3-way xor)
// explicitly so the code does not depend on that pattern matching.
#ifndef MB_TARGET
#error "define MB_TARGET (the instruction set's target attribute) before including sha2_lanes.h"
#endif

#include <cstddef>
#include <cstdint>
#include <utility>

#include "mb_internal.h"

#define MB_FN __attribute__((always_inline, target(MB_TARGET))) inline

namespace kmshmac {
namespace mb {
namespace detail {
namespace {

// FIPS 180-4 parameters of the two compression functions.
struct Sha256Params {
  using W = uint32_t;
  static constexpr size_t kRounds = 64, kBlock = 64;
  static constexpr const uint32_t* K = kK256;
  // Rotations of (4.4)-(4.7): Σ0, Σ1, σ0 (+ shift), σ1 (+ shift).
  static constexpr int kS0a = 2, kS0b = 13, kS0c = 22;
  static constexpr int kS1a = 6, kS1b = 11, kS1c = 25;
  static constexpr int ks0a = 7, ks0b = 18, ks0shr = 3;
  static constexpr int ks1a = 17, ks1b = 19, ks1shr = 10;
};
struct Sha512Params {
  using W = uint64_t;
  static constexpr size_t kRounds = 80, kBlock = 128;
  static constexpr const uint64_t* K = kK512;
  // (4.10)-(4.13).
  static constexpr int kS0a = 28, kS0b = 34, kS0c = 39;
  static constexpr int kS1a = 14, kS1b = 18, kS1c = 41;
  static constexpr int ks0a = 1, ks0b = 8, ks0shr = 7;
  static constexpr int ks1a = 19, ks1b = 61, ks1shr = 6;
};

// L lanes of W-bit words and the operations the rounds need, in plain
// vector-extension C++. An ISA may derive from this and replace any of them
// (static members: the derived class's version hides the base's).
// kByteShuffle: the ISA has a byte shuffle (pshufb), so byte swaps and
// rotations by whole bytes are one instruction; without it (SSE2) they are
// shifts and masks, because a compiler-lowered byte shuffle is scalar code.
template <typename W_, size_t L_, bool kByteShuffle>
struct GenericLanes {
  using W = W_;
  static constexpr size_t L = L_;
  static constexpr int kBits = 8 * sizeof(W);
  static constexpr size_t kBytes = sizeof(W) * L;
  typedef W V __attribute__((vector_size(kBytes)));
  typedef uint8_t Bytes __attribute__((vector_size(kBytes)));

  // The low s bits of every 2s-bit group of a word.
  static constexpr W LowHalves(int s) {
    W m = 0;
    for (int b = 0; b < kBits; b += 2 * s) m |= ((W(1) << s) - 1) << b;
    return m;
  }
  // Byte j of each word comes from byte src(j) of the same word.
  static constexpr int BswapSrc(size_t i) {
    return static_cast<int>((i & ~(sizeof(W) - 1)) + (sizeof(W) - 1) - (i & (sizeof(W) - 1)));
  }
  template <int N>
  static constexpr int RorSrc(size_t i) {  // rotate right by N bits, N a multiple of 8
    return static_cast<int>((i & ~(sizeof(W) - 1)) + ((i + N / 8) & (sizeof(W) - 1)));
  }
  template <size_t... I>
  static MB_FN V BswapShuffle(V x, std::index_sequence<I...>) {
    return (V)__builtin_shufflevector((Bytes)x, (Bytes)x, BswapSrc(I)...);
  }
  template <int N, size_t... I>
  static MB_FN V RorShuffle(V x, std::index_sequence<I...>) {
    return (V)__builtin_shufflevector((Bytes)x, (Bytes)x, RorSrc<N>(I)...);
  }

  // ROTR^N (FIPS 180-4 3.2).
  template <int N>
  static MB_FN V Ror(V x) {
    if constexpr (kByteShuffle && N % 8 == 0) {
      return RorShuffle<N>(x, std::make_index_sequence<kBytes>());
    } else {
      return (x >> N) | (x << (kBits - N));
    }
  }
  static MB_FN V Xor3(V a, V b, V c) { return a ^ b ^ c; }
  // Ch(e,f,g) = (e & f) ^ (~e & g), as g ^ (e & (f ^ g)): 3 operations.
  static MB_FN V Ch(V e, V f, V g) { return g ^ (e & (f ^ g)); }
  // Maj(a,b,c) = (a & b) ^ (a & c) ^ (b & c) = (a & b) | (c & (a | b)).
  static MB_FN V Maj(V a, V b, V c) { return (a & b) | (c & (a | b)); }
  // Big-endian words (the message) to host order.
  static MB_FN V Bswap(V x) {
    if constexpr (kByteShuffle) {
      return BswapShuffle(x, std::make_index_sequence<kBytes>());
    } else {
      // Swap halves, then quarters, ... down to bytes.
#pragma GCC unroll 3
      for (int s = kBits / 2; s >= 8; s /= 2) x = ((x & LowHalves(s)) << s) | ((x >> s) & LowHalves(s));
      return x;
    }
  }
  static MB_FN V Load(const void* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  }
  static MB_FN void Store(void* p, V v) { __builtin_memcpy(p, &v, sizeof v); }
};

// The shuffles of the transposing load, as index lists for
// __builtin_shufflevector over two n-element vectors a (indices 0..n-1) and
// b (n..2n-1), with e elements per 128-bit chunk. Each one is a single
// instruction on x86 at any width, so the compiler needs no cross-lane tricks.
//
// zip: interleave a and b inside each 128-bit chunk (punpckl*/punpckh*).
constexpr int ZipSrc(size_t i, size_t e, size_t n, bool hi) {
  const size_t chunk = i / e, j = i % e;
  return static_cast<int>((j % 2 ? n : 0) + chunk * e + j / 2 + (hi ? e / 2 : 0));
}
// unzip: the even (or odd) 128-bit chunks of a, then those of b
// (shufi32x4 on AVX-512, vperm2i128 on AVX2).
constexpr int UnzipSrc(size_t i, size_t e, size_t n, bool odd) {
  const size_t chunks = n / e, chunk = i / e, j = i % e;
  const size_t from_b = chunk >= chunks / 2, k = chunk % (chunks / 2);
  return static_cast<int>((from_b ? n : 0) + (2 * k + (odd ? 1 : 0)) * e + j);
}

template <class S, class O>
struct Lanes {
  using W = typename S::W;
  using V = typename O::V;
  static constexpr size_t L = O::L;
  static constexpr size_t E = 16 / sizeof(W);  // words per 128-bit chunk
  static constexpr size_t C = L / E;           // 128-bit chunks per vector
  static_assert(L >= E && L % E == 0 && 16 % L == 0, "lane count must be a multiple of a 128-bit chunk, at most 16");

  template <bool Hi, size_t... I>
  static MB_FN V Zip(V a, V b, std::index_sequence<I...>) {
    return __builtin_shufflevector(a, b, ZipSrc(I, E, L, Hi)...);
  }
  template <bool Odd, size_t... I>
  static MB_FN V Unzip(V a, V b, std::index_sequence<I...>) {
    return __builtin_shufflevector(a, b, UnzipSrc(I, E, L, Odd)...);
  }

  // Loads the block at blk[l] + off of every lane l and transposes it:
  // w[j] = message word j (big-endian, FIPS 180-4 3.1) of every lane.
  //
  // The 16 words go L at a time (one "slab"): row l = L words of lane l.
  // An L x L transpose is done as (1) E x E transposes inside each 128-bit
  // chunk, for each group of E rows (log2 E rounds of zips: the perfect
  // shuffle), then (2) C x C transposes of whole chunks across the groups
  // (log2 C rounds of unzips).
  static MB_FN void LoadBlock(const uint8_t* const* blk, size_t off, V w[16]) {
    constexpr auto idx = std::make_index_sequence<L>();
#pragma GCC unroll 16
    for (size_t slab = 0; slab < 16 / L; slab++) {
      V r[L];
#pragma GCC unroll 16
      for (size_t l = 0; l < L; l++) r[l] = O::Load(blk[l] + off + slab * L * sizeof(W));
      // (1) Rows g..g+E-1: afterwards r[g + k], chunk c = word E*c + k of lanes g..g+E-1.
#pragma GCC unroll 16
      for (size_t g = 0; g < L; g += E) {
#pragma GCC unroll 4
        for (size_t round = 1; round < E; round *= 2) {
          V t[E];
#pragma GCC unroll 4
          for (size_t i = 0; i < E / 2; i++) {
            t[2 * i] = Zip<false>(r[g + i], r[g + i + E / 2], idx);
            t[2 * i + 1] = Zip<true>(r[g + i], r[g + i + E / 2], idx);
          }
#pragma GCC unroll 4
          for (size_t i = 0; i < E; i++) r[g + i] = t[i];
        }
      }
      // (2) For each k: chunk c of the vector for group g moves to chunk g of the vector for word E*c + k.
#pragma GCC unroll 4
      for (size_t k = 0; k < E; k++) {
        V c[C];
#pragma GCC unroll 4
        for (size_t g = 0; g < C; g++) c[g] = r[g * E + k];
        if constexpr (C > 1) {
#pragma GCC unroll 4
          for (size_t round = 1; round < C; round *= 2) {
            V t[C];
#pragma GCC unroll 4
            for (size_t i = 0; i < C / 2; i++) {
              t[i] = Unzip<false>(c[2 * i], c[2 * i + 1], idx);
              t[i + C / 2] = Unzip<true>(c[2 * i], c[2 * i + 1], idx);
            }
#pragma GCC unroll 4
            for (size_t i = 0; i < C; i++) c[i] = t[i];
          }
        }
#pragma GCC unroll 4
        for (size_t i = 0; i < C; i++) w[slab * L + E * i + k] = O::Bswap(c[i]);
      }
    }
  }

  // (4.4)-(4.7) / (4.10)-(4.13).
  static MB_FN V BigSigma0(V x) {
    return O::Xor3(O::template Ror<S::kS0a>(x), O::template Ror<S::kS0b>(x), O::template Ror<S::kS0c>(x));
  }
  static MB_FN V BigSigma1(V x) {
    return O::Xor3(O::template Ror<S::kS1a>(x), O::template Ror<S::kS1b>(x), O::template Ror<S::kS1c>(x));
  }
  static MB_FN V SmallSigma0(V x) {
    return O::Xor3(O::template Ror<S::ks0a>(x), O::template Ror<S::ks0b>(x), x >> S::ks0shr);
  }
  static MB_FN V SmallSigma1(V x) {
    return O::Xor3(O::template Ror<S::ks1a>(x), O::template Ror<S::ks1b>(x), x >> S::ks1shr);
  }

  struct Vars {
    V a, b, c, d, e, f, g, h;
  };

  // One round (6.2.2 / 6.4.2 step 3); wk = K[t] + W[t]. With
  // T1 = t + Σ1(e), t = h + wk + Ch(e,f,g), and T2 = Σ0(a) + Maj(a,b,c):
  // e' = d + T1 and a' = T1 + T2. The sums are grouped so that what is ready
  // early (h, wk, d) is added first and Σ1(e), Σ0(a) join last: from one
  // round's e to the next round's is then Σ1 and one addition. On AVX-512,
  // where each operation is one instruction, the rounds are bound by that
  // chain, and this grouping made a block 20% faster (Zen 5); narrower ISAs
  // are bound by throughput and do not mind. The variables shift by
  // assignment: once the rounds are unrolled these are register renames.
  static MB_FN void Round(Vars& v, V wk) {
    const V t = (v.h + wk) + O::Ch(v.e, v.f, v.g);
    const V s1 = BigSigma1(v.e);
    const V e = (v.d + t) + s1;
    const V a = ((t + O::Maj(v.a, v.b, v.c)) + s1) + BigSigma0(v.a);
    v.h = v.g;
    v.g = v.f;
    v.f = v.e;
    v.e = e;
    v.d = v.c;
    v.c = v.b;
    v.b = v.a;
    v.a = a;
  }

  // The message schedule (step 1) in a ring of 16: W[t] for t = 16i' + i
  // replaces W[t-16] at w[i].
  static MB_FN V NextW(V w[16], size_t i) {
    w[i] += SmallSigma1(w[(i + 14) & 15]) + w[(i + 9) & 15] + SmallSigma0(w[(i + 1) & 15]);
    return w[i];
  }

  static MB_FN void Compress(W* st, const uint8_t* const* blk, size_t nblocks) {
    V h[8];
#pragma GCC unroll 8
    for (size_t i = 0; i < 8; i++) h[i] = O::Load(st + i * L);
    for (size_t b = 0; b < nblocks; b++) {
      V w[16];
      LoadBlock(blk, b * S::kBlock, w);
      Vars v{h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]};
#pragma GCC unroll 16
      for (size_t i = 0; i < 16; i++) Round(v, w[i] + S::K[i]);
      for (size_t t = 16; t < S::kRounds; t += 16) {
#pragma GCC unroll 16
        for (size_t i = 0; i < 16; i++) Round(v, NextW(w, i) + S::K[t + i]);
      }
      // Step 4: H(i) = working variables + H(i-1).
      h[0] += v.a, h[1] += v.b, h[2] += v.c, h[3] += v.d;
      h[4] += v.e, h[5] += v.f, h[6] += v.g, h[7] += v.h;
    }
#pragma GCC unroll 8
    for (size_t i = 0; i < 8; i++) O::Store(st + i * L, h[i]);
  }
};

// The kernel entry point for Kernel<W>::compress: a real function (its
// address is taken), compiled for MB_TARGET like everything above.
template <class S, class O>
__attribute__((target(MB_TARGET))) void CompressLanes(typename S::W* st, const uint8_t* const* blk, size_t nblocks) {
  Lanes<S, O>::Compress(st, blk, nblocks);
}

}  // namespace
}  // namespace detail
}  // namespace mb
}  // namespace kmshmac
