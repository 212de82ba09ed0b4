/*
 * sp_rtmp_push: one output of a live input, pushed to an rtmp:// or rtmps://
 * destination: the push state machine (resolve, address policy, connect, TLS,
 * reconnect with backoff, health, queueing and batched writes). The RTMP
 * protocol itself (handshake, commands, chunk headers) is sp_rtmp_client's.
 *
 * Each output is its own state machine (idle, connecting, forwarding, error)
 * with last_error, bytes sent and reconnect count. Every connect and reconnect
 * resolves the host again and checks EVERY address against the destination
 * policy (net/sp_dest_url, ALLOW_PRIVATE_DESTINATIONS) before connect(2); the
 * address checked is the address used. TLS is net/sp_tls (OpenSSL over memory
 * BIOs) so it runs non-blocking on the loop, with SNI and verification against
 * the system store or RELAY_CA_FILE. Forwarding starts with metadata, sequence
 * headers and the cached GOP (a keyframe), with timestamps rebased. The
 * per-output queue is bounded by bytes and duration; over the bound whole GOPs
 * are dropped up to the next keyframe. Nothing here ever waits on a
 * destination: the input and other outputs never block.
 */
#include "relay/sp_rtmp_push.h"

#include <stdarg.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "net/sp_dest_url.h"
#include "net/sp_tls.h"
#include "relay/sp_flv.h"
#include "relay/sp_rtmp_client.h"
#include "relay/sp_slate.h"

#define OUT_CHUNK SP_RTMP_CLIENT_CHUNK
#define CONNECT_TIMEOUT_MS 10000
#define WRITE_STALL_MS 30000
#define DRAIN_TIMEOUT_MS 5000
#define INFLIGHT_MAX (256u * 1024)
#define READ_BUF 16384
#define SNDBUF (512 * 1024)

/* Transport stages, then (ST_RTMP + sp_rtmp_client_stage_t) the client's. */
enum { ST_DNS, ST_TCP, ST_TLS, ST_RTMP };
#define ST_FWD (ST_RTMP + SP_RTMP_CLIENT_PUBLISHING)

static const char *stage_name(int st)
{
    static const char *const names[] = { "dns", "tcp connect", "tls handshake" };
    if (st < ST_RTMP)
        return names[st];
    return sp_rtmp_client_stage_name((sp_rtmp_client_stage_t)(st - ST_RTMP));
}

struct sp_push_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    sp_relay_output_t *out; /* NULL once detached */
    sp_relay_t *relay;
    int pending;            /* open handles + pending requests */
    bool closing, tcp_open;
    sp_rtmp_target_t t;     /* host, port, tls, app, key */
    sp_tls_t *ssl;          /* rtmps: the TLS session, once TCP is connected */
    sp_rtmp_client_t *cl;   /* the RTMP protocol */
    int stage;
    uint64_t stage_since;
    size_t inflight;
    uint64_t oldest_write_ms;
    size_t writes;
    bool draining;        /* detached, ending the stream gracefully */
    uint64_t drain_since;
};

/* One read buffer for every output: reads are consumed synchronously on the loop thread. */
static uint8_t g_rbuf[READ_BUF];

typedef struct {
    uv_write_t req;
    sp_push_conn_t *c;
    size_t bytes;
    char *copy;          /* owned contiguous buffer (TLS, control) */
    sp_rbuf_t **refs;    /* shared payloads (plain) */
    size_t nrefs;
    uint8_t *hdr;        /* chunk headers (plain) */
    uv_buf_t *iov;
} pw_t;

#define BATCH_TAGS 64    /* tags per writev */
#define BATCH_BYTES (1u << 20) /* payload per writev (one tag may exceed it): bounds the scratch */

const char *sp_relay_out_state_name(sp_relay_out_state_t s)
{
    switch (s) {
    case SP_RELAY_OUT_CONNECTING: return "connecting";
    case SP_RELAY_OUT_FORWARDING: return "forwarding";
    case SP_RELAY_OUT_ERROR: return "error";
    default: return "idle";
    }
}

/* ---- TLS context ---- */

int sp_push_tls_init(sp_relay_t *r)
{
    const char *ca = r->cfg && r->cfg->relay_ca_file && r->cfg->relay_ca_file[0]
                         ? r->cfg->relay_ca_file : NULL;
    sp_tls_ctx_t *ctx = NULL;
    int rc = sp_tls_ctx_create(ca, &ctx);
    if (rc == SP_ECONFIG)
        sp_error("relay", "cannot load RELAY_CA_FILE", "path=%s", ca);
    if (rc != 0)
        return rc;
    r->tls_ctx = ctx;
    return 0;
}

