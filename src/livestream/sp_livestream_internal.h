/*
 * sp_livestream_internal: types shared by the livestream manager's files
 * (sp_livestream.c lifecycle/persistence, sp_ls_engine.c state machine
 * execution/outputs/monitor/reconciliation, sp_ls_routes.c HTTP,
 * sp_ls_destinations.c destinations). Not for other modules.
 */
#ifndef SP_LIVESTREAM_INTERNAL_H
#define SP_LIVESTREAM_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "livestream/sp_livestream.h"
#include "livestream/sp_ls_media.h"
#include "core/sp_map.h"
#include "livestream/sp_presence.h"
#include "livestream/sp_reconcile.h"
#include "livestream/sp_registry.h"
#include "store/sp_store.h"
#include "livestream/sp_stream_state.h"
#include "livestream/sp_supervisor.h"
#include "core/sp_uuid.h"

typedef struct ls_manager_s ls_manager_t;

typedef struct ls_output_s {
    ls_manager_t *m;
    char *row_id;
    char *destination_id;
    char *name;
    char *platform;
    char *url;
    char *key;        /* plain, in memory while the stream lives; wiped on free */
    char *output_uid; /* NULL until confirmed */
    sp_out_state_t state;
    char *last_error;
    bool inflight;         /* a media call for it is pending */
    bool attempted;        /* a create was tried at least once */
    uint64_t next_at_mono; /* retry time (0 = now / none) */
    int delete_attempts;
    sp_sup_t sup;
    /* health from the media backend (periodic list while streaming); NULL = unknown */
    char *h_status;
    char *h_error;
    int64_t h_bytes, h_reconnects;
} ls_output_t;

typedef struct ls_waiter_s {
    void (*fn)(ls_manager_t *m, void *ud);
    void *ud;
    struct ls_waiter_s *next;
} ls_waiter_t;

typedef void (*ls_done_fn)(ls_manager_t *m);

struct ls_manager_s {
    sp_livestream_t *ls;
    char *user_id;
    int refs;
    bool stopped;
    bool timer_closed;
    bool loaded;
    bool load_failed;
    ls_waiter_t *waiters;
    uv_timer_t timer;

    /* StreamStateServer */
    sp_ss_t ss;
    char stream_id[SP_UUID_STRLEN];
    int64_t stream_started_at;
    char *title;
    char *description;
    char *last_error;
    bool start_busy;
    sp_http_req_t *start_req; /* answered at OUTPUTS_RESULT */

    /* CloudflareManager + LiveInputMonitor */
    char *input_uid;
    char *rtmp_url;
    char *stream_key;
    sp_input_status_t input_status;
    int64_t input_event_at; /* wall ms of the last applied input event */
    bool input_creating;
    uint64_t input_retry_mono;
    ls_done_fn input_waiter;
    bool polling;
    bool input_restoring;
    uint64_t next_poll_mono;
    sp_sup_t input_sup;
    sp_backoff_t poll_bo;
    bool degraded;

    /* CloudflareOutputManager */
    ls_output_t **outs;
    size_t n_outs;
    bool needs_reconcile;
    bool reconciling;
    uint64_t reconcile_retry_mono;
    int orphan_deletes;
    bool cleanup_started;
    /* periodic output refresh while streaming (health + lost outputs) */
    bool out_polling;
    uint64_t next_out_poll_mono;
    uint64_t out_gen; /* bumped by every output create/delete/reconcile: a list issued
                         before a change is not used to reconcile */
};

typedef struct {
    uint64_t managers_started, managers_stopped, sessions_started, refused_limit, recovered;
    uint64_t persists, transitions, illegal_requests;
    uint64_t events_processed, webhooks_ok, webhooks_unauthorized, webhooks_stale,
        webhooks_duplicate, webhooks_unknown_input, webhooks_bad;
    uint64_t polls, poll_errors, poll_skipped_budget;
    uint64_t outputs_created, outputs_failed, outputs_deleted, outputs_adopted,
        orphans_deleted, reconciles, output_polls, outputs_lost, inputs_restored;
    uint64_t inputs_created, input_errors;
    uint64_t streams_started, streams_ended;
    uint64_t call_count, call_us_total; /* StreamStateServer call duration */
} ls_counters_t;

