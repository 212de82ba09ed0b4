/* sp_ratelimit: a full table never forgets a bucket that is still limiting. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "core/sp_err.h"
#include "core/sp_ratelimit.h"

/* issue 12 finding 2: 65,536 made-up keys evicted half the table at random, drained victims
 * included, who then got a fresh burst. */
Test(ratelimit_table, a_key_flood_never_resets_a_drained_bucket)
{
    sp_ratelimit_t *rl = sp_ratelimit_new(5 / 60.0, 5, 1024); /* 5/min, like an email bucket */
    uint64_t retry = 0, now = 1000;
    char key[48];
    for (int v = 0; v < 8; v++) {
        snprintf(key, sizeof(key), "victim%d@example.com", v);
        for (int i = 0; i < 5; i++)
            cr_assert_eq(sp_ratelimit_check(rl, key, now, &retry), 0);
    }
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 70000; i++) {
            snprintf(key, sizeof(key), "made-up-%d-%d@example.com", round, i);
            (void)sp_ratelimit_check(rl, key, now + 1, &retry);
        }
        for (int v = 0; v < 8; v++) {
            snprintf(key, sizeof(key), "victim%d@example.com", v);
            cr_assert_eq(sp_ratelimit_check(rl, key, now + 2, &retry), SP_ERATELIMIT,
                         "round %d: victim %d got a fresh guess", round, v);
        }
        cr_assert_leq(sp_ratelimit_keys(rl), 1024);
    }
    sp_ratelimit_free(rl);
}

Test(ratelimit_table, memory_is_bounded_and_new_keys_are_judged_by_the_sketch)
{
    sp_ratelimit_t *rl = sp_ratelimit_new(1.0, 3, 256);
    uint64_t retry = 0;
    char key[48];
    for (int i = 0; i < 256; i++) {
        snprintf(key, sizeof(key), "held-%d", i);
        cr_assert_eq(sp_ratelimit_check(rl, key, 0, &retry), 0);
    }
    size_t bytes = 0;
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        (void)sp_ratelimit_check(rl, key, 0, &retry);
        if (i == 1000)
            bytes = sp_ratelimit_bytes(rl);
    }
    cr_assert_eq(sp_ratelimit_keys(rl), 256);
    cr_assert_eq(sp_ratelimit_bytes(rl), bytes, "memory grew with the flood");
    cr_assert_lt(bytes, 1u << 20);
    /* a key judged by the sketch is limited like any other */
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += sp_ratelimit_check(rl, "newcomer", 0, &retry) == 0;
    cr_assert_leq(ok, 3);
    /* once buckets refill, the table takes new keys again, seeded from the sketch */
    cr_assert_eq(sp_ratelimit_check(rl, "later", 10000, &retry), 0);
    cr_assert_eq(sp_ratelimit_keys(rl), 1, "full buckets swept");
    sp_ratelimit_free(rl);
}

Test(ratelimit_table, a_bucket_moving_from_the_sketch_into_the_table_keeps_its_debt)
{
    sp_ratelimit_t *rl = sp_ratelimit_new(1.0, 3, 4);
    uint64_t retry = 0;
    cr_assert_eq(sp_ratelimit_check(rl, "a", 0, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "b", 0, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "c", 0, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "d", 0, &retry), 0);
    /* table full of partly drained buckets: "e" goes to the sketch and is drained there */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sp_ratelimit_check(rl, "e", 0, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "e", 0, &retry), SP_ERATELIMIT);
    /* 1.5 s later a..d are full again (swept), "e" has 1.5 tokens: one take, not three */
    cr_assert_eq(sp_ratelimit_check(rl, "e", 1500, &retry), 0);
    cr_assert_eq(sp_ratelimit_check(rl, "e", 1500, &retry), SP_ERATELIMIT);
    sp_ratelimit_free(rl);
}
