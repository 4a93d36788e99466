#include "js_args.h"

#include <cmath>
#include <cstring>
#include <new>
#include <string>

namespace kmshmac {
namespace {

uint8_t g_empty[1];

enum class Sharing { kRefuse, kAccept };

// Reads a typed array over a live ArrayBuffer, or over a SharedArrayBuffer
// when `sharing` accepts one (then `*shared` is set). Returns nullptr on
// success, else what is wrong with the value.
const char* ReadView(napi_env env, napi_value value, napi_typedarray_type want, Sharing sharing, void** data,
                     size_t* length, bool* shared) {
  // napi_get_typedarray_info fails for anything that is not a typed array
  // (a Proxy included), so it doubles as the type check. It reads the
  // length once: for a view tracking a growable SharedArrayBuffer, the
  // length at this moment, which stays valid (such a buffer only grows).
  napi_value buffer;
  napi_typedarray_type type;
  size_t byte_offset = 0;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &byte_offset) != napi_ok || type != want) {
    return want == napi_uint8_array ? "must be a Uint8Array" : "must be a Uint32Array";
  }
  bool is_array_buffer = false;
  if (napi_is_arraybuffer(env, buffer, &is_array_buffer) != napi_ok) return "has no readable buffer";
  *shared = !is_array_buffer;  // a typed array's buffer is an ArrayBuffer or a SharedArrayBuffer
  if (*shared && sharing == Sharing::kRefuse) {
    // Another thread could change the bytes while we hash or compare them.
    return "must not be backed by a SharedArrayBuffer";
  }
  if (*length == 0) {
    bool detached = false;
    if (!*shared && (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached)) {
      return "is backed by a detached ArrayBuffer";
    }
    *data = g_empty;  // never null, even for an empty view
  }
  return nullptr;
}

[[noreturn]] void ThrowType(Napi::Env env, const char* what, const char* problem) {
  throw Napi::TypeError::New(env, std::string(what) + " " + problem);
}

Bytes ReadBytes(const Napi::Value& value, const char* what, Sharing sharing) {
  void* data = nullptr;
  size_t length = 0;
  bool shared = false;
  if (const char* problem = ReadView(value.Env(), value, napi_uint8_array, sharing, &data, &length, &shared)) {
    ThrowType(value.Env(), what, problem);
  }
  return {static_cast<uint8_t*>(data), length, shared};
}

// Throws a RangeError unless offsets[0..entries) are non-decreasing and the
// last is within `data_length` (then all are).
void CheckOffsets(Napi::Env env, const uint32_t* offsets, size_t entries, size_t data_length) {
  // One pass without branches (the compiler vectorizes it); the loop below
  // only names the first bad entry.
  uint32_t decreases = 0;
  for (size_t i = 1; i < entries; i++) decreases |= offsets[i] < offsets[i - 1];
  if (!decreases && offsets[entries - 1] <= data_length) return;
  for (size_t i = 0; i < entries; i++) {
    if (offsets[i] > data_length) {
      throw Napi::RangeError::New(env, "offsets[" + std::to_string(i) + "] is past the end of data");
    }
    if (i > 0 && offsets[i] < offsets[i - 1]) {
      throw Napi::RangeError::New(env, "offsets must not decrease (offsets[" + std::to_string(i) + "])");
    }
  }
}

}  // namespace

Bytes GetBytes(const Napi::Value& value, const char* what) { return ReadBytes(value, what, Sharing::kRefuse); }

size_t GetIndex(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number != std::floor(number) || number > 9007199254740991.0) {
    throw Napi::RangeError::New(value.Env(), std::string(what) + " must be a non-negative integer");
  }
  return static_cast<size_t>(number);
}

JsBatch GetPacked(const Napi::Value& data_value, const Napi::Value& offsets_value) {
  Napi::Env env = data_value.Env();
  const Bytes data = ReadBytes(data_value, "data", Sharing::kAccept);
  void* raw = nullptr;
  size_t entries = 0;
  bool offsets_shared = false;
  if (const char* problem =
          ReadView(env, offsets_value, napi_uint32_array, Sharing::kAccept, &raw, &entries, &offsets_shared)) {
    ThrowType(env, "offsets", problem);
  }
  if (entries == 0) throw Napi::RangeError::New(env, "offsets must have n+1 entries (at least 1)");
  JsBatch batch;
  batch.data_shared = data.shared;
  batch.data_value = data_value;
  const auto* offsets = static_cast<const uint32_t*>(raw);
  if (offsets_shared) {
    // Checked in place, shared offsets could change between the check and
    // their use: each is read once, into our own memory, and checked there.
    try {
      batch.offsets_copy = Recycled::Take(entries * sizeof(uint32_t));
    } catch (const std::bad_alloc&) {
      throw Napi::RangeError::New(env, "kms-hmac: out of memory for the offsets copy");
    }
    std::memcpy(batch.offsets_copy.data(), offsets, entries * sizeof(uint32_t));
    offsets = reinterpret_cast<const uint32_t*>(batch.offsets_copy.data());
  }
  CheckOffsets(env, offsets, entries, data.length);
  batch.spans = {data.data, data.length, offsets, entries - 1};
  return batch;
}

void AddMacs(JsBatch& batch, const Napi::Value& macs_value, size_t mac_length) {
  const Bytes macs = GetOutput(macs_value, CheckedProduct(macs_value.Env(), batch.spans.count, mac_length), "macs");
  batch.spans.macs = macs.data;
  batch.macs_shared = macs.shared;
  batch.macs_value = macs_value;
}

Bytes GetOutput(const Napi::Value& value, size_t needed, const char* what) {
  Bytes out = ReadBytes(value, what, Sharing::kAccept);
  if (out.length < needed) {
    throw Napi::RangeError::New(value.Env(), std::string(what) + " is too small: need " + std::to_string(needed) +
                                                 " bytes, have " + std::to_string(out.length));
  }
  return out;
}

size_t CheckedProduct(Napi::Env env, size_t count, size_t size) {
  if (count != 0 && size > SIZE_MAX / count) throw Napi::RangeError::New(env, "batch too large");
  return count * size;
}

}  // namespace kmshmac
