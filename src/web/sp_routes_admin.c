/*
 * sp_routes_admin: live state for operators (`streampai debug`, sp_debug_cli.c).
 *   GET /api/admin/debug?what=presence|managers|users|counts
 * Always Authorization: Bearer ADMIN_TOKEN (compared in constant time): the token is the
 * gate. "Loopback only" is kept as a second fence but proves nothing behind a reverse proxy
 * on the same host (every request then comes from 127.0.0.1), so an ADMIN_TOKEN shorter than
 * SP_ADMIN_TOKEN_MIN bytes disables the endpoint (404) like an unset one (docs/security.md).
 */
#include "web/sp_web.h"

#include <string.h>

#include <sodium.h>

#define SP_ADMIN_TOKEN_MIN 16

static bool loopback(const char *ip)
{
    return ip && (strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0 ||
                  strncmp(ip, "::ffff:127.", 11) == 0 || strncmp(ip, "127.", 4) == 0);
}

static void h_admin_debug(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    if (sp_livestream_stopping(app->live)) {
        sp_http_respond_error(req, 503, "shutting_down", "the server is shutting down");
        return;
    }
    const char *tok = app->cfg->admin_token;
    if (tok == NULL || strlen(tok) < SP_ADMIN_TOKEN_MIN) {
        sp_http_respond_error(req, 404, "admin_disabled",
                              "ADMIN_TOKEN is not set (or shorter than 16 bytes)");
        return;
    }
    if (!loopback(sp_http_req_remote_ip(req))) {
        sp_http_respond_error(req, 403, "forbidden", "admin endpoint is loopback only");
        return;
    }
    const char *auth = sp_http_req_header(req, "authorization");
    size_t tl = strlen(tok);
    bool ok = auth && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == tl &&
              sodium_memcmp(auth + 7, tok, tl) == 0;
    if (!ok) {
        sp_http_respond_error(req, 401, "unauthorized", "admin token required");
        return;
    }
    char what[32] = "counts";
    sp_http_req_query_param(req, "what", what, sizeof(what));
    json_t *data = sp_livestream_debug(app->live, what);
    if (data == NULL) {
        sp_http_respond_error(req, 422, "invalid", "what: presence|managers|users|counts");
        return;
    }
    sp_http_respond_json(req, 200, json_pack("{s:s, s:o}", "what", what, "data", data));
}

void sp_routes_admin_register(sp_app_t *app)
{
    sp_route_opts_t pub = { .body_limit = 0, .flags = SP_ROUTE_PUBLIC };
    sp_router_add(app->router, "GET", "/api/admin/debug", h_admin_debug, app, &pub);
}
