#!/bin/sh
# Regenerates expected output of every conformance case from the oracle,
# `kubectl kustomize` (kustomize v5.5.0). Inputs are ours; outputs are the
# oracle's. A case the oracle rejects gets expected-error.txt instead.
# Usage: test/kustomize/regenerate.sh [case-name...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/cases"
if [ $# -eq 0 ]; then set -- */; fi
for c in "$@"; do
  c=${c%/}
  dir="$c"
  if [ -f "$c/build-dir" ]; then dir="$c/$(cat "$c/build-dir")"; fi
  if kubectl kustomize "$dir" > "$c/expected.yaml" 2>/tmp/regen.err.$$; then
    rm -f "$c/expected-error.txt"
  else
    # Drop klog's timestamp prefix and our checkout path so the file is stable.
    sed -e 's/^E[0-9]* [0-9:.]* *[0-9]* run.go:[0-9]*] //' -e "s|$here/cases|<cases>|g" \
      /tmp/regen.err.$$ > "$c/expected-error.txt"
    rm -f "$c/expected.yaml"
  fi
done
rm -f /tmp/regen.err.$$
