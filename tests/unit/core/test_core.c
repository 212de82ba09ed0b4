/* Unit tests: buffers, map, uuid, rate limiter, backoff, breaker, errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_backoff.h"
#include "core/sp_breaker.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "core/sp_map.h"
#include "core/sp_ratelimit.h"
#include "core/sp_uuid.h"

Test(buf, cap_is_enforced_and_buffer_unchanged)
{
    sp_buf_t b;
    sp_buf_init(&b, 8);
    cr_assert_eq(sp_buf_append(&b, "12345", 5), 0);
    cr_assert_eq(sp_buf_append(&b, "6789", 4), SP_ETOOBIG);
    cr_assert_eq(b.len, 5);
    cr_assert_str_eq(b.p, "12345");
    cr_assert_eq(sp_buf_appendf(&b, "%d", 678), 0);
    cr_assert_str_eq(b.p, "12345678");
    sp_buf_consume(&b, 3);
    cr_assert_str_eq(b.p, "45678");
    sp_buf_cleanup(&b);
}

Test(buf, rbuf_refcount)
{
    sp_rbuf_t *r = sp_rbuf_new("abc", 3);
    cr_assert_eq(sp_rbuf_ref(r)->refs, 2);
    sp_rbuf_unref(r);
    cr_assert_eq(r->refs, 1);
    cr_assert_eq(memcmp(r->data, "abc", 3), 0);
    sp_rbuf_unref(r);
}

Test(map, set_get_del_grow_and_iterate)
{
    sp_map_t *m = sp_map_new(sp_free);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        int *v = sp_malloc(sizeof(int));
        *v = i;
        sp_map_sets(m, key, v);
    }
    cr_assert_eq(sp_map_count(m), 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert(sp_map_dels(m, key, NULL));
    }
    cr_assert_eq(sp_map_count(m), 2500);
    cr_assert_null(sp_map_gets(m, "k10"));
    cr_assert_eq(*(int *)sp_map_gets(m, "k11"), 11);
    size_t it = 0, n = 0;
    while (sp_map_next(m, &it, NULL, NULL, NULL))
        n++;
    cr_assert_eq(n, 2500);
    /* Binary keys with NUL bytes are distinct. */
    sp_map_set(m, "a\0b", 3, sp_strdup("x"));
    sp_map_set(m, "a\0c", 3, sp_strdup("y"));
    cr_assert_str_eq(sp_map_get(m, "a\0c", 3), "y");
    sp_map_free(m);
}

Test(uuid, v4_format_and_uniqueness)
{
    char a[SP_UUID_STRLEN], b[SP_UUID_STRLEN];
    sp_uuid_v4(a);
    sp_uuid_v4(b);
    cr_assert(sp_uuid_valid(a));
    cr_assert_eq(a[14], '4');
    cr_assert(strchr("89ab", a[19]) != NULL);
    cr_assert_str_neq(a, b);
    cr_assert_not(sp_uuid_valid("not-a-uuid"));
    cr_assert_not(sp_uuid_valid("123e4567-e89b-12d3-a456-42661417400g"));
}

Test(ratelimit, bucket_refills_and_reports_retry_after)
{
    sp_tbucket_t b;
    uint64_t retry = 0;
    sp_tbucket_init(&b, 2.0, 3, 1000); /* 2 tokens/s, burst 3 */
    cr_assert(sp_tbucket_take(&b, 1, 1000, NULL));
    cr_assert(sp_tbucket_take(&b, 1, 1000, NULL));
    cr_assert(sp_tbucket_take(&b, 1, 1000, NULL));
    cr_assert_not(sp_tbucket_take(&b, 1, 1000, &retry));
    cr_assert_eq(retry, 500);
    cr_assert(sp_tbucket_take(&b, 1, 1500, NULL));
    cr_assert_not(sp_tbucket_take(&b, 1, 1500, NULL));
}

