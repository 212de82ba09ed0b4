/* sp_ls_health: input health sanitizing and warnings (see header). */
#include "livestream/sp_ls_health.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *platform;
    const char *name;
    int kbps;
} limits[] = {
    { "twitch", "Twitch", 6000 },
    { "youtube", "YouTube", 51000 },
    { "facebook", "Facebook", 9000 },
    { "kick", "Kick", 8000 },
};

static int limit_index(const char *platform)
{
    for (size_t i = 0; platform && i < sizeof(limits) / sizeof(limits[0]); i++)
        if (strcmp(platform, limits[i].platform) == 0)
            return (int)i;
    return -1;
}

int sp_ls_platform_bitrate_limit(const char *platform)
{
    int i = limit_index(platform);
    return i < 0 ? 0 : limits[i].kbps;
}

/* a number in [lo, hi] copied as is, else null */
static void copy_num(json_t *dst, const json_t *src, const char *key, double lo, double hi)
{
    json_t *v = json_object_get(src, key);
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (json_is_number(v) && d >= lo && d <= hi)
        json_object_set_new(dst, key, json_is_integer(v) ? json_integer(json_integer_value(v))
                                                         : json_real(d));
    else
        json_object_set_new(dst, key, json_null());
}

/* a short codec name of [a-z0-9._-] */
static bool codec_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static json_t *track(const json_t *src, bool video)
{
    if (!json_is_object(src))
        return NULL;
    const char *codec = json_string_value(json_object_get(src, "codec"));
    if (!codec_ok(codec))
        return NULL;
    json_t *t = json_pack("{s:s}", "codec", codec);
    copy_num(t, src, "bitrateKbps", 0, 1e7);
    if (video) {
        copy_num(t, src, "width", 1, 16384);
        copy_num(t, src, "height", 1, 16384);
        copy_num(t, src, "fps", 0, 1000);
        copy_num(t, src, "keyframeIntervalMs", 0, 86400000);
    } else {
        copy_num(t, src, "sampleRate", 1, 384000);
        copy_num(t, src, "channels", 1, 64);
    }
    return t;
}

json_t *sp_ls_health_sanitize(const json_t *raw)
{
    if (!json_is_object(raw))
        return NULL;
    json_t *v = track(json_object_get(raw, "video"), true);
    json_t *a = track(json_object_get(raw, "audio"), false);
    if (!v && !a)
        return NULL;
    json_t *h = json_object();
    json_object_set_new(h, "video", v ? v : json_null());
    json_object_set_new(h, "audio", a ? a : json_null());
    copy_num(h, raw, "bitrateKbps", 0, 1e7);
    copy_num(h, raw, "uptimeMs", 0, 1e13);
    copy_num(h, raw, "lateFrames", 0, 1e15);
    copy_num(h, raw, "droppedFrames", 0, 1e15);
    return h;
}

static void warn(json_t *arr, json_t *w)
{
    if (w)
        json_array_append_new(arr, w);
}

json_t *sp_ls_health_view(const json_t *health, const char *const *platforms, size_t n)
{
    json_t *out = json_deep_copy(health);
    if (!out)
        return NULL;
    json_t *arr = json_array();
    json_t *video = json_object_get(out, "video");
    char msg[256];
    json_t *ki = json_object_get(video, "keyframeIntervalMs");
    if (json_is_integer(ki) && json_integer_value(ki) > SP_LS_MAX_KEYFRAME_INTERVAL_MS) {
        double s = (double)json_integer_value(ki) / 1000.0;
        snprintf(msg, sizeof(msg),
                 "Keyframe interval is %.1f s: platforms require 4 s or less (Twitch "
                 "recommends 2 s). Set the keyframe interval to 2 s in your encoder.", s);
        warn(arr, json_pack("{s:s, s:s, s:I, s:i}", "code", "keyframe_interval", "message", msg,
                            "value_ms", (json_int_t)json_integer_value(ki), "limit_ms",
                            SP_LS_MAX_KEYFRAME_INTERVAL_MS));
    }
    json_t *br = json_object_get(out, "bitrateKbps");
    bool seen[sizeof(limits) / sizeof(limits[0])] = { false };
    for (size_t i = 0; json_is_number(br) && i < n; i++) {
        int li = limit_index(platforms[i]);
        if (li < 0 || seen[li])
            continue;
        seen[li] = true;
        double kbps = json_number_value(br);
        if (kbps <= limits[li].kbps)
            continue;
        snprintf(msg, sizeof(msg),
                 "Bitrate %.0f kbit/s is over %s's limit of %d kbit/s: lower the encoder's "
                 "bitrate.", kbps, limits[li].name, limits[li].kbps);
        warn(arr, json_pack("{s:s, s:s, s:s, s:f, s:i}", "code", "bitrate_over_limit", "message",
                            msg, "platform", limits[li].platform, "value_kbps", kbps,
                            "limit_kbps", limits[li].kbps));
    }
    if (json_is_null(json_object_get(out, "audio")))
        warn(arr, json_pack("{s:s, s:s}", "code", "audio_missing", "message",
                            "No audio in the stream: check the encoder's audio source."));
    json_object_set_new(out, "warnings", arr);
    return out;
}
