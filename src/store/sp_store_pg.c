/*
 * sp_store_pg: the PostgreSQL backend. libpq in non-blocking mode on the loop
 * (PQconnectStartParams/PQconnectPoll, PQsendQueryParams, PQsocket under
 * uv_poll), a small pool of connections, reconnect with sp_backoff when the
 * server goes away. While no connection is up, requests fail at once with
 * SP_EUNAVAIL (never hang). The poll handle is always closed before PQfinish
 * (PQfinish closes the fd).
 *
 * A request runs on one connection as a little program of commands:
 *   QUERY: item0 | TX: BEGIN item0..n-1 COMMIT (ROLLBACK on error) |
 *   BATCH: BEGIN items COMMIT; a failing item is marked, the transaction rolled
 *   back and re-run without it.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_backoff.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "store/sp_migrations.h"
#include "store/sp_store_int.h"
#include "core/sp_time.h"

#define PG_CONNECT_TIMEOUT_MS 5000
#define PG_PENDING_MAX 10000
#define PG_MAX_PARAMS 256

typedef enum { C_DOWN = 0, C_CONNECTING, C_IDLE, C_BUSY } cstate_t;

typedef struct pg_s pg_t;

typedef struct {
    pg_t *pg;
    int idx;
    PGconn *conn;
    uv_poll_t *poll;
    uv_timer_t *timer; /* reconnect delay / connect timeout */
    cstate_t st;
    sp_backoff_t bo;
    sp_req_t *req;
    long step;     /* -1 BEGIN, 0..n-1 items, n COMMIT, n+1 ROLLBACK */
    int cmd_err;   /* error of the current command */
    bool restart;  /* BATCH: re-run after the ROLLBACK */
    bool had_up;   /* was connected once (for logs) */
    /* BATCH in pipeline mode: the commands sent (-1 BEGIN, item index, n COMMIT) */
    bool pipe;
    long *cmds;
    size_t ncmds, kcmd;
    int commit_err;
    bool round_failed; /* a row failed in this round of the pipeline */
} pgc_t;

struct pg_s {
    sp_store_t *s;
    char *url;
    int n;
    pgc_t *conns;
    int up;     /* connections IDLE or BUSY */
    bool down;  /* no connection up and the last attempt failed */
    sp_req_t *pend_head, *pend_tail;
    size_t npend;
    bool closing;
    int open_handles;
};

static void conn_start(pgc_t *c);
static void conn_lost(pgc_t *c, const char *why);
static void send_step(pgc_t *c);
static void on_poll(uv_poll_t *h, int status, int events);
static int send_params(pgc_t *c, sp_item_t *it);
static void send_pipeline(pgc_t *c);
static void finish_req(pgc_t *c);

/* ---- error mapping ---------------------------------------------------------------- */

static int map_sqlstate(const char *st)
{
    if (!st)
        return SP_EUNAVAIL; /* no SQLSTATE: a client-side / connection failure */
    if (strcmp(st, "23505") == 0)
        return SP_EEXISTS;
    if (strcmp(st, "53100") == 0)
        return SP_EDISKFULL;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
        return SP_EBUSY;
    if (strcmp(st, "57014") == 0)
        return SP_ETIMEDOUT;
    if (strncmp(st, "XX001", 5) == 0 || strncmp(st, "XX002", 5) == 0)
        return SP_ECORRUPT;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "53", 2) == 0)
        return SP_EUNAVAIL;
    return SP_EDB;
}

/* ---- results -> json ---------------------------------------------------------------- */

static json_t *result_rows(PGresult *r)
{
    json_t *rows = json_array();
    int nr = PQntuples(r), nf = PQnfields(r);
    for (int i = 0; i < nr; i++) {
        json_t *o = json_object();
        for (int f = 0; f < nf; f++) {
            json_t *v;
            if (PQgetisnull(r, i, f)) {
                v = json_null();
            } else {
                const char *t = PQgetvalue(r, i, f);
                switch (PQftype(r, f)) {
                case 20: /* int8 */
                case 21: /* int2 */
                case 23: /* int4 */
                case 26: /* oid */
                    v = json_integer(strtoll(t, NULL, 10));
                    break;
                case 16: /* bool */
                    v = json_integer(t[0] == 't');
                    break;
                case 700:  /* float4 */
                case 701:  /* float8 */
                case 1700: /* numeric */
                    v = json_real(strtod(t, NULL));
                    break;
                default:
                    v = json_stringn(t, (size_t)PQgetlength(r, i, f));
                    if (!v)
                        v = json_null();
                    break;
                }
            }
            json_object_set_new(o, PQfname(r, f), v);
        }
        json_array_append_new(rows, o);
    }
    return rows;
}

