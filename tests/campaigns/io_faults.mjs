// make chaos (b): I/O fault injection. A release `streampai serve` runs under the LD_PRELOAD shim
// build/campaigns/sp_iofault.so (tests/campaigns/iofault.c): writes and fsyncs on files under
// its DATA_DIR fail on command (ENOSPC = disk full, EIO on write+fsync, EIO on fsync only,
// EROFS = a read-only remount).
// Per cycle and mode: writes without a fault must be acknowledged; under the fault every
// write (destination create, registration) must be either acknowledged (201) or refused with 503,
// nothing else; after the fault clears the server must accept writes again by itself (time
// printed). At the end the server is SIGKILLed, the database passes PRAGMA integrity_check and,
// restarted without the shim, holds every acknowledged write and none of the refused ones.
// Then PostgreSQL (a harness-started PG 15, DATABASE_URL) is SIGKILLed (postmaster and its
// children, by pid) while writers run, restarted, and the same checks are made (a 503 whose row
// did commit is counted as "ambiguous": the connection died between COMMIT and its answer).
// One summary line; exit 1 on any violation.
// Env: IO_CYCLES (2), IO_WRITES (24 per fault window), PG_KILLS (3), IO_SKIP_PG.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startFakeCloudflare } from '../fakes/cloudflare.mjs';
import { startPostgres } from '../lib/harness.mjs';
import { ROOT, spawnSp, rq, waitHealthy, registerUser, freePort, sleep, tmpDir, sqlite, sqliteRows, q } from './lib.mjs';

const CYCLES = Number(process.env.IO_CYCLES || 2);
const WRITES = Number(process.env.IO_WRITES || 24);
const PG_KILLS = Number(process.env.PG_KILLS || 3);
const SHIM = path.join(ROOT, 'build/campaigns/sp_iofault.so');
const log = (...a) => console.error('[io-faults]', ...a);
const violations = [];
const V = (m) => { violations.push(m); log('VIOLATION', m); };
const st = { acked: 0, refused: 0, noAnswer: 0, faults: 0, recoverMs: [], ambiguous: 0, pgKills: 0 };

if (!fs.existsSync(SHIM)) { console.log('io-faults: build/campaigns/sp_iofault.so missing (run via make chaos) violations=1'); process.exit(2); }

const cf = await startFakeCloudflare({});
function envFor(dir, port, extra = {}) {
  return {
    STREAMPAI_ENV: 'test', LOG_LEVEL: 'info', DATA_DIR: dir, HTTP_LISTEN: `127.0.0.1:${port}`,
    PUBLIC_URL: `http://127.0.0.1:${port}`, WEB_DIR: path.join(ROOT, 'web'), MEDIA_BACKEND: 'cloudflare',
    CLOUDFLARE_API_BASE_URL: cf.url, CLOUDFLARE_ACCOUNT_ID: cf.accountId, CLOUDFLARE_API_TOKEN: cf.token,
    CLOUDFLARE_WEBHOOK_SECRET: 'io-webhook-secret-0001', ALLOW_PRIVATE_DESTINATIONS: 'true',
    MAX_PLATFORMS_PER_USER: '100', ...extra,
  };
}

let seq = 0;
// One write: a destination create for user u. Returns {name, status}.
async function write(port, u, tag) {
  const name = `${tag}-${++seq}`;
  const r = await rq(port, 'POST', '/api/destinations', { platform: 'custom', name, url: 'rtmp://127.0.0.1:1935/live', stream_key: `k-${name}` },
    { authorization: `Bearer ${u.token}` }, { timeout: 15000 });
  return { name, user: u, status: r.status, code: r.json?.error?.code, err: r.err };
}
function classify(res, where, book) {
  for (const r of res) {
    if (r.status === 201) { st.acked++; book.acked.push(r); } else if (r.status === 503) { st.refused++; book.refused.push(r); } else if (r.status === 0) { st.noAnswer++; book.doubt.push(r); } else {
      V(`${where}: write answered ${r.status} ${r.code || ''} (only 201 or 503 allowed)`);
      book.refused.push(r);
    }
  }
}
async function untilWrite(port, u, tag, timeout) {
  const t0 = Date.now();
  for (let n = 1; ; n++) {
    const r = await write(port, u, tag);
    if (r.status === 201) return { ms: Date.now() - t0, r };
    if (Date.now() - t0 > timeout && n * 100 > timeout) return { ms: -1, r }; // pause-proof
    await sleep(100);
  }
}

