/*
 * The store test-suite: every BOTH() test runs against SQLite (suite store_sqlite,
 * always) and PostgreSQL (suite store_pg, when SP_TEST_PG_URL is set; the
 * integration test tests/integration/store_pg.test.mjs starts a real PG 15).
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/sp_err.h"
#include "store/sp_migrations.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "store_common.h"

#define BOTH(name)                                                                         \
    static void body_##name(tenv_t *e);                                                    \
    static void run_##name(bool pg)                                                        \
    {                                                                                      \
        tenv_t e;                                                                          \
        char err[512];                                                                     \
        tenv_setup(&e, pg);                                                                \
        int rc = tenv_open(&e, err, sizeof(err));                                          \
        cr_assert(rc == 0, "open: %s", err);                                               \
        body_##name(&e);                                                                   \
        tenv_teardown(&e);                                                                 \
    }                                                                                      \
    Test(store_sqlite, name) { run_##name(false); }                         \
    Test(store_pg, name) { run_##name(true); }                              \
    static void body_##name(tenv_t *e)

static const char *INS_USER = "INSERT INTO users(id, email, password_hash, display_name, "
                              "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)";

static void add_user(tenv_t *e, char id[SP_UUID_STRLEN], const char *email)
{
    sp_uuid_v4(id);
    tres_t r = tq(e, INS_USER, json_pack("[sssnI]", id, email, "hash", (json_int_t)sp_wall_ms()));
    cr_assert(r.err == 0, "insert user: %s", sp_err_name(r.err));
    cr_assert(r.changes == 1);
    tres_free(&r);
}

BOTH(crud)
{
    char id[SP_UUID_STRLEN];
    cr_assert(strcmp(sp_store_backend(e->s), e->pg ? "postgres" : "sqlite") == 0);
    add_user(e, id, "a@example.com");
    tres_t r = tq(e, "SELECT id, email, display_name, created_at FROM users WHERE id = $1",
                  json_pack("[s]", id));
    cr_assert(r.err == 0);
    cr_assert(json_array_size(r.rows) == 1);
    json_t *row = json_array_get(r.rows, 0);
    cr_assert_str_eq(json_string_value(json_object_get(row, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(row, "email")), "a@example.com");
    cr_assert(json_is_null(json_object_get(row, "display_name")));
    cr_assert(json_is_integer(json_object_get(row, "created_at")));
    cr_assert(json_integer_value(json_object_get(row, "created_at")) > 1700000000000LL);
    tres_free(&r);

    r = tq(e, "UPDATE users SET display_name = $1 WHERE id = $2 RETURNING display_name",
           json_pack("[ss]", "Ann $1 'quoted'", id));
    cr_assert(r.err == 0 && r.changes == 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.rows, 0),
                                                       "display_name")),
                     "Ann $1 'quoted'");
    tres_free(&r);

    /* placeholders inside literals are not rewritten */
    r = tq(e, "SELECT '$1' AS lit, $1 AS p", json_pack("[s]", "x"));
    cr_assert(r.err == 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.rows, 0), "lit")), "$1");
    tres_free(&r);

    r = tq(e, "DELETE FROM users WHERE id = $1", json_pack("[s]", id));
    cr_assert(r.err == 0 && r.changes == 1);
    tres_free(&r);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM users") == 0);
    cr_assert(sp_store_healthy(e->s));
}

