/*
 * sp_auth: accounts and sessions.
 *
 * Routes: POST /api/auth/register, /api/auth/login, /api/auth/logout,
 * /api/auth/token and GET /api/me (ARCHITECTURE.md §3). A session is a row in
 * `sessions` plus a JWT (HS256, see sp_jwt.h) naming it (sid) and its user
 * (sub). The JWT travels in the session cookie or as `Authorization: Bearer`.
 * Every authenticated request re-reads the session row and the user, so logout
 * (revoked_at) and a deleted user take effect at once.
 *
 * Cookies: when PUBLIC_URL is https the session cookie is `__Host-sp_session`
 * (Secure; HttpOnly; Path=/; SameSite=Lax). Browsers refuse `__Host-` cookies
 * without Secure, so over plain http (dev, tests) the name is `sp_session`,
 * same flags minus Secure. The CSRF cookie `sp_csrf` (readable by JS) holds
 * an HMAC of the session id; state-changing cookie-authenticated requests
 * must echo it in `X-CSRF-Token` or come with a same-origin `Origin`.
 * Bearer-authenticated requests are exempt.
 *
 * The route guard (installed by sp_auth_register_routes) authenticates
 * SP_ROUTE_AUTH routes; handlers then call sp_auth_user(req).
 */
#ifndef SP_AUTH_H
#define SP_AUTH_H

#include <stdbool.h>

#include "web/sp_app.h"
#include "auth/sp_authcheck.h"
#include "core/sp_uuid.h"

#define SP_AUTH_COOKIE_SECURE "__Host-sp_session"
#define SP_AUTH_COOKIE_PLAIN "sp_session"
#define SP_AUTH_COOKIE_CSRF "sp_csrf"
#define SP_AUTH_CSRF_HEADER "X-CSRF-Token"

typedef struct sp_auth_s sp_auth_t;

typedef struct sp_auth_user {
    char id[SP_UUID_STRLEN];
    char email[SP_EMAIL_MAX + 1];
    char display_name[SP_DISPLAY_NAME_BYTES];
    char sid[SP_UUID_STRLEN]; /* the session this request runs under */
    bool bearer;              /* authenticated by Authorization header (not cookie) */
} sp_auth_user_t;

/**
 * Creates app->auth: resolves the signing key (TOKEN_SIGNING_SECRET, or the
 * dev/test key file in DATA_DIR), sets password-hash parameters (64 MiB/t=2;
 * OWASP minimum 19 MiB/t=2 when STREAMPAI_ENV=test) and computes the dummy
 * hash. Needs app->store. Blocking (startup only). 0 or SP_ECONFIG/SP_EIO.
 */
int sp_auth_init(sp_app_t *app);
/** Frees app->auth (deferred until in-flight operations finish). NULL-safe. */
void sp_auth_free(sp_app_t *app);
/** Adds the auth routes to app->router and installs the route guard. */
void sp_auth_register_routes(sp_app_t *app);

/** The authenticated user of a request that passed the guard of an SP_ROUTE_AUTH route. */
const sp_auth_user_t *sp_auth_user(sp_http_req_t *req);

/**
 * WebSocket upgrade authentication: the session cookie, `?token=JWT` or an
 * Authorization Bearer header; the session row and user are checked like the
 * route guard does (no CSRF: it is a GET; the WS layer checks Origin). Never
 * responds. Returns SP_EAUTH synchronously (cb not called) when there is no
 * credential or the JWT is invalid; otherwise 0 and cb later on the loop with
 * status 0 and the user (valid during the callback; copy it), 401 (revoked or
 * expired session, deleted user) or 503 (store down). Adapter for the ws hub:
 *
 *   static void ws_done(sp_http_req_t *r, int st, const sp_auth_user_t *u, void *a)
 *   { sp_ws_auth_done(a, st, u ? u->id : NULL, 0); }
 *   static void ws_hook(sp_http_req_t *r, sp_ws_auth_t *a, void *app)
 *   { if (sp_auth_ws_authenticate(app, r, ws_done, a) != 0) sp_ws_auth_done(a, 401, NULL, 0); }
 *   sp_ws_hub_set_auth(app->ws, ws_hook, app);
 */
typedef void (*sp_auth_ws_cb)(sp_http_req_t *req, int status, const sp_auth_user_t *user,
                              void *ud);
int sp_auth_ws_authenticate(sp_app_t *app, sp_http_req_t *req, sp_auth_ws_cb cb, void *ud);

/**
 * Installs sp_auth_ws_hook as app->ws's auth hook (call after the hub exists,
 * i.e. after sp_socket_init). Returns 0, or -1 when there is no hub/auth (or
 * the hub is missing). A composed hook (widget tokens) can call
 * sp_auth_ws_hook itself for dashboard sockets.
 */
struct sp_ws_auth_s;
int sp_auth_attach_ws(sp_app_t *app);
void sp_auth_ws_hook(sp_http_req_t *req, struct sp_ws_auth_s *a, void *ud);

/** Name of the session cookie in use ("__Host-sp_session" or "sp_session"). */
const char *sp_auth_cookie_name(const sp_auth_t *a);

#endif
