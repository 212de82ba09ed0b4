#include <criterion/criterion.h>

#include "livestream/sp_supervisor.h"

Test(supervisor, backoff_grows_then_degrades_after_intensity)
{
    sp_sup_t s;
    sp_sup_init(&s, 5, 60000, 100, 10000);
    uint64_t now = 1000000;
    uint64_t prev_ceiling = 0;
    for (int i = 0; i < 5; i++) {
        sp_sup_decision_t d = sp_sup_failure(&s, now + (uint64_t)i * 1000);
        cr_assert_not(d.degraded, "restart %d", i);
        cr_assert(d.delay_ms >= 50 && d.delay_ms <= 10000);
        cr_assert(sp_backoff_ceiling(&s.backoff) >= prev_ceiling);
        prev_ceiling = sp_backoff_ceiling(&s.backoff);
    }
    sp_sup_decision_t d = sp_sup_failure(&s, now + 5000);
    cr_assert(d.degraded);
    cr_assert(d.became_degraded);
    cr_assert_eq(d.delay_ms, 10000); /* slow probe, no tight loop */
    d = sp_sup_failure(&s, now + 6000);
    cr_assert(d.degraded);
    cr_assert_not(d.became_degraded);
    cr_assert_eq(s.degraded_total, 1);
    cr_assert(sp_sup_success(&s));
    cr_assert_not(s.degraded);
    d = sp_sup_failure(&s, now + 7000);
    cr_assert_not(d.degraded);
}

Test(supervisor, restarts_outside_period_do_not_count)
{
    sp_sup_t s;
    sp_sup_init(&s, 5, 60000, 10, 1000);
    uint64_t now = 0;
    for (int i = 0; i < 50; i++) {
        sp_sup_decision_t d = sp_sup_failure(&s, now);
        cr_assert_not(d.degraded, "failure %d", i);
        now += 15000; /* 4 per minute */
    }
    cr_assert_eq(s.restarts_total, 50);
}

Test(supervisor, zero_intensity_degrades_at_once)
{
    sp_sup_t s;
    sp_sup_init(&s, 0, 1000, 10, 500);
    sp_sup_decision_t d = sp_sup_failure(&s, 5);
    cr_assert(d.degraded);
    cr_assert_eq(d.delay_ms, 500);
}
