/*
 * sp_routes_preview: GET /api/stream/preview/{input_uid} — the owner's live
 * input as HTTP-FLV for the dashboard's preview player (docs/api.md).
 *
 * Only the session's owner of a connected input of the built-in relay gets it
 * (anyone else: 404). The control plane proxies: it opens a TCP connection to
 * the relay's API listener (the media client's base URL, http:// only), asks
 * for .../live_inputs/{uid}/preview.flv with the relay token, takes over the
 * browser's connection and copies the relay's answer to it byte for byte. The
 * token never reaches the browser. What is queued for the browser is capped
 * (PROXY_HIGH_WATER): over it the proxy stops reading the relay, and the relay
 * drops GOPs for this viewer (sp_relay_preview.c) — the outputs never wait.
 */
#include "web/sp_routes_preview.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "web/sp_web.h"

#define PROXY_BUF 65536
#define PROXY_HIGH_WATER (1024u * 1024)
#define PROXY_LOW_WATER (256u * 1024)
#define PROXY_MAX 64 /* previews at once for the whole server */

typedef struct proxy_s proxy_t;
struct proxy_s {
    sp_app_t *app;
    sp_http_req_t *req;        /* until the browser's connection is taken */
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    uv_tcp_t relay;            /* to the relay */
    uv_tcp_t *browser;         /* taken from the HTTP server */
    sp_http_server_t *srv;
    char host[256], port[8];
    char request[1024];
    size_t queued;             /* bytes written to the browser, not yet sent */
    bool relay_open, relay_reading, closing;
    int handles;               /* open handles; freed at 0 */
    proxy_t *next;
};

static proxy_t *proxies;
static size_t n_proxies;

static void unlink_proxy(proxy_t *p)
{
    for (proxy_t **pp = &proxies; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            n_proxies--;
            return;
        }
}

static void on_handle_closed(uv_handle_t *h)
{
    proxy_t *p = h->data;
    if (h == (uv_handle_t *)p->browser) {
        sp_http_server_upgraded_closed(p->srv);
        sp_free(p->browser);
        p->browser = NULL;
    }
    if (--p->handles == 0)
        sp_free(p);
}

static void proxy_close(proxy_t *p)
{
    if (p->closing)
        return;
    p->closing = true;
    unlink_proxy(p);
    if (p->relay_open && !uv_is_closing((uv_handle_t *)&p->relay))
        uv_close((uv_handle_t *)&p->relay, on_handle_closed);
    if (p->browser && !uv_is_closing((uv_handle_t *)p->browser))
        uv_close((uv_handle_t *)p->browser, on_handle_closed);
}

/* a pending request (before the take-over) failed: answer it, free p */
static void proxy_fail(proxy_t *p, int status, const char *code, const char *msg)
{
    if (p->req) {
        sp_http_respond_error(p->req, status, code, msg);
        p->req = NULL;
    }
    proxy_close(p);
    if (p->handles == 0)
        sp_free(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = sp_malloc(PROXY_BUF);
    buf->len = PROXY_BUF;
}

static void on_alloc_sink(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char sink[4096];
    *buf = uv_buf_init(sink, sizeof(sink));
}

typedef struct {
    uv_write_t w;
    proxy_t *p;
    char *data;
    size_t n;
} pwrite_t;

static void relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_browser_written(uv_write_t *w, int status)
{
    pwrite_t *pw = (pwrite_t *)w;
    proxy_t *p = pw->p;
    p->queued -= pw->n;
    sp_free(pw->data);
    sp_free(pw);
    if (status < 0) {
        proxy_close(p);
        return;
    }
    if (!p->closing && !p->relay_reading && p->queued < PROXY_LOW_WATER) {
        uv_read_start((uv_stream_t *)&p->relay, on_alloc, relay_read);
        p->relay_reading = true;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    proxy_t *p = req->data;
    sp_free(req);
    proxy_close(p);
}

static void relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    proxy_t *p = s->data;
    if (n <= 0 || p->closing) {
        sp_free(buf->base);
        if (n < 0 && !p->closing) {
            /* the relay ended the stream: let the browser get what is queued, then close */
            uv_read_stop(s);
            p->relay_reading = false;
            uv_shutdown_t *sr = sp_malloc(sizeof(*sr));
            sr->data = p;
            if (uv_shutdown(sr, (uv_stream_t *)p->browser, on_shutdown) != 0) {
                sp_free(sr);
                proxy_close(p);
            }
        }
        return;
    }
    pwrite_t *pw = sp_malloc(sizeof(*pw));
    pw->p = p;
    pw->data = buf->base;
    pw->n = (size_t)n;
    p->queued += (size_t)n;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    if (uv_write(&pw->w, (uv_stream_t *)p->browser, &b, 1, on_browser_written) != 0) {
        p->queued -= (size_t)n;
        sp_free(pw->data);
        sp_free(pw);
        proxy_close(p);
        return;
    }
    if (p->queued > PROXY_HIGH_WATER) { /* the browser is slow: the relay drops for it */
        uv_read_stop(s);
        p->relay_reading = false;
    }
}

static void browser_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        proxy_close(s->data); /* the viewer left */
}

