// Sign in with Google (OpenID Connect) and with Twitch, against the fakes, on the real server.
// Redirects are followed by hand so every leg is visible: /auth/{p}/login -> provider ->
// /auth/{p}/callback -> /dashboard (or /login?error=...).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoSecretsInLog, startPostgres, waitFor } from '../lib/harness.mjs';
import { bootServer, register, login, dbExec, rq } from '../lib/authlib.mjs';
import { browser, startFlow, atProvider, runFlow, redirectError } from '../lib/oauthlib.mjs';
import { startFakeGoogle } from '../fakes/google.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

let srv, g, tw;

before(async () => {
  g = await startFakeGoogle();
  tw = await startFakeTwitch({ users: [{ id: '555000111', login: 'streamer_one', display_name: 'Streamer_One' }] });
  srv = await bootServer({
    TEST_MODE: 'true',
    GOOGLE_CLIENT_ID: g.clientId, GOOGLE_CLIENT_SECRET: g.clientSecret,
    GOOGLE_AUTH_URL: g.authUrl, GOOGLE_TOKEN_URL: g.tokenUrl, GOOGLE_JWKS_URL: g.jwksUrl,
    GOOGLE_ISSUER: g.issuer,
    TWITCH_CLIENT_ID: tw.clientId, TWITCH_CLIENT_SECRET: tw.clientSecret,
    TWITCH_AUTH_URL: tw.authUrl, TWITCH_API_URL: tw.apiUrl,
  });
});

after(async () => {
  if (srv) await srv.stop();
  if (g) await g.stop();
  if (tw) await tw.stop();
});

const users = () => Number(dbExec(srv, 'SELECT count(*) FROM users').trim());
const me = async (b) => (await b.get('/api/me')).json?.user;

test('GET /api/auth/providers lists the configured sign-in providers (public)', async () => {
  const r = await fetch(`${srv.url}/api/auth/providers`);
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.deepEqual(j.providers.map((p) => [p.name, p.url]),
    [['twitch', '/auth/twitch/login'], ['google', '/auth/google/login']]);
});

test('google: first sign-in creates the user, the next one finds it', async () => {
  g.reset();
  const n0 = users();
  const b = browser(srv);
  const r = await runFlow(b, 'google', 'login');
  assert.equal(r.status, 302);
  assert.equal(r.location, '/dashboard');
  assert.ok(r.set.sp_session, 'session cookie set');
  assert.ok(r.set.sp_session.attrs.includes('httponly'));
  assert.ok(r.set.sp_csrf, 'csrf cookie set');
  const u = await me(b);
  assert.equal(u.email, 'alice@gmail.test', 'a verified email becomes the account email');
  assert.equal(u.display_name, 'Alice Example');
  assert.equal(users(), n0 + 1);
  // again, from another browser: the same user, no new row
  const b2 = browser(srv);
  const r2 = await runFlow(b2, 'google', 'login');
  assert.equal(r2.location, '/dashboard');
  assert.equal((await me(b2)).id, u.id);
  assert.equal(users(), n0 + 1);
  assert.equal(dbExec(srv, `SELECT password_hash FROM users WHERE id = '${u.id}'`).trim(), '!external');
  // the authorize request carried the OIDC pieces
  const az = g.calls.filter((c) => c.path === '/o/oauth2/v2/auth').at(-1);
  assert.equal(az.query.scope, 'openid email profile');
  assert.equal(az.query.code_challenge_method, 'S256');
  assert.ok(az.query.nonce && az.query.nonce.length >= 32, 'a nonce');
  assert.ok(az.query.state && az.query.state.length === 43);
  // a password never opens an account made by a sign-in
  const l = await login(srv, 'alice@gmail.test', 'correct horse battery');
  assert.equal(l.res.status, 401);
});

