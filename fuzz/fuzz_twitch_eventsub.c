/*
 * libFuzzer target: the Twitch EventSub session machine (platforms/twitch/eventsub), driven by
 * arbitrary sequences of starts, stops, opens, closes, ticks, subscription results and
 * messages (raw bytes, or the research notes' envelopes with fuzzed ids). Checks invariants:
 * socket ids are never reused, no notification id is delivered twice, timers never point to
 * the past, the sockets held match the state.
 *   input: records [op][arg] ... ; op 3 (raw message) is [3][len][len bytes]
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "platforms/twitch/eventsub.h"

#define TS "2022-10-19T14:56:51.634234626Z"
#define WALL 1666191411634LL /* TS in Unix ms */

static const int close_codes[] = { 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 1000, 1006,
                                   0, -1, 65536, 4999 };

static size_t template_msg(char *buf, size_t cap, uint8_t arg)
{
    int id = arg >> 3;
    switch (arg & 7) {
    case 0:
        return (size_t)snprintf(buf, cap,
            "{\"metadata\":{\"message_id\":\"w%d\",\"message_type\":\"session_welcome\","
            "\"message_timestamp\":\"" TS "\"},\"payload\":{\"session\":{\"id\":\"S%d\","
            "\"status\":\"connected\",\"keepalive_timeout_seconds\":%d}}}", id, id, id * 40);
    case 1:
        return (size_t)snprintf(buf, cap,
            "{\"metadata\":{\"message_id\":\"k%d\",\"message_type\":\"session_keepalive\","
            "\"message_timestamp\":\"" TS "\"},\"payload\":{}}", id);
    case 2:
        return (size_t)snprintf(buf, cap,
            "{\"metadata\":{\"message_id\":\"r%d\",\"message_type\":\"session_reconnect\","
            "\"message_timestamp\":\"" TS "\"},\"payload\":{\"session\":{\"id\":\"S\","
            "\"reconnect_url\":\"%s\"}}}", id, id & 1 ? "wss://cell.example/ws?x" : "ws://a/b");
    case 3:
        return (size_t)snprintf(buf, cap,
            "{\"metadata\":{\"message_id\":\"v%d\",\"message_type\":\"revocation\","
            "\"message_timestamp\":\"" TS "\",\"subscription_type\":\"channel.%s\"},"
            "\"payload\":{\"subscription\":{\"status\":\"%s\"}}}", id,
            id & 1 ? "follow" : "cheer", id & 2 ? "authorization_revoked" : "user_removed");
    default:
        return (size_t)snprintf(buf, cap,
            "{\"metadata\":{\"message_id\":\"n%d\",\"message_type\":\"notification\","
            "\"message_timestamp\":\"%s\",\"subscription_type\":\"channel.follow\"},"
            "\"payload\":{\"event\":{\"user_id\":\"%d\"}}}", id,
            (arg & 7) == 7 ? "2000-01-01T00:00:00Z" : TS, id);
    }
}

static char delivered[64][SP_TWITCH_ES_ID_MAX];
static size_t ndelivered;

