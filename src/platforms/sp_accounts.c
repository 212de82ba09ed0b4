/*
 * sp_accounts: the connected platform accounts (see the header). This file holds the cache,
 * the single-flight loads and the token refresher; sp_accounts_ops.c holds connect,
 * disconnect and list. Both share sp_accounts_int.h.
 *
 * Lifetimes: the cache holds one reference on every account it maps; a get hands the caller
 * another. Every asynchronous operation is an op linked into the accounts object: at
 * sp_accounts_free each is answered SP_ECANCELED and detached (op->acc = NULL), and frees
 * itself when its store query or HTTP request comes back. A refresh in flight holds a
 * reference on its account, so the account outlives it.
 */
#include "platforms/sp_accounts.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth/sp_seal.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"
#include "platforms/sp_accounts_int.h"
#include "store/sp_store.h"

#define MAX_LOAD_WAITERS 4096 /* gets waiting on one load: more answer SP_ELIMIT */

/* ---- small helpers shared with sp_accounts_ops.c ------------------------------------------ */

void sp_acc_key(char out[SP_ACC_KEY_CAP], const char *user_id, const char *platform)
{
    snprintf(out, SP_ACC_KEY_CAP, "%s|%s", user_id, platform);
}

static void purpose_of(char out[SP_ACC_PURPOSE_CAP], const char *platform)
{
    snprintf(out, SP_ACC_PURPOSE_CAP, "oauth:%s", platform);
}

bool sp_acc_args_ok(const char *user_id, const char *platform)
{
    if (!user_id || !platform)
        return false;
    size_t ul = strnlen(user_id, SP_UUID_STRLEN);
    size_t pl = strnlen(platform, SP_ACC_PLATFORM_CAP);
    return ul > 0 && ul < SP_UUID_STRLEN && pl > 0 && pl < SP_ACC_PLATFORM_CAP;
}

void sp_acc_wipe_free(char **p)
{
    if (*p) {
        sodium_memzero(*p, strlen(*p));
        sp_free(*p);
        *p = NULL;
    }
}

int sp_acc_unseal(const char *user_id, const char *platform, const char *sealed, char **out)
{
    *out = NULL;
    if (!sealed)
        return 0;
    char purpose[SP_ACC_PURPOSE_CAP];
    purpose_of(purpose, platform);
    sp_buf_t b;
    sp_buf_init(&b, SP_OAUTH_MAX_TOKEN);
    int rc = sp_unseal(user_id, purpose, sealed, &b);
    if (rc == 0 && (b.len == 0 || memchr(b.p, '\0', b.len)))
        rc = SP_ECRYPTO;
    if (rc == 0)
        *out = sp_strndup(b.p, b.len);
    if (b.p)
        sodium_memzero(b.p, b.len);
    sp_buf_cleanup(&b);
    return rc == 0 ? 0 : SP_ECRYPTO;
}

char *sp_acc_seal(const char *user_id, const char *platform, const char *plain)
{
    char purpose[SP_ACC_PURPOSE_CAP];
    purpose_of(purpose, platform);
    return sp_seal(user_id, purpose, plain, strlen(plain));
}

void sp_acc_status(sp_accounts_t *acc, const char *user_id, const char *platform,
                   sp_platform_status_t st, const char *error)
{
    if (acc->on_status)
        acc->on_status(acc->ud, user_id, platform, st, error ? error : "");
}

/* ---- ops ------------------------------------------------------------------------------------ */

void sp_acc_link(sp_accounts_t *acc, sp_acc_op_t *op, sp_acc_cancel_fn cancel)
{
    op->acc = acc;
    op->cancel = cancel;
    op->prev = NULL;
    op->next = acc->ops;
    if (acc->ops)
        acc->ops->prev = op;
    acc->ops = op;
}

void sp_acc_unlink(sp_acc_op_t *op)
{
    if (!op->acc)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        op->acc->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    op->acc = NULL;
}

/* ---- deferred answers (callbacks are never synchronous) ------------------------------------ */

static void on_defer(uv_idle_t *h);

