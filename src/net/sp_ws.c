/*
 * sp_ws: WebSocket hub and connections (libuv + wslay). See sp_ws.h for the
 * design (one ordered queue of refcounted frames per connection, data frames
 * bypassing wslay, slow readers cut with 1008, hub-wide ping/idle timer).
 */
#include "net/sp_ws.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "core/sp_time.h"

#define MOD "ws"
#define WRITE_BATCH 16
#define READ_BUF (64 * 1024)
/* spare queue nodes / write requests the hub keeps: no allocation per socket in a fan-out */
#define SPARE_OUT 8192
#define SPARE_WR 256

typedef struct out_s {
    struct out_s *next;
    sp_rbuf_t *r;
} out_t;

typedef struct {
    uv_write_t req;
    sp_ws_conn_t *c;
    size_t n;
    size_t bytes;
    sp_rbuf_t *r[WRITE_BATCH];
} wreq_t;

typedef struct {
    void *head;
    size_t n, cap, size;
} spare_t;

enum { ST_OPEN = 0, ST_CLOSING, ST_DEAD };

struct sp_ws_conn_s {
    uv_tcp_t *tcp;
    sp_ws_hub_t *hub;
    sp_ws_proto_t *proto;
    sp_ws_conn_t *prev, *next;
    out_t *qhead, *qtail;
    size_t qbytes;        /* queued, not yet handed to libuv */
    size_t inflight;      /* handed to libuv, not yet written */
    wreq_t *wr;           /* the in-flight write, if any */
    uint64_t id;
    uint64_t last_recv_ms;
    uint64_t last_ping_ms;
    uint64_t close_deadline_ms;
    uint64_t diag_seq;
    char *user;
    char *cred; /* "kind:id" of the credential that opened it, or NULL */
    int64_t expires_wall_ms; /* the credential's end (0: none): closed 4001 then */
    sp_http_server_t *srv; /* the HTTP server it came from: its connection budget */
    unsigned flags;
    int state;
    bool close_after_flush;
    int close_code;
    const sp_ws_handlers_t *h;
    void *ud;
    void *ext;
    bool observed; /* announced to the session observer */
};

struct sp_ws_auth_s {
    sp_ws_hub_t *hub;
    sp_http_req_t *req;
    const sp_ws_handlers_t *h;
    void *ud;
    char *cred;
    int64_t expires_wall_ms;
    char accept[29];
};

struct sp_ws_hub_s {
    uv_loop_t *loop;
    sp_ws_opts_t opts;
    char *public_url;
    char *allowed_origins;
    sp_ws_origins_t origins;
    uv_timer_t timer;
    sp_ws_observer_t observer;
    uv_timer_t flood_timer;
    sp_ws_conn_t *conns; /* doubly linked list */
    size_t n_conns;
    sp_map_t *per_user;  /* user id -> open sockets (uintptr_t), for max_per_user */
    size_t handles;      /* open handles: timers + connections */
    bool freeing;
    uint64_t next_id;
    sp_ws_auth_cb auth;
    void *auth_ud;
    sp_ws_ext_t ext;
    sp_ws_stats_t st;
    char rbuf[READ_BUF]; /* shared read buffer: consumed synchronously in read_cb */
    /* diag flood (test mode) */
    uint64_t flood_left;
    size_t flood_size;
    size_t flood_per_tick;
    uint64_t flood_seq;
    spare_t spare_out, spare_wr;
};

static void conn_destroy(sp_ws_conn_t *c);
static void conn_pump(sp_ws_conn_t *c);
static void begin_close(sp_ws_conn_t *c, uint16_t code, const char *reason, bool drop_pending);

/* ---- helpers -------------------------------------------------------------------- */

static void count_close(sp_ws_hub_t *hub, int code)
{
    if (code >= 1000 && code < 1016)
        hub->st.closes[code - 1000]++;
    else
        hub->st.closes_other++;
}

static size_t user_count(const sp_ws_hub_t *hub, const char *user)
{
    return user ? (size_t)(uintptr_t)sp_map_gets(hub->per_user, user) : 0;
}

static void user_count_add(sp_ws_hub_t *hub, const char *user, int delta)
{
    if (!user)
        return;
    size_t n = user_count(hub, user);
    n = delta > 0 ? n + 1 : n ? n - 1 : 0;
    if (n)
        sp_map_sets(hub->per_user, user, (void *)(uintptr_t)n);
    else
        sp_map_dels(hub->per_user, user, NULL);
}

/* A pool of spare blocks of one size; a free block's first word links the next. */
static void *spare_get(spare_t *sp)
{
    void *p = sp->head;
    if (!p)
        return sp_malloc(sp->size);
    memcpy(&sp->head, p, sizeof(void *));
    sp->n--;
    return p;
}

