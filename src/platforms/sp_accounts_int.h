/*
 * sp_accounts_int: what sp_accounts.c (cache, loads, refresher) and sp_accounts_ops.c
 * (connect, disconnect, list) share. Not for use outside those two files.
 */
#ifndef SP_ACCOUNTS_INT_H
#define SP_ACCOUNTS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_map.h"
#include "platforms/sp_accounts.h"

#define SP_ACC_MOD "accounts"
#define SP_ACC_PLATFORM_CAP 32
#define SP_ACC_KEY_CAP (SP_UUID_STRLEN + SP_ACC_PLATFORM_CAP + 2)
#define SP_ACC_PURPOSE_CAP (SP_ACC_PLATFORM_CAP + 8)
#define SP_ACC_HTTP_TIMEOUT_MS 10000

/** One cached account: the public part first (a->owner points back here). */
typedef struct sp_acc_s {
    sp_platform_account_t a;
    struct sp_accounts_s *acc; /* NULL once out of the cache */
    char key[SP_ACC_KEY_CAP];  /* "user_id|platform" */
    char *sealed_refresh;      /* the refresh_token column as last read or written */
    json_t *extra;             /* extra_data as stored */
    bool needs_reauth;         /* extra_data.status */
    uint64_t gen;              /* bumped when a grant is installed or removed */
} sp_acc_t;

/** An asynchronous operation, linked into its accounts object until it ends. */
typedef struct sp_acc_op_s sp_acc_op_t;
typedef void (*sp_acc_cancel_fn)(sp_acc_op_t *op);
struct sp_acc_op_s {
    struct sp_accounts_s *acc; /* NULL once ended or canceled */
    sp_acc_cancel_fn cancel;   /* answers SP_ECANCELED and unlinks */
    sp_acc_op_t *prev, *next;
};

/** An answer waiting for the next loop turn. */
typedef struct sp_acc_deliver_s {
    sp_accounts_get_cb get_cb;
    sp_platform_done_cb done_cb;
    sp_accounts_json_cb json_cb;
    void *ud;
    int err;
    sp_acc_t *w; /* get: referenced for the caller */
    struct sp_acc_deliver_s *next;
} sp_acc_deliver_t;

struct sp_accounts_s {
    const sp_platform_env_t *env;
    struct sp_store_s *store;
    sp_accounts_status_fn on_status;
    void *ud;
    sp_map_t *cache;    /* key -> sp_acc_t (one reference each) */
    sp_map_t *loads;    /* key -> the load in flight */
    sp_map_t *degraded; /* keys the supervisor marked degraded */
    sp_acc_op_t *ops;
    uv_idle_t defer; /* runs while answers wait: the loop does not sleep meanwhile */
    sp_acc_deliver_t *dq_head, *dq_tail;
    size_t dq_len;
    bool closing;
};

void sp_acc_key(char out[SP_ACC_KEY_CAP], const char *user_id, const char *platform);
bool sp_acc_args_ok(const char *user_id, const char *platform);
void sp_acc_wipe_free(char **p);
/** Unseals a token column (NULL sealed: *out NULL, 0). SP_ECRYPTO. */
int sp_acc_unseal(const char *user_id, const char *platform, const char *sealed, char **out);
/** Seals a token for its column (purpose "oauth:<platform>"); NULL when secrets are off. */
char *sp_acc_seal(const char *user_id, const char *platform, const char *plain);
void sp_acc_status(struct sp_accounts_s *acc, const char *user_id, const char *platform,
                   sp_platform_status_t st, const char *error);

void sp_acc_link(struct sp_accounts_s *acc, sp_acc_op_t *op, sp_acc_cancel_fn cancel);
void sp_acc_unlink(sp_acc_op_t *op);
void sp_acc_defer_done(struct sp_accounts_s *acc, int err, sp_platform_done_cb cb, void *ud);
void sp_acc_defer_json(struct sp_accounts_s *acc, int err, sp_accounts_json_cb cb, void *ud);

void sp_acc_uncache(sp_acc_t *w);
/** Who, scopes and needs_reauth from extra_data (an object; anything else: empty). */
void sp_acc_fill_extra(sp_acc_t *w, json_t *extra);
void sp_acc_install(sp_acc_t *w, const char *access, const char *refresh, int64_t expires_at);
void sp_acc_mark_stale(struct sp_accounts_s *acc, const char *key);

/** "a b c" from a JSON array of strings (others skipped; stops before overflowing cap). */
void sp_acc_scopes_join(const json_t *arr, char *out, size_t cap);

#endif
