#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "platforms/sp_platform_msg.h"

/* Serialises with sorted keys so whole shapes compare as strings. */
static char *dump(json_t *j)
{
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return s;
}

static void expect_json(json_t *j, const char *want)
{
    char *s = dump(j);
    cr_assert_str_eq(s, want);
    free(s);
}

Test(platform_msg, enum_names_round_trip)
{
    for (int i = 0; i < SP_ALERT_TYPE_COUNT; i++) {
        sp_alert_type_t t;
        cr_assert_eq(sp_alert_type_parse(sp_alert_type_name((sp_alert_type_t)i), &t), 0);
        cr_assert_eq((int)t, i);
    }
    for (int i = 0; i < SP_PSTATUS_COUNT; i++) {
        sp_platform_status_t s;
        cr_assert_eq(
            sp_platform_status_parse(sp_platform_status_name((sp_platform_status_t)i), &s), 0);
        cr_assert_eq((int)s, i);
    }
    cr_assert_str_eq(sp_alert_type_name(SP_ALERT_GIFT_SUBSCRIPTION), "gift_subscription");
    cr_assert_str_eq(sp_alert_type_name(SP_ALERT_SUPER_CHAT), "super_chat");
    cr_assert_str_eq(sp_alert_type_name(SP_ALERT_DONATION), "donation");
    cr_assert_str_eq(sp_platform_status_name(SP_PSTATUS_NEEDS_REAUTH), "needs_reauth");
    cr_assert_str_eq(sp_frag_type_name(SP_FRAG_MENTION), "mention");
    cr_assert_null(sp_alert_type_name(SP_ALERT_TYPE_COUNT));
    cr_assert_null(sp_alert_type_name((sp_alert_type_t)-1));
    cr_assert_null(sp_platform_status_name(SP_PSTATUS_COUNT));
    cr_assert_null(sp_frag_type_name((sp_frag_type_t)7));
    sp_alert_type_t t = SP_ALERT_RAID;
    cr_assert_eq(sp_alert_type_parse("Follow", &t), SP_EINVAL);
    cr_assert_eq(sp_alert_type_parse("", &t), SP_EINVAL);
    cr_assert_eq(sp_alert_type_parse(NULL, &t), SP_EINVAL);
    cr_assert_eq(t, SP_ALERT_RAID);
    sp_platform_status_t s = SP_PSTATUS_STOPPED;
    cr_assert_eq(sp_platform_status_parse("ok", &s), SP_EINVAL);
    cr_assert_eq(s, SP_PSTATUS_STOPPED);
}

static void fill_chat(sp_chat_msg_t *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "cc106a89-1814-919d-454c-f4f2f970aae7");
    snprintf(m->platform, sizeof m->platform, "twitch");
    snprintf(m->author.id, sizeof m->author.id, "4145994");
    snprintf(m->author.name, sizeof m->author.name, "viewer32");
    snprintf(m->author.display_name, sizeof m->author.display_name, "Viewer32");
    snprintf(m->author.color, sizeof m->author.color, "#00FF7F");
    snprintf(m->author.badges[0].set_id, SP_PMSG_BADGE_CAP, "moderator");
    snprintf(m->author.badges[0].id, SP_PMSG_BADGE_CAP, "1");
    m->author.n_badges = 1;
    snprintf(m->text, sizeof m->text, "Hi Kappa @bob");
    cr_assert_eq(sp_chat_msg_add_fragment(m, SP_FRAG_TEXT, "Hi ", 3, NULL), 0);
    cr_assert_eq(sp_chat_msg_add_fragment(m, SP_FRAG_EMOTE, "Kappa", 5, "https://e/25"), 0);
    cr_assert_eq(sp_chat_msg_add_fragment(m, SP_FRAG_TEXT, " ", 1, NULL), 0);
    cr_assert_eq(sp_chat_msg_add_fragment(m, SP_FRAG_MENTION, "@bob", 4, "ignored"), 0);
    m->ts = 1689778611634;
}

Test(platform_msg, chat_shape_exact)
{
    sp_chat_msg_t m;
    fill_chat(&m);
    expect_json(sp_chat_msg_to_json(&m, 0),
                "{\"author\":{\"badges\":[{\"id\":\"1\",\"set_id\":\"moderator\"}],"
                "\"color\":\"#00FF7F\",\"display_name\":\"Viewer32\",\"id\":\"4145994\","
                "\"name\":\"viewer32\"},\"fragments\":[{\"text\":\"Hi \",\"type\":\"text\"},"
                "{\"emote_url\":\"https://e/25\",\"text\":\"Kappa\",\"type\":\"emote\"},"
                "{\"text\":\" \",\"type\":\"text\"},{\"text\":\"@bob\",\"type\":\"mention\"}],"
                "\"id\":\"cc106a89-1814-919d-454c-f4f2f970aae7\",\"platform\":\"twitch\","
                "\"text\":\"Hi Kappa @bob\",\"ts\":1689778611634}");
    /* reply_to appears only when set; raw only when asked for and present */
    snprintf(m.reply_to, sizeof m.reply_to, "parent-1");
    m.raw = json_pack("{s:s}", "chatter_user_id", "4145994");
    json_t *j = sp_chat_msg_to_json(&m, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "reply_to")), "parent-1");
    cr_assert_null(json_object_get(j, "raw"));
    json_decref(j);
    j = sp_chat_msg_to_json(&m, SP_PMSG_RAW);
    cr_assert_eq(json_object_get(j, "raw"), m.raw);
    json_decref(j);
    sp_chat_msg_clear(&m);
    cr_assert_null(m.fragments);
    cr_assert_null(m.raw);
    sp_chat_msg_clear(&m); /* twice is safe */
    sp_chat_msg_clear(NULL);
}

