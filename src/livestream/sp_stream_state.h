/*
 * sp_stream_state: the stream state machine of docs/livestream.md ("State machine") as a pure
 * transition function (the seed's StreamStateServer logic without the I/O).
 *
 *   offline -> ready -> streaming -> ending -> offline (or ready if the input
 *   is still connected when cleanup finishes).
 *
 * The caller (sp_livestream.c) feeds events, then executes the returned
 * actions in a fixed order: PERSIST first (intent before acting), then the
 * external effects, then PUBLISH. Illegal requests return SP_ECONFLICT with a
 * snake_case reason ("not_ready", "not_streaming", ...) and change nothing.
 *
 * Start: ready -> streaming immediately (the stream id and row are intent,
 * written before any output is created) with `starting` set until the
 * outputs result arrives. If every output fails the stream falls back to
 * ready (end reason "error"); partial failure keeps streaming.
 *
 * Disconnect grace window: input lost while streaming sets
 * disconnect_deadline = now + disconnect_timeout_ms (ARM_TIMER); a reconnect
 * inside the window clears it (CANCEL_TIMER); DISCONNECT_TIMEOUT at or after
 * the deadline ends the stream with "disconnect_timeout". Stale timeouts
 * (deadline cleared or not reached) are ignored.
 */
#ifndef SP_STREAM_STATE_H
#define SP_STREAM_STATE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    SP_SS_OFFLINE = 0,
    SP_SS_READY,
    SP_SS_STREAMING,
    SP_SS_ENDING,
} sp_ss_state_t;

typedef enum {
    SP_SS_END_NONE = 0,
    SP_SS_END_USER_STOP,
    SP_SS_END_DISCONNECT_TIMEOUT,
    SP_SS_END_ERROR,
} sp_ss_end_reason_t;

typedef enum {
    SP_SSE_INPUT_CONNECTED = 0,
    SP_SSE_INPUT_DISCONNECTED, /* also "errored" */
    SP_SSE_START,              /* n_destinations */
    SP_SSE_STOP,
    SP_SSE_OUTPUTS_RESULT,     /* n_ok, n_failed */
    SP_SSE_DISCONNECT_TIMEOUT,
    SP_SSE_CLEANUP_DONE,
    SP_SSE_FAIL,               /* unrecoverable error while streaming */
} sp_ss_event_type_t;

typedef struct {
    sp_ss_event_type_t type;
    int n_destinations;
    int n_ok;
    int n_failed;
} sp_ss_event_t;

/* Actions (bit mask), executed by the caller in this order. */
enum {
    SP_SSA_NEW_STREAM = 1u << 0,      /* new stream UUID + streams row (intent) */
    SP_SSA_PERSIST = 1u << 1,         /* write the stream_state row */
    SP_SSA_CREATE_OUTPUTS = 1u << 2,  /* one output per selected destination */
    SP_SSA_START_MONITORS = 1u << 3,  /* platform monitors, titles pushed */
    SP_SSA_ARM_TIMER = 1u << 4,       /* disconnect timer to disconnect_deadline */
    SP_SSA_CANCEL_TIMER = 1u << 5,
    SP_SSA_DELETE_OUTPUTS = 1u << 6,  /* delete every output of the stream (cleanup) */
    SP_SSA_STOP_MONITORS = 1u << 7,
    SP_SSA_CLOSE_STREAM = 1u << 8,    /* streams row: ended_at, end_reason */
    SP_SSA_PUBLISH = 1u << 9,         /* state change to user_stream:{id} */
};

typedef struct {
    sp_ss_state_t state;
    bool input_connected;
    bool starting;                /* streaming, outputs being created */
    int64_t state_changed_at;     /* wall ms */
    int64_t disconnect_deadline;  /* wall ms; 0 = none */
    sp_ss_end_reason_t end_reason; /* of the stream being ended / last ended */
    int64_t disconnect_timeout_ms;
} sp_ss_t;

typedef struct {
    int err;            /* 0 or SP_ECONFLICT */
    const char *reason; /* snake_case, set when err != 0 */
    unsigned actions;   /* SP_SSA_* */
    bool changed;       /* state (or deadline/starting/input flag) changed */
} sp_ss_result_t;

void sp_ss_init(sp_ss_t *s, int64_t disconnect_timeout_ms, int64_t now);
sp_ss_result_t sp_ss_apply(sp_ss_t *s, const sp_ss_event_t *ev, int64_t now);

const char *sp_ss_state_name(sp_ss_state_t st);
/** Returns -1 for an unknown name. */
int sp_ss_state_parse(const char *name);
const char *sp_ss_end_reason_name(sp_ss_end_reason_t r);
int sp_ss_end_reason_parse(const char *name);
const char *sp_ss_event_name(sp_ss_event_type_t t);

#endif