BOTH(unique_violation_is_eexists)
{
    char id[SP_UUID_STRLEN], id2[SP_UUID_STRLEN];
    add_user(e, id, "dup@example.com");
    sp_uuid_v4(id2);
    tres_t r = tq(e, INS_USER, json_pack("[sssnI]", id2, "dup@example.com", "h", (json_int_t)1));
    cr_assert(r.err == SP_EEXISTS, "got %s", sp_err_name(r.err));
    cr_assert(json_is_array(r.rows) && json_array_size(r.rows) == 0);
    tres_free(&r);
    /* upsert with ON CONFLICT works in both */
    r = tq(e,
           "INSERT INTO widget_configs(user_id, widget_type, config, updated_at) "
           "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, widget_type) DO UPDATE "
           "SET config = excluded.config, updated_at = excluded.updated_at",
           json_pack("[ss{si}i]", id, "chat", "size", 1, 1));
    cr_assert(r.err == 0, "%s", sp_err_name(r.err));
    tres_free(&r);
    r = tq(e,
           "INSERT INTO widget_configs(user_id, widget_type, config, updated_at) "
           "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, widget_type) DO UPDATE "
           "SET config = excluded.config, updated_at = excluded.updated_at",
           json_pack("[ss{si}i]", id, "chat", "size", 2, 2));
    cr_assert(r.err == 0);
    tres_free(&r);
    r = tq(e, "SELECT config, updated_at FROM widget_configs WHERE user_id = $1",
           json_pack("[s]", id));
    cr_assert(json_array_size(r.rows) == 1);
    json_t *cfg = json_loads(
        json_string_value(json_object_get(json_array_get(r.rows, 0), "config")), 0, NULL);
    cr_assert(json_integer_value(json_object_get(cfg, "size")) == 2);
    json_decref(cfg);
    tres_free(&r);
}

BOTH(invalid_json_rejected)
{
    char id[SP_UUID_STRLEN];
    add_user(e, id, "j@example.com");
    tres_t r = tq(e,
                  "INSERT INTO widget_configs(user_id, widget_type, config) VALUES ($1, $2, $3)",
                  json_pack("[sss]", id, "chat", "{not json"));
    cr_assert(r.err == SP_EDB, "got %s", sp_err_name(r.err));
    tres_free(&r);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM widget_configs") == 0);
}

BOTH(tx_commits_and_returns_last_rows)
{
    char uid[SP_UUID_STRLEN], sid[SP_UUID_STRLEN];
    sp_uuid_v4(uid);
    sp_uuid_v4(sid);
    const char *sqls[3] = {
        INS_USER,
        "INSERT INTO sessions(id, user_id, created_at, expires_at) VALUES ($1, $2, 1, 2)",
        "SELECT s.id AS sid, u.email FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id = $1",
    };
    json_t *params[3] = { json_pack("[sssnI]", uid, "tx@example.com", "h", (json_int_t)5),
                          json_pack("[ss]", sid, uid), json_pack("[s]", sid) };
    tres_t r = { 0 };
    sp_store_tx(e->s, 3, sqls, params, tres_cb, &r);
    cr_assert(!r.done);
    twait(e, &r.done);
    cr_assert(r.err == 0, "%s", sp_err_name(r.err));
    cr_assert(r.changes == 2);
    cr_assert(json_array_size(r.rows) == 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.rows, 0), "email")),
                     "tx@example.com");
    tres_free(&r);
    /* ON DELETE CASCADE */
    r = tq(e, "DELETE FROM users WHERE id = $1", json_pack("[s]", uid));
    cr_assert(r.err == 0);
    tres_free(&r);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM sessions") == 0);
}

BOTH(tx_rollback_leaves_no_half_written_rows)
{
    char uid[SP_UUID_STRLEN], u2[SP_UUID_STRLEN];
    add_user(e, uid, "taken@example.com");
    sp_uuid_v4(u2);
    const char *sqls[3] = {
        INS_USER,
        "INSERT INTO sessions(id, user_id, created_at, expires_at) VALUES ($1, $2, 1, 2)",
        INS_USER, /* duplicate email -> fails */
    };
    char s1[SP_UUID_STRLEN], u3[SP_UUID_STRLEN];
    sp_uuid_v4(s1);
    sp_uuid_v4(u3);
    json_t *params[3] = { json_pack("[sssnI]", u2, "new@example.com", "h", (json_int_t)5),
                          json_pack("[ss]", s1, u2),
                          json_pack("[sssnI]", u3, "taken@example.com", "h", (json_int_t)5) };
    tres_t r = { 0 };
    sp_store_tx(e->s, 3, sqls, params, tres_cb, &r);
    twait(e, &r.done);
    cr_assert(r.err == SP_EEXISTS, "got %s", sp_err_name(r.err));
    tres_free(&r);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM users") == 1);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM sessions") == 0);
    /* the connection is usable afterwards (no transaction left open) */
    add_user(e, u2, "after@example.com");
    cr_assert(tcount(e, "SELECT count(*) AS n FROM users") == 2);
}

