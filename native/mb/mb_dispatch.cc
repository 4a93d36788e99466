#include "mb_dispatch.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "../openssl_api.h"

namespace kmshmac {
namespace mb {
namespace {

std::atomic<int> g_active{-1};  // -1: not yet initialised from detect()
std::atomic<bool> g_force{false};

bool Wanted(Path p, bool sha512, size_t n, size_t total) {
  if (p == Path::Off || n == 0) return false;
  return g_force.load(std::memory_order_relaxed) || worth_it(p, sha512, n, total);
}

bool IsSha512Family(Algorithm alg) { return alg == Algorithm::Sha384 || alg == Algorithm::Sha512; }

// MACs spans[0..n) with the key's precomputed states. SHA256_CTX::h and
// SHA512_CTX::h hold the chaining values after the ipad/opad block (the
// handle absorbed exactly one block, so nothing is buffered).
bool Lanes(Path p, const HmacKey& key, const Span* spans, size_t n, uint8_t* out) {
  if (IsSha512Family(key.alg)) {
    uint64_t in[8], ou[8];
    for (int w = 0; w < 8; w++) in[w] = key.s512.inner.h[w], ou[w] = key.s512.outer.h[w];
    const bool ok = hmac_sha512_batch(p, in, ou, key.mac_length, spans, n, out);
    Ssl().cleanse(in, sizeof in);
    Ssl().cleanse(ou, sizeof ou);
    return ok;
  }
  uint32_t in[8], ou[8];
  for (int w = 0; w < 8; w++) in[w] = key.s256.inner.h[w], ou[w] = key.s256.outer.h[w];
  const bool ok = hmac_sha256_batch(p, in, ou, key.mac_length, spans, n, out);
  Ssl().cleanse(in, sizeof in);
  Ssl().cleanse(ou, sizeof ou);
  return ok;
}

// Collects spans [begin, end) and their total size; nullopt-free: returns
// false if the batch should stay on OpenSSL.
bool Gather(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, Path* p,
            std::vector<mb::Span>* spans) {
  *p = active_path();
  if (*p == Path::Off || end <= begin) return false;
  const size_t n = end - begin;
  spans->resize(n);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    const kmshmac::Span s = messages[begin + i];
    (*spans)[i] = {s.data, s.length};
    total += s.length;
  }
  return Wanted(*p, IsSha512Family(key.alg), n, total);
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
  // Cheap pre-check before building the span list.
  const Path p0 = active_path();
  if (!Wanted(p0, IsSha512Family(key.alg), end - begin, SIZE_MAX)) return false;
  Path p;
  std::vector<mb::Span> spans;
  if (!Gather(key, messages, begin, end, &p, &spans)) return false;
  return Lanes(p, key, spans.data(), spans.size(), out + begin * key.mac_length);
}

bool VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results) {
  const Path p0 = active_path();
  if (!Wanted(p0, IsSha512Family(key.alg), end - begin, SIZE_MAX)) return false;
  Path p;
  std::vector<mb::Span> spans;
  if (!Gather(key, messages, begin, end, &p, &spans)) return false;
  // Expected MACs in bounded chunks, then a constant-time compare of each.
  constexpr size_t kChunk = 4096;
  const size_t ml = key.mac_length;
  std::vector<uint8_t> expected(std::min(kChunk, spans.size()) * ml);
  for (size_t at = 0; at < spans.size(); at += kChunk) {
    const size_t m = std::min(kChunk, spans.size() - at);
    if (!Lanes(p, key, spans.data() + at, m, expected.data())) return false;  // nothing written to results yet for this chunk
    for (size_t j = 0; j < m; j++) {
      const kmshmac::Span mac = macs[begin + at + j];
      results[begin + at + j] = mac.length == ml && Ssl().memcmp(expected.data() + j * ml, mac.data, ml) == 0 ? 1 : 0;
    }
  }
  Ssl().cleanse(expected.data(), expected.size());
  return true;
}

}  // namespace mb
}  // namespace kmshmac
