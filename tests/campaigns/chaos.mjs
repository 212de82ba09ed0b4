// make chaos (a): the kill -9 campaign. Two worlds, each a release `streampai serve` with its own
// SQLite DATA_DIR: one with the built-in relay (`streampai relay`, real RTMP publishers: ffmpeg
// republishing a small clip with -c copy), one with MEDIA_BACKEND=cloudflare on the fake
// (tests/fakes/cloudflare.mjs, webhooks back to the server). Every round picks a world (about one
// in four is the Cloudflare one), runs one actor per user doing a random mix of destination
// creates/renames/deletes, stream starts/stops, input connects/disconnects (relay: publisher
// started/killed, the relay sends the webhook; fake: state set with webhook), alert tests when
// POST /api/widgets/alertbox/test answers non-404, plus a registration, and SIGKILLs the control
// plane at a random moment (in some relay rounds the relay too). Then: PRAGMA integrity_check on
// the dead server's database, restart, and the invariant checker:
//   - every acknowledged write is present (registrations, destination create/rename/delete,
//     stream start -> its streams row and, unless a later stop, streaming with that id; stop ->
//     the stream ended); the one request per user that was in flight at the kill may have
//     landed or not, both are accepted, nothing else;
//   - no duplicate output (same url + key twice on one input) and no orphan output (an output on
//     the media plane for a user who is not streaming, or not among the stream's outputs);
//   - DB and media plane agree per user: connected input <=> ready/streaming (streaming with a
//     disconnect deadline when the input is gone), every active output row exists remotely;
//   - relay.json still parses after a relay kill.
// Agreement is eventual (reconciliation runs after the restart): each user is polled until it
// holds or CHAOS_SETTLE_MS passes. Prints one summary line; exit 1 on any violation.
// Env: CHAOS_ROUNDS (100), CHAOS_USERS (3 per world), CHAOS_SEED, CHAOS_SETTLE_MS (30000),
//      CHAOS_CF_SHARE (0.25), CHAOS_RELAY_KILL (0.3), CHAOS_KEEP (keep the temp dirs),
//      CHAOS_CANARY=1 (checker self-test: one phantom acknowledged write; must print violations>=1).
import fs from 'node:fs';
import path from 'node:path';
import { startFakeCloudflare } from '../fakes/cloudflare.mjs';
import {
  ROOT, rng, spawnSp, rq, waitHealthy, registerUser, freePort, sleep, tmpDir, sqlite, sqliteRows, q,
  makeClip, publishLoop,
} from './lib.mjs';

const ROUNDS = Number(process.env.CHAOS_ROUNDS || 100);
const USERS = Number(process.env.CHAOS_USERS || 3);
const SEED = Number(process.env.CHAOS_SEED || Date.now() % 1000000);
const SETTLE_MS = Number(process.env.CHAOS_SETTLE_MS || 30000);
const CF_SHARE = Number(process.env.CHAOS_CF_SHARE || 0.25);
const RELAY_KILL = Number(process.env.CHAOS_RELAY_KILL || 0.3);
const R = rng(SEED);
// a valid alert test body (an empty one is refused 422 `invalid`: unknown alert type)
const ALERT_TYPES = ['follow', 'subscription', 'cheer', 'raid', 'donation'];
const WEBHOOK_SECRET = 'chaos-webhook-secret-0001';
const RELAY_TOKEN = 'chaos-relay-token-0123456789';
const ADMIN_TOKEN = 'chaos-admin-token-0001';
const log = (...a) => console.error('[chaos]', ...a);

const stats = { rounds: 0, cpKills: 0, relayKills: 0, violations: [], acked: 0, refused: 0, inDoubt: 0,
  ops: {}, orphanInputs: 0, alerts: 'not probed', settleMs: [] };
const violation = (w, round, msg) => { stats.violations.push(`round ${round} [${w.kind}] ${msg}`); log(`VIOLATION round ${round} [${w.kind}] ${msg}`); };

const base = tmpDir('sp-chaos-');
const clip = makeClip(base);
const deadPort = await freePort(); // destinations point here: nothing listens (outputs retry)