Test(platform_msg, chat_empty_and_refusals)
{
    sp_chat_msg_t m;
    memset(&m, 0, sizeof m);
    m.ts = 0;
    expect_json(sp_chat_msg_to_json(&m, SP_PMSG_RAW),
                "{\"author\":{\"badges\":[],\"color\":\"\",\"display_name\":\"\",\"id\":\"\","
                "\"name\":\"\"},\"fragments\":[],\"id\":\"\",\"platform\":\"\",\"text\":\"\","
                "\"ts\":0}");
    m.ts = -1;
    cr_assert_null(sp_chat_msg_to_json(&m, 0));
    m.ts = 1;
    m.author.n_badges = SP_PMSG_BADGES_MAX + 1;
    cr_assert_null(sp_chat_msg_to_json(&m, 0));
    m.author.n_badges = 0;
    /* a field filled to its cap without a NUL is refused, not over-read */
    memset(m.author.color, 'a', sizeof m.author.color);
    cr_assert_null(sp_chat_msg_to_json(&m, 0));
    memset(m.author.color, 0, sizeof m.author.color);
    /* invalid UTF-8 never reaches a browser */
    snprintf(m.text, sizeof m.text, "bad \xff byte");
    cr_assert_null(sp_chat_msg_to_json(&m, 0));
    cr_assert_null(sp_chat_msg_to_json(NULL, 0));
    sp_chat_msg_clear(&m);
}

Test(platform_msg, fragment_caps)
{
    sp_chat_msg_t m;
    memset(&m, 0, sizeof m);
    char *big = malloc(SP_PMSG_TEXT_CAP);
    memset(big, 'x', SP_PMSG_TEXT_CAP);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, big, SP_PMSG_TEXT_CAP, NULL),
                 SP_ETOOBIG);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, big, SP_PMSG_TEXT_CAP - 1, NULL), 0);
    char url[SP_PMSG_URL_CAP + 1];
    memset(url, 'u', sizeof url - 1);
    url[sizeof url - 1] = '\0';
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_EMOTE, "K", 1, url), SP_ETOOBIG);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, "a\0b", 3, NULL), SP_EINVAL);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, (sp_frag_type_t)9, "a", 1, NULL), SP_EINVAL);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, NULL, 1, NULL), SP_EINVAL);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, NULL, 0, NULL), 0);
    cr_assert_eq(m.n_fragments, 2);
    while (m.n_fragments < SP_PMSG_FRAGMENTS_MAX)
        cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, "a", 1, NULL), 0);
    cr_assert_eq(sp_chat_msg_add_fragment(&m, SP_FRAG_TEXT, "a", 1, NULL), SP_ETOOBIG);
    cr_assert_eq(m.n_fragments, SP_PMSG_FRAGMENTS_MAX);
    m.ts = 5;
    json_t *j = sp_chat_msg_to_json(&m, 0);
    cr_assert_eq(json_array_size(json_object_get(j, "fragments")), SP_PMSG_FRAGMENTS_MAX);
    json_decref(j);
    free(big);
    sp_chat_msg_clear(&m);
}

Test(platform_msg, deletion_shape)
{
    sp_chat_deletion_t d;
    memset(&d, 0, sizeof d);
    snprintf(d.id, sizeof d.id, "abc-123");
    snprintf(d.platform, sizeof d.platform, "twitch");
    d.ts = 1000;
    d.raw = json_pack("{s:s}", "target_user_id", "7");
    expect_json(sp_chat_deletion_to_json(&d, 0),
                "{\"id\":\"abc-123\",\"platform\":\"twitch\",\"ts\":1000}");
    expect_json(sp_chat_deletion_to_json(&d, SP_PMSG_RAW),
                "{\"id\":\"abc-123\",\"platform\":\"twitch\",\"raw\":{\"target_user_id\":\"7\"},"
                "\"ts\":1000}");
    d.ts = -5;
    cr_assert_null(sp_chat_deletion_to_json(&d, 0));
    sp_chat_deletion_clear(&d);
    sp_chat_deletion_clear(&d);
    sp_chat_deletion_clear(NULL);
}