/* ---- poll handles --------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    pg_t *pg = h->data;
    sp_free(h);
    if (--pg->open_handles == 0 && pg->closing) {
        sp_store_t *s = pg->s;
        sp_free(pg->conns);
        sp_free(pg->url);
        sp_free(pg);
        s->be = NULL;
        sp_store_backend_closed(s);
    }
}

static void poll_close(pgc_t *c)
{
    if (c->poll) {
        uv_close((uv_handle_t *)c->poll, on_handle_closed); /* stops watching the fd now */
        c->poll = NULL;
    }
}

static int poll_watch(pgc_t *c, int events)
{
    if (!c->poll) {
        int fd = PQsocket(c->conn);
        if (fd < 0)
            return -1;
        c->poll = sp_calloc(1, sizeof(*c->poll));
        if (uv_poll_init_socket(c->pg->s->loop, c->poll, fd) != 0) {
            sp_free(c->poll);
            c->poll = NULL;
            return -1;
        }
        c->poll->data = c->pg;
        c->pg->open_handles++;
    }
    /* c is found from the handle through the pool index */
    return uv_poll_start(c->poll, events, on_poll);
}

static pgc_t *conn_of(uv_poll_t *h)
{
    pg_t *pg = h->data;
    for (int i = 0; i < pg->n; i++)
        if (pg->conns[i].poll == h)
            return &pg->conns[i];
    return NULL;
}

/* ---- pool bookkeeping ------------------------------------------------------------------- */

static void fail_pending(pg_t *pg, int err)
{
    while (pg->pend_head) {
        sp_req_t *r = pg->pend_head;
        pg->pend_head = r->next;
        sp_store_fail(pg->s, r, err);
    }
    pg->pend_tail = NULL;
    pg->npend = 0;
}

static void start_req(pgc_t *c, sp_req_t *r)
{
    c->st = C_BUSY;
    c->req = r;
    c->restart = false;
    c->step = r->kind == SP_REQ_QUERY ? 0 : -1;
    if (r->kind == SP_REQ_BATCH) {
        send_pipeline(c);
        return;
    }
    send_step(c);
}

static void conn_idle(pgc_t *c)
{
    pg_t *pg = c->pg;
    c->st = C_IDLE;
    c->req = NULL;
    if (pg->pend_head) {
        sp_req_t *r = pg->pend_head;
        pg->pend_head = r->next;
        if (!pg->pend_head)
            pg->pend_tail = NULL;
        pg->npend--;
        start_req(c, r);
        return;
    }
    poll_watch(c, UV_READABLE); /* notice a server that goes away while we are idle */
}

static void finish_req(pgc_t *c)
{
    sp_req_t *r = c->req;
    c->req = NULL;
    sp_store_complete(c->pg->s, r);
    conn_idle(c);
}

/* ---- running a request ---------------------------------------------------------------- */

static bool item_live(const sp_req_t *r, long i)
{
    return r->kind != SP_REQ_BATCH || !r->items[i].err;
}

static long next_item(const sp_req_t *r, long from)
{
    while (from < (long)r->n && !item_live(r, from))
        from++;
    return from;
}

