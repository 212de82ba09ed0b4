// Runs the store unit suite against a real PostgreSQL 15 (started here in a temp dir),
// then the outage test: the server is stopped mid-run (queries fail fast with
// SP_EUNAVAIL) and started again (the pool reconnects).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { startPostgres } from '../lib/harness.mjs';

const bin = 'build/asan/unit_tests';

function run(filter, env) {
  const r = spawnSync(bin, ['--filter', filter, '--jobs', '2'], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240000,
  });
  const out = (r.stdout || '') + (r.stderr || '');
  const m = out.match(/Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)/);
  return { status: r.status, out, m };
}

test('store suite against PostgreSQL 15', { timeout: 300000 }, async () => {
  assert.ok(fs.existsSync(bin), 'build/asan/unit_tests missing: run make asan');
  const pg = await startPostgres();
  try {
    const r = run('store_pg/*', { SP_TEST_PG_URL: pg.url });
    assert.ok(r.m, r.out);
    assert.equal(Number(r.m[3]) + Number(r.m[4]), 0, r.out);
    assert.ok(Number(r.m[2]) >= 9, `expected the pg suite to run, got ${r.m[0]}\n${r.out}`);
    assert.equal(r.status, 0, r.out);
  } finally {
    pg.stop();
  }
});

test('connected platform accounts against PostgreSQL 15', { timeout: 300000 }, async () => {
  assert.ok(fs.existsSync(bin), 'build/asan/unit_tests missing: run make asan');
  const pg = await startPostgres();
  try {
    const r = run('accounts_pg/*', { SP_TEST_PG_URL: pg.url });
    assert.ok(r.m, r.out);
    assert.equal(Number(r.m[3]) + Number(r.m[4]), 0, r.out);
    assert.ok(Number(r.m[2]) >= 10, `expected the accounts pg suite to run, got ${r.m[0]}\n${r.out}`);
    assert.equal(r.status, 0, r.out);
  } finally {
    pg.stop();
  }
});

test('PostgreSQL outage: fail fast, reconnect after restart', { timeout: 300000 }, async () => {
  const pg = await startPostgres();
  // the C test stops and restarts this server through these files
  const ctl = `${pg.dir}/ctl`;
  fs.mkdirSync(ctl);
  fs.chmodSync(ctl, 0o777);
  const stopCmd = `touch ${ctl}/stop-requested`;
  try {
    // watcher: when the C test asks, stop or start the server (as the postgres user)
    let stopped = false;
    const iv = setInterval(() => {
      if (!stopped && fs.existsSync(`${ctl}/stop-requested`)) {
        stopped = true; pg.stop(); fs.writeFileSync(`${ctl}/stopped`, '1');
      }
      if (stopped && fs.existsSync(`${ctl}/start-requested`)) {
        fs.unlinkSync(`${ctl}/start-requested`); pg.start(); fs.writeFileSync(`${ctl}/started`, '1');
      }
    }, 50);
    const r = await new Promise((resolve) => {
      import('node:child_process').then(({ spawn }) => {
        const p = spawn(bin, ['--filter', 'store_pg_outage/*', '--jobs', '1'], {
          env: { ...process.env, SP_TEST_PG_URL: pg.url, SP_TEST_PG_CTL: ctl }, stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { out += d; });
        p.on('exit', (status) => resolve({ status, out }));
      });
    });
    clearInterval(iv);
    const m = r.out.match(/Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)/);
    assert.ok(m, r.out);
    assert.equal(Number(m[2]), 1, r.out);
    assert.equal(r.status, 0, r.out);
    void stopCmd;
  } finally {
    pg.stop();
  }
});
