// Issue 12 (findings 1, 4, 6) through HTTP against the ASan build: login throttling that one
// address cannot turn into a lock-out, a signed webhook with an absurd timestamp, JSON routes
// that need application/json, a stream key inside a destination URL, private database files,
// and the admin token rules. docs/security.md says what each one promises.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  bootLive, newUser, inputUid, waitState, postWebhook, admin, testCleanExit,
} from '../lib/livelib.mjs';
import { rq, register, login, freshIp, bootServer } from '../lib/authlib.mjs';
import { tmpDir } from '../lib/harness.mjs';

function assertErr(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.equal(typeof r.json.error.message, 'string');
}

describe('hardening (issue 12)', () => {
  let ctx;
  before(async () => { ctx = await bootLive(); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('login: requests an address is throttled for spend no account allowance', async () => {
    const victim = `victim${Date.now().toString(36)}@example.com`;
    assert.equal((await register(ctx.srv, victim)).res.status, 201);
    // one address uses up its per-IP burst (60 in the test profile) on made-up accounts, in
    // batches (each of these costs a password hash; the machine may be busy)
    const bad = freshIp();
    const attempt = (email) => rq(ctx.srv, 'POST', '/api/auth/login',
      { body: { email, password: 'wrong password!' }, ip: bad, timeout: 120000 });
    let n429 = 0;
    for (let b = 0; b < 6 && n429 === 0; b++) {
      const rs = await Promise.all(Array.from({ length: 16 },
        (_, i) => attempt(`nobody${b}-${i}-${Date.now()}@example.com`)));
      for (const r of rs) {
        assert.ok([401, 429, 503].includes(r.status), r.text);
        if (r.status === 429) n429++;
      }
    }
    assert.ok(n429 > 0, 'the address was throttled');
    // the bucket refills at 1/s while a batch hashes: empty it again, one request at a time
    for (let i = 0; i < 30 && (await attempt(`nobody-x${i}-${Date.now()}@example.com`)).status !== 429; i++);
    // ... then the address hammers the victim: 30 at once, refused by the IP limit (a token
    // refilled meanwhile may let one through: a wrong password, 401)
    const rs = await Promise.all(Array.from({ length: 30 }, () => attempt(victim)));
    const refused = rs.filter((r) => r.status === 429);
    assert.ok(refused.length >= 29, rs.map((r) => r.status).join(','));
    for (const r of refused) assertErr(r, 429, 'rate_limited');
    for (const r of rs) assert.ok([401, 429].includes(r.status), r.text);
    // the owner, from anywhere else, is not locked out
    const ok = await login(ctx.srv, victim, undefined, freshIp());
    assert.equal(ok.res.status, 200, ok.res.text);
  });

  test('a signed webhook with ts = INT64_MAX is handled, the server stays up', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const body = `{"name":"Live Webhook Test","data":{"notification_name":"Stream Live Input",`
      + `"input_id":"${uid}","event_type":"live_input.connected"},"ts":9223372036854775807}`;
    // the fake's own state agrees (its poll answers then cannot undo the webhook)
    await ctx.cf.setInputState(uid, 'connected', { webhook: false });
    const r = await postWebhook(ctx, body);
    assert.equal(r.status, 200, r.text);
    assert.ok(['applied', 'duplicate', 'stale'].includes(r.json?.result), r.text);
    await waitState(u, 'ready');
    for (const ts of ['-9223372036854775808', '253402300800', '1e300', '-1']) {
      const b = body.replace('9223372036854775807', ts).replace('connected"', 'disconnected"');
      const x = await postWebhook(ctx, b);
      assert.ok([200, 400].includes(x.status), `${ts}: ${x.status} ${x.text}`);
    }
    assert.equal((await fetch(`${ctx.srv.url}/healthz`)).status, 200);
  });

  test('JSON routes answer 415 without Content-Type: application/json; webhooks keep theirs', async () => {
    const u = await newUser(ctx);
    const body = JSON.stringify({ platform: 'custom', name: 'ct', url: 'rtmp://127.0.0.1:1935/live', stream_key: 'k-ct-1' });
    for (const ct of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonp']) {
      const headers = { authorization: `Bearer ${u.token}` };
      if (ct) headers['content-type'] = ct;
      const r = await fetch(`${ctx.srv.url}/api/destinations`, { method: 'POST', headers, body });
      const text = await r.text();
      assert.equal(r.status, 415, `${ct}: ${text}`);
      assert.equal(JSON.parse(text).error.code, 'unsupported_media_type');
    }
    assert.equal((await u.api('GET', '/api/destinations')).json.destinations?.length ?? 0, 0,
      'nothing was created');
    // login too (a cross-site form cannot post JSON)
    const l = await rq(ctx.srv, 'POST', '/api/auth/login', {
      body: JSON.stringify({ email: u.email, password: 'correct horse battery' }),
      headers: { 'content-type': 'text/plain' },
    });
    assertErr(l, 415, 'unsupported_media_type');
    // with the media type (and a charset) it works
    const ok = await fetch(`${ctx.srv.url}/api/destinations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json; charset=utf-8' },
      body,
    });
    assert.equal(ok.status, 201, await ok.text());
    // the Cloudflare webhook checks its own body: no Content-Type rule there
    const uid = await inputUid(u);
    const wh = await fetch(`${ctx.srv.url}/webhooks/cloudflare`, {
      method: 'POST',
      headers: { 'cf-webhook-auth': ctx.env.CLOUDFLARE_WEBHOOK_SECRET, 'content-type': 'text/plain' },
      body: JSON.stringify({ data: { input_id: uid, event_type: 'live_input.connected' } }),
    });
    assert.equal(wh.status, 200, await wh.text());
  });

  test('a stream key inside a destination URL is refused (422), never stored', async () => {
    const u = await newUser(ctx);
    const secret = 'live_424242424242_QwErTyUiOpAsDfGhJkL';
    ctx.secrets.add(secret);
    const r = await u.api('POST', '/api/destinations', {
      platform: 'custom', name: 'keyed', url: `rtmp://127.0.0.1:1935/app/${secret}`, stream_key: 'k',
    });
    assertErr(r, 422, 'stream_key_in_url');
    assert.ok(!r.text.includes(secret), 'the key is not echoed');
    const list = await u.api('GET', '/api/destinations');
    assert.ok(!list.text.includes(secret));
    // PATCH is checked the same way
    const d = await u.addDest('plain');
    const p = await u.api('PATCH', `/api/destinations/${d.id}`, { url: `rtmp://127.0.0.1:1935/live?key=${secret}` });
    assertErr(p, 422, 'stream_key_in_url');
    const after = await u.api('GET', '/api/destinations');
    assert.ok(!after.text.includes(secret));
    // the same key in stream_key is fine
    const k = await u.api('POST', '/api/destinations', {
      platform: 'custom', name: 'split', url: 'rtmp://127.0.0.1:1935/app', stream_key: secret,
    });
    assert.equal(k.status, 201, k.text);
    assert.ok(!k.text.includes(secret), 'the key is masked in the answer');
  });

  test('admin: loopback is no pass, the token is always required', async () => {
    // every request here comes from 127.0.0.1, as through a reverse proxy on the same host
    assertErr({ ...(await admin(ctx, 'counts', null)), text: '' }, 401, 'unauthorized');
    assertErr({ ...(await admin(ctx, 'counts', 'admin-token-for-tests-0002')), text: '' }, 401, 'unauthorized');
    assert.equal((await admin(ctx, 'counts')).status, 200);
  });

  testCleanExit(() => ctx);
});

