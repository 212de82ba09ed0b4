#!/bin/sh
# Builds bench/store_bench against the build/release objects and runs it.
#   bench/store.sh [rows]   SQLite (temp dir) and PostgreSQL (BENCH_PG_URL, or a throwaway
#                           PG 15 started by bench/store_pg.mjs). Prints events/s with group
#                           commit, batch sizes, latency, loop lag, and the ratio to per-row commits.
set -e
cd "$(dirname "$0")/.."
make -s -j2 release >/dev/null
PKGS="libuv libcurl openssl jansson sqlite3 libpq libjwt libsodium hiredis"
OBJS=$(find build/release/src -name '*.o' ! -path 'build/release/src/main.o' | sort)
INC=-Isrc
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror $INC $(pkg-config --cflags $PKGS) \
    bench/store_bench.c $OBJS -o build/bench/store_bench \
    $(pkg-config --libs $PKGS) -lhttp_parser -lwslay -lm -lpthread
if [ -z "${BENCH_PG_URL:-}" ] && command -v node >/dev/null && [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
    exec node bench/store_pg.mjs "$@"
fi
exec build/bench/store_bench "$@"