void sp_push_tls_free(sp_relay_t *r)
{
    sp_tls_ctx_free(r->tls_ctx);
    r->tls_ctx = NULL;
}

/* ---- connection lifetime ---- */

static void conn_release(sp_push_conn_t *c)
{
    if (--c->pending > 0)
        return;
    sp_tls_free(c->ssl);
    sp_rtmp_client_free(c->cl);
    sp_rtmp_target_cleanup(&c->t);
    sp_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

static void schedule_retry(sp_relay_output_t *o);

/* Detaches c from its output and closes it. */
static void conn_close(sp_push_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->out) {
        c->out->conn = NULL;
        c->out = NULL;
    }
    if (c->stage == ST_DNS)
        uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void out_fail(sp_push_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fail(sp_push_conn_t *c, const char *fmt, ...)
{
    sp_relay_output_t *o = c->out;
    if (!o) {
        conn_close(c);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->last_error, sizeof(o->last_error), fmt, ap);
    va_end(ap);
    o->state = SP_RELAY_OUT_ERROR;
    sp_warn("relay", "output error", "output=%s input=%s host=%s error=\"%s\"", o->uid,
            o->input->uid, c->t.host, o->last_error);
    sp_tagq_clear(&o->q);
    conn_close(c);
    schedule_retry(o);
}

static void set_stage(sp_push_conn_t *c, int st)
{
    c->stage = st;
    c->stage_since = sp_mono_ms();
}

/* ---- writing ---- */

static void pump(sp_push_conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    pw_t *w = (pw_t *)req;
    sp_push_conn_t *c = w->c;
    c->inflight -= w->bytes;
    c->writes--;
    c->oldest_write_ms = c->writes ? sp_mono_ms() : 0;
    if (status == 0 && c->out) {
        c->out->bytes += w->bytes;
        c->relay->bytes_out += w->bytes;
    }
    sp_free(w->copy);
    sp_free(w->hdr);
    sp_free(w->iov);
    for (size_t i = 0; i < w->nrefs; i++)
        sp_rbuf_unref(w->refs[i]);
    sp_free(w->refs);
    sp_free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        out_fail(c, "write failed: %s", uv_strerror(status));
    } else if (!c->closing) {
        pump(c);
    }
    conn_release(c);
}

static void submit(sp_push_conn_t *c, pw_t *w, uv_buf_t *bufs, unsigned n)
{
    w->c = c;
    c->inflight += w->bytes;
    if (c->writes++ == 0)
        c->oldest_write_ms = sp_mono_ms();
    c->pending++;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
    if (rc != 0) {
        w->req.data = NULL;
        on_write(&w->req, rc);
    }
}

/* Flushes TLS output records to the socket. */
static void flush_tls(sp_push_conn_t *c)
{
    size_t n = c->ssl ? sp_tls_out_pending(c->ssl) : 0;
    if (n == 0)
        return;
    pw_t *w = sp_calloc(1, sizeof(*w));
    w->copy = sp_malloc(n);
    size_t got = sp_tls_out_take(c->ssl, w->copy, n);
    if (got == 0) {
        sp_free(w->copy);
        sp_free(w);
        return;
    }
    w->bytes = got;
    uv_buf_t b = uv_buf_init(w->copy, (unsigned)got);
    submit(c, w, &b, 1);
}

static void send_raw(sp_push_conn_t *c, const void *p, size_t len)
{
    if (c->closing || len == 0)
        return;
    if (c->t.tls) {
        if (sp_tls_write(c->ssl, p, len) != 0) {
            out_fail(c, "TLS write failed");
            return;
        }
        flush_tls(c);
        return;
    }
    pw_t *w = sp_calloc(1, sizeof(*w));
    w->copy = sp_malloc(len);
    memcpy(w->copy, p, len);
    w->bytes = len;
    uv_buf_t b = uv_buf_init(w->copy, (unsigned)len);
    submit(c, w, &b, 1);
}

static uint32_t rebase(sp_relay_output_t *o, uint32_t ts)
{
    if (!o->have_base) {
        o->ts_base = ts;
        o->have_base = true;
    }
    int32_t d = (int32_t)(ts - o->ts_base);
    return d < 0 ? 0 : (uint32_t)d;
}

/* Scratch space of pump (loop thread only): a batch is built here and, in the
 * common case, written at once with uv_try_write, so forwarding allocates
 * nothing and leaves the event loop's registrations untouched. */
static struct {
    uv_buf_t *iov;
    uint8_t *hdr;
    uint16_t *hl;
    sp_rbuf_t **refs;
    uint8_t *flat;       /* TLS: the batch as one buffer */
    size_t iov_cap, hdr_cap, hl_cap, refs_cap, flat_cap;
} g_batch;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    *cap = n;
    return sp_realloc(p, n * elem);
}

