/*
 * sp_livestream_internal: types shared by the livestream domain's files. Not for other
 * modules. The files form a tree (each calls only the ones listed before it):
 *   sp_ls_manager.c       manager lifetime, persistence, publishing, JSON views
 *   sp_ls_engine.c        state machine execution, outputs, reconciliation
 *   sp_ls_monitor.c       live input (create, restore), polling, output refresh
 *   sp_livestream.c       subsystem lifecycle, managers (start, load, timer), presence,
 *                         recovery, debug, metrics
 *   sp_ls_stream.c        the user-facing operations: status, start, stop, metadata, webhooks
 *   sp_ls_history.c, sp_ls_destinations.c   store-backed resources (manager layer only)
 */
#ifndef SP_LIVESTREAM_INTERNAL_H
#define SP_LIVESTREAM_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_backoff.h"
#include "core/sp_map.h"
#include "core/sp_text.h"
#include "core/sp_uuid.h"
#include "livestream/sp_livestream.h"
#include "livestream/sp_ls_media.h"
#include "livestream/sp_presence.h"
#include "livestream/sp_reconcile.h"
#include "core/sp_registry.h"
#include "livestream/sp_stream_state.h"
#include "livestream/sp_supervisor.h"
#include "store/sp_store.h"

/* after an output is created, its health is refreshed every second (at most this many
   times) until it leaves idle/connecting, not only once per poll period */
#define SP_LS_QUICK_OUT_POLL_MS 1000
#define SP_LS_QUICK_OUT_POLLS 8

typedef struct sp_ls_out_s {
    sp_ls_manager_t *m;
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
} sp_ls_out_t;

typedef struct sp_ls_waiter_s {
    void (*fn)(sp_ls_manager_t *m, void *ud);
    void *ud;
    struct sp_ls_waiter_s *next;
} sp_ls_waiter_t;

typedef void (*sp_ls_mgr_fn)(sp_ls_manager_t *m);

/* the user's stream settings (sp_ls_settings.c), cached in the manager once loaded */
typedef struct {
    bool auto_start;
    json_t *auto_dests; /* array of destination ids */
    bool disconnect_protection;
    bool pending;  /* an auto go-live is owed to the current encoder connection */
    bool running;  /* an auto go-live is under way */
} sp_ls_settings_t;

struct sp_ls_manager_s {
    sp_livestream_t *ls;
    char *user_id;
    int refs;
    bool stopped;
    bool timer_closed;
    bool loaded;
    bool load_failed;
    sp_ls_waiter_t *waiters;
    uv_timer_t timer;

    /* StreamStateServer */
    sp_ss_t ss;
    char stream_id[SP_UUID_STRLEN];
    int64_t stream_started_at;
    char *title;
    json_t *categories; /* {platform: category id} chosen for the stream, or NULL */
    char *description;
    char *last_error;
    bool start_busy;
    sp_ls_result_cb start_cb; /* the pending start, answered at OUTPUTS_RESULT */
    void *start_ud;

    /* CloudflareManager + LiveInputMonitor */
    char *input_uid;
    char *rtmp_url;
    char *stream_key;
    sp_input_status_t input_status;
    json_t *input_health; /* sanitized input health while connected (sp_ls_health.h) */
    int64_t input_event_at; /* provider's time of the last applied input event; 0 = none yet */
    bool input_verify;      /* status as loaded: poll until the media service confirms it */
    bool input_creating;
    uint64_t input_retry_mono;
    sp_ls_mgr_fn input_waiter;
    bool polling;
    bool input_restoring;
    uint64_t next_poll_mono;
    sp_sup_t input_sup;
    sp_backoff_t poll_bo;
    bool degraded;

    /* CloudflareOutputManager */
    sp_ls_out_t **outs;
    size_t n_outs;
    bool needs_reconcile;
    bool reconciling;
    uint64_t reconcile_retry_mono;
    int orphan_deletes;
    bool cleanup_started;
    /* periodic output refresh while streaming (health + lost outputs) */
    bool out_polling;
    uint64_t next_out_poll_mono;
    int quick_out_polls; /* refreshes left at the quick period while an output settles */
    uint64_t out_gen; /* bumped by every output create/delete/reconcile: a list issued
                         before a change is not used to reconcile */

    /* stream settings and the input's last known status (sp_ls_settings.c, sp_ls_eventlog.c) */
    sp_ls_settings_t settings;
    sp_input_status_t input_known; /* last status the media service reported (never UNKNOWN) */
    int64_t input_known_at;        /* wall ms it began (0: unknown) */
    json_t *recording; /* {mode, active, error?, state?}: GET /api/stream (sp_ls_eventlog.c) */
    char *rec_error_logged; /* the recording error already in the event log */
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
} sp_ls_counters_t;

