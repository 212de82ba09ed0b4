/* sp_http_req: the request object of the HTTP server: creation, release and accessors
 * (method, path, query, headers, cookies, route parameters, body, per-request data). */
#include "net/sp_http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "net/sp_http_int.h"

/* ---- request object ------------------------------------------------------------------ */

sp_http_req_t *sp_http_req_new_(conn_t *c)
{
    sp_http_req_t *r = sp_calloc(1, sizeof(*r));
    r->conn = c;
    r->srv = c->srv;
    sp_buf_init(&r->raw, c->srv->opts.max_header_bytes + 1024);
    sp_buf_init(&r->body, c->srv->opts.default_body_limit);
    sp_buf_init(&r->res_headers, 64 * 1024);
    r->start_us = sp_mono_us();
    return r;
}

void sp_http_req_free_(sp_http_req_t *r)
{
    if (r == NULL)
        return;
    if (r->data_free && r->data)
        r->data_free(r->data);
    sp_buf_cleanup(&r->raw);
    sp_buf_cleanup(&r->body);
    sp_buf_cleanup(&r->res_headers);
    sp_free(r->path);
    sp_free(r->query);
    for (size_t i = 0; i < SP_ROUTE_MAX_PARAMS; i++)
        sp_free(r->param_values[i]);
    sp_free(r);
}

const char *sp_http_req_method(const sp_http_req_t *req)
{
    return http_method_str((enum http_method)req->method);
}

const char *sp_http_req_path(const sp_http_req_t *req)
{
    return req->path ? req->path : "/";
}

static const char *sp_http_req_query(const sp_http_req_t *req)
{
    return req->query ? req->query : "";
}

bool sp_http_req_query_param(const sp_http_req_t *req, const char *name, char *out, size_t cap)
{
    const char *q = sp_http_req_query(req);
    size_t nl = strlen(name);
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t seg = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', seg);
        size_t kl = eq ? (size_t)(eq - q) : seg;
        char key[128];
        long dk = kl < sizeof(key) ? sp_pct_decode(q, kl, key, sizeof(key), SP_PCT_FORM) : -1;
        if (dk >= 0 && (size_t)dk == nl && memcmp(key, name, nl) == 0) {
            if (!eq) {
                if (cap)
                    out[0] = '\0';
                return cap > 0;
            }
            return sp_pct_decode(eq + 1, seg - kl - 1, out, cap, SP_PCT_FORM) >= 0;
        }
        q += seg;
        if (*q == '&')
            q++;
    }
    return false;
}

const char *sp_http_req_header(const sp_http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->raw.p + req->hdrs[i].name, name) == 0)
            return req->raw.p + req->hdrs[i].value;
    return NULL;
}

bool sp_http_req_cookie(const sp_http_req_t *req, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->raw.p + req->hdrs[i].name, "cookie") != 0)
            continue;
        const char *p = req->raw.p + req->hdrs[i].value;
        while (*p) {
            while (*p == ' ' || *p == ';')
                p++;
            const char *end = strchr(p, ';');
            size_t seg = end ? (size_t)(end - p) : strlen(p);
            if (seg > nl && p[nl] == '=' && strncmp(p, name, nl) == 0) {
                size_t vl = seg - nl - 1;
                if (vl + 1 > cap)
                    return false;
                memcpy(out, p + nl + 1, vl);
                out[vl] = '\0';
                return true;
            }
            p += seg;
        }
    }
    return false;
}

const char *sp_http_req_param(const sp_http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->match.n_params; i++) {
        const char *pn = req->match.params[i].name; /* "{id}" or "{*path}" */
        size_t pl = strlen(pn);
        size_t off = pn[1] == '*' ? 2 : 1;
        if (pl - off - 1 == strlen(name) && strncmp(pn + off, name, pl - off - 1) == 0)
            return req->param_values[i];
    }
    return NULL;
}

const sp_buf_t *sp_http_req_body(const sp_http_req_t *req)
{
    return &req->body;
}

json_t *sp_http_req_json_or_400(sp_http_req_t *req)
{
    const char *ct = sp_http_req_header(req, "content-type");
    if (req->body.len == 0) {
        sp_http_respond_error(req, 400, "invalid_json", "request body must be a JSON object");
        return NULL;
    }
    if (ct && strncasecmp(ct, "application/json", 16) != 0) {
        sp_http_respond_error(req, 415, "unsupported_media_type", "expected application/json");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->body.p, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        char msg[200];
        snprintf(msg, sizeof(msg), "request body is not a JSON object (%s)",
                 j ? "wrong type" : jerr.text);
        sp_http_respond_error(req, 400, "invalid_json", msg);
        return NULL;
    }
    return j;
}

const char *sp_http_req_remote_ip(const sp_http_req_t *req)
{
    return req->conn ? req->conn->ip : "";
}

const char *sp_http_req_route_pattern(const sp_http_req_t *req)
{
    return req->match.route ? sp_route_pattern(req->match.route) : "unmatched";
}

bool sp_http_req_aborted(const sp_http_req_t *req)
{
    return req->conn == NULL;
}

void sp_http_req_set_data(sp_http_req_t *req, void *data)
{
    req->data = data;
}

void sp_http_req_set_data_free(sp_http_req_t *req, void (*fn)(void *))
{
    req->data_free = fn;
}

void *sp_http_req_get_data(const sp_http_req_t *req)
{
    return req->data;
}

void sp_http_req_set_user(sp_http_req_t *req, const char *user_id)
{
    snprintf(req->user, sizeof(req->user), "%s", user_id ? user_id : "");
}

uv_loop_t *sp_http_req_loop(const sp_http_req_t *req)
{
    return req->srv->loop;
}

void sp_http_req_continue(sp_http_req_t *req)
{
    sp_route_handler(req->match.route)(req, sp_route_ud(req->match.route));
}

sp_http_server_t *sp_http_req_server(const sp_http_req_t *req)
{
    return req->srv;
}

/* A browser navigating to an unknown URL gets a page, not JSON (its Accept starts with
   text/html; fetch() and API clients send application/json or a star). */
static const char page_404[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Not found - Streampai</title><style>body{font:16px system-ui,sans-serif;"
    "background:#0f1115;color:#e6e6e6;display:grid;place-items:center;min-height:90vh;margin:0}"
    "main{max-width:32rem;padding:1.5rem}a{color:#8ab4ff}h1{font-size:1.6rem}</style></head>"
    "<body><main><h1>Page not found</h1><p>There is nothing at this address.</p>"
    "<p><a href=\"/dashboard\">Go to your dashboard</a> or <a href=\"/\">the home page</a>."
    "</p></main></body></html>\n";

static bool wants_html(const sp_http_req_t *req)
{
    const char *a = sp_http_req_header(req, "accept");
    return a && strncmp(a, "text/html", 9) == 0;
}

/* the 404 of sp_http_respond_error for a browser; false: answer JSON as usual */
bool sp_http_html_404(sp_http_req_t *req)
{
    if (!wants_html(req))
        return false;
    sp_http_respond(req, 404, "text/html; charset=utf-8", page_404, sizeof(page_404) - 1);
    return true;
}
