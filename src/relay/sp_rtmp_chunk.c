/* sp_rtmp_chunk: RTMP chunk stream reader and writer (see header). */
#include "relay/sp_rtmp_chunk.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

struct sp_rtmp_cstream_s {
    uint32_t csid;
    bool seen;          /* has had a fmt 0 header */
    uint32_t timestamp; /* absolute of the current/last message */
    uint32_t delta;     /* last delta (fmt 1/2) */
    uint32_t len;
    uint32_t stream_id;
    uint8_t type;
    bool ext;           /* last header used an extended timestamp */
    sp_rbuf_t *msg;     /* message being assembled (NULL = none) */
    uint32_t got;
};

void sp_rtmp_reader_init(sp_rtmp_reader_t *r, uint32_t max_msg, uint32_t max_csids)
{
    memset(r, 0, sizeof(*r));
    r->chunk_size = SP_RTMP_DEFAULT_CHUNK;
    r->max_msg = max_msg ? max_msg : SP_RTMP_MAX_MSG_DEFAULT;
    r->max_csids = max_csids ? max_csids : SP_RTMP_MAX_CSID_DEFAULT;
    r->cs = sp_calloc(r->max_csids, sizeof(*r->cs));
}

void sp_rtmp_reader_cleanup(sp_rtmp_reader_t *r)
{
    if (!r->cs)
        return;
    for (uint32_t i = 0; i < r->n_cs; i++)
        sp_rbuf_unref(r->cs[i].msg);
    sp_free(r->cs);
    r->cs = NULL;
    r->n_cs = 0;
}

static uint32_t be24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static sp_rtmp_cstream_t *find_cs(sp_rtmp_reader_t *r, uint32_t csid, bool create, int *err)
{
    for (uint32_t i = 0; i < r->n_cs; i++)
        if (r->cs[i].csid == csid)
            return &r->cs[i];
    if (!create) {
        *err = SP_EPROTO;
        return NULL;
    }
    if (r->n_cs >= r->max_csids) {
        *err = SP_ETOOBIG;
        return NULL;
    }
    sp_rtmp_cstream_t *c = &r->cs[r->n_cs++];
    memset(c, 0, sizeof(*c));
    c->csid = csid;
    return c;
}

static void abort_cs(sp_rtmp_reader_t *r, uint32_t csid)
{
    for (uint32_t i = 0; i < r->n_cs; i++)
        if (r->cs[i].csid == csid) {
            sp_rbuf_unref(r->cs[i].msg);
            r->cs[i].msg = NULL;
            r->cs[i].got = 0;
        }
}

