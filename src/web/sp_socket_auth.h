/*
 * sp_socket_auth: authentication of GET /socket. Installs the WebSocket hub's
 * auth hook (src/net/sp_ws.h), which runs sp_auth_ws_authenticate: the session
 * cookie, `?token=JWT` or `Authorization: Bearer`, else 401 before the upgrade.
 *
 * Test hook: in asan/fuzz builds (SP_TEST_HOOKS) with TEST_MODE on,
 * `?test_user=<id>` opens a socket as that user without a credential (the
 * ws/pubsub suites). It exists nowhere else and never in a release build.
 */
#ifndef SP_SOCKET_AUTH_H
#define SP_SOCKET_AUTH_H

#include "web/sp_app.h"

/**
 * Installs the hook on app->ws. Call after sp_socket_init. 0, or SP_EINVAL when
 * app->ws or app->auth is missing (the caller must not serve then: a hub
 * without its hook refuses every socket).
 */
int sp_socket_auth_attach(sp_app_t *app);

#endif