static void defer(sp_accounts_t *acc, sp_acc_deliver_t *d)
{
    if (acc->dq_tail)
        acc->dq_tail->next = d;
    else
        acc->dq_head = d;
    acc->dq_tail = d;
    acc->dq_len++;
    uv_idle_start(&acc->defer, on_defer); /* no-op when started */
}

void sp_acc_defer_done(sp_accounts_t *acc, int err, sp_platform_done_cb cb, void *ud)
{
    sp_acc_deliver_t *d = sp_calloc(1, sizeof(*d));
    d->done_cb = cb;
    d->ud = ud;
    d->err = err;
    defer(acc, d);
}

void sp_acc_defer_json(sp_accounts_t *acc, int err, sp_accounts_json_cb cb, void *ud)
{
    sp_acc_deliver_t *d = sp_calloc(1, sizeof(*d));
    d->json_cb = cb;
    d->ud = ud;
    d->err = err;
    defer(acc, d);
}

static void defer_get(sp_accounts_t *acc, int err, sp_acc_t *w, sp_accounts_get_cb cb, void *ud)
{
    sp_acc_deliver_t *d = sp_calloc(1, sizeof(*d));
    d->get_cb = cb;
    d->ud = ud;
    d->err = err;
    d->w = w;
    defer(acc, d);
}

static void deliver(sp_acc_deliver_t *d, int err)
{
    if (d->get_cb) {
        sp_platform_account_t *a = d->w ? &d->w->a : NULL;
        if (!err && a && a->disconnected)
            err = SP_ENOTFOUND; /* disconnected between the get and its answer */
        if (err && a) {
            sp_platform_account_unref(a);
            a = NULL;
        }
        d->get_cb(err, err ? NULL : a, d->ud);
    } else if (d->done_cb) {
        d->done_cb(err, d->ud);
    } else if (d->json_cb) {
        d->json_cb(err, NULL, d->ud);
    }
    sp_free(d);
}

static sp_acc_deliver_t *dq_pop(sp_accounts_t *acc)
{
    sp_acc_deliver_t *d = acc->dq_head;
    if (d) {
        acc->dq_head = d->next;
        if (!acc->dq_head)
            acc->dq_tail = NULL;
        acc->dq_len--;
        d->next = NULL;
    }
    return d;
}

static void on_defer(uv_idle_t *h)
{
    sp_accounts_t *acc = h->data;
    /* only what was queued before this turn: an answer that gets again waits for the next */
    size_t n = acc->dq_len;
    while (n-- > 0 && !acc->closing) {
        sp_acc_deliver_t *d = dq_pop(acc);
        if (!d)
            break;
        deliver(d, d->err);
    }
    if (!acc->closing && !acc->dq_head)
        uv_idle_stop(&acc->defer);
}

/* ---- accounts ------------------------------------------------------------------------------ */

static void acct_free_hook(sp_platform_account_t *a)
{
    sp_acc_t *w = a->owner;
    sp_token_free(a->token);
    a->token = NULL;
    sp_free(w->sealed_refresh);
    json_decref(w->extra);
    sodium_memzero(w, sizeof(*w));
    sp_free(w);
}

/* Removes w from the cache (its reference goes); holders keep theirs. */
void sp_acc_uncache(sp_acc_t *w)
{
    sp_accounts_t *acc = w->acc;
    if (!acc)
        return;
    void *taken = NULL;
    sp_map_dels(acc->cache, w->key, &taken);
    w->acc = NULL;
    sp_platform_account_unref(&w->a);
}

static void refresher(sp_token_t *t, const char *refresh_token, void *ud);

/* Who, scopes and status from the extra_data JSON (an object or its text). */
void sp_acc_fill_extra(sp_acc_t *w, json_t *extra)
{
    sp_platform_account_t *a = &w->a;
    json_decref(w->extra);
    w->extra = json_is_object(extra) ? json_deep_copy(extra) : json_object();
    memset(&a->who, 0, sizeof(a->who));
    a->scopes[0] = '\0';
    w->needs_reauth = false;
    if (!json_is_object(extra))
        return;
    sp_json_strcpy(extra, "id", a->who.id, sizeof(a->who.id), 0, NULL);
    sp_json_strcpy(extra, "login", a->who.login, sizeof(a->who.login), 0, NULL);
    sp_json_strcpy(extra, "display_name", a->who.display_name, sizeof(a->who.display_name), 0,
                   NULL);
    sp_json_strcpy(extra, "email", a->who.email, sizeof(a->who.email), 0, NULL);
    a->who.email_verified = json_is_true(json_object_get(extra, "email_verified"));
    sp_acc_scopes_join(json_object_get(extra, "scopes"), a->scopes, sizeof(a->scopes));
    const char *st = sp_json_str(extra, "status");
    w->needs_reauth = st && strcmp(st, "needs_reauth") == 0;
}

