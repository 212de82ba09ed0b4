#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "platforms/sp_platform_msg.h"
#include "platforms/twitch/map.h"

/* Event objects as in the EventSub docs fixtures (research notes A.4). */
#define EV_FOLLOW                                                                              \
    "{\"user_id\":\"1337\",\"user_login\":\"awesome_user\",\"user_name\":\"Awesome_User\","   \
    "\"broadcaster_user_id\":\"12826\",\"broadcaster_user_login\":\"twitch\","                 \
    "\"broadcaster_user_name\":\"Twitch\",\"followed_at\":\"2020-07-15T18:16:11.17106713Z\"}"
#define EV_SUB                                                                                 \
    "{\"user_id\":\"1234\",\"user_login\":\"cool_user\",\"user_name\":\"Cool_User\","          \
    "\"broadcaster_user_id\":\"1337\",\"broadcaster_user_login\":\"cooler_user\","             \
    "\"broadcaster_user_name\":\"Cooler_User\",\"tier\":\"1000\",\"is_gift\":false}"
#define EV_GIFT                                                                                \
    "{\"user_id\":\"1234\",\"user_login\":\"cool_user\",\"user_name\":\"Cool_User\","          \
    "\"broadcaster_user_id\":\"1337\",\"broadcaster_user_login\":\"cooler_user\","             \
    "\"broadcaster_user_name\":\"Cooler_User\",\"total\":5,\"tier\":\"2000\","                 \
    "\"cumulative_total\":null,\"is_anonymous\":false}"
#define EV_GIFT_ANON                                                                           \
    "{\"user_id\":null,\"user_login\":null,\"user_name\":null,\"broadcaster_user_id\":\"1337\"," \
    "\"total\":100,\"tier\":\"3000\",\"cumulative_total\":null,\"is_anonymous\":true}"
#define EV_RESUB                                                                               \
    "{\"user_id\":\"1234\",\"user_login\":\"cool_user\",\"user_name\":\"Cool_User\","          \
    "\"broadcaster_user_id\":\"1337\",\"broadcaster_user_login\":\"cooler_user\","             \
    "\"broadcaster_user_name\":\"Cooler_User\",\"tier\":\"1000\",\"message\":{\"text\":"       \
    "\"Love the stream! FevziGG\",\"emotes\":[{\"begin\":23,\"end\":30,\"id\":\"302976485\"}]}," \
    "\"cumulative_months\":15,\"streak_months\":1,\"duration_months\":6}"
#define EV_CHEER                                                                               \
    "{\"is_anonymous\":false,\"user_id\":\"1234\",\"user_login\":\"cool_user\","               \
    "\"user_name\":\"Cool_User\",\"broadcaster_user_id\":\"1337\","                            \
    "\"broadcaster_user_login\":\"cooler_user\",\"broadcaster_user_name\":\"Cooler_User\","    \
    "\"message\":\"pogchamp\",\"bits\":1000}"
#define EV_CHEER_ANON                                                                          \
    "{\"is_anonymous\":true,\"user_id\":null,\"user_login\":null,\"user_name\":null,"          \
    "\"broadcaster_user_id\":\"1337\",\"message\":\"\",\"bits\":100}"
#define EV_RAID                                                                                \
    "{\"from_broadcaster_user_id\":\"1234\",\"from_broadcaster_user_login\":\"cool_user\","    \
    "\"from_broadcaster_user_name\":\"Cool_User\",\"to_broadcaster_user_id\":\"1337\","        \
    "\"to_broadcaster_user_login\":\"cooler_user\",\"to_broadcaster_user_name\":"              \
    "\"Cooler_User\",\"viewers\":9001}"
#define EV_ONLINE                                                                              \
    "{\"id\":\"9001\",\"broadcaster_user_id\":\"1337\",\"broadcaster_user_login\":"            \
    "\"cool_user\",\"broadcaster_user_name\":\"Cool_User\",\"type\":\"live\","                 \
    "\"started_at\":\"2020-10-11T10:11:12.123Z\"}"
#define EV_OFFLINE                                                                             \
    "{\"broadcaster_user_id\":\"1337\",\"broadcaster_user_login\":\"cool_user\","              \
    "\"broadcaster_user_name\":\"Cool_User\"}"
