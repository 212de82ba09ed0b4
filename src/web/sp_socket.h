/*
 * sp_socket: wiring of the WebSocket hub (src/net/sp_ws) and the PubSub bus
 * (src/bus/sp_pubsub) into the app: creates both from the config,
 * attaches the pubsub socket protocol to the hub, registers GET /socket and
 * the /metrics series, and drives graceful shutdown (close 1001).
 *
 * main.c: sp_socket_init(app) after the core routes; sp_socket_shutdown(app)
 * when shutdown begins; wait for sp_socket_drained(app); sp_socket_free(app)
 * before stopping the loop.
 */
#ifndef SP_SOCKET_H
#define SP_SOCKET_H

#include <stdbool.h>

#include "web/sp_app.h"

/** Creates app->ws and app->pubsub, registers GET /socket. Returns 0. */
int sp_socket_init(sp_app_t *app);
/** Dashboard presence on app->ws: the first authenticated socket of a user starts the
 *  user's stream manager, the last one leaving schedules cleanup; over
 *  MAX_CONCURRENT_USERS the socket is closed with 1013. After sp_socket_init and the
 *  livestream subsystem. */
void sp_socket_attach_presence(sp_app_t *app);
/** Sends close 1001 "going away" to every socket. */
void sp_socket_shutdown(sp_app_t *app);
/** True once no socket is open. */
bool sp_socket_drained(const sp_app_t *app);
/** Frees the bus and the hub (remaining sockets are dropped). */
void sp_socket_free(sp_app_t *app);

/**
 * Close code of a socket whose credential was revoked (session revoked, log out everywhere,
 * widget token rotated) or expired (sp_ws_auth_set_expiry); the reason text says which.
 * Revoked sessions are wired: sp_socket_init installs an sp_auth_on_revoke hook that closes
 * the sockets tagged "sid:<session id>" (sp_socket_auth.c tags them). Any other credential:
 * tag the socket in the auth hook with sp_ws_auth_set_cred(a, "widget", token_id) and,
 * when it is revoked, call sp_ws_hub_close_cred(app->ws, "widget", token_id, NULL,
 * SP_SOCKET_CLOSE_REVOKED, "token rotated") (src/net/sp_ws.h).
 */
#define SP_SOCKET_CLOSE_REVOKED 4001

#endif
