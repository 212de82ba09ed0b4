#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "core/sp_err.h"
#include "livestream/sp_presence.h"

typedef struct {
    int starts, stops;
    bool busy;      /* can_stop returns !busy */
    int max_users;  /* start fails with SP_ELIMIT beyond */
    int running;
    char last[64];
} hooks_state_t;

static int h_start(const char *u, void *ud)
{
    hooks_state_t *h = ud;
    if (h->max_users > 0 && h->running >= h->max_users) return SP_ELIMIT;
    h->starts++;
    h->running++;
    snprintf(h->last, sizeof(h->last), "%s", u);
    return 0;
}

static void h_stop(const char *u, void *ud)
{
    hooks_state_t *h = ud;
    h->stops++;
    h->running--;
    snprintf(h->last, sizeof(h->last), "%s", u);
}

static bool h_can_stop(const char *u, void *ud)
{
    (void)u;
    return !((hooks_state_t *)ud)->busy;
}

static const sp_presence_hooks_t hooks = { h_start, h_stop, h_can_stop };

static void run_ms(uv_loop_t *loop, uint64_t ms)
{
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(loop);
    }
    uv_run(loop, UV_RUN_NOWAIT);
}

static void finish(uv_loop_t *loop, sp_presence_t *p)
{
    sp_presence_free(p);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0);
}

Test(presence, multi_tab_and_cleanup_window)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hooks_state_t h = { 0 };
    sp_presence_t *p = sp_presence_new(&loop, 30, &hooks, &h);

    cr_assert_eq(sp_presence_join(p, "u1", 1), 0);
    cr_assert_eq(sp_presence_join(p, "u1", 2), 0);
    cr_assert_eq(sp_presence_join(p, "u1", 2), 0); /* same socket twice */
    cr_assert_eq(h.starts, 1);
    cr_assert_eq(sp_presence_sessions(p, "u1"), 2);
    cr_assert_eq(sp_presence_session_count(p), 2);

    sp_presence_leave(p, "u1", 1);
    cr_assert_not(sp_presence_cleanup_pending(p, "u1"));
    sp_presence_leave(p, "u1", 2);
    cr_assert(sp_presence_cleanup_pending(p, "u1"));
    run_ms(&loop, 10);
    /* rejoin inside the window cancels */
    cr_assert_eq(sp_presence_join(p, "u1", 3), 0);
    cr_assert_eq(h.starts, 1);
    cr_assert_not(sp_presence_cleanup_pending(p, "u1"));
    run_ms(&loop, 60);
    cr_assert_eq(h.stops, 0);

    sp_presence_leave(p, "u1", 3);
    run_ms(&loop, 15);
    cr_assert_eq(h.stops, 0);
    run_ms(&loop, 40);
    cr_assert_eq(h.stops, 1);
    cr_assert_str_eq(h.last, "u1");
    cr_assert_not(sp_presence_managed(p, "u1"));
    cr_assert_eq(sp_presence_user_count(p), 0);
    finish(&loop, p);
}

Test(presence, active_stream_is_never_stopped_for_absence)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hooks_state_t h = { .busy = true };
    sp_presence_t *p = sp_presence_new(&loop, 10, &hooks, &h);
    sp_presence_join(p, "u1", 1);
    sp_presence_leave(p, "u1", 1);
    run_ms(&loop, 40);
    cr_assert_eq(h.stops, 0);
    cr_assert(sp_presence_managed(p, "u1"));
    cr_assert_not(sp_presence_cleanup_pending(p, "u1"));
    /* stream goes offline */
    h.busy = false;
    sp_presence_recheck(p, "u1");
    cr_assert(sp_presence_cleanup_pending(p, "u1"));
    run_ms(&loop, 40);
    cr_assert_eq(h.stops, 1);
    finish(&loop, p);
}

Test(presence, recheck_with_session_present_does_nothing)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hooks_state_t h = { 0 };
    sp_presence_t *p = sp_presence_new(&loop, 10, &hooks, &h);
    sp_presence_join(p, "u1", 1);
    sp_presence_recheck(p, "u1");
    cr_assert_not(sp_presence_cleanup_pending(p, "u1"));
    run_ms(&loop, 30);
    cr_assert_eq(h.stops, 0);
    finish(&loop, p);
}

Test(presence, max_concurrent_users_refuses_with_limit)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hooks_state_t h = { .max_users = 2 };
    sp_presence_t *p = sp_presence_new(&loop, 10, &hooks, &h);
    cr_assert_eq(sp_presence_join(p, "a", 1), 0);
    cr_assert_eq(sp_presence_join(p, "b", 2), 0);
    cr_assert_eq(sp_presence_join(p, "c", 3), SP_ELIMIT);
    cr_assert_not(sp_presence_managed(p, "c"));
    /* existing users may still open more tabs */
    cr_assert_eq(sp_presence_join(p, "a", 4), 0);
    sp_presence_leave(p, "b", 2);
    run_ms(&loop, 30);
    cr_assert_eq(sp_presence_join(p, "c", 5), 0);
    cr_assert_eq(sp_presence_user_count(p), 2);
    finish(&loop, p);
}

Test(presence, adopt_recovered_manager_and_debug)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hooks_state_t h = { .busy = true };
    sp_presence_t *p = sp_presence_new(&loop, 10, &hooks, &h);
    sp_presence_adopt(p, "r1");
    cr_assert(sp_presence_managed(p, "r1"));
    cr_assert_eq(h.starts, 0);
    sp_presence_join(p, "u2", 7);
    json_t *d = sp_presence_debug(p);
    cr_assert_eq(json_array_size(d), 2);
    json_decref(d);
    run_ms(&loop, 30);
    cr_assert_eq(h.stops, 0); /* r1's stream is active */
    /* joining an adopted user does not start a second manager */
    sp_presence_join(p, "r1", 9);
    cr_assert_eq(h.starts, 1);
    cr_assert_eq(sp_presence_sessions(p, "r1"), 1);
    /* leave with an unknown session or user is harmless */
    sp_presence_leave(p, "r1", 1234);
    sp_presence_leave(p, "nobody", 1);
    cr_assert_eq(sp_presence_sessions(p, "r1"), 1);
    /* free with pending timers releases everything (LSan checks) */
    sp_presence_leave(p, "r1", 9);
    finish(&loop, p);
}