#define EV_CHAT                                                                                \
    "{\"broadcaster_user_id\":\"1971641\",\"broadcaster_user_login\":\"streamer\","            \
    "\"broadcaster_user_name\":\"streamer\",\"chatter_user_id\":\"4145994\","                  \
    "\"chatter_user_login\":\"viewer32\",\"chatter_user_name\":\"viewer32\","                  \
    "\"message_id\":\"cc106a89-1814-919d-454c-f4f2f970aae7\",\"message\":{\"text\":"           \
    "\"Hi chat\",\"fragments\":[{\"type\":\"text\",\"text\":\"Hi chat\",\"cheermote\":null,"   \
    "\"emote\":null,\"mention\":null}]},\"color\":\"#00FF7F\",\"badges\":["                    \
    "{\"set_id\":\"moderator\",\"id\":\"1\",\"info\":\"\"},"                                   \
    "{\"set_id\":\"subscriber\",\"id\":\"12\",\"info\":\"16\"},"                               \
    "{\"set_id\":\"sub-gifter\",\"id\":\"1\",\"info\":\"\"}],\"message_type\":\"text\","       \
    "\"cheer\":null,\"reply\":null,\"channel_points_custom_reward_id\":null,"                  \
    "\"source_broadcaster_user_id\":null,\"source_broadcaster_user_login\":null,"              \
    "\"source_broadcaster_user_name\":null,\"source_message_id\":null,\"source_badges\":null}"

#define MSG_ID "befa7b53-d79d-478f-86b9-120f112b044e"
#define MSG_TS "2023-07-19T14:56:51.634234626Z"
#define MSG_TS_MS 1689778611634LL

#define WS_FMT \
    "{\"metadata\":{\"message_id\":\"" MSG_ID "\",\"message_type\":\"notification\"," \
    "\"message_timestamp\":\"" MSG_TS "\",\"subscription_type\":\"%s\"," \
    "\"subscription_version\":\"1\"},\"payload\":{\"subscription\":{\"id\":" \
    "\"f1c2a387-161a-49f9-a165-0f21d7a4e1c4\",\"status\":\"enabled\",\"type\":\"%s\"," \
    "\"version\":\"1\",\"cost\":0,\"condition\":{\"broadcaster_user_id\":\"1337\"}," \
    "\"transport\":{\"method\":\"websocket\",\"session_id\":\"AQoQexAWVYKSTIu4ec_2VAxyuhAB\"}," \
    "\"created_at\":\"2019-11-16T10:11:12.123Z\"},\"event\":%s}}"

/* A WebSocket notification around an event (a fresh heap string). */
static char *ws(const char *type, const char *event)
{
    size_t n = strlen(WS_FMT) + 2 * strlen(type) + strlen(event) + 1;
    char *s = malloc(n);
    snprintf(s, n, WS_FMT, type, type, event);
    return s;
}

static int map_ws(const char *type, const char *event, sp_twitch_mapped_t *out)
{
    char *s = ws(type, event);
    int rc = sp_twitch_map_notification(s, strlen(s), out);
    free(s);
    return rc;
}

/* The webhook body {subscription, event} with the id and timestamp from headers. */
static int map_hook(const char *type, const char *event, sp_twitch_mapped_t *out)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{\"subscription\":{\"id\":\"f1c2\",\"type\":\"%s\",\"version\":\"1\"},\"event\":%s}",
             type, event);
    return sp_twitch_map_webhook(body, strlen(body), MSG_ID, MSG_TS, out);
}

static char *alert_json(const sp_twitch_mapped_t *m)
{
    cr_assert_eq(m->kind, SP_TWITCH_ALERT);
    json_t *j = sp_alert_to_json(&m->u.alert, 0);
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return s;
}

/* Maps over both transports and checks both give the same alert JSON. */
static void expect_alert(const char *type, const char *event, const char *want)
{
    sp_twitch_mapped_t m;
    cr_assert_eq(map_ws(type, event, &m), 0, "%s", type);
    cr_assert_str_eq(m.message_id, MSG_ID);
    cr_assert_str_eq(m.sub_type, type);
    cr_assert_not_null(m.u.alert.raw);
    char *a = alert_json(&m);
    cr_assert_str_eq(a, want);
    sp_twitch_mapped_clear(&m);
    cr_assert_eq(map_hook(type, event, &m), 0, "%s (webhook)", type);
    char *b = alert_json(&m);
    cr_assert_str_eq(b, a);
    sp_twitch_mapped_clear(&m);
    free(a);
    free(b);
}

Test(twitch_map, follow)
{
    expect_alert("channel.follow", EV_FOLLOW,
                 "{\"id\":\"" MSG_ID "\",\"name\":\"Awesome_User\",\"platform\":\"twitch\","
                 "\"ts\":1594836971171,\"type\":\"follow\"}");
}

