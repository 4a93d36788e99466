// Node-API bindings: argument checking, key handles, sync and async batches.
//
// Every argument from JS is checked here even though the TypeScript façade
// validates first: this module is reachable directly, and bad input must end
// in a TypeError/RangeError, never in an abort or an out-of-bounds read.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "batch.h"
#include "hmac.h"
#include "mb/mb_exports.h"
#include "openssl_api.h"

namespace kmshmac {
namespace {

// ---------------------------------------------------------------------------
// Arguments

struct Bytes {
  uint8_t* data;
  size_t length;
};

uint8_t g_empty[1];

// Reads a Uint8Array (or Buffer) over a live, non-shared ArrayBuffer.
// Returns nullptr on success, else what is wrong with the value.
const char* ReadBytes(const Napi::Value& value, Bytes* out) {
  napi_env env = value.Env();
  // napi_get_typedarray_info fails for anything that is not a typed array,
  // so it doubles as the type check (one N-API call less per argument).
  napi_value buffer;
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type;
  size_t byte_offset = 0;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &byte_offset) != napi_ok ||
      type != napi_uint8_array) {
    return "must be a Uint8Array";
  }
  bool is_array_buffer = false;
  if (napi_is_arraybuffer(env, buffer, &is_array_buffer) != napi_ok || !is_array_buffer) {
    // Another thread could change the bytes while we hash or compare them.
    return "must not be backed by a SharedArrayBuffer";
  }
  if (length == 0) {
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
      return "is backed by a detached ArrayBuffer";
    }
    *out = {g_empty, 0};
    return nullptr;
  }
  *out = {static_cast<uint8_t*>(data), length};
  return nullptr;
}

Bytes GetBytes(const Napi::Value& value, const char* what) {
  Bytes bytes{};
  if (const char* problem = ReadBytes(value, &bytes)) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " " + problem);
  }
  return bytes;
}

size_t GetIndex(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number != std::floor(number) || number > 9007199254740991.0) {
    throw Napi::RangeError::New(value.Env(), std::string(what) + " must be a non-negative integer");
  }
  return static_cast<size_t>(number);
}

// Packed messages: data plus a Uint32Array of n+1 non-decreasing offsets.
struct Packed {
  Bytes data;
  const uint32_t* offsets;
  size_t count;
};

Packed GetPacked(const Napi::Value& data_value, const Napi::Value& offsets_value) {
  Napi::Env env = data_value.Env();
  Packed packed{GetBytes(data_value, "data"), nullptr, 0};
  if (!offsets_value.IsTypedArray() ||
      offsets_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(env, "offsets must be a Uint32Array");
  }
  Napi::Uint32Array offsets = offsets_value.As<Napi::Uint32Array>();
  if (!offsets.ArrayBuffer().IsArrayBuffer()) {
    throw Napi::TypeError::New(env, "offsets must not be backed by a SharedArrayBuffer");
  }
  const size_t entries = offsets.ElementLength();
  if (entries == 0) {
    if (offsets.ArrayBuffer().IsDetached()) throw Napi::TypeError::New(env, "offsets is backed by a detached ArrayBuffer");
    throw Napi::RangeError::New(env, "offsets must have n+1 entries (at least 1)");
  }
  const uint32_t* values = offsets.Data();
  for (size_t i = 0; i < entries; i++) {
    if (values[i] > packed.data.length) {
      throw Napi::RangeError::New(env, "offsets[" + std::to_string(i) + "] is past the end of data");
    }
    if (i > 0 && values[i] < values[i - 1]) {
      throw Napi::RangeError::New(env, "offsets must not decrease (offsets[" + std::to_string(i) + "])");
    }
  }
  packed.offsets = values;
  packed.count = entries - 1;
  return packed;
}

Napi::Array GetArray(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be an array of Uint8Array");
  return value.As<Napi::Array>();
}

std::vector<Span> GetSpans(const Napi::Array& array, const char* what) {
  const uint32_t count = array.Length();
  std::vector<Span> spans;
  spans.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Bytes bytes{};
    if (const char* problem = ReadBytes(array.Get(i), &bytes)) {
      throw Napi::TypeError::New(array.Env(),
                                 std::string(what) + "[" + std::to_string(i) + "] " + problem);
    }
    spans.push_back({bytes.data, bytes.length});
  }
  return spans;
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

