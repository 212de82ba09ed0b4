// Unit test (node:test, no browser) of web/js/dest_status.js: the one status label of a
// destination derived from (stream state, output row, health), issue 13 item 3: never
// contradictory ("active" next to "Error"), never stale after the end ("closed" kept),
// "Connecting…" rather than "Idle" while the relay connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { destStatus } from '../../web/js/dest_status.js';

const relay = (state, outputs = [], input = 'connected') => ({ state, input: { status: input, provider: 'relay' }, outputs });
const cf = (state, outputs = [], input = 'connected') => ({ state, input: { status: input, provider: 'cloudflare' }, outputs });
const label = (s, o) => destStatus(s, o).label;

test('not streaming: "Not live" whatever an old output row says (never stale after the end)', () => {
  for (const state of ['offline', 'ready']) {
    for (const out of [undefined, { status: 'closed' }, { status: 'active', health: { status: 'forwarding' } },
      { status: 'failed', error: 'boom' }]) {
      const s = destStatus(relay(state, out ? [out] : []), out);
      assert.deepEqual(s, { key: 'off', tone: 'off', label: 'Not live' }, `${state} ${JSON.stringify(out)}`);
    }
  }
  assert.equal(label(null, undefined), 'Not live');
  // streaming, but this destination is not part of the stream
  assert.equal(label(relay('streaming'), undefined), 'Not live');
});

test('relay: connecting -> live -> error, one label each, never "Idle"', () => {
  assert.equal(label(relay('streaming'), { status: 'creating' }), 'Connecting…');
  assert.equal(label(relay('streaming'), { status: 'active' }), 'Connecting…', 'no health yet on the relay');
  // both backends say provider "cloudflare": another output with health marks the relay
  const a = { status: 'active' };
  const b = { status: 'active', health: { status: 'forwarding' } };
  assert.equal(label(cf('streaming', [a, b]), a), 'Connecting…');
  assert.equal(label(cf('streaming', [a, b]), b), 'Live');
  assert.equal(label(relay('streaming'), { status: 'active', health: { status: 'idle' } }), 'Connecting…');
  assert.equal(label(relay('streaming'), { status: 'active', health: { status: 'connecting' } }), 'Connecting…');
  const live = destStatus(relay('streaming'), { status: 'active', health: { status: 'forwarding', bytes: 10 } });
  assert.deepEqual(live, { key: 'live', tone: 'live', label: 'Live' });
  const err = destStatus(relay('streaming'), { status: 'active', health: { status: 'error', last_error: 'connect: connection refused' } });
  assert.deepEqual(err, { key: 'error', tone: 'error', label: 'Error: connect: connection refused' });
  assert.equal(label(relay('streaming'), { status: 'active', health: { status: 'error' } }), 'Error: connection failed');
  // forwarding with an old last_error is live, not an error
  assert.equal(label(relay('streaming'), { status: 'active', health: { status: 'forwarding', last_error: 'old' } }), 'Live');
});

test('output row failures win over health; a reason is always given', () => {
  assert.equal(label(relay('streaming'), { status: 'retrying', error: '502: bad gateway' }), 'Error: 502: bad gateway (retrying)');
  assert.equal(label(relay('streaming'), { status: 'retrying' }), 'Error: could not connect (retrying)');
  assert.equal(label(relay('streaming'), { status: 'failed', error: 'quota' }), 'Error: quota');
  assert.equal(label(relay('streaming'), { status: 'failed', error: '   ' }), 'Error: the destination refused the stream');
  const long = 'x'.repeat(500);
  const l = label(relay('streaming'), { status: 'failed', error: long });
  assert.ok(l.length <= 'Error: '.length + 160, 'long errors are cut');
  assert.ok(l.endsWith('…'));
});

test('ending and deleting say Stopping…, closed says Not live', () => {
  assert.equal(label(relay('ending'), { status: 'active', health: { status: 'forwarding' } }), 'Stopping…');
  assert.equal(label(relay('streaming'), { status: 'deleting' }), 'Stopping…');
  assert.equal(label(relay('streaming'), { status: 'closed' }), 'Not live');
  assert.equal(label(relay('ending'), { status: 'closed' }), 'Not live');
});

test('encoder lost within the grace window: "Waiting for the encoder"', () => {
  assert.equal(label(relay('streaming', [], 'disconnected'), { status: 'active', health: { status: 'idle' } }), 'Waiting for the encoder');
  assert.equal(label(cf('streaming', [], 'disconnected'), { status: 'active' }), 'Waiting for the encoder');
  // disconnect protection: the relay keeps forwarding its slate meanwhile
  const slate = destStatus(relay('streaming', [], 'disconnected'), { status: 'active', health: { status: 'forwarding' } });
  assert.deepEqual(slate, { key: 'slate', tone: 'live', label: 'Live: showing "be right back" until the encoder returns' });
  // a destination error is shown even while the encoder is away
  assert.equal(label(relay('streaming', [], 'disconnected'), { status: 'active', health: { status: 'error', last_error: 'x' } }), 'Error: x');
  // an unknown input (media API outage) does not hide what the outputs say
  assert.equal(label(relay('streaming', [], 'unknown'), { status: 'active', health: { status: 'forwarding' } }), 'Live');
});

test('cloudflare (no health): an active output is Live, creating is Connecting…', () => {
  assert.equal(label(cf('streaming'), { status: 'active' }), 'Live');
  assert.equal(label(cf('streaming'), { status: 'creating' }), 'Connecting…');
  assert.equal(label(cf('streaming'), { status: 'retrying', error: 'x' }), 'Error: x (retrying)');
});

test('tones are one of live/pending/error/off and match the label', () => {
  const cases = [
    [relay('streaming'), { status: 'active', health: { status: 'forwarding' } }, 'live'],
    [relay('streaming'), { status: 'active', health: { status: 'connecting' } }, 'pending'],
    [relay('streaming'), { status: 'failed', error: 'e' }, 'error'],
    [relay('offline'), undefined, 'off'],
  ];
  for (const [s, o, tone] of cases) {
    const r = destStatus(s, o);
    assert.equal(r.tone, tone);
    assert.equal(r.label.startsWith('Error'), tone === 'error');
  }
});
