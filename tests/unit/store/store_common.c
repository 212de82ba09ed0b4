/* Helpers shared by the store unit tests. */
#include "store_common.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sp_uuid.h"

static void pg_admin(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "pg admin connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void tenv_setup(tenv_t *e, bool pg)
{
    memset(e, 0, sizeof(*e));
    cr_assert(uv_loop_init(&e->loop) == 0);
    snprintf(e->dir, sizeof(e->dir), "/tmp/sp-store-XXXXXX");
    cr_assert(mkdtemp(e->dir) != NULL);
    e->cfg.env = SP_ENV_TEST;
    e->cfg.data_dir = e->dir;
    e->cfg.db_pool_size = 4;
    e->pg = pg;
    if (pg) {
        const char *base = getenv("SP_TEST_PG_URL");
        if (!base || !*base)
            cr_skip_test("SP_TEST_PG_URL not set");
        char id[SP_UUID_STRLEN];
        sp_uuid_v4(id);
        snprintf(e->pgdb, sizeof(e->pgdb), "sp_t_%.8s", id);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", e->pgdb);
        pg_admin(base, sql);
        const char *slash = strrchr(base, '/');
        cr_assert(slash && slash > base + 12, "SP_TEST_PG_URL needs a /dbname");
        snprintf(e->url, sizeof(e->url), "%.*s/%s", (int)(slash - base), base, e->pgdb);
    } else {
        e->url[0] = '\0';
    }
    e->cfg.database_url = e->url;
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

void tenv_close(tenv_t *e)
{
    if (!e->s)
        return;
    int done = 0;
    sp_store_close(e->s, on_closed, &done);
    while (!done)
        uv_run(&e->loop, UV_RUN_ONCE);
    e->s = NULL;
}

int tenv_open(tenv_t *e, char *err, size_t errlen)
{
    int rc = sp_store_open(&e->loop, &e->cfg, &e->s, err, errlen);
    if (rc != 0)
        uv_run(&e->loop, UV_RUN_NOWAIT); /* release the handles of the failed open */
    return rc;
}

void tenv_teardown(tenv_t *e)
{
    tenv_close(e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    cr_expect(uv_loop_close(&e->loop) == 0, "handles left open");
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    cr_expect(system(cmd) == 0);
    if (e->pgdb[0]) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", e->pgdb);
        pg_admin(getenv("SP_TEST_PG_URL"), sql);
    }
}

void tres_cb(int err, json_t *rows, int64_t changes, void *ud)
{
    tres_t *r = ud;
    r->done = 1;
    r->err = err;
    r->rows = json_incref(rows);
    r->changes = changes;
}

void twait(tenv_t *e, int *flag)
{
    while (!*flag)
        uv_run(&e->loop, UV_RUN_ONCE);
}

tres_t tq(tenv_t *e, const char *sql, json_t *params)
{
    tres_t r = { 0 };
    sp_store_query(e->s, sql, params, tres_cb, &r);
    cr_assert(!r.done, "callback called synchronously");
    twait(e, &r.done);
    return r;
}

void tres_free(tres_t *r)
{
    json_decref(r->rows);
    r->rows = NULL;
}

int64_t tcount(tenv_t *e, const char *sql)
{
    tres_t r = tq(e, sql, NULL);
    cr_assert(r.err == 0, "%s: %d", sql, r.err);
    cr_assert(json_array_size(r.rows) == 1);
    json_t *o = json_array_get(r.rows, 0);
    const char *k;
    json_t *v;
    int64_t n = -1;
    json_object_foreach(o, k, v) { n = json_integer_value(v); }
    tres_free(&r);
    return n;
}
