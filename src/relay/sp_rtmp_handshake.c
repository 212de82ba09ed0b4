/* sp_rtmp_handshake: RTMP simple handshake state machines (see header). */
#include "relay/sp_rtmp_handshake.h"

#include <string.h>

#include "core/sp_err.h"

enum { HS_WAIT_C0C1 = 0, HS_WAIT_C2, HS_WAIT_S0S1S2, HS_DONE };

static void fill_s1c1(uint8_t *dst, const uint8_t *rnd)
{
    memset(dst, 0, 8); /* time 0, version 0 (no digest) */
    memcpy(dst + 8, rnd, SP_RTMP_HS_SIZE - 8);
}

void sp_rtmp_hs_server_init(sp_rtmp_hs_t *hs, const uint8_t *rnd)
{
    memset(hs, 0, sizeof(*hs));
    if (rnd)
        memcpy(hs->rnd, rnd, sizeof(hs->rnd));
    hs->state = HS_WAIT_C0C1;
}

void sp_rtmp_hs_client_init(sp_rtmp_hs_t *hs, const uint8_t *rnd)
{
    memset(hs, 0, sizeof(*hs));
    if (rnd)
        memcpy(hs->rnd, rnd, sizeof(hs->rnd));
    hs->is_client = true;
    hs->state = HS_WAIT_S0S1S2;
    hs->out[0] = SP_RTMP_VERSION;
    fill_s1c1(hs->out + 1, hs->rnd);
    hs->out_len = 1 + SP_RTMP_HS_SIZE;
}

/* Accumulates up to need bytes into hs->buf; returns consumed. */
static size_t gather(sp_rtmp_hs_t *hs, const uint8_t *p, size_t len, size_t need)
{
    size_t take = need - hs->have;
    if (take > len)
        take = len;
    memcpy(hs->buf + hs->have, p, take);
    hs->have += take;
    return take;
}

int sp_rtmp_hs_feed(sp_rtmp_hs_t *hs, const uint8_t *p, size_t len)
{
    size_t used = 0;
    while (used < len && hs->state != HS_DONE) {
        switch (hs->state) {
        case HS_WAIT_C0C1:
            used += gather(hs, p + used, len - used, 1 + SP_RTMP_HS_SIZE);
            if (hs->have >= 1 && hs->buf[0] != SP_RTMP_VERSION)
                return SP_EPROTO;
            if (hs->have < 1 + SP_RTMP_HS_SIZE)
                break;
            hs->out[0] = SP_RTMP_VERSION;
            fill_s1c1(hs->out + 1, hs->rnd);
            memcpy(hs->out + 1 + SP_RTMP_HS_SIZE, hs->buf + 1, SP_RTMP_HS_SIZE); /* S2 = C1 */
            hs->out_len = 1 + 2 * SP_RTMP_HS_SIZE;
            hs->have = 0;
            hs->state = HS_WAIT_C2;
            break;
        case HS_WAIT_C2:
            used += gather(hs, p + used, len - used, SP_RTMP_HS_SIZE);
            if (hs->have < SP_RTMP_HS_SIZE)
                break;
            hs->state = HS_DONE;
            hs->done = true;
            break;
        case HS_WAIT_S0S1S2:
            used += gather(hs, p + used, len - used, 1 + 2 * SP_RTMP_HS_SIZE);
            if (hs->have >= 1 && hs->buf[0] != SP_RTMP_VERSION)
                return SP_EPROTO;
            if (hs->have < 1 + 2 * SP_RTMP_HS_SIZE)
                break;
            memcpy(hs->out, hs->buf + 1, SP_RTMP_HS_SIZE); /* C2 = S1 */
            hs->out_len = SP_RTMP_HS_SIZE;
            hs->state = HS_DONE;
            hs->done = true;
            break;
        default:
            return SP_EPROTO;
        }
    }
    return (int)used;
}