Test(twitch_map, subscribe_tiers_and_gift_recipient)
{
    expect_alert("channel.subscribe", EV_SUB,
                 "{\"id\":\"" MSG_ID "\",\"name\":\"Cool_User\",\"platform\":\"twitch\","
                 "\"tier\":1,\"ts\":1689778611634,\"type\":\"subscription\"}");
    sp_twitch_mapped_t m;
    cr_assert_eq(map_ws("channel.subscribe",
                        "{\"user_id\":\"1\",\"user_login\":\"a\",\"user_name\":\"A\","
                        "\"tier\":\"3000\",\"is_gift\":false}", &m), 0);
    cr_assert_eq(m.u.alert.tier, 3);
    sp_twitch_mapped_clear(&m);
    /* a gift's recipient: the gift alert covers it */
    cr_assert_eq(map_ws("channel.subscribe",
                        "{\"user_id\":\"1\",\"user_login\":\"a\",\"user_name\":\"A\","
                        "\"tier\":\"1000\",\"is_gift\":true}", &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_IGNORED);
    cr_assert_str_eq(m.message_id, MSG_ID);
    sp_twitch_mapped_clear(&m);
    /* Prime and unknown tiers */
    cr_assert_eq(map_ws("channel.subscribe", "{\"user_name\":\"A\",\"tier\":\"prime\"}", &m),
                 SP_EPROTO);
    cr_assert_eq(map_ws("channel.subscribe", "{\"user_name\":\"A\",\"tier\":1000}", &m),
                 SP_EPROTO);
    cr_assert_eq(map_ws("channel.subscribe", "{\"user_name\":\"A\"}", &m), SP_EPROTO);
    cr_assert_eq(m.kind, SP_TWITCH_IGNORED);
}

Test(twitch_map, resub_message)
{
    expect_alert("channel.subscription.message", EV_RESUB,
                 "{\"count\":15,\"id\":\"" MSG_ID "\",\"message\":\"Love the stream! FevziGG\","
                 "\"name\":\"Cool_User\",\"platform\":\"twitch\",\"tier\":1,"
                 "\"ts\":1689778611634,\"type\":\"subscription\"}");
}

Test(twitch_map, gift)
{
    expect_alert("channel.subscription.gift", EV_GIFT,
                 "{\"count\":5,\"id\":\"" MSG_ID "\",\"name\":\"Cool_User\","
                 "\"platform\":\"twitch\",\"tier\":2,\"ts\":1689778611634,"
                 "\"type\":\"gift_subscription\"}");
    expect_alert("channel.subscription.gift", EV_GIFT_ANON,
                 "{\"count\":100,\"id\":\"" MSG_ID "\",\"name\":\"Anonymous\","
                 "\"platform\":\"twitch\",\"tier\":3,\"ts\":1689778611634,"
                 "\"type\":\"gift_subscription\"}");
}

Test(twitch_map, cheer)
{
    expect_alert("channel.cheer", EV_CHEER,
                 "{\"amount\":1000,\"currency\":\"bits\",\"id\":\"" MSG_ID "\","
                 "\"message\":\"pogchamp\",\"name\":\"Cool_User\",\"platform\":\"twitch\","
                 "\"ts\":1689778611634,\"type\":\"cheer\"}");
    expect_alert("channel.cheer", EV_CHEER_ANON,
                 "{\"amount\":100,\"currency\":\"bits\",\"id\":\"" MSG_ID "\","
                 "\"name\":\"Anonymous\",\"platform\":\"twitch\",\"ts\":1689778611634,"
                 "\"type\":\"cheer\"}");
}

Test(twitch_map, raid)
{
    expect_alert("channel.raid", EV_RAID,
                 "{\"count\":9001,\"id\":\"" MSG_ID "\",\"name\":\"Cool_User\","
                 "\"platform\":\"twitch\",\"ts\":1689778611634,\"type\":\"raid\"}");
}

Test(twitch_map, stream_online_offline)
{
    sp_twitch_mapped_t m;
    cr_assert_eq(map_ws("stream.online", EV_ONLINE, &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_STREAM_ONLINE);
    cr_assert_str_eq(m.u.stream.stream_id, "9001");
    cr_assert_eq(m.u.stream.started_at, 1602411072123LL);
    sp_twitch_mapped_clear(&m);
    cr_assert_eq(map_hook("stream.offline", EV_OFFLINE, &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_STREAM_OFFLINE);
    cr_assert_eq(m.u.stream.started_at, MSG_TS_MS);
    sp_twitch_mapped_clear(&m);
    cr_assert_eq(map_ws("stream.online", "{\"id\":\"9001\",\"started_at\":\"yesterday\"}", &m),
                 SP_EPROTO);
    cr_assert_eq(map_ws("stream.online", "{\"id\":\"9001\"}", &m), SP_EPROTO);
}

Test(twitch_map, chat_fixture)
{
    sp_twitch_mapped_t m;
    cr_assert_eq(map_ws("channel.chat.message", EV_CHAT, &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_CHAT);
    json_t *j = sp_chat_msg_to_json(&m.u.chat, 0);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(
        s, "{\"author\":{\"badges\":[{\"id\":\"1\",\"set_id\":\"moderator\"},"
           "{\"id\":\"12\",\"set_id\":\"subscriber\"},{\"id\":\"1\",\"set_id\":\"sub-gifter\"}],"
           "\"color\":\"#00FF7F\",\"display_name\":\"viewer32\",\"id\":\"4145994\","
           "\"name\":\"viewer32\"},\"fragments\":[{\"text\":\"Hi chat\",\"type\":\"text\"}],"
           "\"id\":\"cc106a89-1814-919d-454c-f4f2f970aae7\",\"platform\":\"twitch\","
           "\"text\":\"Hi chat\",\"ts\":1689778611634}");
    free(s);
    json_decref(j);
    /* raw keeps the platform ids (the event object) for persistence */
    j = sp_chat_msg_to_json(&m.u.chat, SP_PMSG_RAW);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "raw"),
                                                       "broadcaster_user_id")),
                     "1971641");
    json_decref(j);
    /* the chat id is the chat message's own id, the same over the webhook */
    sp_twitch_mapped_t h;
    cr_assert_eq(map_hook("channel.chat.message", EV_CHAT, &h), 0);
    cr_assert_str_eq(h.u.chat.id, m.u.chat.id);
    sp_twitch_mapped_clear(&h);
    sp_twitch_mapped_clear(&m);
}