static void batch_unref(size_t nrefs)
{
    for (size_t i = 0; i < nrefs; i++)
        sp_rbuf_unref(g_batch.refs[i]);
}

/* The part of a batch the socket did not take goes to a libuv write that owns
 * copies of the chunk headers and the payload references. */
static void queue_rest(sp_push_conn_t *c, size_t k, size_t hlen, size_t nrefs, size_t total,
                       size_t done)
{
    pw_t *w = sp_calloc(1, sizeof(*w));
    w->hdr = sp_malloc(hlen ? hlen : 1);
    memcpy(w->hdr, g_batch.hdr, hlen);
    w->iov = sp_malloc(k * sizeof(*w->iov));
    w->refs = sp_malloc(nrefs * sizeof(*w->refs));
    memcpy(w->refs, g_batch.refs, nrefs * sizeof(*w->refs));
    w->nrefs = nrefs;
    const char *h0 = (const char *)g_batch.hdr, *h1 = h0 + hlen;
    size_t nk = 0, skip = done;
    for (size_t i = 0; i < k; i++) {
        uv_buf_t b = g_batch.iov[i];
        if (skip >= b.len) {
            skip -= b.len;
            continue;
        }
        b.base += skip;
        b.len -= skip;
        skip = 0;
        if (b.base >= h0 && b.base < h1) /* a chunk header: point into the copy */
            b.base = (char *)w->hdr + (b.base - h0);
        w->iov[nk++] = b;
    }
    w->bytes = total - done;
    submit(c, w, w->iov, (unsigned)nk);
}

/*
 * Writes queued tags as chunks, several tags per writev. On plain TCP the
 * payloads are not copied: the iovecs point into the shared buffers. The batch
 * is first offered to the socket directly (uv_try_write); only what it does not
 * take is queued, with its references, as a libuv write. TLS encrypts into the
 * write BIO.
 */
static void pump(sp_push_conn_t *c)
{
    sp_relay_output_t *o = c->out;
    if (!o || c->stage != ST_FWD || c->closing)
        return;
    while ((c->inflight < INFLIGHT_MAX || c->draining) && o->q.n > 0 && !c->closing) {
        size_t ntags = 0, hbound = 0, nchunks = 0, pbytes = 0;
        while (ntags < o->q.n && ntags < BATCH_TAGS && (ntags == 0 || pbytes < BATCH_BYTES)) {
            uint32_t len = (uint32_t)sp_tagq_at(&o->q, ntags)->data->len;
            hbound += sp_rtmp_client_hdr_bound(len);
            nchunks += len == 0 ? 1 : (len + OUT_CHUNK - 1) / OUT_CHUNK;
            pbytes += len;
            ntags++;
        }
        g_batch.hdr = grow(g_batch.hdr, &g_batch.hdr_cap, hbound, 1);
        g_batch.iov = grow(g_batch.iov, &g_batch.iov_cap, 2 * nchunks, sizeof(uv_buf_t));
        g_batch.hl = grow(g_batch.hl, &g_batch.hl_cap, nchunks, sizeof(uint16_t));
        g_batch.refs = grow(g_batch.refs, &g_batch.refs_cap, ntags, sizeof(sp_rbuf_t *));
        size_t hoff = 0, k = 0, total = 0, nrefs = 0;
        for (size_t i = 0; i < ntags; i++) {
            sp_relay_tag_t t;
            sp_tagq_pop(&o->q, &t);
            uint32_t ts = t.type == SP_FLV_TAG_DATA ? o->last_out_ts : rebase(o, t.ts);
            o->last_out_ts = ts;
            uint32_t len = (uint32_t)t.data->len;
            size_t n = sp_rtmp_client_tag_headers(g_batch.hdr + hoff, g_batch.hl, t.type, ts,
                                                  sp_rtmp_client_stream_id(c->cl), len);
            uint32_t sent = 0;
            for (size_t ci = 0; ci < n; ci++) {
                g_batch.iov[k++] = uv_buf_init((char *)g_batch.hdr + hoff, g_batch.hl[ci]);
                hoff += g_batch.hl[ci];
                uint32_t take = len - sent < OUT_CHUNK ? len - sent : OUT_CHUNK;
                if (take)
                    g_batch.iov[k++] = uv_buf_init((char *)t.data->data + sent, take);
                sent += take;
            }
            total += len;
            g_batch.refs[nrefs++] = t.data; /* the popped reference moves into the batch */
        }
        total += hoff;
        if (c->t.tls) {
            /* one SSL_write for the batch: full-size records, not one per chunk slice */
            g_batch.flat = grow(g_batch.flat, &g_batch.flat_cap, total, 1);
            size_t off = 0;
            for (size_t i = 0; i < k; i++) {
                memcpy(g_batch.flat + off, g_batch.iov[i].base, g_batch.iov[i].len);
                off += g_batch.iov[i].len;
            }
            batch_unref(nrefs);
            if (sp_tls_write(c->ssl, g_batch.flat, off) != 0) {
                out_fail(c, "TLS write failed");
                return;
            }
            flush_tls(c);
            continue;
        }
        size_t done = 0;
        if (c->writes == 0) { /* nothing queued in libuv: order allows a direct write */
            int n = uv_try_write((uv_stream_t *)&c->tcp, g_batch.iov, (unsigned)k);
            if (n > 0) {
                done = (size_t)n;
                o->bytes += done;
                c->relay->bytes_out += done;
            } else if (n < 0 && n != UV_EAGAIN) {
                batch_unref(nrefs);
                out_fail(c, "write failed: %s", uv_strerror(n));
                return;
            }
        }
        if (done < total)
            queue_rest(c, k, hoff, nrefs, total, done);
        else
            batch_unref(nrefs);
    }
}

