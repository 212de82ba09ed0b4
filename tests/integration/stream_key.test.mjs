// POST /api/stream/key/regenerate against the fake Cloudflare (issue 13 item 11): login
// required, a new live input with a new key, the old input deleted at Cloudflare before the
// answer (no-store), a ready stream goes offline (its encoder used the old key), refused
// while live; the new key is what GET /api/stream and a server restart show.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootLive, newUser, inputUid, setInput, waitState, waitFor, postWebhook, cfEvent, testCleanExit } from '../lib/livelib.mjs';

let ctx;
before(async () => { ctx = await bootLive(); });
after(async () => { if (ctx) await ctx.stop(); });

test('regenerate: auth, new input and key, old input deleted at Cloudflare, ready -> offline', async () => {
  const anon = await fetch(ctx.srv.url + '/api/stream/key/regenerate', { method: 'POST' });
  assert.equal(anon.status, 401);

  const u = await newUser(ctx);
  const uid = await inputUid(u);
  const before = await u.stream();
  await setInput(ctx, uid, 'connected');
  await waitState(u, 'ready');

  const res = await fetch(ctx.srv.url + '/api/stream/key/regenerate', {
    method: 'POST', headers: { authorization: `Bearer ${u.token}` },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('cache-control') || '', /no-store/);
  const r = await res.json();
  ctx.secrets.add(r.input.stream_key);
  assert.equal(r.old_key_revoked, true);
  assert.notEqual(r.input.input_uid, uid);
  assert.notEqual(r.input.stream_key, before.input.stream_key);
  assert.equal(r.input.status, 'disconnected', 'the encoder was on the old key');
  assert.equal(ctx.cf.getInput(uid), null, 'old input deleted before the answer');
  assert.ok(ctx.cf.getInput(r.input.input_uid), 'new input exists');
  assert.equal(ctx.cf.getInput(r.input.input_uid).rtmps.streamKey, r.input.stream_key);

  const s = await waitState(u, 'offline');
  assert.equal(s.input.stream_key, r.input.stream_key);
  assert.equal(s.input.input_uid, r.input.input_uid);
  assert.equal(s.input.status, 'disconnected');

  // the new input drives the stream: connected -> ready
  await setInput(ctx, r.input.input_uid, 'connected');
  await waitState(u, 'ready');
  // a webhook for the old input no longer moves this user's stream
  const wh = await postWebhook(ctx, cfEvent(uid, 'disconnected', new Date(Date.now() + 1000)));
  assert.equal(wh.status, 200, wh.text);
  assert.notEqual(wh.json?.result, 'applied', 'the old input is unknown now');
  assert.equal((await u.stream()).state, 'ready');

  // live: refused, nothing changes
  const d = await u.addDest('d1');
  const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
  assert.equal(start.status, 200, start.text);
  const busy = await u.api('POST', '/api/stream/key/regenerate');
  assert.equal(busy.status, 409);
  assert.equal(busy.json.error.code, 'live');
  assert.ok(ctx.cf.getInput(r.input.input_uid), 'input kept while live');
  assert.equal((await u.stream()).input.stream_key, r.input.stream_key);
  const stop = await u.api('POST', '/api/stream/stop');
  assert.equal(stop.status, 200, stop.text);

  // after a restart the new key is the one loaded from the store
  await ctx.srv.stop();
  await ctx.restart();
  const after = await waitFor(async () => { const x = await u.stream(); return x?.input?.input_uid && x; }, { what: 'input after restart' });
  assert.equal(after.input.input_uid, r.input.input_uid);
  assert.equal(after.input.stream_key, r.input.stream_key);
});

// the reset input status ("never connected") is stored: a restart must not bring back the
// old key's last status (on today's main the page read "Disconnected" again after a restart)
test('regenerate while offline: status "none", and still "none" after a restart', async () => {
  const u = await newUser(ctx);
  const uid = await inputUid(u);
  await setInput(ctx, uid, 'connected');
  await waitState(u, 'ready');
  await setInput(ctx, uid, 'disconnected');
  const off = await waitState(u, 'offline');
  assert.equal(off.input.status, 'disconnected');
  const r = await u.api('POST', '/api/stream/key/regenerate');
  assert.equal(r.status, 200, r.text);
  ctx.secrets.add(r.json.input.stream_key);
  assert.equal(r.json.input.status, 'none');
  const s = await u.stream();
  assert.equal(s.input.status, 'none');
  assert.equal(s.input.last_status, undefined, 'no last status of the old key');
  await ctx.srv.stop();
  await ctx.restart();
  const again = await waitFor(async () => { const x = await u.stream(); return x?.input?.input_uid && x; }, { what: 'input after restart' });
  assert.equal(again.input.input_uid, r.json.input.input_uid);
  assert.equal(again.input.status, 'none', 'never connected after a restart too');
  assert.equal(again.input.last_status, undefined);
});

testCleanExit(() => ctx);
