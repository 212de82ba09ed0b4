#!/usr/bin/env bash
# bench/livestream: 10,000 users with stream managers against the fake Cloudflare (RSS per
# manager vs the same sockets of one user, idle CPU, start -> streaming latency) and a
# state-change fan-out to 1,000 sockets of one user compared with a Node ws server and a bare
# send() loop (bench/fanout_floor.py), all in one run (~35 s on 2 cores). Method and numbers:
# docs/livestream.md "Performance". Needs the sqlite3 CLI, python3 and a C compiler.
# Env: BENCH_LS_USERS, BENCH_LS_SAMPLES, BENCH_LS_FANOUT, BENCH_LS_ROUNDS, BENCH_LS_IDLE_S,
#      BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
command -v sqlite3 >/dev/null || { echo "bench/livestream: needs the sqlite3 CLI (apt-get install -y sqlite3)"; exit 1; }
[ -x build/release/streampai ] || make -j2 release >/dev/null
[ -d node_modules/ws ] || npm ci --silent
exec taskset -c "${BENCH_CLIENT_CPU:-1}" node --max-old-space-size=4096 bench/livestream.mjs
