/* Helpers shared by the store unit tests: a loop, a temp DATA_DIR, synchronous wrappers. */
#ifndef STORE_COMMON_H
#define STORE_COMMON_H

#include <jansson.h>
#include <uv.h>

#include "core/sp_config.h"
#include "store/sp_store.h"

typedef struct {
    uv_loop_t loop;
    sp_config_t cfg;
    char dir[256];
    char url[512];
    char pgdb[64]; /* per-test PG database to drop */
    sp_store_t *s;
    bool pg;
} tenv_t;

typedef struct {
    int done;
    int err;
    json_t *rows;
    int64_t changes;
} tres_t;

/* pg=false: SQLite in a temp dir; pg=true: a fresh database on SP_TEST_PG_URL (skips when unset).
 */
void tenv_setup(tenv_t *e, bool pg);
void tenv_teardown(tenv_t *e);
int tenv_open(tenv_t *e, char *err, size_t errlen);
void tenv_close(tenv_t *e);
tres_t tq(tenv_t *e, const char *sql, json_t *params);
void tres_free(tres_t *r);
int64_t tcount(tenv_t *e, const char *sql);
void tres_cb(int err, json_t *rows, int64_t changes, void *ud);
void twait(tenv_t *e, int *flag);

#endif
