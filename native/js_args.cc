#include "js_args.h"

#include <cmath>
#include <string>

namespace kmshmac {
namespace {

uint8_t g_empty[1];

// Reads a typed array over a live, non-shared ArrayBuffer. Returns nullptr
// on success, else what is wrong with the value.
const char* ReadView(napi_env env, napi_value value, napi_typedarray_type want, void** data, size_t* length) {
  // napi_get_typedarray_info fails for anything that is not a typed array
  // (a Proxy included), so it doubles as the type check.
  napi_value buffer;
  napi_typedarray_type type;
  size_t byte_offset = 0;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &byte_offset) != napi_ok || type != want) {
    return want == napi_uint8_array ? "must be a Uint8Array" : "must be a Uint32Array";
  }
  bool is_array_buffer = false;
  if (napi_is_arraybuffer(env, buffer, &is_array_buffer) != napi_ok || !is_array_buffer) {
    // Another thread could change the bytes while we hash or compare them.
    return "must not be backed by a SharedArrayBuffer";
  }
  if (*length == 0) {
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
      return "is backed by a detached ArrayBuffer";
    }
    *data = g_empty;  // never null, even for an empty view
  }
  return nullptr;
}

[[noreturn]] void ThrowType(Napi::Env env, const char* what, const char* problem) {
  throw Napi::TypeError::New(env, std::string(what) + " " + problem);
}

}  // namespace

Bytes GetBytes(const Napi::Value& value, const char* what) {
  void* data = nullptr;
  size_t length = 0;
  if (const char* problem = ReadView(value.Env(), value, napi_uint8_array, &data, &length)) {
    ThrowType(value.Env(), what, problem);
  }
  return {static_cast<uint8_t*>(data), length};
}

size_t GetIndex(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number != std::floor(number) || number > 9007199254740991.0) {
    throw Napi::RangeError::New(value.Env(), std::string(what) + " must be a non-negative integer");
  }
  return static_cast<size_t>(number);
}

PackedBatch GetPacked(const Napi::Value& data_value, const Napi::Value& offsets_value) {
  Napi::Env env = data_value.Env();
  const Bytes data = GetBytes(data_value, "data");
  void* raw = nullptr;
  size_t entries = 0;
  if (const char* problem = ReadView(env, offsets_value, napi_uint32_array, &raw, &entries)) {
    ThrowType(env, "offsets", problem);
  }
  if (entries == 0) throw Napi::RangeError::New(env, "offsets must have n+1 entries (at least 1)");
  const auto* offsets = static_cast<const uint32_t*>(raw);
  // Non-decreasing and the last within data: then all are. One pass without
  // branches (the compiler vectorizes it); the loop below only names the
  // first bad entry.
  uint32_t decreases = 0;
  for (size_t i = 1; i < entries; i++) decreases |= offsets[i] < offsets[i - 1];
  if (!decreases && offsets[entries - 1] <= data.length) return {data.data, data.length, offsets, entries - 1};
  for (size_t i = 0; i < entries; i++) {
    if (offsets[i] > data.length) {
      throw Napi::RangeError::New(env, "offsets[" + std::to_string(i) + "] is past the end of data");
    }
    if (i > 0 && offsets[i] < offsets[i - 1]) {
      throw Napi::RangeError::New(env, "offsets must not decrease (offsets[" + std::to_string(i) + "])");
    }
  }
  return {data.data, data.length, offsets, entries - 1};
}

Bytes GetOutput(const Napi::Value& value, size_t needed, const char* what) {
  Bytes out = GetBytes(value, what);
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
