/*
 * sp_store_sqlite: the SQLite backend. One worker thread owns the connection
 * (WAL, foreign_keys=ON, busy_timeout, synchronous=FULL: a request's callback
 * runs after its transaction is on disk). Requests arrive through a mutex/cond
 * queue and go back to the loop via sp_store_complete (uv_async).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "store/sp_migrations.h"
#include "store/sp_store_int.h"
#include "core/sp_time.h"

#define CACHE_SIZE 64

static atomic_int busy_timeout_ms = 5000;

void sp_store_set_busy_timeout(int ms)
{
    atomic_store(&busy_timeout_ms, ms);
}

typedef struct {
    char *sql;
    sqlite3_stmt *st;
    uint64_t used;
} cache_ent_t;

typedef struct {
    sp_store_t *s;
    sqlite3 *db;
    uv_thread_t th;
    uv_mutex_t mu;
    uv_cond_t cv;
    sp_req_t *head, *tail;
    bool stop;
    atomic_bool healthy;
    cache_ent_t cache[CACHE_SIZE];
    uint64_t tick;
} sq_t;

/* ---- errors ----------------------------------------------------------------------- */

static int map_err(sqlite3 *db, int rc)
{
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return SP_EEXISTS;
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return SP_EDISKFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SP_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return SP_ECORRUPT;
    case SQLITE_IOERR:
        if (db && sqlite3_system_errno(db) == ENOSPC)
            return SP_EDISKFULL;
        return SP_EIO;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return SP_EIO;
    case SQLITE_INTERRUPT:
        return SP_ETIMEDOUT;
    case SQLITE_TOOBIG:
        return SP_ETOOBIG;
    case SQLITE_NOMEM:
        return SP_ENOMEM;
    default:
        return SP_EDB;
    }
}

static void log_err(sqlite3 *db, int err, const char *what)
{
    if (err == SP_EEXISTS)
        return;
    sp_warn("store", "sqlite error", "err=%s what=%s detail=\"%s\"", sp_err_name(err), what,
            db ? sqlite3_errmsg(db) : "");
}

/* ---- statements ------------------------------------------------------------------- */

static sqlite3_stmt *prepare(sq_t *q, const char *sql, int *rc)
{
    cache_ent_t *victim = &q->cache[0];
    for (int i = 0; i < CACHE_SIZE; i++) {
        cache_ent_t *e = &q->cache[i];
        if (e->sql && strcmp(e->sql, sql) == 0) {
            e->used = ++q->tick;
            sqlite3_reset(e->st);
            sqlite3_clear_bindings(e->st);
            *rc = SQLITE_OK;
            return e->st;
        }
        if (e->used < victim->used)
            victim = e;
    }
    size_t n = strlen(sql);
    char *rw = sp_malloc(n + 1);
    sp_store_sql_rewrite(sql, rw);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    *rc = sqlite3_prepare_v3(q->db, rw, (int)n, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (*rc == SQLITE_OK && tail && strspn(tail, " \t\r\n;") != strlen(tail)) {
        /* one statement per call: a second one would silently be ignored */
        sqlite3_finalize(st);
        st = NULL;
        *rc = SQLITE_MISUSE;
    }
    sp_free(rw);
    if (*rc != SQLITE_OK || !st) {
        if (*rc == SQLITE_OK)
            *rc = SQLITE_MISUSE; /* empty statement */
        return NULL;
    }
    if (victim->sql) {
        sp_free(victim->sql);
        sqlite3_finalize(victim->st);
    }
    victim->sql = sp_strdup(sql);
    victim->st = st;
    victim->used = ++q->tick;
    return st;
}

static int bind_params(sqlite3_stmt *st, json_t *params)
{
    if (!params)
        return SQLITE_OK;
    if (!json_is_array(params))
        return SQLITE_MISMATCH;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < json_array_size(params) && rc == SQLITE_OK; i++) {
        json_t *v = json_array_get(params, i);
        int k = (int)i + 1;
        switch (json_typeof(v)) {
        case JSON_INTEGER:
            rc = sqlite3_bind_int64(st, k, json_integer_value(v));
            break;
        case JSON_REAL:
            rc = sqlite3_bind_double(st, k, json_real_value(v));
            break;
        case JSON_STRING:
            rc = sqlite3_bind_text(st, k, json_string_value(v), (int)json_string_length(v),
                                   SQLITE_TRANSIENT);
            break;
        case JSON_TRUE:
            rc = sqlite3_bind_int(st, k, 1);
            break;
        case JSON_FALSE:
            rc = sqlite3_bind_int(st, k, 0);
            break;
        case JSON_NULL:
            rc = sqlite3_bind_null(st, k);
            break;
        default: {
            char *txt = json_dumps(v, JSON_COMPACT);
            rc = sqlite3_bind_text(st, k, txt ? txt : "null", -1, SQLITE_TRANSIENT);
            free(txt);
            break;
        }
        }
    }
    return rc;
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++) {
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            v = json_integer(sqlite3_column_int64(st, i));
            break;
        case SQLITE_FLOAT:
            v = json_real(sqlite3_column_double(st, i));
            break;
        case SQLITE_NULL:
            v = json_null();
            break;
        default: {
            const unsigned char *t = sqlite3_column_text(st, i);
            v = json_stringn((const char *)(t ? t : (const unsigned char *)""),
                             (size_t)sqlite3_column_bytes(st, i));
            if (!v) /* not UTF-8 (a BLOB): never produce invalid JSON */
                v = json_null();
            break;
        }
        }
        json_object_set_new(o, sqlite3_column_name(st, i), v);
    }
    return o;
}