// ---- SQLite under the shim -----------------------------------------------------------------
async function sqlitePart() {
  const dir = fs.realpathSync(tmpDir('sp-io-'));
  const ctl = path.join(dir, '..', `${path.basename(dir)}.ctl`);
  fs.writeFileSync(ctl, 'off');
  const port = await freePort();
  const logFile = `${dir}.serve.log`;
  const env = envFor(dir, port, { SP_IOFAULT_CTL: ctl, SP_IOFAULT_PATH: dir });
  let srv = spawnSp(['serve'], env, logFile, { preload: SHIM });
  await waitHealthy(port, srv);
  const users = [];
  for (let i = 0; i < 4; i++) users.push(await registerUser(port, 'io'));
  if (users.some((u) => !u.token)) throw new Error('could not register the io users');
  const book = { acked: [], refused: [], doubt: [], regsAcked: [], regsRefused: [] };
  for (let c = 1; c <= CYCLES; c++) {
    for (const mode of ['enospc', 'eio', 'fsync', 'erofs']) {
      const where = `sqlite cycle ${c} ${mode}`;
      const base = await Promise.all(users.map((u) => write(port, u, `ok${mode}`)));
      for (const b of base) if (b.status !== 201) V(`${where}: write without a fault answered ${b.status} ${b.code || b.err || ''}`);
      classify(base.filter((b) => b.status === 201), where, book);
      fs.writeFileSync(ctl, mode);
      await sleep(30);
      const res = [];
      const regs = [];
      await Promise.all([0, 1, 2, 3].map(async (k) => {
        for (let i = k; i < WRITES; i += 4) res.push(await write(port, users[k], `f${mode}`));
      }).concat([(async () => { regs.push(await registerUser(port, `io${mode}`)); })()]));
      if (srv.exitCode !== null || srv.signalCode !== null) {
        V(`${where}: the server died under the fault (${srv.exitCode}/${srv.signalCode})`);
        fs.writeFileSync(ctl, 'off');
        srv = spawnSp(['serve'], env, logFile, { preload: SHIM });
        await waitHealthy(port, srv);
      }
      classify(res, where, book);
      for (const r of regs) {
        if (r.status === 201) book.regsAcked.push(r.email); else if (r.status === 503) book.regsRefused.push(r.email);
        else if (r.status) V(`${where}: registration answered ${r.status} (only 201 or 503 allowed)`);
      }
      const ready = await rq(port, 'GET', '/readyz');
      fs.writeFileSync(ctl, 'off');
      const rec = await untilWrite(port, users[c % 4], `rec${mode}`, 30000);
      if (rec.ms < 0) V(`${where}: no write accepted 30 s after the fault cleared (last ${rec.r.status} ${rec.r.code || ''})`);
      else { st.recoverMs.push(rec.ms); classify([rec.r], where, book); }
      const refused = res.filter((r) => r.status === 503).length;
      log(`${where}: ${res.length} writes under the fault: ${res.length - refused} acked, ${refused} refused (503); readyz under fault ${ready.status}; recovered in ${rec.ms} ms`);
      // live view: acknowledged present, refused absent
      for (const u of users) {
        const l = await rq(port, 'GET', '/api/destinations', undefined, { authorization: `Bearer ${u.token}` });
        const list = l.json?.destinations || l.json?.data || l.json || [];
        const names = new Set((Array.isArray(list) ? list : []).map((d) => d.name));
        for (const a of book.acked.filter((x) => x.user === u)) if (!names.has(a.name)) V(`${where}: acknowledged ${a.name} missing from GET /api/destinations`);
        for (const a of book.refused.filter((x) => x.user === u)) if (names.has(a.name)) V(`${where}: refused (503) ${a.name} is present`);
      }
    }
  }
  st.faults += (fs.readFileSync(logFile, 'utf8').match(/^iofault: /gm) || []).length;
  await srv.kill9();
  const db = path.join(dir, 'streampai.db');
  const ic = sqlite(db, 'PRAGMA integrity_check');
  if (!/"integrity_check":"ok"/.test(ic)) V(`sqlite integrity_check after SIGKILL: ${ic.slice(0, 200)}`);
  const names = new Set(sqliteRows(db, 'SELECT name FROM destinations').map((r) => r.name));
  for (const a of book.acked) if (!names.has(a.name)) V(`sqlite: acknowledged ${a.name} lost after SIGKILL`);
  for (const a of book.refused) if (names.has(a.name)) V(`sqlite: refused (503) ${a.name} present after SIGKILL`);
  for (const e of book.regsAcked) if (!sqliteRows(db, `SELECT 1 AS x FROM users WHERE email=${q(e)}`).length) V(`sqlite: acknowledged registration ${e} lost`);
  for (const e of book.regsRefused) if (sqliteRows(db, `SELECT 1 AS x FROM users WHERE email=${q(e)}`).length) V(`sqlite: refused registration ${e} present`);
  // and the server starts on it without the shim
  const plain = spawnSp(['serve'], envFor(dir, port), logFile);
  await waitHealthy(port, plain);
  const r = await rq(port, 'GET', '/api/destinations', undefined, { authorization: `Bearer ${users[0].token}` });
  if (r.status !== 200) V(`sqlite: after restart GET /api/destinations ${r.status}`);
  const t = await plain.term();
  if (t.code !== 0) V(`sqlite: serve exit ${t.code}/${t.sig} on SIGTERM`);
  log(`sqlite: ${book.acked.length} acknowledged, ${book.refused.length} refused, ${st.faults} injected faults (iofault lines)`);
  return { dir, logFile };
}

