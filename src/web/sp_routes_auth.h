/*
 * sp_routes_auth: the account routes over the auth library (src/auth/sp_auth.h,
 * docs/auth.md) and the route guard.
 *
 *   POST /api/auth/register  {email,password,display_name?} -> 201 {user} + cookies
 *   POST /api/auth/login     {email,password}               -> 200 {user} + cookies
 *   POST /api/auth/logout    (auth)                         -> 204, cookies cleared
 *   POST /api/auth/token     (auth)                         -> 200 {token,expires_at,..}
 *   GET  /api/me             (auth)                         -> 200 {user}
 *
 * Cookies: the session cookie (sp_auth_cookie_name: `__Host-sp_session` with
 * Secure when PUBLIC_URL is https, else `sp_session`; HttpOnly; Path=/;
 * SameSite=Lax) and `sp_csrf` (readable by JS) holding the session's CSRF token.
 *
 * The guard authenticates SP_ROUTE_AUTH routes (bearer header or session
 * cookie; CSRF for cookie-authenticated state changes unless SP_ROUTE_NO_CSRF);
 * handlers then call sp_auth_user(req).
 *
 * Asan/fuzz builds (SP_TEST_HOOKS) with TEST_MODE also get GET /api/_test/ws_auth,
 * which runs the WebSocket credential check on a plain GET.
 */
#ifndef SP_ROUTES_AUTH_H
#define SP_ROUTES_AUTH_H

#include "web/sp_app.h"

/** Adds the routes to app->router (app->auth must exist) and installs the guard. */
void sp_routes_auth_register(sp_app_t *app);

#endif
