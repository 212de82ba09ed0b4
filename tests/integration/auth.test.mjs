// Accounts and sessions through HTTP, against SQLite and a real PostgreSQL 15:
// every route and error, cookie flags, CSRF, throttling, JWT forgeries,
// revocation, deleted users, tenant isolation; crash safety of registrations.
import { describe, test, before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { startPostgres, startServer, waitFor, assertCleanExit, assertNoSecretsInLog } from '../lib/harness.mjs';
import {
  bootServer, rq, register, login, freshIp, jwtDecode, jwtSign, signingKey, dbExec,
} from '../lib/authlib.mjs';

const PW = 'correct horse battery';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const now = () => Math.floor(Date.now() / 1000);
let seq = 0;
const uniq = (p = 'user') => `${p}${Date.now().toString(36)}${++seq}@example.com`;

function assertError(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers['content-type'] || '', /application\/json/);
  assert.equal(typeof res.json?.error?.message, 'string', res.text);
  if (code) assert.equal(res.json.error.code, code, res.text);
}

for (const backend of ['sqlite', 'postgres']) {
  describe(`auth routes (${backend})`, () => {
    let srv, pg;
    const db = (sql) => dbExec(srv, sql, pg && pg.url);

    before(async () => {
      const env = {};
      if (backend === 'postgres') { pg = await startPostgres(); env.DATABASE_URL = pg.url; }
      srv = await bootServer(env);
    });
    // cleanup only: the clean exit and the log canaries are the last test of this describe()
    after(async () => {
      if (srv) await srv.stop();
      if (pg) pg.stop();
    });

    test('register: 201, normalised email, cookies with the right flags, GET /api/me', async () => {
      const raw = `  Alice.${seq}@Example.COM `;
      const { res, user, cookies } = await register(srv, raw, PW, 'Alice');
      assert.equal(res.status, 201, res.text);
      assert.match(user.id, UUID);
      assert.equal(user.email, raw.trim().toLowerCase());
      assert.equal(user.display_name, 'Alice');
      assert.equal(res.json.user.password_hash, undefined);
      const s = res.set.sp_session;
      assert.ok(s, 'session cookie set (http PUBLIC_URL -> name sp_session)');
      assert.ok(s.attrs.includes('httponly'));
      assert.ok(s.attrs.includes('path=/'));
      assert.ok(s.attrs.includes('samesite=lax'));
      assert.ok(!s.attrs.some((a) => a.startsWith('domain')));
      assert.ok(!s.attrs.includes('secure'), 'no Secure over http');
      assert.ok(res.set.sp_csrf && !res.set.sp_csrf.attrs.includes('httponly'), 'csrf cookie readable by JS');
      const me = await rq(srv, 'GET', '/api/me', { cookies });
      assert.equal(me.status, 200, me.text);
      assert.deepEqual(me.json.user, user);
      // the stored hash is argon2id with at least the OWASP parameters
      const hash = db(`SELECT password_hash FROM users WHERE id = '${user.id}'`).trim();
      const m = hash.match(/^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/);
      assert.ok(m, hash);
      assert.ok(Number(m[1]) >= 19456 && Number(m[2]) >= 2 && Number(m[3]) === 1, hash);
    });

    test('register: display_name defaults to the email local part', async () => {
      const email = uniq('carol');
      const { res, user } = await register(srv, email);
      assert.equal(res.status, 201, res.text);
      assert.equal(user.display_name, email.split('@')[0]);
    });

    test('register: 409 for a taken email (case-insensitive), 422 per field, 400 bad JSON', async () => {
      const email = uniq('dup');
      assert.equal((await register(srv, email)).res.status, 201);
      const dup = await register(srv, email.toUpperCase());
      assertError(dup.res, 409, 'email_taken');
      assert.equal(dup.res.json.error.field, 'email');
      assert.deepEqual(dup.cookies, {}, 'no session for a failed registration');
      const cases = [
        [{ email: 'not-an-email', password: PW }, 'email'],
        [{ email: 'a@b', password: PW }, 'email'],
        [{ email: 42, password: PW }, 'email'],
        [{ password: PW }, 'email'],
        [{ email: uniq(), password: 'short' }, 'password'],
        [{ email: uniq(), password: '1234567' }, 'password'],
        [{ email: uniq() }, 'password'],
        [{ email: uniq(), password: 'x'.repeat(1025) }, 'password'],
        [{ email: uniq(), password: PW, display_name: 'x'.repeat(65) }, 'display_name'],
        [{ email: uniq(), password: PW, display_name: 'evil\nINFO admin login ok' }, 'display_name'],
        [{ email: uniq(), password: PW, display_name: 7 }, 'display_name'],
      ];
      for (const [body, field] of cases) {
        const res = await rq(srv, 'POST', '/api/auth/register', { body });
        assertError(res, 422);
        assert.equal(res.json.error.field, field, `${JSON.stringify(body).slice(0, 80)} -> ${res.text}`);
      }
      // boundaries accepted: 8 chars, 1024 bytes, 64-char name
      assert.equal((await register(srv, uniq(), '12345678')).res.status, 201);
      assert.equal((await register(srv, uniq(), 'p'.repeat(1024), 'n'.repeat(64))).res.status, 201);
      const bad = await rq(srv, 'POST', '/api/auth/register', { body: '{"email":' });
      assert.equal(bad.status, 400, bad.text);
    });

    test('login: 200 with a fresh session; 401 identical for wrong password and unknown email', async () => {
      const email = uniq('lin');
      const reg = await register(srv, email);
      const ok = await login(srv, email.toUpperCase());
      assert.equal(ok.res.status, 200, ok.res.text);
      assert.equal(ok.user.id, reg.user.id);
      assert.ok(ok.cookies.sp_session);
      assert.notEqual(ok.cookies.sp_session, reg.cookies.sp_session);
      assert.notEqual(jwtDecode(ok.cookies.sp_session).payload.sid, jwtDecode(reg.cookies.sp_session).payload.sid,
        'a new session id at login');
      const wrong = await login(srv, email, 'wrong password!');
      const unknown = await login(srv, uniq('nobody'), 'wrong password!');
      assertError(wrong.res, 401, 'invalid_credentials');
      assert.equal(unknown.res.status, 401);
      assert.equal(wrong.res.text, unknown.res.text, 'no account-enumeration oracle');
      assert.deepEqual(wrong.cookies, {});
      const missing = await rq(srv, 'POST', '/api/auth/login', { body: { email } });
      assertError(missing, 422);
    });

    test('login: an unknown email costs a password hash too (dummy hash): measured', async () => {
      // 24 interleaved samples each: a wrong password for an existing user vs an unknown user.
      // 6 users x 4 attempts stays under the per-account backoff (5 free failures).
      const knownEmails = [];
      for (let i = 0; i < 6; i++) {
        const e = uniq('timing');
        assert.equal((await register(srv, e)).res.status, 201);
        knownEmails.push(e);
      }
      const bodies = new Set();
      const time = async (e) => {
        const t0 = process.hrtime.bigint();
        const r = await login(srv, e, 'wrong password!');
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        assert.equal(r.res.status, 401, r.res.text);
        bodies.add(r.res.text);
        return ms;
      };
      const known = [], unknown = [];
      for (let round = 0; round < 4; round++) {
        for (const e of knownEmails) { known.push(await time(e)); unknown.push(await time(uniq('ghost'))); }
      }
      assert.equal(bodies.size, 1, `one answer for both: ${[...bodies].join(' | ')}`);
      const med = (a) => { const b = [...a].sort((x, y) => x - y); return (b[11] + b[12]) / 2; };
      assert.equal(known.length, 24);
      const ratio = med(unknown) / med(known);
      // without the dummy hash an unknown email answers 10-50x faster (ratio < 0.1); the
      // bounds leave room for a loaded machine
      assert.ok(ratio > 0.33 && ratio < 3, `median unknown ${med(unknown).toFixed(1)} ms vs known ${med(known).toFixed(1)} ms`);
    });

    test('login removes the user\'s sessions that ended over a day ago', async () => {
      const email = uniq('gc');
      const a = await register(srv, email);
      const b = await register(srv, uniq('gcother'));
      const old = Date.now() - 2 * 86400e3;
      db(`INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('11111111-1111-4111-8111-111111111111', '${a.user.id}', ${old}, ${old + 1000})`);
      db(`INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES ('22222222-2222-4222-8222-222222222222', '${a.user.id}', ${old}, ${Date.now() + 86400e3}, ${old})`);
      db(`INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('33333333-3333-4333-8333-333333333333', '${b.user.id}', ${old}, ${old + 1000})`);
      assert.equal((await login(srv, email)).res.status, 200);
      await waitFor(() => db(`SELECT COUNT(*) FROM sessions WHERE id IN ('11111111-1111-4111-8111-111111111111','22222222-2222-4222-8222-222222222222')`).trim() === '0', { what: 'cleanup' });
      assert.equal(db(`SELECT COUNT(*) FROM sessions WHERE id = '33333333-3333-4333-8333-333333333333'`).trim(), '1', "another user's rows untouched");
      assert.equal((await rq(srv, 'GET', '/api/me', { cookies: a.cookies })).status, 200, 'live sessions kept');
    });

    test('login upgrades a hash made with other argon2id parameters', async () => {
      const email = uniq('legacy');
      const reg = await register(srv, email);
      // a hash with t=3, m=20 MiB made by libsodium itself (python ctypes)
      const legacy = execFileSync('python3', ['-c', `
import ctypes
s = ctypes.CDLL('libsodium.so.23'); s.sodium_init()
out = ctypes.create_string_buffer(128); pw = b'legacy password 1'
assert s.crypto_pwhash_str(out, pw, ctypes.c_ulonglong(len(pw)), ctypes.c_ulonglong(3), ctypes.c_size_t(20 << 20)) == 0
print(out.value.decode())`], { encoding: 'utf8' }).trim();
      assert.match(legacy, /^\$argon2id\$v=19\$m=20480,t=3,p=1\$/);
      db(`UPDATE users SET password_hash = '${legacy}' WHERE id = '${reg.user.id}'`);
      const r = await login(srv, email, 'legacy password 1');
      assert.equal(r.res.status, 200, r.res.text);
      await waitFor(() => /m=19456,t=2,p=1/.test(db(`SELECT password_hash FROM users WHERE id = '${reg.user.id}'`)),
        { what: 'hash upgrade' });
      assert.equal((await login(srv, email, 'legacy password 1')).res.status, 200);
    });

    test('GET /api/me: 401 without a session or with garbage', async () => {
      assertError(await rq(srv, 'GET', '/api/me'), 401, 'unauthenticated');
      assertError(await rq(srv, 'GET', '/api/me', { cookies: { sp_session: 'garbage' } }), 401);
      assertError(await rq(srv, 'GET', '/api/me', { headers: { authorization: 'Bearer a.b.c' } }), 401);
      assertError(await rq(srv, 'GET', '/api/me', { headers: { authorization: `Bearer ${'A'.repeat(5000)}.b.c` } }), 401);
    });

    test('CSRF: cookie POST needs the token or a same-origin Origin; Bearer is exempt', async () => {
      const a = await register(srv, uniq('csrf'));
      const b = await register(srv, uniq('csrfb'));
      const sess = { sp_session: a.cookies.sp_session };
      // no token, no Origin
      assertError(await rq(srv, 'POST', '/api/auth/token', { cookies: sess }), 403, 'csrf_failed');
      // cookie present, header missing
      assertError(await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies }), 403, 'csrf_failed');
      // another user's csrf pair with A's session cookie
      assertError(await rq(srv, 'POST', '/api/auth/token', {
        cookies: { ...sess, sp_csrf: b.cookies.sp_csrf }, headers: { 'x-csrf-token': b.cookies.sp_csrf },
      }), 403);
      // header does not match cookie
      assertError(await rq(srv, 'POST', '/api/auth/token', {
        cookies: a.cookies, headers: { 'x-csrf-token': b.cookies.sp_csrf },
      }), 403);
      // a valid token but a cross-site Origin
      assertError(await rq(srv, 'POST', '/api/auth/token', {
        cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf, origin: 'https://evil.example' },
      }), 403);
      assertError(await rq(srv, 'POST', '/api/auth/token', {
        cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf, 'sec-fetch-site': 'cross-site' },
      }), 403);
      // double submit ok
      const ok = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
      assert.equal(ok.status, 200, ok.text);
      // same-origin Origin without token ok
      const so = await rq(srv, 'POST', '/api/auth/token', { cookies: sess, headers: { origin: srv.url } });
      assert.equal(so.status, 200, so.text);
      // Bearer: no cookie, no CSRF token
      const br = await rq(srv, 'POST', '/api/auth/token', { headers: { authorization: `Bearer ${ok.json.token}` } });
      assert.equal(br.status, 200, br.text);
      // logout without CSRF refused, the session still works
      assertError(await rq(srv, 'POST', '/api/auth/logout', { cookies: sess }), 403);
      assert.equal((await rq(srv, 'GET', '/api/me', { cookies: sess })).status, 200);
      // GET never changes state: no logout route on GET (falls through to static files)
      const g = await rq(srv, 'GET', '/api/auth/logout', { cookies: a.cookies });
      assert.ok(g.status === 404 || g.status === 405, `GET logout -> ${g.status}`);
      assert.equal((await rq(srv, 'GET', '/api/me', { cookies: sess })).status, 200);
    });

    test('POST /api/auth/token: a bearer JWT with its own session', async () => {
      const a = await register(srv, uniq('tok'));
      const t = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
      assert.equal(t.status, 200, t.text);
      assert.equal(typeof t.json.token, 'string');
      assert.ok(Date.parse(t.json.expires_at) > Date.now());
      const { header, payload } = jwtDecode(t.json.token);
      assert.equal(header.alg, 'HS256');
      assert.equal(payload.sub, a.user.id);
      assert.notEqual(payload.sid, jwtDecode(a.cookies.sp_session).payload.sid);
      assert.ok(payload.exp > now() && payload.iat <= now() + 1);
      const me = await rq(srv, 'GET', '/api/me', { headers: { authorization: `Bearer ${t.json.token}` } });
      assert.equal(me.status, 200);
      assert.equal(me.json.user.id, a.user.id);
      assertError(await rq(srv, 'POST', '/api/auth/token'), 401);
    });

    test('logout: 204, cookies cleared, the old cookie and JWT stop working', async () => {
      const a = await register(srv, uniq('out'));
      const t = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
      const out = await rq(srv, 'POST', '/api/auth/logout', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
      assert.equal(out.status, 204, out.text);
      assert.ok(out.set.sp_session.attrs.includes('max-age=0'));
      assert.equal(out.set.sp_session.value, '');
      assert.ok(out.set.sp_csrf.attrs.includes('max-age=0'));
      assertError(await rq(srv, 'GET', '/api/me', { cookies: a.cookies }), 401);
      assertError(await rq(srv, 'GET', '/api/me', { headers: { authorization: `Bearer ${a.cookies.sp_session}` } }), 401);
      assertError(await rq(srv, 'POST', '/api/auth/logout', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } }), 401);
      const row = db(`SELECT revoked_at FROM sessions WHERE id = '${jwtDecode(a.cookies.sp_session).payload.sid}'`).trim();
      assert.ok(Number(row) > 0, `revoked_at set: ${row}`);
      // the separately issued bearer session is its own session (revoke it too via logout with it)
      const bt = { authorization: `Bearer ${t.json.token}` };
      assert.equal((await rq(srv, 'GET', '/api/me', { headers: bt })).status, 200);
      assert.equal((await rq(srv, 'POST', '/api/auth/logout', { headers: bt })).status, 204);
      assertError(await rq(srv, 'GET', '/api/me', { headers: bt }), 401);
    });

    test('JWT forgeries through HTTP are 401; a correctly signed token is accepted', async () => {
      const a = await register(srv, uniq('jwt'));
      const b = await register(srv, uniq('jwtb'));
      const key = signingKey(srv);
      assert.ok(key.length >= 32);
      const { payload } = jwtDecode(a.cookies.sp_session);
      const base = { sub: a.user.id, sid: payload.sid, iat: now() - 5, exp: now() + 600 };
      const H = { alg: 'HS256', typ: 'JWT' };
      const me = (tok) => rq(srv, 'GET', '/api/me', { headers: { authorization: `Bearer ${tok}` } });
      // control: our own signature with the dev key works (so the rejections below are real)
      const good = await me(jwtSign(H, base, key));
      assert.equal(good.status, 200, good.text);
      assert.equal(good.json.user.id, a.user.id);
      const forged = {
        'alg none': jwtSign({ alg: 'none', typ: 'JWT' }, base, key, null),
        'alg None': jwtSign({ alg: 'None' }, base, key, null),
        'alg none, HS256 signature': jwtSign({ alg: 'none' }, base, key),
        'HS512 with the right key': jwtSign({ alg: 'HS512', typ: 'JWT' }, base, key, 'sha512'),
        'RS256 header': jwtSign({ alg: 'RS256', typ: 'JWT' }, base, key),
        'wrong key': jwtSign(H, base, Buffer.alloc(32, 7)),
        expired: jwtSign(H, { ...base, exp: now() - 1 }, key),
        'missing exp': jwtSign(H, { sub: base.sub, sid: base.sid, iat: base.iat }, key),
        'missing iat': jwtSign(H, { sub: base.sub, sid: base.sid, exp: base.exp }, key),
        'iat in the future': jwtSign(H, { ...base, iat: now() + 3600, exp: now() + 7200 }, key),
        'missing sid': jwtSign(H, { sub: base.sub, iat: base.iat, exp: base.exp }, key),
        "other user's sub on my session": jwtSign(H, { ...base, sub: b.user.id }, key),
        'unknown session id': jwtSign(H, { ...base, sid: '00000000-0000-4000-8000-000000000000' }, key),
        'kid header': jwtSign({ ...H, kid: 'x' }, base, key),
        tampered: (() => {
          const [h, , s] = a.cookies.sp_session.split('.');
          const p = Buffer.from(JSON.stringify({ ...payload, sub: b.user.id })).toString('base64url');
          return `${h}.${p}.${s}`;
        })(),
      };
      for (const [name, tok] of Object.entries(forged)) {
        const r = await me(tok);
        assert.equal(r.status, 401, `${name}: ${r.status} ${r.text}`);
        assert.equal(r.json.error.code, 'unauthenticated', name);
        const rc = await rq(srv, 'GET', '/api/me', { cookies: { sp_session: tok } });
        assert.equal(rc.status, 401, `${name} (cookie): ${rc.status}`);
      }
      // a deleted user: the genuine cookie stops working
      assert.equal((await rq(srv, 'GET', '/api/me', { cookies: b.cookies })).status, 200);
      db(`DELETE FROM sessions WHERE user_id = '${b.user.id}'; DELETE FROM users WHERE id = '${b.user.id}'`);
      assertError(await rq(srv, 'GET', '/api/me', { cookies: b.cookies }), 401);
      // only the user row deleted (sessions left dangling): still 401
      const c = await register(srv, uniq('jwtc'));
      db(`PRAGMA_PLACEHOLDER`.replace('PRAGMA_PLACEHOLDER', backend === 'sqlite'
        ? `PRAGMA foreign_keys=OFF; DELETE FROM users WHERE id = '${c.user.id}'`
        : `DELETE FROM users WHERE id = '${c.user.id}'`));
      assertError(await rq(srv, 'GET', '/api/me', { cookies: c.cookies }), 401);
    });

    test('tenant isolation: each session sees only its own user', async () => {
      const a = await register(srv, uniq('ta'));
      const b = await register(srv, uniq('tb'));
      const ma = await rq(srv, 'GET', '/api/me', { cookies: a.cookies });
      const mb = await rq(srv, 'GET', '/api/me', { cookies: b.cookies });
      assert.equal(ma.json.user.id, a.user.id);
      assert.equal(mb.json.user.id, b.user.id);
      assert.equal(mb.json.user.email, b.user.email);
      // B's session cookie with A's csrf cookie and header: refused
      assertError(await rq(srv, 'POST', '/api/auth/logout', {
        cookies: { sp_session: b.cookies.sp_session, sp_csrf: a.cookies.sp_csrf }, headers: { 'x-csrf-token': a.cookies.sp_csrf },
      }), 403);
      assert.equal((await rq(srv, 'GET', '/api/me', { cookies: b.cookies })).status, 200);
    });

    test('WebSocket credential check (sp_auth_ws_authenticate via the TEST_MODE probe)', async () => {
      const a = await register(srv, uniq('ws'));
      const probe = (opts, q = '') => rq(srv, 'GET', `/api/_test/ws_auth${q}`, opts);
      assertError(await probe({}), 401);
      const byCookie = await probe({ cookies: { sp_session: a.cookies.sp_session } });
      assert.equal(byCookie.status, 200, byCookie.text);
      assert.equal(byCookie.json.user.id, a.user.id);
      assert.equal(byCookie.json.bearer, false);
      const t = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
      const byQuery = await probe({}, `?token=${encodeURIComponent(t.json.token)}`);
      assert.equal(byQuery.status, 200, byQuery.text);
      assert.equal(byQuery.json.user.id, a.user.id);
      assert.equal(byQuery.json.bearer, true);
      const key = signingKey(srv);
      const p = jwtDecode(t.json.token).payload;
      assertError(await probe({}, `?token=${jwtSign({ alg: 'none' }, p, key, null)}`), 401);
      assertError(await probe({}, `?token=${jwtSign({ alg: 'HS256' }, { ...p, exp: now() - 1 }, key)}`), 401);
      // revoked by logout
      await rq(srv, 'POST', '/api/auth/logout', { headers: { authorization: `Bearer ${t.json.token}` } });
      assertError(await probe({}, `?token=${encodeURIComponent(t.json.token)}`), 401);
    });

    test('throttling: per email and per IP, 429 with Retry-After', async () => {
      // per account (sp_login_throttle.h): an address that failed 5 times for the account backs
      // off, even with the right password; the owner from an address that never failed gets in
      const email = uniq('thr');
      await register(srv, email);
      const bad = freshIp();
      for (let i = 0; i < 5; i++) assert.equal((await login(srv, email, 'wrong password!', bad)).res.status, 401);
      // then 1 s, 2 s, 4 s ... after each failure: keep failing until the wait shows (a busy
      // machine may take over a second between two requests)
      let t;
      for (let i = 0; i < 6; i++) {
        t = await login(srv, email, 'wrong password!', bad);
        if (t.res.status === 429) break;
        assert.equal(t.res.status, 401, t.res.text);
      }
      assertError(t.res, 429, 'rate_limited');
      const ra = Number(t.res.headers['retry-after']);
      assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 60, `Retry-After ${t.res.headers['retry-after']}`);
      let owner = await login(srv, email, undefined, freshIp());
      if (owner.res.status === 429) {
        // the account gate: at most one attempt a second once the account has 5 failures
        assert.equal(owner.res.headers['retry-after'], '1');
        await new Promise((r) => setTimeout(r, 1000));
        owner = await login(srv, email, undefined, freshIp());
      }
      assert.equal(owner.res.status, 200, owner.res.text);
      // per IP (test profile 60/min): one address, distinct emails. The bucket refills at 1/s
      // while the hashes run, so the attempts go in concurrent batches (faster than the refill
      // even on a busy machine) and one extra pass is allowed per elapsed second.
      const burst = async (send, okStatus) => {
        const t0 = Date.now();
        let passed = 0, refused = 0;
        for (let b = 0; b < 20 && refused === 0; b++) {
          const rs = await Promise.all(Array.from({ length: 10 }, () => send()));
          for (const r of rs) {
            if (r.status === 429) { refused++; assert.ok(Number(r.headers['retry-after']) >= 1); }
            else if (r.status === okStatus) passed++;
            else assert.fail(`status ${r.status}: ${r.text}`);
          }
        }
        return { passed, refused, extra: Math.ceil((Date.now() - t0) / 1000) };
      };
      const ip = freshIp();
      const lr = await burst(() => rq(srv, 'POST', '/api/auth/login',
        { body: { email: uniq('ipthr'), password: 'wrong password!' }, ip, timeout: 120000 }), 401);
      assert.ok(lr.refused > 0 && lr.passed >= 60 && lr.passed <= 60 + lr.extra,
        `login: ${lr.passed} passed before the limit (burst 60, +${lr.extra} refill)`);
      // another address is unaffected
      assert.equal((await login(srv, uniq('other'), 'wrong password!', freshIp())).res.status, 401);
      // register is throttled per IP too
      const rip = freshIp();
      const rr = await burst(() => rq(srv, 'POST', '/api/auth/register',
        { body: { email: uniq('regthr'), password: '12345678' }, ip: rip, timeout: 120000 }), 201);
      assert.ok(rr.refused > 0 && rr.passed >= 60 && rr.passed <= 60 + rr.extra,
        `register: ${rr.passed} passed before the limit (+${rr.extra})`);
    });

    // The hash pool does not depend on the store: run once (SQLite), not skipped on PostgreSQL.
    if (backend === 'sqlite') test('a login flood: hashes are capped and queued, the excess gets 503 + Retry-After, no crash', async () => {
      const email = uniq('flood');
      await register(srv, email);
      const t0 = Date.now();
      // 4 hashes run and 64 wait (sp_password.h); 240 logins at once, 180 of them unknown
      // emails (each one hashes: dummy hash), overflow the queue.
      const all = await Promise.all(Array.from({ length: 240 }, (_, i) =>
        login(srv, i % 4 === 0 ? email : uniq('floodghost'), 'wrong password!').then((r) => r.res, (e) => ({ status: 0, error: e }))));
      const by = {};
      for (const r of all) by[r.status] = (by[r.status] || 0) + 1;
      // per-email throttle (5/min) turns most attempts on the one email into 429s; the rest hash
      assert.ok(!by[0], `transport errors: ${JSON.stringify(by)}`);
      assert.deepEqual(Object.keys(by).filter((k) => !['401', '429', '503'].includes(k)), [], JSON.stringify(by));
      assert.ok(by[401] >= 5, JSON.stringify(by));
      const busy = all.filter((r) => r.status === 503);
      assert.ok(busy.length >= 1, `the hash cap never engaged (no 503): ${JSON.stringify(by)}`);
      for (const r of busy) {
        assert.ok(Number(r.headers['retry-after']) >= 1, `busy answers carry Retry-After: ${r.headers['retry-after']}`);
        assert.equal(r.json?.error?.code, 'busy', r.text);
      }
      // the server is still fine
      assert.equal((await login(srv, uniq('afterflood'), 'wrong password!')).res.status, 401);
      assert.ok(Date.now() - t0 < 60000);
    });

    test('an oversized login/register body is refused before any hashing', async () => {
      const big = JSON.stringify({ email: uniq('big'), password: 'p'.repeat(1 << 20) });
      const t0 = Date.now();
      const r = await rq(srv, 'POST', '/api/auth/register', { body: big }).catch((e) => ({ status: 0, e }));
      assert.ok(r.status === 413 || r.status === 0, `got ${r.status}`);
      const l = await rq(srv, 'POST', '/api/auth/login', { body: big }).catch((e) => ({ status: 0, e }));
      assert.ok(l.status === 413 || l.status === 0, `got ${l.status}`);
      assert.ok(Date.now() - t0 < 5000);
      assert.equal((await rq(srv, 'GET', '/api/me')).status, 401, 'server alive');
    });

    // SQLite is a file in DATA_DIR: there is no database server to take down.
    if (backend === 'postgres') test('database down: 503 JSON errors, never a crash; recovers when it is back', async () => {
      const email = uniq('down');
      const a = await register(srv, email);
      assert.equal(a.res.status, 201);
      pg.stop();
      try {
        const l = await login(srv, email);
        assertError(l.res, 503, 'unavailable');
        assert.ok(l.res.headers['retry-after']);
        assertError(await rq(srv, 'GET', '/api/me', { cookies: a.cookies }), 503, 'unavailable');
        assertError((await register(srv, uniq('down2'))).res, 503, 'unavailable');
      } finally {
        pg.start();
      }
      await waitFor(async () => (await rq(srv, 'GET', '/api/me', { cookies: a.cookies })).status === 200,
        { timeout: 30000, interval: 250, what: 'store reconnect' });
      assert.equal((await login(srv, email)).res.status, 200);
    });

    test('the server exits cleanly; no password, JWT, CSRF token or hash in its log', async () => {
      // what this test itself hands the server, so the check never depends on other tests
      const email = uniq('canary');
      const reg = await register(srv, email, 'canary password 42');
      assert.equal(reg.res.status, 201, reg.res.text);
      const lin = await login(srv, email, 'canary password 42');
      assert.equal(lin.res.status, 200, lin.res.text);
      const tok = await rq(srv, 'POST', '/api/auth/token', { cookies: lin.cookies, headers: { 'x-csrf-token': lin.cookies.sp_csrf } });
      assert.equal(tok.status, 200, tok.text);
      const hash = db(`SELECT password_hash FROM users WHERE id = '${reg.user.id}'`).trim();
      assert.match(hash, /^\$argon2id\$/);
      const r = await srv.stop();
      assertCleanExit(r, srv.logs, `streampai serve (${backend})`);
      assertNoSecretsInLog(srv.logs, [
        PW, 'legacy password 1', 'canary password 42', 'eyJ', '$argon2id$', hash, 'sp_csrf=', 'sp_session=',
        reg.cookies.sp_session, reg.cookies.sp_csrf, lin.cookies.sp_session, lin.cookies.sp_csrf, tok.json.token,
      ], {
        known: [/module=auth msg="user registered"/, /msg="request" method=POST path="\/api\/auth\/login" status=200/],
        what: 'server log',
      });
    });
  });
}

