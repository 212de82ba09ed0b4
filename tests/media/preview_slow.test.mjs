// The relay's HTTP-FLV preview never slows the outputs: a viewer that stops reading gets its
// queue capped and whole GOPs dropped (log "preview viewer left ... dropped_gops=N"), while a
// destination receives all the media and the publisher runs in real time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { tmpDir, freePort, waitFor } from '../lib/harness.mjs';
import { startRelay, startSink, publish, probe, TOKEN } from './relay_lib.mjs';

test('a preview viewer that stops reading drops GOPs; the output gets everything', { timeout: 90000 }, async () => {
  const dir = tmpDir('sp-preview-slow-');
  const relay = await startRelay();
  let sock;
  try {
    const input = await relay.createInput();
    const port = await freePort();
    const sink = await startSink(dir, 'ok', port);
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${port}/live`, 'SINKKEY');
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 12,
      { extra: ['-b:v', '8M', '-maxrate', '8M', '-bufsize', '2M', '-vf', 'noise=alls=80:allf=t'] });
    await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding' });
    // a viewer that reads the response head, then nothing more
    sock = net.connect(relay.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /client/v4/accounts/acc1/stream/live_inputs/${input.uid}/preview.flv HTTP/1.1\r\n` +
      `Host: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const head = await new Promise((r) => sock.once('data', (d) => r(d.toString('latin1'))));
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Content-Type: video\/x-flv/);
    sock.pause();
    const r = await pub.exited;
    assert.equal(r.code, 0);
    assert.ok(r.ms < 12000 + 6000, `publisher took ${r.ms} ms for 12 s of media`);
    assert.equal(await sink.exited, 0);
    const p = probe(sink.out);
    assert.ok(p.video >= 12 * 30 * 0.9, `destination got ${p.video} video packets`);
    const outs = await relay.outputs(input.uid);
    assert.equal(outs[0].dropped_gops, 0, 'the output dropped nothing');
    const m = await waitFor(() => relay.logText().match(/msg="preview viewer left" input=[0-9a-f]+ dropped_gops=(\d+)/),
      { timeout: 10000, what: 'preview viewer closed with the publisher' });
    assert.ok(Number(m[1]) >= 1, `the stalled viewer dropped GOPs (${m[0]})`);
  } finally {
    if (sock) sock.destroy();
    await relay.stopClean();
  }
});