// ---- worlds --------------------------------------------------------------------------------
async function makeWorld(kind) {
  const w = { kind, dir: path.join(base, kind), users: [], regs: [], doubtRegs: 0 };
  fs.mkdirSync(w.dir);
  w.db = path.join(w.dir, 'streampai.db');
  w.cpLog = path.join(base, `${kind}-serve.log`);
  w.cpPort = await freePort();
  w.env = {
    STREAMPAI_ENV: 'test', LOG_LEVEL: 'info', DATA_DIR: w.dir, HTTP_LISTEN: `127.0.0.1:${w.cpPort}`,
    PUBLIC_URL: `http://127.0.0.1:${w.cpPort}`, WEB_DIR: path.join(ROOT, 'web'),
    CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET, ALLOW_PRIVATE_DESTINATIONS: 'true', ADMIN_TOKEN,
    STREAM_DISCONNECT_TIMEOUT: '120000', CLOUDFLARE_INPUT_POLL_INTERVAL: '1000',
  };
  if (kind === 'relay') {
    w.relayDir = path.join(w.dir, 'relay');
    fs.mkdirSync(w.relayDir);
    w.relayPort = await freePort();
    w.rtmpPort = await freePort();
    w.relayLog = path.join(base, 'relay.log');
    w.relayEnv = {
      STREAMPAI_ENV: 'test', LOG_LEVEL: 'info', DATA_DIR: w.relayDir, RELAY_API_LISTEN: `127.0.0.1:${w.relayPort}`,
      RELAY_RTMP_LISTEN: `127.0.0.1:${w.rtmpPort}`, RELAY_API_TOKEN: RELAY_TOKEN,
      CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET, PUBLIC_URL: `http://127.0.0.1:${w.cpPort}`,
    };
    Object.assign(w.env, { MEDIA_BACKEND: 'local', RELAY_API_TOKEN: RELAY_TOKEN,
      RELAY_API_LISTEN: `127.0.0.1:${w.relayPort}`, RELAY_RTMP_LISTEN: `127.0.0.1:${w.rtmpPort}` });
    await startRelay(w);
  } else {
    w.cf = await startFakeCloudflare({ webhookUrl: `http://127.0.0.1:${w.cpPort}/webhooks/cloudflare`, webhookSecret: WEBHOOK_SECRET });
    Object.assign(w.env, { MEDIA_BACKEND: 'cloudflare', CLOUDFLARE_API_BASE_URL: w.cf.url,
      CLOUDFLARE_ACCOUNT_ID: w.cf.accountId, CLOUDFLARE_API_TOKEN: w.cf.token });
  }
  await startCp(w);
  for (let i = 0; i < USERS; i++) {
    const u = await registerUser(w.cpPort, `chaos${kind[0]}`);
    if (!u.token) throw new Error(`${kind}: could not register a user: ${u.status} ${u.err}`);
    Object.assign(u, { dests: new Map(), expect: null, doubt: null, wantConnected: false, pub: null });
    const st = await api(w, u, 'GET', '/api/stream');
    u.inputUid = st.json?.input?.input_uid;
    u.ingest = st.json?.input?.rtmp_url && `${st.json.input.rtmp_url.replace(/\/$/, '')}/${st.json.input.stream_key}`;
    if (!u.inputUid) throw new Error(`${kind}: user without a live input: ${st.status} ${st.text}`);
    w.users.push(u);
    w.regs.push(u.email);
  }
  return w;
}

async function startRelay(w) {
  w.relay = spawnSp(['relay'], w.relayEnv, w.relayLog);
  await waitForListening(w.relayPort, w.relay);
}
async function waitForListening(port, proc) {
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`relay exited ${proc.exitCode}`);
    const r = await rq(port, 'GET', '/metrics', undefined, {}, { timeout: 1000 });
    if (r.status === 200) return;
    await sleep(50);
  }
  throw new Error('relay did not listen');
}
async function startCp(w) {
  w.cp = spawnSp(['serve'], w.env, w.cpLog);
  await waitHealthy(w.cpPort, w.cp);
}

function api(w, u, method, p, body) {
  return rq(w.cpPort, method, p, body, { authorization: `Bearer ${u.token}` }, { timeout: 15000 });
}
function relayApi(w, method, p, body) {
  return rq(w.relayPort, method, `/client/v4/accounts/acc1/stream/live_inputs${p}`, body,
    { authorization: `Bearer ${RELAY_TOKEN}` }, { timeout: 5000 });
}

