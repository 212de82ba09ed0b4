/*
 * sp_store: the common layer of the store (backend choice, request lifetime,
 * group commit of enqueued writes, close). See sp_store.h / sp_store_int.h.
 */
#include "store/sp_store.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "store/sp_migrations.h"
#include "store/sp_store_int.h"

static void maybe_finish_close(sp_store_t *s);
static void on_timer(uv_timer_t *t);
static void flush_batch(sp_store_t *s);

/* ---- requests ----------------------------------------------------------------- */

static void item_cleanup(sp_item_t *it)
{
    sp_free(it->sql);
    json_decref(it->params);
    it->sql = NULL;
    it->params = NULL;
}

static void req_free(sp_req_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        item_cleanup(&r->items[i]);
    sp_free(r->items);
    json_decref(r->rows);
    sp_free(r);
}

static sp_req_t *req_new(sp_req_kind_t kind, size_t n)
{
    sp_req_t *r = sp_calloc(1, sizeof(*r));
    r->kind = kind;
    r->n = n;
    r->items = sp_calloc(n ? n : 1, sizeof(sp_item_t));
    return r;
}

void sp_store_complete(sp_store_t *s, sp_req_t *req)
{
    req->next = NULL;
    uv_mutex_lock(&s->done_mu);
    if (s->done_tail)
        s->done_tail->next = req;
    else
        s->done_head = req;
    s->done_tail = req;
    uv_mutex_unlock(&s->done_mu);
    uv_async_send(s->async);
}

void sp_store_fail(sp_store_t *s, sp_req_t *req, int err)
{
    req->err = err;
    for (size_t i = 0; i < req->n; i++)
        if (!req->items[i].err)
            req->items[i].err = err;
    sp_store_complete(s, req);
}

static void deliver(sp_store_t *s, sp_req_t *r)
{
    json_t *empty = NULL;
    if (r->kind == SP_REQ_BATCH) {
        s->stats.batches++;
        s->stats.batch_rows += r->n;
        if (r->n > s->stats.batch_max)
            s->stats.batch_max = r->n;
        for (size_t i = 0; i < r->n; i++) {
            sp_item_t *it = &r->items[i];
            if (it->err)
                s->stats.errors++;
            else
                s->stats.queries++;
            if (it->cb) {
                if (!empty)
                    empty = json_array();
                it->cb(it->err, empty, it->err ? 0 : it->changes, it->ud);
            }
        }
        s->batch_inflight = false;
    } else {
        if (r->err)
            s->stats.errors++;
        else
            s->stats.queries++;
        if (r->err || !r->rows) {
            json_decref(r->rows);
            r->rows = json_array();
        }
        if (r->cb)
            r->cb(r->err, r->rows, r->err ? 0 : r->changes, r->ud);
    }
    json_decref(empty);
    req_free(r);
}

static void on_async(uv_async_t *h)
{
    sp_store_t *s = h->data;
    for (;;) {
        uv_mutex_lock(&s->done_mu);
        sp_req_t *r = s->done_head;
        s->done_head = s->done_tail = NULL;
        uv_mutex_unlock(&s->done_mu);
        if (!r)
            break;
        while (r) {
            sp_req_t *next = r->next;
            s->inflight--;
            deliver(s, r);
            r = next;
        }
    }
    /* more rows may have queued up while a batch was in flight */
    if (!s->batch_inflight && s->qlen &&
        (s->closing || !s->timer_armed || s->qlen >= SP_STORE_BATCH_ROWS))
        flush_batch(s); /* !timer_armed: their window elapsed while the batch was written */
    if (s->closing)
        maybe_finish_close(s);
}

static void submit(sp_store_t *s, sp_req_t *r)
{
    s->inflight++;
    if (s->closing && r->kind != SP_REQ_BATCH) {
        sp_store_fail(s, r, SP_ECLOSED);
        return;
    }
    s->ops->submit(s, r);
}

/* ---- public API ----------------------------------------------------------------- */

void sp_store_query(sp_store_t *s, const char *sql, json_t *params, sp_store_cb cb, void *ud)
{
    sp_req_t *r = req_new(SP_REQ_QUERY, 1);
    r->cb = cb;
    r->ud = ud;
    r->items[0].sql = sp_strdup(sql ? sql : "");
    r->items[0].params = params;
    submit(s, r);
}