void sp_push_batch_free(void)
{
    sp_free(g_batch.iov);
    sp_free(g_batch.hdr);
    sp_free(g_batch.hl);
    sp_free(g_batch.refs);
    sp_free(g_batch.flat);
    memset(&g_batch, 0, sizeof(g_batch));
}

static void drop_queue(sp_relay_output_t *o, const char *why);

/* Writes what the socket accepts; what is left over the bounds is dropped (whole GOPs). */
void sp_push_flush(sp_relay_output_t *o)
{
    if (!o->conn)
        return;
    pump(o->conn);
    if (!o->conn || o->q.n == 0)
        return;
    sp_relay_t *r = o->input->relay;
    uint32_t span = sp_tagq_at(&o->q, o->q.n - 1)->ts - sp_tagq_at(&o->q, 0)->ts;
    if (o->q.bytes > r->out_queue_bytes)
        drop_queue(o, "bytes");
    else if (span < 0x80000000u && span > r->out_queue_ms)
        drop_queue(o, "duration");
}

/* ---- the RTMP client's callbacks ---- */

static void start_forwarding(sp_push_conn_t *c)
{
    sp_relay_output_t *o = c->out;
    sp_relay_input_t *in = o->input;
    set_stage(c, ST_FWD);
    o->state = SP_RELAY_OUT_FORWARDING;
    o->last_error[0] = 0;
    o->forwarding_since = sp_mono_ms();
    o->have_base = false;
    o->last_out_ts = 0;
    sp_tagq_clear(&o->q);
    sp_info("relay", "output forwarding", "output=%s input=%s host=%s gop_tags=%zu", o->uid,
            in->uid, c->t.host, in->gop_valid ? in->gop.n : (size_t)0);
    /* metadata and sequence headers first, then the GOP from its keyframe */
    if (in->meta_tag.data)
        sp_tagq_push(&o->q, &in->meta_tag);
    if (in->vseq.data)
        sp_tagq_push(&o->q, &in->vseq);
    if (in->aseq.data)
        sp_tagq_push(&o->q, &in->aseq);
    if (in->gop_valid && in->gop.n > 0) {
        o->have_base = true;
        o->ts_base = sp_tagq_at(&in->gop, 0)->ts;
        for (size_t i = 0; i < in->gop.n; i++)
            sp_tagq_push(&o->q, sp_tagq_at(&in->gop, i));
        o->need_key = false;
    } else {
        o->need_key = in->has_video;
    }
    /* sequence headers/metadata carry timestamp 0 */
    pump(c);
}

