/* platforms/twitch/eventsub: every transition of the session machine, with the research
 * notes' envelopes (welcome, keepalive, notification, reconnect, revocation). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_time.h"
#include "platforms/twitch/eventsub.h"

#define BASE "wss://eventsub.wss.twitch.tv/ws"
#define TS "2022-10-19T14:56:51.634234626Z"

static const char WELCOME[] =
    "{\"metadata\":{\"message_id\":\"96a3f3b5-5dec-4eed-908e-e11ee657416c\","
    "\"message_type\":\"session_welcome\",\"message_timestamp\":\"" TS "\"},"
    "\"payload\":{\"session\":{\"id\":\"AQoQILE98gtqShGmLD7AM6yJThAB\",\"status\":\"connected\","
    "\"connected_at\":\"2022-10-19T14:56:51.616329898Z\",\"keepalive_timeout_seconds\":10,"
    "\"reconnect_url\":null,\"recovery_url\":null}}}";

static const char WELCOME2[] =
    "{\"metadata\":{\"message_id\":\"a1\",\"message_type\":\"session_welcome\","
    "\"message_timestamp\":\"" TS "\"},\"payload\":{\"session\":{\"id\":\"AQoQNEWSESSION\","
    "\"status\":\"connected\",\"keepalive_timeout_seconds\":10,\"reconnect_url\":null}}}";

static const char KEEPALIVE[] =
    "{\"metadata\":{\"message_id\":\"8d8e0935-0e0c-479a-8fa2-ad4c02cef742\","
    "\"message_type\":\"session_keepalive\",\"message_timestamp\":\"" TS "\"},\"payload\":{}}";

static const char RECONNECT[] =
    "{\"metadata\":{\"message_id\":\"84c1e79a-2a4b-4c13-ba0b-4312293e9308\","
    "\"message_type\":\"session_reconnect\",\"message_timestamp\":\"" TS "\"},"
    "\"payload\":{\"session\":{\"id\":\"AQoQexAWVYKSTIu4ec_2VAxyuhAB\",\"status\":\"reconnecting\","
    "\"keepalive_timeout_seconds\":null,"
    "\"reconnect_url\":\"wss://cell-a.eventsub.wss.twitch.tv/ws?challenge=c1&id=x\","
    "\"connected_at\":\"2019-11-16T10:11:12.123Z\"}}}";

static int64_t wall0(void)
{
    int64_t ms = 0;
    cr_assert_eq(sp_time_parse_rfc3339(TS, strlen(TS), &ms), 0);
    return ms;
}

/* A notification (channel.follow, the notes' envelope) with its own id and timestamp. */
static const char *notif(const char *id, const char *ts)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"message_id\":\"%s\",\"message_type\":\"notification\","
             "\"message_timestamp\":\"%s\",\"subscription_type\":\"channel.follow\","
             "\"subscription_version\":\"2\"},\"payload\":{\"subscription\":{\"id\":\"f1c2a387\","
             "\"status\":\"enabled\",\"type\":\"channel.follow\",\"version\":\"2\",\"cost\":1,"
             "\"condition\":{\"broadcaster_user_id\":\"12826\"},\"transport\":{\"method\":"
             "\"websocket\",\"session_id\":\"AQoQexAWVYKSTIu4ec_2VAxyuhAB\"},"
             "\"created_at\":\"2019-11-16T10:11:12.123Z\"},\"event\":{\"user_id\":\"1337\","
             "\"user_login\":\"awesome_user\",\"user_name\":\"Awesome_User\","
             "\"broadcaster_user_id\":\"12826\",\"broadcaster_user_login\":\"twitch\","
             "\"broadcaster_user_name\":\"Twitch\","
             "\"followed_at\":\"2020-07-15T18:16:11.17106713Z\"}}}",
             id, ts);
    return buf;
}

static const char *revocation(const char *id, const char *type, const char *status)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"message_id\":\"%s\",\"message_type\":\"revocation\","
             "\"message_timestamp\":\"" TS "\",\"subscription_type\":\"%s\","
             "\"subscription_version\":\"1\"},\"payload\":{\"subscription\":{\"id\":\"f1c2\","
             "\"status\":\"%s\",\"type\":\"%s\",\"version\":\"1\",\"cost\":1,\"condition\":"
             "{\"broadcaster_user_id\":\"12826\"},\"transport\":{\"method\":\"websocket\","
             "\"session_id\":\"AQoQexAWVYKSTIu4ec_2VAxyuhAB\"},"
             "\"created_at\":\"2019-11-16T10:11:12.123Z\"}}}",
             id, type, status, type);
    return buf;
}

static sp_twitch_es_result_t ev(sp_twitch_es_t *es, sp_twitch_es_event_type_t t, uint32_t sock,
                                int64_t now)
{
    sp_twitch_es_event_t e = { .type = t, .sock = sock, .now_ms = now, .wall_ms = wall0() };
    return sp_twitch_es_apply(es, &e);
}

static sp_twitch_es_result_t msg_at(sp_twitch_es_t *es, uint32_t sock, int64_t now, int64_t wall,
                                    const char *text)
{
    sp_twitch_es_event_t e = { .type = SP_TWITCH_ES_EV_MESSAGE, .sock = sock, .now_ms = now,
                               .wall_ms = wall, .data = text, .len = strlen(text) };
    return sp_twitch_es_apply(es, &e);
}

static sp_twitch_es_result_t msg(sp_twitch_es_t *es, uint32_t sock, int64_t now, const char *t)
{
    return msg_at(es, sock, now, wall0() + 1000, t);
}

