#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "livestream/sp_ls_summary.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "bad test JSON: %s", e.text);
    return j;
}

static void assert_json(const json_t *got, const char *want)
{
    json_t *w = J(want);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    char *ws = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(g, ws);
    free(g);
    free(ws);
    json_decref(w);
}

Test(ls_summary, series_aligns_platforms_per_tick)
{
    json_t *rows = J("[{\"ts\":1000,\"platform\":\"twitch\",\"viewers\":5},"
                     "{\"ts\":1000,\"platform\":\"youtube\",\"viewers\":3},"
                     "{\"ts\":2000,\"platform\":\"twitch\",\"viewers\":7},"
                     "{\"ts\":3000,\"platform\":\"youtube\",\"viewers\":4},"
                     "{\"ts\":3000,\"platform\":\"twitch\",\"viewers\":-2}]");
    json_t *s = sp_ls_viewer_series(rows);
    assert_json(s, "{\"ts\":[1000,2000,3000],\"total\":[8,7,4],"
                   "\"platforms\":{\"twitch\":[5,7,0],\"youtube\":[3,null,4]}}");
    json_decref(s);
    json_decref(rows);
}

Test(ls_summary, empty_inputs)
{
    json_t *rows = json_array();
    json_t *s = sp_ls_viewer_series(rows);
    assert_json(s, "{\"ts\":[],\"total\":[],\"platforms\":{}}");
    json_t *st = J("{\"started_at\":null}");
    json_t *sum = sp_ls_stream_summary(st, s, rows, rows, 5000);
    assert_json(sum, "{\"duration_ms\":0,\"peak_viewers\":0,\"avg_viewers\":0,"
                     "\"new_followers\":0,\"new_subscribers\":0,\"chat_messages\":0,"
                     "\"platforms\":{}}");
    json_decref(sum);
    json_decref(st);
    json_decref(s);
    json_decref(rows);
}

Test(ls_summary, peak_average_counts_per_platform)
{
    json_t *rows = J("[{\"ts\":1,\"platform\":\"twitch\",\"viewers\":10},"
                     "{\"ts\":1,\"platform\":\"kick\",\"viewers\":1},"
                     "{\"ts\":2,\"platform\":\"twitch\",\"viewers\":20},"
                     "{\"ts\":3,\"platform\":\"twitch\",\"viewers\":15},"
                     "{\"ts\":3,\"platform\":\"kick\",\"viewers\":2}]");
    json_t *series = sp_ls_viewer_series(rows);
    json_t *chat = J("[{\"platform\":\"twitch\",\"n\":40},{\"platform\":\"kick\",\"n\":2}]");
    /* payloads as text (SQLite) and as objects (a decoded JSONB) */
    json_t *alerts = J(
        "[{\"platform\":\"twitch\",\"payload\":\"{\\\"type\\\":\\\"follow\\\"}\"},"
        "{\"platform\":\"twitch\",\"payload\":{\"type\":\"follow\"}},"
        "{\"platform\":\"kick\",\"payload\":{\"type\":\"follow\"}},"
        "{\"platform\":\"twitch\",\"payload\":{\"type\":\"subscription\",\"tier\":1}},"
        "{\"platform\":\"twitch\",\"payload\":{\"type\":\"gift_subscription\",\"count\":5}},"
        "{\"platform\":\"twitch\",\"payload\":{\"type\":\"gift_subscription\"}},"
        "{\"platform\":\"twitch\",\"payload\":{\"type\":\"cheer\",\"amount\":100}},"
        "{\"platform\":\"twitch\",\"payload\":\"not json\"},"
        "{\"platform\":\"youtube\",\"payload\":{\"type\":\"member\"}}]");
    json_t *st = J("{\"started_at\":100000,\"ended_at\":3700000}");
    json_t *sum = sp_ls_stream_summary(st, series, chat, alerts, 999999999);
    /* totals per tick 11, 20, 17: peak 20, average 16 */
    assert_json(sum,
                "{\"duration_ms\":3600000,\"peak_viewers\":20,\"avg_viewers\":16,"
                "\"new_followers\":3,\"new_subscribers\":8,\"chat_messages\":42,\"platforms\":{"
                "\"twitch\":{\"peak_viewers\":20,\"avg_viewers\":15,\"new_followers\":2,"
                "\"new_subscribers\":7,\"chat_messages\":40},"
                "\"kick\":{\"peak_viewers\":2,\"avg_viewers\":2,\"new_followers\":1,"
                "\"new_subscribers\":0,\"chat_messages\":2},"
                "\"youtube\":{\"peak_viewers\":0,\"avg_viewers\":0,\"new_followers\":0,"
                "\"new_subscribers\":1,\"chat_messages\":0}}}");
    json_decref(sum);
    /* a running stream: the duration runs to now */
    json_t *live = J("{\"started_at\":100000,\"ended_at\":null}");
    sum = sp_ls_stream_summary(live, series, chat, alerts, 160000);
    cr_assert_eq(json_integer_value(json_object_get(sum, "duration_ms")), 60000);
    json_decref(sum);
    json_decref(live);
    json_decref(st);
    json_decref(alerts);
    json_decref(chat);
    json_decref(series);
    json_decref(rows);
}