static int send_params(pgc_t *c, sp_item_t *it)
{
    const char *vals[PG_MAX_PARAMS];
    char *tmp[PG_MAX_PARAMS];
    bool from_jansson[PG_MAX_PARAMS];
    int np = 0, ok;
    if (it->params && !json_is_array(it->params))
        return SP_EINVAL;
    if (it->params && json_array_size(it->params) > PG_MAX_PARAMS)
        return SP_ETOOBIG;
    if (it->params) {
        np = (int)json_array_size(it->params);
        for (int i = 0; i < np; i++) {
            json_t *v = json_array_get(it->params, (size_t)i);
            tmp[i] = NULL;
            vals[i] = NULL;
            from_jansson[i] = false;
            switch (json_typeof(v)) {
            case JSON_INTEGER:
                tmp[i] = sp_malloc(24);
                snprintf(tmp[i], 24, "%lld", (long long)json_integer_value(v));
                break;
            case JSON_REAL:
                tmp[i] = sp_malloc(40);
                snprintf(tmp[i], 40, "%.17g", json_real_value(v));
                break;
            case JSON_STRING:
                vals[i] = json_string_value(v);
                break;
            case JSON_TRUE:
                vals[i] = "1";
                break;
            case JSON_FALSE:
                vals[i] = "0";
                break;
            case JSON_NULL:
                break;
            default:
                tmp[i] = json_dumps(v, JSON_COMPACT);
                from_jansson[i] = true;
                break;
            }
            if (tmp[i])
                vals[i] = tmp[i];
        }
    }
    ok = PQsendQueryParams(c->conn, it->sql, np, NULL, vals, NULL, NULL, 0);
    for (int i = 0; i < np; i++) {
        if (from_jansson[i])
            free(tmp[i]);
        else
            sp_free(tmp[i]);
    }
    return ok ? 0 : SP_EUNAVAIL;
}

