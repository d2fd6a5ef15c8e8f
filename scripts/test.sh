#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite
# with ctest. Exits non-zero on any failure.
#   scripts/test.sh            RelWithDebInfo build in build/
#   scripts/test.sh --asan     ASan + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--asan" ]; then
  export BUILD_DIR=build-asan BUILD_TYPE=Debug
  bash scripts/build.sh -DGITOPS_SANITIZE=ON -DGITOPS_BUILD_BENCH=OFF
else
  bash scripts/build.sh
fi
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900
