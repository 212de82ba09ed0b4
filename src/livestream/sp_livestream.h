/*
 * sp_livestream: the livestream manager (ARCHITECTURE.md §2). One
 * UserStreamManager per active user, found through the registry, started by
 * presence (dashboard sockets), by API use, by an input webhook, or by
 * start-up recovery. Each manager holds the seed's components:
 *   StreamStateServer         the sp_stream_state machine + stream_state row
 *   CloudflareManager         the user's live input (created on first need,
 *                             stored in live_inputs with the sealed key)
 *   CloudflareLiveInputMonitor webhooks first, polling within the budget
 *   CloudflareOutputManager   outputs: intent row -> API call -> confirm;
 *                             delete at stop/timeout; reconcile at start-up
 * Routes: /api/stream*, /api/streams*, /api/events, /api/destinations*,
 * /webhooks/cloudflare, /api/admin/debug.
 */
#ifndef SP_LIVESTREAM_H
#define SP_LIVESTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "web/sp_app.h"
#include "core/sp_buf.h"
#include "livestream/sp_ls_media.h"

typedef struct sp_livestream_s sp_livestream_t;

/** Creates app->live; needs app->store (and app->pubsub, app->cloudflare when present).
 *  Starts recovery of every user whose persisted state is not offline. */
int sp_livestream_init(sp_app_t *app);
void sp_livestream_register_routes(sp_app_t *app);
/** Graceful shutdown, first step (call when shutdown begins, while HTTP still runs): stops
 *  timers and managers; pending requests are answered 503; routes answer 503 from now on.
 *  State stays persisted for the next start. Idempotent. */
void sp_livestream_shutdown(sp_app_t *app);
/** Last step, after the media client and the store are closed (their callbacks may still
 *  reach the managers): releases everything. Calls sp_livestream_shutdown if needed. */
void sp_livestream_free(sp_app_t *app);

/** Uses another media backend than app->cloudflare (tests, the built-in relay). */
void sp_livestream_set_media(sp_livestream_t *ls, const sp_ls_media_t *media);

/* Presence hooks for the dashboard WebSocket (session_id unique per socket). */
int sp_livestream_session_join(sp_livestream_t *ls, const char *user_id, uint64_t session_id);
void sp_livestream_session_leave(sp_livestream_t *ls, const char *user_id, uint64_t session_id);

/** Dashboard sockets: installs the presence observer on app->ws (first authenticated socket
 *  of a user starts the user's manager, the last one leaving schedules cleanup; over
 *  MAX_CONCURRENT_USERS the socket is closed with 1013). Authentication itself is
 *  sp_auth_attach_ws. Call after sp_socket_init and sp_livestream_init. */
void sp_livestream_attach_ws(sp_app_t *app);

/** Prometheus text exposition of the livestream metrics. */
void sp_livestream_metrics(sp_livestream_t *ls, sp_buf_t *out);

#endif
