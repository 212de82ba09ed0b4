/*
 * sp_http: HTTP/1.1 server on libuv with http-parser.
 *
 * One conn_t per TCP connection. Bytes read go to conn->in and are fed to http_parser; when a
 * message is complete the parser is paused and the request is dispatched (guard, then handler).
 * The next pipelined request is parsed only after the response was written, so answers stay in
 * order and a client cannot queue unbounded work. Reading stops while a handler runs.
 *
 * Limits (each with its answer): request line + headers > max_header_bytes or more than
 * MAX_HEADERS headers -> 431; body > route limit -> 413; duplicate Content-Length, or
 * Content-Length with Transfer-Encoding, or a Transfer-Encoding other than chunked -> 400 (no
 * smuggling); headers not complete within header_timeout -> close; idle keep-alive > idle_timeout
 * -> close; more than max_connections (upgraded ones included; fitted to RLIMIT_NOFILE:
 * sp_http_budget.c) -> 503 and close. After any framing error the connection is closed.
 *
 *   read -> in buf -> http_parser -> req (url, headers, body) -> route match
 *        -> guard -> handler -> sp_http_respond -> uv_write -> next request
 */
#include "net/sp_http.h"

#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "net/sp_http_int.h"
#include "net/sp_metrics.h"
#include "core/sp_time.h"

static http_parser_settings parser_settings;
static void conn_close(conn_t *c);
static void conn_linger(conn_t *c);
static void conn_process(conn_t *c);
static void start_read(conn_t *c);
static void send_simple(conn_t *c, int status, const char *code, const char *msg);

/* ---- helpers ------------------------------------------------------------------------- */

static const char *sp_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static const char *error_code_for(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "invalid";
    case 429: return "rate_limited";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 503: return "unavailable";
    default: return "error";
    }
}

/* ---- responses ----------------------------------------------------------------------- */

