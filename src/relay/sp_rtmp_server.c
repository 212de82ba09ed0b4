/*
 * sp_rtmp_server: the relay's RTMP ingest (publishers: ffmpeg, OBS,
 * GStreamer). Handshake with a 10 s timeout, chunk stream with caps, the OBS
 * command order (connect, releaseStream, FCPublish, createStream, publish,
 * FCUnpublish, deleteStream), @setDataFrame onMetaData, and media handed to
 * the live input selected by the stream key (constant-time compare).
 */
#include "relay/sp_relay_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "core/sp_alloc.h"
#include "relay/sp_amf0.h"
#include "core/sp_err.h"
#include "relay/sp_flv.h"
#include "core/sp_log.h"
#include "relay/sp_rtmp_chunk.h"
#include "relay/sp_rtmp_rx.h"
#include "core/sp_time.h"

#define HS_TIMEOUT_MS 10000
#define IDLE_TIMEOUT_MS 30000
#define OUT_CHUNK 4096
#define ACK_WINDOW 2500000
#define MAX_INGEST_CONNS 256
#define READ_BUF (256 * 1024)   /* a read while publishing */
#define HS_READ_BUF (16 * 1024) /* a read before publish */

typedef struct {
    uv_tcp_t tcp;
    sp_relay_t *relay;
    size_t conns;
    int port;
    sp_ingest_conn_t *list;
} server_t;

struct sp_ingest_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    server_t *srv;
    sp_relay_t *relay;
    int open_handles;
    bool closing, shutting;
    bool ticked;            /* publishing: read by the media tick */
    bool quiet;             /* SO_RCVLOWAT set: read (mostly) by the tick only */
    uint64_t publish_ms;
    sp_rtmp_rx_t *rx;       /* handshake, chunk stream, acks (shared with the client side) */
    char app[128];
    bool connected;
    uint32_t stream_id;
    sp_relay_input_t *input;
    uint64_t started_ms, last_media_ms;
    char peer[64];
    sp_ingest_conn_t *next, *prev;
};

typedef struct {
    uv_write_t req;
    char *data;
} wreq_t;

static void conn_close(sp_ingest_conn_t *c, const char *why);
static void tick_leave(sp_ingest_conn_t *c);

static void on_closed(uv_handle_t *h)
{
    sp_ingest_conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    sp_rtmp_rx_free(c->rx);
    if (c->prev)
        c->prev->next = c->next;
    else if (c->srv->list == c)
        c->srv->list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->srv->conns--;
    if (c->srv->conns == 0 && c->srv->tcp.data == NULL)
        sp_free(c->srv);
    sp_free(c);
}

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    (void)status;
    sp_free(w->data);
    sp_free(w);
}

static void send_buf(sp_ingest_conn_t *c, sp_buf_t *b)
{
    if (c->closing || b->len == 0)
        return;
    wreq_t *w = sp_malloc(sizeof(*w));
    size_t len;
    w->data = sp_buf_detach(b, &len);
    uv_buf_t ub = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written) != 0) {
        sp_free(w->data);
        sp_free(w);
    }
}

/*
 * A publishing connection is read by the media tick (sp_rtmp_server_drain)
 * rather than on every segment. From publish until the first keyframe (at most
 * a second) it is still read as data comes, so the input's headers, stats and
 * GOP are there at once; then SO_RCVLOWAT keeps the socket quiet until
 * SP_RELAY_INGEST_LOWAT bytes are buffered, so a typical stream costs one
 * wakeup per tick and a high-bitrate one is still read as fast as it comes.
 */
static void tick_enter(sp_ingest_conn_t *c)
{
    if (c->ticked)
        return;
    c->ticked = true;
    c->publish_ms = sp_mono_ms();
    sp_relay_tick_ref(c->relay);
}

static void go_quiet(sp_ingest_conn_t *c)
{
    uv_os_fd_t fd;
    c->quiet = true;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        int lowat = SP_RELAY_INGEST_LOWAT;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)) != 0)
            sp_debug("rtmp", "SO_RCVLOWAT not set", "peer=%s err=%d", c->peer, errno);
    }
}

static void tick_leave(sp_ingest_conn_t *c)
{
    if (!c->ticked)
        return;
    c->ticked = false;
    sp_relay_tick_unref(c->relay);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sp_ingest_conn_t *c = req->data;
    (void)status;
    sp_free(req);
    conn_close(c, NULL);
}

