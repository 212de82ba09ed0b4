/*
 * sp_ws_client: outbound WebSocket client (ws:// and wss://). See sp_ws_client.h.
 *
 * Layers: uv_tcp_t -> transport (plain, or sp_tls over memory BIOs: tr_ops_t) ->
 * handshake (pure parser) -> wslay client context. Writes: plaintext goes through
 * the transport into wbuf (capped); one uv_write in flight takes wbuf's storage.
 * Memory: three handles (tcp, timer, ping) made in new() and closed in free(); the
 * struct goes when their close callbacks have run and no getaddrinfo is pending.
 * Owner callbacks come only from libuv callbacks, each followed by a `freed` check.
 */
#include "net/sp_ws_client.h"

#include <curl/curl.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "net/sp_tls.h"
#include "net/sp_ws_proto.h"

#define SP_WS_CLIENT_REQ_MAX 8192
#define SP_WS_CLIENT_WSLACK 65536 /* wbuf room above max_queue for pongs and the close */

/* ---- transport ------------------------------------------------------------------- */
/*
 * The byte pipe under the WebSocket layer. Plain TCP has no ops (bytes pass
 * through). TLS (sp_tls) decrypts on the way in and encrypts on the way out;
 * every function appends the wire bytes it produced to `wire`, which the
 * caller writes to the socket.
 */
typedef struct {
    /* A session for host (shared context, else one from ca_file); ClientHello into wire. */
    void *(*create)(const char *host, const char *ca_file, sp_tls_ctx_t *shared, sp_buf_t *wire,
                    int *err);
    /* Wire bytes in; plaintext appended to plain. 0, SP_ECLOSED (peer ended it), or < 0. */
    int (*feed)(void *t, const uint8_t *in, size_t n, sp_buf_t *plain, sp_buf_t *wire);
    /* Plaintext out; wire bytes appended to wire. */
    int (*write)(void *t, const uint8_t *p, size_t n, sp_buf_t *wire);
    bool (*ready)(const void *t); /* handshake done, peer verified */
    const char *(*error)(void *t);
    void (*destroy)(void *t);
} tr_ops_t;

/* Moves the records sp_tls produced into wire. */
static int tls_take(sp_tls_t *t, sp_buf_t *wire)
{
    char tmp[16384];
    size_t n;
    while ((n = sp_tls_out_take(t, tmp, sizeof(tmp))) > 0)
        if (sp_buf_append(wire, tmp, n) != 0)
            return SP_ETOOBIG;
    return 0;
}

static void tls_destroy(void *p)
{
    sp_tls_free(p);
}

static void *tls_create(const char *host, const char *ca_file, sp_tls_ctx_t *shared,
                        sp_buf_t *wire, int *err)
{
    sp_tls_ctx_t *own = NULL;
    sp_tls_t *t = NULL;
    if ((*err = shared ? 0 : sp_tls_ctx_create(ca_file, &own)) == 0)
        *err = sp_tls_create(shared ? shared : own, host, &t);
    sp_tls_ctx_free(own); /* the session keeps its own reference */
    if (*err == 0 && (*err = sp_tls_handshake(t)) == SP_EAGAIN && (*err = tls_take(t, wire)) == 0)
        return t; /* ClientHello is in wire */
    sp_tls_free(t);
    return NULL;
}

static int tls_feed(void *p, const uint8_t *in, size_t n, sp_buf_t *plain, sp_buf_t *wire)
{
    sp_tls_t *t = p;
    char tmp[16384];
    int rc = sp_tls_feed(t, in, n);
    if (rc == 0 && !sp_tls_established(t)) {
        rc = sp_tls_handshake(t);
        if (rc == SP_EAGAIN) /* more from the peer needed */
            return tls_take(t, wire);
    }
    while (rc == 0 && (rc = sp_tls_read(t, tmp, sizeof(tmp))) > 0)
        rc = sp_buf_append(plain, tmp, (size_t)rc);
    if (rc == SP_EAGAIN)
        rc = 0;
    int wrc = tls_take(t, wire); /* handshake records, key updates */
    return rc < 0 ? rc : wrc;
}

static int tls_write(void *p, const uint8_t *data, size_t n, sp_buf_t *wire)
{
    int rc = sp_tls_write(p, data, n);
    return rc < 0 ? rc : tls_take(p, wire);
}