static void spare_put(spare_t *sp, void *p, bool keep)
{
    if (!keep || sp->n >= sp->cap) {
        sp_free(p);
        return;
    }
    memcpy(p, &sp->head, sizeof(void *));
    sp->head = p;
    sp->n++;
}

static void spare_free(spare_t *sp)
{
    for (void *p; (p = sp->head) != NULL; sp_free(p))
        memcpy(&sp->head, p, sizeof(void *));
    sp->n = 0;
}

static void hub_handle_closed(sp_ws_hub_t *hub)
{
    if (--hub->handles == 0 && hub->freeing) {
        spare_free(&hub->spare_out);
        spare_free(&hub->spare_wr);
        sp_map_free(hub->per_user);
        sp_free(hub->public_url);
        sp_free(hub->allowed_origins);
        sp_free(hub);
    }
}

static void queue_drop_pending(sp_ws_conn_t *c)
{
    out_t *o = c->qhead;
    while (o) {
        out_t *n = o->next;
        sp_rbuf_unref(o->r);
        spare_put(&c->hub->spare_out, o, !c->hub->freeing);
        o = n;
    }
    c->qhead = c->qtail = NULL;
    c->qbytes = 0;
}

/* Appends without a cap check (the caller checked or it is a control frame). */
static void queue_push(sp_ws_conn_t *c, sp_rbuf_t *r)
{
    out_t *o = spare_get(&c->hub->spare_out);
    o->next = NULL;
    o->r = r;
    if (c->qtail)
        c->qtail->next = o;
    else
        c->qhead = o;
    c->qtail = o;
    c->qbytes += r->len;
}

/* ---- writing -------------------------------------------------------------------- */

static void tcp_close_cb(uv_handle_t *h)
{
    sp_ws_conn_t *c = h->data;
    sp_ws_hub_t *hub = c->hub;
    queue_drop_pending(c);
    sp_ws_proto_free(c->proto);
    sp_http_server_upgraded_closed(c->srv); /* the descriptor is closed now */
    sp_free(c->user);
    sp_free(c->cred);
    sp_free(c->tcp);
    sp_free(c);
    hub_handle_closed(hub);
}

static void write_cb(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    sp_ws_conn_t *c = w->c;
    for (size_t i = 0; i < w->n; i++)
        sp_rbuf_unref(w->r[i]);
    c->inflight -= w->bytes;
    c->wr = NULL;
    spare_put(&c->hub->spare_wr, w, !c->hub->freeing);
    if (c->state == ST_DEAD)
        return;
    if (status < 0) {
        sp_debug(MOD, "write failed", "conn=%llu err=%s", (unsigned long long)c->id,
                 uv_err_name(status));
        conn_destroy(c);
        return;
    }
    conn_pump(c);
}

/* Hands up to WRITE_BATCH queued frames to libuv (one write in flight at a time). */
static void conn_pump(sp_ws_conn_t *c)
{
    if (c->state == ST_DEAD || c->wr)
        return;
    if (!c->qhead) {
        if (c->close_after_flush)
            conn_destroy(c);
        return;
    }
    wreq_t *w = spare_get(&c->hub->spare_wr);
    uv_buf_t bufs[WRITE_BATCH];
    w->c = c;
    w->n = 0;
    w->bytes = 0;
    while (c->qhead && w->n < WRITE_BATCH) {
        out_t *o = c->qhead;
        c->qhead = o->next;
        if (!c->qhead)
            c->qtail = NULL;
        bufs[w->n] = uv_buf_init((char *)o->r->data, (unsigned)o->r->len);
        w->r[w->n++] = o->r;
        w->bytes += o->r->len;
        spare_put(&c->hub->spare_out, o, true);
    }
    c->qbytes -= w->bytes;
    c->inflight += w->bytes;
    c->wr = w;
    int rc = uv_write(&w->req, (uv_stream_t *)c->tcp, bufs, (unsigned)w->n, write_cb);
    if (rc < 0) {
        for (size_t i = 0; i < w->n; i++)
            sp_rbuf_unref(w->r[i]);
        c->inflight -= w->bytes;
        c->wr = NULL;
        spare_put(&c->hub->spare_wr, w, true);
        conn_destroy(c);
    }
}

static void cut_slow_reader(sp_ws_conn_t *c, size_t attempted)
{
    sp_ws_hub_t *hub = c->hub;
    hub->st.slow_closed++;
    sp_ulog(SP_LOG_WARN, MOD, c->user, "slow reader closed",
            "conn=%llu queued=%zu inflight=%zu frame=%zu max_queue=%zu code=1008",
            (unsigned long long)c->id, c->qbytes, c->inflight, attempted, hub->opts.max_queue);
    begin_close(c, SP_WS_CLOSE_POLICY, "slow reader", true);
}