static void check(const sp_twitch_es_t *es, const sp_twitch_es_result_t *r, int64_t now,
                  uint32_t *max_sock)
{
    if (r->n > SP_TWITCH_ES_MAX_ACTIONS) __builtin_trap();
    for (size_t i = 0; i < r->n; i++) {
        const sp_twitch_es_action_t *a = &r->a[i];
        switch (a->type) {
        case SP_TWITCH_ES_A_CONNECT:
            if (a->sock <= *max_sock || a->url == NULL) __builtin_trap(); /* never reused */
            *max_sock = a->sock;
            break;
        case SP_TWITCH_ES_A_DELIVER:
            if (a->message_id == NULL || a->event == NULL || a->sub_type == NULL)
                __builtin_trap();
            for (size_t k = 0; k < ndelivered && k < 64; k++)
                if (strcmp(delivered[k], a->message_id) == 0) __builtin_trap(); /* twice */
            snprintf(delivered[ndelivered % 64], SP_TWITCH_ES_ID_MAX, "%s", a->message_id);
            ndelivered++;
            break;
        case SP_TWITCH_ES_A_ARM_TIMER:
        case SP_TWITCH_ES_A_RECONNECT_LATER:
            if (a->at_ms < now) __builtin_trap();
            break;
        case SP_TWITCH_ES_A_STATUS:
        case SP_TWITCH_ES_A_REVOKED:
            if (a->reason == NULL) __builtin_trap();
            break;
        case SP_TWITCH_ES_A_CREATE_SUBS:
            if (a->session_id == NULL || a->session_id[0] == '\0') __builtin_trap();
            break;
        default:
            break;
        }
    }
    switch (es->state) {
    case SP_TWITCH_ES_IDLE:
    case SP_TWITCH_ES_CLOSED:
    case SP_TWITCH_ES_FAILED:
    case SP_TWITCH_ES_BACKOFF:
        if (es->cur != 0 || es->mig != 0) __builtin_trap();
        break;
    case SP_TWITCH_ES_RECONNECTING:
        if (es->mig == 0) __builtin_trap();
        break;
    default:
        if (es->cur == 0 || es->mig != 0) __builtin_trap();
        break;
    }
    if ((es->active & ~es->want) != 0 && es->state == SP_TWITCH_ES_LIVE) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    sp_twitch_es_t es;
    if (sp_twitch_es_init(&es, (n > 0 && (d[0] & 1)) ? "ws://127.0.0.1:1/ws" : "wss://e/ws", 0,
                          100, 2000) != 0)
        __builtin_trap();
    ndelivered = 0;
    uint32_t max_sock = 0;
    int64_t now = 0;
    char buf[1024];
    size_t i = n > 0 ? 1 : 0;
    for (int steps = 0; i + 1 < n && steps < 400; steps++) {
        uint8_t op = d[i] % 8, arg = d[i + 1];
        i += 2;
        sp_twitch_es_event_t ev = { .now_ms = now, .wall_ms = WALL + (arg & 0x80 ? 700000 : 0) };
        uint32_t sock = arg % 4 == 0 ? es.cur : arg % 4 == 1 ? es.mig : (uint32_t)(arg % 4 + 5);
        switch (op) {
        case 0: ev.type = SP_TWITCH_ES_EV_START; break;
        case 1: ev.type = arg < 16 ? SP_TWITCH_ES_EV_STOP : SP_TWITCH_ES_EV_TICK; break;
        case 2: ev.type = SP_TWITCH_ES_EV_OPENED; ev.sock = sock; break;
        case 3: {
            size_t len = arg;
            if (len > n - i) len = n - i;
            ev.type = SP_TWITCH_ES_EV_MESSAGE;
            ev.sock = es.cur;
            ev.data = (const char *)d + i;
            ev.len = len;
            i += len;
            break;
        }
        case 4:
            ev.type = SP_TWITCH_ES_EV_CLOSED;
            ev.sock = sock;
            ev.close_code = close_codes[(arg >> 2) % (sizeof close_codes / sizeof(int))];
            break;
        case 5:
            now += (int64_t)arg * 250;
            ev.now_ms = now;
            ev.type = SP_TWITCH_ES_EV_TICK;
            break;
        case 6:
            ev.type = SP_TWITCH_ES_EV_SUBS_RESULT;
            ev.sock = sock;
            ev.subs_ok = arg & 0x40 ? SP_TWITCH_SUB_ALL : (unsigned)(arg & 0x3f) * 7u;
            ev.subs_failed = SP_TWITCH_SUB_ALL & ~ev.subs_ok;
            ev.auth_failed = (arg & 0x80) != 0;
            break;
        default: {
            ev.type = SP_TWITCH_ES_EV_MESSAGE;
            ev.sock = (arg & 0x40) && es.mig ? es.mig : es.cur;
            ev.len = template_msg(buf, sizeof buf, arg);
            if (ev.len >= sizeof buf) __builtin_trap();
            ev.data = buf;
            break;
        }
        }
        sp_twitch_es_result_t r = sp_twitch_es_apply(&es, &ev);
        if (r.err != 0 && r.err != SP_EINVAL) __builtin_trap();
        check(&es, &r, now, &max_sock);
    }
    sp_twitch_es_free(&es);
    return 0;
}
