#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "platforms/twitch/helix.h"

static int user(int st, const char *b, sp_helix_user_t *u)
{
    return sp_helix_parse_user(st, b, strlen(b), u);
}

Test(helix, status_classes)
{
    cr_assert_eq(sp_helix_status(200), 0);
    cr_assert_eq(sp_helix_status(204), 0);
    cr_assert_eq(sp_helix_status(401), SP_EAUTH);
    cr_assert_eq(sp_helix_status(403), SP_EFORBIDDEN);
    cr_assert_eq(sp_helix_status(404), SP_ENOTFOUND);
    cr_assert_eq(sp_helix_status(429), SP_ERATELIMIT);
    cr_assert_eq(sp_helix_status(503), SP_EUPSTREAM);
    cr_assert_eq(sp_helix_status(400), SP_EINVAL);
}

Test(helix, rate_limit_waits)
{
    int64_t now = 1700000000000LL;
    cr_assert_eq(sp_helix_wait_ms(200, "799", "1700000060", NULL, now), 0);
    cr_assert_eq(sp_helix_wait_ms(200, "0", "1700000003", NULL, now), 3000, "bucket empty");
    cr_assert_eq(sp_helix_wait_ms(429, "0", "1700000002", NULL, now), 2000);
    cr_assert_eq(sp_helix_wait_ms(429, NULL, NULL, "7", now), 7000);
    cr_assert_eq(sp_helix_wait_ms(429, NULL, NULL, NULL, now), 1000, "no hint: 1 s");
    cr_assert_eq(sp_helix_wait_ms(429, "0", "1600000000", NULL, now), 1000, "reset passed");
    cr_assert_eq(sp_helix_wait_ms(429, "0", "1800000000", NULL, now), SP_HELIX_MAX_WAIT_MS);
    /* malformed or hostile headers are ignored, never overflow */
    cr_assert_eq(sp_helix_wait_ms(429, "x", "9223372036854775807", "-5", now), 1000);
    cr_assert_eq(sp_helix_wait_ms(429, "0", "1700000002abc", "99999999999999999999", now), 1000);
    cr_assert_eq(sp_helix_wait_ms(200, " 0 ", " 1700000001 ", NULL, now), 1000);
}

Test(helix, users)
{
    sp_helix_user_t u;
    const char *ok = "{\"data\":[{\"id\":\"141981764\",\"login\":\"twitchdev\",\"display_name\":"
                     "\"TwitchDev\",\"type\":\"\",\"broadcaster_type\":\"partner\",\"description\":"
                     "\"Supporting third-party developers\",\"view_count\":5980557,\"email\":"
                     "\"not-real@email.com\",\"created_at\":\"2016-12-14T20:32:28.894263Z\"}]}";
    cr_assert_eq(user(200, ok, &u), 0);
    cr_assert_str_eq(u.id, "141981764");
    cr_assert_str_eq(u.login, "twitchdev");
    cr_assert_str_eq(u.display_name, "TwitchDev");
    cr_assert_str_eq(u.email, "not-real@email.com");
    cr_assert_eq(user(200, "{\"data\":[]}", &u), SP_ENOTFOUND);
    cr_assert_eq(user(401, "{\"error\":\"Unauthorized\",\"status\":401,\"message\":\"Invalid OAuth "
                           "token\"}",
                      &u),
                 SP_EAUTH);
    cr_assert_eq(user(200, "{\"data\":[{\"id\":\"12a\",\"login\":\"x\"}]}", &u), SP_EPROTO);
    cr_assert_eq(user(200, "{\"data\":[{\"id\":\"1\",\"login\":\"a b\"}]}", &u), SP_EPROTO);
    cr_assert_eq(user(200, "{\"data\":[{\"id\":1,\"login\":\"ab\"}]}", &u), SP_EPROTO);
    cr_assert_eq(user(200, "{\"data\":{}}", &u), SP_EPROTO);
    cr_assert_eq(user(200, "not json", &u), SP_EPROTO);
    cr_assert_str_eq(u.id, "");
    cr_assert_eq(user(200, "{\"data\":[{\"id\":\"7\",\"login\":\"abc\"}]}", &u), 0);
    cr_assert_str_eq(u.display_name, "abc", "display name falls back to the login");
}

