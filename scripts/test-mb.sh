#!/bin/sh
# Builds and runs the standalone multi-buffer lane tests (native/mb/test_mb.cc)
# against a scalar SHA-2 oracle. No OpenSSL or Node needed; only a C++ compiler.
#   scripts/test-mb.sh             optimized build, every lane path this CPU runs
#   scripts/test-mb.sh --asan      with -fsanitize=address,undefined
#   scripts/test-mb.sh --no-simd   kernels compiled out (-DKMS_HMAC_MB_DISABLE),
#                                  as on non-x86 builds: must compile and report "off"
#   further args go to the test binary: --quick (shorter length sweep), --bench
#   (kernel speed per instantiation instead of the tests)
# It prints each path's status and which instantiations it tested. CXX picks
# the compiler (e.g. CXX=clang++).
set -eu
cd "$(dirname "$0")/.."
CXX="${CXX:-g++}"
OUT="${TMPDIR:-/tmp}/kms-hmac-test-mb-$$"
# -Wno-psabi: test_mb.cc instantiates the generic kernel at 8 and 16 lanes
# for baseline x86-64 (see there); GCC notes the ABI of wide vectors.
FLAGS="-std=c++17 -O3 -D_FORTIFY_SOURCE=2 -g -Wall -Wextra -Werror -Wno-psabi"
while [ $# -gt 0 ]; do
  case "$1" in
    --asan) FLAGS="$FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" ;;
    --no-simd) FLAGS="$FLAGS -DKMS_HMAC_MB_DISABLE" ;;
    *) break ;;
  esac
  shift
done
# shellcheck disable=SC2086
"$CXX" $FLAGS -o "$OUT" native/mb/test_mb.cc native/mb/mb_hmac.cc native/mb/mb_paths.cc \
  native/mb/lanes_sse2.cc native/mb/lanes_avx2.cc native/mb/lanes_avx512.cc native/mb/sha256_shani.cc
trap 'rm -f "$OUT"' EXIT
"$OUT" "$@"
