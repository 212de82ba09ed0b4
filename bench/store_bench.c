/*
 * store_bench: events insert throughput with group commit (sp_store_enqueue),
 * the batch sizes, the enqueue->commit latency distribution and the event-loop
 * lag (a 1 ms timer) during the run. SQLite always; PostgreSQL when
 * BENCH_PG_URL is set. Built by bench/store.sh against build/release objects.
 *
 *   bench/store.sh [rows]      (default 200000)
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/sp_config.h"
#include "core/sp_log.h"
#include "store/sp_store.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"

typedef struct {
    uint64_t t_enq;
} row_t;

static uint64_t *lat_us;
static size_t nlat, done_rows, failed;
static uint64_t *lag_us;
static size_t nlag, caplag;
static uint64_t last_tick;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

static void on_row(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    row_t *r = ud;
    if (err)
        failed++;
    lat_us[nlat++] = sp_mono_us() - r->t_enq;
    done_rows++;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = sp_mono_us();
    if (last_tick && nlag < caplag)
        lag_us[nlag++] = now > last_tick + 1000 ? now - last_tick - 1000 : 0;
    last_tick = now;
}

typedef struct {
    int done;
} flag_t;

static void on_q(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    ((flag_t *)ud)->done = err ? -1 : 1;
}

static void on_closed(void *ud)
{
    ((flag_t *)ud)->done = 1;
}


/* Peer: the same inserts as individual acknowledged writes (sp_store_query, one
   synchronous=FULL commit each), 64 in flight. */
static size_t peer_done, peer_failed;
static void on_peer(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    (void)ud;
    if (err)
        peer_failed++;
    peer_done++;
}