void sp_http_res_header(sp_http_req_t *req, const char *name, const char *value)
{
    /* Header injection guard: no CR/LF in names or values. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return;
    sp_buf_appendf(&req->res_headers, "%s: %s\r\n", name, value);
}

typedef struct {
    uv_write_t w;
    conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static void on_write(uv_write_t *w, int status)
{
    write_req_t *wr = sp_container_of(w, write_req_t, w);
    conn_t *c = wr->conn;
    sp_free(wr);
    if (c == NULL)
        return;
    c->pending_writes--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after_write && c->pending_writes == 0) {
        conn_linger(c);
        return;
    }
    if (c->write_blocked && c->tcp &&
        uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) < WRITE_QUEUE_CAP / 2) {
        c->write_blocked = false;
        conn_process(c);
    }
}

static void conn_write(conn_t *c, const char *head, size_t hl, const void *body, size_t bl)
{
    if (c->mem_out && !c->closing) {
        sp_buf_append(c->mem_out, head, hl);
        if (bl)
            sp_buf_append(c->mem_out, body, bl);
        return;
    }
    if (c->closing || c->tcp == NULL)
        return;
    write_req_t *wr = sp_malloc(sizeof(*wr) + hl + bl);
    wr->conn = c;
    wr->len = hl + bl;
    memcpy(wr->data, head, hl);
    if (bl)
        memcpy(wr->data + hl, body, bl);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)(hl + bl));
    c->pending_writes++;
    int rc = uv_write(&wr->w, (uv_stream_t *)c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->pending_writes--;
        sp_free(wr);
        conn_close(c);
    }
}

static void arm_timer(conn_t *c, uint64_t ms);
static void on_timer(uv_timer_t *t);

static void finish_request(conn_t *c, sp_http_req_t *req, int status, size_t bytes)
{
    uint64_t us = sp_mono_us() - req->start_us;
    const char *pattern = sp_http_req_route_pattern(req);
    sp_metrics_http_observe(pattern, status, us);
    bool log_it =
        !(req->match.route && (sp_route_opts(req->match.route)->flags & SP_ROUTE_NO_ACCESSLOG));
    if (log_it && sp_log_enabled(SP_LOG_INFO))
        sp_log_write(SP_LOG_INFO, "http", req->user[0] ? req->user : NULL, "request",
                     "method=%s path=\"%s\" status=%d bytes=%zu us=%llu ip=%s",
                     sp_http_req_method(req), sp_http_req_path(req), status, bytes,
                     (unsigned long long)us, c ? c->ip : "-");
}

void sp_http_respond(sp_http_req_t *req, int status, const char *content_type, const void *body,
                     size_t len)
{
    conn_t *c = req->conn;
    if (req->responded)
        return;
    req->responded = true;
    if (c == NULL) { /* client went away while the handler ran */
        finish_request(NULL, req, status, 0);
        sp_http_req_free_(req);
        return;
    }
    sp_http_server_t *s = c->srv;
    bool keep = req->keep_alive && !s->stopping && req->early_status == 0 && status != 400 &&
                status != 413 && status != 431 && status != 408;
    bool no_body = req->method == HTTP_HEAD || status == 204 || status == 304 ||
                   (status >= 100 && status < 200);
    char head[1024];
    int hl =
        snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n", status, sp_http_status_text(status));
    if (status != 204 && status != 304)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "Content-Length: %zu\r\n", len);
    if (content_type && status != 204 && status != 304)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "Content-Type: %s\r\n", content_type);
    hl += snprintf(head + hl, sizeof(head) - (size_t)hl,
                   "X-Content-Type-Options: nosniff\r\nConnection: %s\r\n",
                   keep ? "keep-alive" : "close");
    sp_buf_t all;
    sp_buf_init(&all, 0);
    sp_buf_append(&all, head, (size_t)hl);
    sp_buf_append(&all, req->res_headers.p ? req->res_headers.p : "", req->res_headers.len);
    sp_buf_append(&all, "\r\n", 2);
    conn_write(c, all.p, all.len, no_body ? NULL : body, no_body ? 0 : len);
    sp_buf_cleanup(&all);
    finish_request(c, req, status, no_body ? 0 : len);
    if (c->dispatched) {
        c->dispatched = false;
        s->n_busy--;
    }
    c->req = NULL;
    sp_http_req_free_(req);
    if (!keep) {
        c->close_after_write = true;
        if (c->pending_writes == 0)
            conn_linger(c);
        return;
    }
    if (c->tcp && uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) >= WRITE_QUEUE_CAP)
        c->write_blocked = true;
    http_parser_pause(&c->parser, 0);
    arm_timer(c, s->opts.idle_timeout_ms);
    conn_process(c);
}

void sp_http_respond_json(sp_http_req_t *req, int status, json_t *json)
{
    char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (s == NULL) {
        sp_http_respond(req, 500, "application/json",
                        "{\"error\":{\"code\":\"internal\",\"message\":\"encoding failed\"}}", 58);
        return;
    }
    sp_http_respond(req, status, "application/json", s, strlen(s));
    free(s);
}

void sp_http_respond_error(sp_http_req_t *req, int status, const char *code, const char *message)
{
    if (status == 404 && sp_http_html_404(req))
        return;
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code ? code : error_code_for(status),
                          "message", message ? message : sp_http_status_text(status));
    if (status == 503 && !sp_http_req_header(req, "retry-after"))
        sp_http_res_header(req, "Retry-After", "1");
    sp_http_respond_json(req, status, j);
}

