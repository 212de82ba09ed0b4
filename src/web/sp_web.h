/*
 * sp_web: what the route groups of src/web/ share, and the wiring of the livestream
 * subsystem into the app.
 *
 * Route groups (one file per resource, each registers its own routes):
 *   sp_routes_core.c          /healthz, /readyz, /metrics (+ subsystem metrics), static
 *   sp_routes_stream.c        /api/stream*, /api/streams*
 *   sp_routes_destinations.c  /api/destinations*
 *   sp_routes_events.c        /api/events
 *   sp_routes_webhooks.c      /webhooks/cloudflare
 *   sp_routes_admin.c         /api/admin/debug
 *   sp_web_psup.c             /api/chat, /api/platforms/{p}/categories, /webhooks/twitch
 *   sp_socket.c               /socket (hub, bus, dashboard presence; sp_socket.h)
 */
#ifndef SP_WEB_H
#define SP_WEB_H

#include "livestream/sp_livestream.h"
#include "net/sp_http.h"
#include "web/sp_app.h"

/* ---- helpers for handlers ----------------------------------------------------------- */
/** The authenticated user's id (SP_ROUTE_AUTH routes), or NULL. */
const char *sp_web_user(sp_http_req_t *req);
/** Answers a livestream result: ok_status with its body (none: no body), or the error as
 *  {"error": {code, message, ...details}} with the status of its class: SP_ECONFLICT 409,
 *  SP_EINVAL 422, SP_ENOTFOUND 404, SP_EUPSTREAM 502, SP_ECRYPTO 500, else 503. Without a
 *  code (only err is known): SP_ELIMIT 503 too_many_users, SP_ENOTFOUND 404 not_found,
 *  SP_ECLOSED 503 shutting_down, else 503 unavailable. Takes res->body. */
void sp_web_respond_result(sp_http_req_t *req, sp_ls_result_t *res, int ok_status);

/* ---- route groups ------------------------------------------------------------------- */
void sp_routes_stream_register(sp_app_t *app);
void sp_routes_destinations_register(sp_app_t *app);
/** /api/recordings*, /api/stream/recording (sp_routes_recordings.c); free (at shutdown, before
 *  handles are closed; idempotent) stops the retention timer. */
void sp_routes_recordings_register(sp_app_t *app);
void sp_routes_recordings_free(sp_app_t *app);
void sp_routes_events_register(sp_app_t *app);
void sp_routes_webhooks_register(sp_app_t *app);
void sp_routes_admin_register(sp_app_t *app);
/** The livestream and media client series on /metrics (sp_routes_core.c). */
void sp_routes_metrics_attach(sp_app_t *app);
void sp_routes_metrics_detach(sp_app_t *app);

/* ---- platforms wiring (main.c; sp_web_platforms.c) ---------------------------------- */
/** penv, accounts, OAuth states (and app->curlm when unset), the /auth/ flows and /api/platforms.
 *  After sp_auth_new and the store. 0 or a negative code. */
int sp_web_platforms_init(sp_app_t *app);
/** At shutdown, before the store closes; pending flows and account calls end now. */
void sp_web_platforms_free(sp_app_t *app);

/* ---- livestream wiring (main.c) ------------------------------------------------------ */
/** Creates app->live from app->store, app->pubsub, app->cloudflare and the config, and its
 *  metrics. Returns 0 or a negative code. */
int sp_web_live_init(sp_app_t *app);
/** Every livestream route group. */
void sp_web_live_routes(sp_app_t *app);
/** Presence on dashboard sockets; after sp_socket_init and sp_web_live_init. */
void sp_web_live_attach_ws(sp_app_t *app);
/** When shutdown begins (HTTP still runs): pending requests are answered 503. */
void sp_web_live_shutdown(sp_app_t *app);
/** After the media client and the store are closed. */
void sp_web_live_free(sp_app_t *app);

/* ---- platform supervisor wiring (sp_web_psup.c, main.c) -------------------------------- */
/** Creates app->psup (from app->penv, store, pubsub, accounts), installs the livestream's
 *  platform hooks on app->live and registers POST /api/chat,
 *  GET /api/platforms/{platform}/categories and POST /webhooks/twitch. After
 *  sp_web_platforms_init and sp_web_live_init. Returns 0 or a negative code. */
int sp_web_psup_init(sp_app_t *app);
/** Stops every monitor and frees app->psup; before the store and the HTTP client close. */
void sp_web_psup_free(sp_app_t *app);

#endif
