// Multi-buffer ("multi-lane") HMAC-SHA-2 for batches.
//
// One SIMD register holds the same state word of several independent
// messages, so one pass of the SHA-2 rounds advances L messages at once: the
// generic lane kernel (sha2_lanes.h) is instantiated for baseline x86-64
// (sse2), AVX2 and AVX-512. With SHA-NI, 2 SHA-256 messages are interleaved
// in one instruction stream instead (sha256_shani.cc). Written from FIPS
// 180-4; no code is taken from OpenSSL, isa-l or others.
//
// This layer knows nothing about N-API or OpenSSL, so test_mb.cc can test it
// standalone against a scalar reference. The caller (mb_dispatch.cc) passes
// the key handle's precomputed chaining values after the ipad/opad block, and
// the message spans; it also decides whether a batch goes to the lanes at all.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kmshmac {
namespace mb {

// Off:    OpenSSL one message at a time (the addon's own loop).
// Sse2:   the generic lanes compiled for baseline x86-64: 4 SHA-256 / 2
//         SHA-512 lanes in SSE2 registers. Runs on every x86-64 CPU, which is
//         what lets the shared kernel's logic be tested everywhere.
// Avx2:   8 SHA-256 / 4 SHA-512 lanes.
// ShaNi:  SHA-224/256 as 2 interleaved SHA-NI streams; it has no SHA-384/512
//         kernel (those stay on OpenSSL when this path is forced).
// Avx512: 16 SHA-256 / 8 SHA-512 lanes (AVX-512 F + BW).
enum class Path { Off, Sse2, Avx2, ShaNi, Avx512 };
constexpr Path kAllPaths[] = {Path::Off, Path::Sse2, Path::Avx2, Path::ShaNi, Path::Avx512};
// The most messages any path hashes at once (Avx512's SHA-256 lanes); every
// path's lane count divides it.
constexpr size_t kMaxLanes = 16;

// "off" | "sse2" | "avx2" | "shani" | "avx512".
const char* PathName(Path);
// The inverse of PathName; false for anything else.
bool ParsePath(const char* s, Path* out);

// "ok" when `p` can run here: this build has its kernels, the CPU and OS
// support its instructions, and each of its kernels gave the known answers
// of a self-test when first asked (at addon load). Otherwise the reason, e.g.
// "the CPU lacks AVX-512 (F, BW)" or "self-test failed: ...". Off is always
// "ok". Static storage; computed once per process, thread-safe.
const char* PathStatus(Path p);
bool PathAvailable(Path p);

// The CPU as cpuid reports it, e.g. "AuthenticAMD family 26 model 2"
// ("unknown" off x86), for reports.
const char* CpuId();

// Why automatic dispatch leaves `p` out although it can run here, or nullptr.
// The one case: AVX-512 on Intel Skylake-SP/X, Cascade Lake and Cooper Lake,
// which lower the whole core's clock for about 2 ms after any 512-bit
// instruction, even the light integer ones these kernels use. That slows
// every other thread on the core too, a cost no short calibration sees.
// Ice Lake, Sapphire Rapids and later run light 512-bit code at full clock,
// and AMD Zen 4/5 have no such licence levels, so there the calibration
// decides. KMS_HMAC_SIMD=avx512 still forces the path.
const char* AutoSkips(Path p);

// The two compression families: SHA-224/256 (64-byte blocks, 32-bit words)
// and SHA-384/512 (128-byte blocks, 64-bit words).
enum class Family { Sha256, Sha512 };

// Messages `p` hashes at once for the family; 0 when it has no kernel for
// it or cannot run here.
size_t Lanes(Path p, Family f);

struct Span {
  const uint8_t* data;
  size_t len;
};

// HMAC for spans[0..n): MAC i is written at out + i*out_len.
// inner/outer: chaining values after compressing (key ^ ipad) / (key ^ opad),
// i.e. after one block (64 bytes for SHA-224/256, 128 for SHA-384/512).
// out_len: 28 (SHA-224) or 32 (SHA-256); 48 (SHA-384) or 64 (SHA-512). It
// is also the inner digest length fed to the outer hash, which is what makes
// SHA-224/384 correct given their IVs are already folded into the states.
// Returns false (and writes nothing) if `p` has no kernel for the family here
// or out_len is invalid. n == 0 is a no-op returning true. Never reads past
// data + len of any span; messages may have any lengths, in any mix.
bool HmacSha256Batch(Path p, const uint32_t inner[8], const uint32_t outer[8], size_t out_len, const Span* spans,
                     size_t n, uint8_t* out);
bool HmacSha512Batch(Path p, const uint64_t inner[8], const uint64_t outer[8], size_t out_len, const Span* spans,
                     size_t n, uint8_t* out);

}  // namespace mb
}  // namespace kmshmac
