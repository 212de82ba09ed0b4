/* sp_rtmp_rx: the shared RTMP reader loop (see sp_rtmp_rx.h). */
#include "relay/sp_rtmp_rx.h"

#include <sodium.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "relay/sp_rtmp_handshake.h"

struct sp_rtmp_rx_s {
    sp_rtmp_rx_cbs_t cbs;
    void *ud;
    sp_rtmp_hs_t *hs;  /* only during the handshake (7.7 KB) */
    bool started, hs_done;
    sp_rtmp_reader_t rd;
    sp_buf_t in;
    uint32_t peer_window;
    uint64_t acked;
};

sp_rtmp_rx_t *sp_rtmp_rx_create(uint32_t max_msg, uint32_t max_csids, const sp_rtmp_rx_cbs_t *cbs,
                                void *ud)
{
    sp_rtmp_rx_t *rx = sp_calloc(1, sizeof(*rx));
    rx->cbs = *cbs;
    rx->ud = ud;
    sp_rtmp_reader_init(&rx->rd, max_msg, max_csids);
    sp_buf_init(&rx->in, (size_t)max_msg + 64);
    return rx;
}

void sp_rtmp_rx_free(sp_rtmp_rx_t *rx)
{
    if (!rx)
        return;
    sp_rtmp_reader_cleanup(&rx->rd);
    sp_buf_cleanup(&rx->in);
    sp_free(rx->hs);
    sp_free(rx);
}

static void send_hs_out(sp_rtmp_rx_t *rx)
{
    if (rx->hs->out_len == 0)
        return;
    size_t n = rx->hs->out_len;
    rx->hs->out_len = 0;
    rx->cbs.send(rx->ud, rx->hs->out, n);
}

void sp_rtmp_rx_start(sp_rtmp_rx_t *rx, bool client)
{
    uint8_t rnd[SP_RTMP_HS_SIZE - 8];
    randombytes_buf(rnd, sizeof(rnd));
    rx->hs = sp_malloc(sizeof(*rx->hs));
    rx->started = true;
    if (client) {
        sp_rtmp_hs_client_init(rx->hs, rnd);
        send_hs_out(rx); /* C0+C1 */
    } else {
        sp_rtmp_hs_server_init(rx->hs, rnd);
    }
}

bool sp_rtmp_rx_handshake_done(const sp_rtmp_rx_t *rx)
{
    return rx->hs_done;
}

sp_buf_t *sp_rtmp_rx_buf(sp_rtmp_rx_t *rx)
{
    return &rx->in;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void send_buf(sp_rtmp_rx_t *rx, sp_buf_t *b)
{
    rx->cbs.send(rx->ud, b->p, b->len);
    sp_buf_cleanup(b);
}

static int handle_msg(sp_rtmp_rx_t *rx, sp_rtmp_msg_t *m)
{
    const uint8_t *p = m->payload->data;
    if (m->type == SP_RTMP_MSG_WINDOW_ACK) {
        if (m->payload->len >= 4)
            rx->peer_window = be32(p);
        return 0;
    }
    if (m->type == SP_RTMP_MSG_USER_CONTROL && m->payload->len >= 6 && p[1] == 6) {
        sp_buf_t out; /* PingRequest -> PingResponse */
        sp_buf_init(&out, 0);
        sp_rtmp_write_user_ctrl(&out, 7, be32(p + 2));
        send_buf(rx, &out);
        return 0;
    }
    return rx->cbs.on_msg(rx->ud, m);
}

/* One step of the handshake; returns bytes consumed or < 0. */
static int hs_step(sp_rtmp_rx_t *rx, const uint8_t *p, size_t len)
{
    int rc = sp_rtmp_hs_feed(rx->hs, p, len);
    if (rc < 0)
        return rc;
    send_hs_out(rx);
    if (rx->hs->done) {
        rx->hs_done = true;
        sp_free(rx->hs);
        rx->hs = NULL;
        if (rx->cbs.on_handshake && rx->cbs.alive(rx->ud)) {
            int hr = rx->cbs.on_handshake(rx->ud);
            if (hr < 0)
                return hr;
        }
    }
    return rc;
}

int sp_rtmp_rx_process(sp_rtmp_rx_t *rx)
{
    size_t pos = 0;
    int rc = 0;
    while (rx->cbs.alive(rx->ud) && pos < rx->in.len) {
        const uint8_t *p = (const uint8_t *)rx->in.p + pos;
        size_t len = rx->in.len - pos;
        if (!rx->hs_done) {
            if (!rx->started) {
                rc = SP_EPROTO; /* bytes before we started the handshake */
                break;
            }
            rc = hs_step(rx, p, len);
            if (rc < 0)
                break;
            pos += (size_t)rc;
            rc = 0;
            continue;
        }
        sp_rtmp_msg_t m;
        bool have = false;
        rc = sp_rtmp_reader_feed(&rx->rd, p, len, &m, &have);
        if (rc == SP_EAGAIN) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        pos += (size_t)rc;
        rc = 0;
        if (have) {
            rc = handle_msg(rx, &m);
            sp_rbuf_unref(m.payload);
            if (rc < 0)
                break;
        }
    }
    sp_buf_consume(&rx->in, pos);
    if (rc < 0 || !rx->cbs.alive(rx->ud))
        return rc;
    if (rx->peer_window && rx->rd.bytes_in - rx->acked >= rx->peer_window) {
        rx->acked = rx->rd.bytes_in;
        sp_buf_t out;
        sp_buf_init(&out, 0);
        sp_rtmp_write_u32_ctrl(&out, SP_RTMP_MSG_ACK, (uint32_t)rx->rd.bytes_in);
        send_buf(rx, &out);
    }
    return 0;
}

int sp_rtmp_rx_feed(sp_rtmp_rx_t *rx, const void *p, size_t len)
{
    if (sp_buf_append(&rx->in, p, len) != 0)
        return SP_ELIMIT;
    return sp_rtmp_rx_process(rx);
}