static double run_peer(const char *label, sp_config_t *cfg, size_t N)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_store_t *s = NULL;
    char err[512];
    if (sp_store_open(&loop, cfg, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: open failed: %s\n", label, err);
        return 0;
    }
    char uid[SP_UUID_STRLEN];
    sp_uuid_v4(uid);
    flag_t f = { 0 };
    sp_store_query(s,
                   "INSERT INTO users(id, email, password_hash, created_at, updated_at) "
                   "VALUES ($1, $2, 'x', 0, 0)",
                   json_pack("[ss]", uid, uid), on_q, &f);
    while (!f.done)
        uv_run(&loop, UV_RUN_ONCE);
    peer_done = peer_failed = 0;
    size_t sent = 0;
    uint64_t t0 = sp_mono_us();
    while (peer_done < N) {
        while (sent < N && sent - peer_done < 64) {
            char id[SP_UUID_STRLEN], pe[32];
            sp_uuid_v4(id);
            snprintf(pe, sizeof(pe), "p-%zu", sent);
            sp_store_query(s,
                           "INSERT INTO events(id, user_id, platform, platform_event_id, type, "
                           "payload, seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                           json_pack("[sssss{ss}II]", id, uid, "twitch", pe, "chat", "text",
                                     "hello world", (json_int_t)sent, (json_int_t)sp_wall_ms()),
                           on_peer, NULL);
            sent++;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    double rate = (double)N * 1e6 / (double)(sp_mono_us() - t0);
    f.done = 0;
    sp_store_close(s, on_closed, &f);
    while (!f.done)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("%s peer (one commit per row, 64 in flight): %zu rows = %.0f rows/s; failed=%zu\n",
           label, N, rate, peer_failed);
    return rate;
}

static double last_rate;
static int run(const char *label, sp_config_t *cfg, size_t N, size_t rate_chunk)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_store_t *s = NULL;
    char err[512];
    if (sp_store_open(&loop, cfg, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: open failed: %s\n", label, err);
        return 1;
    }
    char uid[SP_UUID_STRLEN];
    sp_uuid_v4(uid);
    flag_t f = { 0 };
    sp_store_query(s,
                   "INSERT INTO users(id, email, password_hash, created_at, updated_at) "
                   "VALUES ($1, $2, 'x', 0, 0)",
                   json_pack("[ss]", uid, uid), on_q, &f);
    while (!f.done)
        uv_run(&loop, UV_RUN_ONCE);
    row_t *rows = calloc(N, sizeof(row_t));
    lat_us = calloc(N, sizeof(uint64_t));
    caplag = 1000000;
    lag_us = calloc(caplag, sizeof(uint64_t));
    nlat = done_rows = failed = nlag = 0;
    last_tick = 0;
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 1, 1);
    uint64_t t0 = sp_mono_us();
    size_t sent = 0;
    while (done_rows < N) {
        /* producer: a burst of rate_chunk events per loop turn, like a busy chat */
        sp_store_stats_t qs;
        sp_store_stats(s, &qs);
        /* back-pressure like a real producer: keep at most two full batches waiting */
        size_t room = qs.queued < 2 * SP_STORE_BATCH_MAX ? rate_chunk : 0;
        for (size_t k = 0; k < room && sent < N; k++, sent++) {
            char id[SP_UUID_STRLEN], pe[32];
            sp_uuid_v4(id);
            snprintf(pe, sizeof(pe), "b-%zu", sent);
            rows[sent].t_enq = sp_mono_us();
            sp_store_enqueue(s,
                             "INSERT INTO events(id, user_id, platform, platform_event_id, type, "
                             "payload, seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                             json_pack("[sssss{ss}II]", id, uid, "twitch", pe, "chat", "text",
                                       "hello world", (json_int_t)sent, (json_int_t)sp_wall_ms()),
                             on_row, &rows[sent]);
        }
        uv_run(&loop, sent < N && room ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    }
    uint64_t dt = sp_mono_us() - t0;
    sp_store_stats_t st;
    sp_store_stats(s, &st);
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    f.done = 0;
    sp_store_close(s, on_closed, &f);
    while (!f.done)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    qsort(lat_us, nlat, sizeof(uint64_t), cmp_u64);
    qsort(lag_us, nlag, sizeof(uint64_t), cmp_u64);
    printf("%s: %zu events in %.3f s = %.0f events/s; failed=%zu; batches=%llu "
           "avg_batch=%.0f max_batch=%llu; commit latency us p50=%llu p90=%llu p99=%llu "
           "max=%llu; loop lag us p50=%llu p99=%llu max=%llu\n",
           label, N, (double)dt / 1e6, (double)N * 1e6 / (double)dt, failed,
           (unsigned long long)st.batches,
           st.batches ? (double)st.batch_rows / (double)st.batches : 0.0,
           (unsigned long long)st.batch_max, (unsigned long long)pct(lat_us, nlat, 0.5),
           (unsigned long long)pct(lat_us, nlat, 0.9), (unsigned long long)pct(lat_us, nlat, 0.99),
           (unsigned long long)pct(lat_us, nlat, 1.0), (unsigned long long)pct(lag_us, nlag, 0.5),
           (unsigned long long)pct(lag_us, nlag, 0.99), (unsigned long long)pct(lag_us, nlag, 1.0));
    last_rate = (double)N * 1e6 / (double)dt;
    free(rows);
    free(lat_us);
    free(lag_us);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    size_t N = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 200000;
    sp_log_open(SP_LOG_WARN, NULL);
    char dir[] = "/tmp/sp-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    sp_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = SP_ENV_TEST;
    cfg.data_dir = dir;
    cfg.database_url = "";
    cfg.db_pool_size = 4;
    int rc = run("sqlite", &cfg, N, 64);
    double g = last_rate;
    double p = run_peer("sqlite", &cfg, N / 20 ? N / 20 : 1);
    if (p > 0)
        printf("sqlite: group commit / per-row commit = %.1fx\n", g / p);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    const char *pg = getenv("BENCH_PG_URL");
    if (pg && *pg) {
        cfg.database_url = (char *)pg;
        rc |= run("postgres", &cfg, N, 64);
        g = last_rate;
        p = run_peer("postgres", &cfg, N / 20 ? N / 20 : 1);
        if (p > 0)
            printf("postgres: group commit / per-row commit = %.1fx\n", g / p);
    }
    return rc;
}