int sp_ws_conn_queue_frame(sp_ws_conn_t *c, sp_rbuf_t *frame)
{
    if (c->state != ST_OPEN)
        return SP_ECLOSED;
    if (c->qbytes + c->inflight + frame->len > c->hub->opts.max_queue) {
        cut_slow_reader(c, frame->len);
        return SP_ETOOBIG;
    }
    queue_push(c, sp_rbuf_ref(frame));
    c->hub->st.msgs_out++;
    c->hub->st.bytes_out += frame->len;
    return 0;
}

void sp_ws_conn_flush(sp_ws_conn_t *c) { conn_pump(c); }

int sp_ws_conn_send_frame(sp_ws_conn_t *c, sp_rbuf_t *frame)
{
    int rc = sp_ws_conn_queue_frame(c, frame);
    if (rc == 0)
        conn_pump(c);
    return rc;
}

int sp_ws_conn_send_text(sp_ws_conn_t *c, const char *text, size_t len)
{
    sp_rbuf_t *r = sp_ws_frame_encode(SP_WS_OP_TEXT, text, len);
    int rc = sp_ws_conn_send_frame(c, r);
    sp_rbuf_unref(r);
    return rc;
}

/* wslay's control frames: one copy into a small rbuf, same queue, same order. */
static void proto_output(void *ud, const uint8_t *p, size_t len)
{
    sp_ws_conn_t *c = ud;
    if (c->state == ST_DEAD)
        return;
    queue_push(c, sp_rbuf_new(p, len));
    /* pongs count against the cap too (a peer pinging without reading) */
    if (c->state == ST_OPEN && c->qbytes + c->inflight > c->hub->opts.max_queue)
        cut_slow_reader(c, len);
    conn_pump(c);
}

/* ---- closing -------------------------------------------------------------------- */

static void conn_destroy(sp_ws_conn_t *c)
{
    sp_ws_hub_t *hub = c->hub;
    if (c->state == ST_DEAD)
        return;
    int code = sp_ws_proto_sent_code(c->proto);
    if (!code)
        code = sp_ws_proto_peer_code(c->proto);
    if (!code)
        code = SP_WS_CLOSE_ABNORMAL;
    c->state = ST_DEAD;
    c->close_code = code;
    count_close(hub, code);
    if (c->prev)
        c->prev->next = c->next;
    else
        hub->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hub->n_conns--;
    hub->st.open = hub->n_conns;
    user_count_add(hub, c->user, -1);
    sp_ulog(SP_LOG_DEBUG, MOD, c->user, "closed", "conn=%llu code=%d", (unsigned long long)c->id,
            code);
    if (hub->ext.on_close)
        hub->ext.on_close(c, hub->ext.ud);
    if (c->observed && hub->observer.closed)
        hub->observer.closed(c->user, c->id, hub->observer.ud);
    c->observed = false;
    if (c->h && c->h->on_close)
        c->h->on_close(c, code, c->ud);
    uv_close((uv_handle_t *)c->tcp, tcp_close_cb);
}

static void begin_close(sp_ws_conn_t *c, uint16_t code, const char *reason, bool drop_pending)
{
    if (c->state != ST_OPEN)
        return;
    c->state = ST_CLOSING;
    c->close_deadline_ms = sp_mono_ms() + c->hub->opts.close_timeout_ms;
    if (drop_pending)
        queue_drop_pending(c);
    sp_ws_proto_close(c->proto, code, reason);
}

/* After input: decide whether the close handshake is complete. */
static void after_proto(sp_ws_conn_t *c, int rc)
{
    if (c->state == ST_DEAD)
        return;
    bool sent = sp_ws_proto_close_sent(c->proto), recv = sp_ws_proto_close_received(c->proto);
    if (sent && c->state == ST_OPEN) {
        /* wslay closed it (1002/1009/1007, or the reply to the peer's close) */
        c->state = ST_CLOSING;
        c->close_deadline_ms = sp_mono_ms() + c->hub->opts.close_timeout_ms;
    }
    if (rc == SP_ECLOSED || (sent && recv)) {
        /* handshake done, or no more input wanted: flush what is queued, then close TCP */
        if (c->state == ST_OPEN) {
            c->state = ST_CLOSING;
            c->close_deadline_ms = sp_mono_ms() + c->hub->opts.close_timeout_ms;
        }
        c->close_after_flush = true;
        conn_pump(c);
    }
}

