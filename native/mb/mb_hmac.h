// Multi-buffer ("multi-lane") HMAC-SHA-2 for batches.
//
// One SIMD register holds the same state word of several independent
// messages, so one pass of the SHA-2 rounds advances 8 SHA-256 messages
// (AVX2, 8 x 32-bit lanes) or 4 SHA-512 messages (AVX2, 4 x 64-bit lanes);
// or, with SHA-NI, 2 SHA-256 messages are interleaved in one instruction
// stream so the SHA256RNDS2 latency chain of one hides behind the other.
// Written from FIPS 180-4; no code is taken from OpenSSL, isa-l or others.
//
// This layer knows nothing about N-API or OpenSSL, so test_mb.cc can test it
// standalone against a scalar reference. The caller (the addon's batch path)
// passes the key handle's precomputed chaining values after the ipad/opad
// block, and the message spans.
//
// AVX-512 (16 x SHA-256 / 8 x SHA-512 lanes) is deliberately NOT implemented:
// the development machine (AMD Zen 3) cannot execute AVX-512 and no emulator
// was available, and untested crypto code must not be dispatched to.
// Path::Avx512 exists so KMS_HMAC_SIMD=avx512 can be parsed and reported as
// unavailable.
#ifndef KMS_HMAC_MB_HMAC_H_
#define KMS_HMAC_MB_HMAC_H_

#include <cstddef>
#include <cstdint>

namespace kmshmac {
namespace mb {

// Off: OpenSSL one message at a time (the addon's own loop).
// Avx2: SHA-224/256 in 8 AVX2 lanes, SHA-384/512 in 4 AVX2 lanes.
// ShaNi: SHA-224/256 as 2 interleaved SHA-NI streams (beats both OpenSSL's
//   single stream and the AVX2 lanes where SHA-NI exists); SHA-384/512 in the
//   4 AVX2 lanes when the CPU has AVX2, else OpenSSL.
// Avx512: reserved, not implemented (see above).
enum class Path { Off, Avx2, ShaNi, Avx512 };

// The path this process uses: the best the CPU and OS support, unless env
// KMS_HMAC_SIMD=off|avx2|shani|avx512 forces one. Forcing a path the machine (or
// this build) cannot run yields Off; detect_reason() says why. Computed once.
Path detect();
// Human-readable reason for detect()'s answer (static storage).
const char* detect_reason();
// "off" | "avx2" | "shani" | "avx512".
const char* path_name(Path);
// True when `p` can run here (Off always can; it means "use OpenSSL").
bool path_available(Path p);
// Parses "off"/"avx2"/"shani"/"avx512"; returns false for anything else.
bool parse_path(const char* s, Path* out);

struct Span {
  const uint8_t* data;
  size_t len;
};

// Number of lanes a path hashes at once (0: none here).
size_t lanes_sha256(Path);
size_t lanes_sha512(Path);

// HMAC for spans[0..n): MAC i is written at out + i*out_len.
// inner/outer: chaining values after compressing (key ^ ipad) / (key ^ opad),
// i.e. after one block (64 bytes for SHA-224/256, 128 for SHA-384/512).
// out_len: 28 (SHA-224) or 32 (SHA-256); 48 (SHA-384) or 64 (SHA-512). It
// is also the inner digest length fed to the outer hash, which is what makes
// SHA-224/384 correct given their IVs are already folded into the states.
// Returns false (and writes nothing) if the path is Off/unavailable or
// out_len is invalid. n == 0 is a no-op returning true. Never reads past
// data + len of any span.
bool hmac_sha256_batch(Path, const uint32_t inner[8], const uint32_t outer[8], size_t out_len,
                       const Span* spans, size_t n, uint8_t* out);
bool hmac_sha512_batch(Path, const uint64_t inner[8], const uint64_t outer[8], size_t out_len,
                       const Span* spans, size_t n, uint8_t* out);

// Dispatch policy measured by bench/simd.js: should a batch of `n` messages
// totalling `total_bytes` go to the multi-buffer path `p` rather than to
// OpenSSL one message at a time? `sha512` selects the SHA-384/512 family.
bool worth_it(Path p, bool sha512, size_t n, size_t total_bytes);

}  // namespace mb
}  // namespace kmshmac

#endif  // KMS_HMAC_MB_HMAC_H_
