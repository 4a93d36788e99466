#!/bin/sh
# Builds and runs the standalone multi-buffer lane tests (native/mb/test_mb.cc)
# against a scalar SHA-2 oracle. No OpenSSL or Node needed; only a C++ compiler.
#   scripts/test-mb.sh           optimized build
#   scripts/test-mb.sh --asan    with -fsanitize=address,undefined
#   extra args after that go to the test binary (e.g. --quick)
set -eu
cd "$(dirname "$0")/.."
CXX="${CXX:-g++}"
OUT="${TMPDIR:-/tmp}/kms-hmac-test-mb-$$"
FLAGS="-std=c++17 -O3 -D_FORTIFY_SOURCE=2 -g -Wall -Wextra -Werror"
if [ "${1:-}" = "--asan" ]; then
  FLAGS="$FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
  shift
fi
# shellcheck disable=SC2086
"$CXX" $FLAGS -o "$OUT" native/mb/test_mb.cc native/mb/mb_hmac.cc native/mb/sha256_avx2.cc native/mb/sha512_avx2.cc native/mb/sha256_shani.cc
trap 'rm -f "$OUT"' EXIT
"$OUT" "$@"