static void noop_token_cb(int err, const char *tok, void *ud)
{
    (void)err;
    (void)tok;
    (void)ud;
}

/* Installs a grant in w's token; a needs_reauth account holds no token and answers SP_EAUTH
 * at once (a get with no grant and nothing to refresh with turns the token to needs_reauth). */
void sp_acc_install(sp_acc_t *w, const char *access, const char *refresh, int64_t expires_at)
{
    if (w->needs_reauth) {
        sp_token_set(w->a.token, NULL, NULL, 0);
        sp_token_get(w->a.token, sp_wall_ms(), NULL, noop_token_cb, NULL);
    } else {
        sp_token_set(w->a.token, access, refresh, expires_at);
    }
}

/* A new cached account from its row (refs 1: the cache's). */
static int acct_from_row(sp_accounts_t *acc, const char *key, const char *user_id,
                         const sp_platform_t *p, json_t *row, sp_acc_t **out)
{
    *out = NULL;
    const char *sa = sp_json_str(row, "access_token");
    const char *sr = sp_json_str(row, "refresh_token");
    char *access = NULL, *refresh = NULL;
    int rc = sp_acc_unseal(user_id, p->name, sa, &access);
    if (rc == 0 && !access)
        rc = SP_ECRYPTO;
    if (rc == 0)
        rc = sp_acc_unseal(user_id, p->name, sr, &refresh);
    if (rc != 0) {
        sp_ulog(SP_LOG_WARN, SP_ACC_MOD, user_id, "cannot unseal the account's tokens",
                "platform=%s", p->name);
        goto done;
    }
    json_t *extra = NULL;
    const char *et = sp_json_str(row, "extra_data");
    if (et)
        extra = json_loads(et, JSON_REJECT_DUPLICATES, NULL);
    else if (json_is_object(json_object_get(row, "extra_data")))
        extra = json_incref(json_object_get(row, "extra_data"));
    sp_acc_t *w = sp_calloc(1, sizeof(*w));
    w->a.refs = 1;
    snprintf(w->a.user_id, sizeof(w->a.user_id), "%s", user_id);
    w->a.platform = p;
    w->a.owner = w;
    snprintf(w->key, sizeof(w->key), "%s", key);
    w->sealed_refresh = sr ? sp_strdup(sr) : NULL;
    sp_acc_fill_extra(w, extra);
    json_decref(extra);
    w->a.token = sp_token_new(refresher, w);
    json_int_t exp = json_integer_value(json_object_get(row, "access_token_expires_at"));
    sp_acc_install(w, access, refresh, exp > 0 ? (int64_t)exp : 0);
    w->acc = acc;
    sp_map_sets(acc->cache, key, w);
    *out = w;
done:
    sp_acc_wipe_free(&access);
    sp_acc_wipe_free(&refresh);
    return rc;
}

/* ---- get: single-flight loads ------------------------------------------------------------- */

typedef struct waiter_s {
    sp_accounts_get_cb cb;
    void *ud;
    struct waiter_s *next;
} waiter_t;

typedef struct {
    sp_acc_op_t op;
    char key[SP_ACC_KEY_CAP];
    char user[SP_UUID_STRLEN];
    const sp_platform_t *p;
    waiter_t *head, *tail;
    size_t n;
    bool stale; /* a connect/disconnect of this account finished while the query ran */
} load_t;