static void send_step(pgc_t *c)
{
    sp_req_t *r = c->req;
    int rc = 0;
    c->cmd_err = 0;
    if (c->step == -1) {
        rc = PQsendQuery(c->conn, "BEGIN") ? 0 : SP_EUNAVAIL;
    } else if (c->step == (long)r->n) {
        rc = PQsendQuery(c->conn, "COMMIT") ? 0 : SP_EUNAVAIL;
    } else if (c->step == (long)r->n + 1) {
        rc = PQsendQuery(c->conn, "ROLLBACK") ? 0 : SP_EUNAVAIL;
    } else {
        sp_item_t *it = &r->items[c->step];
        it->changes = 0;
        rc = send_params(c, it);
        if (rc == SP_EINVAL || rc == SP_ETOOBIG) {
            /* nothing was sent: treat as a failed command */
            c->cmd_err = rc;
            rc = PQsendQuery(c->conn, "SELECT 1 WHERE false") ? 0 : SP_EUNAVAIL;
        }
    }
    if (rc != 0) {
        conn_lost(c, PQerrorMessage(c->conn));
        return;
    }
    int f = PQflush(c->conn);
    if (f < 0) {
        conn_lost(c, PQerrorMessage(c->conn));
        return;
    }
    poll_watch(c, f == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void on_result(pgc_t *c, PGresult *res)
{
    sp_req_t *r = c->req;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (c->step >= 0 && c->step < (long)r->n && !c->cmd_err) {
            sp_item_t *it = &r->items[c->step];
            const char *ct = PQcmdTuples(res);
            const char *cs = PQcmdStatus(res);
            bool read_only = cs && strncmp(cs, "SELECT", 6) == 0; /* rows, not changes */
            it->changes = !read_only && ct && *ct ? strtoll(ct, NULL, 10) : 0;
            if (r->kind != SP_REQ_BATCH && c->step == (long)r->n - 1) {
                json_decref(r->rows);
                r->rows = result_rows(res);
            }
        }
        return;
    }
    if (c->cmd_err)
        return;
    c->cmd_err = map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (c->cmd_err != SP_EEXISTS)
        sp_warn("store", "postgres error", "err=%s detail=\"%s\"", sp_err_name(c->cmd_err),
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                    ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                    : "");
}

/* The current command has produced all its results. */
static void command_done(pgc_t *c)
{
    sp_req_t *r = c->req;
    long n = (long)r->n;
    int err = c->cmd_err;
    if (c->step == n + 1) { /* ROLLBACK done */
        if (c->restart && next_item(r, 0) < n) {
            c->restart = false;
            if (r->kind == SP_REQ_BATCH) {
                send_pipeline(c);
                return;
            }
            for (size_t i = 0; i < r->n; i++)
                r->items[i].changes = 0;
            c->step = -1;
            send_step(c);
            return;
        }
        finish_req(c);
        return;
    }
    if (err && err == SP_EUNAVAIL) {
        conn_lost(c, "connection failure during a command");
        return;
    }
    if (c->step == -1) {
        if (err) {
            sp_store_fail(c->pg->s, r, err);
            c->req = NULL;
            conn_idle(c);
            return;
        }
        c->step = next_item(r, 0);
        send_step(c);
        return;
    }
    if (c->step == n) { /* COMMIT */
        if (err) {
            r->err = err;
            for (size_t i = 0; i < r->n; i++)
                if (!r->items[i].err)
                    r->items[i].err = err;
        } else {
            for (size_t i = 0; i < r->n; i++)
                r->changes += r->items[i].changes;
        }
        finish_req(c);
        return;
    }
    /* an item */
    if (err) {
        if (r->kind == SP_REQ_QUERY) {
            r->err = err;
            finish_req(c);
        } else if (r->kind == SP_REQ_TX) {
            r->err = err;
            c->step = n + 1;
            send_step(c);
        } else {
            r->items[c->step].err = err;
            c->restart = true;
            c->step = n + 1;
            send_step(c);
        }
        return;
    }
    if (r->kind == SP_REQ_QUERY) {
        r->changes = r->items[0].changes;
        finish_req(c);
        return;
    }
    c->step = next_item(r, c->step + 1);
    send_step(c);
}

/* ---- BATCH in pipeline mode: BEGIN, every live row, COMMIT, one Sync: one round trip ---- */

static void send_pipeline(pgc_t *c)
{
    sp_req_t *r = c->req;
    long n = (long)r->n;
    c->pipe = true;
    c->kcmd = 0;
    c->ncmds = 0;
    c->commit_err = 0;
    c->round_failed = false;
    sp_free(c->cmds);
    c->cmds = sp_malloc(((size_t)n + 2) * sizeof(long));
    for (size_t i = 0; i < r->n; i++)
        r->items[i].changes = 0;
    bool ok = PQenterPipelineMode(c->conn) == 1;
    if (ok) {
        ok = PQsendQueryParams(c->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
        c->cmds[c->ncmds++] = -1;
    }
    for (long i = 0; ok && i < n; i++) {
        if (!item_live(r, i))
            continue;
        int rc = send_params(c, &r->items[i]);
        if (rc == SP_EINVAL || rc == SP_ETOOBIG) {
            r->items[i].err = rc; /* not sent */
            continue;
        }
        ok = rc == 0;
        c->cmds[c->ncmds++] = i;
    }
    if (ok) {
        ok = PQsendQueryParams(c->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1;
        c->cmds[c->ncmds++] = n;
    }
    if (ok)
        ok = PQpipelineSync(c->conn) == 1;
    if (!ok) {
        conn_lost(c, PQerrorMessage(c->conn));
        return;
    }
    int f = PQflush(c->conn);
    if (f < 0) {
        conn_lost(c, PQerrorMessage(c->conn));
        return;
    }
    poll_watch(c, f == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* One result of the pipeline; returns true when the batch is finished (sync seen). */
static bool pipeline_result(pgc_t *c, PGresult *res)
{
    sp_req_t *r = c->req;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC)
        return true;
    if (c->kcmd >= c->ncmds)
        return false;
    long which = c->cmds[c->kcmd];
    if (st == PGRES_PIPELINE_ABORTED)
        return false;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (which >= 0 && which < (long)r->n) {
            const char *ct = PQcmdTuples(res);
            const char *cs = PQcmdStatus(res);
            bool read_only = cs && strncmp(cs, "SELECT", 6) == 0;
            r->items[which].changes = !read_only && ct && *ct ? strtoll(ct, NULL, 10) : 0;
        }
        return false;
    }
    int err = map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (err != SP_EEXISTS)
        sp_warn("store", "postgres error", "err=%s detail=\"%s\"", sp_err_name(err),
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                    ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                    : "");
    if (which >= 0 && which < (long)r->n) {
        r->items[which].err = err;
        c->round_failed = true;
    } else
        c->commit_err = err;
    return false;
}

static void pipeline_done(pgc_t *c)
{
    sp_req_t *r = c->req;
    PQexitPipelineMode(c->conn);
    c->pipe = false;
    bool item_failed = c->round_failed;
    if (PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
        /* an error left the transaction block aborted (COMMIT was skipped): roll it back,
           then run the batch again without the bad rows (command_done's ROLLBACK branch) */
        c->restart = item_failed;
        c->step = (long)r->n + 1;
        send_step(c);
        return;
    }
    if (item_failed && next_item(r, 0) < (long)r->n) {
        send_pipeline(c);
        return;
    }
    if (c->commit_err && !item_failed) {
        r->err = c->commit_err;
        for (size_t i = 0; i < r->n; i++)
            r->items[i].err = c->commit_err;
    }
    finish_req(c);
}

/* ---- connection lifecycle ---------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    pgc_t *c = t->data;
    if (c->st == C_CONNECTING) { /* connect timeout */
        conn_lost(c, "connect timed out");
        return;
    }
    if (c->st == C_DOWN && !c->pg->closing)
        conn_start(c);
}

static void conn_lost(pgc_t *c, const char *why_in)
{
    pg_t *pg = c->pg;
    char why[256]; /* why_in may point into c->conn, freed below */
    snprintf(why, sizeof(why), "%s", why_in ? why_in : "");
    bool was_up = c->st == C_IDLE || c->st == C_BUSY;
    sp_req_t *r = c->req;
    c->req = NULL;
    c->pipe = false;
    poll_close(c);
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    c->st = C_DOWN;
    if (was_up)
        pg->up--;
    if (r) /* outcome unknown to us; the caller sees the server as unavailable */
        sp_store_fail(pg->s, r, SP_EUNAVAIL);
    if (pg->up == 0) {
        if (!pg->down)
            sp_error("store", "postgres unavailable", "conn=%d detail=\"%.*s\"", c->idx,
                     (int)strcspn(why, "\n"), why);
        pg->down = true;
        fail_pending(pg, SP_EUNAVAIL);
    }
    if (pg->closing)
        return;
    uint64_t d = sp_backoff_next(&c->bo);
    uv_timer_start(c->timer, on_timer, d, 0);
}

static void connected(pgc_t *c)
{
    pg_t *pg = c->pg;
    uv_timer_stop(c->timer);
    PQsetnonblocking(c->conn, 1);
    sp_backoff_reset(&c->bo);
    c->st = C_IDLE;
    pg->up++;
    if (pg->down || !c->had_up)
        sp_info("store", "postgres connected", "conn=%d", c->idx);
    pg->down = false;
    c->had_up = true;
    conn_idle(c);
}

static void connect_step(pgc_t *c)
{
    /* the socket may change while connecting: re-create the poll handle each step */
    poll_close(c);
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        if (poll_watch(c, UV_READABLE) != 0)
            conn_lost(c, "poll failed");
        return;
    case PGRES_POLLING_WRITING:
        if (poll_watch(c, UV_WRITABLE) != 0)
            conn_lost(c, "poll failed");
        return;
    case PGRES_POLLING_FAILED:
        conn_lost(c, PQerrorMessage(c->conn));
        return;
    default:
        connected(c);
        return;
    }
}