struct sp_livestream_s {
    uv_loop_t *loop;
    struct sp_pubsub_s *bus;
    uv_timer_cb mgr_timer_cb; /* sp_livestream.c: runs a manager's due work */
    const sp_config_t *cfg;
    sp_store_t *store;
    sp_registry_t *reg;
    sp_presence_t *presence;
    sp_map_t *by_input; /* input_uid -> manager (borrowed) */
    sp_ls_media_t media;
    bool has_media;
    sp_ls_platform_hooks_t phooks; /* zeroed: none */
    uv_timer_t poll_timer;
    bool shutting_down;
    sp_ls_counters_t counters;
    uint64_t managers_freed;
    bool poll_closed;
    bool owner_gone;
    void (*settings_changed)(void *ud, const char *user_id, bool disconnect_protection);
    void *settings_changed_ud;
};


/* ---- sp_ls_manager.c ------------------------------------------------------------- */
void sp_ls_set_str(char **dst, const char *src);
void sp_ls_wipe_free(char *s);
int64_t sp_ls_jint(json_t *row, const char *key);
void sp_ls_out_free(sp_ls_out_t *o);
void sp_ls_out_clear_health(sp_ls_out_t *o);
void sp_ls_maybe_free(sp_livestream_t *ls);
void sp_ls_ref(sp_ls_manager_t *m);
void sp_ls_unref(sp_ls_manager_t *m);
/* Unregisters the manager, runs the waiters (they see m->stopped), fails a pending start,
   closes the timer and drops the owner's reference. */
void sp_ls_mgr_stop_now(sp_ls_manager_t *m, const char *why);
void sp_ls_mgr_run_waiters(sp_ls_manager_t *m);
void sp_ls_mgr_when_loaded(sp_ls_manager_t *m, void (*fn)(sp_ls_manager_t *, void *), void *ud);
bool sp_ls_mgr_can_stop(const sp_ls_manager_t *m);
void sp_ls_mgr_recheck_presence(sp_ls_manager_t *m);
void sp_ls_mgr_add_output(sp_ls_manager_t *m, sp_ls_out_t *o);
void sp_ls_mgr_set_input(sp_ls_manager_t *m, const char *uid, const char *rtmp_url,
                         const char *key);
void sp_ls_mgr_arm_timer(sp_ls_manager_t *m);
json_t *sp_ls_state_params(sp_ls_manager_t *m);
extern const char *const SP_LS_SQL_UPSERT_STATE;
void sp_ls_persist(sp_ls_manager_t *m, void (*done)(sp_ls_manager_t *, int, void *), void *ud);
void sp_ls_write(sp_ls_manager_t *m, const char *sql, json_t *params);
int sp_ls_unseal(const char *user_id, const char *purpose, const char *sealed, sp_buf_t *out);
char *sp_ls_seal(const char *user_id, const char *purpose, const char *plain);
void sp_ls_publish(sp_livestream_t *ls, const char *topic, const char *event, json_t *payload);
void sp_ls_publish_state(sp_ls_manager_t *m, const char *reason);
void sp_ls_record_event(sp_ls_manager_t *m, const char *stream_id, const char *type,
                        json_t *payload);
json_t *sp_ls_status_json(sp_ls_manager_t *m, bool with_key);
/* input.health (sp_ls_health.h): the view with warnings for the given platforms (NULL, n 0:
   the outputs'), or null unless the input is connected and a poll reported it */
json_t *sp_ls_health_json(sp_ls_manager_t *m, const char *const *platforms, size_t n);
/* The platform hooks: the stream is streaming (its platform destinations) / ending. */
void sp_ls_hook_streaming(sp_ls_manager_t *m);
void sp_ls_hook_ending(sp_ls_manager_t *m, const char *stream_id);
/* A destination row / output that is a connected platform account ("platform:<name>"). */
bool sp_ls_is_platform_url(const char *url);
json_t *sp_ls_outputs_json(sp_ls_manager_t *m);
/* Answers the pending start (if any) from the manager's state; reason NULL, "partial_failure",
   "all_outputs_failed" or "ended". */
void sp_ls_answer_start(sp_ls_manager_t *m, const char *reason);
/* Calls cb with an error result (code/message static or live during the call). */
void sp_ls_fail(sp_ls_result_cb cb, void *ud, int err, const char *code, const char *message);
void sp_ls_ok(sp_ls_result_cb cb, void *ud, json_t *body);
/* Answers a store query's rows: on err a failure, else {key: [map(row)...]} (map returns a new
   reference). */
void sp_ls_answer_rows(sp_ls_result_cb cb, void *ud, int err, json_t *rows, const char *key,
                       json_t *(*map)(json_t *row));