// Media plane view of one input: {state, outputs:[{uid,url,streamKey}]} or null if unknown.
async function mediaView(w, uid) {
  if (w.kind === 'cloudflare') {
    const inp = w.cf.getInput(uid);
    if (!inp) return { missing: true, state: null, outputs: [] };
    return { state: inp.status?.current?.state || null, outputs: (inp.outputs || []).map((o) => ({ uid: o.uid, url: o.url, streamKey: o.streamKey })) };
  }
  const i = await relayApi(w, 'GET', `/${uid}`);
  if (i.status === 404) return { missing: true, state: null, outputs: [] };
  if (i.status !== 200) return null;
  const o = await relayApi(w, 'GET', `/${uid}/outputs`);
  if (o.status !== 200) return null;
  return { state: i.json.result?.status?.current?.state || null, outputs: (o.json.result || []).map((x) => ({ uid: x.uid, url: x.url, streamKey: x.streamKey })) };
}
async function mediaInputUids(w) {
  if (w.kind === 'cloudflare') return w.cf.inputs().map((i) => i.uid);
  const r = await relayApi(w, 'GET', '');
  const list = r.json?.result?.liveInputs || r.json?.result || [];
  return list.map((i) => i.uid);
}

// ---- the workload --------------------------------------------------------------------------
let alertRoute = null; // null = not probed, true/false
const count = (k) => { stats.ops[k] = (stats.ops[k] || 0) + 1; };
const refusals = {};
const refuse = (k, res) => {
  stats.refused++;
  const code = res.json?.error?.code || '';
  const key = `${k}:${res.status}${code ? ` ${code}` : ''}`;
  refusals[key] = (refusals[key] || 0) + 1;
};

async function ensurePublisher(w, u) {
  if (u.pub && u.pub.exitCode === null && u.pub.signalCode === null) return;
  u.pub = publishLoop(clip, u.ingest);
}
function stopPublisher(u) {
  if (u.pub) { try { u.pub.kill('SIGKILL'); } catch { /* gone */ } u.pub = null; }
}

// One op for user u; returns false when the request got no answer (the op is in doubt).
async function oneOp(w, u) {
  const mayStream = (u.expect && u.expect.state === 'streaming') || (u.doubt && u.doubt.kind === 'start');
  const ids = [...u.dests.keys()];
  const choices = ['read'];
  if (ids.length < 4) choices.push('add', 'add');
  if (ids.length) choices.push('rename', 'rename', 'start', 'start', 'stop');
  if (ids.length > 1) choices.push('del');
  choices.push(u.wantConnected ? 'stop' : 'connect');
  if (u.wantConnected && !mayStream) choices.push('disconnect');
  if (alertRoute) choices.push('alert');
  const k = R.pick(choices);
  count(k);
  let r;
  const answered = (res) => {
    if (res.status === 0) { u.doubt = pending; stats.inDoubt++; return false; }
    if (res.status >= 200 && res.status < 300) stats.acked++; else refuse(k, res);
    return true;
  };
  let pending = null;
  switch (k) {
  case 'read':
    r = await api(w, u, 'GET', '/api/stream');
    return r.status !== 0;
  case 'add': {
    const name = `d${R.int(0, 1e6)}`;
    pending = { kind: 'add', name };
    r = await api(w, u, 'POST', '/api/destinations', { platform: 'custom', name, url: `rtmp://127.0.0.1:${deadPort}/live`, stream_key: `key-${name}` });
    if (!answered(r)) return false;
    if (r.status === 201) u.dests.set(r.json.id, name);
    return true;
  }
  case 'rename': {
    const id = R.pick(ids);
    const name = `r${R.int(0, 1e6)}`;
    pending = { kind: 'rename', id, name };
    r = await api(w, u, 'PATCH', `/api/destinations/${id}`, { name });
    if (!answered(r)) return false;
    if (r.status === 200) u.dests.set(id, name);
    return true;
  }
  case 'del': {
    const id = R.pick(ids);
    pending = { kind: 'del', id };
    r = await api(w, u, 'DELETE', `/api/destinations/${id}`);
    if (!answered(r)) return false;
    if (r.status >= 200 && r.status < 300) u.dests.delete(id);
    return true;
  }
  case 'start': {
    const sel = ids.filter(() => R.chance(0.6));
    if (!sel.length) sel.push(ids[0]);
    pending = { kind: 'start' };
    r = await api(w, u, 'POST', '/api/stream/start', { destinations: sel });
    if (!answered(r)) return false;
    if (r.status === 200) u.expect = { state: 'streaming', streamId: r.json.stream_id };
    else if (r.status === 502) u.expect = { state: 'stopped' };
    return true;
  }
  case 'stop':
    pending = { kind: 'stop' };
    r = await api(w, u, 'POST', '/api/stream/stop');
    if (!answered(r)) return false;
    if (r.status === 200) u.expect = { ...(u.expect || {}), state: 'stopped', stoppedId: u.expect?.streamId };
    return true;
  case 'alert':
    r = await api(w, u, 'POST', '/api/widgets/alertbox/test', { type: R.pick(ALERT_TYPES) });
    if (r.status === 0) return false;
    if (r.status >= 200 && r.status < 300) stats.acked++; else refuse(k, r);
    return true;
  case 'connect':
    u.wantConnected = true;
    if (w.kind === 'relay') { await ensurePublisher(w, u); return true; }
    await Promise.race([w.cf.setInputState(u.inputUid, 'connected', { webhook: true }).catch(() => 0), sleep(10000)]);
    return true;
  case 'disconnect':
    u.wantConnected = false;
    if (w.kind === 'relay') { stopPublisher(u); return true; }
    await Promise.race([w.cf.setInputState(u.inputUid, 'disconnected', { webhook: true }).catch(() => 0), sleep(10000)]);
    return true;
  default:
    return true;
  }
}

