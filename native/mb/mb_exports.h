// JS-visible view of the multi-buffer path (see mb_exports.cc).
#pragma once

#include <napi.h>

namespace kmshmac {
namespace mb {

// Adds to the addon's exports:
//   simdPath      getter: "off" | "avx2" | "shani" (the path batches use now)
//   simdReason    string: why detect() chose the load-time path
//   simdPaths     string[]: every path this machine can run ("off" first)
//   setSimdPath(name, force = false) -> string: switch path for later
//                 batches (tests and benchmarks); with force, batches skip
//                 the size thresholds and always use the lanes. RangeError
//                 if the machine cannot run the path.
void AddExports(Napi::Env env, Napi::Object exports);

}  // namespace mb
}  // namespace kmshmac