static void load_answer(load_t *l, sp_accounts_t *acc, int err, sp_acc_t *w)
{
    waiter_t *x = l->head;
    l->head = l->tail = NULL;
    while (x) {
        waiter_t *next = x->next;
        int e = err;
        if (acc && acc->closing)
            e = SP_ECANCELED; /* sp_accounts_free ran from an earlier waiter's callback */
        if (!e && w) {
            sp_platform_account_ref(&w->a);
            x->cb(0, &w->a, x->ud);
        } else {
            x->cb(e ? e : SP_ENOTFOUND, NULL, x->ud);
        }
        sp_free(x);
        x = next;
    }
}

static void load_cancel(sp_acc_op_t *op)
{
    load_t *l = (load_t *)op;
    sp_map_dels(op->acc->loads, l->key, NULL);
    sp_acc_unlink(op);
    load_answer(l, NULL, SP_ECANCELED, NULL);
}

static void on_load(int err, json_t *rows, int64_t changes, void *ud);

static void load_issue(load_t *l)
{
    sp_store_query(l->op.acc->store,
                   "SELECT access_token, refresh_token, access_token_expires_at, extra_data "
                   "FROM streaming_account WHERE user_id = $1 AND platform = $2",
                   json_pack("[s, s]", l->user, l->p->name), on_load, l);
}

static void on_load(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    load_t *l = ud;
    sp_accounts_t *acc = l->op.acc;
    if (!acc) { /* canceled: the waiters were answered */
        sp_free(l);
        return;
    }
    if (l->stale && !err) {
        l->stale = false;
        load_issue(l);
        return;
    }
    sp_map_dels(acc->loads, l->key, NULL);
    sp_acc_unlink(&l->op);
    sp_acc_t *w = NULL;
    if (!err && json_array_size(rows) == 0)
        err = SP_ENOTFOUND;
    if (!err) {
        w = sp_map_gets(acc->cache, l->key); /* a connect raced in: keep the one cached */
        if (!w)
            err = acct_from_row(acc, l->key, l->user, l->p, json_array_get(rows, 0), &w);
    }
    load_answer(l, acc, err, w);
    sp_free(l);
}

void sp_accounts_get(sp_accounts_t *acc, const char *user_id, const char *platform,
                     sp_accounts_get_cb cb, void *ud)
{
    if (!acc || !cb)
        return;
    if (acc->closing) {
        cb(SP_ECANCELED, NULL, ud);
        return;
    }
    if (!sp_acc_args_ok(user_id, platform)) {
        defer_get(acc, SP_EINVAL, NULL, cb, ud);
        return;
    }
    const sp_platform_t *p = sp_platform_find(platform);
    if (!p) {
        defer_get(acc, SP_ENOTFOUND, NULL, cb, ud);
        return;
    }
    char key[SP_ACC_KEY_CAP];
    sp_acc_key(key, user_id, platform);
    sp_acc_t *w = sp_map_gets(acc->cache, key);
    if (w) {
        sp_platform_account_ref(&w->a);
        defer_get(acc, 0, w, cb, ud);
        return;
    }
    load_t *l = sp_map_gets(acc->loads, key);
    if (l && l->n >= MAX_LOAD_WAITERS) {
        defer_get(acc, SP_ELIMIT, NULL, cb, ud);
        return;
    }
    waiter_t *x = sp_calloc(1, sizeof(*x));
    x->cb = cb;
    x->ud = ud;
    bool start = !l;
    if (start) {
        l = sp_calloc(1, sizeof(*l));
        snprintf(l->key, sizeof(l->key), "%s", key);
        snprintf(l->user, sizeof(l->user), "%s", user_id);
        l->p = p;
        sp_acc_link(acc, &l->op, load_cancel);
        sp_map_sets(acc->loads, key, l);
    }
    if (l->tail)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
    l->n++;
    if (start)
        load_issue(l);
}

/* A write of this account finished: a load in flight may have read the row before it. */
void sp_acc_mark_stale(sp_accounts_t *acc, const char *key)
{
    load_t *l = sp_map_gets(acc->loads, key);
    if (l)
        l->stale = true;
}

/* ---- refresh -------------------------------------------------------------------------------- */

typedef struct {
    sp_acc_op_t op;
    sp_acc_t *w;              /* referenced */
    uint64_t gen;             /* w->gen when it started: a reconnect meanwhile wins */
    char *old_sealed_refresh; /* the row is updated only while it still holds this */
    sp_oauth_token_t tok;
    char *sealed_refresh;     /* the new one (NULL: the provider kept the old one) */
    int64_t expires_at;
} refresh_t;

