#!/usr/bin/env bash
# bench/platforms: 1,000 users live at once, each with a Twitch monitor on the fake Twitch's
# EventSub WebSocket, 100 chat messages/s in total: RSS per monitor, chat latency from the fake's
# socket to the user's dashboard socket, idle CPU, each beside a Node `ws` relay doing the same
# socket work (bench/platforms_peer.mjs) measured in the same run. Method and numbers:
# docs/platforms-performance.md. Needs the sqlite3 CLI.
# Env: BENCH_PL_USERS (1000), BENCH_PL_RATE (100), BENCH_PL_SECONDS (30), BENCH_PL_IDLE_S (10),
#      BENCH_SERVER_CPU (0: the server and the peer), BENCH_CLIENT_CPU (1: this driver, the fakes).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
command -v sqlite3 >/dev/null || { echo "bench/platforms: needs the sqlite3 CLI (apt-get install -y sqlite3)"; exit 1; }
[ -x build/release/streampai ] || make -j2 release >/dev/null
[ -d node_modules/ws ] || npm ci --silent
exec taskset -c "${BENCH_CLIENT_CPU:-1}" node --max-old-space-size=4096 bench/platforms.mjs
