/* sp_web: shared handler helpers and the livestream wiring. See sp_web.h. */
#include "web/sp_web.h"

#include <string.h>

#include "auth/sp_auth.h"
#include "core/sp_err.h"
#include "livestream/sp_ls_media_cf.h"
#include "web/sp_routes_preview.h"
#include "web/sp_socket.h"
#include "web/sp_widgets.h"

const char *sp_web_user(sp_http_req_t *req)
{
    const sp_auth_user_t *u = sp_auth_user(req);
    return u ? u->id : NULL;
}

static void respond_err(sp_http_req_t *req, int err)
{
    switch (err) {
    case SP_ELIMIT:
        sp_http_respond_error(req, 503, "too_many_users",
                              "the server is at MAX_CONCURRENT_USERS; try again later");
        return;
    case SP_ENOTFOUND: sp_http_respond_error(req, 404, "not_found", "not found"); return;
    case SP_ECLOSED:
        sp_http_respond_error(req, 503, "shutting_down", "the server is shutting down");
        return;
    default: sp_http_respond_error(req, 503, "unavailable", sp_strerror(err)); return;
    }
}

static int status_of(int err)
{
    switch (err) {
    case SP_ECONFLICT: return 409;
    case SP_EINVAL: return 422;
    case SP_ENOTFOUND: return 404;
    case SP_EUPSTREAM: return 502;
    case SP_ECRYPTO: return 500;
    default: return 503;
    }
}

void sp_web_respond_result(sp_http_req_t *req, sp_ls_result_t *res, int ok_status)
{
    json_t *body = res->body;
    res->body = NULL;
    if (res->err == 0) {
        if (body)
            sp_http_respond_json(req, ok_status, body);
        else
            sp_http_respond(req, ok_status, NULL, NULL, 0);
        return;
    }
    if (res->code == NULL) {
        json_decref(body);
        respond_err(req, res->err);
        return;
    }
    if (body == NULL) {
        sp_http_respond_error(req, status_of(res->err), res->code, res->message);
        return;
    }
    json_t *e = json_pack("{s:s, s:s}", "code", res->code, "message", res->message);
    json_object_update(e, body);
    json_decref(body);
    sp_http_respond_json(req, status_of(res->err), json_pack("{s:o}", "error", e));
}

/* ---- livestream wiring -------------------------------------------------------------- */

int sp_web_live_init(sp_app_t *app)
{
    sp_ls_media_t media = { 0 };
    if (app->cloudflare) {
        if (app->cfg->media_backend && strcmp(app->cfg->media_backend, "local") == 0)
            sp_ls_media_relay(app->cloudflare, &media);
        else
            sp_ls_media_cloudflare(app->cloudflare, &media);
    }
    sp_livestream_opts_t o = {
        .loop = app->loop,
        .cfg = app->cfg,
        .store = app->store,
        .bus = app->pubsub,
        .media = app->cloudflare ? &media : NULL,
    };
    int rc = sp_livestream_new(&o, &app->live);
    if (rc == 0) sp_routes_metrics_attach(app);
    return rc;
}

void sp_web_live_routes(sp_app_t *app)
{
    sp_routes_stream_register(app);
    sp_routes_events_register(app);
    sp_routes_webhooks_register(app);
    sp_routes_admin_register(app);
    sp_routes_destinations_register(app);
    sp_routes_preview_register(app);
}

void sp_web_live_attach_ws(sp_app_t *app)
{
    sp_socket_attach_presence(app);
}

void sp_web_live_shutdown(sp_app_t *app)
{
    sp_web_widgets_shutdown(app); /* the AlertQueue stops publishing before the bus goes */
    sp_routes_preview_shutdown();
    sp_livestream_shutdown(app->live);
}

void sp_web_live_free(sp_app_t *app)
{
    if (app->live == NULL) return;
    sp_livestream_shutdown(app->live);
    sp_routes_metrics_detach(app);
    sp_livestream_free(app->live);
    app->live = NULL;
}
