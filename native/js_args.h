// Reading arguments from JavaScript. Every argument is checked here even
// though the TypeScript façade validates first: the addon is reachable
// directly, and bad input must end in a TypeError/RangeError, never in an
// abort or an out-of-bounds access.
//
// None of these calls can run JavaScript (no getters, valueOf or Proxy
// traps: only typed-array introspection), so once a pointer into a JS
// ArrayBuffer is taken, nothing can detach, resize or rewrite that buffer
// until the synchronous call that took it returns.
//
// Shared memory is another matter: another thread may write a
// SharedArrayBuffer at any time, and a growable one may grow (it never
// shrinks, and its memory never moves). The packed batch arguments accept it
// (docs/performance.md, "Shared memory"): each length is read once, here, and
// offsets in shared memory are copied once and checked on the copy, so a
// racing writer can change which bytes are hashed but never make a read or a
// write leave the buffer. Single messages and key material stay unshared.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "batch.h"
#include "recycled.h"

namespace kmshmac {

struct Bytes {
  uint8_t* data;
  size_t length;
  bool shared = false;  // backed by a SharedArrayBuffer (another thread may write it)
};

// A Uint8Array (or Buffer) over a live, non-shared ArrayBuffer. `what` names
// the argument in the error message.
Bytes GetBytes(const Napi::Value& value, const char* what);

// A non-negative integral Number (no coercion: an object is a TypeError).
size_t GetIndex(const Napi::Value& value, const char* what);

// A packed batch as read from JavaScript: data (Uint8Array) + offsets
// (Uint32Array of n+1 non-decreasing entries, all within data), and for
// verification the MACs; each over an ArrayBuffer or a SharedArrayBuffer.
struct JsBatch {
  PackedBatch spans;  // spans.offsets never points into shared memory
  bool data_shared = false;
  bool macs_shared = false;
  Recycled offsets_copy;  // shared offsets, copied once: spans.offsets points here
  // The views themselves, valid during the call: an async batch that reads
  // shared memory in place holds a reference to them until it settles.
  Napi::Value data_value;
  Napi::Value macs_value;
};

JsBatch GetPacked(const Napi::Value& data, const Napi::Value& offsets);

// The batch's MACs to check: `macs_value`, n of them at `mac_length` stride.
void AddMacs(JsBatch& batch, const Napi::Value& macs_value, size_t mac_length);

// A batch output: a Uint8Array (over an ArrayBuffer or a SharedArrayBuffer)
// with room for `needed` bytes.
Bytes GetOutput(const Napi::Value& value, size_t needed, const char* what);

// count * size, or a RangeError if that overflows.
size_t CheckedProduct(Napi::Env env, size_t count, size_t size);

}  // namespace kmshmac
