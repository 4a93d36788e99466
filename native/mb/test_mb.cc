// Standalone test harness for the multi-buffer HMAC lanes (no N-API, no
// OpenSSL). A plain scalar SHA-2/HMAC written from FIPS 180-4 / RFC 2104
// serves as the oracle; it is itself checked against RFC 4231 vectors.
// Build and run: scripts/test-mb.sh (add --asan for sanitizers).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mb_hmac.h"
#include "mb_internal.h"

using kmshmac::mb::Path;
using kmshmac::mb::Span;
using kmshmac::mb::detail::kK256;
using kmshmac::mb::detail::kK512;

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                             \
  do {                                               \
    if (!(cond)) {                                   \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);             \
      std::fprintf(stderr, "\n");                    \
      if (++g_failures > 20) std::exit(1);           \
    }                                                \
  } while (0)

// ---- scalar reference ------------------------------------------------------
uint32_t rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

void ref_compress256(uint32_t h[8], const uint8_t* p) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t(p[4 * t]) << 24) | (uint32_t(p[4 * t + 1]) << 16) | (uint32_t(p[4 * t + 2]) << 8) | p[4 * t + 3];
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = rotr32(w[t - 15], 7) ^ rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr32(w[t - 2], 17) ^ rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 64; t++) {
    uint32_t t1 = hh + (rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25)) + ((e & f) ^ (~e & g)) + kK256[t] + w[t];
    uint32_t t2 = (rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void ref_compress512(uint64_t h[8], const uint8_t* p) {
  uint64_t w[80];
  for (int t = 0; t < 16; t++) {
    w[t] = 0;
    for (int b = 0; b < 8; b++) w[t] = (w[t] << 8) | p[8 * t + b];
  }
  for (int t = 16; t < 80; t++) {
    uint64_t s0 = rotr64(w[t - 15], 1) ^ rotr64(w[t - 15], 8) ^ (w[t - 15] >> 7);
    uint64_t s1 = rotr64(w[t - 2], 19) ^ rotr64(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 80; t++) {
    uint64_t t1 = hh + (rotr64(e, 14) ^ rotr64(e, 18) ^ rotr64(e, 41)) + ((e & f) ^ (~e & g)) + kK512[t] + w[t];
    uint64_t t2 = (rotr64(a, 28) ^ rotr64(a, 34) ^ rotr64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

const uint32_t kIV224[8] = {0xc1059ed8u, 0x367cd507u, 0x3070dd17u, 0xf70e5939u,
                            0xffc00b31u, 0x68581511u, 0x64f98fa7u, 0xbefa4fa4u};
const uint32_t kIV256[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                            0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
const uint64_t kIV384[8] = {0xcbbb9d5dc1059ed8ULL, 0x629a292a367cd507ULL, 0x9159015a3070dd17ULL,
                            0x152fecd8f70e5939ULL, 0x67332667ffc00b31ULL, 0x8eb44a8768581511ULL,
                            0xdb0c2e0d64f98fa7ULL, 0x47b5481dbefa4fa4ULL};
const uint64_t kIV512[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                            0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                            0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

// Algorithm description: bits 224/256/384/512.
struct Alg {
  int bits;
  size_t block() const { return bits <= 256 ? 64 : 128; }
  size_t out_len() const { return static_cast<size_t>(bits / 8); }
  bool wide() const { return bits > 256; }
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
  void block(const uint8_t* p) {
    if (alg.wide()) ref_compress512(h64, p);
    else ref_compress256(h32, p);
  }
  void update(const uint8_t* p, size_t n) {
    total += n;
    buf.insert(buf.end(), p, p + n);
    size_t B = alg.block(), off = 0;
    for (; buf.size() - off >= B; off += B) block(buf.data() + off);
    buf.erase(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(off));
  }
  std::vector<uint8_t> final() {
    size_t B = alg.block(), lb = alg.wide() ? 16 : 8;
    uint64_t bits = total * 8;
    std::vector<uint8_t> pad(1, 0x80);
    while ((buf.size() + pad.size() + lb) % B) pad.push_back(0);
    for (size_t i = 0; i < lb; i++) pad.push_back(i + 8 < lb ? 0 : uint8_t(bits >> (8 * (lb - 1 - i))));
    std::vector<uint8_t> tail = buf;
    tail.insert(tail.end(), pad.begin(), pad.end());
    for (size_t off = 0; off < tail.size(); off += B) block(tail.data() + off);
    std::vector<uint8_t> out(alg.out_len());
    for (size_t i = 0; i < out.size(); i++)
      out[i] = alg.wide() ? uint8_t(h64[i / 8] >> (56 - 8 * (i % 8))) : uint8_t(h32[i / 4] >> (24 - 8 * (i % 4)));
    return out;
  }
};

std::vector<uint8_t> ref_hash(Alg a, const uint8_t* p, size_t n) {
  RefHash h(a);
  h.update(p, n);
  return h.final();
}

// HMAC key setup (RFC 2104): returns the states after the ipad/opad block.
struct RefKey {
  Alg alg;
  uint32_t in32[8], out32[8];
  uint64_t in64[8], out64[8];
  std::vector<uint8_t> k;
  RefKey(Alg a, const std::vector<uint8_t>& key) : alg(a) {
    size_t B = a.block();
    k = key.size() > B ? ref_hash(a, key.data(), key.size()) : key;
    k.resize(B, 0);
    std::vector<uint8_t> ip(B), op(B);
    for (size_t i = 0; i < B; i++) ip[i] = k[i] ^ 0x36, op[i] = k[i] ^ 0x5c;
    RefHash hi(a), ho(a);
    hi.update(ip.data(), B);
    ho.update(op.data(), B);
    std::memcpy(in32, hi.h32, sizeof in32), std::memcpy(out32, ho.h32, sizeof out32);
    std::memcpy(in64, hi.h64, sizeof in64), std::memcpy(out64, ho.h64, sizeof out64);
  }
  std::vector<uint8_t> mac(const uint8_t* m, size_t n) const {
    size_t B = alg.block();
    std::vector<uint8_t> ip(B), op(B);
    for (size_t i = 0; i < B; i++) ip[i] = k[i] ^ 0x36, op[i] = k[i] ^ 0x5c;
    RefHash hi(alg);
    hi.update(ip.data(), B);
    hi.update(m, n);
    std::vector<uint8_t> d = hi.final();
    RefHash ho(alg);
    ho.update(op.data(), B);
    ho.update(d.data(), d.size());
    return ho.final();
  }
};

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i + 1 < s.size(); i += 2) v.push_back(uint8_t(std::stoul(s.substr(i, 2), nullptr, 16)));
  return v;
}
std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) s += d[p[i] >> 4], s += d[p[i] & 15];
  return s;
}

const Alg kAlgs[4] = {{224}, {256}, {384}, {512}};

// Runs the multi-buffer batch for `msgs` and compares every MAC with the
// reference. Each message lives in its own exact-size heap block so ASan
// catches any read past its end.
void check_batch(Path p, const RefKey& key, const std::vector<std::vector<uint8_t>>& msgs, const char* what) {
  const size_t n = msgs.size(), ol = key.alg.out_len();
  std::vector<uint8_t*> owned(n);
  std::vector<Span> spans(n);
  for (size_t i = 0; i < n; i++) {
    owned[i] = static_cast<uint8_t*>(std::malloc(msgs[i].size() ? msgs[i].size() : 1));
    if (!msgs[i].empty()) std::memcpy(owned[i], msgs[i].data(), msgs[i].size());
    spans[i] = {msgs[i].empty() ? nullptr : owned[i], msgs[i].size()};
  }
  std::vector<uint8_t> out(n * ol + 1, 0xee);
  bool ok = key.alg.wide()
                ? kmshmac::mb::hmac_sha512_batch(p, key.in64, key.out64, ol, spans.data(), n, out.data())
                : kmshmac::mb::hmac_sha256_batch(p, key.in32, key.out32, ol, spans.data(), n, out.data());
  CHECK(ok, "%s: batch returned false", what);
  CHECK(out[n * ol] == 0xee, "%s: wrote past the end of out", what);
  for (size_t i = 0; i < n && ok; i++) {
    std::vector<uint8_t> want = key.mac(msgs[i].data(), msgs[i].size());
    CHECK(std::memcmp(out.data() + i * ol, want.data(), ol) == 0, "%s: alg %d n=%zu msg %zu len %zu: got %s want %s",
          what, key.alg.bits, n, i, msgs[i].size(), hex(out.data() + i * ol, ol).c_str(),
          hex(want.data(), ol).c_str());
  }
  for (auto* o : owned) std::free(o);
}

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("detect: %s (%s)\n", kmshmac::mb::path_name(kmshmac::mb::detect()), kmshmac::mb::detect_reason());

  // 1. The oracle itself: SHA-2 of "abc" (FIPS 180-4 examples) and RFC 4231.
  {
    const uint8_t abc[3] = {'a', 'b', 'c'};
    CHECK(hex(ref_hash({256}, abc, 3).data(), 32) ==
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
          "ref sha256(abc)");
    CHECK(hex(ref_hash({512}, abc, 3).data(), 64) ==
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
        RefKey k(kAlgs[a], unhex(v.key));
        std::vector<uint8_t> d = unhex(v.data);
        std::vector<uint8_t> m = k.mac(d.data(), d.size());
        CHECK(hex(m.data(), m.size()) == want[a], "ref RFC 4231 alg %d", kAlgs[a].bits);
      }
    }
  }
  if (g_failures) return 1;

  // 2. Path plumbing.
  Path parsed;
  CHECK(kmshmac::mb::parse_path("avx2", &parsed) && parsed == Path::Avx2, "parse avx2");
  CHECK(kmshmac::mb::parse_path("shani", &parsed) && parsed == Path::ShaNi, "parse shani");
  CHECK(std::strcmp(kmshmac::mb::path_name(Path::ShaNi), "shani") == 0, "name shani");
  CHECK(!kmshmac::mb::parse_path("sse", &parsed), "parse rejects junk");
  CHECK(!kmshmac::mb::path_available(Path::Avx512), "avx512 is never available in this build");
  {
    uint32_t s[8] = {};
    uint8_t o[32];
    Span sp{nullptr, 0};
    CHECK(!kmshmac::mb::hmac_sha256_batch(Path::Off, s, s, 32, &sp, 1, o), "Off path refuses");
    CHECK(!kmshmac::mb::hmac_sha256_batch(Path::Avx512, s, s, 32, &sp, 1, o), "Avx512 path refuses");
    CHECK(!kmshmac::mb::hmac_sha256_batch(Path::Avx2, s, s, 33, &sp, 1, o), "bad out_len refuses");
  }

  std::vector<Path> paths;
  for (Path p : {Path::Avx2, Path::ShaNi})
    if (kmshmac::mb::path_available(p)) paths.push_back(p);
  if (paths.empty()) {
    std::printf("no multi-buffer path available on this machine: lane tests skipped\n");
    return g_failures ? 1 : 0;
  }

  std::mt19937_64 rng(0x6b6d7368u);
  for (Path p : paths) {
    std::printf("testing path %s\n", kmshmac::mb::path_name(p));
    for (const Alg& alg : kAlgs) {
      const size_t lanes = alg.wide() ? kmshmac::mb::lanes_sha512(p) : kmshmac::mb::lanes_sha256(p);
      if (lanes == 0) {
        std::printf("  HMAC-SHA-%d: no lanes on this path here (OpenSSL handles it)\n", alg.bits);
        continue;
      }
      // Keys around the block size exercise the pre-hash branch of the oracle.
      size_t klen = rng() % 3 == 0 ? 200 : rng() % 130;
      RefKey key(alg, random_bytes(rng, klen));
      char what[64];

      // (a) Every length 0..4200 (every block boundary and padding split),
      //     in batches whose size walks through every partial-lane count.
      const size_t maxlen = quick ? 600 : 4200;
      for (size_t len = 0; len <= maxlen;) {
        size_t n = 1 + (len % 17);
        std::vector<std::vector<uint8_t>> msgs;
        for (size_t i = 0; i < n && len <= maxlen; i++, len++) msgs.push_back(random_bytes(rng, len));
        std::snprintf(what, sizeof what, "lengths up to %zu", len - 1);
        check_batch(p, key, msgs, what);
      }
      // (b) Batch sizes 1..100, equal lengths (lanes finish together).
      for (size_t n = 1; n <= 100; n++) {
        size_t len = rng() % 300;
        std::vector<std::vector<uint8_t>> msgs;
        for (size_t i = 0; i < n; i++) msgs.push_back(random_bytes(rng, len));
        std::snprintf(what, sizeof what, "equal lengths n=%zu", n);
        check_batch(p, key, msgs, what);
      }
      // (c) Batch sizes 1..100, mixed lengths 0..4200 (lanes refill).
      for (size_t n = 1; n <= 100; n += quick ? 7 : 1) {
        std::vector<std::vector<uint8_t>> msgs;
        for (size_t i = 0; i < n; i++) msgs.push_back(random_bytes(rng, rng() % 4201));
        std::snprintf(what, sizeof what, "mixed lengths n=%zu", n);
        check_batch(p, key, msgs, what);
      }
      // (d) One long message among many short ones, and the reverse.
      {
        std::vector<std::vector<uint8_t>> msgs;
        msgs.push_back(random_bytes(rng, 9000));
        for (int i = 0; i < 40; i++) msgs.push_back(random_bytes(rng, rng() % 20));
        msgs.push_back(random_bytes(rng, 5000));
        check_batch(p, key, msgs, "skewed lengths");
      }
      std::printf("  HMAC-SHA-%d ok (%zu lanes)\n", alg.bits, lanes);
    }
  }
  std::printf(g_failures ? "FAILED (%d)\n" : "all passed\n", g_failures);
  return g_failures ? 1 : 0;
}