test('google: the flow cookie is HttpOnly, Lax, scoped to /auth/', async () => {
  const b = browser(srv);
  const r = await b.get('/auth/google/login');
  assert.equal(r.status, 302);
  const c = r.set.sp_oauth;
  assert.ok(c, 'sp_oauth set');
  assert.match(c.value, /^[A-Za-z0-9_-]{43}$/);
  for (const a of ['httponly', 'samesite=lax', 'path=/auth/', 'max-age=600']) assert.ok(c.attrs.includes(a), `${a} in ${c.raw}`);
  assert.ok(!c.attrs.includes('secure'), 'no Secure over http');
  // a second start in the same browser keeps the cookie value
  const r2 = await b.get('/auth/google/login');
  assert.equal(r2.set.sp_oauth.value, c.value);
});

for (const kind of ['signature', 'aud', 'iss', 'exp', 'nonce', 'alg_none', 'unknown_kid']) {
  test(`google: forged id_token (${kind}) is refused and nothing is stored`, async () => {
    g.reset();
    const n0 = users();
    const s0 = Number(dbExec(srv, 'SELECT count(*) FROM sessions').trim());
    g.forgeNext(kind);
    const b = browser(srv);
    const r = await runFlow(b, 'google', 'login');
    assert.equal(redirectError(r), 'invalid_id_token');
    assert.ok(r.location.startsWith('/login?'), r.location);
    assert.equal(new URL(r.location, 'http://x').searchParams.get('provider'), 'google');
    assert.equal(g.counters()[`forged_${kind}`], 1, 'the fake forged it');
    assert.ok(!r.set.sp_session, 'no session cookie');
    assert.equal(users(), n0, 'no user created');
    assert.equal(Number(dbExec(srv, 'SELECT count(*) FROM sessions').trim()), s0, 'no session');
    assert.equal((await b.get('/api/me')).status, 401);
    assert.ok(srv.logText().includes('error=invalid_id_token'), 'a log line names the failure');
  });
}

test('google: a verified email links the existing password account', async () => {
  g.reset();
  const reg = await register(srv, 'bob@example.test');
  assert.equal(reg.res.status, 201);
  const gu = g.addUser({ email: 'bob@example.test', email_verified: true, name: 'Bob' });
  g.setAuthorize('approve', gu.sub);
  const n0 = users();
  const b = browser(srv);
  const r = await runFlow(b, 'google', 'login');
  assert.equal(r.location, '/dashboard');
  assert.equal((await me(b)).id, reg.user.id, 'signed in as the existing account');
  assert.equal(users(), n0, 'no new user');
  assert.equal(dbExec(srv, `SELECT user_id FROM user_identities WHERE provider = 'google' AND subject = '${gu.sub}'`).trim(), reg.user.id);
  // the password still works, and the next Google sign-in finds the link
  assert.equal((await login(srv, 'bob@example.test')).res.status, 200);
  const r2 = await runFlow(browser(srv), 'google', 'login');
  assert.equal(r2.location, '/dashboard');
  g.setAuthorize('approve');
});

test('google: an unverified email creates a separate user (never the existing account)', async () => {
  g.reset();
  const reg = await register(srv, 'carol@example.test');
  assert.equal(reg.res.status, 201);
  const gu = g.addUser({ email: 'carol@example.test', email_verified: false, name: 'Not Carol' });
  g.setAuthorize('approve', gu.sub);
  const n0 = users();
  const b = browser(srv);
  const r = await runFlow(b, 'google', 'login');
  assert.equal(r.location, '/dashboard');
  const u = await me(b);
  assert.notEqual(u.id, reg.user.id, 'not the password account');
  assert.equal(u.email, `google-${gu.sub}@users.invalid`, 'a placeholder email, not the unverified one');
  assert.equal(users(), n0 + 1);
  // the forged-unverified token of a new identity, with a free email: still not stored
  const gu2 = g.addUser({ email: 'dave@example.test', email_verified: false, name: 'Dave' });
  g.setAuthorize('approve', gu2.sub);
  const b2 = browser(srv);
  assert.equal((await runFlow(b2, 'google', 'login')).location, '/dashboard');
  assert.equal((await me(b2)).email, `google-${gu2.sub}@users.invalid`);
  assert.equal(dbExec(srv, "SELECT count(*) FROM users WHERE email = 'dave@example.test'").trim(), '0');
  g.setAuthorize('approve');
});