static void conn_start(pgc_t *c)
{
    static const char *const keys[] = { "dbname", "connect_timeout", "keepalives",
                                        "keepalives_idle", "keepalives_interval",
                                        "keepalives_count", "application_name", "options",
                                        NULL };
    const char *vals[] = { c->pg->url, "5", "1", "10", "5", "3", "streampai",
                           "-c statement_timeout=30000", NULL };
    c->conn = PQconnectStartParams(keys, vals, 1);
    if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
        conn_lost(c, c->conn ? PQerrorMessage(c->conn) : "out of memory");
        return;
    }
    c->st = C_CONNECTING;
    uv_timer_start(c->timer, on_timer, PG_CONNECT_TIMEOUT_MS, 0);
    if (poll_watch(c, UV_WRITABLE) != 0)
        conn_lost(c, "poll failed");
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pgc_t *c = conn_of(h);
    if (!c)
        return;
    if (c->st == C_CONNECTING) {
        connect_step(c); /* ignore status: libpq reports the real error */
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(c->conn);
        if (f < 0) {
            conn_lost(c, PQerrorMessage(c->conn));
            return;
        }
        if (f == 0)
            poll_watch(c, UV_READABLE);
    }
    if (status < 0 && !(events & UV_READABLE)) {
        conn_lost(c, uv_strerror(status));
        return;
    }
    if (!(events & UV_READABLE) && status >= 0)
        return;
    if (!PQconsumeInput(c->conn) || PQstatus(c->conn) != CONNECTION_OK) {
        conn_lost(c, PQerrorMessage(c->conn));
        return;
    }
    PGnotify *nt;
    while ((nt = PQnotifies(c->conn)) != NULL)
        PQfreemem(nt);
    if (c->st != C_BUSY) {
        /* idle: drop anything unexpected */
        while (!PQisBusy(c->conn)) {
            PGresult *res = PQgetResult(c->conn);
            if (!res)
                break;
            PQclear(res);
        }
        return;
    }
    if (c->pipe) {
        while (!PQisBusy(c->conn)) {
            PGresult *res = PQgetResult(c->conn);
            if (!res) { /* end of one command's results */
                if (c->kcmd < c->ncmds)
                    c->kcmd++;
                continue;
            }
            bool done = pipeline_result(c, res);
            PQclear(res);
            if (PQstatus(c->conn) != CONNECTION_OK) {
                conn_lost(c, PQerrorMessage(c->conn));
                return;
            }
            if (done) {
                pipeline_done(c);
                return;
            }
        }
        return;
    }
    while (!PQisBusy(c->conn)) {
        PGresult *res = PQgetResult(c->conn);
        if (!res) {
            command_done(c);
            return;
        }
        on_result(c, res);
        PQclear(res);
        if (PQstatus(c->conn) != CONNECTION_OK) {
            conn_lost(c, PQerrorMessage(c->conn));
            return;
        }
    }
}