// ---------------------------------------------------------------------------
// Async batches

size_t AsyncThreadCount() {
  // libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise;
  // more chunks than cores only adds overhead.
  size_t pool = 4;
  if (const char* env = std::getenv("UV_THREADPOOL_SIZE")) {
    const long configured = std::strtol(env, nullptr, 10);
    if (configured > 0) pool = static_cast<size_t>(configured);
  }
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<size_t>(1, std::min(pool, cores));
}

// Copy buffers for async jobs, recycled. A fresh multi-megabyte buffer is
// mmapped and page-faulted on every batch, and in a VM those faults cost more
// than the copy itself (measured: 52 ms to copy 64 MiB into new memory, a
// plain memcpy's worth once the pages are reused).
class BufferPool {
 public:
  std::vector<uint8_t> Take(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto best = buffers_.end();
      for (auto it = buffers_.begin(); it != buffers_.end(); ++it) {
        if (it->capacity() >= size && (best == buffers_.end() || it->capacity() < best->capacity())) best = it;
      }
      if (best != buffers_.end()) {
        std::vector<uint8_t> buffer = std::move(*best);
        pooled_bytes_ -= buffer.capacity();
        buffers_.erase(best);
        return buffer;
      }
    }
    std::vector<uint8_t> buffer;
    buffer.reserve(size);
    return buffer;
  }

  void Give(std::vector<uint8_t>&& buffer) {
    constexpr size_t kMinPooled = 1 << 20;     // below this, malloc reuses memory by itself
    constexpr size_t kMaxPooled = 256u << 20;  // what an idle process may keep
    constexpr size_t kMaxBuffers = 4;
    if (buffer.capacity() < kMinPooled) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (buffers_.size() >= kMaxBuffers || pooled_bytes_ + buffer.capacity() > kMaxPooled) return;
    buffer.clear();
    pooled_bytes_ += buffer.capacity();
    buffers_.push_back(std::move(buffer));
  }

 private:
  std::mutex mutex_;
  std::vector<std::vector<uint8_t>> buffers_;
  size_t pooled_bytes_ = 0;
};

BufferPool g_buffers;

// One batch, shared by its chunk workers. Owns copies of everything the
// workers read, so JS can mutate or free its buffers as soon as the call
// returns; the output ArrayBuffer is held by a reference until resolution.
struct BatchJob {
  HmacKey key;
  bool verify = false;
  std::vector<uint8_t> data;
  std::vector<uint32_t> offsets;
  std::vector<uint8_t> mac_bytes;
  std::vector<Span> mac_spans;  // array-form verify: MACs may have any length
  size_t count = 0;
  uint8_t* out = nullptr;
  Napi::Reference<Napi::ArrayBuffer> out_ref;
  Napi::Promise::Deferred deferred;
  size_t pending_chunks = 0;  // touched on the JS thread only

  explicit BatchJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  ~BatchJob() {
    key.Wipe();
    g_buffers.Give(std::move(data));
    g_buffers.Give(std::move(mac_bytes));
  }

  void Run(size_t begin, size_t end) const {
    const SpanList messages = SpanList::Packed(data.data(), offsets.data(), count);
    if (!verify) {
      MacRange(key, messages, begin, end, out);
    } else if (mac_spans.empty()) {
      VerifyRange(key, messages, MacList::Strided(mac_bytes.data(), key.mac_length), begin, end, out);
    } else {
      std::vector<Span> spans = mac_spans;
      VerifyRange(key, messages, MacList::Spans(std::move(spans)), begin, end, out);
    }
  }

  void Resolve(Napi::Env env, size_t out_length) {
    deferred.Resolve(Napi::Uint8Array::New(env, out_length, out_ref.Value(), 0));
    out_ref.Reset();
  }
};

class ChunkWorker : public Napi::AsyncWorker {
 public:
  ChunkWorker(Napi::Env env, std::shared_ptr<BatchJob> job, size_t begin, size_t end)
      : Napi::AsyncWorker(env, "kms-hmac:batch"), job_(std::move(job)), begin_(begin), end_(end) {}

  void Execute() override { job_->Run(begin_, end_); }

