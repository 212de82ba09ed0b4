#!/usr/bin/env bash
# bench/ws: idle WebSocket connections; RSS per connection vs a Node ws server. Needs root for
# the file-descriptor limit of 100k connections.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec node --max-old-space-size=8192 bench/ws.mjs ${BENCH_WS_COUNTS:-10000 50000 100000}
