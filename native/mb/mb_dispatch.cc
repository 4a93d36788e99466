// Per-batch dispatch between OpenSSL and the multi-buffer paths.
//
// Why a calibration at first use rather than crossovers per CPU family: the
// answer depends on more than the family. It depends on the model (Zen 4
// runs 512-bit operations in two halves, Zen 5 in one; Intel server parts
// have one or two 512-bit ports), on what OpenSSL does there (SHA-NI or not,
// its version's SHA-512 code), on the hypervisor, and on CPUs nobody here has
// measured. A table is right only for the machines it was measured on; the
// issue this fixes was exactly such a table (Zen 3 thresholds, wrong on
// Zen 5). So the first batch of a family that could use the lanes times
// OpenSSL and each candidate path on three synthetic batches (~1 ms of CPU
// per family) and fits three numbers per path:
//
//   time(batch) = per_batch + per_message * n + per_round * rounds
//   rounds      = max(longest message's blocks,
//                     ceil(n / lanes) * average blocks per message)
//
// where a message's blocks are its inner hash's blocks plus the outer hash's
// one. OpenSSL, one message at a time, is the same model with one lane. The
// first term of the max() is what lanes cost when one message dominates; the
// second counts whole messages per lane (a lane cannot split a message), so
// 3 messages on 2 lanes take two messages' time, not one and a half. Each
// batch goes to the path with the lowest predicted time, but a lane path must
// beat OpenSSL's prediction by 10%: near a crossover, where model error could
// pick the slower side, both are within a few percent and OpenSSL is kept.
//
// Timing uses the minimum over interleaved repetitions, which discards
// preemptions and other tenants' bursts on a shared machine, after a warm-up
// run of each path (Intel CPUs run the first microseconds of 512-bit code at
// reduced throughput while the upper vector lanes power up).
#include "mb_dispatch.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "../openssl_api.h"
#include "mb_internal.h"
#include "mb_scheduler.h"

