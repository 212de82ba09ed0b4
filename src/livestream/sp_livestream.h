/*
 * sp_livestream: the livestream domain (docs/architecture.md, docs/livestream.md). One
 * UserStreamManager per active user, found through the registry, started by presence
 * (dashboard sockets), by API use, by an input webhook, or by start-up recovery. Each
 * manager holds the seed's components:
 *   StreamStateServer         the sp_stream_state machine + stream_state row
 *   CloudflareManager         the user's live input (created on first need,
 *                             stored in live_inputs with the sealed key)
 *   CloudflareLiveInputMonitor webhooks first, polling within the budget
 *   CloudflareOutputManager   outputs: intent row -> API call -> confirm;
 *                             delete at stop/timeout; reconcile at start-up
 * No HTTP here: src/web/ calls this C API and turns results into answers. Stream history
 * is in sp_ls_history.h, the destinations model in sp_ls_destinations.h.
 * Everything runs on the loop thread.
 */
#ifndef SP_LIVESTREAM_H
#define SP_LIVESTREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "core/sp_config.h"
#include "livestream/sp_ls_media.h"
#include "media/sp_cf_webhook.h"

struct sp_store_s;  /* store/sp_store.h */
struct sp_pubsub_s; /* bus/sp_pubsub.h */

typedef struct sp_livestream_s sp_livestream_t;
/** One user's stream manager (opaque); handed out loaded by sp_livestream_with_manager. */
typedef struct sp_ls_manager_s sp_ls_manager_t;

/**
 * What the stream tells the platform side (web/ implements these on top of the platform
 * supervisor; livestream never includes platforms/). Every member may be NULL; ud is passed
 * back. Strings live during the call only.
 *   streaming       the stream went `streaming` (start, or recovered at start-up): the
 *                   platform names of its destinations that are not "custom"
 *   ending          the stream is `ending` (or its start failed everywhere)
 *   metadata        the title or the categories changed while streaming
 *   categories      (streaming, metadata) the stream's {platform: category id} object,
 *                   borrowed, or NULL when none was set
 *   resolve_ingest  the ingest of a connected-platform destination (url "platform:<name>",
 *                   no stored key), asked at each output create: cb exactly once, maybe
 *                   later, with the url and key (the key is a secret: never logged, never
 *                   stored) or an error that fails the output like any output failure
 */
typedef void (*sp_ls_ingest_cb)(int err, const char *url, const char *key, void *ud2);
typedef struct {
    void (*streaming)(void *ud, const char *user_id, const char *stream_id, const char *title,
                      json_t *categories, const char *const *platforms, size_t n);
    void (*ending)(void *ud, const char *user_id, const char *stream_id);
    void (*metadata)(void *ud, const char *user_id, const char *title, json_t *categories);
    void (*resolve_ingest)(void *ud, const char *user_id, const char *platform,
                           sp_ls_ingest_cb cb, void *ud2);
    /** The stream's live statistics for GET /api/stream's `stats` (a new reference, or NULL:
     *  none yet). */
    json_t *(*stats)(void *ud, const char *user_id);
    void *ud;
} sp_ls_platform_hooks_t;

/** The url prefix of a destination that is a connected platform account. */
#define SP_LS_PLATFORM_URL_PREFIX "platform:"

typedef struct {
    uv_loop_t *loop;
    const sp_config_t *cfg;
    struct sp_store_s *store;
    struct sp_pubsub_s *bus;    /* NULL: nothing is published */
    const sp_ls_media_t *media; /* copied; NULL or no ops: streaming disabled */
    const sp_ls_platform_hooks_t *platform_hooks; /* copied; NULL: no platform side */
} sp_livestream_opts_t;

/**
 * The outcome of an operation. err == 0: success, body is the answer (may be NULL).
 * Otherwise err is the SP_E* class (SP_ECONFLICT, SP_EINVAL, SP_ENOTFOUND, SP_EUPSTREAM,
 * SP_ECRYPTO, SP_EUNAVAIL, or a store/limit error), code/message say what (code NULL:
 * only err is known), and body, if any, carries details (an object).
 * Strings live during the callback only. The callback may take body (then it sets
 * res->body = NULL); otherwise body is released when the callback returns.
 */
typedef struct {
    int err;
    const char *code;
    const char *message;
    json_t *body;
} sp_ls_result_t;
/** Called exactly once per operation; maybe synchronously. */
typedef void (*sp_ls_result_cb)(sp_ls_result_t *res, void *ud);

/** Loads the sealing key if needed, creates the subsystem and starts recovery of every user
 *  whose persisted state is not offline. Returns 0 or a negative code. */
