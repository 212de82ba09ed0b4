/*
 * sp_relay_preview: the live input as HTTP-FLV for the dashboard's preview
 * (docs/relay.md "Preview"). GET .../live_inputs/{uid}/preview.flv on the API
 * listener (bearer token like the rest of the API) takes over the connection
 * and writes an FLV stream: header, metadata, sequence headers, the cached GOP,
 * then every tag as it arrives, by reference (no copy, no transcoding).
 *
 * A viewer never slows the publisher or the outputs: bytes queued to its socket
 * are capped (SP_PREVIEW_MAX_QUEUED); over the cap it drops everything until
 * the next video keyframe once the queue has drained to half, as outputs drop
 * GOPs. At most SP_PREVIEW_MAX_VIEWERS per input.
 */
#include "relay/sp_relay_int.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "net/sp_http.h"
#include "relay/sp_flv.h"

#define SP_PREVIEW_MAX_QUEUED (4u * 1024 * 1024)
#define SP_PREVIEW_MAX_VIEWERS 4

typedef struct viewer_s viewer_t;
struct viewer_s {
    sp_relay_input_t *in; /* NULL once detached (closing) */
    uv_tcp_t *tcp;
    sp_http_server_t *srv;
    size_t queued;
    bool need_key;
    bool have_base;
    uint32_t base;
    uint64_t dropped_gops;
    viewer_t *next;
};

typedef struct {
    uv_write_t w;
    viewer_t *v;
    sp_rbuf_t *data; /* NULL: raw holds the bytes */
    size_t n;
    uint8_t hdr[11];
    uint8_t prev[4];
    uint8_t raw[];
} wreq_t;

static void on_closed(uv_handle_t *h)
{
    viewer_t *v = h->data;
    sp_http_server_upgraded_closed(v->srv);
    sp_free(v->tcp);
    sp_free(v);
}