/* Stops reading, lets queued replies reach the peer, then closes. */
void sp_ingest_kick(sp_ingest_conn_t *c, const char *why)
{
    if (c->closing || c->shutting)
        return;
    c->shutting = true;
    tick_leave(c);
    if (why)
        sp_info("rtmp", "closing publisher", "peer=%s reason=\"%s\"", c->peer, why);
    if (c->input && c->input->publisher == c)
        sp_relay_input_gone(c->input, "client_disconnect");
    c->input = NULL;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_shutdown_t *req = sp_malloc(sizeof(*req));
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        sp_free(req);
        conn_close(c, NULL);
    }
}

static void conn_close(sp_ingest_conn_t *c, const char *why)
{
    if (c->closing)
        return;
    if (why)
        sp_info("rtmp", "publisher connection closed", "peer=%s reason=\"%s\"", c->peer, why);
    c->closing = true;
    tick_leave(c);
    if (c->input && c->input->publisher == c)
        sp_relay_input_gone(c->input, "client_disconnect");
    c->input = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* ---- replies ---- */

static void send_amf(sp_ingest_conn_t *c, uint32_t csid, uint32_t msid, sp_buf_t *amf)
{
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_rtmp_write_msg(&out, OUT_CHUNK, csid, SP_RTMP_MSG_CMD_AMF0, 0, msid, (uint8_t *)amf->p,
                      (uint32_t)amf->len);
    send_buf(c, &out);
    sp_buf_cleanup(&out);
}

static void put_status_obj(sp_buf_t *b, const char *level, const char *code, const char *desc)
{
    sp_amf0_put_object_begin(b);
    sp_amf0_put_key(b, "level");
    sp_amf0_put_cstr(b, level);
    sp_amf0_put_key(b, "code");
    sp_amf0_put_cstr(b, code);
    sp_amf0_put_key(b, "description");
    sp_amf0_put_cstr(b, desc);
    sp_amf0_put_object_end(b);
}

static void send_on_status(sp_ingest_conn_t *c, const char *level, const char *code,
                           const char *desc)
{
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "onStatus");
    sp_amf0_put_number(&b, 0);
    sp_amf0_put_null(&b);
    put_status_obj(&b, level, code, desc);
    send_amf(c, 5, c->stream_id ? c->stream_id : 1, &b);
    sp_buf_cleanup(&b);
}

static void send_result_simple(sp_ingest_conn_t *c, double txn, bool with_number, double num)
{
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "_result");
    sp_amf0_put_number(&b, txn);
    sp_amf0_put_null(&b);
    if (with_number)
        sp_amf0_put_number(&b, num);
    send_amf(c, 3, 0, &b);
    sp_buf_cleanup(&b);
}

static void handle_connect(sp_ingest_conn_t *c, double txn, const sp_amf0_val_t *obj)
{
    sp_str_t app = { 0 };
    if (sp_amf0_as_str(sp_amf0_get(obj, "app"), &app)) {
        size_t n = app.len < sizeof(c->app) - 1 ? app.len : sizeof(c->app) - 1;
        memcpy(c->app, app.p, n);
        c->app[n] = 0;
    }
    c->connected = true;
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_rtmp_write_u32_ctrl(&out, SP_RTMP_MSG_WINDOW_ACK, ACK_WINDOW);
    sp_rtmp_write_peer_bw(&out, ACK_WINDOW, 2);
    sp_rtmp_write_u32_ctrl(&out, SP_RTMP_MSG_SET_CHUNK_SIZE, OUT_CHUNK);
    send_buf(c, &out);
    sp_buf_cleanup(&out);

    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "_result");
    sp_amf0_put_number(&b, txn);
    sp_amf0_put_object_begin(&b);
    sp_amf0_put_key(&b, "fmsVer");
    sp_amf0_put_cstr(&b, "FMS/3,0,1,123");
    sp_amf0_put_key(&b, "capabilities");
    sp_amf0_put_number(&b, 31);
    /* Enhanced RTMP: echo the codecs and capabilities the client offered (we relay them as is) */
    static const char *const ertmp[] = { "fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap",
                                         "capsEx" };
    for (size_t i = 0; i < sizeof(ertmp) / sizeof(ertmp[0]); i++) {
        const sp_amf0_val_t *ev = sp_amf0_get(obj, ertmp[i]);
        if (ev) {
            sp_amf0_put_key(&b, ertmp[i]);
            sp_amf0_put_value(&b, ev);
        }
    }
    sp_amf0_put_object_end(&b);
    sp_amf0_put_object_begin(&b);
    sp_amf0_put_key(&b, "level");
    sp_amf0_put_cstr(&b, "status");
    sp_amf0_put_key(&b, "code");
    sp_amf0_put_cstr(&b, "NetConnection.Connect.Success");
    sp_amf0_put_key(&b, "description");
    sp_amf0_put_cstr(&b, "Connection succeeded.");
    sp_amf0_put_key(&b, "objectEncoding");
    sp_amf0_put_number(&b, 0);
    sp_amf0_put_object_end(&b);
    send_amf(c, 3, 0, &b);
    sp_buf_cleanup(&b);
}

