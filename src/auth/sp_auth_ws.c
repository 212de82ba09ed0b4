/*
 * sp_auth_ws: plugs sp_auth_ws_authenticate into the WebSocket hub's auth hook
 * (src/net/sp_ws.h).
 */
#include "auth/sp_auth.h"

#include <string.h>

#include "net/sp_ws.h"

static void ws_done(sp_http_req_t *req, int status, const sp_auth_user_t *u, void *ud)
{
    (void)req;
    sp_ws_auth_done(ud, status, u ? u->id : NULL, 0);
}

void sp_auth_ws_hook(sp_http_req_t *req, struct sp_ws_auth_s *a, void *ud)
{
    sp_app_t *app = ud;
    /* TEST_MODE keeps the ws suite's ?test_user= identities (check-config refuses TEST_MODE in
     * prod); a request without any credential is still refused. */
    char user[64];
    if (app->cfg->test_mode && sp_http_req_query_param(req, "test_user", user, sizeof(user)) &&
        user[0]) {
        sp_ws_auth_done(a, 0, user, 0);
        return;
    }
    if (sp_auth_ws_authenticate(app, req, ws_done, a) != 0)
        sp_ws_auth_done(a, 401, NULL, 0);
}

int sp_auth_attach_ws(sp_app_t *app)
{
    if (!app->ws || !app->auth)
        return -1;
    sp_ws_hub_set_auth(app->ws, sp_auth_ws_hook, app);
    return 0;
}