namespace kmshmac {
namespace mb {
namespace {

// ---- Selection -------------------------------------------------------------

constexpr int kAuto = -1;

struct Initial {
  int path;  // kAuto or a Path
  std::string reason;
};

// Whether automatic dispatch weighs lane path p: it can run here, and
// neither AutoSkips() names it nor is it sse2 where AVX2 runs (the same
// kernel at half the width, never faster).
bool AutoWeighs(Path p) {
  if (p == Path::Off || !PathAvailable(p) || AutoSkips(p) != nullptr) return false;
  return !(p == Path::Sse2 && PathAvailable(Path::Avx2));
}

bool AnyLanePath() {
  for (Path p : kAllPaths) {
    if (AutoWeighs(p)) return true;
  }
  return false;
}

Initial ComputeInitial() {
  if (!AnyLanePath()) {
    return {static_cast<int>(Path::Off),
            std::string("no multi-buffer path can run here (") + PathStatus(Path::Sse2) + "); using OpenSSL"};
  }
  const std::string cpu = std::string(" on ") + CpuId();
  const char* env = std::getenv("KMS_HMAC_SIMD");
  if (env == nullptr || env[0] == '\0' || std::strcmp(env, "auto") == 0) {
    std::string weighed = "OpenSSL", skipped;
    for (Path p : kAllPaths) {
      if (AutoWeighs(p)) weighed += std::string(", ") + PathName(p);
      if (const char* why = PathAvailable(p) ? AutoSkips(p) : nullptr) {
        skipped += std::string("; ") + PathName(p) + " left out: " + why;
      }
    }
    return {kAuto, "auto: each batch takes the fastest of " + weighed + " by a cost model calibrated at first use" +
                       cpu + skipped};
  }
  Path forced;
  if (!ParsePath(env, &forced)) {
    return {static_cast<int>(Path::Off),
            "KMS_HMAC_SIMD has an unknown value (expected auto|off|sse2|avx2|shani|avx512); using OpenSSL"};
  }
  if (forced == Path::Off) return {static_cast<int>(Path::Off), "forced off by KMS_HMAC_SIMD"};
  if (!PathAvailable(forced)) {
    return {static_cast<int>(Path::Off), std::string("KMS_HMAC_SIMD=") + env + " requested, but " + env +
                                             " cannot run here: " + PathStatus(forced) + "; using OpenSSL"};
  }
  return {static_cast<int>(forced),
          std::string("forced ") + env + " by KMS_HMAC_SIMD (batches use it where it beats OpenSSL)" + cpu};
}

const Initial& InitialSelection() {
  static const Initial init = ComputeInitial();  // thread-safe static init
  return init;
}

std::atomic<int> g_path{-2};  // -2: not yet read from InitialSelection()
std::atomic<bool> g_always{false};

bool IsSha512Family(Algorithm alg) { return alg == Algorithm::Sha384 || alg == Algorithm::Sha512; }

// ---- Cost model ------------------------------------------------------------

// Blocks of one message (inner hash incl. padding, plus the outer hash's).
inline size_t BlocksOf(size_t len, bool sha512) {
  return sha512 ? (len + 17 + 127) / 128 + 1 : (len + 9 + 63) / 64 + 1;
}

// A batch as the cost model sees it. Add() each message, then Finish().
struct Shape {
  size_t n = 0, total_blocks = 0, max_blocks = 0;
  double average_blocks = 0;
  void Add(size_t len, bool sha512) {
    const size_t b = BlocksOf(len, sha512);
    n++, total_blocks += b, max_blocks = std::max(max_blocks, b);
  }
  Shape& Finish() {
    average_blocks = n > 0 ? static_cast<double>(total_blocks) / static_cast<double>(n) : 0;
    return *this;
  }
};

// Lane counts are powers of two (1..16): a shift, not a division, since
// this runs for every candidate of every batch.
double Rounds(const Shape& s, size_t lanes) {
  const size_t shift = static_cast<size_t>(__builtin_ctzll(lanes));
  const double per_lane = static_cast<double>((s.n + lanes - 1) >> shift);
  return std::max(static_cast<double>(s.max_blocks), per_lane * s.average_blocks);
}

double Predict(const Cost& c, const Shape& s) {
  return c.per_batch + c.per_message * static_cast<double>(s.n) + c.per_round * Rounds(s, c.lanes);
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

// Streams messages [begin, end) through path p's kernel (the scheduler's
// slot/done contract, with message indices of `messages`). The whole range
// goes through in one pass, so the lanes drain once, at the end; nothing is
// copied or allocated.
template <typename Slot, typename Done>
void Stream(Path p, const HmacKey& key, const SpanList& messages, size_t begin, size_t end, Slot&& slot, Done&& done) {
  const States st(key);
  auto span_at = [&](size_t i) {
    const kmshmac::Span s = messages[begin + i];
    return Span{s.data, s.length};
  };
  auto slot_at = [&](size_t i, uint8_t* scratch) { return slot(begin + i, scratch); };
  auto done_at = [&](size_t i, const uint8_t* mac) { done(begin + i, mac); };
  if (IsSha512Family(key.alg)) {
    detail::HmacLanes(*detail::KernelFor<uint64_t>(p), st.in512, st.out512, key.mac_length, end - begin, span_at,
                      slot_at, done_at);
  } else {
    detail::HmacLanes(*detail::KernelFor<uint32_t>(p), st.in256, st.out256, key.mac_length, end - begin, span_at,
                      slot_at, done_at);
  }
}

// MACs messages [begin, end) into out + i*mac_length through `p`, or with
// OpenSSL one message at a time (the addon's own loop) for Off.
void Mac(Path p, const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out) {
  const size_t ml = key.mac_length;
  if (p == Path::Off) {
    for (size_t i = begin; i < end; i++) key.Mac(messages[i].data, messages[i].length, out + i * ml);
  } else {
    Stream(
        p, key, messages, begin, end, [&](size_t i, uint8_t*) { return out + i * ml; }, [](size_t, const uint8_t*) {});
  }
}

// ---- Calibration -------------------------------------------------------------

constexpr size_t kPaths = sizeof kAllPaths / sizeof kAllPaths[0];

// This thread's CPU time: what a calibration costs, whatever else the
// machine is doing meanwhile (its wall time is not ours to bound).
double ThreadCpuUs() {
#ifdef CLOCK_THREAD_CPUTIME_ID
  timespec t;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0) return static_cast<double>(t.tv_sec) * 1e6 + t.tv_nsec / 1e3;
#endif
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Three synthetic batches, one per unknown: 2 empty messages (per batch),
// 64 empty messages (per message) and 16 of 500..1415 bytes (per block),
// packed over a zero buffer and run through exactly what a real batch runs.
// The lengths differ so the lanes fall out of step, as in real mixed batches:
// each kernel call then covers one block, and per_round includes the call's
// overhead (lanes in step on equal long messages run cheaper; that error
// only makes lanes look slower).
constexpr size_t kLongCount = 16, kShortCount = 64, kTinyCount = 2;
constexpr size_t LongLength(size_t i) { return 500 + 61 * i; }
const uint8_t kZeros[kLongCount * LongLength(kLongCount)] = {};

// The figures one calibration produced for a family: OpenSSL's, and those of
// `count` lane paths.
struct Plan {
  Cost openssl{};
  size_t count = 0;
  Path path[kPaths];
  Cost cost[kPaths];
  double cpu_us = 0;  // what the calibration cost
};

// Times OpenSSL and paths[0..count) on the three batches. Interleaved: each
// repetition runs every path on every batch, so a slow moment on a shared
// machine (another tenant, a frequency change) slows all of them alike and
// the comparison stays fair; each figure is the minimum over repetitions.
Plan Calibrate(bool sha512, const Path* paths, size_t count) {
  // One calibration at a time: two at once (two families, on two threads)
  // would share caches and memory bandwidth and time each other.
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> lock(one_at_a_time);
  const double start = ThreadCpuUs();
  HmacKey key;
  const uint8_t key_bytes[32] = {0x6b, 0x6d, 0x73};
  key.Init(sha512 ? Algorithm::Sha512 : Algorithm::Sha256, key_bytes, sizeof key_bytes);
  uint32_t zero_offsets[kShortCount + 1] = {}, long_offsets[kLongCount + 1];
  long_offsets[0] = 0;
  for (size_t i = 0; i < kLongCount; i++) long_offsets[i + 1] = long_offsets[i] + static_cast<uint32_t>(LongLength(i));
  struct Batch {
    SpanList messages;
    size_t repeat;  // runs per timing: the tiny batch is short next to the clock's own cost
    Shape shape;
  } batches[3] = {
      {SpanList::Packed(kZeros, zero_offsets, kTinyCount), 16, {}},
      {SpanList::Packed(kZeros, zero_offsets, kShortCount), 1, {}},
      {SpanList::Packed(kZeros, long_offsets, kLongCount), 1, {}},
  };
  for (Batch& b : batches) {
    for (size_t i = 0; i < b.messages.size(); i++) b.shape.Add(b.messages[i].length, sha512);
    b.shape.Finish();
  }
  Path timed[kPaths] = {Path::Off};  // OpenSSL first, then the lane paths
  for (size_t i = 0; i < count; i++) timed[i + 1] = paths[i];
  double best[kPaths][3];
  uint8_t out[kShortCount * kMaxMacLength];
  auto time_ns = [&](Path p, const Batch& b) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t r = 0; r < b.repeat; r++) Mac(p, key, b.messages, 0, b.messages.size(), out);
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / b.repeat;
  };
  for (int rep = -1; rep < 5; rep++) {  // rep -1 warms up: caches, and Intel's 512-bit power-up
    for (size_t t = 0; t <= count; t++) {
      for (int b = 0; b < 3; b++) {
        const double ns = time_ns(timed[t], batches[b]);
        best[t][b] = rep <= 0 ? ns : std::min(best[t][b], ns);
      }
    }
  }
  key.Wipe();
  Ssl().cleanse(out, sizeof out);