Test(twitch_map, chat_emote_mention_cheermote_reply)
{
    const char *ev =
        "{\"chatter_user_id\":\"42\",\"chatter_user_login\":\"bob\",\"chatter_user_name\":"
        "\"Bob\",\"message_id\":\"m-1\",\"color\":\"\",\"badges\":[],\"message\":{\"text\":"
        "\"@alice Kappa cheer100 hi\",\"fragments\":["
        "{\"type\":\"mention\",\"text\":\"@alice\",\"mention\":{\"user_id\":\"7\","
        "\"user_name\":\"Alice\",\"user_login\":\"alice\"}},"
        "{\"type\":\"text\",\"text\":\" \"},"
        "{\"type\":\"emote\",\"text\":\"Kappa\",\"emote\":{\"id\":\"25\",\"emote_set_id\":\"0\","
        "\"owner_id\":\"0\",\"format\":[\"static\"]}},"
        "{\"type\":\"text\",\"text\":\" \"},"
        "{\"type\":\"cheermote\",\"text\":\"cheer100\",\"cheermote\":{\"prefix\":\"cheer\","
        "\"bits\":100,\"tier\":100}},"
        "{\"type\":\"power_up\",\"text\":\" hi\"}]},"
        "\"reply\":{\"parent_message_id\":\"p-9\",\"parent_message_body\":\"yo\","
        "\"parent_user_id\":\"7\",\"parent_user_name\":\"Alice\",\"parent_user_login\":\"alice\","
        "\"thread_message_id\":\"p-9\",\"thread_user_id\":\"7\"}}";
    sp_twitch_mapped_t m;
    cr_assert_eq(map_ws("channel.chat.message", ev, &m), 0);
    const sp_chat_msg_t *c = &m.u.chat;
    cr_assert_eq(c->n_fragments, 6);
    cr_assert_eq(c->fragments[0].type, SP_FRAG_MENTION);
    cr_assert_str_eq(c->fragments[0].text, "@alice");
    cr_assert_eq(c->fragments[2].type, SP_FRAG_EMOTE);
    cr_assert_str_eq(c->fragments[2].emote_url,
                     "https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0");
    cr_assert_eq(c->fragments[4].type, SP_FRAG_TEXT);
    cr_assert_str_eq(c->fragments[4].text, "cheer100");
    cr_assert_eq(c->fragments[5].type, SP_FRAG_TEXT);
    cr_assert_str_eq(c->reply_to, "p-9");
    cr_assert_str_eq(c->author.display_name, "Bob");
    cr_assert_str_eq(c->author.color, "");
    cr_assert_eq(c->author.n_badges, 0);
    sp_twitch_mapped_clear(&m);
}