static void detach(viewer_t *v)
{
    if (!v->in)
        return;
    sp_info("relay", "preview viewer left", "input=%s dropped_gops=%llu", v->in->uid,
            (unsigned long long)v->dropped_gops);
    for (viewer_t **pp = (viewer_t **)&v->in->previews; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    v->in = NULL;
    if (!uv_is_closing((uv_handle_t *)v->tcp))
        uv_close((uv_handle_t *)v->tcp, on_closed);
}

static void on_written(uv_write_t *w, int status)
{
    wreq_t *r = (wreq_t *)w;
    viewer_t *v = r->v;
    v->queued -= r->n;
    if (r->data)
        sp_rbuf_unref(r->data);
    sp_free(r);
    if (status < 0 && v->in)
        detach(v);
}

static void write_raw(viewer_t *v, const void *p, size_t n)
{
    wreq_t *r = sp_malloc(sizeof(*r) + n);
    memset(r, 0, sizeof(*r));
    r->v = v;
    r->n = n;
    memcpy(r->raw, p, n);
    uv_buf_t b = uv_buf_init((char *)r->raw, (unsigned)n);
    v->queued += n;
    if (uv_write(&r->w, (uv_stream_t *)v->tcp, &b, 1, on_written) != 0) {
        v->queued -= n;
        sp_free(r);
        detach(v);
    }
}

static void write_tag(viewer_t *v, const sp_relay_tag_t *t, uint32_t ts)
{
    size_t len = t->data->len;
    if (len > 0xFFFFFF)
        return;
    wreq_t *r = sp_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->v = v;
    r->data = sp_rbuf_ref(t->data);
    r->n = 11 + len + 4;
    sp_flv_put_tag_header(r->hdr, t->type, (uint32_t)len, ts);
    uint32_t prev = (uint32_t)(11 + len);
    r->prev[0] = (uint8_t)(prev >> 24);
    r->prev[1] = (uint8_t)(prev >> 16);
    r->prev[2] = (uint8_t)(prev >> 8);
    r->prev[3] = (uint8_t)prev;
    uv_buf_t b[3] = { uv_buf_init((char *)r->hdr, 11),
                      uv_buf_init((char *)t->data->data, (unsigned)len),
                      uv_buf_init((char *)r->prev, 4) };
    v->queued += r->n;
    if (uv_write(&r->w, (uv_stream_t *)v->tcp, b, 3, on_written) != 0) {
        v->queued -= r->n;
        sp_rbuf_unref(r->data);
        sp_free(r);
        detach(v);
    }
}

/* One tag to one viewer, with the drop policy. */
static void viewer_feed(viewer_t *v, const sp_relay_tag_t *t)
{
    if (!(t->flags & SP_TAG_FRAME)) { /* metadata, sequence headers: always (small) */
        write_tag(v, t, v->have_base && t->ts >= v->base ? t->ts - v->base : 0);
        return;
    }
    if (v->queued > SP_PREVIEW_MAX_QUEUED && !v->need_key) {
        v->need_key = true;
        v->dropped_gops++;
    }
    if (v->need_key) {
        if (!(t->flags & SP_TAG_KEY) || v->queued > SP_PREVIEW_MAX_QUEUED / 2)
            return;
        v->need_key = false;
    }
    if (!v->have_base) {
        v->base = t->ts;
        v->have_base = true;
    }
    write_tag(v, t, t->ts >= v->base ? t->ts - v->base : 0);
}

void sp_relay_preview_feed(sp_relay_input_t *in, const sp_relay_tag_t *t)
{
    viewer_t *v = in->previews;
    while (v) {
        viewer_t *next = v->next; /* a failed write detaches v */
        viewer_feed(v, t);
        v = next;
    }
}

void sp_relay_preview_close_all(sp_relay_input_t *in)
{
    while (in->previews)
        detach(in->previews);
}

static size_t preview_count(const sp_relay_input_t *in)
{
    size_t n = 0;
    for (const viewer_t *v = in->previews; v; v = v->next)
        n++;
    return n;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char sink[4096]; /* what a viewer sends is read and dropped */
    *buf = uv_buf_init(sink, sizeof(sink));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    viewer_t *v = s->data;
    if (n < 0 && v->in)
        detach(v);
}

int sp_relay_preview_start(sp_relay_input_t *in, sp_http_req_t *req)
{
    if (!in->publisher)
        return SP_ENOTFOUND;
    if (preview_count(in) >= SP_PREVIEW_MAX_VIEWERS)
        return SP_ELIMIT;
    sp_http_server_t *srv = sp_http_req_server(req);
    sp_buf_t left;
    sp_buf_init(&left, 0);
    uv_tcp_t *tcp = sp_http_req_upgrade(req, &left);
    sp_buf_cleanup(&left);
    if (!tcp)
        return SP_EAGAIN;
    viewer_t *v = sp_calloc(1, sizeof(*v));
    v->in = in;
    v->tcp = tcp;
    v->srv = srv;
    tcp->data = v;
    v->next = in->previews;
    in->previews = v;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n"
                               "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                               "Connection: close\r\n\r\n";
    write_raw(v, head, sizeof(head) - 1);
    uint8_t flv[13] = { 'F', 'L', 'V', 1, 0, 0, 0, 0, 9, 0, 0, 0, 0 };
    flv[4] = (uint8_t)((in->aseq.data || in->st.acodec[0] ? 4 : 0) | (in->has_video ? 1 : 0));
    if (flv[4] == 0)
        flv[4] = 5; /* nothing seen yet: announce both (players wait for what comes) */
    if (v->in)
        write_raw(v, flv, sizeof(flv));
    if (v->in && in->meta_tag.data)
        viewer_feed(v, &in->meta_tag);
    if (v->in && in->vseq.data)
        viewer_feed(v, &in->vseq);
    if (v->in && in->aseq.data)
        viewer_feed(v, &in->aseq);
    if (in->gop_valid) {
        for (size_t i = 0; v->in && i < in->gop.n; i++)
            viewer_feed(v, sp_tagq_at(&in->gop, i));
    } else {
        v->need_key = true;
    }
    if (v->in)
        uv_read_start((uv_stream_t *)tcp, on_alloc, on_read);
    sp_info("relay", "preview viewer", "input=%s viewers=%zu", in->uid,
            preview_count(in));
    return 0;
}
