// Which multi-buffer paths can run here: the kernels each path has, what the
// CPU and OS support (cpuid + xgetbv), and a known-answer self-test of every
// kernel, run once per process (at addon load) before any batch can reach it.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mb_hmac.h"
#include "mb_internal.h"

#if KMS_HMAC_MB_X86
#include <cpuid.h>
#endif

namespace kmshmac {
namespace mb {
namespace detail {

namespace {

// Each path's kernels, by family (nullptr: none in this build or family).
struct PathKernels {
  const Kernel<uint32_t>* sha256;
  const Kernel<uint64_t>* sha512;
};

PathKernels KernelsOf(Path p) {
#if KMS_HMAC_MB_X86
  switch (p) {
    case Path::Sse2:
      return {&kSse2Sha256, &kSse2Sha512};
    case Path::Avx2:
      return {&kAvx2Sha256, &kAvx2Sha512};
    case Path::ShaNi:
      return {&kShaNiSha256, nullptr};  // SHA-NI has no SHA-512 instructions
    case Path::Avx512:
      return {&kAvx512Sha256, &kAvx512Sha512};
    default:
      break;
  }
#endif
  (void)p;
  return {nullptr, nullptr};
}

}  // namespace

template <>
const Kernel<uint32_t>* KernelFor<uint32_t>(Path p) {
  return KernelsOf(p).sha256;
}
template <>
const Kernel<uint64_t>* KernelFor<uint64_t>(Path p) {
  return KernelsOf(p).sha512;
}

// ---- Known-answer self-test -------------------------------------------------
//
// Per family, for both of its algorithms: the key setup (two single-block
// compressions of the ipad/opad block from the IV, every lane on the same
// block, so every lane must agree), then one batch of 35 messages, more than
// twice the widest lane count, so lanes refill while others are mid-message,
// with lengths that hit every padding case (0, 1-2 tail blocks, exact block
// multiples, several whole blocks). Message 0 is RFC 4231 test case 2, whose
// MAC must match the RFC byte for byte; the whole batch must match a
// fingerprint (FNV-1a over all MACs, order-sensitive, so swapped lanes fail
// too) computed with the scalar FIPS 180-4 reference in test_mb.cc, which
// checks these constants.

const size_t kSelfTestLengths[kSelfTestMessages] = {
    28,  0,   1,   3,   55,  56,  57,  63,  64,  65,  100, 111, 112, 113, 119, 120,  127,  128,
    129, 191, 192, 200, 239, 240, 255, 256, 257, 300, 383, 384, 400, 500, 640, 1000, 1500,
};

namespace {

const char kRfc4231Key[] = "Jefe";
const char kRfc4231Data[] = "what do ya want for nothing?";

}  // namespace

const uint64_t kSelfTestFingerprints[4] = {0xa1dae60c13dd7ee7ULL, 0x74c0d6fa2993d6a7ULL, 0x65cb5b2c5027f75fULL,
                                           0xae99c780f6f77d70ULL};

uint8_t SelfTestByte(size_t msg, size_t i) {
  if (msg == 0) return static_cast<uint8_t>(kRfc4231Data[i]);
  return static_cast<uint8_t>(msg * 167 + i * 31 + (i >> 7) * 13);
}

uint64_t Fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

namespace {

struct Expected {
  size_t out_len;
  const char* rfc4231_mac;  // RFC 4231 section 4.3 (test case 2)
};
// Index: 0 SHA-224, 1 SHA-256, 2 SHA-384, 3 SHA-512.
const Expected kExpected[4] = {
    {28, "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"},
    {32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {48, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
    {64,
     "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a3"
     "4d4a6b4b636e070a38bce737"},
};

bool EqualsHex(const uint8_t* p, size_t n, const char* hex) {
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    if (hex[2 * i] != kDigits[p[i] >> 4] || hex[2 * i + 1] != kDigits[p[i] & 15]) return false;
  }
  return hex[2 * n] == '\0';
}

template <typename W>
std::string RunSelfTest(const Kernel<W>& k, bool corrupt) {
  constexpr size_t B = 16 * sizeof(W);
  // The messages, each in its own exact-size allocation (ASan sees overreads).
  std::vector<std::vector<uint8_t>> msgs(kSelfTestMessages);
  Span spans[kSelfTestMessages];
  for (size_t m = 0; m < kSelfTestMessages; m++) {
    msgs[m].resize(kSelfTestLengths[m]);
    for (size_t i = 0; i < kSelfTestLengths[m]; i++) msgs[m][i] = SelfTestByte(m, i);
    spans[m] = {msgs[m].data(), msgs[m].size()};
  }

  for (int a = 0; a < 2; a++) {
    const int alg = (sizeof(W) == 8 ? 2 : 0) + a;
    const Expected& want = kExpected[alg];
    const std::string name = "HMAC-SHA-" + std::to_string(want.out_len * 8);
    const W* iv;
    if constexpr (sizeof(W) == 8) {
      iv = a == 0 ? kIV384 : kIV512;
    } else {
      iv = a == 0 ? kIV224 : kIV256;
    }
    // Key setup: (key || zeros) ^ ipad / opad, from the IV.
    W states[2][8];
    for (int side = 0; side < 2; side++) {
      uint8_t block[B];
      std::memset(block, side == 0 ? 0x36 : 0x5c, B);
      for (size_t i = 0; i < sizeof kRfc4231Key - 1; i++) block[i] ^= static_cast<uint8_t>(kRfc4231Key[i]);
      const uint8_t* blk[16];
      W st[8 * 16];
      for (size_t l = 0; l < k.lanes; l++) {
        blk[l] = block;
        for (size_t w = 0; w < 8; w++) st[w * k.lanes + l] = iv[w];
      }
      k.compress(st, blk, 1);
      for (size_t w = 0; w < 8; w++) {
        states[side][w] = st[w * k.lanes];
        for (size_t l = 1; l < k.lanes; l++) {
          if (st[w * k.lanes + l] != states[side][w]) return name + " key setup: the lanes disagree";
        }
      }
    }
    uint8_t macs[kSelfTestMessages * 64];
    HmacLanes(k, states[0], states[1], want.out_len, spans, kSelfTestMessages, macs);
    if (corrupt) macs[0] ^= 1;
    if (!EqualsHex(macs, want.out_len, want.rfc4231_mac)) return name + " of RFC 4231 test case 2 is wrong";
    if (Fnv1a(macs, kSelfTestMessages * want.out_len) != kSelfTestFingerprints[alg]) {
      return name + " of a batch of mixed lengths is wrong";
    }
  }
  return "";
}

}  // namespace

std::string SelfTest(const Kernel<uint32_t>& k, bool corrupt) { return RunSelfTest(k, corrupt); }
std::string SelfTest(const Kernel<uint64_t>& k, bool corrupt) { return RunSelfTest(k, corrupt); }

}  // namespace detail

namespace {

// ---- CPU and OS support ----------------------------------------------------

#if KMS_HMAC_MB_X86
struct Cpu {
  bool sse41 = false, ssse3 = false, avx2 = false, shani = false, avx512 = false;
  bool ymm_state = false, zmm_state = false;  // the OS saves YMM / ZMM registers (XCR0)
  char vendor[13] = "unknown";
  unsigned family = 0, model = 0;  // display family/model (with the extended fields)
};

uint64_t ReadXcr0() {
  uint32_t eax, edx;
  // xgetbv with ecx=0, encoded as bytes so no -mxsave is needed.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Cpu ProbeCpu() {
  Cpu cpu;
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    std::memcpy(cpu.vendor, &b, 4), std::memcpy(cpu.vendor + 4, &d, 4), std::memcpy(cpu.vendor + 8, &c, 4);
    cpu.vendor[12] = '\0';
  }
  if (!__get_cpuid(1, &a, &b, &c, &d)) return cpu;
  const unsigned base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
  cpu.family = base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family;
  cpu.model = base_family == 0x6 || base_family == 0xF ? (((a >> 16) & 0xF) << 4) | base_model : base_model;
  cpu.ssse3 = (c >> 9) & 1;
  cpu.sse41 = (c >> 19) & 1;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (osxsave && avx) {
    const uint64_t xcr0 = ReadXcr0();
    cpu.ymm_state = (xcr0 & 0x6) == 0x6;    // SSE + AVX (YMM upper halves)
    cpu.zmm_state = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM0-15 upper halves, ZMM16-31
  }
  if (__get_cpuid_max(0, nullptr) < 7) return cpu;
  __cpuid_count(7, 0, a, b, c, d);
  cpu.avx2 = cpu.ymm_state && ((b >> 5) & 1);
  cpu.shani = cpu.ssse3 && cpu.sse41 && ((b >> 29) & 1);             // XMM state only
  cpu.avx512 = cpu.zmm_state && ((b >> 16) & 1) && ((b >> 30) & 1);  // F and BW
  return cpu;
}

// cpuid can trap to the hypervisor (microseconds): ask once.
const Cpu& CpuFeatures() {
  static const Cpu cpu = ProbeCpu();
  return cpu;
}

// Why the CPU/OS cannot run `p`, or nullptr when it can.
const char* CpuRefuses(Path p) {
  const Cpu& cpu = CpuFeatures();
  switch (p) {
    case Path::Sse2:
      return nullptr;  // part of x86-64
    case Path::Avx2:
      if (!cpu.ymm_state) return "the CPU or OS lacks AVX (XCR0 YMM state)";
      return cpu.avx2 ? nullptr : "the CPU lacks AVX2";
    case Path::ShaNi:
      return cpu.shani ? nullptr : "the CPU lacks SHA-NI (with SSSE3 and SSE4.1)";
    case Path::Avx512:
      if (!cpu.zmm_state) return "the CPU or OS lacks AVX-512 (XCR0 opmask/ZMM state)";
      return cpu.avx512 ? nullptr : "the CPU lacks AVX-512 (F and BW)";
    default:
      return nullptr;
  }
}
#endif

// Paths whose self-test the user asked to fail (KMS_HMAC_SIMD_SELFTEST_FAIL,
// a comma-separated list): proves end to end that a failing path is never
// dispatched to and that the reason is reported.
bool ForcedToFail(Path p) {
  const char* env = std::getenv("KMS_HMAC_SIMD_SELFTEST_FAIL");
  if (env == nullptr) return false;
  const std::string list = std::string(",") + env + ",";
  return list.find(std::string(",") + PathName(p) + ",") != std::string::npos;
}

struct Statuses {
  std::string text[sizeof kAllPaths / sizeof kAllPaths[0]];
  bool ok[sizeof kAllPaths / sizeof kAllPaths[0]];  // text == "ok", asked per batch
  Statuses() {
    for (Path p : kAllPaths) {
      const int i = static_cast<int>(p);
      text[i] = Compute(p);
      ok[i] = text[i] == "ok";
    }
  }
  static std::string Compute(Path p) {
    if (p == Path::Off) return "ok";
    const detail::Kernel<uint32_t>* k256 = detail::KernelFor<uint32_t>(p);
    const detail::Kernel<uint64_t>* k512 = detail::KernelFor<uint64_t>(p);
    if (k256 == nullptr && k512 == nullptr) {
      return "not in this build (the SIMD kernels need x86-64 and GCC or Clang)";
    }
#if KMS_HMAC_MB_X86
    if (const char* why = CpuRefuses(p)) return why;
#endif
    const bool corrupt = ForcedToFail(p);
    std::string failed = k256 != nullptr ? detail::SelfTest(*k256, corrupt) : "";
    if (failed.empty() && k512 != nullptr) failed = detail::SelfTest(*k512, corrupt);
    if (failed.empty()) return "ok";
    return "self-test failed: " + failed + (corrupt ? " (forced by KMS_HMAC_SIMD_SELFTEST_FAIL)" : "");
  }
};

const Statuses& GetStatuses() {
  static const Statuses s;  // thread-safe static init
  return s;
}

}  // namespace

const char* CpuId() {
#if KMS_HMAC_MB_X86
  static const std::string id = [] {
    const Cpu& cpu = CpuFeatures();
    return std::string(cpu.vendor) + " family " + std::to_string(cpu.family) + " model " + std::to_string(cpu.model);
  }();
  return id.c_str();
#else
  return "unknown";
#endif
}

const char* AutoSkips(Path p) {
#if KMS_HMAC_MB_X86
  static const bool avx512_lowers_clock = [] {
    const Cpu& cpu = CpuFeatures();
    return std::strcmp(cpu.vendor, "GenuineIntel") == 0 && cpu.family == 6 && cpu.model == 0x55;
  }();
  if (p == Path::Avx512 && avx512_lowers_clock) {
    return "this Intel CPU (Skylake-SP/X, Cascade Lake or Cooper Lake) lowers the core clock for ~2 ms after any "
           "512-bit instruction; KMS_HMAC_SIMD=avx512 forces the path";
  }
#endif
  (void)p;
  return nullptr;
}

const char* PathStatus(Path p) { return GetStatuses().text[static_cast<int>(p)].c_str(); }

bool PathAvailable(Path p) { return GetStatuses().ok[static_cast<int>(p)]; }

size_t Lanes(Path p, Family f) {
  if (p == Path::Off || !PathAvailable(p)) return 0;
  if (f == Family::Sha256) {
    const detail::Kernel<uint32_t>* k = detail::KernelFor<uint32_t>(p);
    return k != nullptr ? k->lanes : 0;
  }
  const detail::Kernel<uint64_t>* k = detail::KernelFor<uint64_t>(p);
  return k != nullptr ? k->lanes : 0;
}

const char* PathName(Path p) {
  switch (p) {
    case Path::Sse2:
      return "sse2";
    case Path::Avx2:
      return "avx2";
    case Path::ShaNi:
      return "shani";
    case Path::Avx512:
      return "avx512";
    case Path::Off:
    default:
      return "off";
  }
}

bool ParsePath(const char* s, Path* out) {
  if (s == nullptr) return false;
  for (Path p : kAllPaths) {
    if (std::strcmp(s, PathName(p)) == 0) {
      *out = p;
      return true;
    }
  }
  return false;
}

}  // namespace mb
}  // namespace kmshmac