Test(twitch_map, chat_lenient_cosmetics)
{
    sp_twitch_mapped_t m;
    /* bad colours become "", no fragments give one text fragment, no display name -> login */
    const char *colors[] = { "\"red\"", "\"#GG0000\"", "\"#00FF7F0\"", "5", "null" };
    for (size_t i = 0; i < sizeof colors / sizeof colors[0]; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"chatter_user_id\":\"42\",\"chatter_user_login\":\"bob\","
                 "\"message_id\":\"m-1\",\"color\":%s,\"message\":{\"text\":\"hey\"}}",
                 colors[i]);
        cr_assert_eq(map_ws("channel.chat.message", ev, &m), 0, "%s", colors[i]);
        cr_assert_str_eq(m.u.chat.author.color, "");
        cr_assert_str_eq(m.u.chat.author.display_name, "bob");
        cr_assert_eq(m.u.chat.n_fragments, 1);
        cr_assert_str_eq(m.u.chat.fragments[0].text, "hey");
        sp_twitch_mapped_clear(&m);
    }
    /* more badges than we keep: the first 16 */
    char ev[4096];
    size_t o = (size_t)snprintf(ev, sizeof ev,
                                "{\"chatter_user_id\":\"42\",\"chatter_user_login\":\"bob\","
                                "\"message_id\":\"m-1\",\"message\":{\"text\":\"x\"},"
                                "\"badges\":[");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(ev + o, sizeof ev - o, "%s{\"set_id\":\"b%d\",\"id\":\"1\"}",
                              i ? "," : "", i);
    snprintf(ev + o, sizeof ev - o, "]}");
    cr_assert_eq(map_ws("channel.chat.message", ev, &m), 0);
    cr_assert_eq(m.u.chat.author.n_badges, SP_PMSG_BADGES_MAX);
    cr_assert_str_eq(m.u.chat.author.badges[15].set_id, "b15");
    sp_twitch_mapped_clear(&m);
}

