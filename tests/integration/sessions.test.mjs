// Issue 12, finding 5: bearer tokens survived logout. Sessions are listed (GET /api/sessions),
// revoked one by one (DELETE /api/sessions/{id}) or all at once (DELETE /api/sessions: log
// out everywhere); a token from POST /api/auth/token is a revocable 'bearer' session with a
// shorter default life (SOCKET_TOKEN_TTL, 12 h); the open sockets of a revoked session are
// closed at once with 4001.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { waitFor } from '../lib/harness.mjs';
import { bootServer, rq, register, login, jwtDecode, dbExec } from '../lib/authlib.mjs';

let srv;
const opened = []; // every socket, terminated at the end whatever happened
before(async () => { srv = await bootServer(); });
after(() => { for (const ws of opened) ws.terminate(); return srv?.stop(); }); // cleanup only

let n = 0;
const uniq = (p) => `${p}-${Date.now()}-${++n}@example.com`;
const csrf = (c) => ({ 'x-csrf-token': c.sp_csrf });
const bearer = (t) => ({ authorization: `Bearer ${t}` });

async function token(c, ua = 'obs-browser-source/1.0') {
  const t = await rq(srv, 'POST', '/api/auth/token', { cookies: c, headers: { ...csrf(c), 'user-agent': ua } });
  assert.equal(t.status, 200, t.text);
  return t.json.token;
}

function openSocket(p, headers = {}) {
  const ws = new WebSocket(srv.url.replace('http://', 'ws://') + p, { origin: srv.url, headers });
  ws.on('error', () => {});
  opened.push(ws);
  ws.closeInfo = null;
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    ws.closeInfo = { code, reason: reason.toString(), at: Date.now() };
    resolve(ws.closeInfo);
  }));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => reject(new Error(`status ${res.statusCode}`)));
  });
}

// The close of ws, or a failure after 5 s (a socket that is never closed must not hang the run).
function closedSoon(ws, ms = 5000) {
  let t;
  const timeout = new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms); });
  return Promise.race([ws.closed, timeout]).finally(() => clearTimeout(t));
}

const list = async (c) => {
  const r = await rq(srv, 'GET', '/api/sessions', { cookies: c });
  assert.equal(r.status, 200, r.text);
  return r.json.sessions;
};