/* ---- reading -------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sp_ws_conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->hub->rbuf, READ_BUF);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sp_ws_conn_t *c = s->data;
    (void)buf;
    if (c->state == ST_DEAD)
        return;
    if (nread < 0) {
        conn_destroy(c);
        return;
    }
    if (nread == 0)
        return;
    c->last_recv_ms = sp_mono_ms();
    int rc = sp_ws_proto_feed(c->proto, (const uint8_t *)c->hub->rbuf, (size_t)nread);
    after_proto(c, rc);
}

/* ---- diag handlers ---------------------------------------------------------------- */

static void diag_send(sp_ws_conn_t *c, const char *event, json_t *payload)
{
    json_t *o = json_pack("{s:s,s:s,s:O,s:I}", "topic", "diag", "event", event, "payload",
                          payload ? payload : json_null(), "seq", (json_int_t)++c->diag_seq);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (txt)
        sp_ws_conn_send_text(c, txt, strlen(txt));
    free(txt);
    json_decref(o);
}

static void diag_error(sp_ws_conn_t *c, const char *message)
{
    json_t *p = json_pack("{s:s}", "message", message);
    diag_send(c, "error", p);
    json_decref(p);
}

#ifdef SP_TEST_HOOKS
static void flood_tick(uv_timer_t *t)
{
    sp_ws_hub_t *hub = t->data;
    for (size_t i = 0; i < hub->flood_per_tick && hub->flood_left > 0; i++, hub->flood_left--) {
        char *fill = sp_malloc(hub->flood_size + 1);
        memset(fill, 'x', hub->flood_size);
        fill[hub->flood_size] = '\0';
        json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "topic", "diag", "event", "flood", "payload",
                              fill, "seq", (json_int_t)++hub->flood_seq);
        sp_free(fill);
        char *txt = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!txt)
            break;
        sp_rbuf_t *r = sp_ws_frame_encode(SP_WS_OP_TEXT, txt, strlen(txt));
        free(txt);
        sp_ws_hub_broadcast(hub, r);
        sp_rbuf_unref(r);
    }
    if (hub->flood_left == 0)
        uv_timer_stop(t);
}
#endif

static bool default_on_text(sp_ws_conn_t *c, const char *msg, size_t len, void *ud)
{
    sp_ws_hub_t *hub = c->hub;
    json_error_t jerr;
    (void)ud;
    json_t *j = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    if (!j || !json_is_object(j) || !type) {
        diag_error(c, "expected a JSON object with a \"type\"");
        json_decref(j);
        return false;
    }
    bool done = false;
    if (hub->ext.on_message)
        done = hub->ext.on_message(c, type, j, hub->ext.ud);
    if (done) {
        /* handled by the extension */
    } else if (strcmp(type, "echo") == 0) {
        diag_send(c, "echo", json_object_get(j, "payload"));
        done = true;
    } else if (strcmp(type, "ping") == 0) {
        json_t *p = json_object();
        diag_send(c, "pong", p);
        json_decref(p);
        done = true;
#ifdef SP_TEST_HOOKS
    } else if (strcmp(type, "flood") == 0 && hub->opts.test_mode) {
        json_int_t n = json_integer_value(json_object_get(j, "count"));
        json_int_t sz = json_integer_value(json_object_get(j, "size"));
        json_int_t pt = json_integer_value(json_object_get(j, "per_tick"));
        if (n <= 0 || n > 100000 || sz < 0 || sz > 60000) {
            diag_error(c, "flood: count 1..100000, size 0..60000");
        } else {
            hub->flood_left = (uint64_t)n;
            hub->flood_size = (size_t)sz;
            hub->flood_per_tick = pt > 0 && pt <= 1000 ? (size_t)pt : 4;
            uv_timer_start(&hub->flood_timer, flood_tick, 0, 1);
        }
        done = true;
#endif
    } else {
        diag_error(c, "unknown type");
    }
    json_decref(j);
    return done;
}

static const sp_ws_handlers_t default_handlers = { .on_text = default_on_text };

const sp_ws_handlers_t *sp_ws_default_handlers(void)
{
    return &default_handlers;
}

/* ---- connection setup ------------------------------------------------------------- */

static void proto_message(void *ud, int opcode, const uint8_t *p, size_t len)
{
    sp_ws_conn_t *c = ud;
    if (c->state != ST_OPEN)
        return;
    c->hub->st.msgs_in++;
    if (c->flags & SP_WS_READONLY) {
        begin_close(c, SP_WS_CLOSE_POLICY, "read-only socket", false);
        return;
    }
    if (opcode != SP_WS_OP_TEXT) {
        begin_close(c, SP_WS_CLOSE_UNSUPPORTED, "text only", false);
        return;
    }
    if (c->h && c->h->on_text)
        c->h->on_text(c, (const char *)p, len, c->ud);
}

