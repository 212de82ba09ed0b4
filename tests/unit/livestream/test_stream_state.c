#include <criterion/criterion.h>

#include "core/sp_err.h"
#include "livestream/sp_stream_state.h"

static sp_ss_result_t ap(sp_ss_t *s, sp_ss_event_type_t t, int64_t now)
{
    sp_ss_event_t ev = { .type = t };
    return sp_ss_apply(s, &ev, now);
}

static sp_ss_result_t start(sp_ss_t *s, int n, int64_t now)
{
    sp_ss_event_t ev = { .type = SP_SSE_START, .n_destinations = n };
    return sp_ss_apply(s, &ev, now);
}

static sp_ss_result_t outputs(sp_ss_t *s, int ok, int failed, int64_t now)
{
    sp_ss_event_t ev = { .type = SP_SSE_OUTPUTS_RESULT, .n_ok = ok, .n_failed = failed };
    return sp_ss_apply(s, &ev, now);
}

Test(stream_state, names_roundtrip)
{
    for (int i = SP_SS_OFFLINE; i <= SP_SS_ENDING; i++)
        cr_assert_eq(sp_ss_state_parse(sp_ss_state_name(i)), i);
    cr_assert_eq(sp_ss_state_parse("bogus"), -1);
    cr_assert_eq(sp_ss_state_parse(NULL), -1);
    for (int i = SP_SS_END_USER_STOP; i <= SP_SS_END_ERROR; i++)
        cr_assert_eq(sp_ss_end_reason_parse(sp_ss_end_reason_name(i)), i);
    cr_assert_eq(sp_ss_end_reason_parse(""), SP_SS_END_NONE);
    cr_assert_eq(sp_ss_end_reason_parse("nope"), -1);
    cr_assert_str_eq(sp_ss_event_name(SP_SSE_CLEANUP_DONE), "cleanup_done");
}