static void cancel_refresh(sp_acc_t *w);

/* Shutdown: the token's waiters end with SP_ECANCELED now; the HTTP or store answer still to
 * come finds the op detached and only drops its reference. */
static void refresh_cancel(sp_acc_op_t *op)
{
    refresh_t *r = (refresh_t *)op;
    sp_acc_unlink(op);
    cancel_refresh(r->w);
}

static void refresh_end(refresh_t *r, sp_token_refresh_result_t res)
{
    sp_acc_unlink(&r->op);
    sp_platform_account_t *a = &r->w->a;
    if (res == SP_TOKEN_REFRESH_OK) {
        sp_token_refreshed(a->token, res, r->tok.access_token, r->tok.refresh_token,
                           r->expires_at);
    } else {
        sp_token_refreshed(a->token, res, NULL, NULL, 0);
    }
    sp_oauth_token_clear(&r->tok);
    sp_free(r->old_sealed_refresh);
    sp_free(r->sealed_refresh);
    sp_platform_account_unref(a);
    sp_free(r);
}

static void refresh_drop(refresh_t *r) /* canceled: touch nothing but r and its reference */
{
    sp_oauth_token_clear(&r->tok);
    sp_free(r->old_sealed_refresh);
    sp_free(r->sealed_refresh);
    sp_platform_account_unref(&r->w->a);
    sp_free(r);
}

static void on_reauth_saved(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    refresh_t *r = ud;
    if (!r->op.acc) {
        refresh_drop(r);
        return;
    }
    sp_acc_t *w = r->w;
    if (err)
        sp_ulog(SP_LOG_ERROR, SP_ACC_MOD, w->a.user_id, "cannot save needs_reauth",
                "platform=%s err=%s", w->a.platform->name, sp_err_name(err));
    if ((!err && changes == 0) || w->gen != r->gen || w->a.disconnected) {
        refresh_end(r, SP_TOKEN_REFRESH_RETRY); /* reconnected or disconnected meanwhile */
        return;
    }
    w->needs_reauth = true;
    json_object_set_new(w->extra, "status", json_string("needs_reauth"));
    sp_acc_status(r->op.acc, w->a.user_id, w->a.platform->name, SP_PSTATUS_NEEDS_REAUTH,
                  r->tok.error[0] ? r->tok.error : "the platform refused the grant");
    if (!r->op.acc) { /* sp_accounts_free ran from the status callback */
        refresh_drop(r);
        return;
    }
    refresh_end(r, SP_TOKEN_REFRESH_REAUTH);
}

static void save_reauth(refresh_t *r)
{
    sp_acc_t *w = r->w;
    json_t *extra = json_deep_copy(w->extra);
    json_object_set_new(extra, "status", json_string("needs_reauth"));
    sp_store_query(r->op.acc->store,
                   "UPDATE streaming_account SET extra_data = $3, updated_at = $4 "
                   "WHERE user_id = $1 AND platform = $2 AND refresh_token = $5",
                   json_pack("[s, s, o, I, s]", w->a.user_id, w->a.platform->name, extra,
                             (json_int_t)sp_wall_ms(), r->old_sealed_refresh),
                   on_reauth_saved, r);
}

static void on_tokens_saved(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    refresh_t *r = ud;
    if (!r->op.acc) {
        refresh_drop(r);
        return;
    }
    sp_acc_t *w = r->w;
    if ((!err && changes == 0) || w->gen != r->gen || w->a.disconnected) {
        /* the grant was replaced (reconnect) or removed meanwhile: the newer state wins */
        refresh_end(r, SP_TOKEN_REFRESH_RETRY);
        return;
    }
    if (err) {
        /* the provider has already rotated the grant: the old refresh token in the row is
         * dead either way, so the new one is kept in memory rather than lost */
        sp_ulog(SP_LOG_ERROR, SP_ACC_MOD, w->a.user_id, "cannot save refreshed tokens",
                "platform=%s err=%s", w->a.platform->name, sp_err_name(err));
    }
    if (r->sealed_refresh) {
        sp_free(w->sealed_refresh);
        w->sealed_refresh = r->sealed_refresh;
        r->sealed_refresh = NULL;
    }
    refresh_end(r, SP_TOKEN_REFRESH_OK);
}