Test(helix, streams_live_offline_hostile)
{
    sp_helix_stream_t s;
    const char *live =
        "{\"data\":[{\"id\":\"123456789\",\"user_id\":\"98765\",\"user_login\":\"sandysanderman\","
        "\"user_name\":\"SandySanderman\",\"game_id\":\"494131\",\"game_name\":\"Little "
        "Nightmares\",\"type\":\"live\",\"title\":\"hablamos\",\"tags\":null,\"viewer_count\":"
        "78365,\"started_at\":\"2021-03-10T15:04:21Z\",\"language\":\"es\",\"tag_ids\":[],"
        "\"is_mature\":false}],\"pagination\":{\"cursor\":\"eyJi\"}}";
    cr_assert_eq(sp_helix_parse_stream(200, live, strlen(live), &s), 0);
    cr_assert(s.live);
    cr_assert_eq(s.viewer_count, 78365);
    cr_assert_eq(s.started_at_ms, 1615388661000LL);
    cr_assert_str_eq(s.game_id, "494131");
    const char *off = "{\"data\":[],\"pagination\":{}}";
    cr_assert_eq(sp_helix_parse_stream(200, off, strlen(off), &s), 0);
    cr_assert_not(s.live);
    cr_assert_eq(s.viewer_count, 0);
    const char *neg = "{\"data\":[{\"type\":\"live\",\"viewer_count\":-4}]}";
    cr_assert_eq(sp_helix_parse_stream(200, neg, strlen(neg), &s), 0);
    cr_assert_eq(s.viewer_count, 0);
    const char *huge = "{\"data\":[{\"type\":\"live\",\"viewer_count\":9223372036854775807}]}";
    cr_assert_eq(sp_helix_parse_stream(200, huge, strlen(huge), &s), 0);
    cr_assert_eq(s.viewer_count, SP_HELIX_MAX_VIEWERS);
    const char *str = "{\"data\":[{\"type\":\"live\",\"viewer_count\":\"5\"}]}";
    cr_assert_eq(sp_helix_parse_stream(200, str, strlen(str), &s), SP_EPROTO);
    const char *err = "{\"type\":\"\",\"viewer_count\":3}";
    cr_assert_eq(sp_helix_parse_stream(200, err, strlen(err), &s), SP_EPROTO);
    const char *notlive = "{\"data\":[{\"type\":\"\",\"viewer_count\":3}]}";
    cr_assert_eq(sp_helix_parse_stream(200, notlive, strlen(notlive), &s), 0);
    cr_assert_not(s.live);
    cr_assert_eq(s.viewer_count, 0);
    cr_assert_eq(sp_helix_parse_stream(503, "", 0, &s), SP_EUPSTREAM);
}

Test(helix, stream_key)
{
    char k[64];
    const char *ok = "{\"data\":[{\"stream_key\":\"live_44322889_nCGwsCl38pt21oj4UJJZbFd\"}]}";
    cr_assert_eq(sp_helix_parse_stream_key(200, ok, strlen(ok), k, sizeof(k)), 0);
    cr_assert_str_eq(k, "live_44322889_nCGwsCl38pt21oj4UJJZbFd");
    cr_assert_eq(sp_helix_parse_stream_key(200, ok, strlen(ok), k, 10), SP_EPROTO,
                 "too long: refused, not truncated");
    cr_assert_str_eq(k, "");
    const char *slash = "{\"data\":[{\"stream_key\":\"live/../x\"}]}";
    cr_assert_eq(sp_helix_parse_stream_key(200, slash, strlen(slash), k, sizeof(k)), SP_EPROTO);
    const char *none = "{\"data\":[{}]}";
    cr_assert_eq(sp_helix_parse_stream_key(200, none, strlen(none), k, sizeof(k)), SP_EPROTO);
    cr_assert_eq(sp_helix_parse_stream_key(403, "{}", 2, k, sizeof(k)), SP_EFORBIDDEN);
}