struct sp_livestream_s {
    sp_app_t *app;
    uv_loop_t *loop;
    const sp_config_t *cfg;
    sp_store_t *store;
    sp_registry_t *reg;
    sp_presence_t *presence;
    sp_map_t *by_input; /* input_uid -> manager (borrowed) */
    sp_ls_media_t media;
    bool has_media;
    uv_timer_t poll_timer;
    bool shutting_down;
    char *admin_token;
    ls_counters_t counters;
    uint64_t managers_freed;
    bool poll_closed;
    bool owner_gone;
    uint64_t state_hist[4];
};

static inline const char *jstr_or_null(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* sp_livestream.c */
int ls_hook_start(const char *user_id, void *ud);
void ls_hook_stop(const char *user_id, void *ud);
bool ls_hook_can_stop(const char *user_id, void *ud);
void ls_mgr_stop_now(ls_manager_t *m, const char *why);
void ls_maybe_free(sp_livestream_t *ls);
void ls_ref(ls_manager_t *m);
void ls_unref(ls_manager_t *m);
int ls_mgr_ensure(sp_livestream_t *ls, const char *user_id, bool force, ls_manager_t **out);
void ls_mgr_when_loaded(ls_manager_t *m, void (*fn)(ls_manager_t *, void *), void *ud);
void ls_out_free(ls_output_t *o);
void ls_mgr_add_output(ls_manager_t *m, ls_output_t *o);
void ls_mgr_set_input(ls_manager_t *m, const char *uid, const char *rtmp_url, const char *key);
bool ls_mgr_has_open_outputs(const ls_manager_t *m);
void ls_mgr_recheck_presence(ls_manager_t *m);
void ls_mgr_arm_timer(ls_manager_t *m);
json_t *ls_state_params(ls_manager_t *m);
extern const char *const LS_SQL_UPSERT_STATE;
void ls_persist(ls_manager_t *m, void (*done)(ls_manager_t *, int, void *), void *ud);
void ls_write(ls_manager_t *m, const char *sql, json_t *params);
int ls_unseal(const char *user_id, const char *purpose, const char *sealed, sp_buf_t *out);
char *ls_seal(const char *user_id, const char *purpose, const char *plain);

/* sp_ls_engine.c */
/* Applies an event; done(m, ud) runs once the new state is persisted (or at once). */
/* Applies an event. If the result persists, done(m, err, ud) runs once the new state is
   written (effects follow); otherwise done is NOT called. */
typedef void (*ls_persist_fn)(ls_manager_t *m, int err, void *ud);
sp_ss_result_t ls_mgr_apply(ls_manager_t *m, const sp_ss_event_t *ev, ls_persist_fn done,
                            void *ud);
enum { LS_INPUT_APPLIED = 0, LS_INPUT_DUPLICATE, LS_INPUT_STALE };
/* Input status from the monitor. Returns LS_INPUT_*; done runs (maybe synchronously) only
   when LS_INPUT_APPLIED. */
int ls_apply_input(ls_manager_t *m, sp_input_status_t st, int64_t event_at, const char *source,
                   ls_persist_fn done, void *ud);
void ls_input_ensure(ls_manager_t *m, ls_done_fn done);
void ls_outputs_pump(ls_manager_t *m);
void ls_reconcile_start(ls_manager_t *m);
void ls_poll_tick(sp_livestream_t *ls);
void ls_publish_state(ls_manager_t *m, const char *reason);
void ls_answer_start(ls_manager_t *m, const char *reason);
void ls_publish(sp_livestream_t *ls, const char *topic, const char *event, json_t *payload);
void ls_record_event(ls_manager_t *m, const char *stream_id, const char *type, json_t *payload);
json_t *ls_status_json(ls_manager_t *m, bool with_key);
json_t *ls_outputs_json(ls_manager_t *m);

/* sp_ls_routes.c / sp_ls_destinations.c */
void ls_routes_register(sp_livestream_t *ls, sp_router_t *router);
void ls_destinations_register(sp_livestream_t *ls, sp_router_t *router);
const char *ls_req_user(sp_http_req_t *req);
void ls_respond_err(sp_http_req_t *req, int err);

#endif
