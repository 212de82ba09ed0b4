/*
 * sp_routes_oauth: the OAuth web flows (docs/auth.md "Connecting platforms" and "Sign in with
 * Twitch and Google"):
 *
 *   GET /auth/{platform}/connect    logged in: 302 to the provider (connect scopes, PKCE when
 *                                   the platform's descriptor says so)
 *   GET /auth/{provider}/login      not logged in: 302 to the provider (login scopes; Google:
 *                                   "openid email profile", a nonce, PKCE S256)
 *   GET /auth/{provider}/callback   ?code=&state= (or error=): takes the state, exchanges the
 *                                   code, then connects the account (purpose "connect") or
 *                                   signs in (purpose "login"), and redirects to the dashboard
 *
 * Every flow's state is bound to the browser cookie `sp_oauth` (random, HttpOnly, SameSite=Lax,
 * Path=/auth/, 10 min) and to the logged-in user: key "<cookie>:<user_id>" for connect,
 * "<cookie>:" for sign-in; the callback computes the key the same way, so a state from another
 * browser or another user is refused (single use, app->oauth_states).
 *
 * Every failure ends on /dashboard?error=<code>&platform=<p> (a logged-in browser) or
 * /login?error=<code>&provider=<p>, with one log line that never holds a token or a code, and
 * stores nothing. Google is a sign-in provider only: its descriptor lives here, from the
 * GOOGLE_* configuration.
 */
#ifndef SP_ROUTES_OAUTH_H
#define SP_ROUTES_OAUTH_H

#include "web/sp_app.h"

typedef struct sp_routes_oauth_s sp_routes_oauth_t;

/** Registers the routes on app->router. Needs app->auth, app->store, app->penv,
 *  app->accounts, app->oauth_states and app->curlm. */
sp_routes_oauth_t *sp_routes_oauth_new(sp_app_t *app);
/** Flows still waiting on something end with an error redirect (now or when their pending call
 *  returns); memory goes when the last one has. NULL-safe. */
void sp_routes_oauth_free(sp_routes_oauth_t *o);

#endif
