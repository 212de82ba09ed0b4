/*
 * sp_stream_state: the pure stream state machine (see the header for the
 * rules). No I/O, no clocks: `now` comes from the caller.
 */
#include "livestream/sp_stream_state.h"

#include <string.h>

#include "core/sp_err.h"

static const char *const state_names[] = { "offline", "ready", "streaming", "ending" };
static const char *const end_names[] = { "", "user_stop", "disconnect_timeout", "error" };
static const char *const event_names[] = {
    "input_connected", "input_disconnected", "start", "stop",
    "outputs_result", "disconnect_timeout", "cleanup_done", "fail",
};

const char *sp_ss_state_name(sp_ss_state_t st)
{
    if ((unsigned)st > SP_SS_ENDING) return "unknown";
    return state_names[st];
}

int sp_ss_state_parse(const char *name)
{
    if (name == NULL) return -1;
    for (int i = 0; i <= SP_SS_ENDING; i++)
        if (strcmp(name, state_names[i]) == 0) return i;
    return -1;
}

const char *sp_ss_end_reason_name(sp_ss_end_reason_t r)
{
    if ((unsigned)r > SP_SS_END_ERROR) return "";
    return end_names[r];
}

int sp_ss_end_reason_parse(const char *name)
{
    if (name == NULL || name[0] == '\0') return SP_SS_END_NONE;
    for (int i = 1; i <= SP_SS_END_ERROR; i++)
        if (strcmp(name, end_names[i]) == 0) return i;
    return -1;
}

const char *sp_ss_event_name(sp_ss_event_type_t t)
{
    if ((unsigned)t > SP_SSE_FAIL) return "unknown";
    return event_names[t];
}

void sp_ss_init(sp_ss_t *s, int64_t disconnect_timeout_ms, int64_t now)
{
    memset(s, 0, sizeof(*s));
    s->state = SP_SS_OFFLINE;
    s->state_changed_at = now;
    s->disconnect_timeout_ms = disconnect_timeout_ms;
}

static sp_ss_result_t refuse(const char *reason)
{
    sp_ss_result_t r = { SP_ECONFLICT, reason, 0, false };
    return r;
}

static void go(sp_ss_t *s, sp_ss_state_t to, int64_t now, sp_ss_result_t *r)
{
    if (s->state != to) s->state_changed_at = now;
    s->state = to;
    r->changed = true;
    r->actions |= SP_SSA_PERSIST | SP_SSA_PUBLISH;
}

/* Enter ending: everything the stream owns is torn down. */
static void begin_end(sp_ss_t *s, sp_ss_end_reason_t why, int64_t now, sp_ss_result_t *r)
{
    s->end_reason = why;
    s->starting = false;
    if (s->disconnect_deadline != 0) r->actions |= SP_SSA_CANCEL_TIMER;
    s->disconnect_deadline = 0;
    r->actions |= SP_SSA_DELETE_OUTPUTS | SP_SSA_STOP_MONITORS;
    go(s, SP_SS_ENDING, now, r);
}

sp_ss_result_t sp_ss_apply(sp_ss_t *s, const sp_ss_event_t *ev, int64_t now)
{
    sp_ss_result_t r = { 0, NULL, 0, false };

    switch (ev->type) {
    case SP_SSE_INPUT_CONNECTED:
        if (!s->input_connected) r.changed = true;
        s->input_connected = true;
        if (s->state == SP_SS_OFFLINE) {
            go(s, SP_SS_READY, now, &r);
        } else if (s->state == SP_SS_STREAMING && s->disconnect_deadline != 0) {
            s->disconnect_deadline = 0;
            r.actions |= SP_SSA_CANCEL_TIMER | SP_SSA_PERSIST | SP_SSA_PUBLISH;
            r.changed = true;
        } else if (r.changed) {
            r.actions |= SP_SSA_PUBLISH;
        }
        return r;

    case SP_SSE_INPUT_DISCONNECTED:
        if (s->input_connected) r.changed = true;
        s->input_connected = false;
        if (s->state == SP_SS_READY) {
            go(s, SP_SS_OFFLINE, now, &r);
        } else if (s->state == SP_SS_STREAMING && s->disconnect_deadline == 0) {
            s->disconnect_deadline = now + s->disconnect_timeout_ms;
            r.actions |= SP_SSA_ARM_TIMER | SP_SSA_PERSIST | SP_SSA_PUBLISH;
            r.changed = true;
        } else if (r.changed) {
            r.actions |= SP_SSA_PUBLISH;
        }
        return r;

    case SP_SSE_START:
        switch (s->state) {
        case SP_SS_OFFLINE: return refuse("not_ready");
        case SP_SS_STREAMING: return refuse(s->starting ? "starting" : "already_streaming");
        case SP_SS_ENDING: return refuse("ending");
        case SP_SS_READY: break;
        }
        s->end_reason = SP_SS_END_NONE;
        s->disconnect_deadline = 0;
        s->starting = ev->n_destinations > 0;
        r.actions |= SP_SSA_NEW_STREAM | SP_SSA_START_MONITORS;
        if (ev->n_destinations > 0) r.actions |= SP_SSA_CREATE_OUTPUTS;
        go(s, SP_SS_STREAMING, now, &r);
        return r;

    case SP_SSE_OUTPUTS_RESULT:
        if (s->state != SP_SS_STREAMING || !s->starting) return r; /* late: ignore */
        s->starting = false;
        r.changed = true;
        if (ev->n_ok == 0 && ev->n_failed > 0) {
            /* every output failed: the start fails back */
            s->end_reason = SP_SS_END_ERROR;
            if (s->disconnect_deadline != 0) r.actions |= SP_SSA_CANCEL_TIMER;
            s->disconnect_deadline = 0;
            r.actions |= SP_SSA_DELETE_OUTPUTS | SP_SSA_STOP_MONITORS | SP_SSA_CLOSE_STREAM;
            r.reason = "all_outputs_failed";
            go(s, s->input_connected ? SP_SS_READY : SP_SS_OFFLINE, now, &r);
        } else {
            r.actions |= SP_SSA_PERSIST | SP_SSA_PUBLISH;
            if (ev->n_failed > 0) r.reason = "partial_failure";
        }
        return r;

    case SP_SSE_STOP:
        switch (s->state) {
        case SP_SS_OFFLINE:
        case SP_SS_READY: return refuse("not_streaming");
        case SP_SS_ENDING: return refuse("ending");
        case SP_SS_STREAMING: break;
        }
        if (s->starting) return refuse("starting");
        begin_end(s, SP_SS_END_USER_STOP, now, &r);
        return r;

    case SP_SSE_DISCONNECT_TIMEOUT:
        if (s->state != SP_SS_STREAMING || s->disconnect_deadline == 0 ||
            now < s->disconnect_deadline || s->input_connected)
            return r; /* stale */
        begin_end(s, SP_SS_END_DISCONNECT_TIMEOUT, now, &r);
        return r;

    case SP_SSE_FAIL:
        if (s->state != SP_SS_STREAMING) return r;
        begin_end(s, SP_SS_END_ERROR, now, &r);
        return r;

    case SP_SSE_CLEANUP_DONE:
        if (s->state != SP_SS_ENDING) return r;
        r.actions |= SP_SSA_CLOSE_STREAM;
        go(s, s->input_connected ? SP_SS_READY : SP_SS_OFFLINE, now, &r);
        return r;
    }
    r.err = SP_EINVAL;
    r.reason = "bad_event";
    return r;
}
