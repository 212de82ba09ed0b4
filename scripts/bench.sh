#!/usr/bin/env bash
# make bench: every bench/*.sh, each printing ratios against a peer measured in the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
for b in bench/*.sh; do
  echo "=== $b"
  bash "$b" || rc=1
  echo
done
echo "=== bench/relay/bench.mjs"
node bench/relay/bench.mjs || rc=1
exit $rc
