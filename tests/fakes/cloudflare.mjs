// Fake Cloudflare Stream (live inputs + outputs) for tests.
//
// Follows the shapes in research/cloudflare-stream.md: the v4 envelope
// {success, errors:[{code,message}], messages, result}, Bearer auth (400/6003 for a
// malformed Authorization header, 403/10000 for a wrong token), live inputs with
// uid/rtmps{url,streamKey}/status (null before the first connect, then
// {current:{state,reason,ingestProtocol,statusEnteredAt,statusLastSeen},history:[]}),
// outputs {uid,url,streamKey,enabled} (no status field, max 50 per input).
//
// Use as a module:
//   const cf = await startFakeCloudflare({ port, webhookUrl, webhookSecret });
//   cf.url, cf.accountId, cf.token, cf.calls, cf.setInputState(uid, 'connected', {webhook:true}),
//   cf.injectFault({kind:'500', count:2}), cf.resetCalls(), cf.inputs(), await cf.stop()
// or standalone: node tests/fakes/cloudflare.mjs --port N [--webhook-url U] [--webhook-secret S]
//   [--token T] [--account A] [--tls-cert PEM --tls-key PEM]  (HTTPS when both are given)
//   prints one line: FAKE_CLOUDFLARE_LISTENING port=<P> url=<base>
//
// Control over HTTP (no auth, loopback only):
//   GET  /__control/calls                      recorded calls [{method,path,body,status,at}]
//   POST /__control/calls/reset
//   GET  /__control/inputs                     all inputs with their outputs (including secrets)
//   POST /__control/inputs/<uid>/videos        {duration, size, state?, created?, modified?} a recording
//   POST /__control/inputs/<uid>/state         {state:"connected"|"disconnected"|"errored", webhook?:bool, errorCode?}
//   POST /__control/fault                      {kind, count?, retryAfter?, delayMs?, method?, pathIncludes?}
//        kind: "500" | "503" | "429" | "hang" | "malformed" | "slow" | "drop" | "envelope"
//        ("envelope": HTTP 400 + {success:false, errors:[{code, message}]} with code/message from the body)
//   POST /__control/ratelimit                  {limit, windowMs?} (Cloudflare-like 429s; {} to disable)
//   POST /__control/faults/clear
//   POST /__control/reset                      drop all inputs, outputs, calls and faults
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { readBody, takeFault } from './http_util.mjs';

const API_PREFIX = '/client/v4';
const MAX_OUTPUTS = 50;