Test(twitch_map, chat_delete)
{
    sp_twitch_mapped_t m;
    cr_assert_eq(map_hook("channel.chat.message_delete",
                          "{\"broadcaster_user_id\":\"1337\",\"target_user_id\":\"7734\","
                          "\"target_user_name\":\"Uncool_viewer\",\"target_user_login\":"
                          "\"uncool_viewer\",\"message_id\":"
                          "\"ab24e0b0-2260-4bac-94e4-05eedd4ecd0e\"}",
                          &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_CHAT_DELETED);
    json_t *j = sp_chat_deletion_to_json(&m.u.deleted, 0);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(s, "{\"id\":\"ab24e0b0-2260-4bac-94e4-05eedd4ecd0e\","
                        "\"platform\":\"twitch\",\"ts\":1689778611634}");
    free(s);
    json_decref(j);
    sp_twitch_mapped_clear(&m);
    cr_assert_eq(map_hook("channel.chat.message_delete", "{\"message_id\":\"a b\"}", &m),
                 SP_EPROTO);
}

Test(twitch_map, unknown_types_ignored)
{
    sp_twitch_mapped_t m;
    cr_assert_eq(map_ws("channel.ban", "{\"user_id\":\"1\"}", &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_IGNORED);
    cr_assert_str_eq(m.sub_type, "channel.ban");
    cr_assert_str_eq(m.message_id, MSG_ID);
    sp_twitch_mapped_clear(&m);
    cr_assert_eq(map_hook("channel.poll.begin", "[1,2]", &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_IGNORED);
    /* a type longer than any we know is ignored too */
    char t[200];
    memset(t, 'x', sizeof t - 1);
    t[sizeof t - 1] = '\0';
    cr_assert_eq(map_hook(t, "{}", &m), 0);
    cr_assert_eq(m.kind, SP_TWITCH_IGNORED);
}

Test(twitch_map, envelope_errors)
{
    sp_twitch_mapped_t m;
    const char *bad[] = {
        "", "null", "[]", "{", "{\"metadata\":{},\"payload\":{}}",
        /* not a notification: the session machine's business */
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"session_keepalive\","
        "\"message_timestamp\":\"" MSG_TS "\"},\"payload\":{}}",
        /* metadata and subscription disagree on the type */
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" MSG_TS "\",\"subscription_type\":\"channel.raid\"},"
        "\"payload\":{\"subscription\":{\"type\":\"channel.follow\"},\"event\":" EV_FOLLOW "}}",
        /* no subscription type */
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" MSG_TS "\"},\"payload\":{\"event\":" EV_FOLLOW "}}",
        /* bad message id, missing or bad timestamp */
        "{\"metadata\":{\"message_id\":\"a/b\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"" MSG_TS "\"},\"payload\":{\"subscription\":"
        "{\"type\":\"channel.follow\"},\"event\":" EV_FOLLOW "}}",
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"notification\"},"
        "\"payload\":{\"subscription\":{\"type\":\"channel.follow\"},\"event\":" EV_FOLLOW "}}",
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"1999-12-31T23:59:59Z\"},\"payload\":{\"subscription\":"
        "{\"type\":\"channel.follow\"},\"event\":" EV_FOLLOW "}}",
        "{\"metadata\":{\"message_id\":\"x\",\"message_type\":\"notification\","
        "\"message_timestamp\":\"2023-13-01T00:00:00Z\"},\"payload\":{\"subscription\":"
        "{\"type\":\"channel.follow\"},\"event\":" EV_FOLLOW "}}",
        /* duplicate keys */
        "{\"metadata\":{\"message_id\":\"x\",\"message_id\":\"y\",\"message_type\":"
        "\"notification\",\"message_timestamp\":\"" MSG_TS "\"},\"payload\":{\"subscription\":"
        "{\"type\":\"channel.follow\"},\"event\":" EV_FOLLOW "}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(sp_twitch_map_notification(bad[i], strlen(bad[i]), &m), SP_EPROTO, "%zu",
                     i);
        cr_assert_eq(m.kind, SP_TWITCH_IGNORED);
    }
    cr_assert_eq(sp_twitch_map_notification(NULL, 0, &m), SP_EPROTO);
    /* embedded NUL bytes, raw or escaped */
    char *s = ws("channel.follow", EV_FOLLOW);
    size_t n = strlen(s);
    s[10] = '\0';
    cr_assert_eq(sp_twitch_map_notification(s, n, &m), SP_EPROTO);
    free(s);
    cr_assert_eq(map_ws("channel.follow", "{\"user_name\":\"a\\u0000b\"}", &m), SP_EPROTO);
    /* webhook header values */
    cr_assert_eq(sp_twitch_map_webhook("{\"subscription\":{\"type\":\"channel.raid\"},"
                                       "\"event\":" EV_RAID "}", strlen("{\"subscription\":"
                                       "{\"type\":\"channel.raid\"},\"event\":" EV_RAID "}"),
                                       NULL, MSG_TS, &m), SP_EPROTO);
    cr_assert_eq(sp_twitch_map_webhook("{}", 2, MSG_ID, MSG_TS, &m), SP_EPROTO);
}

Test(twitch_map, size_caps)
{
    sp_twitch_mapped_t m;
    size_t n = SP_TWITCH_MAP_MAX_INPUT + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    cr_assert_eq(sp_twitch_map_notification(big, n, &m), SP_ETOOBIG);
    cr_assert_eq(sp_twitch_map_webhook(big, n, MSG_ID, MSG_TS, &m), SP_ETOOBIG);
    free(big);
    /* chat text over its cap */
    size_t tl = SP_PMSG_TEXT_CAP + 10;
    char *ev = malloc(tl + 256);
    int o = snprintf(ev, 256, "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                              "\"message_id\":\"m\",\"message\":{\"text\":\"");
    memset(ev + o, 'x', tl);
    snprintf(ev + o + tl, 16, "\"}}");
    cr_assert_eq(map_ws("channel.chat.message", ev, &m), SP_ETOOBIG);
    free(ev);
    /* too many fragments */
    char *fr = malloc(64 * 1024);
    size_t p = (size_t)snprintf(fr, 256, "{\"chatter_user_id\":\"1\",\"chatter_user_login\":"
                                         "\"a\",\"message_id\":\"m\",\"message\":{\"text\":\"x\","
                                         "\"fragments\":[");
    for (int i = 0; i < SP_PMSG_FRAGMENTS_MAX + 1; i++)
        p += (size_t)snprintf(fr + p, 64, "%s{\"type\":\"text\",\"text\":\"x\"}", i ? "," : "");
    snprintf(fr + p, 16, "]}}");
    cr_assert_eq(map_ws("channel.chat.message", fr, &m), SP_ETOOBIG);
    free(fr);
    /* display name over its cap */
    char name[400];
    memset(name, 'n', 300);
    name[300] = '\0';
    char ev2[600];
    snprintf(ev2, sizeof ev2, "{\"user_name\":\"%s\",\"viewers\":1}", name);
    cr_assert_eq(map_hook("channel.raid", "{\"from_broadcaster_user_name\":\"a\","
                                          "\"viewers\":1}", &m), 0);
    sp_twitch_mapped_clear(&m);
    snprintf(ev2, sizeof ev2, "{\"from_broadcaster_user_name\":\"%s\",\"viewers\":1}", name);
    cr_assert_eq(map_hook("channel.raid", ev2, &m), SP_ETOOBIG);
}

Test(twitch_map, hostile_numbers_and_types)
{
    sp_twitch_mapped_t m;
    struct {
        const char *type, *event;
    } bad[] = {
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":-5}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":0}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":99999999999}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":1e3}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":\"100\"}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":9223372036854775807}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":99999999999999999999999}" },
        { "channel.cheer", "{\"user_name\":\"a\"}" },
        { "channel.cheer", "{\"user_name\":null,\"is_anonymous\":false,\"bits\":5}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"is_anonymous\":\"no\",\"bits\":5}" },
        { "channel.cheer", "{\"user_name\":\"a\",\"bits\":5,\"message\":7}" },
        { "channel.raid", "{\"from_broadcaster_user_name\":\"a\",\"viewers\":-1}" },
        { "channel.raid", "{\"from_broadcaster_user_name\":\"a\"}" },
        { "channel.raid", "{\"from_broadcaster_user_name\":[],\"viewers\":1}" },
        { "channel.subscription.gift", "{\"user_name\":\"a\",\"tier\":\"1000\",\"total\":0}" },
        { "channel.subscription.gift", "{\"user_name\":\"a\",\"tier\":\"1000\"}" },
        { "channel.subscription.message",
          "{\"user_name\":\"a\",\"tier\":\"1000\",\"cumulative_months\":-3}" },
        { "channel.subscription.message",
          "{\"user_name\":\"a\",\"tier\":\"1000\",\"message\":{\"text\":5}}" },
        { "channel.follow", "{\"user_name\":\"a\",\"followed_at\":\"3020-01-01T00:00:00Z\"}" },
        { "channel.follow", "{\"user_login\":null}" },
        { "channel.follow", "[]" },
        { "channel.follow", "\"x\"" },
        { "channel.chat.message", "{\"message_id\":\"m\",\"message\":{\"text\":\"x\"}}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":\"x\"}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":{\"text\":\"x\","
                                  "\"fragments\":{}}}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":{\"text\":\"x\","
                                  "\"fragments\":[{\"type\":\"emote\",\"text\":\"K\","
                                  "\"emote\":{\"id\":\"../x\"}}]}}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":{\"text\":\"x\","
                                  "\"fragments\":[7]}}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":{\"text\":\"x\"},"
                                  "\"badges\":\"mod\"}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":{\"text\":\"x\"},"
                                  "\"reply\":{\"parent_message_id\":5}}" },
        { "channel.chat.message", "{\"chatter_user_id\":\"1 2\",\"chatter_user_login\":\"a\","
                                  "\"message_id\":\"m\",\"message\":{\"text\":\"x\"}}" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = map_ws(bad[i].type, bad[i].event, &m);
        cr_assert(rc == SP_EPROTO || rc == SP_ETOOBIG, "%zu: %d", i, rc);
        cr_assert_eq(m.kind, SP_TWITCH_IGNORED, "%zu", i);
        cr_assert_str_eq(m.message_id, "", "%zu", i);
        cr_assert_eq(map_hook(bad[i].type, bad[i].event, &m), rc, "%zu (webhook)", i);
    }
    /* ranges at their edges are fine */
    cr_assert_eq(map_ws("channel.cheer", "{\"user_name\":\"a\",\"bits\":10000000}", &m), 0);
    cr_assert_eq(m.u.alert.amount, 10000000.0);
    sp_twitch_mapped_clear(&m);
    cr_assert_eq(map_ws("channel.raid", "{\"from_broadcaster_user_login\":\"a\",\"viewers\":0}",
                        &m), 0);
    cr_assert_str_eq(m.u.alert.name, "a");
    cr_assert_eq(m.u.alert.count, 0);
    sp_twitch_mapped_clear(&m);
}

Test(twitch_map, deep_nesting)
{
    size_t depth = 5000;
    char *s = malloc(2 * depth + 64);
    size_t o = (size_t)snprintf(s, 64, "{\"a\":");
    for (size_t i = 0; i < depth; i++)
        s[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        s[o++] = ']';
    s[o++] = '}';
    sp_twitch_mapped_t m;
    cr_assert_eq(sp_twitch_map_notification(s, o, &m), SP_EPROTO);
    free(s);
}

Test(twitch_map, parse_time)
{
    int64_t ms = 0;
    cr_assert_eq(sp_twitch_parse_time(MSG_TS, &ms), 0);
    cr_assert_eq(ms, MSG_TS_MS);
    cr_assert_eq(sp_twitch_parse_time("2019-11-16T10:11:12.123Z", &ms), 0);
    cr_assert_eq(ms, 1573899072123LL);
    cr_assert_eq(sp_twitch_parse_time("2020-07-15T18:16:11.17106713Z", &ms), 0);
    cr_assert_eq(ms, 1594836971171LL);
    cr_assert_eq(sp_twitch_parse_time("2020-07-15T20:16:11+02:00", &ms), 0);
    cr_assert_eq(ms, 1594836971000LL);
    const char *bad[] = { "", "2020", "2020-07-15 18:16:11Z", "2020-07-15T18:16:11",
                          "2100-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
                          "2020-07-15T18:16:11.Z", "2020-07-15T25:16:11Z",
                          "2020-07-15T18:16:11.1234567890123Z", "2020-07-15T18:16:11Zjunk" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sp_twitch_parse_time(bad[i], &ms), SP_EPROTO, "%s", bad[i]);
    cr_assert_eq(sp_twitch_parse_time(NULL, &ms), SP_EPROTO);
}

Test(twitch_map, map_event_direct_and_clear)
{
    json_t *ev = json_loads(EV_RAID, 0, NULL);
    sp_twitch_mapped_t m;
    cr_assert_eq(sp_twitch_map_event("channel.raid", MSG_ID, MSG_TS, ev, &m), 0);
    json_decref(ev); /* out holds its own reference */
    cr_assert_eq(json_integer_value(json_object_get(m.u.alert.raw, "viewers")), 9001);
    sp_twitch_mapped_clear(&m);
    sp_twitch_mapped_clear(&m);
    sp_twitch_mapped_clear(NULL);
    cr_assert_eq(sp_twitch_map_event(NULL, MSG_ID, MSG_TS, NULL, &m), SP_EPROTO);
    cr_assert_eq(sp_twitch_map_event("", MSG_ID, MSG_TS, NULL, &m), SP_EPROTO);
    cr_assert_eq(sp_twitch_map_event("channel.raid", MSG_ID, MSG_TS, NULL, &m), SP_EPROTO);
    cr_assert_str_eq(m.message_id, ""); /* an error leaves out cleared */
    cr_assert_str_eq(m.sub_type, "");
    cr_assert_eq(sp_twitch_map_event("channel.raid", MSG_ID, NULL, NULL, &m), SP_EPROTO);
}

/* The fuzz seeds are valid notifications: each maps to a message (run from the repo root). */
Test(twitch_map, fuzz_seeds_map)
{
    static const struct {
        const char *file;
        sp_twitch_kind_t kind;
    } seeds[] = {
        { "channel_chat_message.json", SP_TWITCH_CHAT },
        { "channel_chat_message_delete.json", SP_TWITCH_CHAT_DELETED },
        { "channel_cheer.json", SP_TWITCH_ALERT },
        { "channel_follow.json", SP_TWITCH_ALERT },
        { "channel_raid.json", SP_TWITCH_ALERT },
        { "channel_subscribe.json", SP_TWITCH_ALERT },
        { "channel_subscription_gift.json", SP_TWITCH_ALERT },
        { "channel_subscription_message.json", SP_TWITCH_ALERT },
        { "stream_offline.json", SP_TWITCH_STREAM_OFFLINE },
        { "stream_online.json", SP_TWITCH_STREAM_ONLINE },
        { "webhook_channel_raid.json", SP_TWITCH_ALERT },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[256], buf[8192];
        snprintf(path, sizeof path, "fuzz/corpus/twitch_map/%s", seeds[i].file);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        cr_assert(n > 0 && n < sizeof buf, "%s", path);
        sp_twitch_mapped_t m;
        int rc = strncmp(seeds[i].file, "webhook_", 8) == 0
                     ? sp_twitch_map_webhook(buf, n, MSG_ID, MSG_TS, &m)
                     : sp_twitch_map_notification(buf, n, &m);
        cr_assert_eq(rc, 0, "%s", path);
        cr_assert_eq(m.kind, seeds[i].kind, "%s", path);
        sp_twitch_mapped_clear(&m);
    }
}