test('google: denied at the provider ends on the login page', async () => {
  g.reset();
  g.setAuthorize('deny');
  const n0 = users();
  const r = await runFlow(browser(srv), 'google', 'login');
  assert.equal(redirectError(r), 'access_denied');
  assert.equal(users(), n0);
  g.setAuthorize('approve');
});

test('google: token endpoint 500 is a clear error', async () => {
  g.reset();
  g.injectFault({ kind: '5xx', status: 500, pathIncludes: '/token' });
  const n0 = users();
  const r = await runFlow(browser(srv), 'google', 'login');
  assert.equal(redirectError(r), 'provider_unavailable');
  assert.equal(users(), n0);
  assert.equal(g.calls.filter((c) => c.path === '/token').at(-1).status, 500);
});

test('sign-in state: reused, foreign browser and expired states are refused', async () => {
  g.reset();
  // reused
  const b = browser(srv);
  const cb = await atProvider(await startFlow(b, 'google', 'login'));
  assert.equal((await b.get(cb)).location, '/dashboard');
  const b0 = browser(srv);
  b0.jar.set('sp_oauth', b.jar.get('sp_oauth'));
  assert.equal(redirectError(await b0.get(cb)), 'invalid_state', 'a used state is gone');
  // another browser (its own flow cookie) presents A's callback: refused, and A's state is spent
  const a = browser(srv);
  const cbA = await atProvider(await startFlow(a, 'google', 'login'));
  const other = browser(srv);
  await other.get('/auth/google/login'); // other has its own sp_oauth cookie
  assert.equal(redirectError(await other.get(cbA)), 'state_mismatch');
  assert.equal(redirectError(await a.get(cbA)), 'invalid_state', 'single use: the refused take consumed it');
  // no cookie at all
  const c = browser(srv);
  const cbC = await atProvider(await startFlow(c, 'google', 'login'));
  c.jar.delete('sp_oauth');
  assert.equal(redirectError(await c.get(cbC)), 'state_mismatch');
  // a made-up state
  const d = browser(srv);
  await d.get('/auth/google/login');
  assert.equal(redirectError(await d.get('/auth/google/callback?code=x&state=' + 'A'.repeat(43))), 'invalid_state');
  assert.equal(redirectError(await d.get('/auth/google/callback?code=x')), 'invalid_state');
  // expired: move the server's state clock 11 minutes ahead
  const e = browser(srv);
  const cbE = await atProvider(await startFlow(e, 'google', 'login'));
  const clk = await rq(srv, 'POST', '/api/_test/oauth_clock', { body: { skew_ms: 11 * 60 * 1000 } });
  assert.equal(clk.status, 204);
  try {
    assert.equal(redirectError(await e.get(cbE)), 'state_expired');
  } finally {
    await rq(srv, 'POST', '/api/_test/oauth_clock', { body: { skew_ms: 0 } });
  }
  // the state of a google flow is not accepted on the twitch callback
  const f = browser(srv);
  const cbF = await atProvider(await startFlow(f, 'google', 'login'));
  assert.equal(redirectError(await f.get(cbF.replace('/auth/google/', '/auth/twitch/'))), 'invalid_state');
});

