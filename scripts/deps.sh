#!/usr/bin/env bash
# Installs the Debian packages streampai needs, only the missing ones.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh --test   also what the test suites and benchmarks need
# A fast no-op when everything is present. Not root and something missing:
# a clear message and exit 1.
set -euo pipefail
BUILD_PKGS="build-essential pkg-config libuv1-dev libhttp-parser-dev libwslay-dev libcurl4-openssl-dev
 libssl-dev libjansson-dev libsqlite3-dev libpq-dev libjwt-dev libsodium-dev libhiredis-dev ca-certificates openssl"
TEST_PKGS="libcriterion-dev clang libclang-rt-14-dev ffmpeg postgresql redis-server chromium nginx
 libnginx-mod-rtmp socat wrk curl nodejs npm openssl iproute2 sqlite3"
pkgs="$BUILD_PKGS"
[ "${1:-}" = "--test" ] && pkgs="$pkgs $TEST_PKGS"
missing=""
for p in $pkgs; do
  # npm/nodejs may come from outside Debian on dev machines: accept the binaries.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing Debian packages:$missing" >&2
    echo "deps.sh: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
  fi
  echo "deps.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || true
  apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
if [ "${1:-}" = "--test" ] && [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.stamp ]; then
    npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp
  fi
fi
exit 0