Test(stream_state, full_cycle_user_stop)
{
    sp_ss_t s;
    sp_ss_init(&s, 300000, 1000);
    cr_assert_eq(s.state, SP_SS_OFFLINE);

    sp_ss_result_t r = ap(&s, SP_SSE_INPUT_CONNECTED, 2000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(s.state, SP_SS_READY);
    cr_assert_eq(s.state_changed_at, 2000);
    cr_assert(r.actions & SP_SSA_PERSIST);
    cr_assert(r.actions & SP_SSA_PUBLISH);

    r = start(&s, 2, 3000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(s.state, SP_SS_STREAMING);
    cr_assert(s.starting);
    cr_assert(r.actions & SP_SSA_NEW_STREAM);
    cr_assert(r.actions & SP_SSA_CREATE_OUTPUTS);
    cr_assert(r.actions & SP_SSA_PERSIST);

    r = outputs(&s, 2, 0, 3100);
    cr_assert_eq(r.err, 0);
    cr_assert_null(r.reason);
    cr_assert_not(s.starting);
    cr_assert_eq(s.state, SP_SS_STREAMING);

    r = ap(&s, SP_SSE_STOP, 4000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(s.state, SP_SS_ENDING);
    cr_assert_eq(s.end_reason, SP_SS_END_USER_STOP);
    cr_assert(r.actions & SP_SSA_DELETE_OUTPUTS);
    cr_assert(r.actions & SP_SSA_STOP_MONITORS);
    cr_assert_not(r.actions & SP_SSA_CLOSE_STREAM);

    r = ap(&s, SP_SSE_CLEANUP_DONE, 4100);
    cr_assert(r.actions & SP_SSA_CLOSE_STREAM);
    /* input still connected: back to ready, not offline */
    cr_assert_eq(s.state, SP_SS_READY);

    r = ap(&s, SP_SSE_INPUT_DISCONNECTED, 5000);
    cr_assert_eq(s.state, SP_SS_OFFLINE);
}

Test(stream_state, ending_to_offline_when_input_gone)
{
    sp_ss_t s;
    sp_ss_init(&s, 1000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 0, 2);
    cr_assert_eq(s.state, SP_SS_STREAMING);
    cr_assert_not(s.starting); /* no destinations: nothing to wait for */
    ap(&s, SP_SSE_STOP, 3);
    ap(&s, SP_SSE_INPUT_DISCONNECTED, 4);
    cr_assert_eq(s.state, SP_SS_ENDING);
    ap(&s, SP_SSE_CLEANUP_DONE, 5);
    cr_assert_eq(s.state, SP_SS_OFFLINE);
}

Test(stream_state, illegal_requests_are_409_and_change_nothing)
{
    sp_ss_t s;
    sp_ss_init(&s, 1000, 0);
    sp_ss_result_t r = start(&s, 1, 1);
    cr_assert_eq(r.err, SP_ECONFLICT);
    cr_assert_str_eq(r.reason, "not_ready");
    cr_assert_eq(r.actions, 0);
    cr_assert_eq(s.state, SP_SS_OFFLINE);

    r = ap(&s, SP_SSE_STOP, 1);
    cr_assert_eq(r.err, SP_ECONFLICT);
    cr_assert_str_eq(r.reason, "not_streaming");

    ap(&s, SP_SSE_INPUT_CONNECTED, 2);
    r = ap(&s, SP_SSE_STOP, 3);
    cr_assert_str_eq(r.reason, "not_streaming");
    cr_assert_eq(s.state, SP_SS_READY);

    start(&s, 1, 4);
    r = start(&s, 1, 5);
    cr_assert_str_eq(r.reason, "starting");
    r = ap(&s, SP_SSE_STOP, 5);
    cr_assert_str_eq(r.reason, "starting");
    outputs(&s, 1, 0, 6);
    r = start(&s, 1, 7);
    cr_assert_str_eq(r.reason, "already_streaming");
    ap(&s, SP_SSE_STOP, 8);
    r = start(&s, 1, 9);
    cr_assert_str_eq(r.reason, "ending");
    r = ap(&s, SP_SSE_STOP, 9);
    cr_assert_str_eq(r.reason, "ending");
    cr_assert_eq(s.state, SP_SS_ENDING);
}

Test(stream_state, grace_window_timeout_ends_stream)
{
    sp_ss_t s;
    sp_ss_init(&s, 300000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 10);
    start(&s, 1, 20);
    outputs(&s, 1, 0, 30);
    sp_ss_result_t r = ap(&s, SP_SSE_INPUT_DISCONNECTED, 1000);
    cr_assert_eq(s.state, SP_SS_STREAMING);
    cr_assert_eq(s.disconnect_deadline, 301000);
    cr_assert(r.actions & SP_SSA_ARM_TIMER);
    cr_assert(r.actions & SP_SSA_PERSIST);

    /* duplicate disconnect: deadline not pushed back */
    r = ap(&s, SP_SSE_INPUT_DISCONNECTED, 2000);
    cr_assert_eq(s.disconnect_deadline, 301000);
    cr_assert_not(r.actions & SP_SSA_ARM_TIMER);
    cr_assert_not(r.changed);

    /* early timer fire is stale */
    r = ap(&s, SP_SSE_DISCONNECT_TIMEOUT, 300999);
    cr_assert_eq(r.actions, 0);
    cr_assert_eq(s.state, SP_SS_STREAMING);

    r = ap(&s, SP_SSE_DISCONNECT_TIMEOUT, 301000);
    cr_assert_eq(s.state, SP_SS_ENDING);
    cr_assert_eq(s.end_reason, SP_SS_END_DISCONNECT_TIMEOUT);
    cr_assert_eq(s.disconnect_deadline, 0);
    cr_assert(r.actions & SP_SSA_DELETE_OUTPUTS);
    ap(&s, SP_SSE_CLEANUP_DONE, 301500);
    cr_assert_eq(s.state, SP_SS_OFFLINE);
    cr_assert_eq(s.end_reason, SP_SS_END_DISCONNECT_TIMEOUT);
}

Test(stream_state, reconnect_cancels_countdown)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 1, 2);
    outputs(&s, 1, 0, 3);
    ap(&s, SP_SSE_INPUT_DISCONNECTED, 100);
    cr_assert_eq(s.disconnect_deadline, 5100);
    sp_ss_result_t r = ap(&s, SP_SSE_INPUT_CONNECTED, 200);
    cr_assert(r.actions & SP_SSA_CANCEL_TIMER);
    cr_assert_eq(s.disconnect_deadline, 0);
    cr_assert_eq(s.state, SP_SS_STREAMING);
    /* the old timer firing later is stale */
    r = ap(&s, SP_SSE_DISCONNECT_TIMEOUT, 6000);
    cr_assert_eq(r.actions, 0);
    cr_assert_eq(s.state, SP_SS_STREAMING);
    /* a new loss gets a fresh full window */
    ap(&s, SP_SSE_INPUT_DISCONNECTED, 7000);
    cr_assert_eq(s.disconnect_deadline, 12000);
}

Test(stream_state, stop_during_grace_window_cancels_timer)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 1, 2);
    outputs(&s, 1, 0, 3);
    ap(&s, SP_SSE_INPUT_DISCONNECTED, 10);
    sp_ss_result_t r = ap(&s, SP_SSE_STOP, 20);
    cr_assert(r.actions & SP_SSA_CANCEL_TIMER);
    cr_assert_eq(s.state, SP_SS_ENDING);
    cr_assert_eq(s.end_reason, SP_SS_END_USER_STOP);
}

