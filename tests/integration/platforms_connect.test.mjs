// Connecting a Twitch account through the OAuth code flow, against the fake Twitch, on the real
// server: happy path, denial, bad / reused / foreign / expired states, token endpoint failures,
// GET /api/platforms (never a token) and DELETE /api/platforms/twitch (revoked at the fake).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { assertNoSecretsInLog } from '../lib/harness.mjs';
import { bootServer, register, dbExec, rq } from '../lib/authlib.mjs';
import { browser, startFlow, atProvider, runFlow, redirectError } from '../lib/oauthlib.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

let srv, tw;

before(async () => {
  tw = await startFakeTwitch({ users: [
    { id: '141981764', login: 'twitchdev', display_name: 'TwitchDev', broadcaster_type: 'partner' },
    { id: '222333444', login: 'second_streamer', display_name: 'Second_Streamer' },
  ] });
  srv = await bootServer({
    TEST_MODE: 'true',
    TWITCH_CLIENT_ID: tw.clientId, TWITCH_CLIENT_SECRET: tw.clientSecret,
    TWITCH_AUTH_URL: tw.authUrl, TWITCH_API_URL: tw.apiUrl,
  });
});

after(async () => {
  if (srv) await srv.stop();
  if (tw) await tw.stop();
});

// A registered user's browser (session + CSRF cookies in its jar).
async function userBrowser(email) {
  const r = await register(srv, email);
  assert.equal(r.res.status, 201);
  const b = browser(srv);
  for (const [k, v] of Object.entries(r.cookies)) b.jar.set(k, v);
  b.user = r.user;
  return b;
}
const accounts = (uid) => Number(dbExec(srv, `SELECT count(*) FROM streaming_account WHERE user_id = '${uid}'`).trim());
const codeGrants = () => tw.counters().grant_authorization_code ?? 0;
const twitchEntry = async (b) => {
  const r = await b.get('/api/platforms');
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json.platforms), r.text);
  return { entry: r.json.platforms.find((p) => p.platform === 'twitch'), text: r.text };
};
const usedTokens = new Set(); // access tokens our server presented to the fake (canaries)
const collectTokens = () => {
  for (const c of tw.calls) {
    const m = /^Bearer (\S+)$/.exec(c.headers?.authorization || '');
    if (m) usedTokens.add(m[1]);
    if (c.path === '/oauth2/token' && c.body) {
      const p = new URLSearchParams(c.body);
      for (const k of ['code', 'refresh_token']) if (p.get(k)) usedTokens.add(p.get(k));
    }
  }
};

let alice;

test('connect: happy path, listed without any token', async () => {
  tw.setAuthorize('approve', '141981764');
  alice = await userBrowser('alice-connect@example.test');
  const auth = await startFlow(alice, 'twitch', 'connect');
  const q = new URL(auth).searchParams;
  assert.equal(new URL(auth).origin + new URL(auth).pathname, `${tw.authUrl}/authorize`);
  assert.equal(q.get('client_id'), tw.clientId);
  assert.equal(q.get('redirect_uri'), `${srv.url}/auth/twitch/callback`);
  assert.ok(q.get('scope').includes('user:read:chat') && q.get('scope').includes('channel:read:stream_key'));
  assert.equal(q.get('force_verify'), 'true');
  assert.equal(q.get('state').length, 43);
  const cb = await atProvider(auth);
  const r = await alice.get(cb);
  assert.equal(r.status, 302);
  assert.equal(r.location, '/dashboard?connected=twitch');
  assert.equal(accounts(alice.user.id), 1);
  const { entry, text } = await twitchEntry(alice);
  assert.equal(entry.connected, true);
  assert.equal(entry.status, 'ok');
  assert.equal(entry.account.id, '141981764');
  assert.equal(entry.account.login, 'twitchdev');
  assert.equal(entry.account.display_name, 'TwitchDev');
  assert.ok(Array.isArray(entry.scopes) && entry.scopes.includes('user:read:chat'));
  collectTokens();
  assert.ok(usedTokens.size >= 2, 'the code and the access token were seen at the fake');
  for (const t of usedTokens) assert.ok(!text.includes(t), 'no token or code in /api/platforms');
  // not in clear in the database files
  const files = fs.readdirSync(srv.dataDir).filter((f) => f.startsWith('streampai.db'));
  assert.ok(files.length >= 1);
  const raw = Buffer.concat(files.map((f) => fs.readFileSync(path.join(srv.dataDir, f))));
  for (const t of usedTokens) assert.equal(raw.indexOf(Buffer.from(t)), -1, 'a token in clear in the db files');
  // another user sees nothing of it
  const other = await userBrowser('other-connect@example.test');
  assert.equal((await twitchEntry(other)).entry.connected, false);
});