static sp_twitch_es_result_t closed(sp_twitch_es_t *es, uint32_t sock, int code, int64_t now)
{
    sp_twitch_es_event_t e = { .type = SP_TWITCH_ES_EV_CLOSED, .sock = sock, .now_ms = now,
                               .close_code = code };
    return sp_twitch_es_apply(es, &e);
}

static sp_twitch_es_result_t subs(sp_twitch_es_t *es, uint32_t sock, unsigned ok,
                                  unsigned failed, bool auth, int64_t now)
{
    sp_twitch_es_event_t e = { .type = SP_TWITCH_ES_EV_SUBS_RESULT, .sock = sock, .now_ms = now,
                               .subs_ok = ok, .subs_failed = failed, .auth_failed = auth };
    return sp_twitch_es_apply(es, &e);
}

static const sp_twitch_es_action_t *find(const sp_twitch_es_result_t *r,
                                         sp_twitch_es_action_type_t t)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->a[i].type == t) return &r->a[i];
    return NULL;
}

static size_t count(const sp_twitch_es_result_t *r, sp_twitch_es_action_type_t t)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->a[i].type == t;
    return n;
}

/* START -> OPENED -> welcome -> all subscriptions created: live on socket 1 at t=1000. */
static void go_live(sp_twitch_es_t *es)
{
    cr_assert_eq(sp_twitch_es_init(es, BASE, 0, 0, 0), 0);
    sp_twitch_es_result_t r = ev(es, SP_TWITCH_ES_EV_START, 0, 0);
    const sp_twitch_es_action_t *a = find(&r, SP_TWITCH_ES_A_CONNECT);
    cr_assert_not_null(a);
    cr_assert_eq(a->sock, 1);
    ev(es, SP_TWITCH_ES_EV_OPENED, 1, 100);
    msg(es, 1, 200, WELCOME);
    subs(es, 1, SP_TWITCH_SUB_ALL, 0, false, 900);
    cr_assert_eq(es->state, SP_TWITCH_ES_LIVE);
}

Test(twitch_eventsub, names_and_table)
{
    cr_assert_str_eq(sp_twitch_es_state_name(SP_TWITCH_ES_RECONNECTING), "reconnecting");
    cr_assert_str_eq(sp_twitch_es_state_name((sp_twitch_es_state_t)99), "unknown");
    cr_assert_str_eq(sp_twitch_es_status_name(SP_TWITCH_ES_ST_NEEDS_REAUTH), "needs_reauth");
    cr_assert_str_eq(sp_twitch_es_status_name((sp_twitch_es_status_t)99), "unknown");
    cr_assert_str_eq(sp_twitch_es_close_reason(4003), "connection_unused");
    cr_assert_str_eq(sp_twitch_es_close_reason(4007), "invalid_reconnect");
    cr_assert_str_eq(sp_twitch_es_close_reason(1006), "connection_lost");
    for (int i = 0; i < SP_TWITCH_SUB_COUNT; i++)
        cr_assert_eq(sp_twitch_sub_parse(sp_twitch_sub_type(i)), i);
    cr_assert_str_eq(sp_twitch_sub_version(SP_TWITCH_SUB_FOLLOW), "2");
    cr_assert_str_eq(sp_twitch_sub_version(SP_TWITCH_SUB_CHAT_MESSAGE), "1");
    cr_assert_str_eq(sp_twitch_sub_type(SP_TWITCH_SUB_RESUB), "channel.subscription.message");
    cr_assert_null(sp_twitch_sub_type(SP_TWITCH_SUB_COUNT));
    cr_assert_null(sp_twitch_sub_version(SP_TWITCH_SUB_COUNT));
    cr_assert_eq(sp_twitch_sub_parse("channel.nope"), -1);
    cr_assert_eq(sp_twitch_sub_parse(NULL), -1);
}

Test(twitch_eventsub, init_refuses_bad_urls)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, "https://x", 0, 0, 0), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_init(&es, "wss://", 0, 0, 0), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_init(&es, "wss://a b", 0, 0, 0), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_init(&es, NULL, 0, 0, 0), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 1u << 20, 0, 0), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_init(&es, "ws://127.0.0.1:9/ws", 0, 0, 0), 0);
    cr_assert_eq(es.want, SP_TWITCH_SUB_ALL);
}

