#include "mb_exports.h"

#include <string>

#include "mb_dispatch.h"

namespace kmshmac {
namespace mb {
namespace {

Napi::Value GetSimdPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), path_name(active_path()));
}

Napi::Value SetSimdPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "setSimdPath: name must be a string (off|avx2|shani|avx512)");
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  Path p;
  if (!parse_path(name.c_str(), &p)) {
    throw Napi::RangeError::New(env, "setSimdPath: unknown path '" + name + "' (expected off|avx2|shani|avx512)");
  }
  const bool force = info.Length() >= 2 && info[1].ToBoolean().Value();
  if (!set_active_path(p, force)) {
    throw Napi::RangeError::New(env, "setSimdPath: path '" + name + "' is not available on this machine/build");
  }
  return Napi::String::New(env, path_name(active_path()));
}

}  // namespace

void AddExports(Napi::Env env, Napi::Object exports) {
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor<GetSimdPath>("simdPath", napi_enumerable));
  exports.Set("simdReason", Napi::String::New(env, detect_reason()));
  Napi::Array paths = Napi::Array::New(env);
  uint32_t i = 0;
  for (Path p : {Path::Off, Path::Avx2, Path::ShaNi, Path::Avx512}) {
    if (path_available(p)) paths.Set(i++, Napi::String::New(env, path_name(p)));
  }
  exports.Set("simdPaths", paths);
  exports.Set("setSimdPath", Napi::Function::New<SetSimdPath>(env, "setSimdPath"));
}

}  // namespace mb
}  // namespace kmshmac
