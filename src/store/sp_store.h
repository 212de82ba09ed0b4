/*
 * sp_store: the storage interface (SQLite or PostgreSQL behind one API).
 *
 * SQL is written once for both backends: placeholders $1..$n (the SQLite
 * backend rewrites them to ?1..?n), timestamps as BIGINT milliseconds since the
 * epoch, ids as TEXT UUIDs, booleans as INTEGER 0/1, JSON columns JSONB in PG
 * and TEXT CHECK(json_valid(x)) in SQLite, upserts with ON CONFLICT, RETURNING.
 *
 * Params: a json array; json integers bind as BIGINT, reals as double, strings
 * as text, true/false as 1/0, null as NULL, objects/arrays as their JSON text.
 *
 * Every function is called on the loop thread. Callbacks run on the loop and are
 * never called synchronously.
 *
 * SQLite: one worker thread owns the connection (WAL, foreign_keys=ON,
 * busy_timeout, synchronous=FULL): a query's callback runs after its
 * transaction is durable. PostgreSQL: libpq non-blocking on the loop, a small
 * pool, reconnect with backoff; while the server is down queries fail fast
 * with SP_EUNAVAIL.
 */
#ifndef SP_STORE_H
#define SP_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_config.h"

typedef struct sp_store_s sp_store_t;

/* rows: JSON array of objects {column: value} (integers as json integers, NULL as json null,
   text as strings; JSON columns come back as their JSON text in both backends); borrowed: valid
   only during the callback (json_incref to keep). err: 0 or SP_E* (SP_EEXISTS unique violation,
   SP_EUNAVAIL db down/unreachable, SP_EDISKFULL, SP_EBUSY locked, SP_ECORRUPT, SP_EDB other,
   SP_ETIMEDOUT, SP_ECLOSED after close). On error rows is an empty array. changes: rows affected.
   The callback is never called synchronously. */
typedef void (*sp_store_cb)(int err, json_t *rows, int64_t changes, void *ud);

/* Backend from cfg->database_url: NULL/"" or sqlite:PATH (PATH empty -> DATA_DIR/streampai.db)
   -> SQLite; postgres://... or postgresql://... -> PG. Applies migrations (synchronously, before
   the loop serves). On error returns SP_E* with a one-line message in err. */
int sp_store_open(uv_loop_t *loop, const sp_config_t *cfg, sp_store_t **out, char *err,
                  size_t errlen);

/* One statement. params: array or NULL; reference stolen. */
void sp_store_query(sp_store_t *s, const char *sql, json_t *params, sp_store_cb cb, void *ud);

/* Atomic: all statements in one transaction; cb gets the rows of the LAST statement and the
   sum of changes. params may be NULL (no params anywhere) or hold n entries (each stolen,
   entries may be NULL). */
void sp_store_tx(sp_store_t *s, size_t n, const char *const *sqls, json_t *const *params,
                 sp_store_cb cb, void *ud);

/* Group-committed write for floods (events, viewer samples): queued, written in batches
   (every SP_STORE_BATCH_MS ms or SP_STORE_BATCH_ROWS rows). cb optional (NULL), called after
   the batch commits with that row's own result. A failing row does not fail the batch
   (it runs under a savepoint) and gets its own error. Queue is capped (SP_STORE_QUEUE_MAX):
   beyond it cb gets SP_ELIMIT. */
#define SP_STORE_BATCH_MS 20
#define SP_STORE_BATCH_ROWS 256
#define SP_STORE_BATCH_MAX 2048 /* rows per transaction at most */
#define SP_STORE_QUEUE_MAX 100000
void sp_store_enqueue(sp_store_t *s, const char *sql, json_t *params, sp_store_cb cb, void *ud);

const char *sp_store_backend(const sp_store_t *s); /* "sqlite" | "postgres" */
bool sp_store_healthy(const sp_store_t *s);        /* for /readyz */

/* Flush queued writes, finish in-flight queries, close; done(ud) on the loop when finished.
   The store is freed before done runs: call nothing on it after sp_store_close (queued
   enqueue rows are still written; requests submitted from callbacks during close fail
   with SP_ECLOSED). */
void sp_store_close(sp_store_t *s, void (*done)(void *ud), void *ud);

/* `streampai migrate`: opens the database, applies migrations, closes. Blocking. */
int sp_store_migrate_only(const sp_config_t *cfg, char *err, size_t errlen);

/* Statistics (for tests, /metrics and the benchmark). */
typedef struct {
    uint64_t queries;      /* statements completed */
    uint64_t errors;       /* statements failed */
    uint64_t batches;      /* group commits done */
    uint64_t batch_rows;   /* rows written through enqueue */
    uint64_t batch_max;    /* largest batch */
    uint64_t queued;       /* rows currently waiting in the enqueue queue */
} sp_store_stats_t;
void sp_store_stats(const sp_store_t *s, sp_store_stats_t *out);

/* SQLite busy timeout in ms for stores opened afterwards (default 5000; tests lower it). */
void sp_store_set_busy_timeout(int ms);

/* $1..$n -> ?1..?n outside quotes and comments, as the SQLite backend does (for tests).
   out must hold strlen(sql)+1 bytes. */
void sp_store_sql_rewrite_pub(const char *sql, char *out);

/* Schema version this binary knows (highest embedded migration). */
int sp_store_schema_version(void);

#endif
