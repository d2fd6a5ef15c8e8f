#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite
# with ctest. Exits non-zero on any failure.
#   scripts/test.sh                      RelWithDebInfo build in build/
#   scripts/test.sh --asan               ASan + UBSan build in build-asan/
#   scripts/test.sh --label kube         only the tests with this ctest label
#                                        (kube, e2e, integration)
#   scripts/test.sh --repeat 10          run each test until it fails, at most
#                                        10 times (flake hunting; combine with
#                                        --label, and load the machine meanwhile)
set -euo pipefail
cd "$(dirname "$0")/.."
asan=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --asan) asan=1 ;;
    --label) ctest_args+=(-L "$2"); shift ;;
    --repeat) ctest_args+=(--repeat "until-fail:$2"); shift ;;
    *) echo "usage: scripts/test.sh [--asan] [--label LABEL] [--repeat N]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$asan" = 1 ]; then
  export BUILD_DIR=build-asan BUILD_TYPE=Debug
  bash scripts/build.sh -DGITOPS_SANITIZE=ON -DGITOPS_BUILD_BENCH=OFF
else
  bash scripts/build.sh
fi
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900 "${ctest_args[@]}"