typedef struct {
    int done, ok, exists, other;
} ecount_t;

static void on_enq(int err, json_t *rows, int64_t changes, void *ud)
{
    ecount_t *c = ud;
    cr_assert(json_is_array(rows));
    c->done++;
    if (err == 0 && changes == 1)
        c->ok++;
    else if (err == SP_EEXISTS)
        c->exists++;
    else
        c->other++;
}

static const char *INS_EVENT =
    "INSERT INTO events(id, user_id, stream_id, platform, platform_event_id, type, payload, "
    "seq, created_at) VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8)";

BOTH(enqueue_group_commit)
{
    char uid[SP_UUID_STRLEN];
    add_user(e, uid, "ev@example.com");
    const int N = 2000;
    ecount_t c = { 0 };
    for (int i = 0; i < N; i++) {
        char id[SP_UUID_STRLEN], pe[32];
        sp_uuid_v4(id);
        /* row 700 repeats the platform event id of row 699: de-duplicated by the unique key */
        snprintf(pe, sizeof(pe), "evt-%d", i == 700 ? 699 : i);
        sp_store_enqueue(e->s, INS_EVENT,
                         json_pack("[sssss{si}iI]", id, uid, "twitch", pe, "chat", "n", i, i,
                                   (json_int_t)sp_wall_ms()),
                         on_enq, &c);
    }
    cr_assert(c.done == 0, "enqueue callbacks must not run synchronously");
    while (c.done < N)
        uv_run(&e->loop, UV_RUN_ONCE);
    cr_assert(c.ok == N - 1 && c.exists == 1 && c.other == 0, "ok=%d exists=%d other=%d", c.ok,
              c.exists, c.other);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM events") == N - 1);
    sp_store_stats_t st;
    sp_store_stats(e->s, &st);
    cr_assert(st.batch_rows == (uint64_t)N);
    cr_assert(st.batches >= 2 && st.batches <= (uint64_t)N / 8, "batches=%llu",
              (unsigned long long)st.batches);
    cr_assert(st.batch_max >= SP_STORE_BATCH_ROWS);
    /* a few rows without a callback are committed by the timer */
    for (int i = 0; i < 3; i++) {
        char id[SP_UUID_STRLEN];
        sp_uuid_v4(id);
        sp_store_enqueue(e->s,
                         "INSERT INTO viewer_samples(stream_id, platform, ts, viewers) "
                         "VALUES ($1, $2, $3, $4)",
                         json_pack("[ssII]", id, "youtube", (json_int_t)i, (json_int_t)10), NULL,
                         NULL);
    }
    uint64_t t0 = sp_mono_ms();
    while (tcount(e, "SELECT count(*) AS n FROM viewer_samples") < 3)
        cr_assert(sp_mono_ms() - t0 < 2000, "timer flush did not happen");
}

BOTH(close_flushes_enqueued_rows)
{
    for (int i = 0; i < 300; i++)
        sp_store_enqueue(e->s,
                         "INSERT INTO viewer_samples(stream_id, platform, ts, viewers) "
                         "VALUES ($1, $2, $3, $4)",
                         json_pack("[ssII]", "s1", "twitch", (json_int_t)i, (json_int_t)i), NULL,
                         NULL);
    tenv_close(e);
    char err[512];
    cr_assert(tenv_open(e, err, sizeof(err)) == 0, "%s", err);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM viewer_samples") == 300);
}

