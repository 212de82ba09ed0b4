#!/usr/bin/env bash
# bench/ws: idle WebSocket connections; server RSS per connection vs a Node ws server.
# Every size N (BENCH_WS_COUNTS, default "10000 50000 100000") runs on a fresh streampai
# process (new DATA_DIR) and a fresh peer process, each stopped by pid with SIGTERM after its
# size and required to exit 0 (else the bench fails). Method: docs/internals/websocket.md.
# 50k and 100k connections need RLIMIT_NOFILE above that in both the server and the load
# generator: sizes the hard limit cannot carry are reported as skipped, not faked.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
limit=$(ulimit -n)
run=()
for n in ${BENCH_WS_COUNTS:-10000 50000 100000}; do
  if [ "$n" -gt $((limit - 500)) ]; then
    echo "bench/ws: N=$n skipped: RLIMIT_NOFILE is $limit here (hard limit; raising it needs CAP_SYS_RESOURCE)"
  else
    run+=("$n")
  fi
done
[ ${#run[@]} -eq 0 ] && { echo "bench/ws: nothing to run"; exit 0; }
exec node --max-old-space-size=8192 bench/ws.mjs "${run[@]}"