  void OnOK() override {
    if (--job_->pending_chunks == 0) {
      const size_t length = job_->verify ? job_->count : job_->count * job_->key.mac_length;
      job_->Resolve(Env(), length);
    }
  }

 private:
  std::shared_ptr<BatchJob> job_;
  size_t begin_, end_;
};

// Splits the job across the thread pool and returns its promise.
Napi::Value StartJob(Napi::Env env, std::shared_ptr<BatchJob> job) {
  const size_t out_length = job->verify ? job->count : job->count * job->key.mac_length;
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, out_length);
  job->out = out_length == 0 ? g_empty : static_cast<uint8_t*>(out.Data());
  job->out_ref = Napi::Persistent(out);
  Napi::Promise promise = job->deferred.Promise();
  if (job->count == 0) {
    job->Resolve(env, 0);
    return promise;
  }
  // Below ~256 messages per chunk the thread handoff costs more than it saves.
  constexpr size_t kMinChunk = 256;
  const size_t chunks = std::max<size_t>(1, std::min(AsyncThreadCount(), job->count / kMinChunk));
  job->pending_chunks = chunks;
  for (size_t c = 0; c < chunks; c++) {
    const size_t begin = job->count * c / chunks;
    const size_t end = job->count * (c + 1) / chunks;
    (new ChunkWorker(env, job, begin, end))->Queue();
  }
  return promise;
}

// Copies packed or array-form messages into the job as one packed buffer.
void CopyPacked(BatchJob* job, const Packed& packed) {
  const uint32_t first = packed.offsets[0];
  const uint32_t last = packed.offsets[packed.count];
  job->data = g_buffers.Take(last - first);
  job->data.assign(packed.data.data + first, packed.data.data + last);
  job->offsets.resize(packed.count + 1);
  for (size_t i = 0; i <= packed.count; i++) job->offsets[i] = packed.offsets[i] - first;
  job->count = packed.count;
}

void CopySpans(Napi::Env env, BatchJob* job, const std::vector<Span>& spans) {
  size_t total = 0;
  for (const Span& span : spans) total += span.length;
  if (total > UINT32_MAX) throw Napi::RangeError::New(env, "batch too large: messages total over 4 GiB");
  job->data = g_buffers.Take(total);
  job->data.resize(total);
  job->offsets.resize(spans.size() + 1);
  size_t at = 0;
  for (size_t i = 0; i < spans.size(); i++) {
    job->offsets[i] = static_cast<uint32_t>(at);
    if (spans[i].length) std::copy(spans[i].data, spans[i].data + spans[i].length, job->data.begin() + at);
    at += spans[i].length;
  }
  job->offsets[spans.size()] = static_cast<uint32_t>(at);
  job->count = spans.size();
}

// ---------------------------------------------------------------------------
// The key handle