/* Runs one statement. rows (may be NULL) receives the result rows. Returns SP_E* or 0. */
static int run_item(sq_t *q, sp_item_t *it, json_t *rows)
{
    int rc;
    sqlite3_stmt *st = prepare(q, it->sql, &rc);
    if (!st) {
        int err = map_err(q->db, rc);
        log_err(q->db, err, "prepare");
        return err;
    }
    if ((rc = bind_params(st, it->params)) != SQLITE_OK) {
        sqlite3_reset(st);
        return SP_EINVAL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (rows)
            json_array_append_new(rows, row_json(st));
    int err = 0;
    if (rc != SQLITE_DONE) {
        err = map_err(q->db, rc);
        log_err(q->db, err, "step");
    } else {
        it->changes = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes64(q->db);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

static int exec_simple(sq_t *q, const char *sql)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int err = map_err(q->db, rc);
        log_err(q->db, err, sql);
        return err;
    }
    return 0;
}

static void run_req(sq_t *q, sp_req_t *r)
{
    int err = 0;
    switch (r->kind) {
    case SP_REQ_QUERY:
        r->rows = json_array();
        err = run_item(q, &r->items[0], r->rows);
        r->changes = r->items[0].changes;
        break;
    case SP_REQ_TX:
        if ((err = exec_simple(q, "BEGIN IMMEDIATE")) != 0)
            break;
        for (size_t i = 0; i < r->n && !err; i++) {
            json_t *rows = i + 1 == r->n ? (r->rows = json_array()) : NULL;
            err = run_item(q, &r->items[i], rows);
            r->changes += r->items[i].changes;
        }
        if (!err)
            err = exec_simple(q, "COMMIT");
        if (err && !sqlite3_get_autocommit(q->db))
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        break;
    case SP_REQ_BATCH:
        /* No savepoint per row: a statement that fails with a constraint error is undone by
           SQLite's statement journal and the transaction stays open. If an error aborted the
           whole transaction (full disk, I/O), every row of the batch fails with it. */
        if ((err = exec_simple(q, "BEGIN IMMEDIATE")) != 0)
            break;
        for (size_t i = 0; i < r->n && !err; i++) {
            sp_item_t *it = &r->items[i];
            it->err = run_item(q, it, NULL);
            if (it->err && (sqlite3_get_autocommit(q->db) || (it->err != SP_EEXISTS &&
                                                               it->err != SP_EDB &&
                                                               it->err != SP_EINVAL)))
                err = it->err; /* the transaction is gone or the disk is in trouble */
        }
        if (!err)
            err = exec_simple(q, "COMMIT");
        if (err) {
            if (!sqlite3_get_autocommit(q->db))
                sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
            for (size_t i = 0; i < r->n; i++) /* nothing of this batch is on disk */
                r->items[i].err = err;
        }
        break;
    }
    if (err) {
        r->err = err;
        for (size_t i = 0; i < r->n; i++)
            if (!r->items[i].err)
                r->items[i].err = err;
    }
    /* health: the disk or file is in trouble, not the caller's statement */
    bool bad = err == SP_EDISKFULL || err == SP_ECORRUPT || err == SP_EIO;
    if (bad)
        atomic_store(&q->healthy, false);
    else if (!err || err == SP_EEXISTS)
        atomic_store(&q->healthy, true);
}

/* The loop thread answers sockets; this thread writes. When both want the same cpu the loop
   should win: the writer runs at a lower priority (Linux: nice is per thread). Its work is
   batched (group commit), so a little lag costs nothing but a slightly later commit. */
#define WORKER_NICE 5

static void worker(void *arg)
{
    sq_t *q = arg;
#ifdef __linux__
    {
        id_t tid = (id_t)syscall(SYS_gettid);
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, tid); /* relative: a niced server stays niced */
        if (errno == 0)
            (void)setpriority(PRIO_PROCESS, tid, cur + WORKER_NICE > 19 ? 19 : cur + WORKER_NICE);
    }
#endif
    for (;;) {
        uv_mutex_lock(&q->mu);
        while (!q->head && !q->stop)
            uv_cond_wait(&q->cv, &q->mu);
        sp_req_t *r = q->head;
        if (r) {
            q->head = r->next;
            if (!q->head)
                q->tail = NULL;
        }
        uv_mutex_unlock(&q->mu);
        if (!r)
            break; /* stop and drained */
        run_req(q, r);
        /* release the statements' text and params here, off the loop thread (the request
           owns them; jansson refcounts are atomic) */
        for (size_t i = 0; i < r->n; i++) {
            sp_free(r->items[i].sql);
            json_decref(r->items[i].params);
            r->items[i].sql = NULL;
            r->items[i].params = NULL;
        }
        sp_store_complete(q->s, r);
    }
}