static void start_conn(sp_ws_auth_t *a, const char *user, unsigned flags)
{
    sp_ws_hub_t *hub = a->hub;
    sp_buf_t left;
    char resp[160];
    sp_buf_init(&left, hub->opts.max_message + 16 * 1024);
    sp_http_server_t *srv = sp_http_req_server(a->req);
    uv_tcp_t *tcp = sp_http_req_upgrade(a->req, &left);
    if (!tcp) {
        /* the connection is already gone: answer so the server can release the request */
        sp_buf_cleanup(&left);
        sp_http_respond_error(a->req, 500, "upgrade_failed", "connection closed");
        return;
    }
    static const sp_ws_proto_cbs_t pcb = { .on_message = proto_message, .on_output = proto_output };
    sp_ws_conn_t *c = sp_calloc(1, sizeof(*c));
    c->tcp = tcp;
    c->hub = hub;
    c->id = ++hub->next_id;
    c->h = a->h;
    c->ud = a->ud;
    c->user = user ? sp_strdup(user) : NULL;
    c->cred = a->cred;
    a->cred = NULL;
    c->expires_wall_ms = a->expires_wall_ms;
    c->srv = srv;
    c->flags = flags;
    c->last_recv_ms = c->last_ping_ms = sp_mono_ms();
    c->proto = sp_ws_proto_new(hub->opts.max_message, &pcb, c);
    tcp->data = c;
    c->next = hub->conns;
    if (hub->conns)
        hub->conns->prev = c;
    hub->conns = c;
    hub->n_conns++;
    user_count_add(hub, c->user, 1);
    hub->handles++;
    hub->st.open = hub->n_conns;
    hub->st.accepted++;

    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     a->accept);
    queue_push(c, sp_rbuf_new(resp, (size_t)n));
    sp_ulog(SP_LOG_DEBUG, MOD, c->user, "open", "conn=%llu open=%zu", (unsigned long long)c->id,
            hub->n_conns);
    if (!c->proto) {
        conn_destroy(c);
        sp_buf_cleanup(&left);
        return;
    }
    conn_pump(c);
    int rc = uv_read_start((uv_stream_t *)tcp, alloc_cb, read_cb);
    if (rc < 0) {
        conn_destroy(c);
        sp_buf_cleanup(&left);
        return;
    }
    if (c->h && c->h->on_open)
        c->h->on_open(c, c->ud);
    if (c->state == ST_OPEN && c->user && !(c->flags & (SP_WS_READONLY | SP_WS_WIDGET)) &&
        hub->observer.opened) {
        if (hub->observer.opened(c->user, c->id, hub->observer.ud) == 0) {
            c->observed = true;
        } else {
            begin_close(c, 1013, "MAX_CONCURRENT_USERS reached", true);
            conn_pump(c);
        }
    }
    if (left.len && c->state != ST_DEAD)
        after_proto(c, sp_ws_proto_feed(c->proto, (const uint8_t *)left.p, left.len));
    sp_buf_cleanup(&left);
}

void sp_ws_auth_done(sp_ws_auth_t *a, int status, const char *user_id, unsigned flags)
{
    sp_ws_hub_t *hub = a->hub;
    if (hub->freeing) {
        sp_http_respond_error(a->req, 503, "shutting_down", "server is shutting down");
    } else if (status != 0 || sp_http_req_aborted(a->req)) {
        a->hub->st.rejected++;
        if (status == 503) {
            sp_http_res_header(a->req, "Retry-After", "1");
            sp_http_respond_error(a->req, 503, "unavailable", "try again later");
        } else {
            sp_http_respond_error(a->req, status ? status : 401, "unauthorized",
                                  "websocket authentication failed");
        }
    } else if (hub->opts.max_per_user && user_id &&
               user_count(hub, user_id) >= hub->opts.max_per_user) {
        /* refused before the upgrade: a clear answer, nothing to tear down */
        hub->st.refused_user_limit++;
        sp_ulog(SP_LOG_WARN, MOD, user_id, "socket refused: per-user limit",
                "open=%zu max=%zu ip=%s", user_count(hub, user_id), hub->opts.max_per_user,
                sp_http_req_remote_ip(a->req));
        sp_http_res_header(a->req, "Retry-After", "5");
        sp_http_respond_error(a->req, 503, "too_many_sockets",
                              "too many open sockets for this account (MAX_SOCKETS_PER_USER); "
                              "close a tab or a widget");
    } else {
        start_conn(a, user_id, flags);
    }
    sp_free(a->cred);
    sp_free(a);
    hub_handle_closed(hub); /* the pending auth kept the hub alive */
}