static void handle_publish(sp_ingest_conn_t *c, sp_str_t key)
{
    sp_relay_t *r = c->relay;
    const char *q = memchr(key.p, '?', key.len);
    if (q)
        key.len = (size_t)(q - key.p);
    if (c->input) {
        send_on_status(c, "error", "NetStream.Publish.BadName", "Already publishing");
        return;
    }
    sp_relay_input_t *in = key.len ? sp_relay_find_by_key(r, key.p, key.len) : NULL;
    if (!in) {
        r->ingest_rejected++;
        sp_warn("rtmp", "publish rejected", "peer=%s reason=unknown_stream_key", c->peer);
        send_on_status(c, "error", "NetStream.Publish.BadName", "Unknown stream key");
        sp_ingest_kick(c, NULL);
        return;
    }
    if (!in->enabled) {
        r->ingest_rejected++;
        sp_warn("rtmp", "publish rejected", "peer=%s input=%s reason=input_disabled", c->peer,
                in->uid);
        send_on_status(c, "error", "NetStream.Publish.BadName", "Live input is disabled");
        sp_ingest_kick(c, NULL);
        return;
    }
    if (in->publisher) {
        r->ingest_rejected++;
        sp_warn("rtmp", "publish rejected", "peer=%s input=%s reason=already_publishing",
                c->peer, in->uid);
        send_on_status(c, "error", "NetStream.Publish.BadName",
                       "Stream key is already publishing from another connection");
        sp_ingest_kick(c, NULL);
        return;
    }
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_rtmp_write_user_ctrl(&out, 0 /* StreamBegin */, c->stream_id ? c->stream_id : 1);
    send_buf(c, &out);
    sp_buf_cleanup(&out);
    send_on_status(c, "status", "NetStream.Publish.Start", "Start publishing");
    c->input = in;
    c->last_media_ms = sp_mono_ms();
    sp_info("rtmp", "publish started", "peer=%s input=%s app=%s", c->peer, in->uid, c->app);
    tick_enter(c);
    sp_relay_input_live(in, c);
}

static int handle_command(sp_ingest_conn_t *c, sp_rbuf_t *payload)
{
    sp_amf0_val_t **v = NULL;
    size_t n = 0;
    int rc = sp_amf0_decode_all(payload->data, payload->len, NULL, &v, &n, 16);
    if (rc)
        return rc;
    sp_str_t name;
    double txn = 0;
    if (n < 1 || !sp_amf0_as_str(v[0], &name)) {
        sp_amf0_free_all(v, n);
        return SP_EPROTO;
    }
    if (n >= 2)
        sp_amf0_as_num(v[1], &txn);
    if (sp_str_eq_cstr(name, "connect")) {
        handle_connect(c, txn, n >= 3 ? v[2] : NULL);
    } else if (!c->connected) {
        rc = SP_EPROTO;
    } else if (sp_str_eq_cstr(name, "releaseStream") || sp_str_eq_cstr(name, "FCPublish")) {
        if (txn > 0)
            send_result_simple(c, txn, false, 0);
    } else if (sp_str_eq_cstr(name, "createStream")) {
        c->stream_id = 1;
        send_result_simple(c, txn, true, 1);
    } else if (sp_str_eq_cstr(name, "publish")) {
        sp_str_t key = { 0 };
        if (n >= 4)
            sp_amf0_as_str(v[3], &key);
        handle_publish(c, key);
    } else if (sp_str_eq_cstr(name, "FCUnpublish") || sp_str_eq_cstr(name, "deleteStream") ||
               sp_str_eq_cstr(name, "closeStream")) {
        if (c->input) {
            sp_info("rtmp", "publish ended", "peer=%s input=%s cmd=%.*s", c->peer,
                    c->input->uid, (int)name.len, name.p);
            if (c->input->publisher == c)
                sp_relay_input_unpublished(c->input); /* a deliberate stop: no slate */
            c->input = NULL;
        }
    } else if (sp_str_eq_cstr(name, "play")) {
        send_on_status(c, "error", "NetStream.Play.Failed", "Playback is not supported");
        sp_ingest_kick(c, "play not supported");
    }
    /* other commands (getStreamLength, _checkbw, ...) are ignored */
    sp_amf0_free_all(v, n);
    return rc;
}