/* ---- ops ---------------------------------------------------------------------------- */

static void sq_submit(sp_store_t *s, sp_req_t *r)
{
    sq_t *q = s->be;
    r->next = NULL;
    uv_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
}

static void sq_free(sq_t *q)
{
    for (int i = 0; i < CACHE_SIZE; i++) {
        sp_free(q->cache[i].sql);
        sqlite3_finalize(q->cache[i].st);
    }
    if (q->db)
        sqlite3_close(q->db);
    uv_mutex_destroy(&q->mu);
    uv_cond_destroy(&q->cv);
    sp_free(q);
}

static void sq_close(sp_store_t *s)
{
    sq_t *q = s->be;
    uv_mutex_lock(&q->mu);
    q->stop = true;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
    uv_thread_join(&q->th); /* nothing is in flight: the worker is idle and exits at once */
    sqlite3_exec(q->db, "PRAGMA optimize", NULL, NULL, NULL);
    sq_free(q);
    s->be = NULL;
    sp_store_backend_closed(s);
}

static bool sq_healthy(const sp_store_t *s)
{
    sq_t *q = s->be;
    return q && atomic_load(&q->healthy);
}

static const sp_store_ops_t sqlite_ops = { "sqlite", sq_submit, sq_close, sq_healthy };

/* ---- open + migrations (synchronous, before the loop serves) ----------------------- */

static int open_err(sqlite3 *db, int rc, const char *path, const char *what, char *err,
                    size_t errlen)
{
    int e = map_err(db, rc);
    const char *hint = e == SP_ECORRUPT ? " (the file is not a SQLite database or is corrupt)"
                       : e == SP_EBUSY  ? " (another process holds a lock on it)"
                       : e == SP_EDISKFULL ? " (disk full)"
                                           : "";
    snprintf(err, errlen, "database %s: %s failed: %s%s", path, what,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), hint);
    return e;
}