  // Solve  t = per_batch + per_message * n + per_round * rounds  (Cramer).
  auto fit = [&](size_t t) {
    const size_t lanes_here = t == 0 ? 1 : Lanes(timed[t], sha512 ? Family::Sha512 : Family::Sha256);
    double m[3][4];
    for (int i = 0; i < 3; i++) {
      m[i][0] = 1, m[i][1] = static_cast<double>(batches[i].shape.n), m[i][2] = Rounds(batches[i].shape, lanes_here);
      m[i][3] = best[t][i];
    }
    auto det = [&](int c0, int c1, int c2) {
      return m[0][c0] * (m[1][c1] * m[2][c2] - m[1][c2] * m[2][c1]) -
             m[0][c1] * (m[1][c0] * m[2][c2] - m[1][c2] * m[2][c0]) +
             m[0][c2] * (m[1][c0] * m[2][c1] - m[1][c1] * m[2][c0]);
    };
    const double d = det(0, 1, 2);
    return Cost{std::max(0.0, det(3, 1, 2) / d), std::max(0.0, det(0, 3, 2) / d), std::max(0.0, det(0, 1, 3) / d),
                lanes_here};
  };
  Plan plan;
  plan.openssl = fit(0);
  for (size_t i = 0; i < count; i++) plan.path[i] = paths[i], plan.cost[i] = fit(i + 1);
  plan.count = count;
  plan.cpu_us = ThreadCpuUs() - start;
  return plan;
}

// What automatic dispatch weighs for a family: OpenSSL and each lane path
// AutoWeighs() with a kernel for the family. Calibrated on first use.
const Plan& AutoPlan(bool sha512) {
  auto make = [](bool wide) {
    Path paths[kPaths];
    size_t n = 0;
    for (Path p : kAllPaths) {
      if (AutoWeighs(p) && Lanes(p, wide ? Family::Sha512 : Family::Sha256) != 0) paths[n++] = p;
    }
    return Calibrate(wide, paths, n);
  };
  if (sha512) {
    static const Plan plan = make(true);  // thread-safe, on first use
    return plan;
  }
  static const Plan plan = make(false);
  return plan;
}

// OpenSSL against one forced path, calibrated on first use. Not
// std::call_once: its fast path goes through thread-local storage, which in
// a shared library is a __tls_get_addr call per batch (perf).
const Plan& ForcedPlan(bool sha512, Path p) {
  struct Slot {
    std::atomic<bool> ready{false};
    Plan plan;
  };
  static Slot slots[2][kPaths];
  static std::mutex filling;
  Slot& slot = slots[sha512 ? 1 : 0][static_cast<size_t>(p)];
  if (!slot.ready.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(filling);
    if (!slot.ready.load(std::memory_order_relaxed)) {
      slot.plan = Calibrate(sha512, &p, 1);
      slot.ready.store(true, std::memory_order_release);
    }
  }
  return slot.plan;
}

// ---- Per-batch choice ------------------------------------------------------

// A lane path must beat OpenSSL's predicted time by this factor.
constexpr double kMargin = 0.9;

Path Best(const Selection& sel, bool sha512, const Shape& shape) {
  if (!sel.automatic && Lanes(sel.path, sha512 ? Family::Sha512 : Family::Sha256) == 0) return Path::Off;
  const Plan& plan = sel.automatic ? AutoPlan(sha512) : ForcedPlan(sha512, sel.path);
  Path best = Path::Off;
  double best_time = Predict(plan.openssl, shape) * kMargin;
  for (size_t i = 0; i < plan.count; i++) {
    const double t = Predict(plan.cost[i], shape);
    if (t < best_time) best = plan.path[i], best_time = t;
  }
  return best;
}

// The path for a batch of this shape under the current selection, or Off.
Path Decide(bool sha512, const Shape& shape) {
  const Selection sel = CurrentSelection();
  if (shape.n == 0 || (!sel.automatic && sel.path == Path::Off)) return Path::Off;
  if (!sel.automatic && sel.always) {
    return Lanes(sel.path, sha512 ? Family::Sha512 : Family::Sha256) != 0 ? sel.path : Path::Off;
  }
  // One message: no lane kernel can beat OpenSSL's single stream with the
  // other lanes idle, and a single mac() must never pay for a calibration.
  if (shape.n == 1) return Path::Off;
  return Best(sel, sha512, shape);
}

Path Choose(const HmacKey& key, const SpanList& messages, size_t begin, size_t end) {
  const bool sha512 = IsSha512Family(key.alg);
  Shape shape;
  for (size_t i = begin; i < end; i++) shape.Add(messages[i].length, sha512);
  return Decide(sha512, shape.Finish());
}

}  // namespace

Selection CurrentSelection() {
  int v = g_path.load(std::memory_order_relaxed);
  if (v == -2) {
    v = InitialSelection().path;
    int expected = -2;
    g_path.compare_exchange_strong(expected, v, std::memory_order_relaxed);
    v = g_path.load(std::memory_order_relaxed);
  }
  if (v == kAuto) return {true, Path::Off, false};
  return {false, static_cast<Path>(v), g_always.load(std::memory_order_relaxed)};
}

const char* SelectionName() {
  const Selection s = CurrentSelection();
  return s.automatic ? "auto" : PathName(s.path);
}

const char* SelectionReason() { return InitialSelection().reason.c_str(); }

bool SetSelection(const char* name, bool always) {
  int v;
  Path p;
  if (name != nullptr && std::strcmp(name, "auto") == 0) {
    if (!AnyLanePath()) return false;
    v = kAuto;
  } else if (ParsePath(name, &p) && PathAvailable(p)) {
    v = static_cast<int>(p);
  } else {
    return false;
  }
  g_path.store(v, std::memory_order_relaxed);
  g_always.store(always && v != kAuto, std::memory_order_relaxed);
  return true;
}

Cost CostOf(Path p, bool sha512) {
  if (p != Path::Off && Lanes(p, sha512 ? Family::Sha512 : Family::Sha256) == 0) return Cost{0, 0, 0, 0};
  const Plan& automatic = AutoPlan(sha512);
  if (p == Path::Off) return automatic.openssl;
  for (size_t i = 0; i < automatic.count; i++) {
    if (automatic.path[i] == p) return automatic.cost[i];
  }
  return ForcedPlan(sha512, p).cost[0];
}

double AutoCalibrationUs(bool sha512) { return AnyLanePath() ? AutoPlan(sha512).cpu_us : 0; }

Path ChoiceFor(Algorithm alg, size_t n, size_t length) {
  const bool sha512 = IsSha512Family(alg);
  Shape shape;
  for (size_t i = 0; i < n; i++) shape.Add(length, sha512);
  return Decide(sha512, shape.Finish());
}

double PredictNs(Algorithm alg, size_t n, size_t total_bytes) {
  if (n == 0) return 0;
  const bool sha512 = IsSha512Family(alg);
  Shape shape;
  shape.n = n;
  shape.max_blocks = BlocksOf(total_bytes / n, sha512);
  shape.total_blocks = shape.max_blocks * n;
  shape.Finish();
  return Predict(CostOf(Decide(sha512, shape), sha512), shape);
}

bool MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out) {
  const Path p = Choose(key, messages, begin, end);
  if (p == Path::Off) return false;
  Mac(p, key, messages, begin, end, out);
  return true;
}

bool VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results) {
  const Path p = Choose(key, messages, begin, end);
  if (p == Path::Off) return false;
  const size_t ml = key.mac_length;
  Stream(
      p, key, messages, begin, end, [](size_t, uint8_t* scratch) { return scratch; },
      [&](size_t i, const uint8_t* expected) {
        const kmshmac::Span mac = macs[i];
        // Constant time in the MAC bytes; the length is public.
        results[i] = mac.length == ml && Ssl().memcmp(expected, mac.data, ml) == 0 ? 1 : 0;
      });
  return true;
}

}  // namespace mb
}  // namespace kmshmac