static void handle_data(sp_ingest_conn_t *c, sp_rbuf_t *payload)
{
    if (!c->input)
        return;
    sp_amf0_val_t *first = NULL;
    int used = sp_amf0_decode(payload->data, payload->len, NULL, &first);
    if (used <= 0)
        return;
    sp_str_t s;
    if (sp_amf0_as_str(first, &s)) {
        if (sp_str_eq_cstr(s, "@setDataFrame")) {
            sp_amf0_val_t *second = NULL;
            int u2 = sp_amf0_decode(payload->data + used, payload->len - (size_t)used, NULL,
                                    &second);
            sp_str_t s2;
            if (u2 > 0 && sp_amf0_as_str(second, &s2) && sp_str_eq_cstr(s2, "onMetaData"))
                sp_relay_input_metadata(c->input, payload->data + used,
                                        payload->len - (size_t)used);
            sp_amf0_free(second);
        } else if (sp_str_eq_cstr(s, "onMetaData")) {
            sp_relay_input_metadata(c->input, payload->data, payload->len);
        }
    }
    sp_amf0_free(first);
}

static void handle_aggregate(sp_ingest_conn_t *c, uint32_t ts, sp_rbuf_t *payload)
{
    size_t pos = 0;
    bool have_first = false;
    uint32_t first = 0;
    while (c->input && pos < payload->len) {
        sp_flv_tag_hdr_t th;
        if (sp_flv_tag_header(payload->data + pos, payload->len - pos, &th) != 11)
            break;
        pos += 11;
        if (th.size > payload->len - pos)
            break;
        if (!have_first) {
            first = th.timestamp;
            have_first = true;
        }
        if (th.type == SP_FLV_TAG_AUDIO || th.type == SP_FLV_TAG_VIDEO)
            sp_relay_input_media(c->input, th.type, ts + (th.timestamp - first),
                                 sp_rbuf_new(payload->data + pos, th.size));
        pos += th.size + 4;
    }
}

/* Every message but Window Acknowledgement Size and PingRequest (sp_rtmp_rx answers those). */
static int handle_msg(sp_ingest_conn_t *c, sp_rtmp_msg_t *m)
{
    int rc = 0;
    switch (m->type) {
    case SP_RTMP_MSG_CMD_AMF0:
        rc = handle_command(c, m->payload);
        break;
    case SP_RTMP_MSG_CMD_AMF3:
        if (m->payload->len > 0) {
            sp_rbuf_t *sub = sp_rbuf_new(m->payload->data + 1, m->payload->len - 1);
            rc = handle_command(c, sub);
            sp_rbuf_unref(sub);
        }
        break;
    case SP_RTMP_MSG_DATA_AMF0:
        handle_data(c, m->payload);
        break;
    case SP_RTMP_MSG_AUDIO:
    case SP_RTMP_MSG_VIDEO:
        if (c->input) {
            c->last_media_ms = sp_mono_ms();
            sp_relay_input_media(c->input, m->type, m->timestamp, sp_rbuf_ref(m->payload));
            if (!c->quiet && c->ticked && c->input &&
                (c->input->gop_valid || c->last_media_ms - c->publish_ms > 1000))
                go_quiet(c);
        }
        break;
    case SP_RTMP_MSG_AGGREGATE:
        if (c->input) {
            c->last_media_ms = sp_mono_ms();
            handle_aggregate(c, m->timestamp, m->payload);
        }
        break;
    default:
        break;
    }
    return rc;
}

