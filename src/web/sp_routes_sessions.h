/*
 * sp_routes_sessions: the signed-in user's sessions (docs/auth.md "Sessions"):
 *
 *   GET    /api/sessions       (auth) -> 200 {sessions:[{id, kind, user_agent, ip, created_at,
 *                                         last_used_at, expires_at, current}]}
 *   DELETE /api/sessions/{id}  (auth) -> 204; 404 not_found (not an active session of yours)
 *   DELETE /api/sessions       (auth) -> 200 {revoked:n}: log out everywhere, this session too
 *
 * Revoking the session the request runs under clears its cookies. Every revoked session's
 * open sockets are closed at once (code 4001) by the hook sp_socket_init installs.
 */
#ifndef SP_ROUTES_SESSIONS_H
#define SP_ROUTES_SESSIONS_H

#include "web/sp_app.h"

/** Adds the routes to app->router (app->auth must exist). */
void sp_routes_sessions_register(sp_app_t *app);

#endif
