/*
 * sp_routes_destinations: custom RTMP(S) destinations of the user
 * (livestream/sp_ls_destinations.h).
 *   GET    /api/destinations
 *   POST   /api/destinations            {platform:"custom", name, url, stream_key, enabled?}
 *   PATCH  /api/destinations/{id}       any of name, url, stream_key, enabled
 *   DELETE /api/destinations/{id}
 *   POST   /api/destinations/{id}/reveal -> {stream_key}
 */
#include "web/sp_web.h"

#include "core/sp_uuid.h"
#include "livestream/sp_ls_destinations.h"

static void on_ok_200(sp_ls_result_t *res, void *ud)
{
    sp_web_respond_result(ud, res, 200);
}

static void on_created(sp_ls_result_t *res, void *ud)
{
    sp_web_respond_result(ud, res, 201);
}

static void on_deleted(sp_ls_result_t *res, void *ud)
{
    sp_web_respond_result(ud, res, 204);
}

static void on_revealed(sp_ls_result_t *res, void *ud)
{
    if (res->err == 0) sp_http_res_header(ud, "Cache-Control", "no-store");
    sp_web_respond_result(ud, res, 200);
}

/* the {id} parameter, or NULL after answering 404 */
static const char *dest_id(sp_http_req_t *req)
{
    const char *id = sp_http_req_param(req, "id");
    if (id == NULL || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such destination");
        return NULL;
    }
    return id;
}

static void h_list(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    sp_ls_destinations_list(app->live, sp_web_user(req), on_ok_200, req);
}

static void h_create(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    sp_ls_destination_save(app->live, sp_web_user(req), NULL, body, on_created, req);
    json_decref(body);
}

static void h_patch(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *id = dest_id(req);
    if (id == NULL) return;
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    sp_ls_destination_save(app->live, sp_web_user(req), id, body, on_ok_200, req);
    json_decref(body);
}

static void h_delete(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *id = dest_id(req);
    if (id) sp_ls_destination_delete(app->live, sp_web_user(req), id, on_deleted, req);
}

static void h_reveal(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *id = dest_id(req);
    if (id) sp_ls_destination_reveal(app->live, sp_web_user(req), id, on_revealed, req);
}

void sp_routes_destinations_register(sp_app_t *app)
{
    sp_router_t *r = app->router;
    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_router_add(r, "GET", "/api/destinations", h_list, app, &auth);
    sp_router_add(r, "POST", "/api/destinations", h_create, app, &auth);
    sp_router_add(r, "PATCH", "/api/destinations/{id}", h_patch, app, &auth);
    sp_router_add(r, "DELETE", "/api/destinations/{id}", h_delete, app, &auth);
    sp_router_add(r, "POST", "/api/destinations/{id}/reveal", h_reveal, app, &auth);
}