static bool tls_ready(const void *p)
{
    return sp_tls_established(p);
}

static const char *tls_error(void *p)
{
    return sp_tls_error(p);
}

static const tr_ops_t tls_ops = {
    tls_create, tls_feed, tls_write, tls_ready, tls_error, tls_destroy,
};

/* ---- the client ------------------------------------------------------------------ */
/*
 * CLOSING: our close frame is out, waiting for the reply. CANCELED: closed
 * before open, on_error(SP_ECANCELED) comes from the timer. DONE: on_error or
 * on_close has fired.
 */
enum {
    ST_RESOLVING, ST_CONNECTING, ST_TLS, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_CANCELED, ST_DONE
};

struct sp_ws_client_s {
    uv_loop_t *loop;
    sp_ws_client_cbs_t cbs;
    void *ud;
    size_t max_message, max_queue, max_header;
    uint64_t connect_timeout, ping_interval, close_timeout;
    char *host, *host_header, *path, *ca_file; /* host: DNS and SNI, no [] ; path?query */
    sp_tls_ctx_t *tls_ctx; /* shared, not owned */
    char port[8];
    char **headers;
    size_t n_headers;
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect timeout, close timeout, deferred failure, flush timeout */
    uv_timer_t ping;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    int handles; /* handles whose close callback is still to come */
    bool gai_pending, freed;
    int state, status;
    int pending_err; /* failure to report from the timer (never from inside an API call) */
    char key[32];
    char accept[32];
    sp_buf_t hs; /* handshake answer bytes */
    wslay_event_context_ptr ws;
    const uint8_t *in; /* wslay's input window during feed */
    size_t in_len;
    uint64_t last_rx;
    uint64_t ping_at; /* when the oldest unanswered ping went out (0: none) */
    uint16_t peer_code;
    bool peer_closed;
    char peer_reason[124];
    const tr_ops_t *tr_ops; /* NULL for ws:// */
    void *tr;
    sp_buf_t plain; /* TLS plaintext of one read */
    sp_buf_t wbuf;  /* wire bytes not yet handed to uv_write */
    size_t inflight;
    bool writing;
    bool close_after_write;
    bool corked;  /* inside wslay_event_send: gather, write once after */
    bool in_recv; /* inside wslay_event_recv: sending waits until it returns */
};

/* One read buffer for every client of the thread's loop: on_read consumes what it is given
 * before it returns (the bytes go into wslay, the TLS engine or the handshake buffer), so no
 * client needs its own 16 KiB (that was half the memory of a platform monitor). */
#define RBUF_SIZE 16384
static _Thread_local char g_rbuf[RBUF_SIZE];

static void on_timer(uv_timer_t *t);

/* ---- pure: handshake answer ------------------------------------------------------- */
enum { HF_NONE, HF_UPGRADE, HF_CONNECTION, HF_ACCEPT, HF_EXT, HF_PROTO };

typedef struct {
    int field;
    bool done;
    bool upgrade_ok, conn_ok, ext, proto;
    int accepts; /* Sec-WebSocket-Accept headers seen */
    bool accept_ok;
    const char *accept;
} hs_parse_t;

static int hs_on_field(http_parser *hp, const char *at, size_t len)
{
    hs_parse_t *s = hp->data;
    sp_str_t f = { at, len };
    s->field = sp_str_ieq_cstr(f, "upgrade")                    ? HF_UPGRADE
               : sp_str_ieq_cstr(f, "connection")               ? HF_CONNECTION
               : sp_str_ieq_cstr(f, "sec-websocket-accept")     ? HF_ACCEPT
               : sp_str_ieq_cstr(f, "sec-websocket-extensions") ? HF_EXT
               : sp_str_ieq_cstr(f, "sec-websocket-protocol")   ? HF_PROTO
                                                                : HF_NONE;
    return 0;
}