Test(platform_msg, alert_shapes)
{
    sp_alert_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "befa7b53");
    snprintf(a.platform, sizeof a.platform, "twitch");
    snprintf(a.name, sizeof a.name, "Awesome_User");
    a.type = SP_ALERT_FOLLOW;
    a.ts = 1594837;
    expect_json(sp_alert_to_json(&a, 0),
                "{\"id\":\"befa7b53\",\"name\":\"Awesome_User\",\"platform\":\"twitch\","
                "\"ts\":1594837,\"type\":\"follow\"}");
    /* every optional member; whole amounts are integers */
    a.type = SP_ALERT_CHEER;
    a.has_amount = true;
    a.amount = 1000;
    snprintf(a.currency, sizeof a.currency, "bits");
    a.has_count = true;
    a.count = 3;
    a.tier = 2;
    a.has_message = true;
    snprintf(a.message, sizeof a.message, "pogchamp");
    expect_json(sp_alert_to_json(&a, 0),
                "{\"amount\":1000,\"count\":3,\"currency\":\"bits\",\"id\":\"befa7b53\","
                "\"message\":\"pogchamp\",\"name\":\"Awesome_User\",\"platform\":\"twitch\","
                "\"tier\":2,\"ts\":1594837,\"type\":\"cheer\"}");
    /* a super chat of 5.50 USD */
    a.type = SP_ALERT_SUPER_CHAT;
    a.amount = 5.5;
    snprintf(a.currency, sizeof a.currency, "USD");
    json_t *j = sp_alert_to_json(&a, 0);
    cr_assert(json_is_real(json_object_get(j, "amount")));
    cr_assert_float_eq(json_real_value(json_object_get(j, "amount")), 5.5, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "super_chat");
    json_decref(j);
    /* out of domain */
    a.amount = -1;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.amount = NAN;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.amount = INFINITY;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.amount = 2e12;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.amount = 1;
    a.count = -1;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.count = SP_PMSG_COUNT_MAX + 1;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.count = 1;
    a.tier = 4;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.tier = 1;
    a.type = SP_ALERT_TYPE_COUNT;
    cr_assert_null(sp_alert_to_json(&a, 0));
    a.type = SP_ALERT_DONATION;
    a.raw = json_pack("{s:i}", "bits", 1000);
    j = sp_alert_to_json(&a, SP_PMSG_RAW);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "raw"), "bits")), 1000);
    json_decref(j);
    sp_alert_clear(&a);
    cr_assert_null(a.raw);
    sp_alert_clear(NULL);
}

Test(platform_msg, viewers_shape)
{
    sp_viewers_t v;
    memset(&v, 0, sizeof v);
    v.ts = 42;
    expect_json(sp_viewers_to_json(&v), "{\"platforms\":{},\"total\":0,\"ts\":42}");
    snprintf(v.platforms[0].platform, SP_PMSG_PLATFORM_CAP, "twitch");
    v.platforms[0].count = 120;
    snprintf(v.platforms[1].platform, SP_PMSG_PLATFORM_CAP, "youtube");
    v.platforms[1].count = 30;
    v.n_platforms = 2;
    expect_json(sp_viewers_to_json(&v),
                "{\"platforms\":{\"twitch\":120,\"youtube\":30},\"total\":150,\"ts\":42}");
    /* every count at its maximum: the total does not overflow */
    v.n_platforms = SP_PMSG_VIEWER_PLATFORMS_MAX;
    for (size_t i = 0; i < v.n_platforms; i++) {
        snprintf(v.platforms[i].platform, SP_PMSG_PLATFORM_CAP, "p%u", (unsigned)(i & 7));
        v.platforms[i].count = SP_PMSG_COUNT_MAX;
    }
    json_t *j = sp_viewers_to_json(&v);
    cr_assert_eq(json_integer_value(json_object_get(j, "total")), 8 * SP_PMSG_COUNT_MAX);
    json_decref(j);
    v.platforms[3].count = -1;
    cr_assert_null(sp_viewers_to_json(&v));
    v.platforms[3].count = SP_PMSG_COUNT_MAX + 1;
    cr_assert_null(sp_viewers_to_json(&v));
    v.platforms[3].count = 1;
    snprintf(v.platforms[3].platform, SP_PMSG_PLATFORM_CAP, "p0"); /* duplicate */
    cr_assert_null(sp_viewers_to_json(&v));
    v.platforms[3].platform[0] = '\0';
    cr_assert_null(sp_viewers_to_json(&v));
    v.n_platforms = SP_PMSG_VIEWER_PLATFORMS_MAX + 1;
    cr_assert_null(sp_viewers_to_json(&v));
    cr_assert_null(sp_viewers_to_json(NULL));
}

Test(platform_msg, status_shape)
{
    sp_platform_status_msg_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.platform, sizeof s.platform, "twitch");
    s.status = SP_PSTATUS_CONNECTED;
    expect_json(sp_platform_status_to_json(&s),
                "{\"platform\":\"twitch\",\"status\":\"connected\"}");
    s.status = SP_PSTATUS_DEGRADED;
    snprintf(s.error, sizeof s.error, "5 restarts in 60 s");
    expect_json(sp_platform_status_to_json(&s),
                "{\"error\":\"5 restarts in 60 s\",\"platform\":\"twitch\","
                "\"status\":\"degraded\"}");
    s.status = SP_PSTATUS_COUNT;
    cr_assert_null(sp_platform_status_to_json(&s));
    cr_assert_null(sp_platform_status_to_json(NULL));
}