BOTH(migrations_idempotent_and_schema_too_new)
{
    cr_assert(tcount(e, "SELECT count(*) AS n FROM schema_migrations") ==
              (int64_t)sp_migrations_latest(sp_store_backend(e->s)));
    tenv_close(e);
    char err[512];
    cr_assert(tenv_open(e, err, sizeof(err)) == 0, "%s", err);
    cr_assert(tcount(e, "SELECT count(*) AS n FROM schema_migrations") ==
              (int64_t)sp_migrations_latest(sp_store_backend(e->s)));
    cr_assert(sp_store_migrate_only(&e->cfg, err, sizeof(err)) == 0, "%s", err);
    tres_t r = tq(e, "INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, $1, 0)",
                  json_pack("[s]", "9999_future"));
    cr_assert(r.err == 0);
    tres_free(&r);
    tenv_close(e);
    int rc = tenv_open(e, err, sizeof(err));
    cr_assert(rc == SP_ESCHEMA, "got %s", sp_err_name(rc));
    cr_assert(strstr(err, "999") != NULL, "%s", err);
    char mine[32];
    snprintf(mine, sizeof(mine), "(%d)", sp_store_schema_version());
    cr_assert(strstr(err, mine) != NULL, "%s", err);
    cr_assert(sp_store_migrate_only(&e->cfg, err, sizeof(err)) == SP_ESCHEMA);
}

BOTH(concurrency)
{
    tres_t r = tq(e, "INSERT INTO stream_state(user_id, state, state_changed_at, updated_at) "
                     "SELECT id, 'offline', 0, 0 FROM users", NULL);
    tres_free(&r);
    char uid[SP_UUID_STRLEN];
    add_user(e, uid, "c@example.com");
    r = tq(e,
           "INSERT INTO streams(id, user_id, state, peak_viewers) VALUES ('s1', $1, 'live', 0)",
           json_pack("[s]", uid));
    cr_assert(r.err == 0);
    tres_free(&r);
    enum { M = 200 };
    static tres_t rs[M];
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < M; i++)
        sp_store_query(e->s, "UPDATE streams SET peak_viewers = peak_viewers + 1 WHERE id = 's1'",
                       NULL, tres_cb, &rs[i]);
    for (int i = 0; i < M; i++) {
        twait(e, &rs[i].done);
        cr_assert(rs[i].err == 0 && rs[i].changes == 1, "%d: %s", i, sp_err_name(rs[i].err));
        tres_free(&rs[i]);
    }
    cr_assert(tcount(e, "SELECT peak_viewers AS n FROM streams WHERE id = 's1'") == M);
}

/* ---- SQLite only ------------------------------------------------------------------- */

static void sq_setup(tenv_t *e)
{
    char err[512];
    tenv_setup(e, false);
    cr_assert(tenv_open(e, err, sizeof(err)) == 0, "%s", err);
}

Test(store_sqlite, fifo_order)
{
    tenv_t e;
    sq_setup(&e);
    char uid[SP_UUID_STRLEN];
    add_user(&e, uid, "o@example.com");
    enum { M = 100 };
    static tres_t rs[M];
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < M; i++)
        sp_store_query(e.s, "UPDATE users SET display_name = $1 WHERE id = $2",
                       json_pack("[ss]", i == M - 1 ? "last" : "x", uid), tres_cb, &rs[i]);
    twait(&e, &rs[M - 1].done);
    for (int i = 0; i < M; i++) {
        cr_assert(rs[i].done, "callbacks run in submission order");
        tres_free(&rs[i]);
    }
    tres_t r = tq(&e, "SELECT display_name FROM users", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.rows, 0),
                                                       "display_name")),
                     "last");
    tres_free(&r);
    tenv_teardown(&e);
}

Test(store_sqlite, placeholder_rewrite)
{
    char out[128];
    sp_store_sql_rewrite_pub("SELECT $1, '$2', \"$3\", $10 -- $4\n, $5", out);
    cr_assert_str_eq(out, "SELECT ?1, '$2', \"$3\", ?10 -- $4\n, ?5");
}

static void tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

