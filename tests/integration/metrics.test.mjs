// /metrics parsed with a strict Prometheus text-format (0.0.4) parser after a busy scenario
// (users, sockets, inputs connected and dropped, streams started and stopped): every line is a
// HELP, a TYPE or a sample; one HELP and one TYPE per family, before its samples; the samples
// of a family together; no series twice; no negative value anywhere (the users-per-state gauge
// once wrapped to 18446744073709551615, and the Cloudflare block was printed twice).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, dashSocket, admin, testCleanExit,
} from '../lib/livelib.mjs';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/y;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

// Returns { families: Map(name -> {type, help, samples:[{name, labels, value}]}) } or throws
// with the offending line.
export function parseStrict(text) {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map();
  const seenSeries = new Set();
  const closed = new Set(); // families whose samples ended (another family's sample came)
  let current = null;
  const familyOf = (sample) => {
    for (const suf of ['_bucket', '_count', '_sum']) {
      if (sample.endsWith(suf)) {
        const base = sample.slice(0, -suf.length);
        const f = families.get(base);
        if (f && (f.type === 'histogram' || f.type === 'summary')) return base;
      }
    }
    return sample;
  };
  const lines = text.slice(0, -1).split('\n');
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) { assert.match(line, /^# /, where); continue; } // a plain comment
      const [, kind, name, rest] = m;
      assert.match(name, NAME, where);
      const f = families.get(name) || { type: null, help: null, samples: [] };
      if (kind === 'HELP') {
        assert.equal(f.help, null, `HELP twice for ${name} (${where})`);
        f.help = rest;
      } else {
        assert.equal(f.type, null, `TYPE twice (or after its samples) for ${name} (${where})`);
        assert.ok(TYPES.has(rest), `unknown type (${where})`);
        assert.equal(f.samples.length, 0, `TYPE after samples of ${name} (${where})`);
        f.type = rest;
      }
      assert.ok(!closed.has(name), `family ${name} comes back after other samples (${where})`);
      families.set(name, f);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( -?\d+)?$/.exec(line);
    assert.ok(m, `not a sample (${where})`);
    const [, name, lab, valueText] = m;
    const labels = {};
    if (lab) {
      const body = lab.slice(1, -1);
      let pos = 0;
      while (pos < body.length) {
        LABEL.lastIndex = pos;
        const lm = LABEL.exec(body);
        assert.ok(lm, `bad label set (${where})`);
        assert.ok(!(lm[1] in labels), `label ${lm[1]} twice (${where})`);
        labels[lm[1]] = lm[2];
        pos = LABEL.lastIndex;
        if (body[pos] === ',') pos++;
        else assert.equal(pos, body.length, `bad label separator (${where})`);
      }
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity
      : valueText === 'NaN' ? NaN : Number(valueText);
    assert.ok(valueText === 'NaN' || !Number.isNaN(value), `bad value (${where})`);
    assert.ok(!(value < 0), `negative value (${where})`);
    const fam = familyOf(name);
    if (!families.has(fam)) families.set(fam, { type: 'untyped', help: null, samples: [] }); // allowed
    const f = families.get(fam);
    if (f.type === null) f.type = 'untyped'; // HELP without TYPE: untyped, TYPE may not follow
    if (current !== fam) {
      assert.ok(!closed.has(fam), `samples of ${fam} are not together (${where})`);
      if (current) closed.add(current);
      current = fam;
    }
    const key = `${name}{${Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',')}}`;
    assert.ok(!seenSeries.has(key), `series twice: ${key} (${where})`);
    seenSeries.add(key);
    f.samples.push({ name, labels, value });
  }
  // histograms: cumulative buckets ending at +Inf, which equals _count
  for (const [name, f] of families) {
    if (f.type !== 'histogram') continue;
    const groups = new Map();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const g = JSON.stringify(rest);
      if (!groups.has(g)) groups.set(g, { buckets: [], count: null });
      if (s.name === `${name}_bucket`) groups.get(g).buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
      if (s.name === `${name}_count`) groups.get(g).count = s.value;
    }
    for (const [g, v] of groups) {
      assert.ok(v.buckets.length > 0, `${name}${g}: no buckets`);
      for (let i = 1; i < v.buckets.length; i++) {
        assert.ok(v.buckets[i][0] > v.buckets[i - 1][0], `${name}${g}: le not increasing`);
        assert.ok(v.buckets[i][1] >= v.buckets[i - 1][1], `${name}${g}: buckets not cumulative`);
      }
      assert.equal(v.buckets.at(-1)[0], Infinity, `${name}${g}: no +Inf bucket`);
      assert.equal(v.buckets.at(-1)[1], v.count, `${name}${g}: +Inf bucket != _count`);
    }
  }
  return { families };
}

