// dest_status.js: one status per destination on the stream page, in plain words.
// destStatus(stream, out) is pure (no DOM): it derives the one label from one source, the
// last GET /api/stream (or state_changed) payload — the stream state, the destination's
// output row (outputs[]: status creating | active | retrying | failed | deleting | closed)
// and, on the built-in relay, the output's health (idle | connecting | forwarding | error).
// Rules (first match wins):
//   stream not streaming/ending, or no output row for it   -> "Not live"
//   stream ending, or the row deleting/closed              -> "Stopping…" / "Not live"
//   row failed/retrying                                    -> "Error: <reason>" (+ retrying)
//   health error                                           -> "Error: <relay's last error>"
//   the encoder is not connected (grace window)            -> "Waiting for the encoder", or
//     while the relay forwards its slate (disconnect protection) -> "Live: showing "be right
//     back" until the encoder returns"
//   health forwarding                                      -> "Live"
//   health idle/connecting, row creating, or no health yet
//     on a backend that reports health (the relay)         -> "Connecting…"
//   row active on a backend without health (Cloudflare)    -> "Live"
// (both backends call themselves "cloudflare" in input.provider: a backend reports health
// when any output of the stream carries it)
// tone: live | pending | error | off (CSS colours it).

const ERR_MAX = 160;

function reason(text, fallback) {
  const t = typeof text === 'string' ? text.trim() : '';
  if (!t) return fallback;
  return t.length > ERR_MAX ? `${t.slice(0, ERR_MAX - 1)}…` : t;
}

// stream: the /api/stream payload ({state, input:{status, provider}, outputs}) or null;
// out: this destination's entry of stream.outputs, or undefined.
export function destStatus(stream, out) {
  const state = stream && stream.state;
  if (!out || (state !== 'streaming' && state !== 'ending')) {
    return { key: 'off', tone: 'off', label: 'Not live' };
  }
  const st = out.status;
  if (st === 'closed') return { key: 'off', tone: 'off', label: 'Not live' };
  if (state === 'ending' || st === 'deleting') return { key: 'stopping', tone: 'pending', label: 'Stopping…' };
  if (st === 'failed') {
    return { key: 'error', tone: 'error', label: `Error: ${reason(out.error, 'the destination refused the stream')}` };
  }
  if (st === 'retrying') {
    return { key: 'error', tone: 'error', label: `Error: ${reason(out.error, 'could not connect')} (retrying)` };
  }
  const input = stream.input && stream.input.status;
  const h = out.health && out.health.status;
  if (h === 'error') {
    return { key: 'error', tone: 'error', label: `Error: ${reason(out.health.last_error, 'connection failed')}` };
  }
  if (input && input !== 'connected' && input !== 'unknown') {
    // disconnect protection: the relay keeps the destination live on the "be right back" slate
    if (h === 'forwarding') {
      return { key: 'slate', tone: 'live', label: 'Live: showing "be right back" until the encoder returns' };
    }
    return { key: 'waiting', tone: 'pending', label: 'Waiting for the encoder' };
  }
  if (h === 'forwarding') return { key: 'live', tone: 'live', label: 'Live' };
  if (st === 'creating' || h === 'idle' || h === 'connecting') {
    return { key: 'connecting', tone: 'pending', label: 'Connecting…' };
  }
  // No health for this output: on a backend that reports health (some output of the
  // stream has it, or the provider says relay) it has not been measured yet.
  const provider = stream.input && stream.input.provider;
  const healthBackend = provider === 'relay' ||
    (Array.isArray(stream.outputs) && stream.outputs.some((o) => o && o.health && o.health.status));
  if (st === 'active' && !healthBackend) return { key: 'live', tone: 'live', label: 'Live' };
  return { key: 'connecting', tone: 'pending', label: 'Connecting…' };
}

// Bytes as a short human string (1.2 MB).
function formatBytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

// The status element of one destination row: <span class="dest-status" data-status=key
// data-tone=tone>label</span>, plus the bytes sent while live (relay only).
export function destStatusNode(stream, out) {
  const s = destStatus(stream, out);
  const wrap = document.createElement('span');
  wrap.className = 'dest-status-wrap';
  const node = document.createElement('span');
  node.className = 'dest-status';
  node.dataset.status = s.key;
  node.dataset.tone = s.tone;
  node.setAttribute('role', 'status');
  node.textContent = s.label;
  wrap.append(node);
  const bytes = out && out.health && out.health.bytes;
  if (s.key === 'live' && typeof bytes === 'number' && Number.isFinite(bytes) && bytes >= 0) {
    const b = document.createElement('span');
    b.className = 'dest-bytes';
    b.textContent = `${formatBytes(bytes)} sent`;
    wrap.append(b);
  }
  return wrap;
}
