// Starts a throwaway PostgreSQL 15 (tests/lib/harness.mjs) and runs the store benchmark
// against it and SQLite. Used by bench/store.sh when BENCH_PG_URL is not set.
import { spawnSync } from 'node:child_process';
import { startPostgres } from '../tests/lib/harness.mjs';

const pg = await startPostgres();
let status = 1;
try {
  const r = spawnSync('build/bench/store_bench', process.argv.slice(2),
    { env: { ...process.env, BENCH_PG_URL: pg.url }, stdio: 'inherit' });
  status = r.status ?? 1;
} finally {
  pg.stop();
}
process.exit(status);