void sp_ws_handle_upgrade(sp_ws_hub_t *hub, sp_http_req_t *req, const sp_ws_handlers_t *h,
                          void *conn_ud)
{
    sp_ws_hs_req_t hr = {
        .method = sp_http_req_method(req),
        .upgrade = sp_http_req_header(req, "Upgrade"),
        .connection = sp_http_req_header(req, "Connection"),
        .version = sp_http_req_header(req, "Sec-WebSocket-Version"),
        .key = sp_http_req_header(req, "Sec-WebSocket-Key"),
        .origin = sp_http_req_header(req, "Origin"),
    };
    sp_ws_hs_result_t res;
    if (hub->freeing) {
        sp_http_respond_error(req, 503, "shutting_down", "server is shutting down");
        return;
    }
    if (sp_ws_handshake_check(&hr, &hub->origins, &res) != 101) {
        hub->st.rejected++;
        sp_info(MOD, "handshake rejected", "status=%d reason=%s ip=%s", res.status, res.reason,
                sp_http_req_remote_ip(req));
        if (res.send_version)
            sp_http_res_header(req, "Sec-WebSocket-Version", "13");
        sp_http_respond_error(req, res.status, res.reason,
                              res.status == 403 ? "origin not allowed"
                                                : "invalid websocket handshake");
        return;
    }
    sp_ws_auth_t *a = sp_calloc(1, sizeof(*a));
    a->hub = hub;
    a->req = req;
    a->h = h;
    a->ud = conn_ud;
    memcpy(a->accept, res.accept, sizeof(a->accept));
    hub->handles++; /* released by sp_ws_auth_done */
    if (hub->auth) {
        hub->auth(req, a, hub->auth_ud);
        return;
    }
    /* Fail closed: a hub nobody gave an auth hook accepts no one. */
    sp_error(MOD, "upgrade refused: no authentication hook installed", "path=/socket");
    sp_ws_auth_done(a, 401, NULL, 0);
}

void sp_ws_auth_set_cred(sp_ws_auth_t *a, const char *kind, const char *id)
{
    sp_free(a->cred);
    a->cred = NULL;
    size_t kl = kind ? strlen(kind) : 0, il = id ? strlen(id) : 0;
    if (kl == 0 || kl > 63 || il == 0 || il > 127 || strchr(kind, ':'))
        return;
    a->cred = sp_malloc(kl + il + 2);
    memcpy(a->cred, kind, kl);
    a->cred[kl] = ':';
    memcpy(a->cred + kl + 1, id, il + 1);
}

void sp_ws_auth_set_expiry(sp_ws_auth_t *a, int64_t wall_ms)
{
    a->expires_wall_ms = wall_ms > 0 ? wall_ms : 0;
}

/* ---- hub ------------------------------------------------------------------------ */

static void hub_tick(uv_timer_t *t)
{
    sp_ws_hub_t *hub = t->data;
    uint64_t now = sp_mono_ms();
    int64_t wall = sp_wall_ms();
    sp_ws_conn_t *c = hub->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == ST_CLOSING) {
            if (now >= c->close_deadline_ms)
                conn_destroy(c);
            continue;
        }
        if (c->expires_wall_ms && wall >= c->expires_wall_ms) {
            sp_ulog(SP_LOG_INFO, MOD, c->user, "credential expired", "conn=%llu code=4001",
                    (unsigned long long)c->id);
            begin_close(c, 4001, "session expired", true);
            conn_pump(c);
            continue;
        }
        if (now - c->last_recv_ms >= hub->opts.idle_timeout_ms) {
            sp_ulog(SP_LOG_INFO, MOD, c->user, "idle timeout", "conn=%llu silent_ms=%llu",
                    (unsigned long long)c->id, (unsigned long long)(now - c->last_recv_ms));
            begin_close(c, SP_WS_CLOSE_GOING_AWAY, "idle timeout", true);
            /* a silent peer will not answer: close as soon as the frame is out */
            c->close_after_flush = true;
            conn_pump(c);
            continue;
        }
        if (now - c->last_ping_ms >= hub->opts.ping_interval_ms) {
            c->last_ping_ms = now;
            sp_ws_proto_ping(c->proto);
        }
    }
}