Test(twitch_eventsub, happy_path_actions)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    sp_twitch_es_result_t r = ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(es.state, SP_TWITCH_ES_CONNECTING);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_STATUS)->status, SP_TWITCH_ES_ST_CONNECTING);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_CONNECT)->url, BASE);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms, SP_TWITCH_ES_CONNECT_TIMEOUT_MS);

    r = ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 100);
    cr_assert_eq(es.state, SP_TWITCH_ES_AWAITING_WELCOME);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms, 100 + SP_TWITCH_ES_WELCOME_TIMEOUT_MS);

    r = msg(&es, 1, 200, WELCOME);
    cr_assert_eq(es.state, SP_TWITCH_ES_SUBSCRIBING);
    const sp_twitch_es_action_t *a = find(&r, SP_TWITCH_ES_A_CREATE_SUBS);
    cr_assert_not_null(a);
    cr_assert_str_eq(a->session_id, "AQoQILE98gtqShGmLD7AM6yJThAB");
    cr_assert_eq(a->subs, SP_TWITCH_SUB_ALL);
    cr_assert_eq(a->sock, 1);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms,
                 200 + 10000 + SP_TWITCH_ES_KEEPALIVE_MARGIN_MS);

    r = subs(&es, 1, SP_TWITCH_SUB_ALL, 0, false, 900);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    a = find(&r, SP_TWITCH_ES_A_STATUS);
    cr_assert_eq(a->status, SP_TWITCH_ES_ST_CONNECTED);
    cr_assert_str_eq(a->reason, "");
    cr_assert_eq(es.active, SP_TWITCH_SUB_ALL);

    /* keepalives are traffic only */
    r = msg(&es, 1, 5000, KEEPALIVE);
    cr_assert_eq(r.n, 0);
    cr_assert_null(r.note);
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, notification_delivered_once)
{
    sp_twitch_es_t es;
    go_live(&es);
    sp_twitch_es_result_t r = msg(&es, 1, 1000, notif("befa7b53-d79d", TS));
    cr_assert_eq(r.n, 1);
    const sp_twitch_es_action_t *a = find(&r, SP_TWITCH_ES_A_DELIVER);
    cr_assert_not_null(a);
    cr_assert_str_eq(a->message_id, "befa7b53-d79d");
    cr_assert_str_eq(a->sub_type, "channel.follow");
    cr_assert_str_eq(a->sub_version, "2");
    cr_assert_str_eq(json_string_value(json_object_get(a->event, "user_login")), "awesome_user");

    r = msg(&es, 1, 1100, notif("befa7b53-d79d", TS));
    cr_assert_eq(r.n, 0);
    cr_assert_str_eq(r.note, "duplicate");
    r = msg(&es, 1, 1200, notif("other-id", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, stale_and_bad_timestamps_refused)
{
    sp_twitch_es_t es;
    go_live(&es);
    int64_t w = wall0();
    sp_twitch_es_result_t r =
        msg_at(&es, 1, 1000, w + SP_TWITCH_ES_MAX_AGE_MS + 1, notif("old-1", TS));
    cr_assert_eq(r.n, 0);
    cr_assert_str_eq(r.note, "stale");
    /* exactly 10 minutes old is still accepted */
    r = msg_at(&es, 1, 1000, w + SP_TWITCH_ES_MAX_AGE_MS, notif("old-2", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    r = msg(&es, 1, 1000, notif("bad-ts", "yesterday"));
    cr_assert_str_eq(r.note, "bad_timestamp");
    r = msg(&es, 1, 1000, notif("no-ts", ""));
    cr_assert_str_eq(r.note, "bad_timestamp");
    r = msg(&es, 1, 1000, notif("far", "9999-12-31T23:59:59Z"));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1); /* future: accepted (clock skew) */
    r = msg_at(&es, 1, 1000, -5, notif("neg-wall", TS));
    cr_assert_str_eq(r.note, "stale");
    /* a refused stale message is not remembered: the same id, fresh, passes */
    r = msg_at(&es, 1, 1000, w, notif("old-1", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, dedupe_ring_is_bounded)
{
    sp_twitch_es_t es;
    go_live(&es);
    char id[32];
    for (int i = 0; i < SP_TWITCH_ES_DEDUP; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        sp_twitch_es_result_t r = msg(&es, 1, 1000, notif(id, TS));
        cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    }
    sp_twitch_es_result_t r = msg(&es, 1, 1000, notif("id-0", TS));
    cr_assert_str_eq(r.note, "duplicate");
    r = msg(&es, 1, 1000, notif("one-more", TS)); /* evicts id-0 */
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    r = msg(&es, 1, 1000, notif("id-0", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    r = msg(&es, 1, 1000, notif("id-255", TS));
    cr_assert_str_eq(r.note, "duplicate");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, keepalive_timeout_reconnects_fresh)
{
    sp_twitch_es_t es;
    go_live(&es); /* welcome at 200, keepalive 10 s */
    int64_t dl = 200 + 10000 + SP_TWITCH_ES_KEEPALIVE_MARGIN_MS;
    msg(&es, 1, 8000, KEEPALIVE);
    /* the timer fires at the old deadline: traffic moved it, re-armed */
    sp_twitch_es_result_t r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, dl);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms, 8000 + 15000);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);

    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, 8000 + 15000);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CLOSE)->sock, 1);
    const sp_twitch_es_action_t *st = find(&r, SP_TWITCH_ES_A_STATUS);
    cr_assert_eq(st->status, SP_TWITCH_ES_ST_CONNECTING);
    cr_assert_str_eq(st->reason, "keepalive_timeout");
    const sp_twitch_es_action_t *later = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER);
    cr_assert_geq(later->delay_ms, 500);
    cr_assert_leq(later->delay_ms, 1000);
    int64_t at = later->at_ms;
    cr_assert_eq(at, 23000 + (int64_t)later->delay_ms);

    /* too early: re-armed, no connect */
    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, at - 1);
    cr_assert_null(find(&r, SP_TWITCH_ES_A_CONNECT));
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms, at);
    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, at);
    const sp_twitch_es_action_t *c = find(&r, SP_TWITCH_ES_A_CONNECT);
    cr_assert_eq(c->sock, 2);
    cr_assert_str_eq(c->url, BASE);
    /* a late message from socket 1 changes nothing */
    r = msg(&es, 1, at + 1, notif("late", TS));
    cr_assert_str_eq(r.note, "unknown_socket");
    ev(&es, SP_TWITCH_ES_EV_OPENED, 2, at + 10);
    r = msg(&es, 2, at + 20, WELCOME2);
    /* a fresh session: subscriptions are created again */
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_CREATE_SUBS)->session_id, "AQoQNEWSESSION");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, reconnect_migration_no_loss_no_duplicate)
{
    sp_twitch_es_t es;
    go_live(&es);
    sp_twitch_es_result_t r = msg(&es, 1, 2000, RECONNECT);
    cr_assert_eq(es.state, SP_TWITCH_ES_RECONNECTING);
    const sp_twitch_es_action_t *c = find(&r, SP_TWITCH_ES_A_CONNECT);
    cr_assert_eq(c->sock, 2);
    cr_assert_str_eq(c->url, "wss://cell-a.eventsub.wss.twitch.tv/ws?challenge=c1&id=x");
    cr_assert_null(find(&r, SP_TWITCH_ES_A_CLOSE)); /* the old socket stays */
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms,
                 2000 + SP_TWITCH_ES_RECONNECT_GRACE_MS);
    /* a second reconnect message while moving is ignored */
    r = msg(&es, 1, 2050, RECONNECT);
    cr_assert_eq(r.n, 0);

    /* the old socket still delivers */
    r = msg(&es, 1, 2100, notif("n1", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    r = ev(&es, SP_TWITCH_ES_EV_OPENED, 2, 2200);
    cr_assert_eq(r.n, 0);
    r = msg(&es, 2, 2300, WELCOME2);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CLOSE)->sock, 1);
    cr_assert_null(find(&r, SP_TWITCH_ES_A_CREATE_SUBS)); /* subscriptions carried over */
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_STATUS)->status, SP_TWITCH_ES_ST_CONNECTED);
    cr_assert_str_eq(es.session_id, "AQoQNEWSESSION");
    cr_assert_eq(es.cur, 2);
    cr_assert_eq(es.active, SP_TWITCH_SUB_ALL);

    /* the same notification redelivered on the new socket: dropped */
    r = msg(&es, 2, 2400, notif("n1", TS));
    cr_assert_str_eq(r.note, "duplicate");
    r = msg(&es, 2, 2500, notif("n2", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    /* the old socket's late frames and its close are ignored */
    r = msg(&es, 1, 2600, notif("n3", TS));
    cr_assert_str_eq(r.note, "unknown_socket");
    r = closed(&es, 1, 1000, 2700);
    cr_assert_str_eq(r.note, "unknown_socket");
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, reconnect_old_closes_first)
{
    sp_twitch_es_t es;
    go_live(&es);
    msg(&es, 1, 2000, RECONNECT);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 2, 2100);
    sp_twitch_es_result_t r = closed(&es, 1, 4004, 2200);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(es.state, SP_TWITCH_ES_RECONNECTING);
    r = msg(&es, 2, 2300, WELCOME2);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    cr_assert_null(find(&r, SP_TWITCH_ES_A_CLOSE));
    cr_assert_null(find(&r, SP_TWITCH_ES_A_CREATE_SUBS));
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, reconnect_new_socket_fails_4007)
{
    sp_twitch_es_t es;
    go_live(&es);
    msg(&es, 1, 2000, RECONNECT);
    sp_twitch_es_result_t r = closed(&es, 2, 4007, 2100);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CLOSE)->sock, 1);
    const sp_twitch_es_action_t *st = find(&r, SP_TWITCH_ES_A_STATUS);
    cr_assert_eq(st->status, SP_TWITCH_ES_ST_DEGRADED);
    cr_assert_str_eq(st->reason, "close_4007_invalid_reconnect");
    int64_t at = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER)->at_ms;
    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, at);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_CONNECT)->url, BASE); /* from the base url */
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, reconnect_grace_expires)
{
    sp_twitch_es_t es;
    go_live(&es);
    msg(&es, 1, 2000, RECONNECT);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 2, 2100);
    /* notifications on the old socket keep flowing but do not extend the grace */
    msg(&es, 1, 20000, notif("x", TS));
    sp_twitch_es_result_t r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, 31999);
    cr_assert_eq(es.state, SP_TWITCH_ES_RECONNECTING);
    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, 32000);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_CLOSE), 2);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_STATUS)->reason, "reconnect_timeout");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, reconnect_url_checked)
{
    sp_twitch_es_t es;
    go_live(&es);
    const char *down =
        "{\"metadata\":{\"message_id\":\"r2\",\"message_type\":\"session_reconnect\","
        "\"message_timestamp\":\"" TS "\"},\"payload\":{\"session\":{\"id\":\"s\","
        "\"reconnect_url\":\"ws://evil.example/ws\"}}}";
    sp_twitch_es_result_t r = msg(&es, 1, 2000, down);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_STATUS)->reason, "bad_reconnect_url");
    sp_twitch_es_free(&es);

    /* a ws:// base (tests) accepts a ws:// reconnect url */
    cr_assert_eq(sp_twitch_es_init(&es, "ws://127.0.0.1:1/ws", 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    msg(&es, 1, 2, WELCOME);
    subs(&es, 1, SP_TWITCH_SUB_ALL, 0, false, 3);
    r = msg(&es, 1, 4, down);
    cr_assert_eq(es.state, SP_TWITCH_ES_RECONNECTING);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_CONNECT)->url, "ws://evil.example/ws");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, each_close_code)
{
    static const struct {
        int code;
        const char *reason;
        sp_twitch_es_status_t st;
    } cases[] = {
        { 4000, "close_4000_internal_error", SP_TWITCH_ES_ST_CONNECTING },
        { 4001, "close_4001_inbound_traffic", SP_TWITCH_ES_ST_DEGRADED },
        { 4002, "close_4002_failed_ping_pong", SP_TWITCH_ES_ST_CONNECTING },
        { 4003, "close_4003_connection_unused", SP_TWITCH_ES_ST_DEGRADED },
        { 4004, "close_4004_reconnect_grace_expired", SP_TWITCH_ES_ST_CONNECTING },
        { 4005, "close_4005_network_timeout", SP_TWITCH_ES_ST_CONNECTING },
        { 4006, "close_4006_network_error", SP_TWITCH_ES_ST_CONNECTING },
        { 4007, "close_4007_invalid_reconnect", SP_TWITCH_ES_ST_DEGRADED },
        { 1000, "close_1000_client_disconnected", SP_TWITCH_ES_ST_CONNECTING },
        { 1006, "close_1006_connection_lost", SP_TWITCH_ES_ST_CONNECTING },
        { 0, "close_0_connection_lost", SP_TWITCH_ES_ST_CONNECTING },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_twitch_es_t es;
        go_live(&es);
        sp_twitch_es_result_t r = closed(&es, 1, cases[i].code, 5000);
        cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF, "code %d", cases[i].code);
        cr_assert_null(find(&r, SP_TWITCH_ES_A_CLOSE)); /* already closed */
        const sp_twitch_es_action_t *st = find(&r, SP_TWITCH_ES_A_STATUS);
        cr_assert_str_eq(st->reason, cases[i].reason);
        cr_assert_eq(st->status, cases[i].st, "code %d", cases[i].code);
        const sp_twitch_es_action_t *l = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER);
        cr_assert_not_null(l);
        /* every close ends in a fresh session on the base url that re-creates everything */
        r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, l->at_ms);
        cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_CONNECT)->url, BASE);
        uint32_t s = find(&r, SP_TWITCH_ES_A_CONNECT)->sock;
        ev(&es, SP_TWITCH_ES_EV_OPENED, s, l->at_ms + 1);
        r = msg(&es, s, l->at_ms + 2, WELCOME2);
        cr_assert_eq(find(&r, SP_TWITCH_ES_A_CREATE_SUBS)->subs, SP_TWITCH_SUB_ALL);
        sp_twitch_es_free(&es);
    }
}

