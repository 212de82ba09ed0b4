/* sp_login_throttle: the per-account login backoff, with explicit times. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "auth/sp_login_throttle.h"
#include "core/sp_err.h"

#define T0 1000000ULL

Test(login_throttle, an_address_that_keeps_failing_backs_off_but_is_never_locked)
{
    sp_login_throttle_t *t = sp_login_throttle_new(0);
    uint64_t now = T0, retry = 0;
    for (int i = 0; i < SP_LOGIN_PAIR_FREE; i++) {
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now, &retry), 0);
        sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_FAILED, now);
    }
    uint64_t expect = 1000;
    for (int i = 0; i < 16; i++) {
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now, &retry), SP_ERATELIMIT);
        cr_assert_eq(retry, expect, "step %d: retry %llu want %llu", i,
                     (unsigned long long)retry, (unsigned long long)expect);
        /* a refused attempt changes nothing */
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now + 1, &retry),
                     SP_ERATELIMIT);
        cr_assert_eq(retry, expect - 1);
        now += retry + 1;
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now, &retry), 0);
        sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_FAILED, now);
        expect = expect * 2 < SP_LOGIN_BACKOFF_CAP_MS ? expect * 2 : SP_LOGIN_BACKOFF_CAP_MS;
    }
    cr_assert_eq(expect, SP_LOGIN_BACKOFF_CAP_MS, "the wait is capped");
    /* the right password from that address clears its record */
    now += SP_LOGIN_BACKOFF_CAP_MS;
    cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now, &retry), 0);
    sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_OK, now);
    cr_assert_eq(sp_login_throttle_pairs(t), 0);
    sp_login_throttle_free(t);
}

Test(login_throttle, the_owner_from_a_fresh_address_waits_at_most_the_gate)
{
    sp_login_throttle_t *t = sp_login_throttle_new(0);
    uint64_t now = T0, retry = 0;
    char addr[32];
    int through = 0;
    /* 1,000 addresses hammer the account for 100 s */
    for (int i = 0; i < 100000; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d", (i / 250) % 250, i % 250);
        now = T0 + (uint64_t)i;
        if (sp_login_throttle_check(t, "a@x", addr, now, &retry) == 0) {
            sp_login_throttle_done(t, "a@x", addr, SP_LOGIN_FAILED, now);
            through++;
        } else {
            cr_assert_leq(retry, SP_LOGIN_GATE_MS);
        }
    }
    /* the crowd got 5 free guesses, then one per second */
    cr_assert(through >= 100 && through <= 106, "through %d", through);
    /* the owner */
    int rc = sp_login_throttle_check(t, "a@x", "192.0.2.1", now, &retry);
    if (rc) {
        cr_assert_leq(retry, SP_LOGIN_GATE_MS);
        now += retry;
        rc = sp_login_throttle_check(t, "a@x", "192.0.2.1", now, &retry);
    }
    cr_assert_eq(rc, 0);
    sp_login_throttle_done(t, "a@x", "192.0.2.1", SP_LOGIN_OK, now);
    /* other accounts are untouched */
    cr_assert_eq(sp_login_throttle_check(t, "b@x", "10.1.0.1", now, &retry), 0);
    sp_login_throttle_free(t);
}

Test(login_throttle, unjudged_attempts_are_refunded_and_quiet_accounts_forgotten)
{
    sp_login_throttle_t *t = sp_login_throttle_new(0);
    uint64_t retry = 0;
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", T0, &retry), 0);
        sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_UNJUDGED, T0);
    }
    cr_assert_eq(sp_login_throttle_pairs(t), 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", T0, &retry), 0);
        sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_FAILED, T0);
    }
    cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", T0, &retry), SP_ERATELIMIT);
    uint64_t later = T0 + SP_LOGIN_QUIET_MS;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", later, &retry), 0);
        sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_FAILED, later);
    }
    sp_login_throttle_free(t);
}

Test(login_throttle, the_pair_table_is_bounded_and_keeps_live_pairs)
{
    sp_login_throttle_t *t = sp_login_throttle_new(100);
    uint64_t retry = 0;
    for (int i = 0; i < 6; i++) {
        if (sp_login_throttle_check(t, "victim@x", "10.0.0.1", T0, &retry) == 0)
            sp_login_throttle_done(t, "victim@x", "10.0.0.1", SP_LOGIN_FAILED, T0);
    }
    char acct[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(acct, sizeof(acct), "made-up-%d@x", i);
        if (sp_login_throttle_check(t, acct, "10.9.9.9", T0 + 10, &retry) == 0)
            sp_login_throttle_done(t, acct, "10.9.9.9", SP_LOGIN_FAILED, T0 + 10);
    }
    cr_assert_leq(sp_login_throttle_pairs(t), 100);
    cr_assert_eq(sp_login_throttle_check(t, "victim@x", "10.0.0.1", T0 + 20, &retry),
                 SP_ERATELIMIT);
    sp_login_throttle_free(t);
}

Test(login_throttle, the_wait_runs_from_the_failure_not_from_the_attempt)
{
    sp_login_throttle_t *t = sp_login_throttle_new(0);
    uint64_t retry = 0;
    uint64_t now = T0;
    for (int i = 0; i < SP_LOGIN_PAIR_FREE; i++) {
        cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now, &retry), 0);
        now += 3000; /* the password hash took 3 s */
        sp_login_throttle_done(t, "a@x", "10.0.0.1", SP_LOGIN_FAILED, now);
    }
    cr_assert_eq(sp_login_throttle_check(t, "a@x", "10.0.0.1", now + 500, &retry),
                 SP_ERATELIMIT);
    cr_assert_eq(retry, 500);
    sp_login_throttle_free(t);
}
