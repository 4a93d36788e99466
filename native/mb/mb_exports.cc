#include "mb_exports.h"

#include <string>

#include "mb_dispatch.h"

namespace kmshmac {
namespace mb {
namespace {

const char kNames[] = "auto|off|sse2|avx2|shani|avx512";

Napi::Value GetSimdPath(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), SelectionName()); }

Napi::Value SetSimdPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, std::string("setSimdPath: name must be a string (") + kNames + ")");
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  Path p;
  if (name != "auto" && !ParsePath(name.c_str(), &p)) {
    throw Napi::RangeError::New(env, "setSimdPath: unknown path '" + name + "' (expected " + kNames + ")");
  }
  const bool always = info.Length() >= 2 && info[1].ToBoolean().Value();
  if (!SetSelection(name.c_str(), always)) {
    const std::string why = name == "auto" ? "no path can run here" : PathStatus(p);
    throw Napi::RangeError::New(env, "setSimdPath: '" + name + "' is not available: " + why);
  }
  return Napi::String::New(env, SelectionName());
}

Napi::Value SimdChoice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t alg = info[0].ToNumber().Uint32Value();
  if (alg >= static_cast<uint32_t>(kAlgorithmCount)) throw Napi::RangeError::New(env, "simdChoice: bad algorithm");
  const size_t n = info[1].ToNumber().Uint32Value(), length = info[2].ToNumber().Uint32Value();
  return Napi::String::New(env, PathName(ChoiceFor(static_cast<Algorithm>(alg), n, length)));
}

Napi::Value SimdCalibration(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("cpu", CpuId());
  for (bool sha512 : {false, true}) {
    Napi::Object paths = Napi::Object::New(env);
    for (Path p : kAllPaths) {
      if (Lanes(p, sha512 ? Family::Sha512 : Family::Sha256) == 0 && p != Path::Off) continue;
      const Cost c = CostOf(p, sha512);
      Napi::Object o = Napi::Object::New(env);
      o.Set("perBatchNs", c.per_batch);
      o.Set("perMessageNs", c.per_message);
      o.Set("perRoundNs", c.per_round);
      o.Set("lanes", static_cast<double>(c.lanes));
      paths.Set(PathName(p), o);
    }
    Napi::Object family = Napi::Object::New(env);
    family.Set("paths", paths);
    family.Set("calibrationCpuMs", AutoCalibrationUs(sha512) / 1e3);
    result.Set(sha512 ? "sha512" : "sha256", family);
  }
  return result;
}

}  // namespace

void AddExports(Napi::Env env, Napi::Object exports) {
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor<GetSimdPath>("simdPath", napi_enumerable));
  exports.Set("simdReason", Napi::String::New(env, SelectionReason()));
  Napi::Array paths = Napi::Array::New(env);
  std::string status;
  uint32_t i = 0;
  for (Path p : kAllPaths) {
    if (PathAvailable(p)) paths.Set(i++, Napi::String::New(env, PathName(p)));
    if (p != Path::Off) status += std::string(status.empty() ? "" : "; ") + PathName(p) + ": " + PathStatus(p);
  }
  exports.Set("simdPaths", paths);
  exports.Set("simdStatus", Napi::String::New(env, status));
  exports.Set("setSimdPath", Napi::Function::New<SetSimdPath>(env, "setSimdPath"));
  exports.Set("simdChoice", Napi::Function::New<SimdChoice>(env, "simdChoice"));
  exports.Set("simdCalibration", Napi::Function::New<SimdCalibration>(env, "simdCalibration"));
}

}  // namespace mb
}  // namespace kmshmac
