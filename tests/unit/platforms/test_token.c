#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "platforms/sp_token.h"

#define MIN (60 * 1000)

typedef struct {
    int calls;
    char last_refresh[64];
    bool sync;          /* finish inside the refresher */
    sp_token_refresh_result_t sync_res;
} refresher_t;

static void refresher(sp_token_t *t, const char *rt, void *ud)
{
    refresher_t *r = ud;
    r->calls++;
    snprintf(r->last_refresh, sizeof(r->last_refresh), "%s", rt);
    if (r->sync)
        sp_token_refreshed(t, r->sync_res, "sync-access", NULL, 0);
}

typedef struct {
    int calls;
    int err;
    char tok[64];
} answer_t;

static void on_token(int err, const char *tok, void *ud)
{
    answer_t *a = ud;
    a->calls++;
    a->err = err;
    snprintf(a->tok, sizeof(a->tok), "%s", tok ? tok : "");
}

Test(token, fresh_token_answers_at_once)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "A1", "R1", 100 * MIN);
    answer_t a = { 0 };
    cr_assert_eq(sp_token_get(t, 10 * MIN, NULL, on_token, &a), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.err, 0);
    cr_assert_str_eq(a.tok, "A1");
    cr_assert_eq(r.calls, 0);
    sp_token_free(t);
}

Test(token, twenty_callers_near_expiry_one_refresh_rotation_used_next_time)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "A1", "R1", 100 * MIN);
    answer_t a[20];
    memset(a, 0, sizeof(a));
    int64_t now = 100 * MIN - SP_TOKEN_REFRESH_AHEAD_MS; /* exactly at the 5-minute mark */
    for (int i = 0; i < 20; i++)
        cr_assert_eq(sp_token_get(t, now, NULL, on_token, &a[i]), 0);
    cr_assert_eq(r.calls, 1, "single flight: %d refreshes", r.calls);
    cr_assert_str_eq(r.last_refresh, "R1");
    cr_assert(sp_token_refreshing(t));
    for (int i = 0; i < 20; i++)
        cr_assert_eq(a[i].calls, 0, "nobody answered before the refresh ended");
    sp_token_refreshed(t, SP_TOKEN_REFRESH_OK, "A2", "R2", 200 * MIN);
    cr_assert_eq(sp_token_expires_at(t), 200 * MIN);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(a[i].calls, 1);
        cr_assert_eq(a[i].err, 0);
        cr_assert_str_eq(a[i].tok, "A2");
    }
    /* the next refresh uses the rotated refresh token */
    answer_t b = { 0 };
    cr_assert_eq(sp_token_get(t, 199 * MIN, NULL, on_token, &b), 0);
    cr_assert_eq(r.calls, 2);
    cr_assert_str_eq(r.last_refresh, "R2");
    sp_token_refreshed(t, SP_TOKEN_REFRESH_OK, "A3", NULL, 300 * MIN);
    cr_assert_str_eq(b.tok, "A3");
    /* Google keeps its refresh token: NULL keeps R2 */
    answer_t c = { 0 };
    sp_token_get(t, 299 * MIN, NULL, on_token, &c);
    cr_assert_str_eq(r.last_refresh, "R2");
    sp_token_refreshed(t, SP_TOKEN_REFRESH_OK, "A4", NULL, 400 * MIN);
    sp_token_stats_t st;
    sp_token_stats(t, &st);
    cr_assert_eq(st.refreshes, 3);
    cr_assert_eq(st.gets, 22);
    sp_token_free(t);
}

Test(token, a_401_refreshes_once_and_old_401s_do_not_refresh_again)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "A1", "R1", 0); /* unknown life: only a 401 refreshes */
    answer_t a = { 0 }, b = { 0 }, c = { 0 };
    cr_assert_eq(sp_token_get(t, 1000, NULL, on_token, &a), 0);
    cr_assert_str_eq(a.tok, "A1");
    cr_assert_eq(sp_token_get(t, 2000, "A1", on_token, &b), 0);
    cr_assert_eq(r.calls, 1);
    /* a second caller reports the same 401 while the refresh runs: it waits, no second one */
    cr_assert_eq(sp_token_get(t, 2001, "A1", on_token, &c), 0);
    cr_assert_eq(r.calls, 1);
    sp_token_refreshed(t, SP_TOKEN_REFRESH_OK, "A2", "R2", 0);
    cr_assert_str_eq(b.tok, "A2");
    cr_assert_str_eq(c.tok, "A2");
    /* a late 401 with the old token: answered with the current one, no refresh */
    answer_t d = { 0 };
    cr_assert_eq(sp_token_get(t, 3000, "A1", on_token, &d), 0);
    cr_assert_eq(d.calls, 1);
    cr_assert_str_eq(d.tok, "A2");
    cr_assert_eq(r.calls, 1);
    sp_token_free(t);
}