/* An error found while parsing, before any handler: answer and close. */
static void send_simple(conn_t *c, int status, const char *code, const char *msg)
{
    sp_http_req_t *req = c->req;
    if (req == NULL) {
        req = sp_http_req_new_(c);
        c->req = req;
    }
    req->early_status = status;
    req->keep_alive = false;
    /* The parser is in an error state now; the connection closes after this answer. */
    c->dispatched = true;
    c->srv->n_busy++;
    if (status == 405)
        sp_http_res_header(req, "Allow", req->match.allow);
    sp_http_respond_error(req, status, code, msg);
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void dispatch(conn_t *c)
{
    sp_http_req_t *req = c->req;
    sp_http_server_t *s = c->srv;
    c->dispatched = true;
    s->n_busy++;
    if (req->match_status == 404) {
        sp_http_respond_error(req, 404, "not_found", "no such route");
        return;
    }
    if (req->match_status == 405) {
        sp_http_res_header(req, "Allow", req->match.allow);
        sp_http_respond_error(req, 405, "method_not_allowed", "method not allowed on this route");
        return;
    }
    void *gud = NULL;
    sp_route_guard_cb guard = sp_router_guard(s->router, &gud);
    if (guard && !guard(req, sp_route_opts(req->match.route)->flags, gud))
        return;
    sp_route_handler(req->match.route)(req, sp_route_ud(req->match.route));
}

/* ---- parser callbacks ---------------------------------------------------------------- */

static int over_header_limit(conn_t *c, size_t add)
{
    c->header_bytes += add;
    return c->header_bytes > c->srv->opts.max_header_bytes;
}

static int on_message_begin(http_parser *p)
{
    conn_t *c = p->data;
    if (c->req == NULL)
        c->req = sp_http_req_new_(c);
    c->in_headers = true;
    c->header_bytes = 0;
    arm_timer(c, c->srv->opts.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (over_header_limit(c, len) || sp_buf_append(&c->req->raw, at, len) < 0) {
        c->req->early_status = 431;
        return -1;
    }
    c->req->url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    sp_http_req_t *r = c->req;
    if (over_header_limit(c, len + 4)) {
        r->early_status = 431;
        return -1;
    }
    if (!r->header_field_open) {
        if (r->n_headers >= MAX_HEADERS) {
            r->early_status = 431;
            return -1;
        }
        /* Terminate the previous string (url or value) and start a name. */
        sp_buf_append(&r->raw, "", 1);
        r->hdrs[r->n_headers].name = (uint32_t)r->raw.len;
        r->hdrs[r->n_headers].value = 0;
        r->n_headers++;
        r->header_field_open = true;
    }
    if (sp_buf_append(&r->raw, at, len) < 0) {
        r->early_status = 431;
        return -1;
    }
    return 0;
}

static void header_done(sp_http_req_t *r)
{
    /* Called when a header value is complete: smuggling checks. */
    if (r->n_headers == 0)
        return;
    const char *name = r->raw.p + r->hdrs[r->n_headers - 1].name;
    const char *value = r->raw.p + r->hdrs[r->n_headers - 1].value;
    if (strcasecmp(name, "content-length") == 0)
        r->n_content_length++;
    else if (strcasecmp(name, "transfer-encoding") == 0) {
        if (r->has_te)
            r->te_chunked_only = false;
        else
            r->te_chunked_only = strcasecmp(value, "chunked") == 0;
        r->has_te = true;
    }
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    sp_http_req_t *r = c->req;
    if (over_header_limit(c, len)) {
        r->early_status = 431;
        return -1;
    }
    if (r->header_field_open) {
        sp_buf_append(&r->raw, "", 1);
        r->hdrs[r->n_headers - 1].value = (uint32_t)r->raw.len;
        r->header_field_open = false;
    }
    if (sp_buf_append(&r->raw, at, len) < 0) {
        r->early_status = 431;
        return -1;
    }
    return 0;
}

/* Fixes up value offsets (the raw buffer holds them) and runs per-header checks. */
static void finalize_headers(sp_http_req_t *r)
{
    sp_buf_append(&r->raw, "", 1);
    /* A header with a name but no value callback gets the empty string at the end. */
    for (size_t i = 0; i < r->n_headers; i++) {
        if (r->hdrs[i].value == 0)
            r->hdrs[i].value = (uint32_t)(r->raw.len - 1);
    }
    size_t n = r->n_headers;
    for (size_t i = 0; i < n; i++) {
        r->n_headers = i + 1;
        header_done(r);
    }
    r->n_headers = n;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    sp_http_req_t *r = c->req;
    sp_http_server_t *s = c->srv;
    c->in_headers = false;
    arm_timer(c, s->opts.idle_timeout_ms);
    finalize_headers(r);
    r->method = p->method;
    r->keep_alive = http_should_keep_alive(p) != 0;
    if (r->n_content_length > 1 || (r->n_content_length && r->has_te) ||
        (r->has_te && !r->te_chunked_only)) {
        r->early_status = 400;
        return -1;
    }
    /* URL: split path and query (the url is the first string in raw). */
    const char *url = r->raw.p;
    size_t ul = r->url_len;
    if (ul == 0 || url[0] != '/') {
        if (p->method == HTTP_CONNECT || ul == 0 || url[0] != '*') {
            r->early_status = 400;
            return -1;
        }
    }
    const char *qm = memchr(url, '?', ul);
    const char *hash = memchr(url, '#', ul);
    size_t pl = qm ? (size_t)(qm - url) : hash ? (size_t)(hash - url) : ul;
    r->path = sp_strndup(url, pl);
    if (qm) {
        size_t qe = hash && hash > qm ? (size_t)(hash - qm - 1) : ul - pl - 1;
        r->query = sp_strndup(qm + 1, qe);
    }
    r->match_status = sp_router_match(s->router, http_method_str((enum http_method)p->method),
                                      r->path, pl, &r->match);
    size_t limit = s->opts.default_body_limit;
    if (r->match_status == 0) {
        const sp_route_opts_t *o = sp_route_opts(r->match.route);
        if (o->body_limit)
            limit = o->body_limit;
        for (size_t i = 0; i < r->match.n_params; i++) {
            char tmp[1024];
            const sp_str_t *v = &r->match.params[i].value;
            long dl = sp_pct_decode(v->p, v->len, tmp, sizeof(tmp), SP_PCT_NO_NUL);
            if (dl < 0) {
                r->early_status = 400;
                return -1;
            }
            r->param_values[i] = sp_strndup(tmp, (size_t)dl);
        }
    }
    r->body.max = limit;
    if (r->n_content_length && p->content_length > limit) {
        r->early_status = 413;
        return -1;
    }
    const char *expect = sp_http_req_header(r, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && p->content_length > 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write(c, cont, sizeof(cont) - 1, NULL, 0);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (sp_buf_append(&c->req->body, at, len) < 0) {
        c->req->early_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    http_parser_pause(p, 1);
    (void)c;
    return 0;
}

/* ---- connection ---------------------------------------------------------------------- */

static void arm_timer(conn_t *c, uint64_t ms)
{
    if (!c->closing && ms && !c->mem_out)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = sp_container_of(t, conn_t, timer);
    if (c->dispatched)
        return; /* a handler is running: its own timeouts apply */
    sp_debug("http", "connection timed out", "ip=%s phase=%s", c->ip,
             c->in_headers || c->req ? "headers" : "idle");
    conn_close(c);
}

/*
 * A conn is freed only after BOTH its timer and its TCP handle are closed:
 * libuv runs close callbacks in LIFO order, and the TCP handle's cancelled
 * write callbacks (which touch the conn) run when that handle is destroyed.
 */
static void conn_handle_closed(conn_t *c)
{
    sp_http_server_t *s = c->srv;
    if (--c->n_handles > 0)
        return;
    sp_free(c);
    s->open_handles--;
    if (s->freed && s->open_handles == 0)
        sp_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_handle_closed(sp_container_of((uv_timer_t *)h, conn_t, timer));
}

static void on_conn_tcp_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    sp_free(h);
    conn_handle_closed(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
    sp_http_server_t *s = h->data;
    sp_free(h);
    s->open_handles--;
    if (s->freed && s->open_handles == 0)
        sp_free(s);
}

static void conn_unlink(conn_t *c)
{
    sp_http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    sp_metrics_gauge_add("http_open_connections", -1);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->shutdown_req.data = NULL;
    sp_http_server_t *s = c->srv;
    conn_unlink(c);
    if (c->req) {
        if (c->dispatched) {
            /* The handler still owns the req: detach it; it is freed when it responds. */
            c->req->conn = NULL;
            s->n_busy--;
        } else {
            sp_http_req_free_(c->req);
        }
        c->req = NULL;
    }
    sp_buf_cleanup(&c->in);
    if (c->mem_out) {
        c->mem_out = NULL; /* freed by sp_http_feed once it returns */
        return;
    }
    if (c->tcp) {
        c->tcp->data = c;
        uv_close((uv_handle_t *)c->tcp, on_conn_tcp_closed);
        c->tcp = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/*
 * Lingering close (as nginx does): after an answer that ends the connection,
 * shut down our write side and drain what the client still sends for a short
 * while, so unread request bytes do not turn our answer into a TCP reset.
 */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (c == NULL || c->closing)
        return;
    if (status < 0 || c->tcp == NULL) {
        conn_close(c);
        return;
    }
    if (!c->reading)
        start_read(c);
    uv_timer_start(&c->timer, on_timer, 1000, 0);
}

static void conn_linger(conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->mem_out || c->tcp == NULL) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    sp_buf_reset(&c->in);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)c->tcp, on_shutdown) < 0)
        conn_close(c);
}

static const char *parse_error_code(conn_t *c, int *status)
{
    sp_http_req_t *r = c->req;
    if (r && r->early_status) {
        *status = r->early_status;
        return *status == 431   ? "headers_too_large"
               : *status == 413 ? "payload_too_large"
                                : "bad_request";
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_HEADER_OVERFLOW) {
        *status = 431;
        return "headers_too_large";
    }
    if (e == HPE_INVALID_METHOD) {
        *status = 501;
        return "not_implemented";
    }
    *status = 400;
    return "bad_request";
}

static void conn_process(conn_t *c)
{
    if (c->processing || c->lingering)
        return;
    c->processing = true;
    while (!c->closing && !c->dispatched && !c->write_blocked && (c->tcp || c->mem_out)) {
        if (c->req && HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
            /* A complete message is waiting for dispatch. */
            dispatch(c);
            continue;
        }
        if (c->in.len == 0)
            break;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in.p, c->in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            int status;
            const char *code = parse_error_code(c, &status);
            sp_info("http", "bad request", "ip=%s status=%d parser=%s", c->ip, status,
                    http_errno_name(e));
            sp_buf_reset(&c->in);
            c->processing = false;
            send_simple(c, status, code,
                        status == 431 ? "request line and headers too large"
                        : status == 413 ? "request body too large"
                                        : http_errno_description(e));
            return;
        }
        sp_buf_consume(&c->in, n);
        if (e != HPE_PAUSED)
            break;
    }
    c->processing = false;
    if (c->closing || c->tcp == NULL)
        return;
    /* Read only when we can make progress with more bytes. */
    bool want = !c->dispatched && !c->write_blocked && c->in.len < READ_CHUNK;
    if (want && !c->reading) {
        start_read(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)c->tcp);
        c->reading = false;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)suggested;
    if (c->lingering) {
        static char sink[16384]; /* loop thread only; contents discarded */
        buf->base = sink;
        buf->len = sizeof(sink);
        return;
    }
    if (sp_buf_reserve(&c->in, READ_CHUNK) < 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = c->in.p + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = stream->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->lingering)
        return; /* discarded: the answer is out, only waiting for the peer's EOF */
    c->in.len += (size_t)nread;
    c->in.p[c->in.len] = '\0';
    conn_process(c);
}