function hex32() {
  return crypto.randomBytes(16).toString('hex');
}
function nowIso() {
  return new Date().toISOString();
}
function nowMicro() {
  // created/modified use microsecond precision in the real API
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export async function startFakeCloudflare(opts = {}) {
  const accountId = opts.accountId || '0123456789abcdef0123456789abcdef';
  const token = opts.token || 'fake-cf-token-0123456789';
  const webhookUrl = opts.webhookUrl || null;
  const webhookSecret = opts.webhookSecret || null;
  const calls = [];
  const faults = [];
  const inputs = new Map(); // uid -> input
  const hung = new Set();
  const sockets = new Set();
  let webhooksSent = [];
  // Optional account rate limit like Cloudflare's (1200 per 300 s): {limit, windowMs}.
  let rateLimit = opts.rateLimit || null;
  let rlHits = [];

  function envelope(result) {
    return { success: true, errors: [], messages: [], result };
  }
  function failure(code, message, extra = {}) {
    return { success: false, errors: [{ code, message, ...extra }], messages: [], result: null };
  }

  function liveInputView(inp) {
    const v = {
      uid: inp.uid,
      created: inp.created,
      modified: inp.modified,
      meta: inp.meta,
      enabled: inp.enabled,
      deleteRecordingAfterDays: inp.deleteRecordingAfterDays,
      recording: inp.recording,
      rtmps: { url: 'rtmps://live.cloudflare.com:443/live/', streamKey: inp.streamKey },
      rtmpsPlayback: { url: 'rtmps://live.cloudflare.com:443/live/', streamKey: inp.playbackKey },
      srt: { url: 'srt://live.cloudflare.com:778', streamId: inp.uid, passphrase: inp.srtPass },
      srtPlayback: { url: 'srt://live.cloudflare.com:778', streamId: 'play' + inp.uid, passphrase: inp.srtPass },
      webRTC: { url: `https://customer-fake.cloudflarestream.com/${inp.streamKey}/webRTC/publish` },
      webRTCPlayback: { url: `https://customer-fake.cloudflarestream.com/${inp.uid}/webRTC/play` },
      status: null,
    };
    if (inp.status) {
      if (inp.status.current.state === 'connected') inp.status.current.statusLastSeen = nowIso();
      v.status = JSON.parse(JSON.stringify(inp.status));
    }
    return v;
  }
  function outputView(o) {
    return { uid: o.uid, url: o.url, streamKey: o.streamKey, enabled: o.enabled };
  }


  function send(res, status, obj, headers = {}) {
    const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ratelimit: '"default";r=1199;t=300',
      'ratelimit-policy': '"default";q=1200;w=300',
      ...headers,
    });
    res.end(body);
  }

  async function postWebhook(inp, eventType, errorCode) {
    if (!webhookUrl) return;
    const updated = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
    const data = {
      notification_name: 'Stream Live Input',
      input_id: inp.uid,
      event_type: eventType,
      updated_at: updated,
    };
    if (eventType === 'live_input.errored') {
      data.live_input_errored = {
        error: { code: errorCode || 'ERR_GOP_OUT_OF_RANGE', message: 'Input GOP size or keyframe interval is out of range.' },
        video_codec: '',
        audio_codec: '',
      };
    }
    const payload = {
      name: 'streampai live inputs',
      text: `Notification type: Stream Live Input\nInput ID: ${inp.uid}\nEvent type: ${eventType}\nUpdated at: ${updated}`,
      data,
      ts: Math.floor(Date.now() / 1000),
    };
    const headers = { 'content-type': 'application/json' };
    if (webhookSecret) headers['cf-webhook-auth'] = webhookSecret;
    let status = 0;
    try {
      const r = await fetch(webhookUrl, { method: 'POST', headers, body: JSON.stringify(payload) });
      status = r.status;
      await r.arrayBuffer();
    } catch (e) {
      status = -1;
    }
    webhooksSent.push({ input_id: inp.uid, event_type: eventType, status, payload });
    return status;
  }

  async function setInputState(uid, state, o = {}) {
    const inp = inputs.get(uid);
    if (!inp) throw new Error(`fake cloudflare: no input ${uid}`);
    const reason = state === 'connected' ? 'connected' : state === 'disconnected' ? 'client_disconnect' : 'failed_to_connect';
    const t = nowIso();
    if (inp.status) inp.status.history.push({ ...inp.status.current });
    inp.status = {
      current: { ingestProtocol: 'rtmp', reason, state, statusEnteredAt: t, statusLastSeen: t },
      history: [],
    };
    if (o.webhook) {
      return postWebhook(inp, `live_input.${state}`, o.errorCode);
    }
    return 0;
  }

  function injectFault(f) {
    faults.push({ kind: String(f.kind), count: f.count || 1, retryAfter: f.retryAfter ?? 1,
      delayMs: f.delayMs ?? 2000, method: f.method, pathIncludes: f.pathIncludes,
      code: f.code ?? 10000, message: f.message ?? 'Injected error' });
  }


  async function handleControl(req, res, path, raw) {
    let body = {};
    if (raw) { try { body = JSON.parse(raw); } catch { return send(res, 400, { error: 'bad json' }); } }
    if (req.method === 'GET' && path === '/__control/calls') return send(res, 200, calls);
    if (req.method === 'POST' && path === '/__control/calls/reset') { calls.length = 0; return send(res, 200, {}); }
    if (req.method === 'GET' && path === '/__control/inputs') return send(res, 200, listAll());
    if (req.method === 'GET' && path === '/__control/webhooks') return send(res, 200, webhooksSent);
    if (req.method === 'POST' && path === '/__control/fault') { injectFault(body); return send(res, 200, {}); }
    if (req.method === 'POST' && path === '/__control/faults/clear') { faults.length = 0; return send(res, 200, {}); }
    if (req.method === 'POST' && path === '/__control/reset') { reset(); return send(res, 200, {}); }
    if (req.method === 'POST' && path === '/__control/ratelimit') {
      rateLimit = body && body.limit ? { limit: body.limit, windowMs: body.windowMs || 300000 } : null;
      rlHits = [];
      return send(res, 200, {});
    }
    const mv = path.match(/^\/__control\/inputs\/([0-9a-f]{32})\/videos$/);
    if (req.method === 'POST' && mv) {
      // a recording of this input: {duration (s), size, state, created?, modified?}
      const inp = inputs.get(mv[1]);
      if (!inp) return send(res, 404, { error: 'no such input' });
      const vid = hex32();
      const v = {
        uid: vid, liveInput: inp.uid, duration: body.duration ?? -1, size: body.size ?? 0,
        status: { state: body.state || 'ready', errorReasonCode: '', errorReasonText: '' },
        readyToStream: (body.state || 'ready') === 'ready', created: body.created || nowMicro(),
        modified: body.modified || nowMicro(), meta: {}, playback: {
          hls: `https://customer-fake.cloudflarestream.com/${vid}/manifest/video.m3u8`,
          dash: `https://customer-fake.cloudflarestream.com/${vid}/manifest/video.mpd`,
        },
      };
      (inp.videos ||= []).unshift(v);
      return send(res, 200, v);
    }
    const m = path.match(/^\/__control\/inputs\/([0-9a-f]{32})\/state$/);
    if (req.method === 'POST' && m) {
      if (!inputs.has(m[1])) return send(res, 404, { error: 'no such input' });
      if (!['connected', 'disconnected', 'errored'].includes(body.state)) return send(res, 400, { error: 'bad state' });
      const ws = await setInputState(m[1], body.state, body);
      return send(res, 200, { webhookStatus: ws });
    }
    return send(res, 404, { error: 'unknown control' });
  }

  function listAll() {
    return [...inputs.values()].map((i) => ({ ...liveInputView(i), outputs: [...i.outputs.values()].map(outputView) }));
  }
  function reset() {
    inputs.clear(); calls.length = 0; faults.length = 0; webhooksSent = [];
  }

  async function handleApi(req, res, path, raw, call) {
    const auth = req.headers.authorization;
    if (!auth || !/^Bearer [^\s]+$/.test(auth)) {
      return send(res, 400, {
        success: false, messages: [], result: null,
        errors: [{ code: 6003, message: 'Invalid request headers',
          error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }] }],
      });
    }
    if (auth.slice(7) !== token) return send(res, 403, { success: false, errors: [{ code: 10000, message: 'Authentication error' }] });

    const base = `${API_PREFIX}/accounts/`;
    if (!path.startsWith(base)) return send(res, 400, failure(7003, 'No route for the URI'));
    const rest = path.slice(base.length).split('/');
    if (rest[0] !== accountId) return send(res, 403, failure(10000, 'Authentication error'));
    if (rest[1] !== 'stream' || rest[2] !== 'live_inputs') return send(res, 400, failure(7003, 'No route for the URI'));
    const uid = rest[3];
    const sub = rest[4];
    const oid = rest[5];
    if (rest.length > 6) return send(res, 400, failure(7003, 'No route for the URI'));

    let body = null;
    if (raw && raw.length > 0) {
      try { body = JSON.parse(raw); } catch { return send(res, 400, failure(10005, 'Invalid JSON in request body')); }
    }
    call.body = body;

    if (uid === undefined || uid === '') {
      if (req.method === 'POST') {
        const b = body || {};
        const inp = {
          uid: hex32(), created: nowMicro(), modified: nowMicro(),
          meta: b.meta ?? {}, enabled: b.enabled ?? true,
          deleteRecordingAfterDays: b.deleteRecordingAfterDays ?? null,
          recording: { mode: 'off', timeoutSeconds: 0, requireSignedURLs: false, allowedOrigins: null,
            hideLiveViewerCount: false, ...(b.recording || {}) },
          streamKey: `${hex32()}k${hex32()}`, playbackKey: `${hex32()}k${hex32()}`, srtPass: `${hex32()}k${hex32()}`,
          status: null, outputs: new Map(),
        };
        inputs.set(inp.uid, inp);
        call.created = inp.uid;
        return send(res, 200, envelope(liveInputView(inp)));
      }
      if (req.method === 'GET') {
        const items = [...inputs.values()].map((i) => ({ uid: i.uid, created: i.created, modified: i.modified,
          meta: i.meta, deleteRecordingAfterDays: i.deleteRecordingAfterDays, enabled: i.enabled }));
        return send(res, 200, envelope({ liveInputs: items, range: 0, total: items.length }));
      }
      return send(res, 405, failure(10000, 'Method not allowed'));
    }
    const inp = inputs.get(uid);
    if (!inp) return send(res, 404, failure(10003, 'Live input not found'));

    if (sub === undefined) {
      if (req.method === 'GET') return send(res, 200, envelope(liveInputView(inp)));
      if (req.method === 'DELETE') { inputs.delete(uid); return send(res, 200, envelope(null)); }
      if (req.method === 'PUT') {
        const b = body || {};
        if (b.meta !== undefined) inp.meta = b.meta;
        if (b.enabled !== undefined) inp.enabled = !!b.enabled;
        if (b.recording) inp.recording = { ...inp.recording, ...b.recording };
        inp.modified = nowMicro();
        return send(res, 200, envelope(liveInputView(inp)));
      }
      return send(res, 405, failure(10000, 'Method not allowed'));
    }
    if (sub === 'videos' && (oid === undefined || oid === '')) {
      // the input's recordings (research/cloudflare-stream.md §5): added by /__control/.../videos
      if (req.method === 'GET') return send(res, 200, envelope(inp.videos || []));
      return send(res, 405, failure(10000, 'Method not allowed'));
    }
    if (sub !== 'outputs') return send(res, 400, failure(7003, 'No route for the URI'));
    if (oid === undefined || oid === '') {
      if (req.method === 'GET') return send(res, 200, envelope([...inp.outputs.values()].map(outputView)));
      if (req.method === 'POST') {
        const b = body || {};
        if (typeof b.url !== 'string' || !/^(rtmps?|srt):\/\//.test(b.url)) return send(res, 400, failure(10005, 'url is required and must be rtmp, rtmps or srt'));
        if (typeof b.streamKey !== 'string') return send(res, 400, failure(10005, 'streamKey is required'));
        if (inp.outputs.size >= MAX_OUTPUTS) return send(res, 400, failure(10006, 'Maximum number of outputs reached'));
        const o = { uid: hex32(), url: b.url, streamKey: b.streamKey, enabled: b.enabled ?? true };
        inp.outputs.set(o.uid, o);
        call.created = o.uid;
        return send(res, 200, envelope(outputView(o)));
      }
      return send(res, 405, failure(10000, 'Method not allowed'));
    }
    const o = inp.outputs.get(oid);
    if (!o) return send(res, 404, failure(10003, 'Output not found'));
    if (req.method === 'DELETE') { inp.outputs.delete(oid); return send(res, 200, envelope(null)); }
    if (req.method === 'PUT') {
      if (!body || typeof body.enabled !== 'boolean') return send(res, 400, failure(10005, 'enabled is required'));
      o.enabled = body.enabled;
      return send(res, 200, envelope(outputView(o)));
    }
    return send(res, 405, failure(10000, 'Method not allowed'));
  }

  const tls = opts.tlsCert && opts.tlsKey
    ? { cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) } : null;
  const handler = async (req, res) => {
    const t0 = process.hrtime.bigint();
    const url = new URL(req.url, 'http://x');
    const path = url.pathname;
    let raw = '';
    try { raw = await readBody(req); } catch { return; }
    if (path.startsWith('/__control/')) {
      try { return await handleControl(req, res, path, raw); } catch (e) { return send(res, 500, { error: String(e) }); }
    }
    const call = { method: req.method, path, body: raw || null, at: Date.now(), status: 0 };
    calls.push(call);
    // dur_us: the fake's own handling time (body read to response written), so benchmarks
    // can subtract the fake's latency from the server's.
    res.on('finish', () => { call.status = res.statusCode; call.dur_us = Number(process.hrtime.bigint() - t0) / 1000; });
    if (rateLimit) {
      const now = Date.now();
      rlHits = rlHits.filter((t) => now - t < rateLimit.windowMs);
      if (rlHits.length >= rateLimit.limit) {
        call.fault = 'ratelimit';
        const ra = Math.ceil((rlHits[0] + rateLimit.windowMs - now) / 1000);
        return send(res, 429, failure(971, `More than ${rateLimit.limit} requests per ${Math.round(rateLimit.windowMs / 1000)} seconds reached. Please wait and consider throttling your request speed`),
          { 'retry-after': String(Math.max(1, ra)) });
      }
      rlHits.push(now);
    }
    const f = takeFault(faults, req.method, path);
    if (f) {
      call.fault = f.kind;
      switch (f.kind) {
        case '500': case '502': case '503':
          return send(res, Number(f.kind), failure(10002, 'Internal server error (injected)'));
        case '429':
          return send(res, 429, failure(971, 'More than 1200 requests per 300 seconds reached. Please wait and consider throttling your request speed'),
            { 'retry-after': String(f.retryAfter) });
        case 'hang':
          hung.add(res);
          res.on('close', () => hung.delete(res));
          return; // never answers
        case 'malformed':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('{"success": true, "result": {"uid": "abc"');
        case 'drop':
          req.socket.destroy();
          return;
        case 'envelope':
          return send(res, 400, failure(f.code, f.message));
        case 'slow':
          await new Promise((r) => setTimeout(r, f.delayMs));
          break; // then answer normally
        default:
          break;
      }
    }
    try {
      await handleApi(req, res, path, raw, call);
    } catch (e) {
      send(res, 500, failure(10002, 'fake internal error: ' + e.message));
    }
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port || 0, '127.0.0.1', resolve);
  });
  const port = server.address().port;

  return {
    port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}${API_PREFIX}`,
    controlUrl: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/__control`,
    accountId,
    token,
    calls,
    get webhooks() { return webhooksSent; },
    inputs: listAll,
    getInput: (uid) => (inputs.has(uid) ? { ...liveInputView(inputs.get(uid)), outputs: [...inputs.get(uid).outputs.values()].map(outputView) } : null),
    setInputState,
    injectFault,
    clearFaults: () => { faults.length = 0; },
    // The input's status back to null (never connected), as a media service that restarted.
    forgetInputStatus: (uid) => { const i = inputs.get(uid); if (i) i.status = null; },
    setRateLimit: (rl) => { rateLimit = rl; rlHits = []; },
    resetCalls: () => { calls.length = 0; },
    reset,
    // Output-create calls per input uid, for no-duplicate assertions.
    outputCreates: () => calls.filter((c) => c.method === 'POST' && /\/outputs$/.test(c.path) && c.status === 200),
    stop: () => new Promise((resolve) => {
      for (const r of hung) r.destroy();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

function argVal(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const cf = await startFakeCloudflare({
    port: Number(argVal('--port') || 0),
    webhookUrl: argVal('--webhook-url'),
    webhookSecret: argVal('--webhook-secret'),
    token: argVal('--token'),
    accountId: argVal('--account'),
    tlsCert: argVal('--tls-cert'),
    tlsKey: argVal('--tls-key'),
  });
  process.stdout.write(`FAKE_CLOUDFLARE_LISTENING port=${cf.port} url=${cf.url} account=${cf.accountId}\n`);
  const stop = async () => { await cf.stop(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
