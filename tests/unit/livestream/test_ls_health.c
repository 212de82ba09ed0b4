/* Unit tests for input.health (sp_ls_health): platform limits, sanitizing what the media
 * service reported, and the warnings. */
#include <criterion/criterion.h>
#include <string.h>

#include "livestream/sp_ls_health.h"

static json_t *relay_health(int key_ms, double kbps, bool audio)
{
    json_t *h = json_pack("{s:{s:s, s:i, s:i, s:f, s:f, s:i, s:i}, s:f, s:i, s:i, s:n, s:s}",
                          "video", "codec", "h264", "width", 1280, "height", 720, "fps", 30.0,
                          "bitrateKbps", kbps - 128, "keyframeIntervalMs", key_ms, "profile", 100,
                          "bitrateKbps", kbps, "uptimeMs", 12000, "lateFrames", 0,
                          "droppedFrames", "extra", "dropped by sanitize");
    json_object_set_new(h, "audio",
                        audio ? json_pack("{s:s, s:i, s:i, s:f}", "codec", "aac", "sampleRate",
                                          44100, "channels", 2, "bitrateKbps", 128.0)
                              : json_null());
    return h;
}

static const json_t *find_warning(const json_t *view, const char *code, const char *platform)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(view, "warnings"), i, w)
    {
        const char *p = json_string_value(json_object_get(w, "platform"));
        if (strcmp(json_string_value(json_object_get(w, "code")), code) == 0 &&
            (!platform || (p && strcmp(p, platform) == 0)))
            return w;
    }
    return NULL;
}

Test(ls_health, platform_limits)
{
    cr_assert_eq(sp_ls_platform_bitrate_limit("twitch"), 6000);
    cr_assert_eq(sp_ls_platform_bitrate_limit("youtube"), 51000);
    cr_assert_eq(sp_ls_platform_bitrate_limit("facebook"), 9000);
    cr_assert_eq(sp_ls_platform_bitrate_limit("kick"), 8000);
    cr_assert_eq(sp_ls_platform_bitrate_limit("custom"), 0);
    cr_assert_eq(sp_ls_platform_bitrate_limit(NULL), 0);
}

Test(ls_health, sanitize_keeps_known_fields_in_range)
{
    json_t *raw = relay_health(2000, 3000, true);
    json_t *h = sp_ls_health_sanitize(raw);
    cr_assert_not_null(h);
    json_t *v = json_object_get(h, "video");
    cr_assert_str_eq(json_string_value(json_object_get(v, "codec")), "h264");
    cr_assert_eq(json_integer_value(json_object_get(v, "width")), 1280);
    cr_assert_eq(json_integer_value(json_object_get(v, "keyframeIntervalMs")), 2000);
    cr_assert_null(json_object_get(v, "profile"));
    cr_assert_null(json_object_get(h, "extra"));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(h, "audio"), "sampleRate")),
                 44100);
    json_decref(h);
    /* out of range / wrong types become null; a bad codec drops the track */
    json_object_set_new(json_object_get(raw, "video"), "width", json_integer(-5));
    json_object_set_new(json_object_get(raw, "video"), "height", json_string("720"));
    json_object_set_new(json_object_get(raw, "audio"), "codec", json_string("<script>"));
    h = sp_ls_health_sanitize(raw);
    v = json_object_get(h, "video");
    cr_assert(json_is_null(json_object_get(v, "width")));
    cr_assert(json_is_null(json_object_get(v, "height")));
    cr_assert(json_is_null(json_object_get(h, "audio")));
    json_decref(h);
    json_decref(raw);
    cr_assert_null(sp_ls_health_sanitize(NULL));
    json_t *empty = json_object();
    cr_assert_null(sp_ls_health_sanitize(empty));
    json_decref(empty);
}

Test(ls_health, no_warning_when_healthy)
{
    json_t *raw = relay_health(2000, 4500, true);
    json_t *h = sp_ls_health_sanitize(raw);
    const char *plats[] = { "twitch", "youtube", "custom" };
    json_t *view = sp_ls_health_view(h, plats, 3);
    cr_assert_eq(json_array_size(json_object_get(view, "warnings")), 0);
    json_decref(view);
    json_decref(h);
    json_decref(raw);
}

Test(ls_health, warnings)
{
    json_t *raw = relay_health(10000, 7000, false);
    json_t *h = sp_ls_health_sanitize(raw);
    const char *plats[] = { "twitch", "twitch", "kick", "youtube", "custom", NULL };
    json_t *view = sp_ls_health_view(h, plats, 6);
    cr_assert_eq(json_array_size(json_object_get(view, "warnings")), 3); /* key, twitch, audio */
    const json_t *k = find_warning(view, "keyframe_interval", NULL);
    cr_assert_not_null(k);
    cr_assert_eq(json_integer_value(json_object_get(k, "value_ms")), 10000);
    cr_assert_not_null(strstr(json_string_value(json_object_get(k, "message")), "10.0 s"));
    const json_t *t = find_warning(view, "bitrate_over_limit", "twitch");
    cr_assert_not_null(t);
    cr_assert_eq(json_integer_value(json_object_get(t, "limit_kbps")), 6000);
    cr_assert_null(find_warning(view, "bitrate_over_limit", "kick")); /* 7000 <= 8000 */
    cr_assert_not_null(find_warning(view, "audio_missing", NULL));
    json_decref(view);
    /* without destinations: no bitrate warning */
    view = sp_ls_health_view(h, NULL, 0);
    cr_assert_null(find_warning(view, "bitrate_over_limit", NULL));
    cr_assert_eq(json_array_size(json_object_get(view, "warnings")), 2);
    json_decref(view);
    json_decref(h);
    json_decref(raw);
}