Test(store_sqlite, locked_database_is_ebusy_and_loop_keeps_running)
{
    tenv_t e;
    sp_store_set_busy_timeout(300);
    sq_setup(&e);
    sp_store_set_busy_timeout(5000);
    char path[512];
    snprintf(path, sizeof(path), "%s/streampai.db", e.dir);
    sqlite3 *other = NULL;
    cr_assert(sqlite3_open(path, &other) == SQLITE_OK);
    cr_assert(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
    uv_timer_t t;
    int ticks = 0;
    uv_timer_init(&e.loop, &t);
    t.data = &ticks;
    uv_timer_start(&t, tick, 10, 10);
    uint64_t t0 = sp_mono_ms();
    char uid[SP_UUID_STRLEN];
    sp_uuid_v4(uid);
    tres_t r = tq(&e, INS_USER, json_pack("[sssnI]", uid, "l@example.com", "h", (json_int_t)1));
    uint64_t dt = sp_mono_ms() - t0;
    cr_assert(r.err == SP_EBUSY, "got %s", sp_err_name(r.err));
    cr_assert(dt >= 250 && dt < 3000, "dt=%llu", (unsigned long long)dt);
    cr_assert(ticks >= 10, "the loop was blocked: %d ticks in %llu ms", ticks,
              (unsigned long long)dt);
    tres_free(&r);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    r = tq(&e, INS_USER, json_pack("[sssnI]", uid, "l@example.com", "h", (json_int_t)1));
    cr_assert(r.err == 0, "after unlock: %s", sp_err_name(r.err));
    tres_free(&r);
    tenv_teardown(&e);
}

Test(store_sqlite, disk_full_is_ediskfull_and_atomic)
{
    tenv_t e;
    sq_setup(&e);
    char uid[SP_UUID_STRLEN];
    add_user(&e, uid, "f@example.com");
    int64_t pages = tcount(&e, "PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages + 2);
    tres_t r = tq(&e, sql, NULL);
    cr_assert(r.err == 0);
    tres_free(&r);
    static char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    int err = 0, i;
    for (i = 0; i < 200 && !err; i++) {
        char sid[SP_UUID_STRLEN];
        sp_uuid_v4(sid);
        const char *sqls[2] = {
            "INSERT INTO sessions(id, user_id, created_at, expires_at, user_agent) "
            "VALUES ($1, $2, 1, 2, $3)",
            "INSERT INTO sessions(id, user_id, created_at, expires_at, user_agent) "
            "VALUES ($1 || 'b', $2, 1, 2, $3)",
        };
        json_t *p[2] = { json_pack("[sss]", sid, uid, big), json_pack("[sss]", sid, uid, big) };
        r = (tres_t){ 0 };
        sp_store_tx(e.s, 2, sqls, p, tres_cb, &r);
        twait(&e, &r.done);
        err = r.err;
        tres_free(&r);
    }
    cr_assert(err == SP_EDISKFULL, "got %s after %d", sp_err_name(err), i);
    cr_assert(!sp_store_healthy(e.s));
    /* pairs only: the failed transaction left no half */
    cr_assert(tcount(&e, "SELECT count(*) AS n FROM sessions") % 2 == 0);
    /* space comes back -> healthy again */
    r = tq(&e, "PRAGMA max_page_count = 100000", NULL);
    tres_free(&r);
    char u2[SP_UUID_STRLEN];
    add_user(&e, u2, "g@example.com");
    cr_assert(sp_store_healthy(e.s));
    tenv_teardown(&e);
}

Test(store_sqlite, corrupt_file_is_clear_error)
{
    tenv_t e;
    tenv_setup(&e, false);
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/streampai.db", e.dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    int rc = tenv_open(&e, err, sizeof(err));
    cr_assert(rc == SP_ECORRUPT, "got %s: %s", sp_err_name(rc), err);
    cr_assert(strstr(err, path) != NULL && strstr(err, "not a SQLite database") != NULL, "%s",
              err);
    cr_assert(e.s == NULL);
    tenv_teardown(&e);
}

Test(store_sqlite, bad_database_url)
{
    tenv_t e;
    tenv_setup(&e, false);
    char err[512];
    e.cfg.database_url = "mysql://x";
    cr_assert(tenv_open(&e, err, sizeof(err)) == SP_ECONFIG);
    cr_assert(strstr(err, "DATABASE_URL") != NULL);
    snprintf(e.url, sizeof(e.url), "sqlite:%s/custom.db", e.dir);
    e.cfg.database_url = e.url;
    cr_assert(tenv_open(&e, err, sizeof(err)) == 0, "%s", err);
    char path[512];
    snprintf(path, sizeof(path), "%s/custom.db", e.dir);
    cr_assert(access(path, F_OK) == 0);
    tenv_teardown(&e);
}

/* ---- PostgreSQL outage (driven by tests/integration/store_pg.test.mjs) ------------- */

static bool file_exists(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void touch(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f, "%s", p);
    fclose(f);
}

static void spin(tenv_t *e, int ms)
{
    uint64_t t0 = sp_mono_ms();
    while (sp_mono_ms() - t0 < (uint64_t)ms) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

Test(store_pg_outage, fail_fast_then_reconnect)
{
    const char *ctl = getenv("SP_TEST_PG_CTL");
    if (!ctl || !*ctl)
        cr_skip_test("SP_TEST_PG_CTL not set (run by tests/integration/store_pg.test.mjs)");
    tenv_t e;
    char err[512];
    tenv_setup(&e, true);
    e.cfg.db_pool_size = 2;
    cr_assert(tenv_open(&e, err, sizeof(err)) == 0, "%s", err);
    char uid[SP_UUID_STRLEN];
    add_user(&e, uid, "before@example.com");
    cr_assert(sp_store_healthy(e.s));

    touch(ctl, "stop-requested");
    uint64_t t0 = sp_mono_ms();
    while (!file_exists(ctl, "stopped")) {
        cr_assert(sp_mono_ms() - t0 < 30000, "server did not stop");
        spin(&e, 20);
    }
    /* idle connections notice the server went away */
    t0 = sp_mono_ms();
    while (sp_store_healthy(e.s)) {
        cr_assert(sp_mono_ms() - t0 < 5000, "store still claims healthy");
        spin(&e, 10);
    }
    for (int i = 0; i < 3; i++) {
        uint64_t q0 = sp_mono_ms();
        tres_t r = tq(&e, "SELECT count(*) AS n FROM users", NULL);
        uint64_t dt = sp_mono_ms() - q0;
        cr_assert(r.err == SP_EUNAVAIL, "got %s", sp_err_name(r.err));
        cr_assert(dt < 1000, "did not fail fast: %llu ms", (unsigned long long)dt);
        tres_free(&r);
        spin(&e, 100);
    }
    ecount_t c = { 0 };
    sp_store_enqueue(e.s, "INSERT INTO viewer_samples(stream_id, platform, ts, viewers) "
                          "VALUES ('s', 'p', 1, 1)", NULL, on_enq, &c);
    while (c.done < 1)
        uv_run(&e.loop, UV_RUN_ONCE);
    cr_assert(c.other == 1);

    touch(ctl, "start-requested");
    t0 = sp_mono_ms();
    while (!file_exists(ctl, "started")) {
        cr_assert(sp_mono_ms() - t0 < 30000, "server did not start");
        spin(&e, 20);
    }
    t0 = sp_mono_ms();
    while (!sp_store_healthy(e.s)) {
        cr_assert(sp_mono_ms() - t0 < 10000, "did not reconnect");
        spin(&e, 20);
    }
    cr_log_info("reconnected %llu ms after the server was back",
                (unsigned long long)(sp_mono_ms() - t0));
    cr_assert(tcount(&e, "SELECT count(*) AS n FROM users") == 1);
    char u2[SP_UUID_STRLEN];
    add_user(&e, u2, "after@example.com");
    cr_assert(tcount(&e, "SELECT count(*) AS n FROM users") == 2);
    tenv_teardown(&e);
}

Test(store_sqlite, postgres_unreachable_at_open_is_eunavail)
{
    tenv_t e;
    tenv_setup(&e, false);
    char err[512];
    e.cfg.database_url = "postgres://postgres@127.0.0.1:1/streampai";
    uint64_t t0 = sp_mono_ms();
    int rc = tenv_open(&e, err, sizeof(err));
    cr_assert(rc == SP_EUNAVAIL, "got %s: %s", sp_err_name(rc), err);
    cr_assert(sp_mono_ms() - t0 < 3000);
    cr_assert(strstr(err, "postgres unavailable") != NULL, "%s", err);
    tenv_teardown(&e);
}
