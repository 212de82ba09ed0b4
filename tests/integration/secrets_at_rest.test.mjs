// Secrets at rest: stream keys (destinations and the user's live input) are sealed in the
// database: the raw SQLite files (db, WAL) never contain them in clear, the key files are 0600,
// and a sealed value copied to another user's row does not open; both server runs exit
// cleanly and log no secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bootLive, newUser, inputUid, waitFor } from '../lib/livelib.mjs';
import { dbExec } from '../lib/authlib.mjs';

function rawDbBytes(dataDir) {
  return ['streampai.db', 'streampai.db-wal', 'streampai.db-shm']
    .map((f) => path.join(dataDir, f))
    .filter((f) => fs.existsSync(f))
    .map((f) => fs.readFileSync(f))
    .reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0));
}

test('stream keys are never stored in clear; key files are private', { timeout: 60000 }, async () => {
  const ctx = await bootLive();
  try {
    const a = await newUser(ctx);
    const b = await newUser(ctx);
    const canary = 'CANARY-dest-key-8c1f2e9a7b';
    const d = await a.addDest('canary', 'rtmp://127.0.0.1:1935/live', canary);
    const uid = await inputUid(a);
    const st = await a.stream();
    const inputKey = st.input.stream_key;
    assert.ok(inputKey && inputKey.length >= 16);
    // Checkpoint nothing on purpose: the WAL is read too.
    await waitFor(() => rawDbBytes(ctx.dataDir).length > 0, { what: 'db files' });
    const raw = rawDbBytes(ctx.dataDir);
    assert.equal(raw.indexOf(canary), -1, 'destination stream key found in clear in the database files');
    assert.equal(raw.indexOf(inputKey), -1, 'live input stream key found in clear in the database files');
    for (const f of ['secrets.key', 'token_signing.key']) {
      const mode = fs.statSync(path.join(ctx.dataDir, f)).mode & 0o777;
      assert.equal(mode, 0o600, `${f} mode ${mode.toString(8)}`);
    }
    // The owner can still reveal it (the seal opens for the right user).
    const rev = await a.api('POST', `/api/destinations/${d.id}/reveal`);
    assert.equal(rev.status, 200);
    assert.equal(rev.json.stream_key, canary);
    // Copy A's sealed key into a destination row of B: it must not open for B.
    const db = await b.addDest('other', 'rtmp://127.0.0.1:1935/live', 'b-key-123456');
    await ctx.srv.stopClean();
    dbExec({ dataDir: ctx.dataDir }, `UPDATE destinations SET stream_key_sealed = (SELECT stream_key_sealed FROM destinations WHERE id = '${d.id}') WHERE id = '${db.id}'`);
    await ctx.restart();
    const revB = await b.api('POST', `/api/destinations/${db.id}/reveal`);
    assert.notEqual(revB.status, 200, 'a sealed key copied to another user opened');
    assert.ok(!JSON.stringify(revB.json || {}).includes(canary));
    void uid;
    await ctx.stopClean();
    ctx.assertNoSecretsInLog([canary, inputKey]);
  } finally {
    await ctx.stop();
  }
});
