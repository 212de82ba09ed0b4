/*
 * sp_routes_events: the user's stream events (livestream/sp_ls_history.h).
 *   GET /api/events?after_seq=&limit=&stream_id=
 *   GET /api/stream/events?limit=   the stream event log, newest first (sp_ls_settings.h)
 */
#include "web/sp_web.h"

#include <stdlib.h>

#include "livestream/sp_ls_history.h"
#include "livestream/sp_ls_settings.h"

static void on_result(sp_ls_result_t *res, void *ud)
{
    sp_web_respond_result(ud, res, 200);
}

static void h_events(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    char buf[64], sid[64];
    int64_t after = 0, limit = 100;
    if (sp_http_req_query_param(req, "after_seq", buf, sizeof(buf))) after = strtoll(buf, NULL, 10);
    if (sp_http_req_query_param(req, "limit", buf, sizeof(buf))) {
        limit = strtoll(buf, NULL, 10);
        if (limit < 1 || limit > 500) limit = 100;
    }
    bool by_stream = sp_http_req_query_param(req, "stream_id", sid, sizeof(sid)) && sid[0];
    sp_ls_history_events(app->live, sp_web_user(req), after, limit, by_stream ? sid : NULL,
                         on_result, req);
}

static void h_stream_events(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    char buf[32];
    int64_t limit = 50;
    if (sp_http_req_query_param(req, "limit", buf, sizeof(buf))) {
        char *end = NULL;
        limit = strtoll(buf, &end, 10);
        if (end == buf || *end != '\0' || limit < 1 || limit > SP_LS_EVENTS_KEEP) {
            sp_http_respond_json(req, 422,
                                 json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid",
                                           "message", "limit: 1-200", "field", "limit"));
            return;
        }
    }
    sp_ls_stream_events(app->live, sp_web_user(req), limit, on_result, req);
}

void sp_routes_events_register(sp_app_t *app)
{
    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_router_add(app->router, "GET", "/api/events", h_events, app, &auth);
    sp_router_add(app->router, "GET", "/api/stream/events", h_stream_events, app, &auth);
}