for (const backend of ['sqlite', 'postgres']) describe(`crash safety (${backend}): kill -9 during a burst of registrations`, () => {
  let pg = null, stopped = false;
  after(() => { if (pg && !stopped) pg.stop(); });
  test('every acknowledged registration survives and the DB opens cleanly', async () => {
    pg = backend === 'postgres' ? await startPostgres() : null;
    const env = pg ? { DATABASE_URL: pg.url } : {};
    let srv = await startServer({ env });
    const acked = [];
    let stop = false;
    const worker = async (w) => {
      for (let i = 0; !stop; i++) {
        const email = `burst${w}-${i}@example.com`;
        try {
          const r = await register(srv, email, 'burst password 1');
          if (r.res.status === 201) acked.push({ email, id: r.user.id });
          else if (r.res.status !== 503) throw new Error(`unexpected ${r.res.status} ${r.res.text}`);
        } catch (e) {
          if (!stop) throw e;
        }
      }
    };
    const failures = [];
    const workers = [0, 1, 2, 3, 4, 5, 6, 7].map((w) => worker(w).catch((e) => failures.push(e)));
    await waitFor(() => acked.length >= 40 || failures.length, { timeout: 60000, what: '40 registrations' });
    assert.deepEqual(failures, []);
    stop = true; // requests cut by the kill are expected to fail
    await srv.kill9();
    await Promise.all(workers);
    const dataDir = srv.dataDir;
    assert.ok(acked.length >= 40);
    srv = await startServer({ dataDir, env });
    try {
      const rows = dbExec(srv, 'SELECT email FROM users', pg && pg.url).trim().split('\n');
      for (const a of acked) assert.ok(rows.includes(a.email), `acknowledged ${a.email} lost`);
      for (const a of acked) {
        const r = await login(srv, a.email, 'burst password 1');
        assert.equal(r.res.status, 200, `${a.email}: ${r.res.text}`);
        assert.equal(r.user.id, a.id);
      }
    } finally {
      const r = await srv.stop();
      if (pg) { pg.stop(); stopped = true; }
      assertCleanExit(r, srv.logs, 'streampai serve after the restart');
    }
    if (!pg) assert.equal(dbExec({ dataDir }, 'PRAGMA integrity_check').trim(), 'ok');
  });
});