Test(stream_state, partial_failure_keeps_streaming)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 3, 2);
    sp_ss_result_t r = outputs(&s, 2, 1, 3);
    cr_assert_eq(r.err, 0);
    cr_assert_str_eq(r.reason, "partial_failure");
    cr_assert_eq(s.state, SP_SS_STREAMING);
    cr_assert_not(s.starting);
}

Test(stream_state, all_outputs_failed_falls_back_to_ready)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 2, 2);
    sp_ss_result_t r = outputs(&s, 0, 2, 3);
    cr_assert_eq(r.err, 0);
    cr_assert_str_eq(r.reason, "all_outputs_failed");
    cr_assert_eq(s.state, SP_SS_READY);
    cr_assert_eq(s.end_reason, SP_SS_END_ERROR);
    cr_assert(r.actions & SP_SSA_CLOSE_STREAM);
    cr_assert(r.actions & SP_SSA_PERSIST);
    /* a late duplicate result is ignored */
    r = outputs(&s, 1, 0, 4);
    cr_assert_eq(r.actions, 0);
    cr_assert_eq(s.state, SP_SS_READY);
}

Test(stream_state, all_failed_while_input_lost_goes_offline)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 1, 2);
    sp_ss_result_t r = ap(&s, SP_SSE_INPUT_DISCONNECTED, 3);
    cr_assert(r.actions & SP_SSA_ARM_TIMER);
    r = outputs(&s, 0, 1, 4);
    cr_assert(r.actions & SP_SSA_CANCEL_TIMER);
    cr_assert_eq(s.state, SP_SS_OFFLINE);
    cr_assert_eq(s.disconnect_deadline, 0);
}

Test(stream_state, duplicate_input_events_are_noops)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    sp_ss_result_t r = ap(&s, SP_SSE_INPUT_CONNECTED, 2);
    cr_assert_not(r.changed);
    cr_assert_eq(r.actions, 0);
    cr_assert_eq(s.state_changed_at, 1);
    ap(&s, SP_SSE_INPUT_DISCONNECTED, 3);
    r = ap(&s, SP_SSE_INPUT_DISCONNECTED, 4);
    cr_assert_not(r.changed);
    cr_assert_eq(s.state, SP_SS_OFFLINE);
    r = ap(&s, SP_SSE_CLEANUP_DONE, 5);
    cr_assert_eq(r.actions, 0);
    r = ap(&s, SP_SSE_DISCONNECT_TIMEOUT, 5);
    cr_assert_eq(r.actions, 0);
}

Test(stream_state, fail_while_streaming_ends_with_error)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    ap(&s, SP_SSE_INPUT_CONNECTED, 1);
    start(&s, 0, 2);
    sp_ss_result_t r = ap(&s, SP_SSE_FAIL, 3);
    cr_assert_eq(s.state, SP_SS_ENDING);
    cr_assert_eq(s.end_reason, SP_SS_END_ERROR);
    cr_assert(r.actions & SP_SSA_DELETE_OUTPUTS);
    r = ap(&s, SP_SSE_FAIL, 4);
    cr_assert_eq(r.actions, 0);
}

Test(stream_state, bad_event)
{
    sp_ss_t s;
    sp_ss_init(&s, 5000, 0);
    sp_ss_event_t ev = { .type = (sp_ss_event_type_t)99 };
    sp_ss_result_t r = sp_ss_apply(&s, &ev, 1);
    cr_assert_eq(r.err, SP_EINVAL);
}
