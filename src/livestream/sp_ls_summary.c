/* sp_ls_summary: viewer series and stream summary from store rows (see the header). */
#include "livestream/sp_ls_summary.h"

#include <stdbool.h>
#include <string.h>

static int64_t int_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_real(v)) return (int64_t)json_real_value(v);
    return 0;
}

static int64_t round_avg(int64_t sum, int64_t n)
{
    if (n <= 0) return 0;
    return sum >= 0 ? (2 * sum + n) / (2 * n) : -((-2 * sum + n) / (2 * n));
}

json_t *sp_ls_viewer_series(const json_t *rows)
{
    json_t *ts = json_array(), *total = json_array(), *plats = json_object();
    size_t i;
    const json_t *row;
    /* first pass: the platform names, so each gets an array as long as ts */
    json_array_foreach(rows, i, row) {
        const char *p = json_string_value(json_object_get(row, "platform"));
        if (p && p[0] && json_object_get(plats, p) == NULL)
            json_object_set_new(plats, p, json_array());
    }
    int64_t cur = 0;
    bool have = false;
    int64_t sum = 0;
    json_array_foreach(rows, i, row) {
        const char *p = json_string_value(json_object_get(row, "platform"));
        if (p == NULL || p[0] == '\0') continue;
        int64_t t = int_of(row, "ts"), v = int_of(row, "viewers");
        if (v < 0) v = 0;
        if (!have || t != cur) {
            if (have) json_array_append_new(total, json_integer(sum));
            have = true;
            cur = t;
            sum = 0;
            json_array_append_new(ts, json_integer(t));
            const char *k;
            json_t *arr;
            json_object_foreach(plats, k, arr) json_array_append_new(arr, json_null());
        }
        sum += v;
        json_t *arr = json_object_get(plats, p);
        json_array_set_new(arr, json_array_size(arr) - 1, json_integer(v));
    }
    if (have) json_array_append_new(total, json_integer(sum));
    return json_pack("{s:o, s:o, s:o}", "ts", ts, "total", total, "platforms", plats);
}

/* peak and rounded average of the non-null integers of arr into o */
static void peak_avg(json_t *o, const json_t *arr)
{
    int64_t peak = 0, sum = 0, n = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v)) continue;
        int64_t x = (int64_t)json_integer_value(v);
        if (x > peak) peak = x;
        sum += x;
        n++;
    }
    json_object_set_new(o, "peak_viewers", json_integer(peak));
    json_object_set_new(o, "avg_viewers", json_integer(round_avg(sum, n)));
}

static json_t *platform_entry(json_t *plats, const char *p)
{
    json_t *e = json_object_get(plats, p);
    if (e == NULL) {
        e = json_pack("{s:I, s:I, s:I, s:I, s:I}", "peak_viewers", (json_int_t)0, "avg_viewers",
                      (json_int_t)0, "new_followers", (json_int_t)0, "new_subscribers",
                      (json_int_t)0, "chat_messages", (json_int_t)0);
        json_object_set_new(plats, p, e);
    }
    return e;
}

static void add_to(json_t *o, const char *key, int64_t n)
{
    json_object_set_new(o, key, json_integer(int_of(o, key) + n));
}

json_t *sp_ls_stream_summary(const json_t *stream, const json_t *series, const json_t *chat_rows,
                             const json_t *alert_rows, int64_t now_ms)
{
    json_t *sum = json_object(), *plats = json_object();
    int64_t started = int_of(stream, "started_at");
    int64_t ended = int_of(stream, "ended_at");
    int64_t end = ended > 0 ? ended : now_ms;
    json_object_set_new(sum, "duration_ms",
                        json_integer(started > 0 && end > started ? end - started : 0));
    peak_avg(sum, json_object_get(series, "total"));
    const char *k;
    const json_t *arr;
    json_object_foreach((json_t *)json_object_get(series, "platforms"), k, arr)
        peak_avg(platform_entry(plats, k), arr);

    int64_t followers = 0, subs = 0, chat = 0;
    size_t i;
    const json_t *row;
    json_array_foreach(chat_rows, i, row) {
        const char *p = json_string_value(json_object_get(row, "platform"));
        int64_t n = int_of(row, "n");
        if (p == NULL || p[0] == '\0' || n <= 0) continue;
        chat += n;
        add_to(platform_entry(plats, p), "chat_messages", n);
    }
    json_array_foreach(alert_rows, i, row) {
        const char *p = json_string_value(json_object_get(row, "platform"));
        const json_t *pl = json_object_get(row, "payload");
        json_t *parsed = NULL;
        if (json_is_string(pl)) pl = parsed = json_loads(json_string_value(pl), 0, NULL);
        const char *type = json_string_value(json_object_get(pl, "type"));
        if (p && p[0] && type) {
            int64_t f = 0, s = 0;
            if (strcmp(type, "follow") == 0) f = 1;
            else if (strcmp(type, "subscription") == 0 || strcmp(type, "member") == 0) s = 1;
            else if (strcmp(type, "gift_subscription") == 0) {
                int64_t c = int_of(pl, "count");
                s = c > 0 && c <= 1000000000 ? c : 1;
            }
            if (f || s) {
                json_t *e = platform_entry(plats, p);
                add_to(e, "new_followers", f);
                add_to(e, "new_subscribers", s);
                followers += f;
                subs += s;
            }
        }
        json_decref(parsed);
    }
    json_object_set_new(sum, "new_followers", json_integer(followers));
    json_object_set_new(sum, "new_subscribers", json_integer(subs));
    json_object_set_new(sum, "chat_messages", json_integer(chat));
    json_object_set_new(sum, "platforms", plats);
    return sum;
}