describe('sessions', () => {
  test('GET /api/sessions: the cookie session (current) and a bearer token, with device, IP and times', async () => {
    const a = await register(srv, uniq('list'), undefined, undefined, '127.9.0.1');
    const t = await token(a.cookies);
    const sid = jwtDecode(a.cookies.sp_session).payload.sid;
    const tsid = jwtDecode(t).payload.sid;
    const ss = await list(a.cookies);
    assert.equal(ss.length, 2, JSON.stringify(ss));
    const cur = ss.find((s) => s.id === sid);
    const tok = ss.find((s) => s.id === tsid);
    assert.ok(cur && tok, JSON.stringify(ss));
    assert.equal(cur.current, true);
    assert.equal(cur.kind, 'cookie');
    assert.equal(cur.ip, '127.9.0.1');
    assert.equal(tok.current, false);
    assert.equal(tok.kind, 'bearer');
    assert.equal(tok.user_agent, 'obs-browser-source/1.0');
    for (const s of ss) {
      assert.ok(Date.parse(s.created_at) <= Date.now() + 1000 && Date.parse(s.expires_at) > Date.now(), JSON.stringify(s));
      assert.ok(s.last_used_at === null || Date.parse(s.last_used_at) >= Date.parse(s.created_at) - 1000);
    }
    // the same list through the bearer token marks the token's session as current
    const viaTok = await rq(srv, 'GET', '/api/sessions', { headers: bearer(t) });
    assert.equal(viaTok.status, 200);
    assert.equal(viaTok.json.sessions.find((s) => s.current).id, tsid);
    // last use: written when the recorded one is over a minute old
    const old = Date.now() - 5 * 60e3;
    dbExec(srv, `UPDATE sessions SET last_used_at = ${old} WHERE id = '${tsid}'`);
    assert.equal((await rq(srv, 'GET', '/api/me', { headers: bearer(t) })).status, 200);
    await waitFor(() => Number(dbExec(srv, `SELECT last_used_at FROM sessions WHERE id = '${tsid}'`).trim()) > old + 60e3,
      { what: 'last_used_at updated' });
    const seen = (await list(a.cookies)).find((s) => s.id === tsid);
    assert.ok(Date.now() - Date.parse(seen.last_used_at) < 60e3, JSON.stringify(seen));
    // another user's sessions never show
    const b = await register(srv, uniq('list-b'));
    const sb = await list(b.cookies);
    assert.equal(sb.length, 1);
    assert.ok(!sb.some((s) => s.id === sid || s.id === tsid));
    assert.equal((await rq(srv, 'GET', '/api/sessions')).status, 401);
  });

  test('a socket token lives SOCKET_TOKEN_TTL (12 h by default), not SESSION_TTL (30 days)', async () => {
    const a = await register(srv, uniq('ttl'));
    const p = jwtDecode(await token(a.cookies)).payload;
    assert.equal(p.exp - p.iat, 12 * 3600);
    const c = jwtDecode(a.cookies.sp_session).payload;
    assert.equal(c.exp - c.iat, 30 * 86400, 'the login session keeps SESSION_TTL');
  });

  test('DELETE /api/sessions/{id}: the leaked token stops at once, its socket is closed 4001, the rest lives on', async () => {
    const a = await register(srv, uniq('revoke'));
    const t = await token(a.cookies);
    const tsid = jwtDecode(t).payload.sid;
    const tokSock = await openSocket(`/socket?token=${encodeURIComponent(t)}`);
    const cookieSock = await openSocket('/socket', { cookie: `sp_session=${a.cookies.sp_session}` });
    assert.equal((await rq(srv, 'GET', '/api/me', { headers: bearer(t) })).status, 200);
    // CSRF applies (cookie-authenticated DELETE)
    assert.equal((await rq(srv, 'DELETE', `/api/sessions/${tsid}`, { cookies: a.cookies })).status, 403);
    const t0 = Date.now();
    const del = await rq(srv, 'DELETE', `/api/sessions/${tsid}`, { cookies: a.cookies, headers: csrf(a.cookies) });
    assert.equal(del.status, 204, del.text);
    assert.equal(del.set.sp_session, undefined, 'revoking another session keeps my cookies');
    const ci = await closedSoon(tokSock);
    assert.equal(ci.code, 4001);
    assert.match(ci.reason, /revoked/);
    assert.ok(ci.at - t0 < 3000, `closed after ${ci.at - t0} ms`);
    // twice: the second refusal comes from the remembered revocation
    assert.equal((await rq(srv, 'GET', '/api/me', { headers: bearer(t) })).status, 401);
    assert.equal((await rq(srv, 'GET', '/api/me', { headers: bearer(t) })).status, 401);
    await assert.rejects(openSocket(`/socket?token=${encodeURIComponent(t)}`), /status 401/);
    // the cookie session and its socket are untouched
    assert.equal((await rq(srv, 'GET', '/api/me', { cookies: a.cookies })).status, 200);
    assert.equal(cookieSock.readyState, WebSocket.OPEN);
    assert.ok(!(await list(a.cookies)).some((s) => s.id === tsid));
    // gone already / malformed / someone else's: 404, and someone else's keeps working
    assert.equal((await rq(srv, 'DELETE', `/api/sessions/${tsid}`, { cookies: a.cookies, headers: csrf(a.cookies) })).status, 404);
    assert.equal((await rq(srv, 'DELETE', '/api/sessions/not-a-uuid', { cookies: a.cookies, headers: csrf(a.cookies) })).status, 404);
    const b = await register(srv, uniq('revoke-b'));
    const bsid = jwtDecode(b.cookies.sp_session).payload.sid;
    const cross = await rq(srv, 'DELETE', `/api/sessions/${bsid}`, { cookies: a.cookies, headers: csrf(a.cookies) });
    assert.equal(cross.status, 404);
    assert.equal((await rq(srv, 'GET', '/api/me', { cookies: b.cookies })).status, 200);
    cookieSock.close();
  });

  test('revoking the current session (and POST /api/auth/logout) clears the cookies and closes its sockets', async () => {
    const a = await register(srv, uniq('self'));
    const sid = jwtDecode(a.cookies.sp_session).payload.sid;
    const ws = await openSocket('/socket', { cookie: `sp_session=${a.cookies.sp_session}` });
    const r = await rq(srv, 'DELETE', `/api/sessions/${sid}`, { cookies: a.cookies, headers: csrf(a.cookies) });
    assert.equal(r.status, 204);
    assert.ok(r.set.sp_session && r.set.sp_session.attrs.includes('max-age=0'));
    assert.equal((await closedSoon(ws)).code, 4001);
    assert.equal((await rq(srv, 'GET', '/api/me', { cookies: a.cookies })).status, 401);
    // logout closes the socket of the logged-out session too
    const l = await login(srv, a.user.email);
    assert.equal(l.res.status, 200);
    const ws2 = await openSocket('/socket', { cookie: `sp_session=${l.cookies.sp_session}` });
    const out = await rq(srv, 'POST', '/api/auth/logout', { cookies: l.cookies, headers: csrf(l.cookies) });
    assert.equal(out.status, 204);
    assert.equal((await closedSoon(ws2)).code, 4001);
  });

  test('log out everywhere: DELETE /api/sessions revokes every session and token, closes every socket', async () => {
    const a = await register(srv, uniq('all'));
    const other = await login(srv, a.user.email); // a second device
    const t1 = await token(a.cookies);
    const t2 = await token(other.cookies);
    const socks = [
      await openSocket(`/socket?token=${encodeURIComponent(t1)}`),
      await openSocket(`/socket?token=${encodeURIComponent(t2)}`),
      await openSocket('/socket', { cookie: `sp_session=${other.cookies.sp_session}` }),
    ];
    const b = await register(srv, uniq('all-b'));
    const bt = await token(b.cookies);
    const bsock = await openSocket(`/socket?token=${encodeURIComponent(bt)}`);
    assert.equal((await list(a.cookies)).length, 4);
    const r = await rq(srv, 'DELETE', '/api/sessions', { cookies: a.cookies, headers: csrf(a.cookies) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.revoked, 4);
    assert.ok(r.set.sp_session && r.set.sp_session.attrs.includes('max-age=0'), 'my cookies cleared');
    for (const ws of socks) assert.equal((await closedSoon(ws)).code, 4001);
    for (const h of [{ cookies: a.cookies }, { cookies: other.cookies }, { headers: bearer(t1) }, { headers: bearer(t2) }])
      assert.equal((await rq(srv, 'GET', '/api/me', h)).status, 401);
    // the other user is untouched
    assert.equal((await rq(srv, 'GET', '/api/me', { headers: bearer(bt) })).status, 200);
    assert.equal(bsock.readyState, WebSocket.OPEN);
    bsock.close();
    // with a bearer token: works the same (no CSRF), no cookies to clear
    const l = await login(srv, a.user.email);
    const t3 = await token(l.cookies);
    const rb = await rq(srv, 'DELETE', '/api/sessions', { headers: bearer(t3) });
    assert.equal(rb.status, 200);
    assert.equal(rb.json.revoked, 2);
    assert.equal((await rq(srv, 'GET', '/api/me', { cookies: l.cookies })).status, 401);
  });

  test('the server exits cleanly (no ASan/LSan report)', async () => {
    await srv.stopClean();
  });
});

test('SOCKET_TOKEN_TTL is configurable and never outlives SESSION_TTL', async () => {
  const s2 = await bootServer({ SOCKET_TOKEN_TTL: '2h', SESSION_TTL: '1h' });
  try {
    const a = await register(s2, uniq('cap'));
    const t = await rq(s2, 'POST', '/api/auth/token', { cookies: a.cookies, headers: csrf(a.cookies) });
    const p = jwtDecode(t.json.token).payload;
    assert.equal(p.exp - p.iat, 3600);
  } finally {
    await s2.stopClean();
  }
  const s3 = await bootServer({ SOCKET_TOKEN_TTL: '10m' });
  try {
    const a = await register(s3, uniq('short'));
    const t = await rq(s3, 'POST', '/api/auth/token', { cookies: a.cookies, headers: csrf(a.cookies) });
    const p = jwtDecode(t.json.token).payload;
    assert.equal(p.exp - p.iat, 600);
    assert.ok(Math.abs(Date.parse(t.json.expires_at) - (Date.now() + 600e3)) < 60e3);
  } finally {
    await s3.stopClean();
  }
});
