/* sp_socket_auth: the WebSocket hub's auth hook. See sp_socket_auth.h. */
#include "web/sp_socket_auth.h"

#include "auth/sp_auth.h"
#include "core/sp_err.h"
#include "net/sp_ws.h"

static void authenticated(sp_http_req_t *req, sp_auth_status_t st, const sp_auth_user_t *u,
                          void *ud)
{
    (void)req;
    int status = st == SP_AUTH_OK ? 0 : st == SP_AUTH_DENIED ? 401 : 503;
    if (u) { /* revoking this session closes the socket; so does its end */
        sp_ws_auth_set_cred(ud, "sid", u->sid);
        sp_ws_auth_set_expiry(ud, u->expires_ms);
    }
    sp_ws_auth_done(ud, status, u ? u->id : NULL, 0);
}

/* ud: the app. A composed hook (widget tokens) would call this one for dashboard sockets. */
static void hook(sp_http_req_t *req, sp_ws_auth_t *a, void *ud)
{
    sp_app_t *app = ud;
#ifdef SP_TEST_HOOKS
    /* TEST_MODE keeps the ws suites' ?test_user= identities; a request without any credential
     * is still refused. */
    char user[64];
    if (app->cfg->test_mode && sp_http_req_query_param(req, "test_user", user, sizeof(user)) &&
        user[0]) {
        sp_ws_auth_done(a, 0, user, 0);
        return;
    }
#endif
    if (sp_auth_ws_authenticate(app->auth, req, authenticated, a) != 0)
        sp_ws_auth_done(a, 401, NULL, 0);
}

int sp_socket_auth_attach(sp_app_t *app)
{
    if (!app || !app->ws || !app->auth)
        return SP_EINVAL;
    sp_ws_hub_set_auth(app->ws, hook, app);
    return 0;
}