static int hs_on_value(http_parser *hp, const char *at, size_t len)
{
    hs_parse_t *s = hp->data;
    char v[256];
    s->ext |= s->field == HF_EXT;     /* we offer no extension and no subprotocol, */
    s->proto |= s->field == HF_PROTO; /* so any answer naming one fails */
    if (s->field == HF_NONE || s->field == HF_EXT || s->field == HF_PROTO || len >= sizeof(v))
        return 0; /* longer than any valid value: never matches */
    memcpy(v, at, len);
    v[len] = '\0';
    if (s->field == HF_UPGRADE && sp_ws_header_has_token(v, "websocket"))
        s->upgrade_ok = true;
    else if (s->field == HF_CONNECTION && sp_ws_header_has_token(v, "upgrade"))
        s->conn_ok = true;
    else if (s->field == HF_ACCEPT) {
        s->accepts++;
        size_t b = 0, e = len; /* without optional whitespace */
        while (b < e && (v[b] == ' ' || v[b] == '\t'))
            b++;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        s->accept_ok = e - b == strlen(s->accept) && memcmp(v + b, s->accept, e - b) == 0;
    }
    return 0;
}

static int hs_on_headers_complete(http_parser *hp)
{
    hs_parse_t *s = hp->data;
    s->done = true;
    return 1; /* no body: anything after the header block is not HTTP */
}

static const http_parser_settings hs_settings = {
    .on_header_field = hs_on_field,
    .on_header_value = hs_on_value,
    .on_headers_complete = hs_on_headers_complete,
};

int sp_ws_client_parse_handshake(const uint8_t *p, size_t len, size_t max_header,
                                 const char *accept, sp_ws_client_hs_t *out)
{
    http_parser hp;
    hs_parse_t s = { .accept = accept ? accept : "" };
    out->status = 0;
    out->reason = NULL;
    size_t scan = len < max_header ? len : max_header;
    http_parser_init(&hp, HTTP_RESPONSE);
    hp.data = &s;
    size_t n = http_parser_execute(&hp, &hs_settings, (const char *)p, scan);
    bool bad = HTTP_PARSER_ERRNO(&hp) != HPE_OK;
    if (!s.done && !bad && len < max_header)
        return SP_EAGAIN;
    if (!s.done) {
        out->reason = bad ? "malformed" : "too_big";
        return bad ? SP_EPROTO : SP_ETOOBIG;
    }
    out->status = hp.status_code;
    if (hp.status_code != 101) {
        out->reason = "status";
        return SP_EUPSTREAM;
    }
    out->reason = hp.http_major != 1 || hp.http_minor < 1 ? "malformed"
                  : !s.upgrade_ok                         ? "upgrade"
                  : !s.conn_ok                            ? "connection"
                  : s.accepts != 1 || !s.accept_ok        ? "accept"
                  : s.ext                                 ? "extensions"
                  : s.proto                               ? "protocol"
                  /* http-parser stops at the end of the header block only for an upgrade */
                  : !hp.upgrade || n == 0 || n > scan ? "malformed"
                                                      : NULL;
    return out->reason ? SP_EPROTO : (int)n;
}

int sp_ws_client_build_request(sp_buf_t *out, const char *host_header, const char *path,
                               const char *key, const char *const *headers, size_t n_headers)
{
    size_t mark = out->len;
    int rc = sp_buf_appendf(out,
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                            "Sec-WebSocket-Version: 13\r\n",
                            path, host_header, key);
    for (size_t i = 0; rc == 0 && i < n_headers; i++)
        rc = sp_buf_appendf(out, "%s\r\n", headers[i]);
    if (rc == 0)
        rc = sp_buf_append_str(out, "\r\n");
    if (rc != 0) /* all or nothing */
        out->len = mark;
    if (out->p)
        out->p[out->len] = '\0';
    return rc;
}

/* ---- URL and options -------------------------------------------------------------- */
/* "Name: value", no CR/LF, not one of the handshake's own headers. */
static bool header_ok(const char *h)
{
    static const char *const own[] = { "host:", "upgrade:", "connection:", "sec-websocket-" };
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || strpbrk(h, "\r\n") || strcspn(h, " \t") < (size_t)(colon - h))
        return false;
    for (size_t i = 0; i < SP_ARRAY_LEN(own); i++)
        if (strncasecmp(h, own[i], strlen(own[i])) == 0)
            return false;
    return true;
}

