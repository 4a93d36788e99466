// Standalone test harness for the multi-buffer HMAC lanes (no N-API, no
// OpenSSL). A plain scalar SHA-2/HMAC written from FIPS 180-4 / RFC 2104
// serves as the oracle; it is itself checked against RFC 4231 vectors.
// Build and run: scripts/test-mb.sh (add --asan for sanitizers).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mb_hmac.h"
#include "mb_internal.h"

using kmshmac::mb::Family;
using kmshmac::mb::Path;
using kmshmac::mb::Span;
using kmshmac::mb::detail::Kernel;
using kmshmac::mb::detail::kIV224;
using kmshmac::mb::detail::kIV256;
using kmshmac::mb::detail::kIV384;
using kmshmac::mb::detail::kIV512;
using kmshmac::mb::detail::kK256;
using kmshmac::mb::detail::kK512;

// The generic kernel (sha2_lanes.h) at the AVX-512 and AVX2 lane counts,
// compiled for baseline x86-64: its wide transposes and the scheduler at 16
// lanes are then proven on every x86-64 CPU, not only where AVX-512 runs.
// (Slow, test-only: the shipped baseline instantiation is 4/2 lanes.)
#if KMS_HMAC_MB_X86
// (scripts/test-mb.sh builds this file with -Wno-psabi: the wide vectors
// pass only between always_inline functions, but GCC notes the AVX calling
// convention for 256/512-bit vectors in code compiled without AVX.)
#define MB_TARGET "sse2"
#include "sha2_lanes.h"
namespace {
using kmshmac::mb::detail::CompressLanes;
using kmshmac::mb::detail::GenericLanes;
using kmshmac::mb::detail::Sha256Params;
using kmshmac::mb::detail::Sha512Params;
const Kernel<uint32_t> kGenericSha256x16 = {CompressLanes<Sha256Params, GenericLanes<uint32_t, 16, false>>, 16};
const Kernel<uint64_t> kGenericSha512x8 = {CompressLanes<Sha512Params, GenericLanes<uint64_t, 8, false>>, 8};
const Kernel<uint32_t> kGenericSha256x8 = {CompressLanes<Sha256Params, GenericLanes<uint32_t, 8, false>>, 8};
const Kernel<uint64_t> kGenericSha512x4 = {CompressLanes<Sha512Params, GenericLanes<uint64_t, 4, false>>, 4};
}  // namespace
#endif

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                                        \
  do {                                                          \
    if (!(cond)) {                                              \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                        \
      std::fprintf(stderr, "\n");                               \
      if (++g_failures > 20) std::exit(1);                      \
    }                                                           \
  } while (0)

// ---- scalar reference ------------------------------------------------------
uint32_t Rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
uint64_t Rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

