#!/usr/bin/env bash
# bench/widgets: the issue 11 benchmark. (1) bench/alertq_bench: the AlertQueue's CPU per
# 1,000 queued alerts (5,000 users x 20 alerts, built against the release objects); (2)
# bench/widgets.mjs: 10,000 widget sockets (alert box + chat overlay for 5,000 users;
# BENCH_WIDGET_USERS) held by bench/widgets_rx (C, kernel receive timestamps), memory per
# socket, a burst of one chat message and one alert per user: server publish stamp -> arrival
# p99 beside the send() floor measured in the same run, server CPU. Method: docs/widgets.md.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 release >/dev/null
PKGS="libuv libcurl openssl jansson sqlite3 libpq libjwt libsodium hiredis"
OBJS=$(find build/release/src -name '*.o' ! -path 'build/release/src/main.o' | sort)
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Isrc $(pkg-config --cflags $PKGS) \
    bench/alertq_bench.c $OBJS -o build/bench/alertq_bench \
    $(pkg-config --libs $PKGS) -lhttp_parser -lwslay -lm -lpthread
cc -std=c11 -O2 -Wall -Wextra -Werror bench/widgets_rx.c -o build/bench/widgets_rx
build/bench/alertq_bench "${BENCH_WIDGET_USERS:-5000}" 20
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
users=${BENCH_WIDGET_USERS:-5000}
# per process: the server holds 2 sockets per user, widgets_rx (another process) 2 more; the
# floor's sender and receiver are two processes too
if [ $((users * 2 + 500)) -gt "$(ulimit -n)" ]; then
  echo "bench/widgets: $users users skipped: RLIMIT_NOFILE is $(ulimit -n)"
  exit 0
fi
exec node --max-old-space-size=4096 bench/widgets.mjs "$users"
