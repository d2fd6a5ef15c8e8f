#!/usr/bin/env bash
# Runs every benchmark and prints one table. Each row compares us with a named
# peer measured in the same run. Not part of the test suite.
#   bench/run.sh            full sizes (several minutes)
#   bench/run.sh --quick    small sizes, to check the benchmarks work
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
B=build/bin
QUICK=${1:-}
echo "| benchmark | ours | peer | ours/peer | target |"
echo "|---|---|---|---|---|"
run() { if [ -x "$B/$1" ]; then shift_name=$1; shift; "$B/$shift_name" "$@" || echo "| $shift_name | failed | | | |"; else echo "| $1 | not built | | | |"; fi; }
if [ "$QUICK" = "--quick" ]; then
  run bench_pack --files 2000 --mb 20
  run bench_stream --mb 50 --runs 1
  run bench_git_check --quick
  run bench_git_memory --quick
  run bench_kustomize --quick
  run bench_source_latency --quick
  run bench_source_scale --quick
else
  run bench_pack
  run bench_stream --mb 500 --runs 3
  run bench_git_check
  run bench_git_memory
  run bench_kustomize
  run bench_source_latency
  run bench_source_latency --runs 500
  run bench_source_scale
fi