/* ---- sp_ls_engine.c -------------------------------------------------------------- */
/* Applies an event. If the result persists, done(m, err, ud) runs once the new state is
   written (effects follow); otherwise done is NOT called. */
typedef void (*sp_ls_persist_fn)(sp_ls_manager_t *m, int err, void *ud);
sp_ss_result_t sp_ls_mgr_apply(sp_ls_manager_t *m, const sp_ss_event_t *ev,
                               sp_ls_persist_fn done, void *ud);
void sp_ls_outputs_pump(sp_ls_manager_t *m);
void sp_ls_reconcile_start(sp_ls_manager_t *m);
/* periodic: only outputs that were active and are gone from the media service */
void sp_ls_reconcile_apply(sp_ls_manager_t *m, const sp_ls_output_t *remotes, size_t nremotes,
                           bool periodic);

/* ---- sp_ls_monitor.c ------------------------------------------------------------- */
enum { SP_LS_INPUT_APPLIED = 0, SP_LS_INPUT_DUPLICATE, SP_LS_INPUT_STALE };
/* Input status from the monitor. Returns SP_LS_INPUT_*; done runs (maybe synchronously) only
   when SP_LS_INPUT_APPLIED. */
int sp_ls_apply_input(sp_ls_manager_t *m, sp_input_status_t st, int64_t event_at,
                      const char *source, sp_ls_persist_fn done, void *ud);
void sp_ls_input_ensure(sp_ls_manager_t *m, sp_ls_mgr_fn done);
void sp_ls_poll_tick(sp_livestream_t *ls);

/* ---- sp_ls_eventlog.c (next to sp_ls_manager.c) ---------------------------------- */
/* Adds a plain-words "message" to a stream event's payload (unless it has one). */
void sp_ls_event_describe(sp_ls_manager_t *m, const char *type, json_t *payload);
/* Publishes a described event ({id, type, message, created_at}) as `stream_event` on
   stream_lifecycle:<user> (the stream page's event log). */
void sp_ls_event_publish(sp_ls_manager_t *m, const char *id, const char *type, json_t *payload);
/* Keeps the user's stream event log bounded (SP_LS_EVENTS_KEEP newest). */
void sp_ls_events_prune(sp_ls_manager_t *m);
/* The media service's status of the input was applied: remember (and persist) the last
   known one and log connect/disconnect/error. */
void sp_ls_input_observed(sp_ls_manager_t *m, sp_input_status_t st, int64_t at);
/* A poll's "never connected" once a connection was seen (the media service restarted):
   disconnected. */
sp_input_status_t sp_ls_input_none_mapped(const sp_ls_manager_t *m, sp_input_status_t st);
/* input.last_status / input.status_since in the status JSON */
void sp_ls_input_json_extra(const sp_ls_manager_t *m, json_t *input);
/* recordings (sp_ls_eventlog.c): a poll's recording object (NULL: none) updates the status's
 * "recording" and logs a new error; the relay's recording webhooks go to the event log */
void sp_ls_recording_update(sp_ls_manager_t *m, const json_t *raw);
json_t *sp_ls_recording_json(const sp_ls_manager_t *m);
void sp_ls_recording_webhook(sp_ls_manager_t *m, const sp_cf_webhook_event_t *ev);
/* A destination output failed / recovered / reported an error (health). */
void sp_ls_event_output(sp_ls_manager_t *m, const sp_ls_out_t *o, const char *type,
                        const char *error);

/* ---- sp_ls_settings.c (above sp_ls_stream.c) ------------------------------------- */
/* Loads the settings into m->settings (defaults when none), then next(m). */
void sp_ls_settings_load(sp_ls_manager_t *m, sp_ls_mgr_fn next);
/* the built-in relay's input gets the user's disconnect_protection (only_off: only when off) */
void sp_ls_protection_sync(sp_ls_manager_t *m, bool only_off);
/* After a state transition: an encoder that connected (offline -> ready) with auto go-live
   on starts the stream. */
void sp_ls_autostart_after(sp_ls_manager_t *m, sp_ss_state_t before);
/* Once loaded (and reconciled): an auto go-live owed from before a crash runs, or is
   dropped when the state moved on. */
void sp_ls_autostart_loaded(sp_ls_manager_t *m);

/* ---- sp_livestream.c ------------------------------------------------------------- */
int sp_ls_mgr_ensure(sp_livestream_t *ls, const char *user_id, bool force, sp_ls_manager_t **out);

/** Upserts the user's live_inputs row for in (stream key sealed); reset_status also forgets the
 *  last known input status (a new key has never been used). sp_ls_monitor.c. */
void sp_ls_store_input(sp_ls_manager_t *m, const sp_ls_input_t *in, bool reset_status,
                       sp_store_cb cb, void *ud);

#endif
