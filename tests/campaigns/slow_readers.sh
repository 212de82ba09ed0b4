#!/usr/bin/env bash
# make slow-readers: tests/campaigns/slow_readers.mjs (SR_SOCKETS, default 10,000). Details on stderr, one summary
# line on stdout; exit 1 when the verdict fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ -x build/release/streampai ] || nice -n 19 make -j2 release >/dev/null
[ -d node_modules/ws ] || npm ci --silent
exec nice -n 19 node --max-old-space-size=4096 tests/campaigns/slow_readers.mjs