static void on_request_written(uv_write_t *w, int status)
{
    proxy_t *p = w->data;
    sp_free(w);
    if (status < 0)
        proxy_close(p);
}

static void on_connected(uv_connect_t *c, int status)
{
    proxy_t *p = c->data;
    if (status < 0 || p->closing || sp_http_req_aborted(p->req)) {
        if (status < 0)
            sp_warn("web", "preview: relay unreachable", "err=%s", uv_err_name(status));
        proxy_fail(p, 502, "relay_unavailable", "the media relay cannot be reached");
        return;
    }
    p->srv = sp_http_req_server(p->req);
    sp_buf_t left;
    sp_buf_init(&left, 0);
    uv_tcp_t *tcp = sp_http_req_upgrade(p->req, &left);
    sp_buf_cleanup(&left);
    if (!tcp) {
        proxy_fail(p, 503, "unavailable", "try again");
        return;
    }
    p->req = NULL;
    p->browser = tcp;
    tcp->data = p;
    p->handles++;
    uv_write_t *w = sp_malloc(sizeof(*w));
    w->data = p;
    uv_buf_t b = uv_buf_init(p->request, (unsigned)strlen(p->request));
    if (uv_write(w, (uv_stream_t *)&p->relay, &b, 1, on_request_written) != 0) {
        sp_free(w);
        proxy_close(p);
        return;
    }
    uv_read_start((uv_stream_t *)&p->relay, on_alloc, relay_read);
    p->relay_reading = true;
    uv_read_start((uv_stream_t *)tcp, on_alloc_sink, browser_read);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    proxy_t *p = g->data;
    if (status < 0 || !res || p->closing) {
        uv_freeaddrinfo(res);
        proxy_fail(p, 502, "relay_unavailable", "the media relay cannot be resolved");
        return;
    }
    uv_tcp_init(p->app->loop, &p->relay);
    p->relay.data = p;
    p->relay_open = true;
    p->handles++;
    p->conn.data = p;
    int rc = uv_tcp_connect(&p->conn, &p->relay, res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    if (rc != 0)
        proxy_fail(p, 502, "relay_unavailable", "the media relay cannot be reached");
}

/* base "http://host:port/prefix" -> host, port, path prefix */
static bool split_base(const char *base, char *host, size_t hcap, char *port, size_t pcap,
                       const char **prefix)
{
    if (!base || strncmp(base, "http://", 7) != 0)
        return false;
    const char *h = base + 7;
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', hl);
    if (h[0] == '[') /* [v6]:port */
        colon = memchr(h, ']', hl) ? strchr(memchr(h, ']', hl), ':') : NULL;
    size_t name_len = colon ? (size_t)(colon - h) : hl;
    size_t port_len = colon ? hl - name_len - 1 : 2;
    if (name_len == 0 || name_len >= hcap || port_len == 0 || port_len >= pcap)
        return false;
    if (h[0] == '[') {
        memcpy(host, h + 1, name_len - 2);
        host[name_len - 2] = '\0';
    } else {
        memcpy(host, h, name_len);
        host[name_len] = '\0';
    }
    if (colon) {
        memcpy(port, colon + 1, port_len);
        port[port_len] = '\0';
    } else {
        snprintf(port, pcap, "80");
    }
    *prefix = slash ? slash : "";
    return true;
}

static bool uid_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

typedef struct {
    sp_http_req_t *req;
    sp_app_t *app;
    char uid[65];
} look_t;

static void on_status(sp_ls_result_t *res, void *ud)
{
    look_t *l = ud;
    sp_http_req_t *req = l->req;
    sp_app_t *app = l->app;
    json_t *in = res->err == 0 ? json_object_get(res->body, "input") : NULL;
    const char *uid = json_string_value(json_object_get(in, "input_uid"));
    const char *st = json_string_value(json_object_get(in, "status"));
    const char *backend = app->cfg->media_backend;
    bool mine = uid && strcmp(uid, l->uid) == 0;
    sp_free(l);
    if (!mine || !st || strcmp(st, "connected") != 0) { /* another user's input: the same */
        sp_http_respond_error(req, 404, "not_found", "no live input to preview");
        return;
    }
    if (!backend || strcmp(backend, "local") != 0) {
        sp_http_respond_error(req, 404, "no_preview",
                              "a preview is available with the built-in relay only");
        return;
    }
    const sp_config_t *cfg = app->cfg;
    proxy_t *p = sp_calloc(1, sizeof(*p));
    const char *prefix = NULL;
    if (n_proxies >= PROXY_MAX ||
        !split_base(cfg->cloudflare_api_base_url, p->host, sizeof(p->host), p->port,
                    sizeof(p->port), &prefix)) {
        sp_free(p);
        sp_http_respond_error(req, 503, "no_preview", "preview unavailable");
        return;
    }
    int len = snprintf(p->request, sizeof(p->request),
                       "GET %s/accounts/%s/stream/live_inputs/%s/preview.flv HTTP/1.1\r\n"
                       "Host: %s:%s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
                       prefix, cfg->cloudflare_account_id ? cfg->cloudflare_account_id : "local",
                       uid, p->host, p->port,
                       cfg->cloudflare_api_token ? cfg->cloudflare_api_token : "");
    if (len < 0 || (size_t)len >= sizeof(p->request)) {
        sp_free(p);
        sp_http_respond_error(req, 503, "no_preview", "preview unavailable");
        return;
    }
    p->app = app;
    p->req = req;
    p->next = proxies;
    proxies = p;
    n_proxies++;
    p->gai.data = p;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    if (uv_getaddrinfo(app->loop, &p->gai, on_resolved, p->host, p->port, &hints) != 0)
        proxy_fail(p, 502, "relay_unavailable", "the media relay cannot be resolved");
}

static void with_mgr(sp_ls_manager_t *m, sp_ls_result_t *res, void *ud)
{
    look_t *l = ud;
    if (m == NULL) {
        sp_web_respond_result(l->req, res, 200);
        sp_free(l);
        return;
    }
    sp_ls_manager_status(m, on_status, l);
}

static void h_preview(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *user = sp_web_user(req);
    const char *uid = sp_http_req_param(req, "input");
    if (user == NULL) {
        sp_http_respond_error(req, 401, "unauthorized", "login required");
        return;
    }
    if (!uid_ok(uid) || !app->live) {
        sp_http_respond_error(req, 404, "not_found", "no live input to preview");
        return;
    }
    look_t *l = sp_calloc(1, sizeof(*l));
    l->req = req;
    l->app = app;
    snprintf(l->uid, sizeof(l->uid), "%s", uid);
    sp_livestream_with_manager(app->live, user, with_mgr, l);
}

void sp_routes_preview_register(sp_app_t *app)
{
    sp_route_opts_t auth = { .body_limit = 1024, .flags = SP_ROUTE_AUTH };
    sp_router_add(app->router, "GET", "/api/stream/preview/{input}", h_preview, app, &auth);
}

void sp_routes_preview_shutdown(void)
{
    while (proxies) {
        proxy_t *p = proxies;
        if (p->req) { /* still resolving or connecting: its callback answers */
            unlink_proxy(p);
            p->closing = true;
            if (p->relay_open && !uv_is_closing((uv_handle_t *)&p->relay))
                uv_close((uv_handle_t *)&p->relay, on_handle_closed);
            continue;
        }
        proxy_close(p);
    }
}