Test(token, invalid_grant_marks_needs_reauth_until_reconnected)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "A1", "R1", 10 * MIN);
    answer_t a = { 0 }, b = { 0 };
    sp_token_get(t, 9 * MIN, NULL, on_token, &a);
    sp_token_get(t, 9 * MIN, NULL, on_token, &b);
    sp_token_refreshed(t, SP_TOKEN_REFRESH_REAUTH, NULL, NULL, 0);
    cr_assert_eq(a.err, SP_EAUTH);
    cr_assert_eq(b.err, SP_EAUTH);
    cr_assert(sp_token_needs_reauth(t));
    answer_t c = { 0 };
    cr_assert_eq(sp_token_get(t, 9 * MIN, NULL, on_token, &c), 0);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.err, SP_EAUTH);
    cr_assert_eq(r.calls, 1, "no refresh is tried again");
    /* the user reconnects */
    sp_token_set(t, "B1", "S1", 100 * MIN);
    cr_assert_not(sp_token_needs_reauth(t));
    answer_t d = { 0 };
    sp_token_get(t, 10 * MIN, NULL, on_token, &d);
    cr_assert_str_eq(d.tok, "B1");
    sp_token_free(t);
}

Test(token, temporary_failure_keeps_a_valid_token_and_pauses)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "A1", "R1", 10 * MIN);
    answer_t a = { 0 };
    sp_token_get(t, 6 * MIN, NULL, on_token, &a); /* ahead of expiry */
    cr_assert_eq(r.calls, 1);
    sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
    cr_assert_eq(a.err, 0, "the old token still works until it expires");
    cr_assert_str_eq(a.tok, "A1");
    answer_t b = { 0 };
    sp_token_get(t, 6 * MIN + 1000, NULL, on_token, &b);
    cr_assert_eq(r.calls, 1, "paused after a failure");
    cr_assert_str_eq(b.tok, "A1");
    answer_t c = { 0 };
    sp_token_get(t, 6 * MIN + 31000, NULL, on_token, &c);
    cr_assert_eq(r.calls, 2, "tried again after the pause");
    /* this time the refresh was also needed by a 401: a failure is an error for the waiters */
    answer_t d = { 0 };
    sp_token_get(t, 6 * MIN + 31001, "A1", on_token, &d);
    sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
    cr_assert_eq(c.err, SP_EUNAVAIL);
    cr_assert_eq(d.err, SP_EUNAVAIL);
    cr_assert_not(sp_token_needs_reauth(t));
    sp_token_free(t);
}

static sp_token_t *reentry_t;
static answer_t reentry_inner;
static void on_token_reenter(int err, const char *tok, void *ud)
{
    on_token(err, tok, ud);
    sp_token_get(reentry_t, 60 * MIN, NULL, on_token, &reentry_inner);
}

Test(token, synchronous_refresher_and_reentrant_callbacks)
{
    refresher_t r = { .sync = true, .sync_res = SP_TOKEN_REFRESH_OK };
    sp_token_t *t = sp_token_new(refresher, &r);
    reentry_t = t;
    sp_token_set(t, "A1", "R1", 1);
    answer_t a = { 0 };
    memset(&reentry_inner, 0, sizeof(reentry_inner));
    cr_assert_eq(sp_token_get(t, 2, NULL, on_token_reenter, &a), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_str_eq(a.tok, "sync-access");
    cr_assert_eq(reentry_inner.calls, 1, "a get from inside a callback is answered");
    cr_assert_str_eq(reentry_inner.tok, "sync-access");
    cr_assert_eq(r.calls, 1);
    sp_token_free(t);
}

Test(token, free_cancels_waiters_and_the_waiter_cap_holds)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "A1", "R1", 1);
    static answer_t w[SP_TOKEN_MAX_WAITERS + 1];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < SP_TOKEN_MAX_WAITERS; i++)
        cr_assert_eq(sp_token_get(t, 2, NULL, on_token, &w[i]), 0);
    cr_assert_eq(sp_token_get(t, 2, NULL, on_token, &w[SP_TOKEN_MAX_WAITERS]), SP_ELIMIT);
    cr_assert_eq(w[SP_TOKEN_MAX_WAITERS].calls, 0);
    sp_token_free(t);
    for (int i = 0; i < SP_TOKEN_MAX_WAITERS; i++) {
        cr_assert_eq(w[i].calls, 1);
        cr_assert_eq(w[i].err, SP_ECANCELED);
    }
}

Test(token, no_refresh_token_expired_means_reauth)
{
    refresher_t r = { 0 };
    sp_token_t *t = sp_token_new(refresher, &r);
    sp_token_set(t, "APP", NULL, 10 * MIN);
    answer_t a = { 0 }, b = { 0 };
    sp_token_get(t, 7 * MIN, NULL, on_token, &a);
    cr_assert_str_eq(a.tok, "APP", "still valid: used until it expires");
    sp_token_get(t, 10 * MIN, NULL, on_token, &b);
    cr_assert_eq(b.err, SP_EAUTH);
    cr_assert(sp_token_needs_reauth(t));
    cr_assert_eq(r.calls, 0);
    sp_token_free(t);
}