static void save_tokens(refresh_t *r)
{
    sp_acc_t *w = r->w;
    const char *user = w->a.user_id, *name = w->a.platform->name;
    char *sealed_access = sp_acc_seal(user, name, r->tok.access_token);
    if (r->tok.refresh_token)
        r->sealed_refresh = sp_acc_seal(user, name, r->tok.refresh_token);
    if (!sealed_access || (r->tok.refresh_token && !r->sealed_refresh)) {
        sp_ulog(SP_LOG_ERROR, SP_ACC_MOD, user, "cannot seal refreshed tokens", "platform=%s",
                name);
        sp_free(sealed_access);
        refresh_end(r, SP_TOKEN_REFRESH_RETRY);
        return;
    }
    sp_store_query(r->op.acc->store,
                   "UPDATE streaming_account SET access_token = $3, "
                   "refresh_token = COALESCE($4, refresh_token), access_token_expires_at = $5, "
                   "updated_at = $6 WHERE user_id = $1 AND platform = $2 AND refresh_token = $7",
                   json_pack("[s, s, s, s?, o, I, s]", user, name, sealed_access,
                             r->sealed_refresh,
                             r->expires_at > 0 ? json_integer(r->expires_at) : json_null(),
                             (json_int_t)sp_wall_ms(), r->old_sealed_refresh),
                   on_tokens_saved, r);
    sp_free(sealed_access);
}

static void on_refresh_http(const sp_curlm_response_t *res, void *ud)
{
    refresh_t *r = ud;
    if (!r->op.acc) {
        refresh_drop(r);
        return;
    }
    sp_acc_t *w = r->w;
    const char *user = w->a.user_id, *name = w->a.platform->name;
    if (w->gen != r->gen || w->a.disconnected) {
        refresh_end(r, SP_TOKEN_REFRESH_RETRY); /* a new grant (or none) is already in */
        return;
    }
    if (res->err) {
        sp_ulog(SP_LOG_WARN, SP_ACC_MOD, user, "token refresh failed", "platform=%s err=%s",
                name, sp_err_name(res->err));
        refresh_end(r, SP_TOKEN_REFRESH_RETRY);
        return;
    }
    sp_oauth_result_t pr = sp_oauth_parse_token((int)res->status, res->body, res->body_len,
                                                &r->tok);
    switch (pr) {
    case SP_OAUTH_OK:
        r->expires_at = r->tok.expires_in_s > 0 ? sp_wall_ms() + r->tok.expires_in_s * 1000 : 0;
        save_tokens(r);
        return;
    case SP_OAUTH_REAUTH:
        sp_ulog(SP_LOG_WARN, SP_ACC_MOD, user, "refresh refused: needs reauth",
                "platform=%s status=%ld reason=\"%s\"", name, res->status, r->tok.error);
        save_reauth(r);
        return;
    default:
        sp_ulog(SP_LOG_WARN, SP_ACC_MOD, user, "token refresh failed",
                "platform=%s status=%ld reason=\"%s\"", name, res->status, r->tok.error);
        refresh_end(r, SP_TOKEN_REFRESH_RETRY);
        return;
    }
}