class Key : public Napi::ObjectWrap<Key> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Key",
                       {
                           InstanceMethod<&Key::MacInto>("macInto"),
                           InstanceMethod<&Key::Verify>("verify"),
                           InstanceMethod<&Key::MacPackedInto>("macPackedInto"),
                           InstanceMethod<&Key::MacArrayInto>("macArrayInto"),
                           InstanceMethod<&Key::VerifyPackedInto>("verifyPackedInto"),
                           InstanceMethod<&Key::VerifyArrayInto>("verifyArrayInto"),
                           InstanceMethod<&Key::MacPackedAsync>("macPackedAsync"),
                           InstanceMethod<&Key::MacArrayAsync>("macArrayAsync"),
                           InstanceMethod<&Key::VerifyPackedAsync>("verifyPackedAsync"),
                           InstanceMethod<&Key::VerifyArrayAsync>("verifyArrayAsync"),
                           InstanceMethod<&Key::Destroy>("destroy"),
                       });
  }

  // new Key(algorithm: 0..3, keyMaterial: Uint8Array)
  explicit Key(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Key>(info) {
    Napi::Env env = info.Env();
    const size_t alg = GetIndex(info[0], "algorithm");
    if (alg >= static_cast<size_t>(kAlgorithmCount)) throw Napi::RangeError::New(env, "algorithm must be 0..3");
    const Bytes material = GetBytes(info[1], "keyMaterial");
    key_.Init(static_cast<Algorithm>(alg), material.data, material.length);
    live_ = true;
  }

  ~Key() override { key_.Wipe(); }

 private:
  const HmacKey& Live(Napi::Env env) const {
    if (!live_) throw Napi::Error::New(env, "the key was destroyed");
    return key_;
  }

  // macInto(message, out, outOffset)
  Napi::Value MacInto(const Napi::CallbackInfo& info) {
    const HmacKey& key = Live(info.Env());
    const Bytes message = GetBytes(info[0], "message");
    const size_t offset = GetIndex(info[2], "outOffset");
    const Bytes out = GetBytes(info[1], "out");
    if (offset > out.length || out.length - offset < key.mac_length) {
      throw Napi::RangeError::New(info.Env(), "out is too small for the MAC at outOffset");
    }
    key.Mac(message.data, message.length, out.data + offset);
    return info.Env().Undefined();
  }

  // verify(message, mac) -> boolean
  Napi::Value Verify(const Napi::CallbackInfo& info) {
    const HmacKey& key = Live(info.Env());
    const Bytes message = GetBytes(info[0], "message");
    const Bytes mac = GetBytes(info[1], "mac");
    return Napi::Boolean::New(info.Env(), key.Verify(message.data, message.length, mac.data, mac.length));
  }

  // macPackedInto(data, offsets, out)
  Napi::Value MacPackedInto(const Napi::CallbackInfo& info) {
    const HmacKey& key = Live(info.Env());
    const Packed packed = GetPacked(info[0], info[1]);
    const Bytes out = GetOutput(info[2], CheckedProduct(info.Env(), packed.count, key.mac_length), "out");
    MacRange(key, SpanList::Packed(packed.data.data, packed.offsets, packed.count), 0, packed.count, out.data);
    return info.Env().Undefined();
  }

  // macArrayInto(messages, out)
  Napi::Value MacArrayInto(const Napi::CallbackInfo& info) {
    const HmacKey& key = Live(info.Env());
    const SpanList messages = SpanList::Spans(GetSpans(GetArray(info[0], "messages"), "messages"));
    const Bytes out = GetOutput(info[1], CheckedProduct(info.Env(), messages.size(), key.mac_length), "out");
    MacRange(key, messages, 0, messages.size(), out.data);
    return info.Env().Undefined();
  }

  // verifyPackedInto(data, offsets, macs, results)
  Napi::Value VerifyPackedInto(const Napi::CallbackInfo& info) {
    const HmacKey& key = Live(info.Env());
    const Packed packed = GetPacked(info[0], info[1]);
    const Bytes macs = GetOutput(info[2], CheckedProduct(info.Env(), packed.count, key.mac_length), "macs");
    const Bytes results = GetOutput(info[3], packed.count, "results");
    VerifyRange(key, SpanList::Packed(packed.data.data, packed.offsets, packed.count),
                MacList::Strided(macs.data, key.mac_length), 0, packed.count, results.data);
    return info.Env().Undefined();
  }

  // verifyArrayInto(messages, macs, results)
  Napi::Value VerifyArrayInto(const Napi::CallbackInfo& info) {
    const HmacKey& key = Live(info.Env());
    const SpanList messages = SpanList::Spans(GetSpans(GetArray(info[0], "messages"), "messages"));
    std::vector<Span> mac_spans = GetSpans(GetArray(info[1], "macs"), "macs");
    if (mac_spans.size() != messages.size()) {
      throw Napi::RangeError::New(info.Env(), "macs must have one entry per message");
    }
    const Bytes results = GetOutput(info[2], messages.size(), "results");
    VerifyRange(key, messages, MacList::Spans(std::move(mac_spans)), 0, messages.size(), results.data);
    return info.Env().Undefined();
  }

  // macPackedAsync(data, offsets) -> Promise<Uint8Array>
  Napi::Value MacPackedAsync(const Napi::CallbackInfo& info) {
    auto job = NewJob(info.Env(), false);
    CopyPacked(job.get(), GetPacked(info[0], info[1]));
    return StartJob(info.Env(), std::move(job));
  }

  // macArrayAsync(messages) -> Promise<Uint8Array>
  Napi::Value MacArrayAsync(const Napi::CallbackInfo& info) {
    auto job = NewJob(info.Env(), false);
    CopySpans(info.Env(), job.get(), GetSpans(GetArray(info[0], "messages"), "messages"));
    return StartJob(info.Env(), std::move(job));
  }

  // verifyPackedAsync(data, offsets, macs) -> Promise<Uint8Array of 0/1>
  Napi::Value VerifyPackedAsync(const Napi::CallbackInfo& info) {
    auto job = NewJob(info.Env(), true);
    const Packed packed = GetPacked(info[0], info[1]);
    const size_t mac_bytes = CheckedProduct(info.Env(), packed.count, job->key.mac_length);
    const Bytes macs = GetOutput(info[2], mac_bytes, "macs");
    CopyPacked(job.get(), packed);
    job->mac_bytes = g_buffers.Take(mac_bytes);
    job->mac_bytes.assign(macs.data, macs.data + mac_bytes);
    return StartJob(info.Env(), std::move(job));
  }

  // verifyArrayAsync(messages, macs) -> Promise<Uint8Array of 0/1>
  Napi::Value VerifyArrayAsync(const Napi::CallbackInfo& info) {
    auto job = NewJob(info.Env(), true);
    const std::vector<Span> messages = GetSpans(GetArray(info[0], "messages"), "messages");
    const std::vector<Span> macs = GetSpans(GetArray(info[1], "macs"), "macs");
    if (macs.size() != messages.size()) {
      throw Napi::RangeError::New(info.Env(), "macs must have one entry per message");
    }
    CopySpans(info.Env(), job.get(), messages);
    // Copy the MACs into one buffer, then point the spans into it.
    size_t total = 0;
    for (const Span& mac : macs) total += mac.length;
    job->mac_bytes.resize(total);
    job->mac_spans.reserve(macs.size());
    size_t at = 0;
    for (const Span& mac : macs) {
      if (mac.length) std::copy(mac.data, mac.data + mac.length, job->mac_bytes.begin() + at);
      at += mac.length;
    }
    at = 0;
    for (const Span& mac : macs) {
      job->mac_spans.push_back({job->mac_bytes.data() + at, mac.length});
      at += mac.length;
    }
    return StartJob(info.Env(), std::move(job));
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    key_.Wipe();
    live_ = false;
    return info.Env().Undefined();
  }

  std::shared_ptr<BatchJob> NewJob(Napi::Env env, bool verify) {
    const HmacKey& key = Live(env);
    auto job = std::make_shared<BatchJob>(env);
    job->key = key;  // the job's own copy: destroy() during the batch is safe
    job->verify = verify;
    return job;
  }

  HmacKey key_;
  bool live_ = false;
};

