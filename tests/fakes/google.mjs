// Fake Google (OAuth 2.0 + OpenID Connect sign-in) for tests.
//
// Faithful: authorize endpoint (response_type=code, client_id, redirect_uri, scope with
//  "openid", state, nonce, code_challenge S256) that auto-approves (302 redirect_uri?code=&state=
//  &scope=) or denies (error=access_denied&state=); token endpoint (grant_type=
//  authorization_code, form body, client_id + client_secret, redirect_uri must match, PKCE
//  verifier checked, single-use codes) answering {access_token, expires_in: 3599, scope,
//  token_type: "Bearer", id_token}; the id_token is an RS256 JWS signed with a 2048-bit key this
//  fake generates, header {alg, kid, typ}, claims {iss, azp, aud, sub, email, email_verified,
//  at_hash, name, given_name, iat, exp (iat + 3600), nonce}; JWKS at /oauth2/v3/certs
//  ({keys:[{kty, alg, use, kid, n, e}]}). Error bodies {error, error_description} with 400/401.
// Simplified: no refresh tokens (sign-in only), no consent screen, no prompt/login_hint, the
//  issuer defaults to the fake's own base URL (pass issuer: 'https://accounts.google.com' to
//  mimic the real one).
//
//   const g = await startFakeGoogle({ clientId, clientSecret, issuer? });
//   g.authUrl, g.tokenUrl, g.jwksUrl, g.issuer, g.url, g.controlUrl
//
// Control (JS methods, also POST /_control/<name> {"args":[...]}):
//   addUser({sub?, email, email_verified=true, name?}) -> user ; setAuthorize('approve'|'deny', sub?)
//   forgeNext(kind, n=1)  the next n id_tokens are forged: 'signature' (signed by a key not in
//     the JWKS, same kid), 'aud' (another client), 'iss' (another issuer), 'exp' (expired an hour
//     ago), 'nonce' (another nonce), 'unverified' (email_verified false: a valid token),
//     'alg_none' (unsigned), 'unknown_kid' (signed by another key under a kid not in the JWKS)
//   rotateKey()           a new signing key and kid; the JWKS then serves both
//   injectFault({kind:'5xx', status=500, count=1, pathIncludes})
//   issued (array of every code, access token and id_token handed out)
//   counters() ({jwks, token, authorize_approved, authorize_denied, forged_*}), calls, reset(), stop()
import http from 'node:http';
import crypto from 'node:crypto';
import { readBody, takeFault } from './http_util.mjs';

const b64u = (b) => Buffer.from(b).toString('base64url');

function newKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: crypto.randomBytes(10).toString('hex'), privateKey, publicKey };
}

function sign(key, header, claims) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  if (!key) return `${input}.`;
  const sig = crypto.sign('sha256', Buffer.from(input), key);
  return `${input}.${b64u(sig)}`;
}