void sp_store_tx(sp_store_t *s, size_t n, const char *const *sqls, json_t *const *params,
                 sp_store_cb cb, void *ud)
{
    sp_req_t *r = req_new(SP_REQ_TX, n);
    r->cb = cb;
    r->ud = ud;
    for (size_t i = 0; i < n; i++) {
        r->items[i].sql = sp_strdup(sqls[i] ? sqls[i] : "");
        r->items[i].params = params ? params[i] : NULL;
    }
    if (n == 0) {
        s->inflight++;
        sp_store_complete(s, r);
        return;
    }
    submit(s, r);
}

static void flush_batch(sp_store_t *s)
{
    if (s->qlen == 0 || s->batch_inflight)
        return;
    size_t n = s->qlen < SP_STORE_BATCH_MAX ? s->qlen : SP_STORE_BATCH_MAX;
    sp_req_t *r = req_new(SP_REQ_BATCH, n);
    memcpy(r->items, s->q, n * sizeof(sp_item_t));
    s->qlen -= n;
    memmove(s->q, s->q + n, s->qlen * sizeof(sp_item_t));
    s->stats.queued = s->qlen;
    s->batch_inflight = true;
    if (s->qlen && !s->timer_armed) { /* the rest goes with the next batch */
        s->timer_armed = true;
        uv_timer_start(s->timer, on_timer, SP_STORE_BATCH_MS, 0);
    }
    submit(s, r);
}

static void on_timer(uv_timer_t *t)
{
    sp_store_t *s = t->data;
    s->timer_armed = false;
    if (s->batch_inflight) /* flushed when the in-flight batch completes */
        return;
    flush_batch(s);
}

void sp_store_enqueue(sp_store_t *s, const char *sql, json_t *params, sp_store_cb cb, void *ud)
{
    if (s->closing || s->qlen >= SP_STORE_QUEUE_MAX) {
        sp_req_t *r = req_new(SP_REQ_QUERY, 1);
        r->items[0].params = params;
        r->cb = cb;
        r->ud = ud;
        s->inflight++;
        sp_store_fail(s, r, s->closing ? SP_ECLOSED : SP_ELIMIT);
        return;
    }
    if (s->qlen == s->qcap) {
        s->qcap = s->qcap ? s->qcap * 2 : 256;
        s->q = sp_realloc(s->q, s->qcap * sizeof(sp_item_t));
    }
    sp_item_t *it = &s->q[s->qlen++];
    memset(it, 0, sizeof(*it));
    it->sql = sp_strdup(sql ? sql : "");
    it->params = params;
    it->cb = cb;
    it->ud = ud;
    s->stats.queued = s->qlen;
    if (s->qlen >= SP_STORE_BATCH_ROWS && !s->batch_inflight) {
        flush_batch(s);
    } else if (!s->timer_armed) {
        s->timer_armed = true;
        uv_timer_start(s->timer, on_timer, SP_STORE_BATCH_MS, 0);
    }
}

const char *sp_store_backend(const sp_store_t *s)
{
    return s->ops->name;
}

bool sp_store_healthy(const sp_store_t *s)
{
    return !s->closing && s->ops->healthy(s);
}

void sp_store_stats(const sp_store_t *s, sp_store_stats_t *out)
{
    *out = s->stats;
    out->queued = s->qlen;
}

int sp_store_schema_version(void)
{
    int a = sp_migrations_latest("sqlite"), b = sp_migrations_latest("postgres");
    return a > b ? a : b;
}

/* ---- open / close ------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    sp_store_t *s = h->data;
    sp_free(h);
    if (--s->handles_open == 0) {
        void (*done)(void *) = s->done;
        void *ud = s->done_ud;
        uv_mutex_destroy(&s->done_mu);
        sp_free(s->q);
        sp_free(s);
        if (done)
            done(ud);
    }
}

void sp_store_backend_closed(sp_store_t *s)
{
    uv_close((uv_handle_t *)s->async, on_handle_closed);
    uv_close((uv_handle_t *)s->timer, on_handle_closed);
}

static void maybe_finish_close(sp_store_t *s)
{
    if (s->backend_closing || s->inflight || s->qlen || s->batch_inflight)
        return;
    s->backend_closing = true;
    uv_timer_stop(s->timer);
    s->ops->close(s);
}

void sp_store_close(sp_store_t *s, void (*done)(void *ud), void *ud)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    flush_batch(s);
    maybe_finish_close(s);
}

/* DATA_DIR holds the database and the signing key: 0700. A directory of ours that is open to
 * group or others (created 0750 by an older version, or by hand) is tightened, with a warning. */