static void rx_send(void *ud, const void *p, size_t len)
{
    sp_ingest_conn_t *c = ud;
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_buf_append(&out, p, len);
    send_buf(c, &out);
    sp_buf_cleanup(&out);
}

static int rx_msg(void *ud, sp_rtmp_msg_t *m)
{
    return handle_msg(ud, m);
}

static bool rx_alive(void *ud)
{
    sp_ingest_conn_t *c = ud;
    return !c->closing && !c->shutting;
}

static void process(sp_ingest_conn_t *c)
{
    int rc = sp_rtmp_rx_process(c->rx);
    /* what this read produced goes out with the media tick's flush */
    if (rc < 0 && !c->closing) {
        sp_warn("rtmp", "protocol error from publisher", "peer=%s err=%s", c->peer,
                sp_err_name(rc));
        if (c->input && c->input->publisher == c)
            sp_relay_input_errored(c->input, "ERR_PROTOCOL", sp_strerror(rc));
        conn_close(c, NULL);
    }
}

/*
 * Reads land at the end of c->in, where the chunk parser reads them: no copy.
 * c->in is capped (an incomplete chunk is at most chunk size or the message
 * cap plus headers); a peer that fills it is cut.
 */
static size_t in_room(sp_ingest_conn_t *c, size_t want, char **at)
{
    sp_buf_t *in = sp_rtmp_rx_buf(c->rx);
    size_t room = in->max - in->len;
    if (want > room)
        want = room;
    if (want == 0 || sp_buf_reserve(in, want) != 0)
        return 0;
    *at = in->p + in->len;
    return want;
}

static void buffer_full(sp_ingest_conn_t *c)
{
    sp_warn("rtmp", "input buffer limit", "peer=%s", c->peer);
    if (c->input && c->input->publisher == c)
        sp_relay_input_errored(c->input, "ERR_PROTOCOL", "input buffer limit exceeded");
    conn_close(c, NULL);
}

static void on_filled(sp_ingest_conn_t *c, size_t n)
{
    sp_buf_t *in = sp_rtmp_rx_buf(c->rx);
    in->len += n;
    in->p[in->len] = '\0';
    process(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sp_ingest_conn_t *c = h->data;
    char *at = NULL;
    (void)suggested;
    size_t n = in_room(c, c->ticked ? READ_BUF : HS_READ_BUF, &at);
    *buf = uv_buf_init(at, (unsigned)n); /* 0 bytes: libuv reports UV_ENOBUFS */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sp_ingest_conn_t *c = s->data;
    (void)buf;
    if (nread == UV_ENOBUFS) {
        buffer_full(c);
        return;
    }
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "eof" : uv_strerror((int)nread));
        return;
    }
    if (nread > 0)
        on_filled(c, (size_t)nread);
}

/* Reads what one publisher has buffered, without waiting (the media tick). */
static void drain(sp_ingest_conn_t *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return;
    for (int i = 0; i < 16 && c->ticked; i++) {
        char *at = NULL;
        size_t room = in_room(c, READ_BUF, &at);
        if (room == 0) {
            buffer_full(c);
            return;
        }
        ssize_t n = recv(fd, at, room, MSG_DONTWAIT);
        if (n > 0) {
            on_filled(c, (size_t)n);
            if ((size_t)n < room)
                return;
        } else if (n == 0) {
            conn_close(c, "eof");
            return;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(c, strerror(errno));
            return;
        }
    }
}

void sp_rtmp_server_drain(sp_relay_t *r)
{
    server_t *srv = r->ingest;
    if (!srv)
        return;
    /* a connection closed here stays listed until its handles close: next stays valid */
    for (sp_ingest_conn_t *c = srv->list; c; c = c->next)
        if (c->ticked && !c->closing && !c->shutting)
            drain(c);
}