async function actor(w, u, flag) {
  while (!flag.stop) {
    const ok = await oneOp(w, u);
    if (!ok) return;
    await sleep(R.int(0, 80));
  }
}
async function registrar(w, flag) {
  await sleep(R.int(0, 1500));
  if (flag.stop) return;
  count('register');
  const u = await registerUser(w.cpPort, `chaosreg${w.kind[0]}`);
  if (u.status === 201) { w.regs.push(u.email); stats.acked++; } else if (!u.status) { w.doubtRegs++; stats.inDoubt++; } else stats.refused++;
}

// ---- the checker ---------------------------------------------------------------------------
function sameSet(a, b) { return a.size === b.size && [...a].every((x) => b.has(x)); }

function checkDests(w, round, u) {
  const rows = sqliteRows(w.db, `SELECT id, name FROM destinations WHERE user_id=${q(u.id)}`);
  const got = new Map(rows.map((r) => [r.id, r.name]));
  const eq = (m) => m.size === got.size && [...m].every(([id, n]) => got.get(id) === n);
  const alts = [new Map(u.dests)];
  const d = u.doubt;
  if (d && d.kind === 'rename' && u.dests.has(d.id)) { const m = new Map(u.dests); m.set(d.id, d.name); alts.push(m); }
  if (d && d.kind === 'del') { const m = new Map(u.dests); m.delete(d.id); alts.push(m); }
  if (d && d.kind === 'add') {
    const extra = [...got].filter(([id]) => !u.dests.has(id));
    if (extra.length === 1 && extra[0][1] === d.name) { const m = new Map(u.dests); m.set(extra[0][0], d.name); alts.push(m); }
  }
  const ok = alts.some(eq);
  if (!ok) {
    violation(w, round, `user ${u.id.slice(0, 8)} destinations: db ${JSON.stringify([...got])} expected ${JSON.stringify([...u.dests])}${d ? ` (in doubt: ${JSON.stringify(d)})` : ''}`);
  }
  u.dests = got; // resolve the doubt: adopt what the server has
}

// One user's agreement between the API/DB view and the media plane. Returns a reason or null.
async function agreement(w, u) {
  const st = await api(w, u, 'GET', '/api/stream');
  if (st.status !== 200) return { why: `GET /api/stream ${st.status} ${st.err || st.text}` };
  const s = st.json;
  if (s.state === 'ending' || s.starting) return { why: `transitional state ${s.state}${s.starting ? ' starting' : ''}`, s };
  const mv = await mediaView(w, u.inputUid);
  if (!mv) return { why: 'media plane unreachable', s };
  if (mv.missing) return { why: 'input missing on the media plane', s };
  const keys = mv.outputs.map((o) => `${o.url}|${o.streamKey}`);
  if (new Set(keys).size !== keys.length) return { why: `duplicate outputs on the media plane: ${keys.join(', ')}`, s, hard: true };
  const connected = mv.state === 'connected';
  if (connected && !['ready', 'streaming'].includes(s.state)) return { why: `input connected but state ${s.state}`, s };
  if (!connected && s.state === 'ready') return { why: `input ${mv.state} but state ready`, s };
  if (!connected && s.state === 'streaming' && !s.disconnect_deadline) return { why: 'input gone, streaming without a disconnect deadline', s };
  if (s.state !== 'streaming') {
    if (mv.outputs.length) return { why: `orphan outputs: state ${s.state} with ${mv.outputs.length} output(s) on the media plane`, s };
    return { ok: true, s };
  }
  const rows = (s.outputs || []);
  const known = new Set(rows.map((o) => o.output_uid).filter(Boolean));
  const orphan = mv.outputs.filter((o) => !known.has(o.uid));
  if (orphan.length) return { why: `orphan outputs ${orphan.map((o) => o.uid.slice(0, 8)).join(',')} not among the stream's outputs`, s };
  const remote = new Set(mv.outputs.map((o) => o.uid));
  const lost = rows.filter((o) => o.state === 'active' && o.output_uid && !remote.has(o.output_uid));
  if (lost.length) return { why: `active output rows missing on the media plane: ${lost.map((o) => o.output_uid.slice(0, 8)).join(',')}`, s };
  const pendingRows = rows.filter((o) => o.state === 'creating' || o.state === 'deleting');
  if (pendingRows.length) return { why: `${pendingRows.length} output row(s) still ${pendingRows[0].state}`, s };
  return { ok: true, s };
}