Test(ratelimit, keyed_limiter_isolates_keys_and_caps_memory)
{
    sp_ratelimit_t *rl = sp_ratelimit_new(1.0, 2, 100);
    uint64_t retry;
    cr_assert_eq(sp_ratelimit_check(rl, "1.2.3.4", 0, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "1.2.3.4", 0, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "1.2.3.4", 0, &retry), SP_ERATELIMIT);
    cr_assert_eq(retry, 1000);
    cr_assert_eq(sp_ratelimit_check(rl, "5.6.7.8", 0, &retry), 0);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        sp_ratelimit_check(rl, key, 0, &retry);
    }
    cr_assert_leq(sp_ratelimit_keys(rl), 100);
    sp_ratelimit_free(rl);
}

Test(backoff, grows_exponentially_within_bounds_with_jitter)
{
    sp_backoff_t b;
    sp_backoff_init(&b, 1000, 30000);
    uint64_t ceilings[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(sp_backoff_ceiling(&b), ceilings[i]);
        uint64_t d = sp_backoff_next(&b);
        cr_assert_geq(d, 500);
        cr_assert_leq(d, ceilings[i]);
    }
    /* Jitter: 200 draws at the cap are not all equal. */
    uint64_t first = sp_backoff_next(&b), differ = 0;
    for (int i = 0; i < 200; i++)
        differ += sp_backoff_next(&b) != first;
    cr_assert_gt(differ, 0);
    sp_backoff_reset(&b);
    cr_assert_eq(sp_backoff_ceiling(&b), 1000);
}

Test(breaker, opens_after_threshold_and_half_open_probe)
{
    sp_breaker_t br;
    sp_breaker_init(&br, 5, 32000); /* windows 2 s, 4 s, 8 s, 16 s, 32 s, 32 s ... */
    for (int i = 0; i < 4; i++) {
        cr_assert(sp_breaker_allow(&br, 0));
        sp_breaker_failure(&br, 0);
    }
    cr_assert_eq(sp_breaker_state(&br, 0), SP_BREAKER_CLOSED);
    sp_breaker_failure(&br, 100);
    cr_assert_eq(sp_breaker_state(&br, 100), SP_BREAKER_OPEN);
    cr_assert_not(sp_breaker_allow(&br, 2099));
    /* a call that was in flight when it opened fails: the window does not move */
    sp_breaker_failure(&br, 1500);
    /* after the first window: exactly one probe */
    cr_assert(sp_breaker_allow(&br, 2100));
    cr_assert_not(sp_breaker_allow(&br, 2100));
    /* each failed probe doubles the window, up to open_ms */
    uint64_t t = 2100, expect[] = { 4000, 8000, 16000, 32000, 32000 };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        sp_breaker_failure(&br, t);
        cr_assert_eq(sp_breaker_state(&br, t), SP_BREAKER_OPEN);
        cr_assert_not(sp_breaker_allow(&br, t + expect[i] - 1), "window %zu", i);
        t += expect[i];
        cr_assert(sp_breaker_allow(&br, t), "probe after window %zu", i);
    }
    sp_breaker_success(&br);
    cr_assert_eq(sp_breaker_state(&br, t), SP_BREAKER_CLOSED);
    cr_assert(sp_breaker_allow(&br, t));
    /* a success resets the window to the first one */
    for (int i = 0; i < 5; i++) sp_breaker_failure(&br, t);
    cr_assert_not(sp_breaker_allow(&br, t + 1999));
    cr_assert(sp_breaker_allow(&br, t + 2000));
}

Test(breaker, first_window)
{
    cr_assert_eq(sp_breaker_first_open_ms(30000), 1875);
    cr_assert_eq(sp_breaker_first_open_ms(10000), 1000);
    cr_assert_eq(sp_breaker_first_open_ms(500), 500);
}

Test(err, table_names_and_messages)
{
    cr_assert_str_eq(sp_err_name(SP_ENOTFOUND), "SP_ENOTFOUND");
    cr_assert_str_eq(sp_strerror(SP_ETOOBIG), "size limit exceeded");
    cr_assert_str_eq(sp_err_name(-111), "ECONNREFUSED");
    cr_assert_str_eq(sp_err_name(0), "OK");
}
