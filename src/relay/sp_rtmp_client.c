/* sp_rtmp_client: RTMP publish client protocol (see sp_rtmp_client.h). */
#include "relay/sp_rtmp_client.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "net/sp_dest_url.h"
#include "relay/sp_amf0.h"
#include "relay/sp_flv.h"
#include "relay/sp_rtmp_chunk.h"
#include "relay/sp_rtmp_rx.h"

#define MAX_MSG (1u << 20) /* a destination's replies are small */
#define MAX_CSIDS 16

struct sp_rtmp_client_s {
    const sp_rtmp_target_t *t;
    sp_rtmp_client_cbs_t cbs;
    void *ud;
    sp_rtmp_rx_t *rx;
    sp_rtmp_client_stage_t stage;
    uint32_t stream_id;
};

/* ---- target ---- */

int sp_rtmp_target_parse(const char *url, const char *key, sp_rtmp_target_t *t, const char **why)
{
    sp_dest_url_t u;
    memset(t, 0, sizeof(*t));
    int rc = sp_dest_url_parse(url, strlen(url), &u, why);
    if (rc != 0)
        return rc;
    memcpy(t->host, u.host, sizeof(t->host));
    t->port = u.port;
    t->tls = u.tls;
    /* the path as written, after the authority (the parser has vetted it) */
    const char *p = url + (u.tls ? 8 : 7);
    p += strcspn(p, "/?");
    const char *app = *p == '/' ? p + 1 : "";
    size_t al = strlen(app);
    while (al > 0 && app[al - 1] == '/')
        al--;
    *why = "app name too long";
    if (al >= sizeof(t->app))
        return SP_EINVAL;
    memcpy(t->app, app, al);
    t->app[al] = 0;
    *why = "no app and stream key in the path";
    if (key && key[0]) {
        t->key = sp_strdup(key);
    } else {
        char *ls = strrchr(t->app, '/');
        if (!ls)
            return SP_EINVAL;
        t->key = sp_strdup(ls + 1);
        *ls = 0;
    }
    if (!t->app[0])
        return SP_EINVAL;
    *why = NULL;
    bool v6 = strchr(t->host, ':') != NULL;
    snprintf(t->tcurl, sizeof(t->tcurl), "%s://%s%s%s:%d/%s", t->tls ? "rtmps" : "rtmp",
             v6 ? "[" : "", t->host, v6 ? "]" : "", t->port, t->app);
    return 0;
}

void sp_rtmp_target_cleanup(sp_rtmp_target_t *t)
{
    if (t->key) {
        sodium_memzero(t->key, strlen(t->key));
        sp_free(t->key);
    }
    t->key = NULL;
}

/* ---- commands ---- */

static void set_stage(sp_rtmp_client_t *c, sp_rtmp_client_stage_t st)
{
    c->stage = st;
    c->cbs.on_stage(c->ud, st);
}

static void send_buf(sp_rtmp_client_t *c, sp_buf_t *b)
{
    if (b->len && c->cbs.alive(c->ud))
        c->cbs.send(c->ud, b->p, b->len);
    sp_buf_reset(b);
}

static void send_cmd(sp_rtmp_client_t *c, uint32_t msid, sp_buf_t *amf)
{
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_rtmp_write_msg(&out, SP_RTMP_CLIENT_CHUNK, msid ? 8 : 3, SP_RTMP_MSG_CMD_AMF0, 0, msid,
                      (uint8_t *)amf->p, (uint32_t)amf->len);
    send_buf(c, &out);
    sp_buf_cleanup(&out);
    sp_buf_reset(amf);
}

static void send_connect(sp_rtmp_client_t *c)
{
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_rtmp_write_u32_ctrl(&b, SP_RTMP_MSG_SET_CHUNK_SIZE, SP_RTMP_CLIENT_CHUNK);
    send_buf(c, &b);
    sp_amf0_put_cstr(&b, "connect");
    sp_amf0_put_number(&b, 1);
    sp_amf0_put_object_begin(&b);
    sp_amf0_put_key(&b, "app");
    sp_amf0_put_cstr(&b, c->t->app);
    sp_amf0_put_key(&b, "type");
    sp_amf0_put_cstr(&b, "nonprivate");
    sp_amf0_put_key(&b, "flashVer");
    sp_amf0_put_cstr(&b, "FMLE/3.0 (compatible; streampai)");
    sp_amf0_put_key(&b, "tcUrl");
    sp_amf0_put_cstr(&b, c->t->tcurl);
    sp_amf0_put_object_end(&b);
    send_cmd(c, 0, &b);
    sp_buf_cleanup(&b);
    set_stage(c, SP_RTMP_CLIENT_CONNECT);
}