int sp_rtmp_reader_feed(sp_rtmp_reader_t *r, const uint8_t *p, size_t len, sp_rtmp_msg_t *msg,
                        bool *have)
{
    static const size_t mh_len[4] = { 11, 7, 3, 0 };
    size_t pos = 0;
    int err = SP_EPROTO;
    *have = false;
    if (len < 1)
        return SP_EAGAIN;
    uint8_t fmt = p[0] >> 6;
    uint32_t csid = p[0] & 0x3f;
    pos = 1;
    if (csid == 0) {
        if (len < 2)
            return SP_EAGAIN;
        csid = 64 + p[1];
        pos = 2;
    } else if (csid == 1) {
        if (len < 3)
            return SP_EAGAIN;
        csid = 64 + p[1] + ((uint32_t)p[2] << 8);
        pos = 3;
    }
    if (len < pos + mh_len[fmt])
        return SP_EAGAIN;
    const uint8_t *mh = p + pos;
    pos += mh_len[fmt];

    /* Look up without creating yet: a truncated chunk must not change state. */
    sp_rtmp_cstream_t *c = NULL;
    for (uint32_t i = 0; i < r->n_cs; i++)
        if (r->cs[i].csid == csid)
            c = &r->cs[i];
    if (!c && fmt != 0)
        return SP_EPROTO; /* fmt 1-3 need a previous header on this csid */
    if (!c && r->n_cs >= r->max_csids)
        return SP_ETOOBIG;

    uint32_t ts_field = 0, mlen = c ? c->len : 0, sid = c ? c->stream_id : 0;
    uint8_t type = c ? c->type : 0;
    bool ext;
    if (fmt <= 2) {
        ts_field = be24(mh);
        ext = ts_field == 0xFFFFFF;
    } else {
        ext = c->ext; /* fmt 3 repeats the extended timestamp if the previous header had one */
    }
    if (fmt <= 1) {
        mlen = be24(mh + 3);
        type = mh[6];
    }
    if (fmt == 0)
        sid = mh[7] | ((uint32_t)mh[8] << 8) | ((uint32_t)mh[9] << 16) | ((uint32_t)mh[10] << 24);
    if (ext) {
        if (len < pos + 4)
            return SP_EAGAIN;
        ts_field = be32(p + pos);
        pos += 4;
    }
    if (mlen > r->max_msg)
        return SP_ETOOBIG;
    bool starting = !c || !c->msg;
    if (starting && fmt != 0 && c && !c->seen)
        return SP_EPROTO;
    if (!starting && fmt != 3)
        return SP_EPROTO; /* a new header in the middle of a message */
    uint32_t got = starting ? 0 : c->got;
    uint32_t want = mlen - got;
    if (want > r->chunk_size)
        want = r->chunk_size;
    if (len < pos + want)
        return SP_EAGAIN;

    /* The whole chunk is here: commit. */
    if (!c) {
        c = find_cs(r, csid, true, &err);
        if (!c)
            return err;
    }
    if (starting) {
        switch (fmt) {
        case 0:
            c->timestamp = ts_field;
            c->delta = 0;
            c->seen = true;
            break;
        case 1:
        case 2:
            c->delta = ts_field;
            c->timestamp += ts_field;
            break;
        default: /* fmt 3 starting a new message: same delta again */
            c->timestamp += c->delta;
            break;
        }
        c->len = mlen;
        c->type = type;
        c->stream_id = sid;
        c->msg = sp_rbuf_new(NULL, mlen);
        c->got = 0;
    }
    c->ext = ext;
    memcpy(c->msg->data + c->got, p + pos, want);
    c->got += want;
    pos += want;
    r->bytes_in += pos;
    if (c->got < c->len)
        return (int)pos;

    msg->type = c->type;
    msg->timestamp = c->timestamp;
    msg->stream_id = c->stream_id;
    msg->csid = c->csid;
    msg->payload = c->msg;
    c->msg = NULL;
    c->got = 0;
    *have = true;

    if (msg->type == SP_RTMP_MSG_SET_CHUNK_SIZE || msg->type == SP_RTMP_MSG_ABORT) {
        if (msg->payload->len < 4 || msg->stream_id != 0) {
            sp_rbuf_unref(msg->payload);
            msg->payload = NULL;
            *have = false;
            return SP_EPROTO;
        }
        uint32_t v = be32(msg->payload->data);
        if (msg->type == SP_RTMP_MSG_SET_CHUNK_SIZE) {
            v &= 0x7fffffff;
            if (v < 1 || v > SP_RTMP_MAX_CHUNK) {
                sp_rbuf_unref(msg->payload);
                msg->payload = NULL;
                *have = false;
                return SP_ETOOBIG;
            }
            r->chunk_size = v;
        } else {
            abort_cs(r, v);
        }
    }
    return (int)pos;
}

/* ---- writer ------------------------------------------------------------------------ */

static size_t basic_hdr(uint8_t *o, uint8_t fmt, uint32_t csid)
{
    if (csid >= 2 && csid <= 63) {
        o[0] = (uint8_t)((fmt << 6) | csid);
        return 1;
    }
    if (csid >= 64 && csid <= 319) {
        o[0] = (uint8_t)(fmt << 6);
        o[1] = (uint8_t)(csid - 64);
        return 2;
    }
    o[0] = (uint8_t)((fmt << 6) | 1);
    o[1] = (uint8_t)((csid - 64) & 0xff);
    o[2] = (uint8_t)((csid - 64) >> 8);
    return 3;
}

static void put_be32(uint8_t *o, uint32_t v)
{
    o[0] = (uint8_t)(v >> 24);
    o[1] = (uint8_t)(v >> 16);
    o[2] = (uint8_t)(v >> 8);
    o[3] = (uint8_t)v;
}