describe('private files and a short admin token (issue 12)', () => {
  let srv;
  const base = tmpDir('sp-perm-');
  const dataDir = path.join(base, 'nested', 'data'); // created by the server itself
  before(async () => {
    const old = process.umask(0o022);
    try {
      srv = await bootServer({ ADMIN_TOKEN: 'too-short-1' }, { dataDir });
    } finally {
      process.umask(old);
    }
  });
  after(() => srv?.stop());

  test('DATA_DIR is 0700; streampai.db and its WAL/SHM are 0600', async () => {
    assert.equal((await register(srv, `perm${Date.now().toString(36)}@example.com`)).res.status, 201);
    const mode = (f) => fs.statSync(path.join(dataDir, f)).mode & 0o777;
    assert.equal(mode('.'), 0o700, `DATA_DIR ${mode('.').toString(8)}`);
    for (const f of ['streampai.db', 'streampai.db-wal', 'streampai.db-shm']) {
      assert.equal(mode(f), 0o600, `${f} ${mode(f).toString(8)}`);
    }
  });

  test('an ADMIN_TOKEN shorter than 16 bytes disables the admin endpoint', async () => {
    const r = await fetch(`${srv.url}/api/admin/debug?what=counts`, { headers: { authorization: 'Bearer too-short-1' } });
    assert.equal(r.status, 404, await r.text());
  });

  test('the server exits cleanly', async () => {
    await srv.stopClean();
    fs.rmSync(base, { recursive: true, force: true });
  });
});