static void start_read(conn_t *c)
{
    if (uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void on_connection(uv_stream_t *server, int status)
{
    sp_http_server_t *s = server->data;
    if (status < 0) {
        sp_http_budget_accept_failed_(s, status);
        return;
    }
    uv_tcp_t *tcp = sp_malloc(sizeof(*tcp));
    uv_tcp_init(s->loop, tcp);
    tcp->data = s;
    s->open_handles++;
    if (uv_accept(server, (uv_stream_t *)tcp) < 0) {
        uv_close((uv_handle_t *)tcp, on_tcp_closed);
        return;
    }
    if (s->stopping) {
        uv_close((uv_handle_t *)tcp, on_tcp_closed);
        return;
    }
    conn_t *c = sp_calloc(1, sizeof(*c));
    c->srv = s;
    c->tcp = tcp;
    tcp->data = c;
    uv_tcp_nodelay(tcp, 1);
    uv_timer_init(s->loop, &c->timer);
    c->n_handles = 2; /* the conn now stands for the tcp's server handle count */
    sp_buf_init(&c->in, READ_CHUNK * 2);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    sp_metrics_gauge_add("http_open_connections", 1);
    int admit = sp_http_budget_admit_(s, c->ip);
    if (admit == SP_HTTP_DROP) { /* far past the budget: keep the fd reserve, no answer */
        conn_close(c);
        return;
    }
    if (admit == SP_HTTP_REFUSE) {
        c->req = sp_http_req_new_(c);
        c->req->keep_alive = false;
        c->dispatched = true;
        s->n_busy++;
        sp_http_respond_error(c->req, 503, "too_many_connections",
                              "server connection limit reached");
        return;
    }
    arm_timer(c, s->opts.header_timeout_ms);
    start_read(c);
}

/* ---- server -------------------------------------------------------------------------- */

sp_http_server_t *sp_http_server_new(uv_loop_t *loop, const sp_http_opts_t *opts,
                                     sp_router_t *router)
{
    static bool settings_ready;
    if (!settings_ready) {
        memset(&parser_settings, 0, sizeof(parser_settings));
        parser_settings.on_message_begin = on_message_begin;
        parser_settings.on_url = on_url;
        parser_settings.on_header_field = on_header_field;
        parser_settings.on_header_value = on_header_value;
        parser_settings.on_headers_complete = on_headers_complete;
        parser_settings.on_body = on_body;
        parser_settings.on_message_complete = on_message_complete;
        settings_ready = true;
    }
    sp_http_server_t *s = sp_calloc(1, sizeof(*s));
    s->loop = loop;
    s->opts = *opts;
    if (!s->opts.max_connections)
        s->opts.max_connections = 10000;
    s->max_conns = s->opts.max_connections;
    s->fd_margin = s->max_conns; /* until listen fits the budget to RLIMIT_NOFILE */
    if (!s->opts.max_header_bytes)
        s->opts.max_header_bytes = 16384;
    if (!s->opts.default_body_limit)
        s->opts.default_body_limit = 1u << 20;
    if (!s->opts.header_timeout_ms)
        s->opts.header_timeout_ms = 10000;
    if (!s->opts.idle_timeout_ms)
        s->opts.idle_timeout_ms = 60000;
    s->router = router;
    return s;
}

int sp_http_server_listen(sp_http_server_t *s)
{
    char host[256];
    const char *colon = strrchr(s->opts.listen, ':');
    if (colon == NULL || (size_t)(colon - s->opts.listen) >= sizeof(host))
        return SP_EINVAL;
    size_t hl = (size_t)(colon - s->opts.listen);
    memcpy(host, s->opts.listen, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    int port = (int)strtol(colon + 1, NULL, 10);
    struct sockaddr_storage addr;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc < 0)
        return rc;
    sp_http_budget_fit_(s);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->open_handles++;
    s->listening = true;
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc < 0) {
        sp_error("http", "listen failed", "addr=%s err=%s", s->opts.listen, uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &bl);
    s->listen_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    snprintf(s->listen_host, sizeof(s->listen_host), "%s", host);
    sp_info("http", "listening", "addr=%s:%d server=%s", host, s->listen_port,
            s->opts.server_name ? s->opts.server_name : "streampai");
    return 0;
}

int sp_http_server_port(const sp_http_server_t *s)
{
    return s->listen_port;
}

static void on_listener_closed(uv_handle_t *h)
{
    sp_http_server_t *s = h->data;
    s->open_handles--;
    if (s->freed && s->open_handles == 0)
        sp_free(s);
}

void sp_http_server_stop_accepting(sp_http_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    if (s->listening) {
        s->listening = false;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    }
    conn_t *c = s->conns;
    while (c) {
        conn_t *next = c->next;
        if (!c->dispatched && c->pending_writes == 0 && (c->req == NULL || c->in.len == 0))
            conn_close(c);
        else
            c->close_after_write = c->pending_writes > 0 && !c->dispatched;
        c = next;
    }
}

size_t sp_http_server_busy(const sp_http_server_t *s)
{
    size_t n = 0;
    for (conn_t *c = s->conns; c; c = c->next)
        if (c->dispatched || c->pending_writes)
            n++;
    return n;
}

void sp_http_server_free(sp_http_server_t *s)
{
    if (s == NULL)
        return;
    if (!s->stopping)
        sp_http_server_stop_accepting(s);
    sp_http_budget_done_(s);
    while (s->conns)
        conn_close(s->conns);
    s->freed = true;
    if (s->open_handles == 0)
        sp_free(s);
}

uv_tcp_t *sp_http_req_upgrade(sp_http_req_t *req, sp_buf_t *leftover)
{
    conn_t *c = req->conn;
    /* Refused while an earlier pipelined answer is still being written: those
     * write callbacks belong to the HTTP connection. The caller answers 500. */
    if (c == NULL || c->tcp == NULL || c->pending_writes > 0)
        return NULL;
    sp_http_server_t *s = c->srv;
    uv_tcp_t *tcp = c->tcp;
    if (c->reading)
        uv_read_stop((uv_stream_t *)tcp);
    c->reading = false;
    if (leftover && c->in.len)
        sp_buf_append(leftover, c->in.p, c->in.len);
    finish_request(c, req, 101, 0);
    s->n_upgraded++;   /* still in the budget until sp_http_server_upgraded_closed */
    s->open_handles++; /* and the server's memory stays until then */
    c->tcp = NULL;
    tcp->data = NULL;
    c->n_handles--; /* the TCP handle now belongs to the caller */
    if (c->dispatched) {
        c->dispatched = false;
        s->n_busy--;
    }
    req->responded = true;
    c->req = NULL;
    sp_http_req_free_(req);
    conn_close(c);
    return tcp;
}

/* ---- memory mode ---------------------------------------------------------------------- */

int sp_http_feed(sp_router_t *router, const sp_http_opts_t *opts, const void *in, size_t len,
                 sp_buf_t *out)
{
    sp_http_server_t *s = sp_http_server_new(NULL, opts, router);
    conn_t *c = sp_calloc(1, sizeof(*c));
    c->srv = s;
    c->mem_out = out;
    snprintf(c->ip, sizeof(c->ip), "memory");
    sp_buf_init(&c->in, 0);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    s->conns = c;
    s->n_conns = 1;
    sp_metrics_gauge_add("http_open_connections", 1);
    if (sp_buf_append(&c->in, in, len) == 0)
        conn_process(c);
    bool closed = c->closing;
    int rc = 0;
    if (!closed) {
        if (c->dispatched)
            rc = SP_EAGAIN; /* a handler did not answer synchronously */
        c->mem_out = out;
        conn_close(c);
    }
    /* conn_close in memory mode leaves c allocated and the req detached. */
    sp_free(c);
    sp_free(s);
    return rc;
}