size_t sp_rtmp_chunk_hdr_bound(uint32_t len, uint32_t chunk_size)
{
    size_t n = len == 0 ? 1 : (len + chunk_size - 1) / chunk_size;
    return 3 + 11 + 4 + (n - 1) * (3 + 4);
}

size_t sp_rtmp_chunk_headers(uint8_t *hdr, uint16_t *hlens, uint32_t chunk_size, uint32_t csid,
                             uint8_t type, uint32_t ts, uint32_t msid, uint32_t len)
{
    bool ext = ts >= 0xFFFFFF;
    size_t n = 0, off = 0;
    uint32_t sent = 0;
    do {
        size_t start = off;
        if (n == 0) {
            off += basic_hdr(hdr + off, 0, csid);
            uint32_t t = ext ? 0xFFFFFF : ts;
            hdr[off++] = (uint8_t)(t >> 16);
            hdr[off++] = (uint8_t)(t >> 8);
            hdr[off++] = (uint8_t)t;
            hdr[off++] = (uint8_t)(len >> 16);
            hdr[off++] = (uint8_t)(len >> 8);
            hdr[off++] = (uint8_t)len;
            hdr[off++] = type;
            hdr[off++] = (uint8_t)msid; /* little endian */
            hdr[off++] = (uint8_t)(msid >> 8);
            hdr[off++] = (uint8_t)(msid >> 16);
            hdr[off++] = (uint8_t)(msid >> 24);
        } else {
            off += basic_hdr(hdr + off, 3, csid);
        }
        if (ext) {
            put_be32(hdr + off, ts);
            off += 4;
        }
        hlens[n++] = (uint16_t)(off - start);
        uint32_t take = len - sent < chunk_size ? len - sent : chunk_size;
        sent += take;
    } while (sent < len);
    return n;
}

int sp_rtmp_write_msg(sp_buf_t *out, uint32_t chunk_size, uint32_t csid, uint8_t type,
                      uint32_t ts, uint32_t msid, const uint8_t *payload, uint32_t len)
{
    size_t bound = sp_rtmp_chunk_hdr_bound(len, chunk_size);
    size_t nmax = len == 0 ? 1 : (len + chunk_size - 1) / chunk_size;
    uint8_t *hdr = sp_malloc(bound);
    uint16_t *hl = sp_malloc(nmax * sizeof(*hl));
    int rc = sp_buf_reserve(out, bound + len);
    if (rc == 0) {
        size_t n = sp_rtmp_chunk_headers(hdr, hl, chunk_size, csid, type, ts, msid, len);
        size_t hoff = 0;
        uint32_t sent = 0;
        for (size_t i = 0; i < n; i++) {
            sp_buf_append(out, hdr + hoff, hl[i]);
            hoff += hl[i];
            uint32_t take = len - sent < chunk_size ? len - sent : chunk_size;
            sp_buf_append(out, payload + sent, take);
            sent += take;
        }
    }
    sp_free(hdr);
    sp_free(hl);
    return rc;
}

int sp_rtmp_write_u32_ctrl(sp_buf_t *out, uint8_t type, uint32_t v)
{
    uint8_t b[4];
    put_be32(b, v);
    return sp_rtmp_write_msg(out, 128, 2, type, 0, 0, b, 4);
}

int sp_rtmp_write_peer_bw(sp_buf_t *out, uint32_t window, uint8_t limit)
{
    uint8_t b[5];
    put_be32(b, window);
    b[4] = limit;
    return sp_rtmp_write_msg(out, 128, 2, SP_RTMP_MSG_PEER_BW, 0, 0, b, 5);
}

int sp_rtmp_write_user_ctrl(sp_buf_t *out, uint16_t event, uint32_t v)
{
    uint8_t b[6];
    b[0] = (uint8_t)(event >> 8);
    b[1] = (uint8_t)event;
    put_be32(b + 2, v);
    return sp_rtmp_write_msg(out, 128, 2, SP_RTMP_MSG_USER_CONTROL, 0, 0, b, 6);
}
