// Glue between the addon's batch loops (native/batch.cc) and the multi-buffer
// lanes (mb_hmac.h): which paths batches may use, the per-batch choice among
// them (a cost model calibrated on this CPU, see mb_dispatch.cc), and the
// HmacKey/SpanList adapters. No Node-API here; mb_exports.cc holds the
// JS-visible switch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../batch.h"
#include "../hmac.h"
#include "mb_hmac.h"

namespace kmshmac {
namespace mb {

// What batches may use. Automatic: every path that can run here, each batch
// going to whichever the calibrated cost model predicts fastest for its
// algorithm, message count and lengths (OpenSSL included). Otherwise one
// path: KMS_HMAC_SIMD=<path> at load, or SetSelection(); batches then use
// that path where the model says it beats OpenSSL, or always with `always`.
struct Selection {
  bool automatic;
  Path path;    // when !automatic
  bool always;  // skip the cost model: every batch of 1+ messages takes `path`
};
// Initialised from KMS_HMAC_SIMD on first use (auto when unset).
Selection CurrentSelection();
// "auto" or the forced path's name.
const char* SelectionName();
// Why the load-time selection is what it is (KMS_HMAC_SIMD, the CPU).
const char* SelectionReason();
// name: "auto" or a path name. Returns false, changing nothing, when the name
// is unknown or the path cannot run here. For tests and benchmarks.
bool SetSelection(const char* name, bool always);

// The path a batch of `n` messages of `length` bytes each would take now, for
// `alg` (diagnostics: bench/simd.js prints it). Calibrates if needed.
Path ChoiceFor(Algorithm alg, size_t n, size_t length);

// Calibration figures of one path for one family (nanoseconds), measured on
// first use: a batch of n messages costs
//   per_batch + per_message * n + per_round * rounds,
// rounds = max(longest message's blocks, ceil(n / lanes) * average blocks),
// a message's blocks counting the outer hash's one. OpenSSL is the path with
// one lane.
struct Cost {
  double per_batch, per_message, per_round;
  size_t lanes;
};
// As automatic dispatch sees them (or, for a path it leaves out, as a forced
// selection sees them); all zero when `p` has no kernel for the family here.
Cost CostOf(Path p, bool sha512);
// CPU time automatic dispatch's calibration of the family took (calibrates
// it if needed), in microseconds.
double AutoCalibrationUs(bool sha512);

// The cost model's time (nanoseconds, one thread) for a batch of n messages
// of total_bytes together, taken as all of the average length, on the path
// the current selection would give it. Calibrates if needed. O(1): the
// async scheduler asks it for every batch (native/async_batch.cc).
double PredictNs(Algorithm alg, size_t n, size_t total_bytes);

// MACs messages [begin, end) into out + i*mac_length through the lanes, if
// the selection picks a lane path for this batch. Returns false when the
// caller should use its OpenSSL loop instead.
bool MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out);

// Same decision for verification: results[i] = 1 when macs[i] matches (constant-time
// compare of the bytes; a MAC of another length is a mismatch).
bool VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results);

}  // namespace mb
}  // namespace kmshmac