/* ---- ops ----------------------------------------------------------------------------- */

static void pg_submit(sp_store_t *s, sp_req_t *r)
{
    pg_t *pg = s->be;
    for (int i = 0; i < pg->n; i++) {
        if (pg->conns[i].st == C_IDLE) {
            start_req(&pg->conns[i], r);
            return;
        }
    }
    if (pg->up == 0 && pg->down) {
        sp_store_fail(s, r, SP_EUNAVAIL);
        return;
    }
    if (pg->npend >= PG_PENDING_MAX) {
        sp_store_fail(s, r, SP_EBUSY);
        return;
    }
    r->next = NULL;
    if (pg->pend_tail)
        pg->pend_tail->next = r;
    else
        pg->pend_head = r;
    pg->pend_tail = r;
    pg->npend++;
}

static void pg_close(sp_store_t *s)
{
    pg_t *pg = s->be;
    pg->closing = true;
    fail_pending(pg, SP_ECLOSED);
    for (int i = 0; i < pg->n; i++) {
        pgc_t *c = &pg->conns[i];
        poll_close(c);
        if (c->conn) {
            PQfinish(c->conn);
            c->conn = NULL;
        }
        c->st = C_DOWN;
        sp_free(c->cmds);
        c->cmds = NULL;
        uv_timer_stop(c->timer);
        c->timer->data = pg;
        uv_close((uv_handle_t *)c->timer, on_handle_closed);
        c->timer = NULL;
    }
}

static bool pg_healthy(const sp_store_t *s)
{
    const pg_t *pg = s->be;
    return pg && pg->up > 0;
}

static const sp_store_ops_t pg_ops = { "postgres", pg_submit, pg_close, pg_healthy };

/* ---- migrations (blocking; only at open / `streampai migrate`) ------------------------- */