static void cl_send(void *ud, const void *p, size_t len)
{
    send_raw(ud, p, len);
}

static void cl_stage(void *ud, sp_rtmp_client_stage_t st)
{
    sp_push_conn_t *c = ud;
    if (st == SP_RTMP_CLIENT_PUBLISHING)
        start_forwarding(c);
    else
        set_stage(c, ST_RTMP + (int)st);
}

static void cl_refused(void *ud, const char *why)
{
    out_fail(ud, "%s", why);
}

static bool cl_alive(void *ud)
{
    sp_push_conn_t *c = ud;
    return !c->closing;
}

static void start_rtmp(sp_push_conn_t *c)
{
    static const sp_rtmp_client_cbs_t cbs = { .send = cl_send, .on_stage = cl_stage,
                                              .on_refused = cl_refused, .alive = cl_alive };
    c->cl = sp_rtmp_client_create(&c->t, &cbs, c);
    sp_rtmp_client_start(c->cl);
}

static void tls_fail(sp_push_conn_t *c)
{
    out_fail(c, "%s", sp_tls_error(c->ssl));
}

static void feed_in(sp_push_conn_t *c, const uint8_t *p, size_t len)
{
    int rc = c->cl ? sp_rtmp_client_input(c->cl, p, len) : SP_EPROTO; /* before C0+C1 */
    if (rc == 0 || c->closing)
        return;
    if (rc == SP_ELIMIT)
        out_fail(c, "destination sent too much data");
    else
        out_fail(c, "protocol error from destination: %s", sp_strerror(rc));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sp_push_conn_t *c = h->data;
    (void)suggested;
    (void)c;
    *buf = uv_buf_init((char *)g_rbuf, sizeof(g_rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sp_push_conn_t *c = s->data;
    (void)buf;
    if (c->closing)
        return;
    if (c->draining) {
        /* Lingering close: our side is shut; discard until the peer closes too, so its
         * last writes (acks) never meet a reset. The drain timeout bounds the wait. */
        if (nread < 0)
            conn_close(c);
        return;
    }
    if (nread < 0) {
        if (c->t.tls && c->stage == ST_TLS)
            tls_fail(c);
        else
            out_fail(c, "destination closed the connection during %s%s%s",
                     stage_name(c->stage), nread == UV_EOF ? "" : ": ",
                     nread == UV_EOF ? "" : uv_strerror((int)nread));
        return;
    }
    if (!c->t.tls) {
        feed_in(c, g_rbuf, (size_t)nread);
        return;
    }
    if (sp_tls_feed(c->ssl, g_rbuf, (size_t)nread) != 0) {
        tls_fail(c);
        return;
    }
    if (c->stage == ST_TLS) {
        int r = sp_tls_handshake(c->ssl);
        flush_tls(c);
        if (r == SP_EAGAIN)
            return;
        if (r != 0) {
            tls_fail(c);
            return;
        }
        sp_debug("relay", "tls established", "host=%s version=%s", c->t.host,
                 sp_tls_version(c->ssl));
        start_rtmp(c);
    }
    uint8_t tmp[16384];
    for (;;) {
        if (c->closing)
            return;
        int r = sp_tls_read(c->ssl, tmp, sizeof(tmp));
        if (r > 0) {
            feed_in(c, tmp, (size_t)r);
            continue;
        }
        if (r == SP_EAGAIN)
            break;
        if (r == SP_ECLOSED)
            out_fail(c, "destination closed the TLS connection");
        else
            tls_fail(c);
        return;
    }
    flush_tls(c);
}

static void on_connected(uv_connect_t *req, int status)
{
    sp_push_conn_t *c = req->data;
    if (c->closing || status == UV_ECANCELED) {
        conn_release(c);
        return;
    }
    if (status < 0) {
        out_fail(c, "connect to %s:%d failed: %s", c->t.host, c->t.port, uv_strerror(status));
        conn_release(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    /* A fixed send buffer (enough for 20 Mbit/s at 200 ms RTT) keeps a stalled
     * destination from hiding megabytes in the kernel: the queue sees the stall. */
    int sndbuf = SNDBUF;
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &sndbuf);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->t.tls) {
        if (sp_tls_create(c->relay->tls_ctx, c->t.host, &c->ssl) != 0) {
            out_fail(c, "TLS is not available");
            conn_release(c);
            return;
        }
        set_stage(c, ST_TLS);
        sp_tls_handshake(c->ssl); /* the ClientHello */
        flush_tls(c);
    } else {
        start_rtmp(c);
    }
    conn_release(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sp_push_conn_t *c = req->data;
    if (c->closing || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        conn_release(c);
        return;
    }
    if (status < 0 || !res) {
        out_fail(c, "cannot resolve %s: %s", c->t.host,
                 status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        conn_release(c);
        return;
    }
    /* Every address the name has now, checked on every connect: one refused address
     * refuses the name (no DNS-rebinding window: the address checked is the one used). */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const char *why = NULL;
        if (sp_dest_addr_allowed(ai->ai_addr, c->relay->allow_private, &why) != 0) {
            char ip[64] = "?";
            if (ai->ai_family == AF_INET6)
                uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
            else if (ai->ai_family == AF_INET)
                uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
            uv_freeaddrinfo(res);
            out_fail(c, "destination address %s is not allowed (%s)", ip, why);
            conn_release(c);
            return;
        }
    }
    set_stage(c, ST_TCP);
    c->creq.data = c;
    c->pending++;
    int rc = (c->relay->connect ? c->relay->connect : uv_tcp_connect)(&c->creq, &c->tcp,
                                                                      res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        c->pending--;
        out_fail(c, "connect to %s:%d failed: %s", c->t.host, c->t.port, uv_strerror(rc));
    }
    conn_release(c);
}

static void on_timer(uv_timer_t *t)
{
    sp_push_conn_t *c = t->data;
    uint64_t now = sp_mono_ms();
    if (c->closing)
        return;
    sp_relay_grid_start(t, on_timer, 1000);
    if (c->draining) {
        if (now - c->drain_since > DRAIN_TIMEOUT_MS)
            conn_close(c); /* the destination does not take the tail: give up */
        return;
    }
    if (c->stage != ST_FWD && now - c->stage_since > CONNECT_TIMEOUT_MS) {
        out_fail(c, "timeout during %s", stage_name(c->stage));
        return;
    }
    if (c->stage == ST_FWD && c->writes && now - c->oldest_write_ms > WRITE_STALL_MS)
        out_fail(c, "destination stalled: no data accepted for %d s", WRITE_STALL_MS / 1000);
}

/* ---- output state machine ---- */

static void on_retry(uv_timer_t *t)
{
    sp_relay_output_t *o = t->data;
    if (o->input->publisher && o->enabled && !o->conn)
        sp_push_start(o);
}

static void schedule_retry(sp_relay_output_t *o)
{
    if (!o->input->publisher || !o->enabled || o->input->relay->stopping)
        return;
    /* a connection that forwarded for a while resets the backoff */
    if (o->forwarding_since && sp_mono_ms() - o->forwarding_since > 30000)
        sp_backoff_reset(&o->backoff);
    o->forwarding_since = 0;
    if (!o->retry) {
        o->retry = sp_malloc(sizeof(*o->retry));
        uv_timer_init(o->input->relay->loop, o->retry);
        o->retry->data = o;
    }
    uint64_t d = sp_backoff_next(&o->backoff);
    sp_debug("relay", "output retry scheduled", "output=%s delay_ms=%llu", o->uid,
             (unsigned long long)d);
    uv_timer_start(o->retry, on_retry, d, 0);
}

void sp_push_start(sp_relay_output_t *o)
{
    sp_relay_t *r = o->input->relay;
    if (o->conn || r->stopping)
        return;
    if (o->retry)
        uv_timer_stop(o->retry);
    if (o->attempts > 0 && o->state == SP_RELAY_OUT_ERROR) {
        o->reconnects++;
        r->reconnects++;
    }
    o->attempts++;
    sp_push_conn_t *c = sp_calloc(1, sizeof(*c));
    c->relay = r;
    c->out = o;
    uv_tcp_init(r->loop, &c->tcp);
    uv_timer_init(r->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->pending = 2;
    c->stage = ST_TCP; /* no resolver request outstanding yet */
    o->conn = c;
    o->state = SP_RELAY_OUT_CONNECTING;
    memset(&o->slate, 0, sizeof(o->slate)); /* a new connection starts on the publisher */
    sp_tagq_clear(&o->q);
    sp_relay_grid_start(&c->timer, on_timer, 1000);
    const char *why = NULL;
    if (sp_rtmp_target_parse(o->url, o->stream_key, &c->t, &why) != 0) {
        out_fail(c, "invalid destination URL (expected rtmp:// or rtmps://host[:port]/app): %s",
                 why ? why : "malformed");
        return;
    }
    if (c->t.tls && !r->tls_ctx) {
        out_fail(c, "TLS is not available");
        return;
    }
    sp_info("relay", "output connecting", "output=%s input=%s host=%s port=%d tls=%d", o->uid,
            o->input->uid, c->t.host, c->t.port, c->t.tls ? 1 : 0);
    set_stage(c, ST_DNS);
    c->gai.data = c;
    c->pending++;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    char port[8];
    snprintf(port, sizeof(port), "%d", c->t.port);
    int rc = (r->resolve ? r->resolve : uv_getaddrinfo)(r->loop, &c->gai, on_resolved, c->t.host,
                                                        port, &hints);
    if (rc != 0) {
        c->pending--;
        c->stage = ST_TCP;
        out_fail(c, "cannot resolve %s: %s", c->t.host, uv_strerror(rc));
    }
}

static void on_drained(uv_shutdown_t *req, int status)
{
    sp_push_conn_t *c = req->data;
    sp_free(req);
    /* Everything is sent and our write side is shut. Wait for the peer's EOF (on_read,
     * draining) or DRAIN_TIMEOUT_MS (on_timer) before closing. */
    if (status < 0)
        conn_close(c);
    conn_release(c);
}

/*
 * Ends a forwarding connection gracefully: writes what is queued, FCUnpublish +
 * deleteStream, TLS close_notify, then a TCP shutdown once everything is sent
 * (or a close after DRAIN_TIMEOUT_MS). Detaches c from its output at once.
 */
static void conn_drain(sp_push_conn_t *c)
{
    sp_relay_output_t *o = c->out;
    if (c->closing)
        return;
    if (c->stage != ST_FWD || !o) {
        conn_close(c);
        return;
    }
    c->draining = true;
    c->drain_since = sp_mono_ms();
    pump(c);
    sp_rtmp_client_unpublish(c->cl);
    if (c->closing)
        return;
    if (c->t.tls) {
        sp_tls_shutdown(c->ssl);
        flush_tls(c);
    }
    o->conn = NULL;
    c->out = NULL;
    uv_shutdown_t *req = sp_malloc(sizeof(*req));
    req->data = c;
    c->pending++;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_drained) != 0) {
        c->pending--;
        sp_free(req);
        conn_close(c);
    }
}

void sp_push_stop(sp_relay_output_t *o, const char *why)
{
    if (o->retry)
        uv_timer_stop(o->retry);
    if (o->conn) {
        sp_info("relay", "output stopped", "output=%s reason=\"%s\" bytes=%llu", o->uid, why,
                (unsigned long long)o->bytes);
        conn_drain(o->conn);
        if (o->conn)
            conn_close(o->conn);
    }
    sp_tagq_clear(&o->q);
    memset(&o->slate, 0, sizeof(o->slate));
    o->state = SP_RELAY_OUT_IDLE;
    o->attempts = 0;
    o->forwarding_since = 0;
    sp_backoff_reset(&o->backoff);
}

static void drop_queue(sp_relay_output_t *o, const char *why)
{
    o->dropped_tags += o->q.n;
    o->input->relay->dropped_tags += o->q.n;
    o->dropped_gops++;
    o->input->relay->dropped_gops++;
    sp_warn("relay", "output queue over limit, dropping to next keyframe",
            "output=%s reason=%s tags=%zu bytes=%zu", o->uid, why, o->q.n, o->q.bytes);
    sp_tagq_clear(&o->q);
    o->need_key = o->input->has_video;
}

/* ---- disconnect protection: the slate and the splices ---- */

#define SPLICE_MIN_STEP_MS 50 /* the first tag after a splice: this much after the last one */

static bool forwarding(const sp_relay_output_t *o)
{
    return o->conn && o->conn->stage == ST_FWD && !o->conn->closing;
}

/* The output timestamp of the last media tag queued (or sent, when nothing is queued). */
static uint32_t out_tail(sp_relay_output_t *o)
{
    for (size_t i = o->q.n; i > 0; i--) {
        const sp_relay_tag_t *t = sp_tagq_at(&o->q, i - 1);
        if (t->type == SP_FLV_TAG_DATA)
            continue;
        if (!o->have_base)
            return 0;
        int32_t d = (int32_t)(t->ts - o->ts_base);
        return d < 0 ? 0 : (uint32_t)d;
    }
    return o->last_out_ts;
}

/* Queues t so that pump (rebase) sends it with output timestamp out_ts. */
static void queue_at(sp_relay_output_t *o, const sp_relay_tag_t *t, uint32_t out_ts)
{
    sp_relay_tag_t q = *t;
    q.ts = out_ts + o->ts_base;
    sp_tagq_push(&o->q, &q);
}

bool sp_push_slate_begin(sp_relay_output_t *o, const sp_slate_t *clip, uint64_t now_ms)
{
    if (!clip || !forwarding(o))
        return false;
    if (!o->have_base) {
        o->have_base = true;
        o->ts_base = 0;
    }
    sp_slate_cursor_t *s = &o->slate;
    if (!s->on) {
        uint32_t start = out_tail(o) + SPLICE_MIN_STEP_MS;
        memset(s, 0, sizeof(*s));
        s->on = true;
        s->clip = clip;
        s->base = start;
        s->start_ms = now_ms;
        /* the clip's own sequence headers first: the destination's decoder needs its SPS/PPS */
        queue_at(o, &clip->vseq, start);
        if (clip->aseq.data)
            queue_at(o, &clip->aseq, start);
    }
    o->need_key = false;
    return true;
}

void sp_push_slate_tick(sp_relay_output_t *o, uint64_t now_ms, uint32_t lead_ms)
{
    sp_slate_cursor_t *s = &o->slate;
    if (!s->on || !forwarding(o))
        return;
    uint64_t el = now_ms > s->start_ms ? now_ms - s->start_ms : 0;
    uint32_t upto = s->base + (uint32_t)(el & 0x7fffffffu) + lead_ms;
    sp_relay_tag_t t;
    while (sp_slate_next(s->clip, s, upto, &t))
        queue_at(o, &t, t.ts);
}

/* The publisher's first keyframe after the slate: its metadata and sequence headers,
 * then the keyframe, continuing the output's timeline by the real time elapsed. */
static void splice_back(sp_relay_output_t *o, const sp_relay_tag_t *key)
{
    sp_relay_input_t *in = o->input;
    sp_slate_cursor_t *s = &o->slate;
    uint32_t target = sp_splice_target(out_tail(o), s->base, s->start_ms, sp_mono_ms(),
                                       SPLICE_MIN_STEP_MS);
    /* out = ts - ts_base: the keyframe lands on target */
    o->ts_base = key->ts - target;
    o->have_base = true;
    sp_info("relay", "output back on the publisher", "output=%s input=%s slate_loops=%u",
            o->uid, in->uid, s->loop);
    memset(s, 0, sizeof(*s));
    if (in->meta_tag.data)
        sp_tagq_push(&o->q, &in->meta_tag);
    if (in->vseq.data)
        queue_at(o, &in->vseq, target);
    if (in->aseq.data)
        queue_at(o, &in->aseq, target);
    o->need_key = false;
    sp_tagq_push(&o->q, key);
}

void sp_push_feed(sp_relay_output_t *o, const sp_relay_tag_t *t)
{
    sp_push_conn_t *c = o->conn;
    if (!c || c->stage != ST_FWD)
        return;
    if (o->slate.on) {
        /* on the slate: the publisher's headers are cached by the input and sent at the splice */
        if (t->type == SP_FLV_TAG_VIDEO && (t->flags & SP_TAG_KEY))
            splice_back(o, t);
        else
            o->dropped_tags += (t->flags & SP_TAG_FRAME) ? 1 : 0;
        return;
    }
    bool is_media = (t->flags & SP_TAG_FRAME) != 0;
    if (o->need_key && is_media) {
        if (t->type == SP_FLV_TAG_VIDEO && (t->flags & SP_TAG_KEY))
            o->need_key = false;
        else {
            o->dropped_tags++;
            return;
        }
    }
    sp_tagq_push(&o->q, t);
    /* written by sp_push_flush once the publisher's read has been processed (batching) */
}

static void free_handle(uv_handle_t *h)
{
    sp_free(h);
}

void sp_push_cleanup(sp_relay_output_t *o)
{
    if (o->conn)
        conn_drain(o->conn);
    if (o->conn)
        conn_close(o->conn);
    if (o->retry) {
        uv_timer_stop(o->retry);
        uv_close((uv_handle_t *)o->retry, free_handle);
        o->retry = NULL;
    }
    sp_tagq_cleanup(&o->q);
}
