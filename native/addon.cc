// Node-API bindings: key handles and module exports.
//
// The addon takes single messages and packed batches only (data + n+1
// offsets + an output). The array-of-Uint8Array forms are packed in
// JavaScript (src/mac/pack.ts), so native code never walks a JS array, and no
// JavaScript can run while it holds a pointer into a JS buffer
// (js_args.h).
#include <napi.h>

#include <string>

#include "async_batch.h"
#include "batch.h"
#include "hmac.h"
#include "js_args.h"
#include "mb/mb_exports.h"
#include "openssl_api.h"
#include "thread_pool.h"

namespace kmshmac {
namespace {

// A rejected promise for an argument error of an async call, so an async
// method never throws (whatever it is called with, the caller awaits one
// outcome).
Napi::Value Rejected(const Napi::Error& error) {
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(error.Env());
  deferred.Reject(error.Value());
  return deferred.Promise();
}

class Key : public Napi::ObjectWrap<Key> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Key",
                       {
                           InstanceMethod<&Key::MacInto>("macInto"),
                           InstanceMethod<&Key::Verify>("verify"),
                           InstanceMethod<&Key::MacPackedInto>("macPackedInto"),
                           InstanceMethod<&Key::VerifyPackedInto>("verifyPackedInto"),
                           InstanceMethod<&Key::MacPackedAsync>("macPackedAsync"),
                           InstanceMethod<&Key::VerifyPackedAsync>("verifyPackedAsync"),
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
  // Checked after every argument is read, though reading cannot run JS.
  const HmacKey& Live(Napi::Env env) const {
    if (!live_) throw Napi::Error::New(env, "the key was destroyed");
    return key_;
  }

  // macInto(message, out, outOffset). The message is consumed before the MAC
  // is written, so `out` may overlap it.
  Napi::Value MacInto(const Napi::CallbackInfo& info) {
    const Bytes message = GetBytes(info[0], "message");
    const Bytes out = GetBytes(info[1], "out");
    const size_t offset = GetIndex(info[2], "outOffset");
    const HmacKey& key = Live(info.Env());
    if (offset > out.length || out.length - offset < key.mac_length) {
      throw Napi::RangeError::New(info.Env(), "out is too small for the MAC at outOffset");
    }
    key.Mac(message.data, message.length, out.data + offset);
    return info.Env().Undefined();
  }

  // verify(message, mac) -> boolean
  Napi::Value Verify(const Napi::CallbackInfo& info) {
    const Bytes message = GetBytes(info[0], "message");
    const Bytes mac = GetBytes(info[1], "mac");
    const HmacKey& key = Live(info.Env());
    return Napi::Boolean::New(info.Env(), key.Verify(message.data, message.length, mac.data, mac.length));
  }

  // macPackedInto(data, offsets, out). Any of them may be shared memory (js_args.h).
  Napi::Value MacPackedInto(const Napi::CallbackInfo& info) {
    const JsBatch batch = GetPacked(info[0], info[1]);
    const HmacKey& key = Live(info.Env());
    const Bytes out = GetOutput(info[2], CheckedProduct(info.Env(), batch.spans.count, key.mac_length), "out");
    MacAll(key, batch.spans, out.data);
    return info.Env().Undefined();
  }

  // verifyPackedInto(data, offsets, macs, results)
  Napi::Value VerifyPackedInto(const Napi::CallbackInfo& info) {
    const JsBatch batch = WithMacs(info, GetPacked(info[0], info[1]), info[2]);
    const Bytes results = GetOutput(info[3], batch.spans.count, "results");
    VerifyAll(Live(info.Env()), batch.spans, results.data);
    return info.Env().Undefined();
  }

  // macPackedAsync(data, offsets, out?) -> Promise<Uint8Array>
  Napi::Value MacPackedAsync(const Napi::CallbackInfo& info) {
    try {
      const JsBatch batch = GetPacked(info[0], info[1]);
      return StartBatch(info.Env(), Live(info.Env()), batch, info[2]);
    } catch (const Napi::Error& error) {
      return Rejected(error);
    }
  }

  // verifyPackedAsync(data, offsets, macs, results?) -> Promise<Uint8Array of 0/1>
  Napi::Value VerifyPackedAsync(const Napi::CallbackInfo& info) {
    try {
      const JsBatch batch = WithMacs(info, GetPacked(info[0], info[1]), info[2]);
      return StartBatch(info.Env(), Live(info.Env()), batch, info[3]);
    } catch (const Napi::Error& error) {
      return Rejected(error);
    }
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    key_.Wipe();
    live_ = false;
    return info.Env().Undefined();
  }

  // The batch with its MACs (n of them, at the key's stride); checks the key is live.
  JsBatch WithMacs(const Napi::CallbackInfo& info, JsBatch batch, const Napi::Value& macs_value) const {
    AddMacs(batch, macs_value, Live(info.Env()).mac_length);
    return batch;
  }

  HmacKey key_;
  bool live_ = false;
};

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
  exports.Set("asyncThreads", Napi::Number::New(env, static_cast<double>(PoolThreadCount())));
#ifdef KMS_HMAC_FAULT_INJECTION
  exports.Set("faultInjection", Napi::Boolean::New(env, true));  // sanitizer builds: see async_batch.cc
#endif
  exports.Set("batchStats", Napi::Function::New<BatchStatsObject>(env, "batchStats"));
  mb::AddExports(env, exports);  // simdPath, simdReason, simdPaths, setSimdPath (native/mb)
  return exports;
}

}  // namespace
}  // namespace kmshmac

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return kmshmac::Init(env, exports); }

NODE_API_MODULE(kms_hmac, InitModule)