describe('signing key', () => {
  test('a TOKEN_SIGNING_SECRET shorter than 32 bytes stops the start with a clear error', async () => {
    await assert.rejects(startServer({ env: { TOKEN_SIGNING_SECRET: 'too-short-secret' }, timeout: 8000 }),
      (e) => /TOKEN_SIGNING_SECRET is too short \(16 bytes\); it needs at least 32/.test(e.message) && !/too-short-secret/.test(e.message));
  });

  test('the dev key is kept in DATA_DIR (0600): sessions survive a restart', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    let srv = await bootServer();
    const a = await register(srv, uniq('restart'));
    assert.equal(a.res.status, 201);
    const keyFile = path.join(srv.dataDir, 'token_signing.key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const key1 = fs.readFileSync(keyFile);
    assert.equal(key1.length, 32);
    await srv.stopClean();
    srv = await bootServer({}, { dataDir: srv.dataDir });
    try {
      assert.deepEqual(fs.readFileSync(keyFile), key1, 'key reused, not regenerated');
      const me = await rq(srv, 'GET', '/api/me', { cookies: a.cookies });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.user.id, a.user.id);
    } finally {
      await srv.stopClean();
    }
  });

  test('with TOKEN_SIGNING_SECRET set, tokens are signed with it and no key file is written', async () => {
    const secret = 'an-operator-provided-secret-of-40-bytes!';
    const srv = await bootServer({ TOKEN_SIGNING_SECRET: secret });
    try {
      const a = await register(srv, uniq('secret'));
      const { payload } = jwtDecode(a.cookies.sp_session);
      const mine = jwtSign({ alg: 'HS256', typ: 'JWT' }, payload, Buffer.from(secret));
      assert.equal((await rq(srv, 'GET', '/api/me', { headers: { authorization: `Bearer ${mine}` } })).status, 200);
      const fs = await import('node:fs');
      assert.ok(!fs.existsSync(`${srv.dataDir}/token_signing.key`));
      assert.ok(!srv.logText().includes(secret), 'secret never logged');
    } finally {
      await srv.stopClean();
    }
  });
});
