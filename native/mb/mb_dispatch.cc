#include "mb_dispatch.h"

#include <algorithm>
#include <atomic>

#include "../openssl_api.h"

namespace kmshmac {
namespace mb {
namespace {

std::atomic<int> g_active{-1};  // -1: not yet initialised from detect()
std::atomic<bool> g_force{false};

// Messages handed to the lanes per call. Bounded so the span list and the
// verify scratch live on the stack (no allocation, nothing to throw on a
// worker thread); the lanes idle at most once per chunk while the last
// messages drain, which at 256 messages is a few percent at worst.
constexpr size_t kChunk = 256;

bool IsSha512Family(Algorithm alg) { return alg == Algorithm::Sha384 || alg == Algorithm::Sha512; }

bool Wanted(Path p, bool sha512, size_t n, size_t total) {
  if (p == Path::Off || n == 0) return false;
  return g_force.load(std::memory_order_relaxed) || worth_it(p, sha512, n, total);
}

// The key's chaining values after the ipad/opad block: SHA256_CTX::h and
// SHA512_CTX::h (the handle absorbed exactly one block, nothing buffered).
struct States {
  uint32_t in256[8], out256[8];
  uint64_t in512[8], out512[8];
  explicit States(const HmacKey& key) {
    if (IsSha512Family(key.alg)) {
      for (int w = 0; w < 8; w++) in512[w] = key.s512.inner.h[w], out512[w] = key.s512.outer.h[w];
    } else {
      for (int w = 0; w < 8; w++) in256[w] = key.s256.inner.h[w], out256[w] = key.s256.outer.h[w];
    }
  }
  ~States() { Ssl().cleanse(this, sizeof *this); }
  States(const States&) = delete;
  States& operator=(const States&) = delete;
};

bool Lanes(Path p, const HmacKey& key, const States& st, const Span* spans, size_t n, uint8_t* out) {
  return IsSha512Family(key.alg) ? hmac_sha512_batch(p, st.in512, st.out512, key.mac_length, spans, n, out)
                                 : hmac_sha256_batch(p, st.in256, st.out256, key.mac_length, spans, n, out);
}

// Decides for messages [begin, end): the path to use, or Off.
Path Choose(const HmacKey& key, const SpanList& messages, size_t begin, size_t end) {
  const Path p = active_path();
  const bool sha512 = IsSha512Family(key.alg);
  const size_t n = end > begin ? end - begin : 0;
  // Cheap test first (the byte count can only make the answer "no").
  if (!Wanted(p, sha512, n, SIZE_MAX)) return Path::Off;
  size_t total = 0;
  for (size_t i = begin; i < end; i++) total += messages[i].length;
  return Wanted(p, sha512, n, total) ? p : Path::Off;
}

size_t Gather(const SpanList& messages, size_t at, size_t end, mb::Span* spans) {
  const size_t m = std::min(kChunk, end - at);
  for (size_t j = 0; j < m; j++) {
    const kmshmac::Span s = messages[at + j];
    spans[j] = {s.data, s.length};
  }
  return m;
}

}  // namespace

Path active_path() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(detect());
    g_active.store(v, std::memory_order_relaxed);
  }
  return static_cast<Path>(v);
}

bool set_active_path(Path p, bool force) {
  if (!path_available(p)) return false;
  g_active.store(static_cast<int>(p), std::memory_order_relaxed);
  g_force.store(force, std::memory_order_relaxed);
  return true;
}

bool forced() { return g_force.load(std::memory_order_relaxed); }

bool MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out) {
  const Path p = Choose(key, messages, begin, end);
  if (p == Path::Off) return false;
  const States st(key);
  mb::Span spans[kChunk];
  for (size_t at = begin; at < end;) {
    const size_t m = Gather(messages, at, end, spans);
    // Lanes() only fails if the path cannot run, which Choose() excluded; if
    // it ever did, the caller's OpenSSL loop redoes the whole range.
    if (!Lanes(p, key, st, spans, m, out + at * key.mac_length)) return false;
    at += m;
  }
  return true;
}

bool VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results) {
  const Path p = Choose(key, messages, begin, end);
  if (p == Path::Off) return false;
  const States st(key);
  const size_t ml = key.mac_length;
  mb::Span spans[kChunk];
  uint8_t expected[kChunk * kMaxMacLength];
  bool ok = true;
  for (size_t at = begin; at < end && ok;) {
    const size_t m = Gather(messages, at, end, spans);
    ok = Lanes(p, key, st, spans, m, expected);
    for (size_t j = 0; ok && j < m; j++) {
      const kmshmac::Span mac = macs[at + j];
      // Constant time in the MAC bytes; the length is public.
      results[at + j] = mac.length == ml && Ssl().memcmp(expected + j * ml, mac.data, ml) == 0 ? 1 : 0;
    }
    at += m;
  }
  Ssl().cleanse(expected, sizeof expected);
  return ok;  // false: the caller's OpenSSL loop rewrites every result
}

}  // namespace mb
}  // namespace kmshmac