// ---------------------------------------------------------------------------
// Module

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  std::string error;
  if (LoadOpenSsl(&error) == nullptr) {
    // Thrown from init, this becomes a catchable error of require()/dlopen.
    throw Napi::Error::New(env, "kms-hmac native backend unavailable: " + error);
  }
  exports.Set("Key", Key::Define(env));
  exports.Set("opensslVersion", Napi::String::New(env, Ssl().version(0)));
  exports.Set("opensslVersionNumber", Napi::Number::New(env, static_cast<double>(Ssl().version_num())));
  Napi::Array mac_lengths = Napi::Array::New(env, kAlgorithmCount);
  Napi::Array block_lengths = Napi::Array::New(env, kAlgorithmCount);
  for (int i = 0; i < kAlgorithmCount; i++) {
    mac_lengths.Set(i, Napi::Number::New(env, MacLength(static_cast<Algorithm>(i))));
    block_lengths.Set(i, Napi::Number::New(env, BlockLength(static_cast<Algorithm>(i))));
  }
  exports.Set("macLengths", mac_lengths);
  exports.Set("blockLengths", block_lengths);
  exports.Set("asyncThreads", Napi::Number::New(env, static_cast<double>(AsyncThreadCount())));
  mb::AddExports(env, exports);  // simdPath, simdReason, simdPaths, setSimdPath (native/mb)
  return exports;
}

}  // namespace
}  // namespace kmshmac

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return kmshmac::Init(env, exports); }

NODE_API_MODULE(kms_hmac, InitModule)
