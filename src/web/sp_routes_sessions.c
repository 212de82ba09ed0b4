/* sp_routes_sessions: list and revoke the user's sessions. See sp_routes_sessions.h. */
#include "web/sp_routes_sessions.h"

#include <stdio.h>
#include <string.h>

#include "auth/sp_auth.h"
#include "core/sp_alloc.h"
#include "core/sp_time.h"

/* A request waiting for the auth library, with the session it runs under. */
typedef struct {
    sp_auth_t *a;
    sp_http_req_t *req;
    char sid[SP_UUID_STRLEN];
    bool bearer;
    bool ends_current; /* the answer clears this session's cookies */
} call_t;

static call_t *call_new(sp_auth_t *a, sp_http_req_t *req, const sp_auth_user_t *u)
{
    call_t *c = sp_calloc(1, sizeof(*c));
    c->a = a;
    c->req = req;
    snprintf(c->sid, sizeof(c->sid), "%s", u->sid);
    c->bearer = u->bearer;
    return c;
}

static void respond_failed(sp_http_req_t *req, sp_auth_status_t st)
{
    if (st == SP_AUTH_NOT_FOUND) {
        sp_http_respond_error(req, 404, "not_found", "No such active session");
        return;
    }
    sp_http_res_header(req, "Retry-After", "1");
    sp_http_respond_error(req, 503, "unavailable", "The database is unavailable, try again");
}

/* The session cookie and the CSRF cookie, expired (as POST /api/auth/logout does). */
static void clear_cookies(sp_auth_t *a, sp_http_req_t *req)
{
    char v[160];
    const char *sec = sp_auth_cookie_secure(a) ? "; Secure" : "";
    snprintf(v, sizeof(v), "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s",
             sp_auth_cookie_name(a), sec);
    sp_http_res_header(req, "Set-Cookie", v);
    snprintf(v, sizeof(v), "%s=; Path=/; Max-Age=0; SameSite=Lax%s", SP_AUTH_COOKIE_CSRF, sec);
    sp_http_res_header(req, "Set-Cookie", v);
}

static json_t *time_or_null(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    if (!json_is_integer(v))
        return json_null();
    char ts[40];
    sp_time_rfc3339(json_integer_value(v), ts, sizeof(ts));
    return json_string(ts);
}

static json_t *str_or_empty(json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return json_string(s ? s : "");
}

/* ---- GET /api/sessions ------------------------------------------------------------------- */

static void listed(sp_auth_status_t st, json_t *rows, void *ud)
{
    call_t *c = ud;
    if (st != SP_AUTH_OK) {
        respond_failed(c->req, st);
        sp_free(c);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "id"));
        const char *kind = json_string_value(json_object_get(row, "kind"));
        if (!id)
            continue;
        json_t *s = json_object();
        json_object_set_new(s, "id", json_string(id));
        json_object_set_new(s, "kind", json_string(kind && !strcmp(kind, "bearer") ? "bearer"
                                                                                  : "cookie"));
        json_object_set_new(s, "user_agent", str_or_empty(row, "user_agent"));
        json_object_set_new(s, "ip", str_or_empty(row, "ip"));
        json_object_set_new(s, "created_at", time_or_null(row, "created_at"));
        json_object_set_new(s, "last_used_at", time_or_null(row, "last_used_at"));
        json_object_set_new(s, "expires_at", time_or_null(row, "expires_at"));
        json_object_set_new(s, "current", json_boolean(strcmp(id, c->sid) == 0));
        json_array_append_new(out, s);
    }
    sp_http_res_header(c->req, "Cache-Control", "no-store");
    sp_http_respond_json(c->req, 200, json_pack("{s:o}", "sessions", out));
    sp_free(c);
}

static void h_list(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        sp_http_respond_error(req, 401, "unauthenticated", "Log in to continue");
        return;
    }
    sp_auth_sessions_list(a, u->id, listed, call_new(a, req, u));
}

/* ---- DELETE /api/sessions/{id}, DELETE /api/sessions ------------------------------------ */

static void revoked(sp_auth_status_t st, size_t n, void *ud)
{
    call_t *c = ud;
    if (st != SP_AUTH_OK) {
        respond_failed(c->req, st);
    } else {
        if (c->ends_current && !c->bearer)
            clear_cookies(c->a, c->req);
        sp_http_res_header(c->req, "Cache-Control", "no-store");
        if (sp_http_req_param(c->req, "id"))
            sp_http_respond(c->req, 204, NULL, NULL, 0);
        else
            sp_http_respond_json(c->req, 200, json_pack("{s:I}", "revoked", (json_int_t)n));
    }
    sp_free(c);
}

static void h_revoke_one(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    const char *id = sp_http_req_param(req, "id");
    if (!u) {
        sp_http_respond_error(req, 401, "unauthenticated", "Log in to continue");
        return;
    }
    if (!id || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "No such active session");
        return;
    }
    call_t *c = call_new(a, req, u);
    c->ends_current = strcmp(id, u->sid) == 0;
    sp_auth_sessions_revoke(a, u->id, id, revoked, c);
}

static void h_revoke_all(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        sp_http_respond_error(req, 401, "unauthenticated", "Log in to continue");
        return;
    }
    call_t *c = call_new(a, req, u);
    c->ends_current = true;
    sp_auth_sessions_revoke(a, u->id, NULL, revoked, c);
}

void sp_routes_sessions_register(sp_app_t *app)
{
    sp_route_opts_t auth = {.body_limit = 1024, .flags = SP_ROUTE_AUTH};
    sp_router_add(app->router, "GET", "/api/sessions", h_list, app->auth, &auth);
    sp_router_add(app->router, "DELETE", "/api/sessions", h_revoke_all, app->auth, &auth);
    sp_router_add(app->router, "DELETE", "/api/sessions/{id}", h_revoke_one, app->auth, &auth);
}