int sp_livestream_new(const sp_livestream_opts_t *opts, sp_livestream_t **out);
/** Graceful shutdown, first step (while the server still answers): stops timers and
 *  managers; pending operations fail with SP_EUNAVAIL, new ones with SP_ECLOSED. State
 *  stays persisted. Idempotent. */
void sp_livestream_shutdown(sp_livestream_t *ls);
/** Last step, after the media client and the store are closed (their callbacks may still
 *  reach the managers): releases everything once nothing refers to it. */
void sp_livestream_free(sp_livestream_t *ls);
/** True once sp_livestream_shutdown ran. */
bool sp_livestream_stopping(const sp_livestream_t *ls);

/** The process's Registry (the seed's keys: user_stream_manager, stream_state, cloudflare_*,
 *  platform_monitor, alert_queue); the platform supervisor registers its monitors in it. */
struct sp_registry_s *sp_livestream_registry(sp_livestream_t *ls);

/** Publishes on another bus from now on (NULL: before the bus is freed). */
void sp_livestream_set_bus(sp_livestream_t *ls, struct sp_pubsub_s *bus);
/** Installs (copied) or removes (NULL) the platform hooks after creation. */
void sp_livestream_set_platform_hooks(sp_livestream_t *ls, const sp_ls_platform_hooks_t *h);

/* ---- presence hooks for the dashboard socket layer (session_id unique per socket) ---- */
/** SP_ELIMIT over MAX_CONCURRENT_USERS (the socket layer closes with 1013). */
int sp_livestream_session_join(sp_livestream_t *ls, const char *user_id, uint64_t session_id);
void sp_livestream_session_leave(sp_livestream_t *ls, const char *user_id, uint64_t session_id);

/* ---- the user's stream ------------------------------------------------------------- */
/** res is NULL and m valid (during the callback only) once m is loaded; otherwise m is NULL
 *  and res says why (start refused, manager stopped, state unreadable). Starts the manager
 *  if needed and keeps it while the user is away (presence adopt). */
typedef void (*sp_ls_manager_cb)(sp_ls_manager_t *m, sp_ls_result_t *res, void *ud);
void sp_livestream_with_manager(sp_livestream_t *ls, const char *user_id, sp_ls_manager_cb cb,
                                void *ud);
/** Status, stream key, masked destinations and stats (GET /api/stream's answer). */
void sp_ls_manager_status(sp_ls_manager_t *m, sp_ls_result_cb cb, void *ud);
/** Starts a stream to the given destination ids (array of strings, distinct; stolen). The
 *  result comes when the outputs are settled: {state, stream_id, outputs, partial_failure},
 *  or SP_EUPSTREAM "all_outputs_failed" with {outputs}, or a refusal. */
void sp_ls_manager_start(sp_ls_manager_t *m, json_t *destination_ids, sp_ls_result_cb cb,
                         void *ud);
/** Stops the stream: {state, stream_id, end_reason} once persisted. */
void sp_ls_manager_stop(sp_ls_manager_t *m, sp_ls_result_cb cb, void *ud);
/** Regenerates the stream key (sp_ls_key.c): a new live input, the old one deleted from the
 *  media service before the answer {input:{input_uid, rtmp_url, stream_key, status},
 *  old_key_revoked}; SP_ECONFLICT "live" while streaming. */
void sp_ls_manager_regenerate_key(sp_ls_manager_t *m, sp_ls_result_cb cb, void *ud);
/** Sets title and description (validated by the caller); returns {title, description, live}. */
json_t *sp_ls_manager_set_metadata(sp_ls_manager_t *m, const char *title,
                                   const char *description, json_t *categories);

/* ---- input webhooks (the caller checked the secret and parsed the payload) ----------- */
typedef enum { SP_LS_WEBHOOK_UNAUTHORIZED, SP_LS_WEBHOOK_BAD } sp_ls_webhook_refusal_t;
/** Counts a webhook the caller refused. */
void sp_livestream_webhook_refused(sp_livestream_t *ls, sp_ls_webhook_refusal_t why);
/** Applies a verified input notification: {ok, result: applied|stale|duplicate|
 *  unknown_input|ignored}. */
void sp_livestream_webhook(sp_livestream_t *ls, const sp_cf_webhook_event_t *ev,
                           sp_ls_result_cb cb, void *ud);

/* ---- operations ------------------------------------------------------------------- */
/** Live state for the admin endpoint: what = presence|managers|users|counts; NULL if what
 *  is none of them. */
json_t *sp_livestream_debug(sp_livestream_t *ls, const char *what);
/** Prometheus text exposition of the livestream metrics. */
void sp_livestream_metrics(sp_livestream_t *ls, sp_buf_t *out);

#endif
