// GET /socket authenticates with the session cookie or ?token=JWT; without a
// valid credential the answer is 401 before the upgrade.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { bootServer, rq, register, jwtDecode, jwtSign, signingKey } from '../lib/authlib.mjs';

let srv;
before(async () => { srv = await bootServer(); });
after(() => srv?.stop()); // cleanup only: the clean exit is the last test

function open(path, headers = {}) {
  const ws = new WebSocket(srv.url.replace('http://', 'ws://') + path, { origin: srv.url, headers });
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => { resolve({ status: 101, ws }); });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
  });
}

test('WebSocket: cookie or ?token=JWT, else 401 before the upgrade', async () => {
  const a = await register(srv, `ws${Date.now()}@example.com`);
  assert.equal((await open('/socket')).status, 401);
  assert.equal((await open('/socket?token=a.b.c')).status, 401);
  const c = await open('/socket', { cookie: `sp_session=${a.cookies.sp_session}` });
  assert.equal(c.status, 101);
  c.ws.close();
  const tok = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
  const q = await open(`/socket?token=${encodeURIComponent(tok.json.token)}`);
  assert.equal(q.status, 101);
  q.ws.close();
  // forged: alg none, expired
  const key = signingKey(srv);
  const p = jwtDecode(tok.json.token).payload;
  assert.equal((await open(`/socket?token=${jwtSign({ alg: 'none' }, p, key, null)}`)).status, 401);
  assert.equal((await open(`/socket?token=${jwtSign({ alg: 'HS256' }, { ...p, exp: Math.floor(Date.now() / 1000) - 1 }, key)}`)).status, 401);
  // revoked by logout
  await rq(srv, 'POST', '/api/auth/logout', { headers: { authorization: `Bearer ${tok.json.token}` } });
  assert.equal((await open(`/socket?token=${encodeURIComponent(tok.json.token)}`)).status, 401);
});

test('the server exits cleanly (no ASan/LSan report)', async () => {
  await srv.stopClean();
});
