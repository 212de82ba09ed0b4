/*
 * sp_web_platforms: the platforms' wiring into the app, and the platform account routes.
 *
 *   app->penv          the loop, config and shared HTTP client handed to platform code
 *   app->accounts      the connected accounts (platforms/sp_accounts.h)
 *   app->oauth_states  pending OAuth flows (connect and sign-in), at most 10000
 *   /auth/...          the OAuth flows (sp_routes_oauth.c)
 *   GET    /api/platforms             -> {platforms: [...]} (sp_accounts_list; never a token)
 *   DELETE /api/platforms/{platform}  -> 204 (revoked at the provider when it can be), 404
 *
 * The shared HTTP client is app->curlm; when nothing made one yet, it is created here and
 * freed by sp_web_platforms_free.
 */
#include "web/sp_web.h"

#include <string.h>

#include "auth/sp_oauth.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "net/sp_curlm.h"
#include "platforms/sp_accounts.h"
#include "platforms/sp_psup.h"
#include "platforms/sp_platform.h"
#include "platforms/sp_platform_int.h"
#include "web/sp_routes_oauth.h"

#define OAUTH_STATES_CAP 10000

static sp_routes_oauth_t *g_oauth;
static bool g_own_curlm;

/* ---- /api/platforms ----------------------------------------------------------------------- */

static void listed(int err, json_t *list, void *ud)
{
    sp_http_req_t *req = ud;
    if (err || !json_is_array(list)) {
        sp_http_res_header(req, "Retry-After", "1");
        sp_http_respond_error(req, 503, "unavailable", "Cannot list the platforms, try again");
        return;
    }
    sp_http_res_header(req, "Cache-Control", "no-store");
    sp_http_respond_json(req, 200, json_pack("{s:O}", "platforms", list));
}

static void h_list(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    sp_accounts_list(app->accounts, sp_web_user(req), listed, req);
}

static void disconnected(int err, void *ud)
{
    sp_http_req_t *req = ud;
    if (err == 0)
        sp_http_respond(req, 204, NULL, NULL, 0);
    else if (err == SP_ENOTFOUND)
        sp_http_respond_error(req, 404, "not_connected", "This platform is not connected");
    else {
        sp_http_res_header(req, "Retry-After", "1");
        sp_http_respond_error(req, 503, "unavailable", "Cannot disconnect now, try again");
    }
}

static void h_disconnect(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *name = sp_http_req_param(req, "platform");
    if (!name || !sp_platform_find(name)) {
        sp_http_respond_error(req, 404, "not_found", "Unknown platform");
        return;
    }
    sp_ulog(SP_LOG_INFO, "platforms", sp_web_user(req), "disconnect", "platform=%s", name);
    sp_accounts_disconnect(app->accounts, sp_web_user(req), name, disconnected, req);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* An account's status changed (needs_reauth after a refused refresh, connected after a
 * reconnect, stopped after a disconnect): the supervisor stops or restarts that monitor and
 * publishes the status on platform:{platform}:{user_id}. */
static void on_account_status(void *ud, const char *user_id, const char *platform,
                              sp_platform_status_t st, const char *error)
{
    sp_app_t *app = ud;
    if (app->psup)
        sp_psup_account_status(app->psup, user_id, platform, st, error);
}

int sp_web_platforms_init(sp_app_t *app)
{
    if (!app->curlm) {
        app->curlm = sp_curlm_new(app->loop);
        if (!app->curlm) {
            sp_error("platforms", "cannot create the HTTP client", "");
            return SP_ENOMEM;
        }
        g_own_curlm = true;
    }
    sp_platform_env_t *env = sp_calloc(1, sizeof(*env));
    env->loop = app->loop;
    env->cfg = app->cfg;
    env->http = app->curlm;
    app->penv = env;
    app->accounts = sp_accounts_new(env, app->store, on_account_status, app);
    app->oauth_states = sp_oauth_states_new(OAUTH_STATES_CAP);
    if (!app->accounts || !app->oauth_states) {
        sp_error("platforms", "cannot create the platform accounts", "");
        sp_web_platforms_free(app);
        return SP_ENOMEM;
    }
    g_oauth = sp_routes_oauth_new(app);
    sp_route_opts_t auth = {.body_limit = 1024, .flags = SP_ROUTE_AUTH};
    sp_router_add(app->router, "GET", "/api/platforms", h_list, app, &auth);
    sp_router_add(app->router, "DELETE", "/api/platforms/{platform}", h_disconnect, app, &auth);
    return 0;
}

void sp_web_platforms_free(sp_app_t *app)
{
    /* docs/platforms.md "Shutdown" (the monitors are stopped before this): calls waiting on a
     * rate-limit timer end, then calls in a request (the HTTP client; flows waiting on them
     * answer), then the accounts, then the flows' own state */
    if (app->penv)
        sp_platform_cancel_all();
    if (g_own_curlm && app->curlm) {
        sp_curlm_free(app->curlm);
        app->curlm = NULL;
        g_own_curlm = false;
    }
    if (app->accounts) {
        sp_accounts_free(app->accounts);
        app->accounts = NULL;
    }
    sp_routes_oauth_free(g_oauth);
    g_oauth = NULL;
    sp_oauth_states_free(app->oauth_states);
    app->oauth_states = NULL;
    sp_free(app->penv);
    app->penv = NULL;
}