static void refresher(sp_token_t *t, const char *refresh_token, void *ud)
{
    sp_acc_t *w = ud;
    sp_accounts_t *acc = w->acc;
    const sp_platform_t *p = w->a.platform;
    sp_platform_oauth_t od;
    memset(&od, 0, sizeof(od));
    if (!acc || acc->closing || w->a.disconnected || !w->sealed_refresh || !p->oauth ||
        !p->oauth(acc->env->cfg, &od) || !od.token_url) {
        sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
        return;
    }
    sp_buf_t form;
    sp_buf_init(&form, 4 * SP_OAUTH_MAX_TOKEN);
    sp_oauth_form_t f = { .grant = SP_OAUTH_GRANT_REFRESH, .client_id = od.client_id,
                          .client_secret = od.client_secret, .refresh_token = refresh_token };
    int rc = sp_oauth_token_form(&f, &form);
    refresh_t *r = NULL;
    if (rc == 0) {
        r = sp_calloc(1, sizeof(*r));
        r->w = w;
        r->gen = w->gen;
        r->old_sealed_refresh = sp_strdup(w->sealed_refresh);
        sp_platform_account_ref(&w->a);
        sp_acc_link(acc, &r->op, refresh_cancel);
        static const char *const headers[] = {
            "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL
        };
        sp_curlm_request_t req = { .method = "POST", .url = od.token_url, .headers = headers,
                                   .body = form.p, .body_len = form.len,
                                   .timeout_ms = SP_ACC_HTTP_TIMEOUT_MS,
                                   .max_response_bytes = SP_OAUTH_MAX_BODY,
                                   .ca_file = acc->env->ca_file };
        rc = sp_curlm_request(acc->env->http, &req, on_refresh_http, r);
    }
    if (form.p)
        sodium_memzero(form.p, form.len);
    sp_buf_cleanup(&form);
    if (rc != 0) {
        sp_ulog(SP_LOG_WARN, SP_ACC_MOD, w->a.user_id, "cannot start a token refresh",
                "platform=%s err=%s", p->name, sp_err_name(rc));
        if (r)
            refresh_end(r, SP_TOKEN_REFRESH_RETRY);
        else
            sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
    }
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

sp_accounts_t *sp_accounts_new(const sp_platform_env_t *env, struct sp_store_s *store,
                               sp_accounts_status_fn on_status, void *ud)
{
    if (!env || !env->loop || !env->cfg || !store)
        return NULL;
    sp_accounts_t *acc = sp_calloc(1, sizeof(*acc));
    acc->env = env;
    acc->store = store;
    acc->on_status = on_status;
    acc->ud = ud;
    acc->cache = sp_map_new(NULL);
    acc->loads = sp_map_new(NULL);
    acc->degraded = sp_map_new(NULL);
    uv_idle_init(env->loop, &acc->defer);
    acc->defer.data = acc;
    sp_platform_account_set_free_hook(acct_free_hook);
    return acc;
}

static void on_closed(uv_handle_t *h)
{
    sp_free(h->data);
}

/* A refresh in flight at shutdown: its waiters end with SP_ECANCELED now (the old token is
 * freed), and the account keeps a token without a grant (later gets: SP_EAUTH). The caller
 * holds a reference on w. */
static void cancel_refresh(sp_acc_t *w)
{
    sp_token_t *old = w->a.token;
    w->a.token = sp_token_new(refresher, w);
    sp_token_free(old);
}

void sp_accounts_free(sp_accounts_t *acc)
{
    if (!acc || acc->closing)
        return;
    acc->closing = true;
    uv_idle_stop(&acc->defer);
    /* answers may re-enter (a callback may unref, or even try a get: SP_ECANCELED) */
    sp_acc_deliver_t *d;
    while ((d = dq_pop(acc)))
        deliver(d, SP_ECANCELED);
    while (acc->ops)
        acc->ops->cancel(acc->ops);
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    /* collect first: uncaching must not change the map under the iteration */
    size_t n = sp_map_count(acc->cache), i = 0;
    sp_acc_t **all = sp_calloc(n ? n : 1, sizeof(*all));
    while (i < n && sp_map_next(acc->cache, &it, &k, &kl, &v))
        all[i++] = v;
    for (size_t j = 0; j < i; j++) {
        sp_acc_uncache(all[j]);
    }
    sp_free(all);
    sp_map_free(acc->cache);
    sp_map_free(acc->loads);
    sp_map_free(acc->degraded);
    acc->cache = acc->loads = acc->degraded = NULL;
    uv_close((uv_handle_t *)&acc->defer, on_closed);
}

void sp_accounts_set_degraded(sp_accounts_t *acc, const char *user_id, const char *platform,
                              bool degraded)
{
    if (!acc || acc->closing || !sp_acc_args_ok(user_id, platform))
        return;
    char key[SP_ACC_KEY_CAP];
    sp_acc_key(key, user_id, platform);
    if (degraded)
        sp_map_sets(acc->degraded, key, acc); /* any non-NULL value */
    else
        sp_map_dels(acc->degraded, key, NULL);
}
