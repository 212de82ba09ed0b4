/* sp_socket_auth: the WebSocket hub's auth hook. See sp_socket_auth.h. */
#include "web/sp_socket_auth.h"

#include <string.h>

#include "auth/sp_auth.h"
#include "core/sp_err.h"
#include "net/sp_ws.h"
#include "web/sp_widgets.h"

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

/* An OBS widget socket: its token's user, flagged with its widget (the bus lets it join only
 * that widget's two topics; it is no dashboard presence). */
static void widget_authenticated(int err, const char *user_id, const char *type, void *ud)
{
    if (err) {
        sp_ws_auth_done(ud, err == SP_ENOTFOUND ? 401 : 503, NULL, 0);
        return;
    }
    unsigned flag = strcmp(type, "alertbox") == 0 ? SP_WS_WIDGET_ALERTBOX : SP_WS_WIDGET_CHAT;
    sp_ws_auth_done(ud, 0, user_id, flag);
}

/* ud: the app. */
static void hook(sp_http_req_t *req, sp_ws_auth_t *a, void *ud)
{
    sp_app_t *app = ud;
    char wtok[SP_WIDGET_TOKEN_HEX + 2];
    if (sp_http_req_query_param(req, "widget_token", wtok, sizeof(wtok))) {
        sp_widgets_token_lookup(app, wtok, widget_authenticated, a);
        return;
    }
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
