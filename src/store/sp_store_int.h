/*
 * sp_store_int: what the common store layer (sp_store.c) shares with its two
 * backends (sp_store_sqlite.c, sp_store_pg.c). Not for other modules.
 *
 * A request (sp_req_t) is one unit of work for a backend:
 *  - QUERY: one statement in autocommit; cb gets its rows.
 *  - TX:    n statements in one transaction; all or nothing; cb gets the last rows.
 *  - BATCH: n enqueued rows in one transaction; a failing row is skipped (savepoint or
 *           retry) and gets its own error; each item's cb is called.
 * Backends hand finished requests to sp_store_complete() (thread-safe); the common
 * layer calls the callbacks on the loop.
 */
#ifndef SP_STORE_INT_H
#define SP_STORE_INT_H

#include <stdatomic.h>

#include "store/sp_store.h"

typedef enum { SP_REQ_QUERY = 0, SP_REQ_TX, SP_REQ_BATCH } sp_req_kind_t;

typedef struct {
    char *sql;
    json_t *params; /* array or NULL (owned) */
    sp_store_cb cb; /* BATCH only */
    void *ud;
    int err;
    int64_t changes;
} sp_item_t;

typedef struct sp_req_s {
    struct sp_req_s *next;
    sp_req_kind_t kind;
    size_t n;
    sp_item_t *items;
    sp_store_cb cb;
    void *ud;
    int err;
    json_t *rows; /* result rows (QUERY/TX), NULL until set */
    int64_t changes;
} sp_req_t;

typedef struct {
    const char *name;
    /* Loop thread. The backend owns req until it passes it to sp_store_complete. */
    void (*submit)(sp_store_t *s, sp_req_t *req);
    /* Loop thread; nothing in flight. Must end with sp_store_backend_closed(s). */
    void (*close)(sp_store_t *s);
    bool (*healthy)(const sp_store_t *s);
} sp_store_ops_t;

struct sp_store_s {
    uv_loop_t *loop;
    const sp_store_ops_t *ops;
    void *be;
    /* completions (any thread -> loop) */
    uv_async_t *async;
    uv_mutex_t done_mu;
    sp_req_t *done_head, *done_tail;
    /* group commit */
    sp_item_t *q;
    size_t qlen, qcap;
    uv_timer_t *timer;
    bool timer_armed;
    bool batch_inflight;
    size_t inflight; /* requests handed to the backend */
    /* close */
    bool closing;
    bool backend_closing;
    int handles_open;
    void (*done)(void *ud);
    void *done_ud;
    sp_store_stats_t stats;
};

/* Thread-safe: hand a finished request back to the loop. */
void sp_store_complete(sp_store_t *s, sp_req_t *req);
/* Loop: the backend has released everything; frees the store once handles are closed. */
void sp_store_backend_closed(sp_store_t *s);
/* Finishes req with err without running it (on the loop or a worker). */
void sp_store_fail(sp_store_t *s, sp_req_t *req, int err);

/* Backends. Open applies migrations synchronously. */
int sp_store_sqlite_open(sp_store_t *s, const char *path, char *err, size_t errlen);
int sp_store_pg_open(sp_store_t *s, const char *url, int pool, char *err, size_t errlen);
int sp_store_sqlite_migrate_only(const char *path, char *err, size_t errlen);
int sp_store_pg_migrate_only(const char *url, char *err, size_t errlen);

/* $1..$n -> ?1..?n outside quotes and comments (same length; out has strlen(sql)+1). */
void sp_store_sql_rewrite(const char *sql, char *out);

#endif