static void refused(sp_rtmp_client_t *c, sp_str_t code, sp_str_t desc)
{
    char why[256];
    snprintf(why, sizeof(why), "destination refused: %.*s %.*s", (int)code.len, code.p,
             (int)desc.len, desc.p);
    c->cbs.on_refused(c->ud, why);
}

static void after_connect(sp_rtmp_client_t *c, sp_buf_t *b)
{
    sp_amf0_put_cstr(b, "releaseStream");
    sp_amf0_put_number(b, 2);
    sp_amf0_put_null(b);
    sp_amf0_put_cstr(b, c->t->key);
    send_cmd(c, 0, b);
    sp_amf0_put_cstr(b, "FCPublish");
    sp_amf0_put_number(b, 3);
    sp_amf0_put_null(b);
    sp_amf0_put_cstr(b, c->t->key);
    send_cmd(c, 0, b);
    sp_amf0_put_cstr(b, "createStream");
    sp_amf0_put_number(b, 4);
    sp_amf0_put_null(b);
    send_cmd(c, 0, b);
    set_stage(c, SP_RTMP_CLIENT_CREATE);
}

static void handle_cmd(sp_rtmp_client_t *c, sp_rbuf_t *payload)
{
    sp_amf0_val_t **v = NULL;
    size_t n = 0;
    if (sp_amf0_decode_all(payload->data, payload->len, NULL, &v, &n, 16) != 0 || n < 2) {
        sp_amf0_free_all(v, n);
        return;
    }
    sp_str_t name = { 0 };
    double txn = 0;
    sp_amf0_as_str(v[0], &name);
    sp_amf0_as_num(v[1], &txn);
    const sp_amf0_val_t *info = n >= 4 ? v[3] : NULL;
    sp_buf_t b;
    sp_buf_init(&b, 0);
    if (sp_str_eq_cstr(name, "_result") && c->stage == SP_RTMP_CLIENT_CONNECT && txn == 1) {
        after_connect(c, &b);
    } else if (sp_str_eq_cstr(name, "_result") && c->stage == SP_RTMP_CLIENT_CREATE && txn == 4) {
        double sid = 1;
        if (n >= 4)
            sp_amf0_as_num(v[3], &sid);
        c->stream_id = sid >= 0 && sid < 1e6 ? (uint32_t)sid : 1;
        sp_amf0_put_cstr(&b, "publish");
        sp_amf0_put_number(&b, 5);
        sp_amf0_put_null(&b);
        sp_amf0_put_cstr(&b, c->t->key);
        sp_amf0_put_cstr(&b, "live");
        send_cmd(c, c->stream_id, &b);
        set_stage(c, SP_RTMP_CLIENT_PUBLISH);
    } else if (sp_str_eq_cstr(name, "_error")) {
        sp_str_t code = { 0 }, desc = { 0 };
        sp_amf0_as_str(sp_amf0_get(info, "code"), &code);
        sp_amf0_as_str(sp_amf0_get(info, "description"), &desc);
        refused(c, code, desc);
    } else if (sp_str_eq_cstr(name, "onStatus")) {
        sp_str_t code = { 0 }, level = { 0 }, desc = { 0 };
        sp_amf0_as_str(sp_amf0_get(info, "code"), &code);
        sp_amf0_as_str(sp_amf0_get(info, "level"), &level);
        sp_amf0_as_str(sp_amf0_get(info, "description"), &desc);
        if (sp_str_eq_cstr(code, "NetStream.Publish.Start") && c->stage == SP_RTMP_CLIENT_PUBLISH)
            set_stage(c, SP_RTMP_CLIENT_PUBLISHING);
        else if (sp_str_eq_cstr(level, "error"))
            refused(c, code, desc);
    }
    /* onBWDone, onFCPublish and others are informational */
    sp_buf_cleanup(&b);
    sp_amf0_free_all(v, n);
}