void RefCompress256(uint32_t h[8], const uint8_t* p) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t(p[4 * t]) << 24) | (uint32_t(p[4 * t + 1]) << 16) | (uint32_t(p[4 * t + 2]) << 8) | p[4 * t + 3];
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = Rotr32(w[t - 15], 7) ^ Rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = Rotr32(w[t - 2], 17) ^ Rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 64; t++) {
    uint32_t t1 = hh + (Rotr32(e, 6) ^ Rotr32(e, 11) ^ Rotr32(e, 25)) + ((e & f) ^ (~e & g)) + kK256[t] + w[t];
    uint32_t t2 = (Rotr32(a, 2) ^ Rotr32(a, 13) ^ Rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void RefCompress512(uint64_t h[8], const uint8_t* p) {
  uint64_t w[80];
  for (int t = 0; t < 16; t++) {
    w[t] = 0;
    for (int b = 0; b < 8; b++) w[t] = (w[t] << 8) | p[8 * t + b];
  }
  for (int t = 16; t < 80; t++) {
    uint64_t s0 = Rotr64(w[t - 15], 1) ^ Rotr64(w[t - 15], 8) ^ (w[t - 15] >> 7);
    uint64_t s1 = Rotr64(w[t - 2], 19) ^ Rotr64(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 80; t++) {
    uint64_t t1 = hh + (Rotr64(e, 14) ^ Rotr64(e, 18) ^ Rotr64(e, 41)) + ((e & f) ^ (~e & g)) + kK512[t] + w[t];
    uint64_t t2 = (Rotr64(a, 28) ^ Rotr64(a, 34) ^ Rotr64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

// Algorithm description: bits 224/256/384/512.
struct Alg {
  int bits;
  size_t Block() const { return bits <= 256 ? 64 : 128; }
  size_t OutLen() const { return static_cast<size_t>(bits / 8); }
  bool Wide() const { return bits > 256; }
};

// Generic streaming hash on top of the compressions (state words stored as
// uint64_t for both families to keep the harness short).
struct RefHash {
  Alg alg;
  uint32_t h32[8];
  uint64_t h64[8];
  std::vector<uint8_t> buf;
  uint64_t total = 0;
  explicit RefHash(Alg a) : alg(a) {
    if (a.bits == 224) std::memcpy(h32, kIV224, sizeof h32);
    if (a.bits == 256) std::memcpy(h32, kIV256, sizeof h32);
    if (a.bits == 384) std::memcpy(h64, kIV384, sizeof h64);
    if (a.bits == 512) std::memcpy(h64, kIV512, sizeof h64);
  }
  void Block(const uint8_t* p) {
    if (alg.Wide()) RefCompress512(h64, p);
    else RefCompress256(h32, p);
  }
  void Update(const uint8_t* p, size_t n) {
    total += n;
    buf.insert(buf.end(), p, p + n);
    size_t B = alg.Block(), off = 0;
    for (; buf.size() - off >= B; off += B) Block(buf.data() + off);
    buf.erase(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(off));
  }
  std::vector<uint8_t> Final() {
    size_t B = alg.Block(), lb = alg.Wide() ? 16 : 8;
    uint64_t bits = total * 8;
    std::vector<uint8_t> pad(1, 0x80);
    while ((buf.size() + pad.size() + lb) % B) pad.push_back(0);
    for (size_t i = 0; i < lb; i++) pad.push_back(i + 8 < lb ? 0 : uint8_t(bits >> (8 * (lb - 1 - i))));
    std::vector<uint8_t> tail = buf;
    tail.insert(tail.end(), pad.begin(), pad.end());
    for (size_t off = 0; off < tail.size(); off += B) Block(tail.data() + off);
    std::vector<uint8_t> out(alg.OutLen());
    for (size_t i = 0; i < out.size(); i++)
      out[i] = alg.Wide() ? uint8_t(h64[i / 8] >> (56 - 8 * (i % 8))) : uint8_t(h32[i / 4] >> (24 - 8 * (i % 4)));
    return out;
  }
};

std::vector<uint8_t> RefDigest(Alg a, const uint8_t* p, size_t n) {
  RefHash h(a);
  h.Update(p, n);
  return h.Final();
}

// HMAC key setup (RFC 2104): returns the states after the ipad/opad block.
struct RefKey {
  Alg alg;
  uint32_t in32[8], out32[8];
  uint64_t in64[8], out64[8];
  std::vector<uint8_t> k;
  RefKey(Alg a, const std::vector<uint8_t>& key) : alg(a) {
    size_t B = a.Block();
    k = key.size() > B ? RefDigest(a, key.data(), key.size()) : key;
    k.resize(B, 0);
    std::vector<uint8_t> ip(B), op(B);
    for (size_t i = 0; i < B; i++) ip[i] = k[i] ^ 0x36, op[i] = k[i] ^ 0x5c;
    RefHash hi(a), ho(a);
    hi.Update(ip.data(), B);
    ho.Update(op.data(), B);
    std::memcpy(in32, hi.h32, sizeof in32), std::memcpy(out32, ho.h32, sizeof out32);
    std::memcpy(in64, hi.h64, sizeof in64), std::memcpy(out64, ho.h64, sizeof out64);
  }
  std::vector<uint8_t> Mac(const uint8_t* m, size_t n) const {
    size_t B = alg.Block();
    std::vector<uint8_t> ip(B), op(B);
    for (size_t i = 0; i < B; i++) ip[i] = k[i] ^ 0x36, op[i] = k[i] ^ 0x5c;
    RefHash hi(alg);
    hi.Update(ip.data(), B);
    hi.Update(m, n);
    std::vector<uint8_t> d = hi.Final();
    RefHash ho(alg);
    ho.Update(op.data(), B);
    ho.Update(d.data(), d.size());
    return ho.Final();
  }
};

std::vector<uint8_t> Unhex(const std::string& s) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i + 1 < s.size(); i += 2) v.push_back(uint8_t(std::stoul(s.substr(i, 2), nullptr, 16)));
  return v;
}
std::string Hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) s += d[p[i] >> 4], s += d[p[i] & 15];
  return s;
}

const Alg kAlgs[4] = {{224}, {256}, {384}, {512}};

// What the lane tests run: a path through the public API, or a bare kernel
// through the scheduler (the test-only instantiations below).
struct Subject {
  std::string name;
  Path path;
  const Kernel<uint32_t>* k256;
  const Kernel<uint64_t>* k512;

  size_t Lanes(const Alg& alg) const {
    if (k256 == nullptr && k512 == nullptr) {
      return kmshmac::mb::Lanes(path, alg.Wide() ? Family::Sha512 : Family::Sha256);
    }
    return alg.Wide() ? (k512 ? k512->lanes : 0) : (k256 ? k256->lanes : 0);
  }
  bool Run(const RefKey& key, const Span* spans, size_t n, uint8_t* out) const {
    const size_t ol = key.alg.OutLen();
    if (key.alg.Wide() && k512 != nullptr) {
      kmshmac::mb::detail::HmacLanes(*k512, key.in64, key.out64, ol, spans, n, out);
      return true;
    }
    if (!key.alg.Wide() && k256 != nullptr) {
      kmshmac::mb::detail::HmacLanes(*k256, key.in32, key.out32, ol, spans, n, out);
      return true;
    }
    return key.alg.Wide() ? kmshmac::mb::HmacSha512Batch(path, key.in64, key.out64, ol, spans, n, out)
                          : kmshmac::mb::HmacSha256Batch(path, key.in32, key.out32, ol, spans, n, out);
  }
};

// Runs the multi-buffer batch for `msgs` and compares every MAC with the
// reference. Each message lives in its own exact-size heap block so ASan
// catches any read past its end.
void CheckBatch(const Subject& subject, const RefKey& key, const std::vector<std::vector<uint8_t>>& msgs,
                const char* what) {
  const size_t n = msgs.size(), ol = key.alg.OutLen();
  std::vector<uint8_t*> owned(n);
  std::vector<Span> spans(n);
  for (size_t i = 0; i < n; i++) {
    owned[i] = static_cast<uint8_t*>(std::malloc(msgs[i].size() ? msgs[i].size() : 1));
    if (!msgs[i].empty()) std::memcpy(owned[i], msgs[i].data(), msgs[i].size());
    spans[i] = {msgs[i].empty() ? nullptr : owned[i], msgs[i].size()};
  }
  std::vector<uint8_t> out(n * ol + 1, 0xee);
  const bool ok = subject.Run(key, spans.data(), n, out.data());
  CHECK(ok, "%s: batch returned false", what);
  CHECK(out[n * ol] == 0xee, "%s: wrote past the end of out", what);
  for (size_t i = 0; i < n && ok; i++) {
    std::vector<uint8_t> want = key.Mac(msgs[i].data(), msgs[i].size());
    CHECK(std::memcmp(out.data() + i * ol, want.data(), ol) == 0, "%s %s: alg %d n=%zu msg %zu len %zu: got %s want %s",
          subject.name.c_str(), what, key.alg.bits, n, i, msgs[i].size(), Hex(out.data() + i * ol, ol).c_str(),
          Hex(want.data(), ol).c_str());
  }
  for (auto* o : owned) std::free(o);
}

std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

// The self-test's fingerprints (mb_paths.cc), recomputed with the oracle.
void CheckSelfTestConstants() {
  for (int a = 0; a < 4; a++) {
    RefKey key(kAlgs[a], {'J', 'e', 'f', 'e'});
    std::vector<uint8_t> macs;
    for (size_t m = 0; m < kmshmac::mb::detail::kSelfTestMessages; m++) {
      std::vector<uint8_t> msg(kmshmac::mb::detail::kSelfTestLengths[m]);
      for (size_t i = 0; i < msg.size(); i++) msg[i] = kmshmac::mb::detail::SelfTestByte(m, i);
      std::vector<uint8_t> mac = key.Mac(msg.data(), msg.size());
      macs.insert(macs.end(), mac.begin(), mac.end());
    }
    const uint64_t fp = kmshmac::mb::detail::Fnv1a(macs.data(), macs.size());
    CHECK(fp == kmshmac::mb::detail::kSelfTestFingerprints[a],
          "self-test fingerprint of HMAC-SHA-%d: want 0x%016llxULL", kAlgs[a].bits,
          static_cast<unsigned long long>(fp));
  }
}

// Kernels with a deliberate fault, each wrapping a real one: the self-test
// must reject them.
const Kernel<uint32_t>* g_real256;
void FlipLastLane(uint32_t* st, const uint8_t* const* blk, size_t n) {
  g_real256->compress(st, blk, n);
  st[1 * g_real256->lanes + g_real256->lanes - 1] ^= 0x100;  // word b of the last lane
}
void SwapFirstLanes(uint32_t* st, const uint8_t* const* blk, size_t n) {
  const uint8_t* swapped[16];
  for (size_t l = 0; l < g_real256->lanes; l++) swapped[l] = blk[l];
  std::swap(swapped[0], swapped[1]);
  g_real256->compress(st, swapped, n);
}

void CheckSelfTestRejectsFaults(Path p) {
  const Kernel<uint32_t>* k = kmshmac::mb::detail::KernelFor<uint32_t>(p);
  if (k == nullptr) return;
  g_real256 = k;
  const char* name = kmshmac::mb::PathName(p);
  CHECK(kmshmac::mb::detail::SelfTest(*k).empty(), "%s: self-test passes", name);
  CHECK(!kmshmac::mb::detail::SelfTest(*k, true).empty(), "%s: a corrupted answer fails", name);
  const Kernel<uint32_t> flipped{FlipLastLane, k->lanes}, swapped{SwapFirstLanes, k->lanes};
  CHECK(!kmshmac::mb::detail::SelfTest(flipped).empty(), "%s: a kernel that corrupts one lane fails", name);
  CHECK(!kmshmac::mb::detail::SelfTest(swapped).empty(), "%s: a kernel that swaps two lanes fails", name);
}

// Kernel speed, for comparing instantiations (scripts/test-mb.sh --bench):
// nanoseconds per block per message, best of several runs.
template <typename W>
void BenchKernel(const char* name, const Kernel<W>& k) {
  constexpr size_t B = 16 * sizeof(W), kBlocks = 64;
  std::vector<uint8_t> data(k.lanes * B * kBlocks, 0x5a);
  const uint8_t* blk[16];
  for (size_t l = 0; l < k.lanes; l++) blk[l] = data.data() + l * B * kBlocks;
  W st[8 * 16] = {};
  double best = 1e30;
  for (int r = 0; r < 200; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    k.compress(st, blk, kBlocks);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    if (ns < best) best = ns;
  }
  const double per = best / kBlocks / static_cast<double>(k.lanes);
  std::printf("  %-7s SHA-%s x%-2zu %7.1f ns/block/message  %7.0f MB/s\n", name, sizeof(W) == 4 ? "256" : "512",
              k.lanes, per, B / per * 1e3);
}

// Every length 0..4200, batch sizes 1..100, equal and mixed lengths, for
// all four algorithms, against the oracle.
void TestLanes(const Subject& subject, bool quick) {
  std::mt19937_64 rng(0x6b6d7368u);
  std::printf("testing %s\n", subject.name.c_str());
  for (const Alg& alg : kAlgs) {
    const size_t lanes = subject.Lanes(alg);
    if (lanes == 0) {
      std::printf("  HMAC-SHA-%d: no kernel on this path (OpenSSL handles it)\n", alg.bits);
      continue;
    }
    // Keys around the block size exercise the pre-hash branch of the oracle.
    size_t klen = rng() % 3 == 0 ? 200 : rng() % 130;
    RefKey key(alg, RandomBytes(rng, klen));
    char what[64];

    // (a) Every length 0..4200 (every block boundary and padding split),
    //     in batches whose size walks through every partial-lane count.
    const size_t maxlen = quick ? 600 : 4200;
    for (size_t len = 0; len <= maxlen;) {
      size_t n = 1 + (len % 37);
      std::vector<std::vector<uint8_t>> msgs;
      for (size_t i = 0; i < n && len <= maxlen; i++, len++) msgs.push_back(RandomBytes(rng, len));
      std::snprintf(what, sizeof what, "lengths up to %zu", len - 1);
      CheckBatch(subject, key, msgs, what);
    }
    // (b) Batch sizes 1..100, equal lengths (lanes finish together).
    for (size_t n = 1; n <= 100; n++) {
      size_t len = rng() % 300;
      std::vector<std::vector<uint8_t>> msgs;
      for (size_t i = 0; i < n; i++) msgs.push_back(RandomBytes(rng, len));
      std::snprintf(what, sizeof what, "equal lengths n=%zu", n);
      CheckBatch(subject, key, msgs, what);
    }
    // (c) Batch sizes 1..100, mixed lengths 0..4200 (lanes refill).
    for (size_t n = 1; n <= 100; n += quick ? 7 : 1) {
      std::vector<std::vector<uint8_t>> msgs;
      for (size_t i = 0; i < n; i++) msgs.push_back(RandomBytes(rng, rng() % 4201));
      std::snprintf(what, sizeof what, "mixed lengths n=%zu", n);
      CheckBatch(subject, key, msgs, what);
    }
    // (d) One long message among many short ones, and the reverse.
    {
      std::vector<std::vector<uint8_t>> msgs;
      msgs.push_back(RandomBytes(rng, 9000));
      for (int i = 0; i < 40; i++) msgs.push_back(RandomBytes(rng, rng() % 20));
      msgs.push_back(RandomBytes(rng, 5000));
      CheckBatch(subject, key, msgs, "skewed lengths");
    }
    std::printf("  HMAC-SHA-%d ok (%zu lanes)\n", alg.bits, lanes);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool bench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;

  // 1. The oracle itself: SHA-2 of "abc" (FIPS 180-4 examples) and RFC 4231.
  {
    const uint8_t abc[3] = {'a', 'b', 'c'};
    CHECK(
        Hex(RefDigest({256}, abc, 3).data(), 32) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "ref sha256(abc)");
    CHECK(Hex(RefDigest({512}, abc, 3).data(), 64) ==
              "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
              "454d4423643ce80e2a9ac94fa54ca49f",
          "ref sha512(abc)");
    struct V {
      const char *key, *data, *m224, *m256, *m384, *m512;
    };
    // RFC 4231 test cases 1 and 2 (section 4.2, 4.3), full-length MACs.
    const V vs[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
         "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
         "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914e"
         "eb61f1702e696c203a126854"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
         "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
         "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a3"
         "4d4a6b4b636e070a38bce737"},
    };
    for (const V& v : vs) {
      const char* want[4] = {v.m224, v.m256, v.m384, v.m512};
      for (int a = 0; a < 4; a++) {
        RefKey k(kAlgs[a], Unhex(v.key));
        std::vector<uint8_t> d = Unhex(v.data);
        std::vector<uint8_t> m = k.Mac(d.data(), d.size());
        CHECK(Hex(m.data(), m.size()) == want[a], "ref RFC 4231 alg %d", kAlgs[a].bits);
      }
    }
  }
  if (g_failures) return 1;
  CheckSelfTestConstants();

  // 2. Path plumbing.
  for (Path p : kmshmac::mb::kAllPaths) {
    Path parsed;
    CHECK(kmshmac::mb::ParsePath(kmshmac::mb::PathName(p), &parsed) && parsed == p, "parse %s",
          kmshmac::mb::PathName(p));
  }
  {
    Path parsed;
    CHECK(!kmshmac::mb::ParsePath("sse", &parsed) && !kmshmac::mb::ParsePath(nullptr, &parsed), "parse rejects junk");
    uint32_t s[8] = {};
    uint8_t o[32];
    Span sp{nullptr, 0};
    CHECK(!kmshmac::mb::HmacSha256Batch(Path::Off, s, s, 32, &sp, 1, o), "Off path refuses");
    CHECK(!kmshmac::mb::HmacSha256Batch(Path::Sse2, s, s, 33, &sp, 1, o), "bad out_len refuses");
    uint64_t s64[8] = {};
    CHECK(!kmshmac::mb::HmacSha512Batch(Path::ShaNi, s64, s64, 64, &sp, 1, o), "shani has no SHA-512 kernel");
    CHECK(kmshmac::mb::Lanes(Path::ShaNi, Family::Sha512) == 0, "shani: no SHA-512 lanes");
    CHECK(std::strcmp(kmshmac::mb::PathStatus(Path::Off), "ok") == 0, "off is always ok");
  }
#if KMS_HMAC_MB_X86
  CHECK(kmshmac::mb::PathAvailable(Path::Sse2), "the baseline instantiation runs on every x86-64 CPU: %s",
        kmshmac::mb::PathStatus(Path::Sse2));
#endif

  std::vector<Path> paths;
  for (Path p : kmshmac::mb::kAllPaths) {
    if (p == Path::Off) continue;
    std::printf("path %-6s %s\n", kmshmac::mb::PathName(p), kmshmac::mb::PathStatus(p));
    if (kmshmac::mb::PathAvailable(p)) paths.push_back(p);
  }
  if (paths.empty()) {
    std::printf("no multi-buffer path in this build: lane tests skipped\n");
    std::printf(g_failures ? "FAILED (%d)\n" : "all passed\n", g_failures);
    return g_failures ? 1 : 0;
  }
  for (Path p : paths) CheckSelfTestRejectsFaults(p);

  if (bench) {
    std::printf("kernel speed (best of 200 runs of 64 blocks per lane):\n");
    for (Path p : paths) {
      if (auto* k = kmshmac::mb::detail::KernelFor<uint32_t>(p)) BenchKernel(kmshmac::mb::PathName(p), *k);
      if (auto* k = kmshmac::mb::detail::KernelFor<uint64_t>(p)) BenchKernel(kmshmac::mb::PathName(p), *k);
    }
    return g_failures ? 1 : 0;
  }

  std::vector<Subject> subjects;
  for (Path p : paths) subjects.push_back({kmshmac::mb::PathName(p), p, nullptr, nullptr});
#if KMS_HMAC_MB_X86
  subjects.push_back({"generic x16/x8 (sse2)", Path::Off, &kGenericSha256x16, &kGenericSha512x8});
  subjects.push_back({"generic x8/x4 (sse2)", Path::Off, &kGenericSha256x8, &kGenericSha512x4});
#endif
  std::string ran;
  for (const Subject& subject : subjects) {
    TestLanes(subject, quick);
    ran += (ran.empty() ? "" : ", ") + subject.name;
  }
  std::printf("instantiations tested: %s\n", ran.c_str());
  std::printf(g_failures ? "FAILED (%d)\n" : "all passed\n", g_failures);
  return g_failures ? 1 : 0;
}
