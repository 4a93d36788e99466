// JS-visible view of the multi-buffer path (see mb_exports.cc).
#pragma once

#include <napi.h>

namespace kmshmac {
namespace mb {

// Adds to the addon's exports:
//   simdPath      getter: "off" | "avx2" (the path batches use now)
//   simdReason    string: why detect() chose the load-time path
//   simdPaths     string[]: every path this machine can run ("off" first)
//   setSimdPath(name) -> string: switch path for later batches (tests and
//                 benchmarks); RangeError if the machine cannot run it.
void AddExports(Napi::Env env, Napi::Object exports);

}  // namespace mb
}  // namespace kmshmac