test('google: a new signing key is fetched once (unknown kid), not on every sign-in', async () => {
  const knob = async (ms) => assert.equal((await rq(srv, 'POST', '/api/_test/oauth_clock', { body: { jwks_min_refetch_ms: ms } })).status, 204);
  g.reset();
  await knob(0); // a key rotation is seen at once (normally: at most one fetch a minute)
  try {
    assert.equal((await runFlow(browser(srv), 'google', 'login')).location, '/dashboard');
    assert.equal(g.counters().jwks ?? 0, 0, 'keys cached from the earlier sign-ins');
    g.rotateKey();
    assert.equal((await runFlow(browser(srv), 'google', 'login')).location, '/dashboard');
    assert.equal(g.counters().jwks, 1, 'one fetch for the new kid');
    assert.equal((await runFlow(browser(srv), 'google', 'login')).location, '/dashboard');
    assert.equal(g.counters().jwks, 1, 'then cached');
    // an unknown kid refetches, and is still refused (the key is not published)
    g.forgeNext('unknown_kid');
    assert.equal(redirectError(await runFlow(browser(srv), 'google', 'login')), 'invalid_id_token');
    assert.equal(g.counters().jwks, 2);
    // back to the real limit: an unknown kid within the minute does not fetch again
    await knob(60000);
    g.forgeNext('unknown_kid');
    assert.equal(redirectError(await runFlow(browser(srv), 'google', 'login')), 'invalid_id_token');
    assert.equal(g.counters().jwks, 2, 'at most one fetch a minute');
  } finally {
    await knob(60000);
  }
});

test('logged-in users are sent to the dashboard; unknown providers are 404', async () => {
  const b = browser(srv);
  assert.equal((await runFlow(b, 'google', 'login')).location, '/dashboard');
  const r = await b.get('/auth/google/login');
  assert.equal(r.status, 302);
  assert.equal(r.location, '/dashboard');
  assert.equal((await b.get('/auth/nosuch/login')).status, 404);
  assert.equal((await b.get('/auth/nosuch/callback?code=a&state=b')).status, 404);
  assert.equal((await b.get('/auth/google/connect')).status, 404, 'google is sign-in only');
});

test('twitch: first sign-in creates the user, the next one finds it; no token is stored', async () => {
  tw.setAuthorize('approve', '555000111');
  const n0 = users();
  const b = browser(srv);
  const r = await runFlow(b, 'twitch', 'login');
  assert.equal(r.location, '/dashboard', `twitch sign-in: ${r.location}`);
  const u = await me(b);
  assert.ok(u && u.id, 'signed in');
  assert.equal(u.display_name, 'Streamer_One');
  assert.equal(users(), n0 + 1);
  const r2 = await runFlow(browser(srv), 'twitch', 'login');
  assert.equal(r2.location, '/dashboard');
  assert.equal(users(), n0 + 1, 'the same user');
  assert.equal(dbExec(srv, `SELECT count(*) FROM streaming_account WHERE user_id = '${u.id}'`).trim(), '0',
    'a sign-in connects nothing');
  const az = tw.calls.filter((c) => c.path === '/oauth2/authorize').at(-1);
  assert.ok(az.query.state && az.query.state.length === 43);
  assert.equal(dbExec(srv, `SELECT provider FROM user_identities WHERE user_id = '${u.id}'`).trim(), 'twitch');
});

test('no token, code or client secret in the log; clean exit', async () => {
  const twitchSecrets = [];
  for (const c of tw.calls) {
    const m = /^Bearer (\S+)$/.exec(c.headers?.authorization || '');
    if (m) twitchSecrets.push(m[1]);
    if (c.path === '/oauth2/token' && c.body) twitchSecrets.push(new URLSearchParams(c.body).get('code'));
  }
  assert.ok(twitchSecrets.length >= 4, 'twitch codes and tokens seen');
  const secrets = [...g.issued, ...twitchSecrets, g.clientSecret, tw.clientSecret];
  assert.ok(g.issued.length >= 10, 'tokens were issued');
  assertNoSecretsInLog(srv.logs, secrets, { known: [/msg="signed in"/, /msg="oauth flow failed"/] });
  await srv.stopClean();
  srv = null;
});