test('connect: denied at the provider ends on the dashboard with access_denied', async () => {
  const b = await userBrowser('deny-connect@example.test');
  tw.setAuthorize('deny');
  const g0 = codeGrants();
  try {
    const r = await runFlow(b, 'twitch', 'connect');
    assert.equal(redirectError(r), 'access_denied');
    assert.ok(r.location.startsWith('/dashboard?'));
    assert.equal(new URL(r.location, 'http://x').searchParams.get('platform'), 'twitch');
  } finally {
    tw.setAuthorize('approve', '222333444');
  }
  assert.equal(codeGrants(), g0, 'no code exchange');
  assert.equal(accounts(b.user.id), 0);
  assert.equal((await twitchEntry(b)).entry.connected, false);
});

test('connect: bad, reused, foreign and expired states are refused and store nothing', async () => {
  tw.setAuthorize('approve', '222333444');
  const bob = await userBrowser('bob-connect@example.test');
  const eve = await userBrowser('eve-connect@example.test');
  const g0 = codeGrants();
  // made up
  await bob.get('/auth/twitch/connect');
  assert.equal(redirectError(await bob.get('/auth/twitch/callback?code=abc&state=' + 'Z'.repeat(43))), 'invalid_state');
  assert.equal(redirectError(await bob.get('/auth/twitch/callback?code=abc')), 'invalid_state');
  // another user's session presenting bob's callback with bob's flow cookie: refused (and spent)
  let cb = await atProvider(await startFlow(bob, 'twitch', 'connect'));
  eve.jar.set('sp_oauth', bob.jar.get('sp_oauth'));
  const rEve = await eve.get(cb);
  assert.equal(redirectError(rEve), 'state_mismatch');
  assert.ok(rEve.location.startsWith('/dashboard?'), 'a logged-in browser lands on the dashboard');
  assert.equal(redirectError(await bob.get(cb)), 'invalid_state', 'single use: gone after the refused take');
  // bob's session from another browser (its own flow cookie)
  cb = await atProvider(await startFlow(bob, 'twitch', 'connect'));
  const bob2 = browser(srv);
  bob2.jar.set('sp_session', bob.jar.get('sp_session'));
  bob2.jar.set('sp_csrf', bob.jar.get('sp_csrf'));
  await bob2.get('/auth/twitch/connect'); // gives bob2 its own sp_oauth
  assert.notEqual(bob2.jar.get('sp_oauth'), bob.jar.get('sp_oauth'));
  assert.equal(redirectError(await bob2.get(cb)), 'state_mismatch');
  // the same browser after logging out: the user no longer matches
  cb = await atProvider(await startFlow(bob, 'twitch', 'connect'));
  const anon = browser(srv);
  anon.jar.set('sp_oauth', bob.jar.get('sp_oauth'));
  const rAnon = await anon.get(cb);
  assert.equal(redirectError(rAnon), 'state_mismatch');
  assert.ok(rAnon.location.startsWith('/login?'));
  // reused after success
  cb = await atProvider(await startFlow(bob, 'twitch', 'connect'));
  assert.equal((await bob.get(cb)).location, '/dashboard?connected=twitch');
  const g1 = codeGrants();
  assert.equal(g1, g0 + 1, 'only the good flow exchanged a code');
  assert.equal(redirectError(await bob.get(cb)), 'invalid_state');
  assert.equal(codeGrants(), g1);
  assert.equal(accounts(eve.user.id), 0, 'nothing stored for eve');
  // expired
  const carl = await userBrowser('carl-connect@example.test');
  cb = await atProvider(await startFlow(carl, 'twitch', 'connect'));
  assert.equal((await rq(srv, 'POST', '/api/_test/oauth_clock', { body: { skew_ms: 601000 } })).status, 204);
  try {
    assert.equal(redirectError(await carl.get(cb)), 'state_expired');
  } finally {
    await rq(srv, 'POST', '/api/_test/oauth_clock', { body: { skew_ms: 0 } });
  }
  assert.equal(codeGrants(), g1, 'no exchange for a refused state');
  assert.equal(accounts(carl.user.id), 0);
});

