// The runner itself: scripts/test.sh --files on the throwaway files in tests/meta/fixtures
// (three fail on purpose) must count every failure, report skips, end with exactly
// "N passed, N failed, N skipped" and exit non-zero on any failure or when nothing ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, tmpDir } from '../lib/harness.mjs';

const FIX = path.join(ROOT, 'tests/meta/fixtures');

// Runs scripts/test.sh --files ...paths; resolves to {status, out, last, counts}.
function runner(...paths) {
  const env = { ...process.env, TEST_RESULTS_DIR: tmpDir('sp-meta-results-') };
  // set by `node --test` for its children: a nested `node --test` must not inherit it
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(ROOT, 'scripts/test.sh'), '--files', ...paths], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 240000);
    p.on('error', reject);
    p.on('close', (status) => {
      clearTimeout(timer);
      const last = out.trimEnd().split('\n').at(-1);
      const m = last.match(/^(\d+) passed, (\d+) failed, (\d+) skipped$/);
      resolve({ status, out, last, counts: m && { passed: +m[1], failed: +m[2], skipped: +m[3] } });
    });
  });
}

function assertFailed(r) {
  assert.ok(r.counts, `the last line is not "N passed, N failed, N skipped": ${JSON.stringify(r.last)}\n${r.out}`);
  assert.ok(r.counts.failed >= 1, `no failure counted: ${r.last}\n${r.out}`);
  assert.notEqual(r.status, 0, `exit status 0 with a failure:\n${r.out}`);
}

test('a passing file: exit 0, "1 passed, 0 failed, 0 skipped"', async () => {
  const r = await runner(path.join(FIX, 'passing.mjs'));
  assert.equal(r.last, '1 passed, 0 failed, 0 skipped', r.out);
  assert.equal(r.status, 0, r.out);
});

test('skipped and todo tests are counted as skipped, not failed', async () => {
  const r = await runner(path.join(FIX, 'skipped.mjs'));
  assert.equal(r.last, '1 passed, 0 failed, 2 skipped', r.out);
  assert.equal(r.status, 0, r.out);
});

test('a failing after() hook inside describe() fails the run', async () => {
  const r = await runner(path.join(FIX, 'failing_after_hook.mjs'));
  assertFailed(r);
  assert.match(r.out, /META: deliberately failing after\(\) hook/);
});

test('a leaking server (real ASan binary, LeakSanitizer report) fails the run', async () => {
  const r = await runner(path.join(FIX, 'leaking_server.mjs'));
  assertFailed(r);
  assert.match(r.out, /LeakSanitizer/, 'failed for the leak, not for another reason');
});

test('a secret in the server log fails the run', async () => {
  const r = await runner(path.join(FIX, 'secret_in_log.mjs'));
  assertFailed(r);
  assert.match(r.out, /found in the server log/, 'failed for the secret, not for another reason');
});

test('the failures add up when the files run together', async () => {
  const r = await runner(...['passing.mjs', 'failing_after_hook.mjs', 'secret_in_log.mjs'].map((f) => path.join(FIX, f)));
  assertFailed(r);
  assert.equal(r.counts.failed, 2, r.out);
  assert.equal(r.counts.passed, 2, r.out); // passing.mjs and the test inside the failing describe
});

test('a suite with no test files fails the run', async () => {
  const r = await runner(tmpDir('sp-meta-empty-'));
  assert.equal(r.last, '0 passed, 1 failed, 0 skipped', r.out);
  assert.notEqual(r.status, 0);
  assert.match(r.out, /ran nothing/);
});

test('a unit test that leaks (Criterion passes it) fails the run: the LeakSanitizer report counts', async () => {
  const dir = tmpDir('sp-meta-unit-');
  const bin = path.join(dir, 'leaking_unit');
  const cc = spawnSync('cc', ['-O0', '-g', '-fsanitize=address,undefined', '-fno-omit-frame-pointer',
    path.join(FIX, 'leaking_unit.c'), '-o', bin, '-lcriterion'], { encoding: 'utf8' });
  assert.equal(cc.status, 0, `cannot build the throwaway unit binary:\n${cc.stderr}`);
  const env = { ...process.env, TEST_RESULTS_DIR: tmpDir('sp-meta-results-'), UNIT_TESTS_BIN: bin,
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0' };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/test.sh'), 'unit'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120000 });
  const out = (r.stdout || '') + (r.stderr || '');
  const last = out.trimEnd().split('\n').at(-1);
  assert.match(out, /Synthesis: Tested: 2 \| Passing: 2/, 'Criterion itself passes both tests');
  assert.match(out, /LeakSanitizer/, 'failed for the leak');
  assert.match(last, /^1 passed, 1 failed, 0 skipped$/, out);
  assert.notEqual(r.status, 0, out);
});
