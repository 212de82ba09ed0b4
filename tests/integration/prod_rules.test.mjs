// Production rules are enforced by `serve` and `relay` themselves (not only by check-config),
// and the test hooks are gone when TEST_MODE is off (and compiled out of the release build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, tmpDir, startServer, SANITIZER_REPORT } from '../lib/harness.mjs';
import { openWs, sendJson, next } from '../lib/wsutil.mjs';
import { register, rq } from '../lib/authlib.mjs';

const PROD_OK = {
  STREAMPAI_ENV: 'prod',
  PUBLIC_URL: 'https://streampai.example',
  TOKEN_SIGNING_SECRET: 'x'.repeat(48),
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  RELAY_API_TOKEN: 'relay-token-for-tests-0123456789',
  HTTP_LISTEN: '127.0.0.1:0',
};

// A real user's socket (?token= from POST /api/auth/token), then the two socket test hooks:
// {"type":"flood"} and {"type":"publish"} on the user's own topic. Returns what came back.
async function socketHooks(srv) {
  const a = await register(srv, `hooks-${Date.now()}@example.com`);
  assert.equal(a.res.status, 201, a.res.text);
  const tok = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
  assert.equal(tok.status, 200, tok.text);
  const ws = await openWs(srv, { path: `/socket?token=${tok.json.token}` });
  try {
    const topic = `user_stream:${a.user.id}`;
    sendJson(ws, { type: 'subscribe', topic });
    await next(ws, (m) => m.topic === topic && m.event === 'subscribed', 'subscribed');
    sendJson(ws, { type: 'flood', count: 2, size: 3 });
    const flood = await next(ws, (m) => m.topic === 'diag' && (m.event === 'flood' || m.event === 'error'), 'flood answer');
    sendJson(ws, { type: 'publish', topic, event: 'hook_probe', payload: { x: 1 } });
    const pub = await next(ws, (m) => (m.topic === topic && m.event === 'hook_probe') || (m.topic === 'diag' && m.event === 'error'), 'publish answer');
    return { flood, pub };
  } finally {
    ws.close();
  }
}

// Runs `streampai <cmd>` with env (no server is expected to come up): {code, stderr}.
function runRefused(cmd, env) {
  const dataDir = tmpDir('sp-prod-');
  const r = spawnSync(BIN, [cmd], {
    env: { PATH: process.env.PATH, DATA_DIR: dataDir, ASAN_OPTIONS: 'detect_leaks=1:exitcode=86', ...env },
    encoding: 'utf8',
    timeout: 20000,
  });
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { code: r.status, signal: r.signal, out: (r.stderr || '') + (r.stdout || '') };
}

const refusals = [
  ['serve', { TEST_MODE: 'true' }, 'TEST_MODE'],
  ['serve', { ALLOW_PRIVATE_DESTINATIONS: 'true' }, 'ALLOW_PRIVATE_DESTINATIONS'],
  ['serve', { SECRETS_KEY: undefined }, 'SECRETS_KEY'],
  ['serve', { TOKEN_SIGNING_SECRET: undefined }, 'TOKEN_SIGNING_SECRET'],
  ['serve', { PUBLIC_URL: 'http://streampai.example' }, 'PUBLIC_URL'],
  ['serve', { RELAY_API_TOKEN: undefined }, 'RELAY_API_TOKEN'],
  ['relay', { TEST_MODE: 'true' }, 'TEST_MODE'],
  ['relay', { ALLOW_PRIVATE_DESTINATIONS: 'true' }, 'ALLOW_PRIVATE_DESTINATIONS'],
  ['relay', { RELAY_API_TOKEN: undefined }, 'RELAY_API_TOKEN'],
  ['relay', { RELAY_API_TOKEN: undefined, MEDIA_BACKEND: 'cloudflare', CLOUDFLARE_API_TOKEN: 't',
    CLOUDFLARE_ACCOUNT_ID: 'a', CLOUDFLARE_WEBHOOK_SECRET: 's' }, 'RELAY_API_TOKEN'],
];

for (const [cmd, delta, variable] of refusals) {
  test(`prod ${cmd} refuses to start: ${variable} (${JSON.stringify(delta)})`, () => {
    const env = { ...PROD_OK, ...delta };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const r = runRefused(cmd, env);
    assert.equal(r.signal, null, r.out);
    assert.equal(r.code, 2, `exit 2 expected, got ${r.code}:\n${r.out}`);
    assert.match(r.out, new RegExp(`refusing to start in prod: ${variable}\\b`), r.out);
    assert.doesNotMatch(r.out, SANITIZER_REPORT);
  });
}

test('a valid prod configuration starts (serve) and stops cleanly', async () => {
  const srv = await startServer({ env: { ...PROD_OK, TEST_MODE: 'false', LOG_LEVEL: 'info' } });
  try {
    const r = await fetch(`${srv.url}/healthz`);
    assert.equal(r.status, 200);
    // prod with the asan binary: the test hooks are compiled in but TEST_MODE is off
    assert.equal((await fetch(`${srv.url}/api/_test/items/1`)).status, 404);
    await srv.stopClean();
  } finally {
    await srv.stop(); // cleanup only (already stopped when the test got this far)
  }
});

test('TEST_MODE=false: every test hook is gone', async () => {
  const srv = await startServer({ env: { TEST_MODE: 'false', PUBLIC_URL: 'http://localhost:5999' } });
  try {
    // what a route that does not exist answers, per method (GET: 404; others: 405 from the
    // static-files catch-all): each hook must answer exactly that
    const absent = {};
    for (const method of ['GET', 'POST', 'DELETE']) {
      absent[method] = (await fetch(`${srv.url}/api/_no_such_route/1`, { method, body: method === 'POST' ? 'x' : undefined })).status;
      assert.ok(absent[method] === 404 || absent[method] === 405, `${method}: ${absent[method]}`);
    }
    for (const [method, p] of [['POST', '/api/_test/echo'], ['POST', '/api/_test/echo_small'],
      ['GET', '/api/_test/slow?ms=1'], ['GET', '/api/_test/items/1'], ['DELETE', '/api/_test/items/1'],
      ['GET', '/api/_test/ws_auth?test_user=alice']]) {
      const r = await fetch(srv.url + p, { method, body: method === 'POST' ? 'x' : undefined });
      assert.equal(r.status, absent[method], `${method} ${p} must not exist with TEST_MODE=false`);
    }
    // ?test_user= is not an identity: the upgrade is refused (no session, no token)
    await assert.rejects(openWs(srv, { path: '/socket?test_user=alice' }), /401/);
    // the socket hooks are unknown message types
    const { flood, pub } = await socketHooks(srv);
    assert.equal(flood.event, 'error', JSON.stringify(flood));
    assert.equal(pub.topic, 'diag', JSON.stringify(pub));
    assert.equal(pub.event, 'error', JSON.stringify(pub));
    await srv.stopClean();
  } finally {
    await srv.stop(); // cleanup only (already stopped when the test got this far)
  }
});

test('TEST_MODE=true (asan build): the hooks exist, so the test above is not vacuous', async () => {
  const srv = await startServer({ env: { TEST_MODE: 'true', PUBLIC_URL: 'http://localhost:5999' } });
  try {
    assert.equal((await fetch(`${srv.url}/api/_test/items/1`)).status, 200);
    const ws = await openWs(srv, { path: '/socket?test_user=alice' });
    ws.close();
    const { flood, pub } = await socketHooks(srv);
    assert.equal(flood.event, 'flood', JSON.stringify(flood));
    assert.equal(pub.event, 'hook_probe', JSON.stringify(pub));
    await srv.stopClean();
  } finally {
    await srv.stop(); // cleanup only (already stopped when the test got this far)
  }
});

test('the release binary has no test hooks and is hardened (PIE, full RELRO, canary, fortify)', () => {
  const rel = path.join(ROOT, 'build/release/streampai');
  assert.ok(fs.existsSync(rel), 'build/release/streampai must be built by make test');
  const bytes = fs.readFileSync(rel).toString('latin1');
  for (const s of ['/api/_test/', 'test_user', 'flood: count']) assert.ok(!bytes.includes(s), `release binary contains ${s}`);
  // the same hooks by symbol (the binary keeps its symbol table): present in asan, absent here
  const relSyms = execFileSync('nm', [rel], { encoding: 'utf8' });
  const asanSyms = execFileSync('nm', [BIN], { encoding: 'utf8' });
  for (const sym of ['sp_test_register_routes', 'flood_tick']) {
    assert.match(asanSyms, new RegExp(`\\b${sym}\\b`), `${sym} must exist in the test build (else this check is vacuous)`);
    assert.doesNotMatch(relSyms, new RegExp(`\\b${sym}\\b`), `release binary has ${sym}`);
  }
  const asanBytes = fs.readFileSync(BIN).toString('latin1');
  for (const s of ['/api/_test/', 'test_user', 'flood: count']) assert.ok(asanBytes.includes(s), `test build lacks ${s}`);
  const hdr = execFileSync('readelf', ['-h', '-d', '-W', rel], { encoding: 'utf8' });
  assert.match(hdr, /Type:\s+DYN/, 'PIE');
  assert.match(hdr, /BIND_NOW|FLAGS.*NOW/, 'full RELRO (BIND_NOW)');
  const ph = execFileSync('readelf', ['-l', '-W', rel], { encoding: 'utf8' });
  assert.match(ph, /GNU_RELRO/, 'RELRO segment');
  const syms = execFileSync('readelf', ['--dyn-syms', '-W', rel], { encoding: 'utf8' });
  assert.match(syms, /__stack_chk_fail/, 'stack protector');
  assert.match(syms, /__\w+_chk@/, 'FORTIFY_SOURCE');
});
