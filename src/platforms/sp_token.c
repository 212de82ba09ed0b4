/* sp_token: single-flight access-token lifecycle of one account. See sp_token.h. */
#include "platforms/sp_token.h"

#include <sodium.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

#define RETRY_AFTER_MS 30000 /* after a failed (temporary) refresh, ahead-refreshes pause */

typedef struct waiter_s {
    sp_token_cb cb;
    void *ud;
    struct waiter_s *next;
} waiter_t;

struct sp_token_s {
    sp_token_refresher_fn refresher;
    void *ud;
    char *access;
    char *refresh;
    int64_t expires_at;
    bool reauth;
    bool refreshing;
    bool current_failed;  /* a 401 was reported with the current access token */
    int64_t started_at;   /* of the refresh in flight */
    int64_t next_try_at;  /* no ahead-of-expiry refresh before this (after a failure) */
    waiter_t *head, *tail;
    size_t n_waiters;
    sp_token_stats_t st;
};

static void wipe_free(char **p)
{
    if (*p) {
        sodium_memzero(*p, strlen(*p));
        sp_free(*p);
        *p = NULL;
    }
}

static void replace(char **dst, const char *src)
{
    wipe_free(dst);
    if (src && *src)
        *dst = sp_strdup(src);
}

sp_token_t *sp_token_new(sp_token_refresher_fn refresher, void *ud)
{
    sp_token_t *t = sp_calloc(1, sizeof(*t));
    t->refresher = refresher;
    t->ud = ud;
    return t;
}

/* Answers every waiter queued so far; the list is detached first, so a callback may get()
 * again (it then queues on a new list or is answered at once). */
static void answer_all(sp_token_t *t, int err, const char *token)
{
    waiter_t *w = t->head;
    t->head = t->tail = NULL;
    t->n_waiters = 0;
    char *copy = token ? sp_strdup(token) : NULL; /* a callback may replace t->access */
    while (w) {
        waiter_t *next = w->next;
        w->cb(err, err ? NULL : copy, w->ud);
        sp_free(w);
        w = next;
    }
    wipe_free(&copy);
}

void sp_token_free(sp_token_t *t)
{
    if (!t)
        return;
    answer_all(t, SP_ECANCELED, NULL);
    wipe_free(&t->access);
    wipe_free(&t->refresh);
    sp_free(t);
}

void sp_token_set(sp_token_t *t, const char *access_token, const char *refresh_token,
                  int64_t expires_at_ms)
{
    replace(&t->access, access_token);
    replace(&t->refresh, refresh_token);
    t->expires_at = expires_at_ms > 0 ? expires_at_ms : 0;
    t->reauth = false;
    t->current_failed = false;
    t->next_try_at = 0;
}

static bool fresh(const sp_token_t *t, int64_t now_ms)
{
    if (!t->access || t->current_failed)
        return false;
    if (t->expires_at == 0)
        return true; /* unknown life: refresh only on 401 */
    /* ahead-of-expiry refresh paused after a failure: use the token while it lasts */
    if (now_ms < t->next_try_at && now_ms < t->expires_at)
        return true;
    return now_ms < t->expires_at - SP_TOKEN_REFRESH_AHEAD_MS;
}

int sp_token_get(sp_token_t *t, int64_t now_ms, const char *failed_token, sp_token_cb cb,
                 void *ud)
{
    if (!t || !cb)
        return SP_EINVAL;
    t->st.gets++;
    if (t->reauth) {
        cb(SP_EAUTH, NULL, ud);
        return 0;
    }
    if (failed_token && t->access && strcmp(failed_token, t->access) == 0)
        t->current_failed = true; /* a 401 with an older token says nothing about this one */
    if (!t->refreshing && fresh(t, now_ms)) {
        t->st.immediate++;
        char *copy = sp_strdup(t->access);
        cb(0, copy, ud);
        wipe_free(&copy);
        return 0;
    }
    if (!t->refreshing && !t->refresh) {
        /* nothing to refresh with: the grant cannot be renewed */
        if (t->access && !t->current_failed && (t->expires_at == 0 || now_ms < t->expires_at)) {
            t->st.immediate++;
            char *copy = sp_strdup(t->access);
            cb(0, copy, ud);
            wipe_free(&copy);
            return 0;
        }
        t->reauth = true;
        t->st.reauth++;
        cb(SP_EAUTH, NULL, ud);
        return 0;
    }
    if (t->n_waiters >= SP_TOKEN_MAX_WAITERS)
        return SP_ELIMIT;
    waiter_t *w = sp_calloc(1, sizeof(*w));
    w->cb = cb;
    w->ud = ud;
    if (t->tail)
        t->tail->next = w;
    else
        t->head = w;
    t->tail = w;
    t->n_waiters++;
    t->st.waited++;
    if (!t->refreshing) {
        t->refreshing = true;
        t->started_at = now_ms;
        t->st.refreshes++;
        char *rt = sp_strdup(t->refresh); /* the refresher may finish synchronously */
        t->refresher(t, rt, t->ud);
        wipe_free(&rt);
    }
    return 0;
}

void sp_token_refreshed(sp_token_t *t, sp_token_refresh_result_t res, const char *access_token,
                        const char *refresh_token, int64_t expires_at_ms)
{
    if (!t || !t->refreshing)
        return;
    t->refreshing = false;
    if (res == SP_TOKEN_REFRESH_OK && access_token && *access_token) {
        replace(&t->access, access_token);
        if (refresh_token && *refresh_token)
            replace(&t->refresh, refresh_token); /* rotated: already persisted by the refresher */
        t->expires_at = expires_at_ms > 0 ? expires_at_ms : 0;
        t->current_failed = false;
        t->next_try_at = 0;
        answer_all(t, 0, t->access);
        return;
    }
    t->st.refresh_failures++;
    if (res == SP_TOKEN_REFRESH_REAUTH || res == SP_TOKEN_REFRESH_OK /* OK without a token */) {
        t->reauth = true;
        t->st.reauth++;
        answer_all(t, SP_EAUTH, NULL);
        return;
    }
    /* temporary failure: pause ahead-refreshes; a token not known bad is still usable */
    t->next_try_at = t->started_at + RETRY_AFTER_MS;
    bool usable = t->access && !t->current_failed &&
                  (t->expires_at == 0 || t->started_at < t->expires_at);
    answer_all(t, usable ? 0 : SP_EUNAVAIL, usable ? t->access : NULL);
}

bool sp_token_needs_reauth(const sp_token_t *t)
{
    return t->reauth;
}

bool sp_token_refreshing(const sp_token_t *t)
{
    return t->refreshing;
}

int64_t sp_token_expires_at(const sp_token_t *t)
{
    return t->expires_at;
}

void sp_token_stats(const sp_token_t *t, sp_token_stats_t *out)
{
    *out = t->st;
}