function checkStream(w, round, u, s) {
  const e = u.expect;
  const d = u.doubt;
  const streaming = s.state === 'streaming';
  if (e && e.state === 'streaming') {
    const rows = sqliteRows(w.db, `SELECT id, ended_at FROM streams WHERE id=${q(e.streamId)}`);
    if (!rows.length) violation(w, round, `acknowledged start ${e.streamId} has no streams row`);
    const okNow = streaming && s.stream_id === e.streamId;
    const okDoubt = d && (d.kind === 'stop' || d.kind === 'start');
    if (!okNow && !okDoubt) violation(w, round, `user ${u.id.slice(0, 8)}: acknowledged start ${e.streamId.slice(0, 8)} but state ${s.state} stream ${s.stream_id}`);
  } else if (e && e.state === 'stopped') {
    if (streaming && !(d && d.kind === 'start')) violation(w, round, `user ${u.id.slice(0, 8)}: acknowledged stop but streaming ${s.stream_id}`);
    if (e.stoppedId) {
      const rows = sqliteRows(w.db, `SELECT ended_at FROM streams WHERE id=${q(e.stoppedId)}`);
      if (!rows.length || rows[0].ended_at === null) violation(w, round, `acknowledged stop of ${e.stoppedId.slice(0, 8)}: stream not ended in the db`);
    }
  }
  // adopt what the server says (the doubt is resolved)
  u.expect = streaming ? { state: 'streaming', streamId: s.stream_id } : { state: 'stopped' };
  u.doubt = null;
}

async function check(w, round) {
  const t0 = Date.now();
  for (const email of w.regs) {
    const n = sqlite(w.db, `SELECT count(*) AS n FROM users WHERE email=${q(email)}`);
    if (!/"n":1/.test(n)) violation(w, round, `acknowledged registration ${email} missing`);
  }
  for (const u of w.users) checkDests(w, round, u);
  await Promise.all(w.users.map(async (u) => {
    // the deadline is wall time AND a number of attempts: a host that stops the campaign's
    // processes for a while (shared machines do) must not turn a pause into a violation
    const end = Date.now() + SETTLE_MS;
    let last;
    for (let n = 1; ; n++) {
      last = await agreement(w, u);
      if (last.ok || last.hard || (Date.now() > end && n * 300 > SETTLE_MS)) break;
      await sleep(300);
    }
    if (!last.ok) violation(w, round, `user ${u.id.slice(0, 8)} after ${SETTLE_MS} ms: ${last.why}`);
    if (last.s) checkStream(w, round, u, last.s);
  }));
  // orphan inputs (informational): media plane inputs no user owns
  const dbInputs = new Set(sqliteRows(w.db, 'SELECT input_uid FROM live_inputs').map((r) => r.input_uid));
  const remote = await mediaInputUids(w);
  stats.orphanInputs = Math.max(stats.orphanInputs, remote.filter((x) => !dbInputs.has(x)).length);
  stats.settleMs.push(Date.now() - t0);
}

function integrity(w, round, when) {
  try {
    const out = sqlite(w.db, 'PRAGMA integrity_check');
    if (!/"integrity_check":"ok"/.test(out)) violation(w, round, `integrity_check ${when}: ${out.slice(0, 300)}`);
  } catch (e) { violation(w, round, `integrity_check ${when} failed: ${e.message.slice(0, 200)}`); }
}

// ---- main ----------------------------------------------------------------------------------
const worlds = {};
async function world(kind) { if (!worlds[kind]) worlds[kind] = await makeWorld(kind); return worlds[kind]; }

