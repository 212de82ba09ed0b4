/*
 * sp_routes_stream: the user's stream and its history.
 *   GET /api/stream, POST /api/stream/start {destinations?: [id]}, POST /api/stream/stop,
 *   PUT /api/stream/metadata {title, description?}, GET /api/streams?limit=,
 *   GET /api/streams/{id}, GET/PUT /api/stream/settings {auto_start,
 *   auto_start_destinations, disconnect_protection}
 * The livestream domain does the work (livestream/sp_livestream.h, sp_ls_history.h); the
 * handlers check input and turn results into answers.
 */
#include "web/sp_web.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_uuid.h"
#include "livestream/sp_ls_history.h"
#include "livestream/sp_ls_settings.h"

/* ---- running a handler against the user's loaded manager ------------------------------ */

typedef void (*mgr_handler_fn)(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app);

typedef struct {
    sp_http_req_t *req;
    sp_app_t *app;
    mgr_handler_fn fn;
} mgr_call_t;

static void on_manager(sp_ls_manager_t *m, sp_ls_result_t *res, void *ud)
{
    mgr_call_t *c = ud;
    if (m == NULL)
        sp_web_respond_result(c->req, res, 200);
    else
        c->fn(m, c->req, c->app);
    sp_free(c);
}

static void with_manager(sp_app_t *app, sp_http_req_t *req, mgr_handler_fn fn)
{
    const char *user = sp_web_user(req);
    if (user == NULL) {
        sp_http_respond_error(req, 401, "unauthorized", "login required");
        return;
    }
    mgr_call_t *c = sp_calloc(1, sizeof(*c));
    c->req = req;
    c->app = app;
    c->fn = fn;
    sp_livestream_with_manager(app->live, user, on_manager, c);
}

static void on_result(sp_ls_result_t *res, void *ud)
{
    sp_web_respond_result(ud, res, 200);
}

/* ---- GET /api/stream --------------------------------------------------------------- */

static void stream_get(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app)
{
    (void)app;
    sp_ls_manager_status(m, on_result, req);
}

static void h_stream_get(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_get);
}

/* ---- POST /api/stream/start -------------------------------------------------------- */

static void stream_start(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app)
{
    json_t *body = NULL;
    const sp_buf_t *raw = sp_http_req_body(req);
    if (raw && raw->len > 0) {
        body = sp_http_req_json_or_400(req);
        if (body == NULL) return;
    }
    json_t *dests = body ? json_object_get(body, "destinations") : NULL;
    if (dests != NULL && !json_is_array(dests)) {
        json_decref(body);
        sp_http_respond_error(req, 422, "invalid", "destinations must be an array of ids");
        return;
    }
    json_t *ids = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(dests, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || strlen(s) > 64) {
            json_decref(ids);
            json_decref(body);
            sp_http_respond_error(req, 422, "invalid", "destinations must be an array of ids");
            return;
        }
        bool dup = false;
        size_t k;
        json_t *w;
        json_array_foreach(ids, k, w) dup |= strcmp(json_string_value(w), s) == 0;
        if (!dup) json_array_append_new(ids, json_string(s));
    }
    json_decref(body);
    if (app->cfg->max_platforms_per_user > 0 &&
        (int64_t)json_array_size(ids) > app->cfg->max_platforms_per_user) {
        json_decref(ids);
        sp_http_respond_error(req, 422, "too_many_destinations",
                              "more destinations than MAX_PLATFORMS_PER_USER");
        return;
    }
    sp_ls_manager_start(m, ids, on_result, req);
}

static void h_stream_start(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_start);
}

/* ---- POST /api/stream/stop ---------------------------------------------------------- */

static void stream_stop(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app)
{
    (void)app;
    sp_ls_manager_stop(m, on_result, req);
}

static void h_stream_stop(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_stop);
}

/* ---- PUT /api/stream/metadata ------------------------------------------------------- */

/* {platform: category id}: at most 8 platforms (names of 1-15 lowercase letters), ids
 * of 0-64 characters of [A-Za-z0-9_-] (the platform's own checks come on top). */
