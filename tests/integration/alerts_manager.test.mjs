// The AlertQueue and the user's stream manager (docs/alerts.md "The queue and the user's stream
// manager"): the queue is in the livestream Registry as alert_queue:{uid} (debug counts), and
// it outlives the manager: the dashboard closes, the manager stops (absent and offline), the
// queue stays registered with its waiting alerts, and the OBS alert box (a widget socket, not
// presence) still gets them shown.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  bootLive, newUser, dashSocket, admin, waitFor, testCleanExit,
} from '../lib/livelib.mjs';

describe('AlertQueue outlives the stream manager', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { PRESENCE_CLEANUP_TIMEOUT: '300' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  const counts = async () => (await admin(ctx, 'counts')).json.data;
  const managed = async (u) => (await admin(ctx, 'users')).json.data.includes(u.id);

  test('queued with a manager, shown on the widget socket after the manager stopped', async () => {
    const u = await newUser(ctx);
    const before0 = await counts();
    assert.equal(typeof before0.alert_queue, 'number', 'alert_queue is a Registry kind in counts');
    const dash = await dashSocket(ctx, u);
    await waitFor(async () => (await managed(u)) || null, { what: 'the manager started' });
    // the first control creates the user's queue: registered beside the manager
    let r = await u.api('POST', '/api/widgets/alertbox/pause');
    assert.equal(r.status, 200, r.text);
    assert.equal((await counts()).alert_queue, before0.alert_queue + 1);
    for (const type of ['raid', 'donation']) {
      r = await u.api('POST', '/api/widgets/alertbox/test', { type });
      assert.equal(r.status, 200, r.text);
    }
    await dash.close();
    await waitFor(async () => !(await managed(u)) || null, { timeout: 5000, what: 'the manager stopped' });
    const after0 = await counts();
    assert.equal(after0.alert_queue, before0.alert_queue + 1, 'the queue outlived the manager');
    assert.equal((await u.api('GET', '/api/widgets/alertbox/state')).json.queued, 2);

    // the OBS page: its widget socket is not presence
    const w = (await u.api('GET', '/api/widgets')).json;
    const url = new URL((Array.isArray(w) ? w : Object.values(w)).find((x) => x.type === 'alertbox').url);
    const ws = new WebSocket(`ws://127.0.0.1:${ctx.port}/socket?widget_token=${url.searchParams.get('token')}`);
    const shows = [];
    const topic = `alertbox:${u.id}`;
    let subscribed = false;
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.event === 'subscribed') subscribed = true;
      if (m.topic === topic && m.event === 'show') shows.push(m.payload);
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send(JSON.stringify({ type: 'subscribe', topic }));
    await waitFor(() => subscribed || null, { what: 'widget subscribed' });
    assert.equal(await managed(u), false, 'a widget socket starts no manager');
    r = await u.api('POST', '/api/widgets/alertbox/resume');
    assert.equal(r.status, 200, r.text);
    await waitFor(() => shows.length >= 1 || null, { what: 'the first show' });
    assert.equal(shows[0].alert.type, 'donation', 'priority order kept');
    assert.equal(shows[0].test, true);
    r = await u.api('POST', '/api/widgets/alertbox/skip');
    assert.equal(r.status, 200, r.text);
    await waitFor(() => shows.length >= 2 || null, { what: 'the second show' });
    assert.equal(shows[1].alert.type, 'raid');
    assert.equal((await counts()).alert_queue, before0.alert_queue + 1);
    ws.close();
  });

  testCleanExit(() => ctx);
});