test('postgres: sign-in creates, finds and links identities the same way', async () => {
  const pg = await startPostgres();
  let s2;
  try {
    s2 = await bootServer({
      DATABASE_URL: pg.url,
      GOOGLE_CLIENT_ID: g.clientId, GOOGLE_CLIENT_SECRET: g.clientSecret,
      GOOGLE_AUTH_URL: g.authUrl, GOOGLE_TOKEN_URL: g.tokenUrl, GOOGLE_JWKS_URL: g.jwksUrl,
      GOOGLE_ISSUER: g.issuer,
    });
    g.reset();
    const q = (sql) => dbExec(s2, sql, pg.url).trim();
    const gu = g.addUser({ email: 'pg-user@example.test', email_verified: true, name: 'Pg User' });
    g.setAuthorize('approve', gu.sub);
    const b = browser(s2);
    assert.equal((await runFlow(b, 'google', 'login')).location, '/dashboard');
    const u = await me(b);
    assert.equal(u.email, 'pg-user@example.test');
    assert.equal(q(`SELECT user_id || ' ' || email_verified FROM user_identities WHERE subject = '${gu.sub}'`), `${u.id} 1`);
    const b2 = browser(s2);
    assert.equal((await runFlow(b2, 'google', 'login')).location, '/dashboard');
    assert.equal((await me(b2)).id, u.id);
    // linking a password account by a verified email
    const reg = await register(s2, 'pg-bob@example.test');
    const gb = g.addUser({ email: 'pg-bob@example.test', email_verified: true });
    g.setAuthorize('approve', gb.sub);
    const b3 = browser(s2);
    assert.equal((await runFlow(b3, 'google', 'login')).location, '/dashboard');
    assert.equal((await me(b3)).id, reg.user.id);
    g.forgeNext('nonce');
    assert.equal(redirectError(await runFlow(browser(s2), 'google', 'login')), 'invalid_id_token');
    g.setAuthorize('approve');
    await s2.stopClean();
    s2 = null;
  } finally {
    if (s2) await s2.stop();
    pg.stop();
  }
});

test('shutdown with a flow waiting on the token endpoint: the flow ends, clean exit', async () => {
  const s3 = await bootServer({
    SHUTDOWN_TIMEOUT: '300',
    TWITCH_CLIENT_ID: tw.clientId, TWITCH_CLIENT_SECRET: tw.clientSecret,
    TWITCH_AUTH_URL: tw.authUrl, TWITCH_API_URL: tw.apiUrl,
  });
  try {
    tw.setAuthorize('approve', '555000111');
    const b = browser(s3);
    const cb = await atProvider(await startFlow(b, 'twitch', 'login'));
    tw.injectFault({ kind: 'delay', ms: 4000, pathIncludes: '/oauth2/token' });
    const pending = b.get(cb).catch((e) => ({ error: e }));
    await waitFor(() => tw.calls.some((c) => c.path === '/oauth2/token' && c.fault === 'delay'), { what: 'the slow token call' });
    const t0 = Date.now();
    await s3.stopClean();
    assert.ok(Date.now() - t0 < 3500, 'did not wait for the slow provider');
    const r = await pending;
    if (!r.error) assert.notEqual(r.location, '/dashboard', 'no sign-in completed during shutdown');
    assert.ok(!s3.logText().includes('msg="signed in"'));
    assert.match(s3.logText(), /msg="oauth flow failed" platform=twitch purpose=login error=shutting_down/);
  } finally {
    await s3.stop();
  }
});

test('https PUBLIC_URL: the flow cookie is Secure and the redirect URI is https', async () => {
  const s4 = await bootServer({
    PUBLIC_URL: 'https://streampai.example',
    GOOGLE_CLIENT_ID: g.clientId, GOOGLE_CLIENT_SECRET: g.clientSecret,
    GOOGLE_AUTH_URL: g.authUrl, GOOGLE_TOKEN_URL: g.tokenUrl, GOOGLE_JWKS_URL: g.jwksUrl,
    GOOGLE_ISSUER: g.issuer,
  });
  try {
    const r = await browser(s4).get('/auth/google/login');
    assert.equal(r.status, 302);
    assert.ok(r.set.sp_oauth.attrs.includes('secure'), r.set.sp_oauth.raw);
    assert.equal(new URL(r.location).searchParams.get('redirect_uri'), 'https://streampai.example/auth/google/callback');
    await s4.stopClean();
  } finally {
    await s4.stop();
  }
});