static int pg_exec_ok(PGconn *db, PGresult *res, const char *what, char *err, size_t errlen)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    int e = map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    snprintf(err, errlen, "postgres: %s failed: %.*s", what,
             (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
    return e == SP_EUNAVAIL ? SP_EUNAVAIL : (e ? e : SP_EDB);
}

static int pg_migrate(const char *url, char *err, size_t errlen)
{
    static const char *const keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { url, "5", "streampai-migrate", NULL };
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    PGresult *res = NULL;
    int rc = 0;
    if (!db || PQstatus(db) != CONNECTION_OK) {
        snprintf(err, errlen, "postgres unavailable: %.*s",
                 db ? (int)strcspn(PQerrorMessage(db), "\n") : 13,
                 db ? PQerrorMessage(db) : "out of memory");
        PQfinish(db);
        return SP_EUNAVAIL;
    }
    res = PQexec(db, "SET client_min_messages = warning");
    PQclear(res);
    res = PQexec(db, "SELECT pg_advisory_lock(7272740001)");
    if ((rc = pg_exec_ok(db, res, "taking the migration lock", err, errlen)) != 0)
        goto out;
    PQclear(res);
    res = PQexec(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
    if ((rc = pg_exec_ok(db, res, "creating schema_migrations", err, errlen)) != 0)
        goto out;
    PQclear(res);
    res = PQexec(db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if ((rc = pg_exec_ok(db, res, "reading schema_migrations", err, errlen)) != 0)
        goto out;
    long long cur = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;
    int latest = sp_migrations_latest("postgres");
    if (cur > latest) {
        snprintf(err, errlen,
                 "postgres database has schema version %lld, newer than this binary knows (%d); "
                 "run a newer streampai", cur, latest);
        rc = SP_ESCHEMA;
        goto out;
    }
    for (const sp_migration_t *m = sp_migrations("postgres"); m->name; m++) {
        if (m->version <= cur)
            continue;
        char what[96];
        snprintf(what, sizeof(what), "migration %s", m->name);
        res = PQexec(db, "BEGIN");
        if ((rc = pg_exec_ok(db, res, what, err, errlen)) != 0)
            goto out;
        PQclear(res);
        res = PQexec(db, m->sql);
        if ((rc = pg_exec_ok(db, res, what, err, errlen)) != 0) {
            PQclear(PQexec(db, "ROLLBACK"));
            goto out;
        }
        PQclear(res);
        char ver[16], now[24];
        snprintf(ver, sizeof(ver), "%d", m->version);
        snprintf(now, sizeof(now), "%lld", (long long)sp_wall_ms());
        const char *p[3] = { ver, m->name, now };
        res = PQexecParams(db,
                           "INSERT INTO schema_migrations(version, name, applied_at) "
                           "VALUES ($1, $2, $3)",
                           3, NULL, p, NULL, NULL, 0);
        if ((rc = pg_exec_ok(db, res, what, err, errlen)) != 0) {
            PQclear(PQexec(db, "ROLLBACK"));
            goto out;
        }
        PQclear(res);
        res = PQexec(db, "COMMIT");
        if ((rc = pg_exec_ok(db, res, what, err, errlen)) != 0)
            goto out;
        PQclear(res);
        res = NULL;
        sp_info("store", "migration applied", "backend=postgres version=%d name=%s", m->version,
                m->name);
    }
out:
    PQclear(res);
    PQclear(PQexec(db, "SELECT pg_advisory_unlock(7272740001)"));
    PQfinish(db);
    return rc;
}

int sp_store_pg_migrate_only(const char *url, char *err, size_t errlen)
{
    return pg_migrate(url, err, errlen);
}

int sp_store_pg_open(sp_store_t *s, const char *url, int pool, char *err, size_t errlen)
{
    int rc = pg_migrate(url, err, errlen);
    if (rc != 0) {
        sp_error("store", "open failed", "backend=postgres err=%s detail=\"%s\"",
                 sp_err_name(rc), err);
        return rc;
    }
    pg_t *pg = sp_calloc(1, sizeof(*pg));
    pg->s = s;
    pg->url = sp_strdup(url);
    pg->n = pool;
    pg->conns = sp_calloc((size_t)pool, sizeof(pgc_t));
    s->be = pg;
    s->ops = &pg_ops;
    for (int i = 0; i < pool; i++) {
        pgc_t *c = &pg->conns[i];
        c->pg = pg;
        c->idx = i;
        sp_backoff_init(&c->bo, 50, 2000);
        c->timer = sp_calloc(1, sizeof(*c->timer));
        uv_timer_init(s->loop, c->timer);
        c->timer->data = c;
        pg->open_handles++;
        conn_start(c);
    }
    return 0;
}
