#!/usr/bin/env bash
# make run: start streampai on embedded defaults (SQLite under ./var, the built-in
# relay as media backend, dashboard on http://127.0.0.1:4000, RTMP ingest on 1935).
# Shared secrets between the control plane and the relay are generated once into
# ./var/dev.env (mode 0600) and reused. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./build/release/streampai
export DATA_DIR=${DATA_DIR:-./var}
mkdir -p "$DATA_DIR"
ENV_FILE="$DATA_DIR/dev.env"
if [ ! -f "$ENV_FILE" ]; then
  umask 077
  {
    echo "RELAY_API_TOKEN=$(openssl rand -hex 24)"
    echo "CLOUDFLARE_WEBHOOK_SECRET=$(openssl rand -hex 24)"
    echo "ADMIN_TOKEN=$(openssl rand -hex 24)"
  } > "$ENV_FILE"
fi
set -a; . "$ENV_FILE"; set +a
export STREAMPAI_ENV=${STREAMPAI_ENV:-dev}
export HTTP_LISTEN=${HTTP_LISTEN:-127.0.0.1:4000}
export RELAY_RTMP_LISTEN=${RELAY_RTMP_LISTEN:-127.0.0.1:1935}
export LOG_LEVEL=${LOG_LEVEL:-info}
# dev switch for loopback/private destinations (a local test RTMP server): `make run
# ALLOW_PRIVATE=1`, or an exported ALLOW_PRIVATE_DESTINATIONS=true; both processes read it
case "${ALLOW_PRIVATE:-}" in
  1|true|yes|on) export ALLOW_PRIVATE_DESTINATIONS=true ;;
  0|false|no|off) export ALLOW_PRIVATE_DESTINATIONS=false ;;
esac
export ALLOW_PRIVATE_DESTINATIONS=${ALLOW_PRIVATE_DESTINATIONS:-false}

if ! "$BIN" check-config >/dev/null; then "$BIN" check-config; exit 2; fi
backend=$("$BIN" check-config | sed -n 's/.*MEDIA_BACKEND *//p' | awk '{print $1; exit}')
url="http://${HTTP_LISTEN}"
ingest=${RELAY_PUBLIC_RTMP_URL:-rtmp://${RELAY_RTMP_LISTEN}/live}
case "$ALLOW_PRIVATE_DESTINATIONS" in
  true|1|yes|on)
    private_msg="ALLOWED (ALLOW_PRIVATE_DESTINATIONS=true, dev only;"
    private_msg+=" turn off: make run ALLOW_PRIVATE=0)" ;;
  *)
    private_msg="refused (ALLOW_PRIVATE_DESTINATIONS=false; allow: make run ALLOW_PRIVATE=1)" ;;
esac
# The relay and the control plane are two independent processes, each restarted by its own
# loop when it dies: a control-plane crash (even kill -9) never stops the relay, so live
# media keeps flowing to the destinations while `serve` comes back. Their current pids are
# in $DATA_DIR/relay.pid and $DATA_DIR/serve.pid. Ctrl-C (or SIGTERM to this script) stops
# both. Production: deploy/streampai-relay.service and deploy/streampai.service.
relay_pid=""
serve_pid=""
stopping=0
stop_all() {
  stopping=1
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null || true
  [ -n "$relay_pid" ] && kill -TERM "$relay_pid" 2>/dev/null || true
}
trap stop_all INT TERM
trap '[ "$stopping" = 1 ] || stop_all' EXIT
if [ "$backend" = local ]; then
  # setsid: its own process group and session, so a signal meant for the control plane's
  # group never reaches the relay
  setsid bash -c '
    trap "kill \$child 2>/dev/null; wait \$child 2>/dev/null; rm -f \"\$DATA_DIR/relay.pid\"; exit 0" TERM INT
    while :; do
      "$0" relay >>"$DATA_DIR/relay.log" 2>&1 & child=$!
      echo $child >"$DATA_DIR/relay.pid"
      wait $child; rc=$?
      echo "relay exited ($rc); restarting in 1 s" >>"$DATA_DIR/relay.log"; sleep 1
    done' "$BIN" &
  relay_pid=$!
fi
cat <<MSG

  Streampai is starting (STREAMPAI_ENV=$STREAMPAI_ENV, media backend: $backend)

    Dashboard:     $url   (sign up, then open the stream page)
    RTMP ingest:   ${ingest}   (stream key shown on the dashboard)
    Data:          $DATA_DIR  (SQLite, generated keys, relay state; relay log: $DATA_DIR/relay.log)
    Health:        $url/healthz   Metrics: $url/metrics

    Loopback/private destinations: ${private_msg}

  OBS: Settings > Stream > Service "Custom", Server = the RTMP ingest URL, Stream Key = yours.
  OBS on another machine: the ingest listens on ${RELAY_RTMP_LISTEN}; to accept it from the LAN:
    RELAY_RTMP_LISTEN=0.0.0.0:1935 \\
    RELAY_PUBLIC_RTMP_URL=rtmp://<this machine's LAN address>:1935/live make run
  Stop with Ctrl-C.

MSG
quick=0
while [ "$stopping" = 0 ]; do
  t0=$(date +%s)
  "$BIN" serve & serve_pid=$!
  echo "$serve_pid" >"$DATA_DIR/serve.pid"
  rc=0
  wait "$serve_pid" || rc=$?
  # a trap interrupts wait: wait again until the process is really gone
  while kill -0 "$serve_pid" 2>/dev/null; do wait "$serve_pid" || rc=$?; done
  rm -f "$DATA_DIR/serve.pid"
  [ "$stopping" = 1 ] && break
  if [ $(( $(date +%s) - t0 )) -lt 5 ]; then quick=$((quick + 1)); else quick=0; fi
  if [ "$quick" -ge 3 ]; then
    echo "streampai serve keeps exiting at start ($rc); giving up (see the messages above)" >&2
    break
  fi
  echo "streampai serve exited ($rc); restarting in 1 s (the relay keeps the media going)" >&2
  sleep 1
done
stop_all
[ -n "$relay_pid" ] && wait "$relay_pid" 2>/dev/null || true