const t00 = Date.now();
let exitCode = 0;
try {
  for (let round = 1; round <= ROUNDS; round++) {
    const w = await world(R.chance(CF_SHARE) ? 'cloudflare' : 'relay');
    if (alertRoute === null) {
      const r = await api(w, w.users[0], 'POST', '/api/widgets/alertbox/test', { type: 'follow' });
      alertRoute = ![0, 404, 405].includes(r.status);
      stats.alerts = alertRoute ? `route answers ${r.status}: in the mix` : `POST /api/widgets/alertbox/test answers ${r.status} (no such route yet): not in the mix`;
    }
    if (process.env.CHAOS_CANARY && round === 1) {
      // checker self-test: a destination the server never acknowledged is put in the model as
      // acknowledged; the checker must report it (the summary then shows violations >= 1)
      w.users[0].dests.set('00000000-0000-4000-8000-000000000000', 'canary');
    }
    const flag = { stop: false };
    const runs = [...w.users.map((u) => actor(w, u, flag)), R.chance(0.5) ? registrar(w, flag) : Promise.resolve()];
    const killAt = R.int(100, 2500);
    await sleep(killAt);
    const killRelay = w.kind === 'relay' && R.chance(RELAY_KILL);
    await w.cp.kill9();
    stats.cpKills++;
    if (killRelay) { await w.relay.kill9(); stats.relayKills++; }
    flag.stop = true;
    await Promise.all(runs);
    integrity(w, round, 'after SIGKILL');
    if (killRelay) {
      try { JSON.parse(fs.readFileSync(path.join(w.relayDir, 'relay.json'), 'utf8')); } catch (e) {
        if (e.code !== 'ENOENT') violation(w, round, `relay.json unreadable after SIGKILL: ${e.message}`);
      }
      await startRelay(w);
    }
    await startCp(w);
    if (w.kind === 'relay') for (const u of w.users) if (u.wantConnected) await ensurePublisher(w, u);
    await check(w, round);
    stats.rounds++;
    log(`round ${round}/${ROUNDS} [${w.kind}] killed at ${killAt} ms${killRelay ? ' +relay' : ''}; violations so far ${stats.violations.length}`);
  }
  for (const w of Object.values(worlds)) {
    for (const u of w.users) stopPublisher(u);
    const r = await w.cp.term();
    if (r.code !== 0) violation(w, 'end', `serve exit ${r.code}/${r.sig} on SIGTERM`);
    integrity(w, 'end', 'at the end');
    if (w.relay) { const rr = await w.relay.term(); if (rr.code !== 0) violation(w, 'end', `relay exit ${rr.code}/${rr.sig} on SIGTERM`); }
    if (w.cf) await w.cf.stop();
  }
} catch (e) {
  log('campaign aborted:', e.stack || e);
  stats.violations.push(`aborted: ${e.message}`);
  exitCode = 2;
} finally {
  for (const w of Object.values(worlds)) {
    for (const u of w.users) stopPublisher(u);
    if (w.cp) await w.cp.kill9();
    if (w.relay) await w.relay.kill9();
    if (w.cf) await w.cf.stop().catch(() => {});
  }
}
const secs = ((Date.now() - t00) / 1000).toFixed(0);
const ops = Object.entries(stats.ops).map(([k, v]) => `${k}=${v}`).join(' ');
log(`ops: ${ops}; alerts: ${stats.alerts}; logs in ${base}`);
log(`refused: ${Object.entries(refusals).map(([k, v]) => `${k}=${v}`).join(', ')}`);
for (const v of stats.violations.slice(0, 20)) log(`  ${v}`);
if (!process.env.CHAOS_KEEP && stats.violations.length === 0) fs.rmSync(base, { recursive: true, force: true });
console.log(`chaos: seed=${SEED} rounds=${stats.rounds}/${ROUNDS} faults=${stats.cpKills + stats.relayKills} (serve SIGKILL ${stats.cpKills}, relay SIGKILL ${stats.relayKills}) ` +
  `acked=${stats.acked} refused=${stats.refused} in_doubt=${stats.inDoubt} orphan_inputs=${stats.orphanInputs} ` +
  `settle_p50=${stats.settleMs.length ? stats.settleMs.sort((a, b) => a - b)[Math.floor(stats.settleMs.length / 2)] : 0}ms ` +
  `violations=${stats.violations.length} in ${secs}s`);
process.exit(exitCode || (stats.violations.length ? 1 : 0));