sp_ws_hub_t *sp_ws_hub_new(uv_loop_t *loop, const sp_ws_opts_t *opts)
{
    sp_ws_hub_t *hub = sp_calloc(1, sizeof(*hub));
    hub->loop = loop;
    hub->opts = *opts;
    if (!hub->opts.max_message)
        hub->opts.max_message = 64 * 1024;
    if (!hub->opts.max_queue)
        hub->opts.max_queue = 1024 * 1024;
    if (!hub->opts.ping_interval_ms)
        hub->opts.ping_interval_ms = 30000;
    if (!hub->opts.idle_timeout_ms)
        hub->opts.idle_timeout_ms = 60000;
    if (!hub->opts.close_timeout_ms)
        hub->opts.close_timeout_ms = 2000;
    hub->public_url = opts->public_url ? sp_strdup(opts->public_url) : NULL;
    hub->allowed_origins = opts->allowed_origins ? sp_strdup(opts->allowed_origins) : NULL;
    hub->per_user = sp_map_new(NULL);
    hub->spare_out = (spare_t){ .cap = SPARE_OUT, .size = sizeof(out_t) };
    hub->spare_wr = (spare_t){ .cap = SPARE_WR, .size = sizeof(wreq_t) };
    hub->opts.public_url = hub->public_url;
    hub->opts.allowed_origins = hub->allowed_origins;
    if (sp_ws_origins_init(&hub->origins, hub->public_url, hub->allowed_origins) != 0)
        sp_warn(MOD, "some allowed origins ignored", "public_url=%s",
                hub->public_url ? hub->public_url : "");
    for (size_t i = 0; i < hub->origins.n; i++)
        sp_debug(MOD, "allowed origin", "origin=%s", hub->origins.v[i]);

    uint64_t tick = hub->opts.ping_interval_ms < hub->opts.idle_timeout_ms
                        ? hub->opts.ping_interval_ms
                        : hub->opts.idle_timeout_ms;
    tick /= 4;
    if (tick < 20)
        tick = 20;
    if (tick > 1000)
        tick = 1000;
    uv_timer_init(loop, &hub->timer);
    hub->timer.data = hub;
    uv_timer_start(&hub->timer, hub_tick, tick, tick);
    uv_unref((uv_handle_t *)&hub->timer);
    uv_timer_init(loop, &hub->flood_timer);
    hub->flood_timer.data = hub;
    hub->handles = 2;
    return hub;
}

static void timer_close_cb(uv_handle_t *h)
{
    hub_handle_closed(h->data);
}

void sp_ws_hub_free(sp_ws_hub_t *hub)
{
    if (!hub || hub->freeing)
        return;
    sp_ws_conn_t *c = hub->conns, *next;
    for (; c; c = next) {
        next = c->next;
        conn_destroy(c);
    }
    hub->freeing = true;
    uv_close((uv_handle_t *)&hub->timer, timer_close_cb);
    uv_close((uv_handle_t *)&hub->flood_timer, timer_close_cb);
}

void sp_ws_hub_set_auth(sp_ws_hub_t *hub, sp_ws_auth_cb cb, void *ud)
{
    hub->auth = cb;
    hub->auth_ud = ud;
}

void sp_ws_hub_set_observer(sp_ws_hub_t *hub, const sp_ws_observer_t *obs)
{
    hub->observer = *obs;
}

void sp_ws_hub_set_ext(sp_ws_hub_t *hub, const sp_ws_ext_t *ext)
{
    if (ext)
        hub->ext = *ext;
    else
        memset(&hub->ext, 0, sizeof(hub->ext));
}

void sp_ws_hub_close_all(sp_ws_hub_t *hub, uint16_t code)
{
    sp_ws_conn_t *c = hub->conns, *next;
    sp_info(MOD, "closing all", "count=%zu code=%u", hub->n_conns, (unsigned)code);
    uv_timer_stop(&hub->flood_timer);
    hub->flood_left = 0;
    for (; c; c = next) {
        next = c->next;
        begin_close(c, code, "going away", true);
    }
}

size_t sp_ws_hub_close_if(sp_ws_hub_t *hub, sp_ws_match_cb match, void *ud, uint16_t code,
                          const char *reason)
{
    size_t n = 0;
    sp_ws_conn_t *c = hub->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state != ST_OPEN || !match(c, ud))
            continue;
        sp_ulog(SP_LOG_INFO, MOD, c->user, "closing socket", "conn=%llu code=%u reason=\"%s\"",
                (unsigned long long)c->id, (unsigned)code, reason ? reason : "");
        begin_close(c, code, reason ? reason : "", true);
        conn_pump(c);
        n++;
    }
    return n;
}

size_t sp_ws_hub_close_user(sp_ws_hub_t *hub, const char *user_id, unsigned flags, uint16_t code,
                            const char *reason)
{
    size_t n = 0;
    sp_ws_conn_t *c = hub ? hub->conns : NULL, *next;
    for (; c && user_id; c = next) {
        next = c->next;
        if (c->state != ST_OPEN || !(c->flags & flags) || !c->user || strcmp(c->user, user_id))
            continue;
        begin_close(c, code, reason, true);
        conn_pump(c);
        n++;
    }
    return n;
}