static int db_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    *out = NULL;
    /* create DATA_DIR (one level) if it is missing */
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[4096];
        size_t n = (size_t)(slash - path);
        if (n < sizeof(dir)) {
            memcpy(dir, path, n);
            dir[n] = '\0';
            mkdir(dir, 0700);
        }
    }
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        int e = open_err(db, rc, path, "open", err, errlen);
        sqlite3_close(db);
        return e == SP_EDB ? SP_EIO : e;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, atomic_load(&busy_timeout_ms));
    static const char *const pragmas[] = {
        "PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=FULL",
        "PRAGMA temp_store=MEMORY", "PRAGMA quick_check",
    };
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db, pragmas[i], -1, &st, NULL);
        bool ok_result = true;
        if (rc == SQLITE_OK) {
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *v = (const char *)sqlite3_column_text(st, 0);
                if (i == 0 && (!v || strcmp(v, "wal") != 0))
                    ok_result = false;
                if (i == 4 && (!v || strcmp(v, "ok") != 0))
                    ok_result = false;
            }
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) {
            int e = open_err(db, rc, path, pragmas[i], err, errlen);
            sqlite3_close(db);
            return e;
        }
        if (!ok_result) {
            snprintf(err, errlen, "database %s: %s failed%s", path, pragmas[i],
                     i == 4 ? ": integrity check found corruption" : ": WAL not available");
            sqlite3_close(db);
            return i == 4 ? SP_ECORRUPT : SP_EIO;
        }
    }
    *out = db;
    return 0;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int rc = sqlite3_exec(db,
                          "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          "version BIGINT PRIMARY KEY, name TEXT NOT NULL, "
                          "applied_at BIGINT NOT NULL)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_err(db, rc, path, "creating schema_migrations", err, errlen);
    sqlite3_stmt *st = NULL;
    int64_t cur = 0;
    rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                            &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cur = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return open_err(db, rc, path, "reading schema_migrations", err, errlen);
    int latest = sp_migrations_latest("sqlite");
    if (cur > latest) {
        snprintf(err, errlen,
                 "database %s has schema version %lld, newer than this binary knows (%d); "
                 "run a newer streampai", path, (long long)cur, latest);
        return SP_ESCHEMA;
    }
    for (const sp_migration_t *m = sp_migrations("sqlite"); m->name; m++) {
        if (m->version <= cur)
            continue;
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, m->sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            char ins[160];
            snprintf(ins, sizeof(ins),
                     "INSERT INTO schema_migrations(version, name, applied_at) "
                     "VALUES (%d, '%s', %lld)",
                     m->version, m->name, (long long)sp_wall_ms());
            rc = sqlite3_exec(db, ins, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            char what[96];
            snprintf(what, sizeof(what), "migration %s", m->name);
            int e = open_err(db, rc, path, what, err, errlen);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return e;
        }
        sp_info("store", "migration applied", "backend=sqlite version=%d name=%s", m->version,
                m->name);
    }
    return 0;
}

int sp_store_sqlite_open(sp_store_t *s, const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = db_open(path, &db, err, errlen);
    if (rc == 0 && (rc = migrate(db, path, err, errlen)) != 0) {
        sqlite3_close(db);
        db = NULL;
    }
    if (rc != 0) {
        sp_error("store", "open failed", "backend=sqlite err=%s detail=\"%s\"", sp_err_name(rc),
                 err);
        return rc;
    }
    sq_t *q = sp_calloc(1, sizeof(*q));
    q->s = s;
    q->db = db;
    atomic_init(&q->healthy, true);
    uv_mutex_init(&q->mu);
    uv_cond_init(&q->cv);
    s->be = q;
    s->ops = &sqlite_ops;
    if (uv_thread_create(&q->th, worker, q) != 0) {
        s->be = NULL;
        sq_free(q);
        snprintf(err, errlen, "database %s: cannot start the worker thread", path);
        return SP_EIO;
    }
    return 0;
}

int sp_store_sqlite_migrate_only(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = db_open(path, &db, err, errlen);
    if (rc == 0)
        rc = migrate(db, path, err, errlen);
    if (db)
        sqlite3_close(db);
    return rc;
}