static void private_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) == 0)
        return;
    if ((st.st_mode & S_ISVTX) || (st.st_mode & 0002)) { /* /tmp and the like: never ours */
        sp_warn("store", "DATA_DIR is a shared directory: give the server a directory of its own",
                "path=\"%s\"", dir);
        return;
    }
    if (chmod(dir, st.st_mode & 0700) == 0)
        sp_warn("store", "DATA_DIR was open to group/others: now 0700", "path=\"%s\"", dir);
}

static int parse_url(const sp_config_t *cfg, char **path, bool *pg, char *err, size_t errlen)
{
    const char *u = cfg->database_url;
    *pg = false;
    *path = NULL;
    if (u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0)) {
        *pg = true;
        *path = sp_strdup(u);
        return 0;
    }
    const char *p = NULL;
    if (!u || !*u)
        p = "";
    else if (strncmp(u, "sqlite://", 9) == 0)
        p = u + 9;
    else if (strncmp(u, "sqlite:", 7) == 0)
        p = u + 7;
    if (!p) {
        snprintf(err, errlen,
                 "DATABASE_URL: expected sqlite:PATH or postgres://..., got '%.*s:...'",
                 (int)strcspn(u, ":"), u);
        return SP_ECONFIG;
    }
    if (*p) {
        *path = sp_strdup(p);
    } else {
        const char *dir = cfg->data_dir && *cfg->data_dir ? cfg->data_dir : ".";
        if (cfg->data_dir && *cfg->data_dir)
            private_dir(dir);
        size_t n = strlen(dir) + sizeof("/streampai.db");
        *path = sp_malloc(n);
        snprintf(*path, n, "%s/streampai.db", dir);
    }
    return 0;
}

int sp_store_open(uv_loop_t *loop, const sp_config_t *cfg, sp_store_t **out, char *err,
                  size_t errlen)
{
    char *path = NULL;
    bool pg = false;
    int rc;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if ((rc = parse_url(cfg, &path, &pg, err, errlen)) != 0)
        return rc;
    sp_store_t *s = sp_calloc(1, sizeof(*s));
    s->loop = loop;
    uv_mutex_init(&s->done_mu);
    s->async = sp_calloc(1, sizeof(*s->async));
    s->timer = sp_calloc(1, sizeof(*s->timer));
    uv_async_init(loop, s->async, on_async);
    uv_timer_init(loop, s->timer);
    s->async->data = s;
    s->timer->data = s;
    s->handles_open = 2;
    if (pg) {
        int pool = cfg->db_pool_size > 0 ? (int)cfg->db_pool_size : 4;
        if (pool > 64)
            pool = 64;
        rc = sp_store_pg_open(s, path, pool, err, errlen);
    } else {
        rc = sp_store_sqlite_open(s, path, err, errlen);
    }
    sp_free(path);
    if (rc != 0) {
        /* handles were never used: close them; memory is released by the loop */
        s->done = NULL;
        sp_store_backend_closed(s);
        return rc;
    }
    sp_info("store", "opened", "backend=%s schema=%d", s->ops->name,
            sp_migrations_latest(s->ops->name));
    *out = s;
    return 0;
}

int sp_store_migrate_only(const sp_config_t *cfg, char *err, size_t errlen)
{
    char *path = NULL;
    bool pg = false;
    int rc;
    if (errlen)
        err[0] = '\0';
    if ((rc = parse_url(cfg, &path, &pg, err, errlen)) != 0)
        return rc;
    rc = pg ? sp_store_pg_migrate_only(path, err, errlen)
            : sp_store_sqlite_migrate_only(path, err, errlen);
    sp_free(path);
    return rc;
}

void sp_store_sql_rewrite(const char *sql, char *out)
{
    size_t i = 0;
    while (sql[i]) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            out[i] = sql[i];
            i++;
            while (sql[i] && sql[i] != c) {
                out[i] = sql[i];
                i++;
            }
            if (sql[i]) {
                out[i] = sql[i];
                i++;
            }
        } else if (c == '-' && sql[i + 1] == '-') {
            while (sql[i] && sql[i] != '\n') {
                out[i] = sql[i];
                i++;
            }
        } else if (c == '$' && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            out[i++] = '?';
        } else {
            out[i] = sql[i];
            i++;
        }
    }
    out[i] = '\0';
}

void sp_store_sql_rewrite_pub(const char *sql, char *out)
{
    sp_store_sql_rewrite(sql, out);
}
