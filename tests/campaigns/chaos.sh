#!/usr/bin/env bash
# make chaos: (a) the kill -9 campaign (tests/campaigns/chaos.mjs, CHAOS_ROUNDS, default 100) and
# (b) I/O fault injection (tests/campaigns/io_faults.mjs: an LD_PRELOAD shim failing
# write/pwrite/fsync with ENOSPC/EIO on command, and PostgreSQL killed mid-transaction).
# Each part prints its own summary line; the last line sums them up. Exit 1 on any violation.
# Needs ffmpeg, the sqlite3 CLI, a C compiler and PostgreSQL 15 (as the tests do).
set -uo pipefail
cd "$(dirname "$0")/../.."
ulimit -n 65536 2>/dev/null || true
[ -x build/release/streampai ] || nice -n 19 make -j2 release >/dev/null
[ -d node_modules/ws ] || npm ci --silent
mkdir -p build/campaigns
cc -O2 -Wall -Wextra -Werror -shared -fPIC -o build/campaigns/sp_iofault.so tests/campaigns/iofault.c -ldl || exit 2
a=$(nice -n 19 node tests/campaigns/chaos.mjs | tail -1); ra=$?
echo "$a"
b=$(nice -n 19 node tests/campaigns/io_faults.mjs | tail -1); rb=$?
echo "$b"
va=$(sed -n 's/.*violations=\([0-9]*\).*/\1/p' <<<"$a"); vb=$(sed -n 's/.*violations=\([0-9]*\).*/\1/p' <<<"$b")
echo "chaos: kill9 ${a#chaos: } | io ${b#io-faults: } | total violations=$(( ${va:-1} + ${vb:-1} ))"
[ $ra -eq 0 ] && [ $rb -eq 0 ]
