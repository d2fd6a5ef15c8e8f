#!/bin/sh
# Differential test against the oracle (kubectl kustomize, kustomize v5.5.0):
# a few hundred random kustomizations; stops at the first mismatch with a diff.
# Slow (the oracle costs ~0.2 s per build), so it is not part of ctest.
#   test/kustomize/differential.sh [BUILD_DIR] [COUNT] [SEED]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
exec python3 "$here/differential.py" --bin "$build/bin/kustomize-build" --count "${2:-300}" --seed "${3:-1}"
