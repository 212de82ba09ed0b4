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

if ! "$BIN" check-config >/dev/null; then "$BIN" check-config; exit 2; fi
backend=$("$BIN" check-config | sed -n 's/.*MEDIA_BACKEND *//p' | awk '{print $1}')
url="http://${HTTP_LISTEN}"
relay_pid=""
cleanup() { [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ "$backend" = local ]; then
  # The relay is its own process (a control-plane restart never interrupts media);
  # in dev this loop restarts it if it dies. Production: deploy/streampai-relay.service.
  ( trap 'kill $child 2>/dev/null; exit 0' TERM INT
    while :; do
      "$BIN" relay >>"$DATA_DIR/relay.log" 2>&1 & child=$!
      wait $child; rc=$?
      echo "relay exited ($rc); restarting in 1 s" >>"$DATA_DIR/relay.log"; sleep 1
    done ) &
  relay_pid=$!
fi
cat <<MSG

  Streampai is starting (STREAMPAI_ENV=$STREAMPAI_ENV, media backend: $backend)

    Dashboard:     $url   (sign up, then open the stream page)
    RTMP ingest:   rtmp://${RELAY_RTMP_LISTEN}/live   (stream key shown on the dashboard)
    Data:          $DATA_DIR  (SQLite, generated keys, relay state; relay log: $DATA_DIR/relay.log)
    Health:        $url/healthz   Metrics: $url/metrics

  OBS: Settings > Stream > Service "Custom", Server = the RTMP ingest URL, Stream Key = yours.
  Stop with Ctrl-C.

MSG
"$BIN" serve
