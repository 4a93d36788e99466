// Glue between the addon's batch loops (native/batch.cc) and the multi-buffer
// lanes (mb_hmac.h): picks the process-wide path, decides per batch whether
// lanes beat OpenSSL one message at a time, and adapts HmacKey/SpanList.
// No Node-API here; mb_exports.cc holds the JS-visible switch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../batch.h"
#include "../hmac.h"
#include "mb_hmac.h"

namespace kmshmac {
namespace mb {

// The path batches use now: detect() at load, changed by set_active_path().
Path active_path();
// Switches the path for later batches (tests/benchmarks). With `force`, every
// batch of 1+ messages goes to the lanes regardless of the size thresholds
// (tests use it to reach every partial-lane count; bench/simd.js to measure
// the raw lanes). Returns false, and changes nothing, if `p` cannot run here.
bool set_active_path(Path p, bool force = false);
bool forced();

// MACs messages [begin, end) into out + i*mac_length through the lanes, if
// the active path is on and the batch is large enough to win. Returns false
// when the caller should use its OpenSSL loop instead.
bool MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out);

// Same decision for verification: results[i] = 1 when macs[i] matches (constant-time
// compare of the bytes; a MAC of another length is a mismatch).
bool VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results);

}  // namespace mb
}  // namespace kmshmac