static bool categories_ok(json_t *c)
{
    if (!json_is_object(c) || json_object_size(c) > 8) return false;
    const char *k;
    json_t *v;
    json_object_foreach(c, k, v) {
        size_t kl = strlen(k);
        if (kl == 0 || kl > 15 || !json_is_string(v) || json_string_length(v) > 64) return false;
        for (size_t i = 0; i < kl; i++)
            if (k[i] < 'a' || k[i] > 'z') return false;
        const char *s = json_string_value(v);
        for (size_t i = 0; s[i]; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_') return false;
    }
    return true;
}

static void stream_metadata(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app)
{
    (void)app;
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    json_t *t = json_object_get(body, "title");
    json_t *d = json_object_get(body, "description");
    json_t *c = json_object_get(body, "categories");
    if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 140 ||
        (d != NULL && !json_is_null(d) && (!json_is_string(d) || json_string_length(d) > 5000))) {
        json_decref(body);
        sp_http_respond_error(req, 422, "invalid",
                              "title: 1-140 characters; description: at most 5000");
        return;
    }
    if (c != NULL && !json_is_null(c) && !categories_ok(c)) {
        json_decref(body);
        sp_http_respond_error(req, 422, "invalid",
                              "categories: {platform: category id}, ids of at most 64 letters, "
                              "digits, '-' or '_' (\"\" unsets)");
        return;
    }
    json_t *res = sp_ls_manager_set_metadata(m, json_string_value(t),
                                             json_is_string(d) ? json_string_value(d) : NULL,
                                             json_is_object(c) ? c : NULL);
    json_decref(body);
    sp_http_respond_json(req, 200, res);
}

static void h_stream_metadata(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_metadata);
}

/* ---- GET/PUT /api/stream/settings ---------------------------------------------------- */

static void settings_get(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app)
{
    (void)app;
    sp_http_respond_json(req, 200, sp_ls_manager_settings(m));
}

static void h_settings_get(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, settings_get);
}

static void settings_invalid(sp_http_req_t *req, const char *field, const char *msg)
{
    sp_http_respond_json(req, 422,
                         json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid", "message",
                                   msg, "field", field));
}

/* The body's fields, each optional: booleans, and an array of distinct ids (strings of 1-64
   characters, at most SP_LS_AUTO_DESTS_MAX). Returns the bad field or NULL. */
static const char *settings_check(json_t *body, const char **msg)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "auto_start") == 0 || strcmp(k, "disconnect_protection") == 0) {
            if (!json_is_boolean(v)) {
                *msg = "must be true or false";
                return k;
            }
        } else if (strcmp(k, "auto_start_destinations") == 0) {
            *msg = "must be an array of distinct destination ids";
            if (!json_is_array(v)) return k;
            if (json_array_size(v) > SP_LS_AUTO_DESTS_MAX) {
                *msg = "too many destinations (at most 32)";
                return k;
            }
            size_t i, j;
            json_t *a, *b;
            json_array_foreach(v, i, a)
            {
                if (!json_is_string(a) || json_string_length(a) == 0 ||
                    json_string_length(a) > 64)
                    return k;
                json_array_foreach(v, j, b) if (j < i && json_equal(a, b)) return k;
            }
        } else {
            *msg = "unknown setting";
            return k;
        }
    }
    return NULL;
}

static void settings_put(sp_ls_manager_t *m, sp_http_req_t *req, sp_app_t *app)
{
    (void)app;
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    const char *msg = "invalid";
    const char *bad = json_is_object(body) ? settings_check(body, &msg) : "body";
    if (bad != NULL) {
        settings_invalid(req, bad, json_is_object(body) ? msg : "must be a JSON object");
        json_decref(body);
        return;
    }
    sp_ls_manager_settings_put(m, body, on_result, req);
    json_decref(body);
}

static void h_settings_put(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, settings_put);
}

/* ---- GET /api/streams, /api/streams/{id} --------------------------------------------- */

static void h_streams_list(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    char lim[16];
    int64_t limit = 50;
    if (sp_http_req_query_param(req, "limit", lim, sizeof(lim))) {
        limit = strtoll(lim, NULL, 10);
        if (limit < 1 || limit > 200) limit = 50;
    }
    sp_ls_history_streams(app->live, sp_web_user(req), limit, on_result, req);
}

static void h_streams_one(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *id = sp_http_req_param(req, "id");
    if (id == NULL || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such stream");
        return;
    }
    sp_ls_history_stream(app->live, sp_web_user(req), id, on_result, req);
}

void sp_routes_stream_register(sp_app_t *app)
{
    sp_router_t *r = app->router;
    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_router_add(r, "GET", "/api/stream", h_stream_get, app, &auth);
    sp_router_add(r, "POST", "/api/stream/start", h_stream_start, app, &auth);
    sp_router_add(r, "POST", "/api/stream/stop", h_stream_stop, app, &auth);
    sp_router_add(r, "PUT", "/api/stream/metadata", h_stream_metadata, app, &auth);
    sp_router_add(r, "GET", "/api/streams", h_streams_list, app, &auth);
    sp_router_add(r, "GET", "/api/stream/settings", h_settings_get, app, &auth);
    sp_router_add(r, "PUT", "/api/stream/settings", h_settings_put, app, &auth);
    sp_router_add(r, "GET", "/api/streams/{id}", h_streams_one, app, &auth);
}