/* ---- reader callbacks ---- */

static void rx_send(void *ud, const void *p, size_t len)
{
    sp_rtmp_client_t *c = ud;
    if (c->cbs.alive(c->ud))
        c->cbs.send(c->ud, p, len);
}

static int rx_handshake(void *ud)
{
    send_connect(ud);
    return 0;
}

static int rx_msg(void *ud, sp_rtmp_msg_t *m)
{
    if (m->type == SP_RTMP_MSG_CMD_AMF0)
        handle_cmd(ud, m->payload);
    return 0;
}

static bool rx_alive(void *ud)
{
    sp_rtmp_client_t *c = ud;
    return c->cbs.alive(c->ud);
}

sp_rtmp_client_t *sp_rtmp_client_create(const sp_rtmp_target_t *t, const sp_rtmp_client_cbs_t *cbs,
                                        void *ud)
{
    static const sp_rtmp_rx_cbs_t rcbs = { .send = rx_send, .on_handshake = rx_handshake,
                                           .on_msg = rx_msg, .alive = rx_alive };
    sp_rtmp_client_t *c = sp_calloc(1, sizeof(*c));
    c->t = t;
    c->cbs = *cbs;
    c->ud = ud;
    c->rx = sp_rtmp_rx_create(MAX_MSG, MAX_CSIDS, &rcbs, c);
    return c;
}

void sp_rtmp_client_free(sp_rtmp_client_t *c)
{
    if (!c)
        return;
    sp_rtmp_rx_free(c->rx);
    sp_free(c);
}

void sp_rtmp_client_start(sp_rtmp_client_t *c)
{
    set_stage(c, SP_RTMP_CLIENT_HANDSHAKE);
    sp_rtmp_rx_start(c->rx, true);
}

int sp_rtmp_client_input(sp_rtmp_client_t *c, const void *p, size_t len)
{
    return sp_rtmp_rx_feed(c->rx, p, len);
}

sp_rtmp_client_stage_t sp_rtmp_client_stage(const sp_rtmp_client_t *c)
{
    return c->stage;
}

uint32_t sp_rtmp_client_stream_id(const sp_rtmp_client_t *c)
{
    return c->stream_id;
}

void sp_rtmp_client_unpublish(sp_rtmp_client_t *c)
{
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "FCUnpublish");
    sp_amf0_put_number(&b, 6);
    sp_amf0_put_null(&b);
    sp_amf0_put_cstr(&b, c->t->key);
    send_cmd(c, 0, &b);
    sp_amf0_put_cstr(&b, "deleteStream");
    sp_amf0_put_number(&b, 7);
    sp_amf0_put_null(&b);
    sp_amf0_put_number(&b, c->stream_id);
    send_cmd(c, 0, &b);
    sp_buf_cleanup(&b);
}

const char *sp_rtmp_client_stage_name(sp_rtmp_client_stage_t st)
{
    switch (st) {
    case SP_RTMP_CLIENT_HANDSHAKE: return "rtmp handshake";
    case SP_RTMP_CLIENT_CONNECT: return "connect";
    case SP_RTMP_CLIENT_CREATE: return "createStream";
    case SP_RTMP_CLIENT_PUBLISH: return "publish";
    default: return "forwarding";
    }
}

size_t sp_rtmp_client_hdr_bound(uint32_t len)
{
    return sp_rtmp_chunk_hdr_bound(len, SP_RTMP_CLIENT_CHUNK);
}

size_t sp_rtmp_client_tag_headers(uint8_t *hdr, uint16_t *hlens, uint8_t type, uint32_t ts,
                                  uint32_t msid, uint32_t len)
{
    uint32_t csid = type == SP_FLV_TAG_AUDIO ? 4 : type == SP_FLV_TAG_VIDEO ? 6 : 5;
    return sp_rtmp_chunk_headers(hdr, hlens, SP_RTMP_CLIENT_CHUNK, csid, type, ts, msid, len);
}