static int parse_url(sp_ws_client_t *c, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *x = NULL;
    int rc = SP_EINVAL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
        goto out;
    if (strcmp(scheme, "wss") == 0)
        c->tr_ops = &tls_ops;
    else if (strcmp(scheme, "ws") != 0)
        goto out;
    /* RFC 6455 §3: no fragment; we send no credentials from the URL either */
    if (curl_url_get(u, CURLUPART_FRAGMENT, &x, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_USER, &x, 0) == CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
        snprintf(c->port, sizeof(c->port), "%s", port);
    else
        snprintf(c->port, sizeof(c->port), "%s", c->tr_ops ? "443" : "80");
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    size_t hl = strlen(host);
    bool v6 = hl >= 2 && host[0] == '[';
    c->host = v6 ? sp_strndup(host + 1, hl - 2) : sp_strdup(host);
    char *zone = v6 ? strchr(c->host, '%') : NULL; /* fe80::1%25eth0 */
    if (zone)
        *zone = '\0';
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_buf_appendf(&b, "%s%s%s", host, port ? ":" : "", port ? port : "");
    c->host_header = sp_buf_detach(&b, NULL);
    sp_buf_appendf(&b, "%s%s%s", path && path[0] ? path : "/", query ? "?" : "",
                   query ? query : "");
    c->path = sp_buf_detach(&b, NULL);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(x);
    curl_url_cleanup(u);
    return rc;
}

/* ---- lifetime --------------------------------------------------------------------- */
static void release(sp_ws_client_t *c)
{
    if (c->ws)
        wslay_event_context_free(c->ws);
    if (c->tr)
        c->tr_ops->destroy(c->tr);
    sp_buf_cleanup(&c->hs);
    sp_buf_cleanup(&c->plain);
    sp_buf_cleanup(&c->wbuf);
    for (size_t i = 0; i < c->n_headers; i++)
        sp_free(c->headers[i]);
    sp_free(c->headers);
    sp_free(c->host);
    sp_free(c->host_header);
    sp_free(c->path);
    sp_free(c->ca_file);
    sp_free(c);
}

static void maybe_release(sp_ws_client_t *c)
{
    if (c->freed && c->handles == 0 && !c->gai_pending)
        release(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    sp_ws_client_t *c = h->data;
    c->handles--;
    maybe_release(c);
}

static void close_tcp(sp_ws_client_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
}

/* Reports a failure later, from the timer (used where a callback would be re-entrant). */
static void defer_fail(sp_ws_client_t *c, int err)
{
    if (c->pending_err || c->state >= ST_CANCELED)
        return;
    c->pending_err = err;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* Before open: the attempt failed. */
static void fail_open(sp_ws_client_t *c, int err)
{
    c->state = ST_DONE;
    uv_timer_stop(&c->timer);
    close_tcp(c);
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai);
    sp_debug("ws_client", "connect failed", "host=%s err=%s", c->host, sp_err_name(err));
    if (c->cbs.on_error && !c->freed)
        c->cbs.on_error(c, err, c->ud);
}

/* After open: the connection is over. flush: let queued bytes (our close frame) go out first. */
static void finish(sp_ws_client_t *c, int code, const char *reason, bool flush)
{
    if (c->state == ST_DONE)
        return;
    c->state = ST_DONE;
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->ping);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (flush && (c->writing || c->wbuf.len)) {
        c->close_after_write = true;
        uv_timer_start(&c->timer, on_timer, c->close_timeout, 0);
    } else {
        close_tcp(c);
    }
    sp_debug("ws_client", "closed", "host=%s code=%d", c->host, code);
    if (c->cbs.on_close && !c->freed)
        c->cbs.on_close(c, code, reason ? reason : "", c->ud);
}

void sp_ws_client_free(sp_ws_client_t *c)
{
    if (!c || c->freed)
        return;
    c->freed = true;
    /* best effort, never blocking: what is queued (our close frame) goes to the kernel */
    if (c->wbuf.len && !c->writing && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_buf_t b = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    close_tcp(c);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->ping))
        uv_close((uv_handle_t *)&c->ping, on_handle_closed);
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai);
}

/* ---- writing ---------------------------------------------------------------------- */
static void kick_write(sp_ws_client_t *c);

static void on_write(uv_write_t *req, int status)
{
    sp_ws_client_t *c = req->handle->data;
    sp_free(req->data);
    sp_free(req);
    c->writing = false;
    c->inflight = 0;
    if (status < 0) {
        if (status != UV_ECANCELED && !c->freed)
            defer_fail(c, status);
        return;
    }
    if (c->close_after_write && !c->wbuf.len) {
        close_tcp(c);
        return;
    }
    kick_write(c);
}