export async function startFakeGoogle(opts = {}) {
  const clientId = opts.clientId || '123456789012-fake.apps.googleusercontent.com';
  const clientSecret = opts.clientSecret || 'GOCSPX-fakeGoogleClientSecret0123';
  let keys = [newKey()];
  const rogue = newKey(); // never published
  const users = new Map();
  const codes = new Map();
  const faults = [];
  const calls = [];
  const counters = {};
  const issued = []; // every code, access token and id_token handed out (log canaries)
  let forge = [];
  let authorize = { mode: 'approve', sub: null };
  let nextSub = 110000000000000000001n;
  const bump = (k) => { counters[k] = (counters[k] || 0) + 1; };

  function addUser(u = {}) {
    const sub = String(u.sub || nextSub++);
    const user = { sub, email: u.email ?? `user${sub.slice(-4)}@gmail.test`, email_verified: u.email_verified ?? true,
      name: u.name ?? 'Fake User' };
    users.set(sub, user);
    return { ...user };
  }
  for (const u of opts.users || [{ sub: '110169484474386276334', email: 'alice@gmail.test', name: 'Alice Example' }]) addUser(u);

  function send(res, status, obj, headers = {}) {
    const body = obj === null || obj === undefined ? '' : JSON.stringify(obj);
    const h = { ...headers };
    if (body) h['content-type'] = 'application/json; charset=utf-8';
    h['content-length'] = Buffer.byteLength(body);
    res.writeHead(status, h);
    res.end(body);
  }
  const oauthErr = (res, status, error, error_description) => send(res, status, { error, error_description });

  let base = '';
  const issuerOf = () => opts.issuer || base;

  function idToken(c, accessToken) {
    const u = users.get(c.sub);
    const now = Math.floor(Date.now() / 1000);
    const atHash = b64u(crypto.createHash('sha256').update(accessToken).digest().subarray(0, 16));
    const claims = { iss: issuerOf(), azp: clientId, aud: clientId, sub: u.sub, email: u.email,
      email_verified: u.email_verified, at_hash: atHash, name: u.name, given_name: u.name.split(' ')[0],
      iat: now, exp: now + 3600 };
    if (c.nonce) claims.nonce = c.nonce;
    const key = keys[keys.length - 1];
    let header = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
    let signer = key.privateKey;
    const kind = forge.shift();
    if (kind) bump(`forged_${kind}`);
    switch (kind) {
      case 'signature': signer = rogue.privateKey; break;
      case 'aud': claims.aud = 'someone-else.apps.googleusercontent.com'; claims.azp = claims.aud; break;
      case 'iss': claims.iss = 'https://evil.example'; break;
      case 'exp': claims.iat = now - 7200; claims.exp = now - 3600; break;
      case 'nonce': claims.nonce = b64u(crypto.randomBytes(32)); break;
      case 'unverified': claims.email_verified = false; break;
      case 'alg_none': header = { alg: 'none', kid: key.kid, typ: 'JWT' }; signer = null; break;
      case 'unknown_kid': header = { ...header, kid: rogue.kid }; signer = rogue.privateKey; break;
      case undefined: break;
      default: throw new Error(`fake google: unknown forgery ${kind}`);
    }
    return sign(signer, header, claims);
  }

  function handleAuthorize(res, url) {
    const q = url.searchParams;
    if (q.get('client_id') !== clientId) return oauthErr(res, 400, 'invalid_client', 'The OAuth client was not found.');
    const ru = q.get('redirect_uri');
    if (!ru) return oauthErr(res, 400, 'invalid_request', 'Missing required parameter: redirect_uri');
    if (q.get('response_type') !== 'code') return oauthErr(res, 400, 'unsupported_response_type', 'response_type');
    const scopes = (q.get('scope') || '').split(' ').filter(Boolean);
    if (!scopes.includes('openid')) return oauthErr(res, 400, 'invalid_scope', 'openid scope required');
    const loc = new URL(ru);
    const state = q.get('state') || '';
    if (authorize.mode === 'deny') {
      bump('authorize_denied');
      loc.searchParams.set('error', 'access_denied');
      loc.searchParams.set('state', state);
      return send(res, 302, null, { location: loc.toString() });
    }
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method');
    if (challenge && method !== 'S256') return oauthErr(res, 400, 'invalid_request', 'code_challenge_method must be S256');
    const sub = authorize.sub || [...users.keys()][0];
    const code = `4/0${b64u(crypto.randomBytes(24))}`;
    issued.push(code);
    codes.set(code, { sub, redirectUri: ru, challenge, nonce: q.get('nonce'), scopes, used: false, exp: Date.now() + 600000 });
    bump('authorize_approved');
    loc.searchParams.set('state', state);
    loc.searchParams.set('code', code);
    loc.searchParams.set('scope', scopes.join(' '));
    return send(res, 302, null, { location: loc.toString() });
  }

  function handleToken(res, raw, req) {
    const ct = req.headers['content-type'] || '';
    if (!ct.includes('application/x-www-form-urlencoded')) return oauthErr(res, 400, 'invalid_request', 'form body required');
    const p = new URLSearchParams(raw);
    bump('token');
    if (p.get('client_id') !== clientId || p.get('client_secret') !== clientSecret) return oauthErr(res, 401, 'invalid_client', 'Unauthorized');
    if (p.get('grant_type') !== 'authorization_code') return oauthErr(res, 400, 'unsupported_grant_type', 'Invalid grant_type');
    const c = codes.get(p.get('code') || '');
    if (!c || c.used || c.exp < Date.now()) return oauthErr(res, 400, 'invalid_grant', 'Bad Request');
    c.used = true;
    if (p.get('redirect_uri') !== c.redirectUri) return oauthErr(res, 400, 'redirect_uri_mismatch', 'Bad Request');
    if (c.challenge) {
      const v = p.get('code_verifier') || '';
      if (!v || b64u(crypto.createHash('sha256').update(v).digest()) !== c.challenge) return oauthErr(res, 400, 'invalid_grant', 'Invalid code verifier.');
    }
    const access = `ya29.${b64u(crypto.randomBytes(40))}`;
    const idt = idToken(c, access);
    issued.push(access, idt);
    return send(res, 200, { access_token: access, expires_in: 3599, scope: c.scopes.join(' '), token_type: 'Bearer',
      id_token: idt });
  }

  function jwks() {
    return { keys: keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: k.kid })) };
  }

  const control = {
    addUser,
    setAuthorize: (mode, sub) => { authorize = { mode, sub: sub ? String(sub) : null }; },
    forgeNext: (kind, n = 1) => { for (let i = 0; i < n; i++) forge.push(kind); },
    rotateKey: () => { keys.push(newKey()); return keys[keys.length - 1].kid; },
    injectFault: (f) => { faults.push({ kind: String(f.kind || '5xx'), count: f.count || 1, status: f.status || 500, pathIncludes: f.pathIncludes, method: f.method }); },
    counters: () => ({ ...counters }),
    reset: () => { calls.length = 0; faults.length = 0; forge = []; for (const k of Object.keys(counters)) delete counters[k]; authorize = { mode: 'approve', sub: null }; },
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    let raw = '';
    try { raw = await readBody(req); } catch { return; }
    if (url.pathname.startsWith('/_control/')) {
      const name = url.pathname.slice('/_control/'.length);
      if (!Object.hasOwn(control, name)) return send(res, 404, { error: 'unknown control' });
      try { return send(res, 200, { result: (await control[name](...(raw ? JSON.parse(raw).args || [] : []))) ?? null }); } catch (e) { return send(res, 500, { error: String(e.message) }); }
    }
    const call = { method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body: raw || null, status: 0 };
    calls.push(call);
    res.on('finish', () => { call.status = res.statusCode; });
    const f = takeFault(faults, req.method, url.pathname);
    if (f) return send(res, f.status, { error: 'internal_failure', error_description: 'Backend Error' });
    if (req.method === 'GET' && url.pathname === '/o/oauth2/v2/auth') return handleAuthorize(res, url);
    if (req.method === 'POST' && url.pathname === '/token') return handleToken(res, raw, req);
    if (req.method === 'GET' && url.pathname === '/oauth2/v3/certs') { bump('jwks'); return send(res, 200, jwks(), { 'cache-control': 'public, max-age=20000' }); }
    return send(res, 404, { error: 'not_found' });
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(opts.port || 0, '127.0.0.1', resolve); });
  const port = server.address().port;
  base = `http://127.0.0.1:${port}`;
  return {
    port, url: base, clientId, clientSecret, calls, issued,
    authUrl: `${base}/o/oauth2/v2/auth`, tokenUrl: `${base}/token`, jwksUrl: `${base}/oauth2/v3/certs`,
    get issuer() { return issuerOf(); }, controlUrl: `${base}/_control`,
    ...control,
    user: (sub) => ({ ...users.get(String(sub)) }),
    stop: async () => { for (const s of sockets) s.destroy(); await new Promise((r) => server.close(() => r())); },
  };
}
