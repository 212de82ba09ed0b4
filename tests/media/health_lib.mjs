// Shared set-up for the output-health and relay-restart media tests: `streampai serve`
// (MEDIA_BACKEND=local) + `streampai relay` on fixed ports and a DATA_DIR of its own (so
// the relay can be killed and restarted in place), an ffmpeg publisher that restarts
// when it exits (like OBS reconnecting) and ffmpeg sinks that listen again after each
// connection (a destination server that stays up).
import { startServer, freePort, tmpDir, waitFor, sleep } from '../lib/harness.mjs';
import { startRelay, startSink, publish, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

export async function bootStack({ disconnectTimeout = 15000, env = {} } = {}) {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const apiPort = await freePort();
  const relayDir = tmpDir('sp-health-relay-');
  const relayEnv = {
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, RELAY_API_LISTEN: `127.0.0.1:${apiPort}`,
    PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
  };
  const ctx = { port: cpPort, rtmpPort, apiPort, relayDir, relayEnv };
  ctx.relay = await startRelay({ env: relayEnv, dataDir: relayDir });
  ctx.restartRelay = async () => { ctx.relay = await startRelay({ env: relayEnv, dataDir: relayDir }); };
  const cpEnv = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${apiPort}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: String(disconnectTimeout), CLOUDFLARE_INPUT_POLL_INTERVAL: '1000',
    LOG_LEVEL: 'info', ...env,
  };
  ctx.srv = await startServer({ env: cpEnv, dataDir: tmpDir('sp-health-cp-') });
  ctx.stop = async () => {
    try { await ctx.srv.stop(); } catch {}
    try { await ctx.relay.stop(); } catch {}
  };
  return ctx;
}

// ffmpeg publishing in a loop: restarted 500 ms after it exits (refused, dropped...).
export function publishLoop(url) {
  const st = { stopped: false, runs: 0, cur: null };
  const run = () => {
    if (st.stopped) return;
    st.runs++;
    st.cur = publish(url, 120);
    st.cur.exited.then(() => { if (!st.stopped) setTimeout(run, 500); });
  };
  run();
  st.stop = () => { st.stopped = true; if (st.cur) st.cur.kill(); };
  return st;
}

// A destination server that accepts again after each connection: one FLV file per
// connection (dest-0.flv, dest-1.flv...).
export function sinkLoop(dir, port, key) {
  const st = { stopped: false, sinks: [] };
  const run = async () => {
    if (st.stopped) return;
    const s = await startSink(dir, `dest-${st.sinks.length}`, port, key);
    st.sinks.push(s);
    s.exited.then(() => { if (!st.stopped) setTimeout(() => run().catch(() => {}), 200); });
  };
  st.ready = run();
  st.stop = () => { st.stopped = true; for (const s of st.sinks) s.kill(); };
  return st;
}

export function outputOf(status, destId) {
  return (status.outputs || []).find((o) => o.destination_id === destId);
}

export { waitFor, sleep, freePort, tmpDir };
