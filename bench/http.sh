#!/usr/bin/env bash
# bench/http: wrk against our server and nginx (Debian), same machine, same run, one core each.
# Prints requests/s and p99 for GET /healthz (our JSON/text path), a 1 KiB static file on both
# servers, and the ratios. Targets: static >= 0.8x nginx; healthz >= 50k req/s on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${BENCH_DURATION:-8}
CONNS=${BENCH_CONNECTIONS:-64}
BIN=build/release/streampai
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/web" "$tmp/ngx/logs"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 > "$tmp/web/file1k.txt"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port)
# Our server on core 0.
taskset -c 0 env STREAMPAI_ENV=prod LOG_LEVEL=warn HTTP_LISTEN=127.0.0.1:$P1 WEB_DIR=$tmp/web DATA_DIR=$tmp/data \
  PUBLIC_URL=https://bench.invalid TOKEN_SIGNING_SECRET=0123456789abcdef0123456789abcdef \
  SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= RELAY_API_TOKEN=bench-token "$BIN" serve &
# nginx on core 0 as well (measured one after the other, never concurrently).
cat > "$tmp/ngx/nginx.conf" <<NGX
daemon off; master_process off; worker_processes 1; pid $tmp/ngx/nginx.pid; error_log $tmp/ngx/logs/error.log error;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  server { listen 127.0.0.1:$P2; root $tmp/web; location / { } } }
NGX
taskset -c 0 nginx -p "$tmp/ngx" -c "$tmp/ngx/nginx.conf" &
for p in $P1 $P2; do for i in $(seq 50); do curl -sf "http://127.0.0.1:$p/file1k.txt" >/dev/null && break; sleep 0.1; done; done
run() { # url -> "rps p99ms"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$1" > "$tmp/wrk.out"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$tmp/wrk.out")
  echo "$rps $p99"
}
read -r s_rps s_p99 < <(run "http://127.0.0.1:$P1/file1k.txt")
read -r n_rps n_p99 < <(run "http://127.0.0.1:$P2/file1k.txt")
read -r h_rps h_p99 < <(run "http://127.0.0.1:$P1/healthz")
printf '%-34s %12s %10s\n' "bench/http (1 core each, ${CONNS} conns, ${DUR}s)" "req/s" "p99 ms"
printf '%-34s %12.0f %10.2f\n' "streampai static 1 KiB" "$s_rps" "$s_p99"
printf '%-34s %12.0f %10.2f\n' "nginx static 1 KiB" "$n_rps" "$n_p99"
printf '%-34s %12.0f %10.2f\n' "streampai GET /healthz" "$h_rps" "$h_p99"
awk -v a="$s_rps" -v b="$n_rps" 'BEGIN { r=a/b; printf "static ratio streampai/nginx: %.2fx (target >= 0.80x) %s\n", r, (r>=0.8?"OK":"BELOW TARGET") }'
awk -v a="$h_rps" 'BEGIN { printf "healthz: %.0f req/s on one core (target >= 50000) %s\n", a, (a>=50000?"OK":"BELOW TARGET") }'