Test(twitch_eventsub, degraded_after_repeated_failures_and_backoff_grows)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 1000, 8000), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    int64_t now = 0;
    sp_twitch_es_status_t seen[4];
    uint64_t delays[4];
    for (int i = 0; i < 4; i++) {
        uint32_t s = es.cur;
        sp_twitch_es_result_t r = closed(&es, s, 1006, now);
        seen[i] = find(&r, SP_TWITCH_ES_A_STATUS)->status;
        delays[i] = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER)->delay_ms;
        now = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER)->at_ms;
        ev(&es, SP_TWITCH_ES_EV_TICK, 0, now);
        cr_assert_eq(es.state, SP_TWITCH_ES_CONNECTING);
    }
    cr_assert_eq(seen[0], SP_TWITCH_ES_ST_CONNECTING);
    cr_assert_eq(seen[1], SP_TWITCH_ES_ST_CONNECTING);
    cr_assert_eq(seen[2], SP_TWITCH_ES_ST_DEGRADED);
    cr_assert_eq(seen[3], SP_TWITCH_ES_ST_DEGRADED);
    cr_assert_leq(delays[0], 1000);
    cr_assert_leq(delays[3], 8000);
    cr_assert_geq(delays[3], 500);
    /* live again: the backoff starts over */
    ev(&es, SP_TWITCH_ES_EV_OPENED, es.cur, now + 1);
    msg(&es, es.cur, now + 2, WELCOME);
    subs(&es, es.cur, SP_TWITCH_SUB_ALL, 0, false, now + 3);
    cr_assert_eq(es.backoff.attempt, 0);
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, connect_and_welcome_timeouts)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    sp_twitch_es_result_t r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, SP_TWITCH_ES_CONNECT_TIMEOUT_MS);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CLOSE)->sock, 1); /* the attempt is aborted */
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_STATUS)->reason, "connect_timeout");
    int64_t at = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER)->at_ms;
    ev(&es, SP_TWITCH_ES_EV_TICK, 0, at);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 2, at + 1);
    r = msg(&es, 2, at + 2, KEEPALIVE); /* not a welcome: ignored */
    cr_assert_str_eq(r.note, "early");
    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, at + 1 + SP_TWITCH_ES_WELCOME_TIMEOUT_MS);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_STATUS)->reason, "welcome_timeout");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, welcome_checks_and_keepalive_clamp)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    const char *big = "{\"metadata\":{\"message_id\":\"w\",\"message_type\":\"session_welcome\"},"
                      "\"payload\":{\"session\":{\"id\":\"S1\","
                      "\"keepalive_timeout_seconds\":99999999999}}}";
    msg(&es, 1, 10, big);
    cr_assert_eq(es.keepalive_ms, 600000);
    sp_twitch_es_free(&es);

    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    const char *small = "{\"metadata\":{\"message_id\":\"w\",\"message_type\":\"session_welcome\"},"
                        "\"payload\":{\"session\":{\"id\":\"S1\","
                        "\"keepalive_timeout_seconds\":-3}}}";
    msg(&es, 1, 10, small);
    cr_assert_eq(es.keepalive_ms, 10000);
    sp_twitch_es_free(&es);

    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    const char *noid = "{\"metadata\":{\"message_id\":\"w\",\"message_type\":\"session_welcome\"},"
                       "\"payload\":{\"session\":{\"id\":\"bad id\"}}}";
    sp_twitch_es_result_t r = msg(&es, 1, 10, noid);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_STATUS)->reason, "bad_welcome");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, bad_messages_change_nothing)
{
    sp_twitch_es_t es;
    go_live(&es);
    const char *bad[] = {
        "not json",
        "[]",
        "{}",
        "{\"metadata\":{\"message_type\":\"notification\"},\"payload\":{}}",
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":7},\"payload\":{}}",
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"notification\"},\"payload\":1}",
        "{\"metadata\":{\"message_id\":\"a\",\"message_id\":\"b\",\"message_type\":\"x\"},"
        "\"payload\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_twitch_es_result_t r = msg(&es, 1, 1000, bad[i]);
        cr_assert_eq(r.n, 0, "%s", bad[i]);
        cr_assert_str_eq(r.note, "bad_message", "%s", bad[i]);
    }
    /* a notification without a subscription type or without an event */
    const char *notype =
        "{\"metadata\":{\"message_id\":\"nt\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" TS "\"},\"payload\":{\"event\":{}}}";
    cr_assert_str_eq(msg(&es, 1, 1000, notype).note, "bad_message");
    const char *noevent =
        "{\"metadata\":{\"message_id\":\"ne\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" TS "\",\"subscription_type\":\"stream.online\"},"
        "\"payload\":{}}";
    cr_assert_str_eq(msg(&es, 1, 1000, noevent).note, "bad_message");
    const char *future_type =
        "{\"metadata\":{\"message_id\":\"ft\",\"message_type\":\"session_brand_new\","
        "\"message_timestamp\":\"" TS "\"},\"payload\":{}}";
    cr_assert_str_eq(msg(&es, 1, 1000, future_type).note, "unknown_type");
    /* an oversized frame is refused unparsed */
    char *huge = malloc(SP_TWITCH_ES_MAX_MSG + 2);
    memset(huge, ' ', SP_TWITCH_ES_MAX_MSG + 1);
    huge[SP_TWITCH_ES_MAX_MSG + 1] = '\0';
    cr_assert_str_eq(msg(&es, 1, 1000, huge).note, "bad_message");
    free(huge);
    sp_twitch_es_event_t e = { .type = SP_TWITCH_ES_EV_MESSAGE, .sock = 1, .data = NULL };
    cr_assert_str_eq(sp_twitch_es_apply(&es, &e).note, "bad_message");
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    /* a notification for a type we did not ask for is still handed over */
    const char *other =
        "{\"metadata\":{\"message_id\":\"ot\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" TS "\",\"subscription_type\":\"channel.ban\"},"
        "\"payload\":{\"event\":{\"a\":1}}}";
    sp_twitch_es_result_t r = msg(&es, 1, 1000, other);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_DELIVER)->sub_type, "channel.ban");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, revocation_drops_the_type)
{
    sp_twitch_es_t es;
    go_live(&es);
    sp_twitch_es_result_t r = msg(&es, 1, 1000, revocation("rv1", "channel.follow",
                                                           "moderator_removed"));
    const sp_twitch_es_action_t *a = find(&r, SP_TWITCH_ES_A_REVOKED);
    cr_assert_not_null(a);
    cr_assert_str_eq(a->sub_type, "channel.follow");
    cr_assert_str_eq(a->reason, "moderator_removed");
    const sp_twitch_es_action_t *st = find(&r, SP_TWITCH_ES_A_STATUS);
    cr_assert_eq(st->status, SP_TWITCH_ES_ST_DEGRADED);
    cr_assert_str_eq(st->reason, "revoked:channel.follow:moderator_removed");
    cr_assert_eq(es.active & (1u << SP_TWITCH_SUB_FOLLOW), 0);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    /* the same revocation again: a duplicate */
    r = msg(&es, 1, 1000, revocation("rv1", "channel.follow", "moderator_removed"));
    cr_assert_str_eq(r.note, "duplicate");
    /* the next fresh session does not ask for it again */
    r = closed(&es, 1, 4005, 2000);
    int64_t at = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER)->at_ms;
    ev(&es, SP_TWITCH_ES_EV_TICK, 0, at);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 2, at + 1);
    r = msg(&es, 2, at + 2, WELCOME2);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CREATE_SUBS)->subs,
                 SP_TWITCH_SUB_ALL & ~(1u << SP_TWITCH_SUB_FOLLOW));
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, authorization_revoked_needs_reauth)
{
    sp_twitch_es_t es;
    go_live(&es);
    sp_twitch_es_result_t r =
        msg(&es, 1, 1000, revocation("rv2", "channel.cheer", "authorization_revoked"));
    cr_assert_eq(es.state, SP_TWITCH_ES_FAILED);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CLOSE)->sock, 1);
    cr_assert_not_null(find(&r, SP_TWITCH_ES_A_CANCEL_TIMER));
    const sp_twitch_es_action_t *st = find(&r, SP_TWITCH_ES_A_STATUS);
    cr_assert_eq(st->status, SP_TWITCH_ES_ST_NEEDS_REAUTH);
    cr_assert_str_eq(st->reason, "authorization_revoked");
    /* nothing runs any more; START again after re-auth */
    cr_assert_str_eq(ev(&es, SP_TWITCH_ES_EV_TICK, 0, 99999).note, "not_running");
    r = ev(&es, SP_TWITCH_ES_EV_START, 0, 100000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(es.state, SP_TWITCH_ES_CONNECTING);
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, subscription_results)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    msg(&es, 1, 2, WELCOME);
    /* a result for another socket is stale */
    cr_assert_str_eq(subs(&es, 9, SP_TWITCH_SUB_ALL, 0, false, 3).note, "stale_result");
    /* a notification may arrive before the results do */
    sp_twitch_es_result_t r = msg(&es, 1, 4, notif("early-n", TS));
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_DELIVER), 1);
    unsigned ok = SP_TWITCH_SUB_ALL & ~(1u << SP_TWITCH_SUB_CHEER);
    r = subs(&es, 1, ok, 1u << SP_TWITCH_SUB_CHEER, false, 5);
    cr_assert_eq(es.state, SP_TWITCH_ES_LIVE);
    const sp_twitch_es_action_t *st = find(&r, SP_TWITCH_ES_A_STATUS);
    cr_assert_eq(st->status, SP_TWITCH_ES_ST_DEGRADED);
    cr_assert_str_eq(st->reason, "subscription_failed:channel.cheer");
    cr_assert_eq(es.active, ok);
    cr_assert_str_eq(subs(&es, 1, ok, 0, false, 6).note, "stale_result");
    sp_twitch_es_free(&es);

    /* nothing created, 401: needs re-auth */
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    msg(&es, 1, 2, WELCOME);
    r = subs(&es, 1, 0, SP_TWITCH_SUB_ALL, true, 3);
    cr_assert_eq(es.state, SP_TWITCH_ES_FAILED);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_STATUS)->status, SP_TWITCH_ES_ST_NEEDS_REAUTH);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CLOSE)->sock, 1);
    sp_twitch_es_free(&es);

    /* nothing created otherwise (5xx, 429): a new session later, degraded */
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    msg(&es, 1, 2, WELCOME);
    r = subs(&es, 1, 0, SP_TWITCH_SUB_ALL, false, 3);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_STATUS)->status, SP_TWITCH_ES_ST_DEGRADED);
    cr_assert_str_eq(find(&r, SP_TWITCH_ES_A_STATUS)->reason, "subscriptions_failed");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, stop_start_and_unknown_events)
{
    sp_twitch_es_t es;
    go_live(&es);
    sp_twitch_es_result_t r = ev(&es, SP_TWITCH_ES_EV_START, 0, 1000);
    cr_assert_eq(r.err, SP_EINVAL);
    cr_assert_eq(r.n, 0);
    msg(&es, 1, 2000, RECONNECT); /* two sockets open */
    r = ev(&es, SP_TWITCH_ES_EV_STOP, 0, 2100);
    cr_assert_eq(es.state, SP_TWITCH_ES_CLOSED);
    cr_assert_eq(count(&r, SP_TWITCH_ES_A_CLOSE), 2);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_STATUS)->status, SP_TWITCH_ES_ST_STOPPED);
    cr_assert_str_eq(ev(&es, SP_TWITCH_ES_EV_STOP, 0, 2200).note, "not_running");
    cr_assert_str_eq(closed(&es, 1, 1000, 2300).note, "unknown_socket");
    cr_assert_str_eq(ev(&es, SP_TWITCH_ES_EV_OPENED, 2, 2300).note, "unknown_socket");
    sp_twitch_es_event_t bad = { .type = (sp_twitch_es_event_type_t)77 };
    cr_assert_eq(sp_twitch_es_apply(&es, &bad).err, SP_EINVAL);
    sp_twitch_es_event_t clock = { .type = SP_TWITCH_ES_EV_START, .now_ms = -1 };
    cr_assert_str_eq(sp_twitch_es_apply(&es, &clock).note, "bad_clock");
    clock.now_ms = INT64_MAX;
    cr_assert_eq(sp_twitch_es_apply(&es, &clock).err, SP_EINVAL);
    cr_assert_eq(es.state, SP_TWITCH_ES_CLOSED);
    /* restart: a new socket id, never a reused one */
    r = ev(&es, SP_TWITCH_ES_EV_START, 0, 3000);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CONNECT)->sock, 3);
    /* text before OPENED is the caller's bug: ignored */
    cr_assert_str_eq(msg(&es, 3, 3001, WELCOME).note, "early");
    sp_twitch_es_free(&es);
}