static void kick_write(sp_ws_client_t *c)
{
    if (c->writing || !c->wbuf.len || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_write_t *w = sp_malloc(sizeof(*w));
    size_t len;
    w->data = sp_buf_detach(&c->wbuf, &len); /* the write owns the bytes */
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        sp_free(w->data);
        sp_free(w);
        defer_fail(c, rc);
        return;
    }
    c->writing = true;
    c->inflight = len;
}

/* Plaintext out through the transport. */
static int wire_send(sp_ws_client_t *c, const void *p, size_t n)
{
    int rc = c->tr ? c->tr_ops->write(c->tr, p, n, &c->wbuf) : sp_buf_append(&c->wbuf, p, n);
    if (rc == 0 && !c->corked)
        kick_write(c);
    return rc;
}

/* ---- wslay glue ------------------------------------------------------------------- */
static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud)
{
    sp_ws_client_t *c = ud;
    (void)flags;
    if (c->in_len == 0 || c->freed) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->in_len ? len : c->in_len;
    memcpy(buf, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *ud)
{
    sp_ws_client_t *c = ud;
    (void)flags;
    if (c->freed || wire_send(c, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx, (void)ud;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud)
{
    sp_ws_client_t *c = ud;
    if (c->freed)
        return;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        c->peer_closed = true;
        c->peer_code = arg->status_code ? arg->status_code : 1005;
        size_t rl = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
        if (rl >= sizeof(c->peer_reason))
            rl = sizeof(c->peer_reason) - 1;
        if (rl)
            memcpy(c->peer_reason, arg->msg + 2, rl);
        c->peer_reason[rl] = '\0';
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* ping (wslay queued the pong) and pong */
    if (arg->opcode == WSLAY_TEXT_FRAME && !sp_ws_utf8_valid(arg->msg, arg->msg_length)) {
        wslay_event_queue_close(ctx, SP_WS_CLOSE_BAD_DATA, NULL, 0);
        wslay_event_shutdown_read(ctx);
        return;
    }
    if (c->cbs.on_message && c->state == ST_OPEN)
        c->cbs.on_message(c, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length,
                          c->ud);
}

/* Sends what wslay has queued. Failures are reported from the timer. */
static void ws_flush(sp_ws_client_t *c)
{
    if (!c->ws || c->in_recv || !wslay_event_want_write(c->ws))
        return;
    c->corked = true; /* wslay sends header and payload separately: one write for both */
    int rc = wslay_event_send(c->ws);
    c->corked = false;
    if (rc != 0)
        defer_fail(c, c->wbuf.len >= c->wbuf.max ? SP_ETOOBIG : SP_EIO);
    kick_write(c);
}

/* After input: flush replies, then see whether the close handshake or a failure ended it. */
static void ws_after_input(sp_ws_client_t *c)
{
    ws_flush(c);
    if (c->freed || c->state >= ST_CANCELED || c->pending_err)
        return;
    if (c->peer_closed) {
        finish(c, c->peer_code, c->peer_reason, true);
    } else if (!wslay_event_get_read_enabled(c->ws)) {
        /*
         * we failed the connection (1002, 1007, 1009): our close frame goes out, then TCP.
         * On some protocol errors wslay sends a close without a code: that is a 1002.
         */
        int code = wslay_event_get_close_sent(c->ws) ? wslay_event_get_status_code_sent(c->ws)
                                                     : SP_WS_CLOSE_PROTOCOL;
        if (code == 1005 || code == SP_WS_CLOSE_ABNORMAL)
            code = SP_WS_CLOSE_PROTOCOL;
        finish(c, code, "", true);
    }
}

static void ws_feed(sp_ws_client_t *c, const uint8_t *p, size_t n)
{
    c->in = p;
    c->in_len = n;
    c->in_recv = true;
    while (c->in_len > 0 && !c->freed && (c->state == ST_OPEN || c->state == ST_CLOSING) &&
           wslay_event_want_read(c->ws)) {
        if (wslay_event_recv(c->ws) != 0)
            break;
    }
    c->in_recv = false;
    c->in = NULL;
    c->in_len = 0;
    if (!c->freed)
        ws_after_input(c);
}

/* ---- connection steps ------------------------------------------------------------- */
static void on_ping_timer(uv_timer_t *t)
{
    sp_ws_client_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->freed || c->state != ST_OPEN)
        return;
    /* dropped only after a ping of ours went unanswered for a whole interval */
    if (c->ping_at && c->last_rx < c->ping_at && now - c->ping_at >= c->ping_interval) {
        finish(c, SP_WS_CLOSE_ABNORMAL, "ping timeout", false);
        return;
    }
    struct wslay_event_msg m = { .opcode = WSLAY_PING, .msg = NULL, .msg_length = 0 };
    if (wslay_event_queue_msg(c->ws, &m) == 0)
        ws_flush(c);
    if (!c->ping_at || c->last_rx >= c->ping_at)
        c->ping_at = now;
}

static int open_ws(sp_ws_client_t *c)
{
    static const struct wslay_event_callbacks wcb = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .genmask_callback = ws_genmask_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    if (wslay_event_context_client_init(&c->ws, &wcb, c) != 0)
        return SP_ENOMEM;
    wslay_event_config_set_max_recv_msg_length(c->ws, c->max_message);
    return 0;
}

static void handshake_input(sp_ws_client_t *c, const uint8_t *p, size_t n)
{
    sp_ws_client_hs_t r;
    if (sp_buf_append(&c->hs, p, n) != 0) {
        fail_open(c, SP_ETOOBIG);
        return;
    }
    int rc = sp_ws_client_parse_handshake((const uint8_t *)c->hs.p, c->hs.len, c->max_header,
                                          c->accept, &r);
    c->status = r.status;
    if (rc == SP_EAGAIN)
        return;
    if (rc < 0) {
        sp_info("ws_client", "handshake refused", "host=%s status=%d reason=%s", c->host,
                r.status, r.reason ? r.reason : "");
        fail_open(c, rc);
        return;
    }
    size_t hl = (size_t)rc;
    if ((rc = open_ws(c)) != 0) {
        fail_open(c, rc);
        return;
    }
    c->state = ST_OPEN;
    uv_timer_stop(&c->timer);
    c->last_rx = uv_now(c->loop);
    if (c->ping_interval)
        uv_timer_start(&c->ping, on_ping_timer, c->ping_interval, c->ping_interval);
    if (c->cbs.on_open)
        c->cbs.on_open(c, c->ud);
    if (c->freed || (c->state != ST_OPEN && c->state != ST_CLOSING))
        return; /* (closed in on_open: the frames that came with the 101 are still read) */
    if (c->hs.len > hl)
        ws_feed(c, (const uint8_t *)c->hs.p + hl, c->hs.len - hl);
    sp_buf_cleanup(&c->hs);
}

static void send_upgrade(sp_ws_client_t *c)
{
    sp_buf_t req;
    sp_buf_init(&req, SP_WS_CLIENT_REQ_MAX);
    int rc = sp_ws_client_build_request(&req, c->host_header, c->path, c->key,
                                        (const char *const *)c->headers, c->n_headers);
    c->state = ST_HANDSHAKE;
    if (rc == 0)
        rc = wire_send(c, req.p, req.len);
    sp_buf_cleanup(&req);
    if (rc < 0)
        fail_open(c, rc);
}

static void plain_input(sp_ws_client_t *c, const uint8_t *p, size_t n)
{
    if (c->state == ST_HANDSHAKE)
        handshake_input(c, p, n);
    else if (c->state == ST_OPEN || c->state == ST_CLOSING)
        ws_feed(c, p, n);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(g_rbuf, sizeof(g_rbuf));
}

/* The transport ended (EOF, read error, TLS close_notify or failure). */
static void input_ended(sp_ws_client_t *c, int err)
{
    if (c->state == ST_TLS || (c->tr && err == SP_ECRYPTO)) {
        sp_info("ws_client", "tls failed", "host=%s reason=\"%s\"", c->host,
                c->tr ? c->tr_ops->error(c->tr) : "");
        err = SP_ECRYPTO;
    }
    if (c->state < ST_OPEN)
        fail_open(c, err);
    else if (c->peer_closed)
        finish(c, c->peer_code, c->peer_reason, false);
    else
        finish(c, SP_WS_CLOSE_ABNORMAL,
               err == SP_ECLOSED ? "connection closed" : err == SP_ECRYPTO ? "tls error"
                                                                         : "read error",
               false);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sp_ws_client_t *c = s->data;
    (void)buf;
    if (nread == 0 || c->freed || c->state >= ST_CANCELED)
        return;
    if (nread < 0) {
        input_ended(c, nread == UV_EOF ? SP_ECLOSED : (int)nread);
        return;
    }
    c->last_rx = uv_now(c->loop);
    if (!c->tr) {
        plain_input(c, (const uint8_t *)g_rbuf, (size_t)nread);
        return;
    }
    sp_buf_reset(&c->plain);
    int rc = c->tr_ops->feed(c->tr, (const uint8_t *)g_rbuf, (size_t)nread, &c->plain, &c->wbuf);
    kick_write(c);
    if (c->state == ST_TLS && rc == 0 && c->tr_ops->ready(c->tr))
        send_upgrade(c);
    if (c->plain.len && c->state != ST_DONE && !c->freed)
        plain_input(c, (const uint8_t *)c->plain.p, c->plain.len);
    if (rc < 0 && !c->freed && c->state < ST_CANCELED)
        input_ended(c, rc);
}

static void on_connect(uv_connect_t *req, int status)
{
    sp_ws_client_t *c = req->data;
    int rc = status;
    if (c->freed || c->state != ST_CONNECTING)
        return;
    if (rc < 0 || (rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0)
        goto fail;
    if (!c->tr_ops) {
        send_upgrade(c);
        return;
    }
    c->state = ST_TLS;
    if (!(c->tr = c->tr_ops->create(c->host, c->ca_file, c->tls_ctx, &c->wbuf, &rc)))
        goto fail;
    kick_write(c);
    return;
fail:
    fail_open(c, rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sp_ws_client_t *c = req->data;
    struct addrinfo *pick = NULL;
    int rc = status;
    c->gai_pending = false;
    if (c->freed || c->state != ST_RESOLVING) {
        uv_freeaddrinfo(res);
        maybe_release(c);
        return;
    }
    for (struct addrinfo *a = res; a && !pick; a = a->ai_next)
        if (a->ai_family == AF_INET)
            pick = a;
    if (!pick)
        pick = res;
    if (rc == 0 && !pick)
        rc = SP_ENOTFOUND;
    if (rc == 0) {
        c->state = ST_CONNECTING;
        c->conn.data = c;
        rc = uv_tcp_connect(&c->conn, &c->tcp, pick->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (rc < 0)
        fail_open(c, rc);
}

static void on_timer(uv_timer_t *t)
{
    sp_ws_client_t *c = t->data;
    if (c->freed)
        return;
    if (c->state == ST_DONE) { /* the final flush took too long */
        close_tcp(c);
        return;
    }
    if (c->state == ST_CANCELED) {
        c->state = ST_DONE;
        if (c->cbs.on_error)
            c->cbs.on_error(c, SP_ECANCELED, c->ud);
        return;
    }
    int err = c->pending_err ? c->pending_err : SP_ETIMEDOUT;
    if (c->state < ST_OPEN)
        fail_open(c, err);
    else
        finish(c, SP_WS_CLOSE_ABNORMAL, c->pending_err ? sp_strerror(err) : "close timeout",
               false);
}

/* ---- API -------------------------------------------------------------------------- */
static int make_key(sp_ws_client_t *c)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return SP_ECRYPTO;
    EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw)); /* 24 chars + NUL */
    return sp_ws_accept_key(c->key, c->accept);
}

int sp_ws_client_new(uv_loop_t *loop, const sp_ws_client_opts_t *o, sp_ws_client_t **out)
{
    sp_ws_client_t *c = NULL;
    int rc = SP_EINVAL;
    *out = NULL;
    if (!loop || !o || !o->url)
        return SP_EINVAL;
    for (size_t i = 0; i < o->n_headers; i++)
        if (!o->headers || !o->headers[i] || !header_ok(o->headers[i]))
            return SP_EINVAL;
    c = sp_calloc(1, sizeof(*c));
    c->loop = loop;
    c->cbs = o->cbs;
    c->ud = o->ud;
    c->max_message = o->max_message ? o->max_message : 1u << 20;
    c->max_queue = o->max_queue ? o->max_queue : 4u << 20;
    c->max_header = o->max_header_bytes ? o->max_header_bytes : 16384;
    c->connect_timeout = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
    c->ping_interval = o->ping_interval_ms;
    c->close_timeout = o->close_timeout_ms ? o->close_timeout_ms : 2000;
    c->ca_file = o->ca_file ? sp_strdup(o->ca_file) : NULL;
    c->tls_ctx = o->tls_ctx;
    sp_buf_init(&c->hs, c->max_header + RBUF_SIZE + 32768);
    sp_buf_init(&c->plain, 0); /* bounded by what one read decrypts to */
    sp_buf_init(&c->wbuf, c->max_queue + SP_WS_CLIENT_WSLACK);
    if ((rc = parse_url(c, o->url)) != 0)
        goto fail;
    if (strcmp(c->port, "0") == 0) {
        rc = SP_EINVAL;
        goto fail;
    }
    if ((rc = make_key(c)) != 0)
        goto fail;
    c->headers = sp_calloc(o->n_headers ? o->n_headers : 1, sizeof(char *));
    for (; c->n_headers < o->n_headers; c->n_headers++)
        c->headers[c->n_headers] = sp_strdup(o->headers[c->n_headers]);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->ping);
    c->tcp.data = c->timer.data = c->ping.data = c->gai.data = c;
    c->handles = 3;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    c->state = ST_RESOLVING;
    rc = uv_getaddrinfo(loop, &c->gai, on_resolved, c->host, c->port, &hints);
    if (rc < 0) {
        defer_fail(c, rc); /* handles exist now: fail through the loop, not synchronously */
    } else {
        c->gai_pending = true;
        uv_timer_start(&c->timer, on_timer, c->connect_timeout, 0);
    }
    *out = c;
    return 0;
fail:
    release(c);
    return rc;
}

/* Outbound bytes queued or being written. */
static size_t queued_bytes(const sp_ws_client_t *c)
{
    if (!c)
        return 0;
    return c->wbuf.len + c->inflight + (c->ws ? wslay_event_get_queued_msg_length(c->ws) : 0);
}

static int send_msg(sp_ws_client_t *c, uint8_t opcode, const void *p, size_t len)
{
    if (!c || c->freed)
        return SP_EINVAL;
    if (c->state < ST_OPEN)
        return SP_EAGAIN;
    if (c->state != ST_OPEN || c->pending_err)
        return SP_ECLOSED;
    if (len > c->max_queue || queued_bytes(c) + len > c->max_queue)
        return SP_ETOOBIG;
    if (opcode == WSLAY_TEXT_FRAME && !sp_ws_utf8_valid(p, len))
        return SP_EUTF8;
    struct wslay_event_msg m = { .opcode = opcode, .msg = p, .msg_length = len };
    if (wslay_event_queue_msg(c->ws, &m) != 0)
        return SP_ECLOSED;
    ws_flush(c);
    return 0;
}

int sp_ws_client_send_text(sp_ws_client_t *c, const char *text, size_t len)
{
    return send_msg(c, WSLAY_TEXT_FRAME, text, len);
}

int sp_ws_client_send_binary(sp_ws_client_t *c, const void *p, size_t len)
{
    return send_msg(c, WSLAY_BINARY_FRAME, p, len);
}

void sp_ws_client_close(sp_ws_client_t *c, uint16_t code, const char *reason)
{
    if (!c || c->freed)
        return;
    if (c->state < ST_OPEN) {
        c->state = ST_CANCELED;
        close_tcp(c);
        if (c->gai_pending)
            uv_cancel((uv_req_t *)&c->gai);
        uv_timer_start(&c->timer, on_timer, 0, 0);
        return;
    }
    if (c->state != ST_OPEN)
        return;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123) /* the control frame limit, cut on a UTF-8 boundary */
        for (rl = 123; rl > 0 && ((uint8_t)reason[rl] & 0xC0) == 0x80; rl--)
            ;
    bool sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                    (code >= 3000 && code <= 4999);
    if (!sendable) { /* 1005, 1006, 1015 and unassigned codes never go on the wire */
        code = SP_WS_CLOSE_NORMAL;
        rl = 0;
    }
    c->state = ST_CLOSING;
    wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, rl);
    ws_flush(c);
    if (!c->pending_err)
        uv_timer_start(&c->timer, on_timer, c->close_timeout, 0);
}

bool sp_ws_client_is_open(const sp_ws_client_t *c)
{
    return c && !c->freed && c->state == ST_OPEN;
}

int sp_ws_client_http_status(const sp_ws_client_t *c)
{
    return c ? c->status : 0;
}