test('connect: token endpoint 500 and 400 are clear errors; nothing stored', async () => {
  const b = await userBrowser('tokenfail-connect@example.test');
  tw.injectFault({ kind: '5xx', status: 500, pathIncludes: '/oauth2/token' });
  let r = await runFlow(b, 'twitch', 'connect');
  assert.equal(redirectError(r), 'provider_unavailable');
  assert.equal(accounts(b.user.id), 0);
  // a code the provider refuses (400 Invalid authorization code)
  const cb = await atProvider(await startFlow(b, 'twitch', 'connect'));
  r = await b.get(cb.replace(/code=[^&]+/, 'code=notarealcode'));
  assert.equal(redirectError(r), 'token_failed');
  assert.equal(accounts(b.user.id), 0);
  assert.equal((await twitchEntry(b)).entry.connected, false);
});

test('connect: not logged in goes to /login; unknown platform is 404', async () => {
  const anon = browser(srv);
  const r = await anon.get('/auth/twitch/connect');
  assert.equal(r.status, 302);
  assert.equal(r.location, '/login');
  assert.equal((await alice.get('/auth/nosuch/connect')).status, 404);
  assert.equal((await alice.get('/auth/TWITCH/connect')).status, 404);
  assert.equal((await anon.get('/api/platforms')).status, 401);
});

test('disconnect: revokes at the fake, lists disconnected, then 404', async () => {
  const revoked0 = tw.counters().revoked ?? 0;
  // CSRF as every mutating route: no token, no same origin -> 403
  const noCsrf = await rq(srv, 'DELETE', '/api/platforms/twitch', { cookies: { sp_session: alice.jar.get('sp_session') } });
  assert.equal(noCsrf.status, 403);
  assert.equal(accounts(alice.user.id), 1);
  const r = await alice.request('DELETE', '/api/platforms/twitch');
  assert.equal(r.status, 204, r.text);
  assert.ok((tw.counters().revoked ?? 0) > revoked0, 'revoked at the provider');
  assert.equal(accounts(alice.user.id), 0);
  const { entry } = await twitchEntry(alice);
  assert.equal(entry.connected, false);
  assert.equal((await alice.request('DELETE', '/api/platforms/twitch')).status, 404);
  assert.equal((await alice.request('DELETE', '/api/platforms/nosuch')).status, 404);
});

test('connect: the account lookup failing (Helix 500) stores nothing', async () => {
  const b = await userBrowser('lookupfail-connect@example.test');
  tw.injectFault({ kind: '5xx', status: 500, pathIncludes: '/helix/users' });
  const r = await runFlow(b, 'twitch', 'connect');
  assert.equal(redirectError(r), 'lookup_failed');
  assert.equal(accounts(b.user.id), 0);
  assert.equal((await twitchEntry(b)).entry.connected, false);
});

test('no token, code or client secret in the log; clean exit', async () => {
  collectTokens();
  assertNoSecretsInLog(srv.logs, [...usedTokens, tw.clientSecret],
    { known: [/msg="platform connected"/, /msg="oauth flow failed"/] });
  await srv.stopClean();
  srv = null;
});

test('not configured: connect and sign-in say so', async () => {
  const s2 = await bootServer({ TEST_MODE: 'true' });
  try {
    const r = await register(s2, 'nocfg@example.test');
    const b = browser(s2);
    for (const [k, v] of Object.entries(r.cookies)) b.jar.set(k, v);
    const c = await b.get('/auth/twitch/connect');
    assert.equal(c.location, '/dashboard?error=not_configured&platform=twitch');
    const anon = browser(s2);
    assert.equal((await anon.get('/auth/google/login')).location, '/login?error=not_configured&provider=google');
    assert.equal((await anon.get('/auth/twitch/login')).location, '/login?error=not_configured&provider=twitch');
  } finally {
    await s2.stopClean();
  }
});