Test(twitch_eventsub, subscription_bodies)
{
    sp_twitch_transport_t ws = { .method = "websocket",
                                 .session_id = "AQoQexAWVYKSTIu4ec_2VAxyuhAB" };
    char *body = NULL;
    for (int i = 0; i < SP_TWITCH_SUB_COUNT; i++) {
        cr_assert_eq(sp_twitch_es_sub_body(i, "1337", "1337", &ws, &body), 0);
        json_t *j = json_loads(body, 0, NULL);
        cr_assert_not_null(j);
        cr_assert_str_eq(json_string_value(json_object_get(j, "type")), sp_twitch_sub_type(i));
        cr_assert_str_eq(json_string_value(json_object_get(j, "version")),
                         sp_twitch_sub_version(i));
        json_t *tr = json_object_get(j, "transport");
        cr_assert_str_eq(json_string_value(json_object_get(tr, "method")), "websocket");
        cr_assert_str_eq(json_string_value(json_object_get(tr, "session_id")), ws.session_id);
        json_decref(j);
        free(body);
    }
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_FOLLOW, "1337", "42", &ws, &body), 0);
    cr_assert_str_eq(body, "{\"type\":\"channel.follow\",\"version\":\"2\",\"condition\":"
                           "{\"broadcaster_user_id\":\"1337\",\"moderator_user_id\":\"42\"},"
                           "\"transport\":{\"method\":\"websocket\",\"session_id\":"
                           "\"AQoQexAWVYKSTIu4ec_2VAxyuhAB\"}}");
    free(body);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHAT_MESSAGE, "1971641", "4145994", &ws,
                                       &body), 0);
    cr_assert(strstr(body, "\"condition\":{\"broadcaster_user_id\":\"1971641\","
                           "\"user_id\":\"4145994\"}") != NULL);
    free(body);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_RAID, "1337", "1337", &ws, &body), 0);
    cr_assert(strstr(body, "\"condition\":{\"to_broadcaster_user_id\":\"1337\"}") != NULL);
    free(body);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_ONLINE, "1337", "1337", &ws, &body), 0);
    cr_assert(strstr(body, "\"condition\":{\"broadcaster_user_id\":\"1337\"}") != NULL);
    free(body);

    sp_twitch_transport_t wh = { .method = "webhook",
                                 .callback = "https://sp.example/webhooks/twitch",
                                 .secret = "s3cr3t-s3cr3t" };
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1337", "1337", &wh, &body), 0);
    cr_assert(strstr(body, "\"transport\":{\"method\":\"webhook\",\"callback\":"
                           "\"https://sp.example/webhooks/twitch\",\"secret\":\"s3cr3t-s3cr3t\"}"));
    free(body);

    /* refusals */
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_COUNT, "1", "1", &ws, &body), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "12a", "1", &ws, &body), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "", "1", &ws, &body), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", NULL, &ws, &body), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "123456789012345678901234567890123",
                                       "1", &ws, &body), SP_EINVAL);
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", NULL, &body), SP_EINVAL);
    sp_twitch_transport_t t = ws;
    t.session_id = "has \"quote";
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), SP_EINVAL);
    t.method = "carrier-pigeon";
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), SP_EINVAL);
    t = wh;
    t.callback = "http://127.0.0.1:4000/webhooks/twitch"; /* plain http: allowed (tests, tunnel) */
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), 0);
    cr_assert(strstr(body, "\"callback\":\"http://127.0.0.1:4000/webhooks/twitch\""));
    free(body);
    body = NULL;
    t.callback = "ftp://sp.example/webhooks/twitch";
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), SP_EINVAL);
    t.callback = "sp.example/webhooks/twitch";
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), SP_EINVAL);
    t = wh;
    t.secret = "short";
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), SP_EINVAL);
    t.secret = NULL;
    cr_assert_eq(sp_twitch_es_sub_body(SP_TWITCH_SUB_CHEER, "1", "1", &t, &body), SP_EINVAL);
    cr_assert_null(body);
}

