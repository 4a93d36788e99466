// Reading arguments from JavaScript. Every argument is checked here even
// though the TypeScript façade validates first: the addon is reachable
// directly, and bad input must end in a TypeError/RangeError, never in an
// abort or an out-of-bounds access.
//
// None of these calls can run JavaScript (no getters, valueOf or Proxy
// traps: only typed-array introspection), so once a pointer into a JS buffer
// is taken, nothing can detach, resize or rewrite that buffer until the
// synchronous call that took it returns.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "batch.h"

namespace kmshmac {

struct Bytes {
  uint8_t* data;
  size_t length;
};

// A Uint8Array (or Buffer) over a live, non-shared ArrayBuffer. `what` names
// the argument in the error message.
Bytes GetBytes(const Napi::Value& value, const char* what);

// A non-negative integral Number (no coercion: an object is a TypeError).
size_t GetIndex(const Napi::Value& value, const char* what);

// data (Uint8Array) + offsets (Uint32Array of n+1 non-decreasing entries,
// all within data).
PackedBatch GetPacked(const Napi::Value& data, const Napi::Value& offsets);

// A Uint8Array with room for `needed` bytes.
Bytes GetOutput(const Napi::Value& value, size_t needed, const char* what);

// count * size, or a RangeError if that overflows.
size_t CheckedProduct(Napi::Env env, size_t count, size_t size);

}  // namespace kmshmac
