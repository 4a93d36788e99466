// Internal declarations shared by the multi-buffer sources (not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mb_hmac.h"

// The kernels need GCC/Clang vector extensions, per-function target
// attributes and x86-64. Elsewhere (other arches, MSVC) the multi-buffer path
// simply does not exist. -DKMS_HMAC_MB_DISABLE compiles it out on x86-64 too
// (and is how the non-x86 build of this code is checked).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(KMS_HMAC_MB_DISABLE)
#define KMS_HMAC_MB_X86 1
#else
#define KMS_HMAC_MB_X86 0
#endif

namespace kmshmac {
namespace mb {
namespace detail {

// FIPS 180-4 4.2.2 / 4.2.3 round constants.
extern const uint32_t kK256[64];
extern const uint64_t kK512[80];
// FIPS 180-4 5.3.2-5.3.5 initial hash values.
extern const uint32_t kIV224[8], kIV256[8];
extern const uint64_t kIV384[8], kIV512[8];

// A compression kernel: hashes `nblocks` consecutive blocks (64 bytes for
// SHA-256, 128 for SHA-512) of each of its `lanes` messages, lane l reading
// blk[l], blk[l] + B, ... The state is word-major: st[w * lanes + l] is word
// w (a..h) of lane l, so one vector load fetches one word of every lane.
// Every lane must point at nblocks readable blocks; a lane with no message of
// its own may point at another lane's blocks (its result is ignored).
template <typename W>
struct Kernel {
  void (*compress)(W* st, const uint8_t* const* blk, size_t nblocks);
  size_t lanes;
};

// The kernel `p` uses for the family of word type W (uint32_t: SHA-224/256,
// uint64_t: SHA-384/512), if this build has one, whether or not this CPU can
// run it (see PathAvailable). mb_paths.cc.
template <typename W>
const Kernel<W>* KernelFor(Path p);
template <>
const Kernel<uint32_t>* KernelFor<uint32_t>(Path p);
template <>
const Kernel<uint64_t>* KernelFor<uint64_t>(Path p);

// HMAC of spans[0..n) through kernel `k` (the scheduler, mb_scheduler.h),
// with the contract of HmacSha256Batch / HmacSha512Batch (mb_hmac.cc).
void HmacLanes(const Kernel<uint32_t>& k, const uint32_t inner[8], const uint32_t outer[8], size_t out_len,
               const Span* spans, size_t n, uint8_t* out);
void HmacLanes(const Kernel<uint64_t>& k, const uint64_t inner[8], const uint64_t outer[8], size_t out_len,
               const Span* spans, size_t n, uint8_t* out);

// Known-answer self-test of one kernel (mb_paths.cc), for both algorithms of
// its family: empty when every answer is right, else what went wrong.
// `corrupt` flips one bit of the computed answers (to test the failure path).
std::string SelfTest(const Kernel<uint32_t>& k, bool corrupt = false);
std::string SelfTest(const Kernel<uint64_t>& k, bool corrupt = false);
// The self-test's batch (test_mb.cc recomputes its answers with the scalar
// reference): message m has kSelfTestLengths[m] bytes, byte i being
// SelfTestByte(m, i); its fingerprint is Fnv1a() over all MACs in order.
constexpr size_t kSelfTestMessages = 35;
extern const size_t kSelfTestLengths[kSelfTestMessages];
uint8_t SelfTestByte(size_t msg, size_t i);
extern const uint64_t kSelfTestFingerprints[4];  // SHA-224, SHA-256, SHA-384, SHA-512
uint64_t Fnv1a(const uint8_t* p, size_t n);

#if KMS_HMAC_MB_X86
// One generic kernel (sha2_lanes.h), instantiated per instruction set:
// lanes_sse2.cc (baseline x86-64, runs on every x86-64 CPU), lanes_avx2.cc,
// lanes_avx512.cc. Call each only after the CPU and OS were found to support
// its instruction set (mb_paths.cc).
extern const Kernel<uint32_t> kSse2Sha256, kAvx2Sha256, kAvx512Sha256;
extern const Kernel<uint64_t> kSse2Sha512, kAvx2Sha512, kAvx512Sha512;
// SHA-NI, 2 messages interleaved (sha256_shani.cc): same interface, but a
// different technique (the SHA256RNDS2 instruction, not lanes of a vector).
extern const Kernel<uint32_t> kShaNiSha256;
#endif

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac
