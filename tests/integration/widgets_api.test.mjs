// OBS widgets' server side (docs/widgets.md): per-user per-widget tokens (random 256-bit,
// stored hashed; shown again to their owner), the widget pages and their config by token, the
// widget socket's scope (its widget's two topics of its own user, nothing else, no API route),
// rotation (old URL refused at once, its open sockets closed), config validation (422 with
// the field, size cap) and live publish on widget_config:{type}:{uid}, the test chat, and
// uploads (type by magic bytes, size cap, served back, no path traversal).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import net from 'node:net';
import { tmpDir } from '../lib/harness.mjs';
import { dbExec } from '../lib/authlib.mjs';
import { openWs, sendJson, next } from '../lib/wsutil.mjs';
import { bootLive, newUser, dashSocket, waitFor, sleep, testCleanExit } from '../lib/livelib.mjs';

const UPLOAD_MAX = 4096;
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), crypto.randomBytes(200)]);

// the widget pages come from their own branch: a placeholder keeps this suite independent
function webDir() {
  const d = tmpDir('sp-web-');
  fs.mkdirSync(path.join(d, 'widgets'));
  for (const t of ['alertbox', 'chat']) fs.writeFileSync(path.join(d, 'widgets', `${t}.html`), `<!doctype html><title>${t} widget</title>`);
  fs.writeFileSync(path.join(d, 'widgets', 'common.js'), 'export const ok = 1;\n');
  return d;
}

const tokenOf = (url) => new URL(url).searchParams.get('token');

async function widgets(ctx, u) {
  const r = await u.api('GET', '/api/widgets');
  assert.equal(r.status, 200, r.text);
  const by = Object.fromEntries(r.json.map((w) => [w.type, w]));
  for (const w of r.json) ctx.secrets.add(tokenOf(w.url));
  return by;
}

const wsPath = (tok) => `/socket?widget_token=${tok}`;
async function subscribe(ws, topic) {
  sendJson(ws, { type: 'subscribe', topic });
  const m = await next(ws, (x) => x.topic === topic && (x.event === 'subscribed' || x.event === 'subscribe_error'));
  return m.event === 'subscribed' ? 'ok' : m.payload.reason;
}

async function rawGet(port, p) { // a path sent verbatim (no client-side normalisation)
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let d = '';
    s.on('data', (c) => { d += c.toString('latin1'); });
    s.on('end', () => resolve(Number(d.split(' ')[1])));
    s.on('error', reject);
  });
}

describe('widget tokens, pages, sockets, config, uploads', () => {
  let ctx; let u; let other; let w;
  before(async () => {
    ctx = await bootLive({ env: { WEB_DIR: webDir(), UPLOAD_MAX_BYTES: String(UPLOAD_MAX) } });
    u = await newUser(ctx);
    other = await newUser(ctx);
    w = await widgets(ctx, u);
  });

  test('GET /api/widgets: both widgets with a 256-bit token URL, stable, stored only hashed (and sealed)', async () => {
    assert.deepEqual(Object.keys(w).sort(), ['alertbox', 'chat']);
    for (const t of ['alertbox', 'chat']) {
      assert.match(w[t].url, new RegExp(`^${ctx.srv.url}/widgets/${t}\\?token=[0-9a-f]{64}$`));
      assert.equal(w[t].config_url, `/api/widgets/${t}/config`);
    }
    assert.notEqual(tokenOf(w.alertbox.url), tokenOf(w.chat.url));
    assert.deepEqual(await widgets(ctx, u), w, 'the same URLs on the next call');
    const o = await widgets(ctx, other);
    assert.notEqual(tokenOf(o.alertbox.url), tokenOf(w.alertbox.url));
    const rows = dbExec(ctx.srv, `SELECT token_hash || '|' || token_sealed FROM widget_tokens WHERE user_id = '${u.id}'`);
    const tok = tokenOf(w.alertbox.url);
    assert.ok(!rows.includes(tok), 'the token itself is not in the table');
    assert.ok(rows.includes(crypto.createHash('sha256').update(tok).digest('hex')), 'its SHA-256 is');
  });

  test('the widget page and its config by token; 404 for an unknown token or the other widget\'s', async () => {
    const tok = tokenOf(w.alertbox.url);
    let r = await fetch(w.alertbox.url);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/html/);
    assert.match(await r.text(), /alertbox widget/);
    r = await fetch(`${ctx.srv.url}/widgets/alertbox/config?token=${tok}`);
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.user_id, u.id);
    assert.equal(j.type, 'alertbox');
    assert.equal(j.socket_url, `/socket?widget_token=${tok}`);
    assert.equal(j.config.types.follow.template, '{name} just followed!');
    const bad = 'f'.repeat(64);
    for (const p of [`/widgets/alertbox?token=${bad}`, '/widgets/alertbox', `/widgets/alertbox?token=${tok.slice(1)}`,
      `/widgets/chat?token=${tok}`, `/widgets/alertbox/config?token=${bad}`, `/widgets/chat/config?token=${tok}`]) {
      r = await fetch(ctx.srv.url + p);
      assert.equal(r.status, 404, p);
    }
    r = await fetch(`${ctx.srv.url}/widgets/common.js`);
    assert.equal(r.status, 200, 'the pages\' own files are served');
    assert.equal(await r.text(), 'export const ok = 1;\n');
    assert.equal((await fetch(`${ctx.srv.url}/widgets/..%2fetc`)).status, 404);
  });

  test('a widget socket joins only its widget\'s two topics of its own user', async () => {
    const a = await openWs(ctx.srv, { path: wsPath(tokenOf(w.alertbox.url)), origin: null });
    assert.equal(await subscribe(a, `alertbox:${u.id}`), 'ok');
    assert.equal(await subscribe(a, `widget_config:alertbox:${u.id}`), 'ok');
    for (const t of [`chat:${u.id}`, `widget_config:chat:${u.id}`, `user_stream:${u.id}`, `platform:twitch:${u.id}`,
      `alertbox:${other.id}`, `widget_config:alertbox:${other.id}`, 'livestream:global']) {
      assert.equal(await subscribe(a, t), 'forbidden', t);
    }
    sendJson(a, { type: 'resume', topic: `user_stream:${u.id}`, after_seq: 0 });
    const m = await next(a, (x) => x.event === 'subscribe_error' && x.topic === `user_stream:${u.id}`);
    assert.equal(m.payload.reason, 'forbidden', 'resume is checked too');
    const c = await openWs(ctx.srv, { path: wsPath(tokenOf(w.chat.url)), origin: null });
    assert.equal(await subscribe(c, `chat:${u.id}`), 'ok');
    assert.equal(await subscribe(c, `widget_config:chat:${u.id}`), 'ok');
    assert.equal(await subscribe(c, `alertbox:${u.id}`), 'forbidden');
    assert.equal(await subscribe(c, `chat:${other.id}`), 'forbidden');
    // it sees what is published there: a test alert
    await u.api('POST', '/api/widgets/alertbox/test', { type: 'follow' });
    const show = await next(a, (x) => x.topic === `alertbox:${u.id}` && x.event === 'show');
    assert.equal(show.payload.test, true);
    await assert.rejects(openWs(ctx.srv, { path: wsPath('0'.repeat(64)), origin: null }), (e) => e.status === 401);
    await assert.rejects(openWs(ctx.srv, { path: wsPath('not-a-token'), origin: null }), (e) => e.status === 401);
    a.close(); c.close();
  });

  test('a widget token is refused on every API route', async () => {
    const tok = tokenOf(w.alertbox.url);
    for (const [method, p] of [['GET', '/api/widgets'], ['GET', '/api/stream'], ['GET', '/api/widgets/alertbox/config'],
      ['POST', '/api/widgets/alertbox/test'], ['GET', '/api/events'], ['POST', '/api/auth/token']]) {
      let r = await fetch(ctx.srv.url + p, { method, headers: { authorization: `Bearer ${tok}` } });
      assert.equal(r.status, 401, `${method} ${p} with Bearer`);
      r = await fetch(`${ctx.srv.url}${p}?token=${tok}&widget_token=${tok}`, { method });
      assert.equal(r.status, 401, `${method} ${p} with ?token`);
    }
  });

  test('rotation: the old URL and socket stop at once (close 4001), the new one works', async () => {
    const old = tokenOf(w.chat.url);
    const s1 = await openWs(ctx.srv, { path: wsPath(old), origin: null });
    assert.equal(await subscribe(s1, `chat:${u.id}`), 'ok');
    const keep = await openWs(ctx.srv, { path: wsPath(tokenOf(w.alertbox.url)), origin: null });
    const dash = await dashSocket(ctx, u);
    const r = await u.api('POST', '/api/widgets/chat/token');
    assert.equal(r.status, 200, r.text);
    const fresh = tokenOf(r.json.url);
    ctx.secrets.add(fresh);
    assert.notEqual(fresh, old);
    const info = await Promise.race([s1.closed, sleep(3000).then(() => null)]);
    assert.ok(info, 'the old socket was closed');
    assert.equal(info.code, 4001);
    assert.equal((await fetch(`${ctx.srv.url}/widgets/chat?token=${old}`)).status, 404);
    await assert.rejects(openWs(ctx.srv, { path: wsPath(old), origin: null }), (e) => e.status === 401);
    assert.equal((await fetch(`${ctx.srv.url}/widgets/chat?token=${fresh}`)).status, 200);
    const s2 = await openWs(ctx.srv, { path: wsPath(fresh), origin: null });
    assert.equal(await subscribe(s2, `chat:${u.id}`), 'ok');
    assert.equal(keep.readyState, 1, 'the alertbox socket stays open');
    assert.equal(dash.ws.readyState, 1, 'the dashboard stays open');
    assert.equal((await widgets(ctx, u)).chat.url, r.json.url, 'the list shows the new URL');
    w = await widgets(ctx, u);
    assert.equal((await u.api('POST', '/api/widgets/obs/token')).status, 404);
    s2.close(); keep.close(); await dash.close();
  });

  test('config: 422 names the field, 413 over 16 KiB, a save is published to the open widget', async () => {
    const ws = await openWs(ctx.srv, { path: wsPath(tokenOf(w.alertbox.url)), origin: null });
    assert.equal(await subscribe(ws, `widget_config:alertbox:${u.id}`), 'ok');
    assert.equal(await subscribe(ws, `alertbox:${u.id}`), 'ok');
    for (const [body, field] of [
      [{ types: { follow: { duration_ms: 10 } } }, 'types.follow.duration_ms'],
      [{ types: { follow: { template: '{nam} followed' } } }, 'types.follow.template'],
      [{ text_color: 'red' }, 'text_color'], [{ nope: 1 }, 'nope'], [{ layout: 'below' }, 'layout'],
      [{ types: { raid: { image_url: '/etc/passwd' } } }, 'types.raid.image_url'],
      [{ priorities: { follow: -1 } }, 'priorities.follow'],
    ]) {
      const r = await u.api('PUT', '/api/widgets/alertbox/config', body);
      assert.equal(r.status, 422, JSON.stringify(body));
      assert.equal(r.json.error, 'invalid');
      assert.equal(r.json.field, field);
    }
    let r = await u.api('PUT', '/api/widgets/chat/config', { platforms: ['myspace'] });
    assert.equal(r.status, 422);
    assert.equal(r.json.field, 'platforms');
    r = await u.api('PUT', '/api/widgets/alertbox/config', { filter: { words: Array(100).fill('x'.repeat(200)) } });
    assert.equal(r.status, 413, 'over 16 KiB');
    assert.equal(ws.inbox.filter((m) => m.event === 'config').length, 0, 'nothing published for refusals');
    const t0 = Date.now();
    r = await u.api('PUT', '/api/widgets/alertbox/config', { gap_ms: 0, types: { follow: { template: 'Welcome {name}!', duration_ms: 2000 } } });
    assert.equal(r.status, 200, r.text);
    const pub = await next(ws, (m) => m.topic === `widget_config:alertbox:${u.id}` && m.event === 'config');
    assert.ok(Date.now() - t0 < 1000, 'published within a second');
    assert.deepEqual(pub.payload, r.json.config);
    assert.equal(pub.payload.types.follow.template, 'Welcome {name}!');
    assert.equal(pub.payload.types.raid.template, '{name} is raiding with {count} viewers!', 'defaults filled');
    const g = await u.api('GET', '/api/widgets/alertbox/config');
    assert.deepEqual(g.json.config, r.json.config);
    assert.equal(g.json.defaults.types.follow.template, '{name} just followed!');
    const byTok = await (await fetch(`${ctx.srv.url}/widgets/alertbox/config?token=${tokenOf(w.alertbox.url)}`)).json();
    assert.deepEqual(byTok.config, r.json.config);
    // the queue uses it at once (the earlier test alert is skipped first)
    await u.api('POST', '/api/widgets/alertbox/skip');
    await u.api('POST', '/api/widgets/alertbox/test', { type: 'follow' });
    const show = await next(ws, (m) => m.event === 'show');
    assert.equal(show.payload.text, 'Welcome TestUser!');
    assert.equal(show.payload.duration_ms, 2000);
    // another user's config is untouched
    assert.equal((await other.api('GET', '/api/widgets/alertbox/config')).json.config.types.follow.template, '{name} just followed!');
    ws.close();
  });

  test('test chat: a normalised message on chat:{uid} for the chat widget; 422 on bad input', async () => {
    const ws = await openWs(ctx.srv, { path: wsPath(tokenOf(w.chat.url)), origin: null });
    assert.equal(await subscribe(ws, `chat:${u.id}`), 'ok');
    let r = await u.api('POST', '/api/widgets/chat/test', { platform: 'youtube', name: 'Zed', text: '!hello there' });
    assert.equal(r.status, 200, r.text);
    const m = await next(ws, (x) => x.topic === `chat:${u.id}` && x.event === 'message');
    assert.equal(m.payload.platform, 'youtube');
    assert.equal(m.payload.author.display_name, 'Zed');
    assert.equal(m.payload.text, '!hello there');
    assert.deepEqual(m.payload.fragments, [{ type: 'text', text: '!hello there' }]);
    assert.equal(m.payload.test, true);
    assert.deepEqual(m.payload, r.json.message);
    r = await u.api('POST', '/api/widgets/chat/test', {});
    assert.equal(r.status, 200);
    assert.equal((await next(ws, (x) => x.event === 'message')).payload.platform, 'twitch');
    r = await u.api('POST', '/api/widgets/chat/test', { platform: 'myspace' });
    assert.equal(r.status, 422);
    assert.equal(r.json.field, 'platform');
    r = await u.api('POST', '/api/widgets/chat/test', { name: 'x'.repeat(65) });
    assert.equal(r.json.field, 'name');
    r = await u.api('POST', '/api/widgets/chat/test', { text: '' });
    assert.equal(r.json.field, 'text');
    ws.close();
  });

  test('uploads: stored by content hash and served back; wrong type or magic 415; over the cap 413', async () => {
    const up = (body, type) => fetch(`${ctx.srv.url}/api/widgets/uploads`, {
      method: 'POST', headers: { authorization: `Bearer ${u.token}`, 'content-type': type }, body,
    });
    let r = await up(PNG, 'image/png');
    assert.equal(r.status, 200);
    const { url } = await r.json();
    const hash = crypto.createHash('sha256').update(PNG).digest('hex');
    assert.equal(url, `/uploads/${u.id}/${hash}.png`);
    assert.ok(fs.existsSync(path.join(ctx.dataDir, 'uploads', u.id, `${hash}.png`)), 'under DATA_DIR/uploads/{user}');
    r = await fetch(ctx.srv.url + url);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), PNG);
    // usable in the config
    r = await u.api('PUT', '/api/widgets/alertbox/config', { types: { follow: { image_url: url } } });
    assert.equal(r.status, 200, r.text);
    const kinds = [['image/gif', Buffer.from('GIF89a....')], ['image/jpeg', Buffer.from('ffd8ffe000104a464946', 'hex')],
      ['image/webp', Buffer.from('RIFF\0\0\0\0WEBPVP8 ')], ['audio/mpeg', Buffer.from('ID3\x04\0\0\0\0')],
      ['audio/ogg', Buffer.from('OggS\0\x02')], ['audio/wav', Buffer.from('RIFF\0\0\0\0WAVEfmt ')]];
    for (const [type, body] of kinds) {
      r = await up(body, type);
      assert.equal(r.status, 200, type);
      const got = await fetch(ctx.srv.url + (await r.json()).url);
      assert.equal(got.headers.get('content-type'), type);
    }
    assert.equal((await up(PNG, 'image/gif')).status, 415, 'content not matching the type');
    assert.equal((await up(Buffer.from('<svg onload=alert(1)>'), 'image/svg+xml')).status, 415);
    assert.equal((await up(Buffer.from('hello'), 'text/plain')).status, 415);
    assert.equal((await up(Buffer.from('<html>'), 'text/html')).status, 415);
    assert.equal((await up(Buffer.concat([PNG, Buffer.alloc(UPLOAD_MAX)]), 'image/png')).status, 413);
    r = await up(Buffer.concat([PNG, Buffer.alloc(UPLOAD_MAX - PNG.length)]), 'image/png');
    assert.equal(r.status, 200, 'exactly UPLOAD_MAX_BYTES is fine');
    r = await fetch(`${ctx.srv.url}/api/widgets/uploads`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: PNG });
    assert.equal(r.status, 401, 'uploads need a user');
  });

  test('uploads: no path traversal, nothing but {user}/{sha256}.{ext} is served', async () => {
    fs.writeFileSync(path.join(ctx.dataDir, 'uploads', 'secret.png'), PNG);
    const hash = crypto.createHash('sha256').update(PNG).digest('hex');
    for (const p of [
      `/uploads/${u.id}/../secret.png`, `/uploads/${u.id}/..%2fsecret.png`, `/uploads/..%2f..%2fstreampai.db/${hash}.png`,
      `/uploads/${u.id}/%2e%2e%2f%2e%2e%2fstreampai.db`, `/uploads/..%2F/${hash}.png`, `/uploads/${u.id}/${hash.toUpperCase()}.png`,
      `/uploads/${u.id}/${hash}.html`, `/uploads/${u.id}/${hash}.png%00.html`, `/uploads/${u.id}/${'0'.repeat(64)}.png`,
      '/uploads/secret.png', `/uploads/.%2e/${hash}.png`, `/uploads/${u.id}%2f..%2f/${hash}.png`,
    ]) {
      const st = await rawGet(ctx.port, p);
      assert.ok(st === 404 || st === 400, `${p}: ${st}`);
    }
    assert.equal(await rawGet(ctx.port, `/uploads/${u.id}/${hash}.png`), 200);
  });

  test('the log never shows a widget token', async () => {
    await fetch(w.alertbox.url);
    await waitFor(() => ctx.logText().includes('/widgets/alertbox') || null, { what: 'the access log line' });
    for (const t of [tokenOf(w.alertbox.url), tokenOf(w.chat.url)]) assert.ok(!ctx.allLogText().includes(t));
  });

  testCleanExit(() => ctx);
});