describe('/metrics after a busy scenario (fake Cloudflare)', () => {
  let ctx;
  before(async () => { ctx = await bootLive(); });
  after(() => ctx?.stop());

  test('the parser refuses what a scrape refuses', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n';
    parseStrict(ok);
    assert.throws(() => parseStrict(ok + ok), /twice/);
    assert.throws(() => parseStrict('# TYPE g gauge\ng -1\n'), /negative/);
    assert.throws(() => parseStrict('# TYPE g gauge\ng 18446744073709551615x\n'), /not a sample|bad value/);
    assert.throws(() => parseStrict('# TYPE g gauge\ng{a="1"} 1\n# TYPE h gauge\nh 1\ng{a="2"} 1\n'), /not together/);
    assert.throws(() => parseStrict('g 1\n# TYPE g gauge\n'), /TYPE twice|TYPE after samples|comes back/);
  });

  test('users in every state, then a strict scrape: no duplicate series, no negative value', async () => {
    const users = [];
    for (let i = 0; i < 3; i++) users.push(await newUser(ctx));
    const socks = [];
    for (const u of users) socks.push(await dashSocket(ctx, u));
    // u0: connected -> ready -> streaming -> stopped -> offline; u1: ready; u2: streaming
    const uids = [];
    for (const u of users) uids.push(await inputUid(u));
    for (const uid of uids) await setInput(ctx, uid, 'connected');
    for (const u of users) await waitState(u, 'ready');
    const d0 = await users[0].addDest('m0');
    const d2 = await users[2].addDest('m2');
    assert.equal((await users[0].api('POST', '/api/stream/start', { destinations: [d0.id] })).status, 200);
    assert.equal((await users[2].api('POST', '/api/stream/start', { destinations: [d2.id] })).status, 200);
    assert.equal((await users[0].api('POST', '/api/stream/stop')).status, 200);
    await setInput(ctx, uids[0], 'disconnected');
    await waitState(users[0], 'offline');

    const r = await fetch(`${ctx.srv.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const { families } = parseStrict(text);
    assert.ok(families.has('streampai_cloudflare_calls_total'), 'the Cloudflare block is there');
    const states = families.get('streampai_livestream_state_users');
    assert.ok(states, text.slice(0, 400));
    const by = Object.fromEntries(states.samples.map((s) => [s.labels.state, s.value]));
    assert.equal(by.ready, 1, JSON.stringify(by));
    assert.equal(by.streaming, 1, JSON.stringify(by));
    assert.equal(by.ending, 0, JSON.stringify(by));
    // the same numbers in `debug counts`
    const dbg = await admin(ctx, 'counts');
    assert.equal(dbg.status, 200);
    for (const s of ['offline', 'ready', 'streaming', 'ending']) {
      assert.ok(dbg.json.data.states[s] >= 0, JSON.stringify(dbg.json.data));
      assert.equal(dbg.json.data.states[s], by[s], `${s}: debug counts and /metrics agree`);
    }
    for (const s of socks) await s.close();
  });

  testCleanExit(() => ctx);
});
