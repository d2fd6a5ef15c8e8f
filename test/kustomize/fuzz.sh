#!/bin/sh
# Builds the libFuzzer target with clang in build-fuzz/ and runs it for a
# while on the seed corpus (hostile inputs: ",", deep nesting, alias bombs,
# binary junk, a full kustomization).
#   test/kustomize/fuzz.sh [SECONDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$src/build-fuzz
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  -DGITOPS_KUSTOMIZE_FUZZ=ON -DGITOPS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target fuzz_kustomize_engine
corpus=$(mktemp -d)
cp "$here"/fuzz-corpus/* "$corpus"/
timeout -s KILL $(( ${1:-60} + 30 )) "$build/test-bin/fuzz_kustomize_engine" "$corpus" \
  -max_total_time="${1:-60}" -detect_leaks=0 -rss_limit_mb=2048 -timeout=10 -max_len=65536
rm -rf "$corpus"