Test(twitch_eventsub, chat_message_notification_from_the_notes)
{
    sp_twitch_es_t es;
    go_live(&es);
    const char *chat =
        "{\"metadata\":{\"message_id\":\"cc-1\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" TS "\",\"subscription_type\":\"channel.chat.message\","
        "\"subscription_version\":\"1\"},\"payload\":{\"subscription\":{\"id\":\"s\","
        "\"type\":\"channel.chat.message\",\"version\":\"1\",\"status\":\"enabled\"},"
        "\"event\":{\"broadcaster_user_id\":\"1971641\",\"broadcaster_user_login\":\"streamer\","
        "\"broadcaster_user_name\":\"streamer\",\"chatter_user_id\":\"4145994\","
        "\"chatter_user_login\":\"viewer32\",\"chatter_user_name\":\"viewer32\","
        "\"message_id\":\"cc106a89-1814-919d-454c-f4f2f970aae7\",\"message\":{\"text\":"
        "\"Hi chat\",\"fragments\":[{\"type\":\"text\",\"text\":\"Hi chat\",\"cheermote\":null,"
        "\"emote\":null,\"mention\":null}]},\"color\":\"#00FF7F\",\"badges\":[{\"set_id\":"
        "\"moderator\",\"id\":\"1\",\"info\":\"\"}],\"message_type\":\"text\",\"cheer\":null,"
        "\"reply\":null,\"channel_points_custom_reward_id\":null}}}";
    sp_twitch_es_result_t r = msg(&es, 1, 1000, chat);
    const sp_twitch_es_action_t *a = find(&r, SP_TWITCH_ES_A_DELIVER);
    cr_assert_not_null(a);
    cr_assert_str_eq(a->sub_type, "channel.chat.message");
    cr_assert_str_eq(a->sub_version, "1");
    json_t *m = json_object_get(a->event, "message");
    cr_assert_str_eq(json_string_value(json_object_get(m, "text")), "Hi chat");
    sp_twitch_es_free(&es);
    cr_assert_null(es.held);
}

