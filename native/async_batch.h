// Async batches: the promise-returning twins of the packed calls.
//
//   call (JS thread)   read and check the arguments; small batches run right
//                      here; others are cut into chunks of equal work and
//                      queued, their ArrayBuffer inputs copied once into
//                      recycled memory, their shared memory read in place
//   pool threads       hash the chunks (thread_pool.h)
//   settle (JS thread) one threadsafe-function call per batch: write the
//                      output and resolve, or reject; never left pending
#pragma once

#include <napi.h>

#include "hmac.h"
#include "js_args.h"

namespace kmshmac {

// Starts MACing (or verifying: batch.spans.macs set) every message of `batch`
// and returns the promise of the results. `out` is the caller's Uint8Array
// for them, or undefined for a new one. Throws TypeError/RangeError for bad
// arguments; once it returns, the promise always settles.
Napi::Value StartBatch(Napi::Env env, const HmacKey& key, const JsBatch& batch, Napi::Value out);

// batchStats(): the counters of stats.h as a plain object.
Napi::Value BatchStatsObject(const Napi::CallbackInfo& info);

}  // namespace kmshmac