// ---- PostgreSQL killed mid-transaction ---------------------------------------------------
function children(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}
function killPg(pg) {
  const pid = Number(fs.readFileSync(path.join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const all = [pid, ...children(pid)];
  for (const p of all) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  return all;
}
// pg_ctl start once every killed process is gone (a live backend keeps the shared memory)
async function startPgAgain(pg, killed) {
  for (let i = 0; i < 100 && killed.some((p) => fs.existsSync(`/proc/${p}`)); i++) await sleep(50);
  for (let i = 0; ; i++) {
    try { pg.start(); return; } catch (e) { if (i >= 5) throw e; await sleep(500); }
  }
}
function psql(pg, sql) {
  return execFileSync('runuser', ['-u', 'postgres', '--', '/usr/bin/psql', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres',
    '-d', 'streampai', '-At', '-c', sql], { encoding: 'utf8' });
}

async function pgPart() {
  const pg = await startPostgres();
  const dir = tmpDir('sp-io-pg-');
  const port = await freePort();
  const logFile = `${dir}.serve.log`;
  const srv = spawnSp(['serve'], envFor(dir, port, { DATABASE_URL: pg.url }), logFile);
  try {
    await waitHealthy(port, srv);
    const book = { acked: [], refused: [], doubt: [] };
    for (let k = 1; k <= PG_KILLS; k++) {
      const where = `pg kill ${k}`;
      const users = [];
      for (let i = 0; i < 4; i++) users.push(await registerUser(port, 'iopg'));
      if (users.some((u) => !u.token)) throw new Error('could not register the pg users');
      let stop = false;
      const res = [];
      const writers = users.map(async (u) => {
        for (let n = 0; !stop && n < 90; n++) { res.push(await write(port, u, 'pg')); await sleep(15); }
      });
      await sleep(300 + Math.floor(Math.random() * 700));
      const killed = killPg(pg);
      st.pgKills++;
      await sleep(1000);
      stop = true;
      await Promise.all(writers);
      classify(res, where, book);
      await startPgAgain(pg, killed);
      const rec = await untilWrite(port, users[0], 'pgrec', 60000);
      if (rec.ms < 0) V(`${where}: no write accepted 60 s after PostgreSQL came back (last ${rec.r.status} ${rec.r.code || ''})`);
      else { st.recoverMs.push(rec.ms); classify([rec.r], where, book); }
      const refused = res.filter((r) => r.status === 503).length;
      log(`${where}: postmaster + ${killed.length - 1} children SIGKILLed; ${res.length} writes: ${res.filter((r) => r.status === 201).length} acked, ${refused} refused (503); recovered ${rec.ms} ms after the restart`);
    }
    const names = new Set(psql(pg, 'SELECT name FROM destinations').split('\n').filter(Boolean));
    for (const a of book.acked) if (!names.has(a.name)) V(`pg: acknowledged ${a.name} missing`);
    const amb = book.refused.filter((a) => names.has(a.name));
    st.ambiguous += amb.length;
    const t = await srv.term();
    if (t.code !== 0) V(`pg: serve exit ${t.code}/${t.sig} on SIGTERM`);
    log(`pg: ${book.acked.length} acknowledged, ${book.refused.length} refused (${amb.length} of them committed: ambiguous)`);
  } finally {
    await srv.kill9();
    pg.stop();
  }
}

const t0 = Date.now();
let code = 0;
try {
  await sqlitePart();
  if (!process.env.IO_SKIP_PG) await pgPart();
} catch (e) {
  log('aborted:', e.stack || e);
  violations.push(`aborted: ${e.message}`);
  code = 2;
} finally {
  await cf.stop();
}
const rec = st.recoverMs.length ? Math.max(...st.recoverMs) : -1;
console.log(`io-faults: modes=enospc,eio,fsync,erofs x${CYCLES} injected=${st.faults} pg_kills=${st.pgKills} acked=${st.acked} refused_503=${st.refused} ` +
  `no_answer=${st.noAnswer} ambiguous_pg=${st.ambiguous} max_recovery=${rec}ms violations=${violations.length} in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
process.exit(code || (violations.length ? 1 : 0));