Test(twitch_eventsub, close_4003_while_subscribing)
{
    sp_twitch_es_t es;
    cr_assert_eq(sp_twitch_es_init(&es, BASE, 0, 0, 0), 0);
    ev(&es, SP_TWITCH_ES_EV_START, 0, 0);
    ev(&es, SP_TWITCH_ES_EV_OPENED, 1, 1);
    msg(&es, 1, 2, WELCOME);
    /* the Helix calls were too slow: Twitch closes the unused connection */
    sp_twitch_es_result_t r = closed(&es, 1, 4003, 10500);
    cr_assert_eq(es.state, SP_TWITCH_ES_BACKOFF);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_STATUS)->status, SP_TWITCH_ES_ST_DEGRADED);
    /* their late result belongs to a dead session */
    cr_assert_str_eq(subs(&es, 1, SP_TWITCH_SUB_ALL, 0, false, 10600).note, "stale_result");
    int64_t at = find(&r, SP_TWITCH_ES_A_RECONNECT_LATER)->at_ms;
    r = ev(&es, SP_TWITCH_ES_EV_TICK, 0, at);
    uint32_t s = find(&r, SP_TWITCH_ES_A_CONNECT)->sock;
    ev(&es, SP_TWITCH_ES_EV_OPENED, s, at + 1);
    r = msg(&es, s, at + 2, WELCOME2);
    cr_assert_eq(find(&r, SP_TWITCH_ES_A_CREATE_SUBS)->sock, s);
    sp_twitch_es_free(&es);
}