typedef struct {
    const char *kind;
    size_t kind_len;
    const char *id;
    const char *user;
} cred_match_t;

static bool cred_matches(const sp_ws_conn_t *c, void *ud)
{
    const cred_match_t *m = ud;
    if (!c->cred || strncmp(c->cred, m->kind, m->kind_len) != 0 || c->cred[m->kind_len] != ':')
        return false;
    if (m->id && strcmp(c->cred + m->kind_len + 1, m->id) != 0)
        return false;
    return !m->user || (c->user && strcmp(c->user, m->user) == 0);
}

size_t sp_ws_hub_close_cred(sp_ws_hub_t *hub, const char *kind, const char *id,
                            const char *user_id, uint16_t code, const char *reason)
{
    if (!hub || !kind || !kind[0] || (!id && !user_id))
        return 0;
    cred_match_t m = {kind, strlen(kind), id, user_id};
    return sp_ws_hub_close_if(hub, cred_matches, &m, code, reason);
}

size_t sp_ws_hub_user_count(const sp_ws_hub_t *hub, const char *user_id)
{
    return user_count(hub, user_id);
}

size_t sp_ws_hub_count(const sp_ws_hub_t *hub)
{
    return hub->n_conns;
}

void sp_ws_hub_write_metrics(const sp_ws_hub_t *hub, sp_buf_t *out)
{
    const sp_ws_stats_t *s = &hub->st;
    sp_buf_appendf(
        out,
        "# TYPE streampai_ws_open gauge\nstreampai_ws_open %zu\n"
        "# TYPE streampai_ws_accepted_total counter\nstreampai_ws_accepted_total %llu\n"
        "# TYPE streampai_ws_rejected_total counter\nstreampai_ws_rejected_total %llu\n"
        "# TYPE streampai_ws_messages_total counter\n"
        "streampai_ws_messages_total{dir=\"in\"} %llu\n"
        "streampai_ws_messages_total{dir=\"out\"} %llu\n"
        "# TYPE streampai_ws_out_bytes_total counter\nstreampai_ws_out_bytes_total %llu\n"
        "# TYPE streampai_ws_slow_closed_total counter\n"
        "streampai_ws_slow_closed_total %llu\n"
        "# TYPE streampai_ws_refused_total counter\n"
        "streampai_ws_refused_total{reason=\"user_limit\"} %llu\n"
        "# TYPE streampai_ws_users gauge\nstreampai_ws_users %zu\n"
        "# TYPE streampai_ws_closes_total counter\n",
        hub->n_conns, (unsigned long long)s->accepted, (unsigned long long)s->rejected,
        (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out,
        (unsigned long long)s->bytes_out, (unsigned long long)s->slow_closed,
        (unsigned long long)s->refused_user_limit, sp_map_count(hub->per_user));
    for (int i = 0; i < 16; i++)
        if (s->closes[i])
            sp_buf_appendf(out, "streampai_ws_closes_total{code=\"%d\"} %llu\n", 1000 + i,
                           (unsigned long long)s->closes[i]);
    if (s->closes_other)
        sp_buf_appendf(out, "streampai_ws_closes_total{code=\"other\"} %llu\n",
                       (unsigned long long)s->closes_other);
}

void sp_ws_hub_broadcast(sp_ws_hub_t *hub, sp_rbuf_t *frame)
{
    sp_ws_conn_t *c = hub->conns, *next;
    for (; c; c = next) {
        next = c->next; /* a cut connection stays in the list until destroyed */
        if (c->state == ST_OPEN)
            sp_ws_conn_send_frame(c, frame);
    }
}

const sp_ws_opts_t *sp_ws_hub_opts(const sp_ws_hub_t *hub)
{
    return &hub->opts;
}

/* ---- conn accessors --------------------------------------------------------------- */

const char *sp_ws_conn_user(const sp_ws_conn_t *c)
{
    return c->user;
}
const char *sp_ws_conn_cred(const sp_ws_conn_t *c)
{
    return c->cred;
}
unsigned sp_ws_conn_flags(const sp_ws_conn_t *c)
{
    return c->flags;
}
sp_ws_hub_t *sp_ws_conn_hub(const sp_ws_conn_t *c)
{
    return c->hub;
}
void sp_ws_conn_set_ext(sp_ws_conn_t *c, void *p)
{
    c->ext = p;
}
void *sp_ws_conn_get_ext(const sp_ws_conn_t *c)
{
    return c->ext;
}
