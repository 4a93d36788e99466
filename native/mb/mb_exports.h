// JS-visible view of the multi-buffer paths (see mb_exports.cc).
#pragma once

#include <napi.h>

namespace kmshmac {
namespace mb {

// Adds to the addon's exports:
//   simdPath      getter: "auto" (each batch takes the fastest path, by the
//                 calibrated cost model) or the one path forced by
//                 KMS_HMAC_SIMD / setSimdPath; "off" when no path can run
//   simdReason    string: why the load-time selection is what it is
//   simdPaths     string[]: every path that can run here ("off" first)
//   simdStatus    string: each path's state, "sse2: ok; ...; avx512: the CPU
//                 lacks AVX-512 (F and BW)"; a path whose known-answer
//                 self-test failed says so here and is never used
//   setSimdPath(name, always = false) -> string: "auto" or a path name, for
//                 later batches (tests and benchmarks); with always, every
//                 batch takes the path, skipping the cost model. RangeError
//                 if the machine cannot run the path.
//   simdChoice(algorithm, count, length) -> string: the path a batch of
//                 `count` messages of `length` bytes would take now
//   simdCalibration() -> { cpu, sha256: { paths: {<path>: cost},
//                 calibrationCpuMs }, sha512: ... }: the cost model's figures
//                 (calibrates every path if needed), and the CPU time the
//                 automatic dispatch's calibration took
void AddExports(Napi::Env env, Napi::Object exports);

}  // namespace mb
}  // namespace kmshmac
