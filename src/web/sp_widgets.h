/*
 * sp_widgets: the OBS widgets' server side (docs/widgets.md).
 *   sp_routes_widgets.c  tokens (GET /api/widgets, POST /api/widgets/{type}/token), config
 *                        (GET/PUT /api/widgets/{type}/config), AlertBox controls and tests,
 *                        the chat test, the widget pages (/widgets/{type}?token=,
 *                        /widgets/{type}/config?token=), the AlertQueue wiring (app->alerts,
 *                        fed by psup's alert hook)
 *   sp_routes_uploads.c  POST /api/widgets/uploads, GET /uploads/{user}/{file}
 *   sp_socket_auth.c     GET /socket?widget_token= (read-only scope, sp_pubsub authorize)
 */
#ifndef SP_WIDGETS_H
#define SP_WIDGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "web/sp_app.h"

#define SP_WIDGET_TOKEN_HEX 64 /* 256 random bits, hex */

/** Creates app->alerts, sets psup's alert hook and registers every widget route. After
 *  sp_web_psup_init's psup exists (called from it). 0 or a negative code. */
int sp_web_widgets_init(sp_app_t *app);
/** Shutdown begins: the AlertQueue stops ticking and publishing. */
void sp_web_widgets_shutdown(sp_app_t *app);
/** Before the store closes. */
void sp_web_widgets_free(sp_app_t *app);

/** The owner of a widget token: err 0 with user_id and type ("alertbox" | "chat"),
 *  SP_ENOTFOUND (unknown, rotated or malformed token) or a store error. */
typedef void (*sp_widget_token_cb)(int err, const char *user_id, const char *type, void *ud);
void sp_widgets_token_lookup(sp_app_t *app, const char *token, sp_widget_token_cb cb, void *ud);

/** Reads path (at most max bytes) on the thread pool and answers req with it (status 200,
 *  content_type, optional cache_control) or 404 / 413 / 500. */
void sp_widgets_send_file(sp_http_req_t *req, const char *path, size_t max,
                          const char *content_type, const char *cache_control);

/** sp_routes_uploads.c */
void sp_routes_uploads_register(sp_app_t *app);

#endif