static void on_tick(uv_timer_t *t)
{
    sp_ingest_conn_t *c = t->data;
    uint64_t now = sp_mono_ms();
    if (c->closing || c->shutting)
        return;
    sp_relay_grid_start(t, on_tick, 1000);
    if (!sp_rtmp_rx_handshake_done(c->rx) && now - c->started_ms > HS_TIMEOUT_MS) {
        sp_warn("rtmp", "handshake timeout", "peer=%s", c->peer);
        conn_close(c, NULL);
        return;
    }
    if (c->input) {
        sp_relay_input_stats_tick(c->input, now);
        if (now - c->last_media_ms > IDLE_TIMEOUT_MS) {
            sp_warn("rtmp", "publisher idle", "peer=%s input=%s", c->peer, c->input->uid);
            sp_ingest_kick(c, "no media for 30 s");
        }
    } else if (now - c->started_ms > IDLE_TIMEOUT_MS && !c->input) {
        sp_ingest_kick(c, "no publish within 30 s");
    }
}

static void on_conn(uv_stream_t *ls, int status)
{
    server_t *srv = ls->data;
    if (status < 0)
        return;
    sp_ingest_conn_t *c = sp_calloc(1, sizeof(*c));
    c->srv = srv;
    c->relay = srv->relay;
    uv_tcp_init(ls->loop, &c->tcp);
    c->tcp.data = c;
    c->open_handles = 1;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 || srv->relay->stopping ||
        srv->conns >= MAX_INGEST_CONNS) {
        if (srv->conns >= MAX_INGEST_CONNS)
            sp_warn("rtmp", "too many ingest connections", "max=%d", MAX_INGEST_CONNS);
        c->closing = true;
        c->open_handles = 1;
        srv->conns++;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    srv->conns++;
    c->next = srv->list;
    if (srv->list)
        srv->list->prev = c;
    srv->list = c;
    uv_timer_init(ls->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        char ip[48] = "";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    static const sp_rtmp_rx_cbs_t cbs = { .send = rx_send, .on_msg = rx_msg,
                                          .alive = rx_alive };
    c->rx = sp_rtmp_rx_create(SP_RTMP_MAX_MSG_DEFAULT, SP_RTMP_MAX_CSID_DEFAULT, &cbs, c);
    sp_rtmp_rx_start(c->rx, false);
    c->started_ms = sp_mono_ms();
    sp_relay_grid_start(&c->timer, on_tick, 1000);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    sp_debug("rtmp", "ingest connection", "peer=%s", c->peer);
}

static void on_srv_closed(uv_handle_t *h)
{
    server_t *srv = (server_t *)h;
    if (--srv->conns == 0)
        sp_free(srv);
}

static int parse_listen(const char *s, char *host, size_t hcap, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= hcap)
        return SP_EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    if (host[0] == '[') { /* [::1] */
        size_t l = strlen(host);
        memmove(host, host + 1, l);
        if (l >= 2 && host[l - 2] == ']')
            host[l - 2] = 0;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return SP_EINVAL;
    *port = (int)p;
    return 0;
}

int sp_rtmp_server_start(sp_relay_t *r, const char *listen, int *port_out)
{
    char host[256];
    int port = 0, rc;
    struct sockaddr_storage ss;
    if ((rc = parse_listen(listen, host, sizeof(host), &port)))
        return rc;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return SP_EINVAL;
    server_t *srv = sp_calloc(1, sizeof(*srv));
    srv->relay = r;
    uv_tcp_init(r->loop, &srv->tcp);
    srv->tcp.data = srv;
    if ((rc = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&srv->tcp, 128, on_conn)) != 0) {
        sp_error("relay", "rtmp listen failed", "addr=%s err=%s", listen, uv_strerror(rc));
        srv->tcp.data = NULL;
        srv->conns = 1;
        uv_close((uv_handle_t *)&srv->tcp, on_srv_closed);
        return rc;
    }
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &bl);
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *port_out = srv->port;
    r->ingest = srv;
    sp_info("relay", "rtmp listening", "addr=%s:%d", host, srv->port);
    return 0;
}

void sp_rtmp_server_stop(sp_relay_t *r)
{
    server_t *srv = r->ingest;
    if (!srv)
        return;
    r->ingest = NULL;
    srv->tcp.data = NULL; /* marks the server as stopping; freed with the last connection */
    srv->conns++;         /* the listener itself */
    uv_close((uv_handle_t *)&srv->tcp, on_srv_closed);
    for (sp_ingest_conn_t *c = srv->list; c; c = c->next)
        if (!c->closing) {
            if (c->input && c->input->publisher == c)
                sp_relay_input_gone(c->input, "relay_stopping");
            c->input = NULL;
            conn_close(c, "relay stopping");
        }
}