Test(helix, chat_sent_and_dropped)
{
    sp_helix_chat_sent_t c;
    const char *ok = "{\"data\":[{\"message_id\":\"abc-123-def\",\"is_sent\":true}]}";
    cr_assert_eq(sp_helix_parse_chat_sent(200, ok, strlen(ok), &c), 0);
    cr_assert(c.is_sent);
    cr_assert_str_eq(c.message_id, "abc-123-def");
    const char *drop =
        "{\"data\":[{\"message_id\":\"\",\"is_sent\":false,\"drop_reason\":{\"code\":"
        "\"msg_rejected\",\"message\":\"Your message is being checked by mods and "
        "has not been sent.\"}}]}";
    cr_assert_eq(sp_helix_parse_chat_sent(200, drop, strlen(drop), &c), 0);
    cr_assert_not(c.is_sent);
    cr_assert_str_eq(c.drop_code, "msg_rejected");
    cr_assert_str_eq(c.drop_message,
                     "Your message is being checked by mods and has not been sent.");
    const char *bare = "{\"data\":[{\"message_id\":\"\",\"is_sent\":false}]}";
    cr_assert_eq(sp_helix_parse_chat_sent(200, bare, strlen(bare), &c), 0);
    cr_assert_str_eq(c.drop_code, "not_sent");
    const char *bad = "{\"data\":[{\"message_id\":\"x\",\"is_sent\":\"yes\"}]}";
    cr_assert_eq(sp_helix_parse_chat_sent(200, bad, strlen(bad), &c), SP_EPROTO);
}

Test(helix, request_bodies)
{
    sp_buf_t b;
    sp_buf_init(&b, 8192);
    cr_assert_eq(sp_helix_chat_body("12826", "141981764", "Hello, world! \"q\"", NULL, &b), 0);
    cr_assert_str_eq(b.p, "{\"broadcaster_id\":\"12826\",\"sender_id\":\"141981764\",\"message\":"
                          "\"Hello, world! \\\"q\\\"\"}");
    b.len = 0;
    cr_assert_eq(sp_helix_chat_body("1", "2", "hi", "885196de-cb67-427a-baa8-82f9b0fcd05f", &b), 0);
    cr_assert_not_null(strstr(b.p, "\"reply_parent_message_id\":\"885196de-cb67-427a-baa8-"
                                   "82f9b0fcd05f\""));
    char msg[2 * 501 + 1];
    for (int i = 0; i < 500; i++)
        memcpy(msg + 2 * i, "\xc3\xa9", 2); /* 500 x U+00E9: 1000 bytes, 500 characters */
    msg[1000] = '\0';
    b.len = 0;
    cr_assert_eq(sp_helix_chat_body("1", "2", msg, NULL, &b), 0, "500 characters are fine");
    memcpy(msg + 1000, "x", 2);
    cr_assert_eq(sp_helix_chat_body("1", "2", msg, NULL, &b), SP_ETOOBIG);
    cr_assert_eq(sp_helix_chat_body("1", "2", "bad \xff utf8", NULL, &b), SP_EUTF8);
    cr_assert_eq(sp_helix_chat_body("1", "2", "overlong \xc0\xaf", NULL, &b), SP_EUTF8);
    cr_assert_eq(sp_helix_chat_body("1", "2", "", NULL, &b), SP_EINVAL);
    cr_assert_eq(sp_helix_chat_body("1x", "2", "hi", NULL, &b), SP_EINVAL);
    cr_assert_eq(sp_helix_chat_body("1", "2", "hi", "a\"b", &b), SP_EINVAL);
    b.len = 0;
    cr_assert_eq(sp_helix_channel_body("New title", "33214", &b), 0);
    cr_assert_str_eq(b.p, "{\"title\":\"New title\",\"game_id\":\"33214\"}");
    b.len = 0;
    cr_assert_eq(sp_helix_channel_body(NULL, "", &b), 0, "unset the category");
    cr_assert_str_eq(b.p, "{\"game_id\":\"\"}");
    cr_assert_eq(sp_helix_channel_body("", NULL, &b), SP_EINVAL);
    cr_assert_eq(sp_helix_channel_body(NULL, NULL, &b), SP_EINVAL);
    cr_assert_eq(sp_helix_channel_body("t", "12; DROP", &b), SP_EINVAL);
    char title[142];
    memset(title, 'a', 141);
    title[141] = '\0';
    cr_assert_eq(sp_helix_channel_body(title, NULL, &b), SP_ETOOBIG);
    title[140] = '\0';
    b.len = 0;
    cr_assert_eq(sp_helix_channel_body(title, NULL, &b), 0);
    sp_buf_cleanup(&b);
}
