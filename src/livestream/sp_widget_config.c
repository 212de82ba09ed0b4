/* sp_widget_config: widget settings defaults and validation. See sp_widget_config.h. */
#include "livestream/sp_widget_config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_err.h"
#include "livestream/sp_alert_template.h"
#include "livestream/sp_alertq.h"

static const char *const animations[] = { "fade",        "slide_up", "slide_down", "slide_left",
                                          "slide_right", "zoom",     "bounce",     "none",
                                          NULL };
static const char *const layouts[] = { "above", "beside", NULL };
static const char *const platforms[] = { "twitch", "youtube", "kick", "facebook", NULL };
static const char *const upload_exts[] = { "png", "gif", "jpg", "webp", "mp3", "ogg", "wav",
                                           NULL };

static const char *const templates[SP_AQ_TYPE_COUNT] = {
    [SP_AQ_FOLLOW] = "{name} just followed!",
    [SP_AQ_SUBSCRIPTION] = "{name} just subscribed!",
    [SP_AQ_GIFT_SUBSCRIPTION] = "{name} gifted {count} subs!",
    [SP_AQ_CHEER] = "{name} cheered {amount} bits!",
    [SP_AQ_RAID] = "{name} is raiding with {count} viewers!",
    [SP_AQ_SUPER_CHAT] = "{name} sent a Super Chat: {amount} {currency}!",
    [SP_AQ_MEMBER] = "{name} became a member!",
    [SP_AQ_DONATION] = "{name} donated {amount} {currency}!",
};

bool sp_wcfg_type_ok(const char *type)
{
    return type && (strcmp(type, "alertbox") == 0 || strcmp(type, "chat") == 0);
}

static json_t *alertbox_defaults(void)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    json_t *types = json_object(), *prio = json_object();
    for (int t = 0; t < SP_AQ_TYPE_COUNT; t++) {
        json_object_set_new(
            types, sp_aq_type_name((sp_aq_type_t)t),
            json_pack("{s:b, s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:i}", "enabled", 1, "template",
                      templates[t], "duration_ms", 5000, "animation_in", "fade", "animation_out",
                      "fade", "image_url", "", "sound_url", "", "volume", 50, "min_amount", 0));
        json_object_set_new(prio, sp_aq_type_name((sp_aq_type_t)t), json_integer(o.priority[t]));
    }
    return json_pack("{s:o, s:s, s:i, s:s, s:s, s:s, s:i, s:b, s:{s:b, s:[]}, s:o}", "types",
                     types, "font", "sans-serif", "font_size", 36, "text_color", "#ffffff",
                     "accent_color", "#9146ff", "layout", "above", "gap_ms", 1000,
                     "show_message", 1, "filter", "links", 1, "words", "priorities", prio);
}

static json_t *chat_defaults(void)
{
    return json_pack("{s:i, s:i, s:[], s:b, s:b, s:[s,s,s,s], s:{s:b, s:[]}, s:s, s:i, s:b, "
                     "s:b, s:s, s:s}",
                     "max_messages", 10, "lifetime_ms", 30000, "platforms", "twitch_safe", 0,
                     "hide_commands", 1, "bots", "nightbot", "streamelements", "streamlabs",
                     "moobot", "filter", "links", 0, "words", "font", "sans-serif", "font_size",
                     24, "show_badges", 1, "show_platform_icons", 1, "text_color", "#ffffff",
                     "background", "transparent");
}

json_t *sp_wcfg_defaults(const char *type)
{
    if (!sp_wcfg_type_ok(type))
        return NULL;
    return type[0] == 'a' ? alertbox_defaults() : chat_defaults();
}

/* ---- leaf rules --------------------------------------------------------------------- */

typedef enum { R_BOOL, R_INT, R_NUM, R_ENUM, R_COLOR, R_BG, R_FONT, R_URL, R_TPL, R_WORDS,
               R_PLATFORMS } rule_kind_t;

typedef struct {
    rule_kind_t kind;
    double min, max;
    const char *const *list;
} rule_t;

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* The rule of leaf `key` under `parent` ("" at the top) of widget type `alertbox`. */
static bool rule_of(bool alertbox, const char *parent, const char *key, rule_t *r)
{
    static const char *const bools[] = { "enabled", "show_message", "links", "twitch_safe",
                                         "hide_commands", "show_badges", "show_platform_icons",
                                         NULL };
    memset(r, 0, sizeof(*r));
    if (alertbox && strcmp(parent, "priorities") == 0) {
        *r = (rule_t){ R_INT, 0, 1000, NULL };
        return true;
    }
    if (in_list(bools, key)) r->kind = R_BOOL;
    else if (strcmp(key, "template") == 0) r->kind = R_TPL;
    else if (strcmp(key, "duration_ms") == 0) *r = (rule_t){ R_INT, 1000, 60000, NULL };
    else if (strncmp(key, "animation_", 10) == 0) *r = (rule_t){ R_ENUM, 0, 0, animations };
    else if (strcmp(key, "image_url") == 0 || strcmp(key, "sound_url") == 0) r->kind = R_URL;
    else if (strcmp(key, "volume") == 0) *r = (rule_t){ R_INT, 0, 100, NULL };
    else if (strcmp(key, "min_amount") == 0) *r = (rule_t){ R_NUM, 0, 1e6, NULL };
    else if (strcmp(key, "font") == 0) r->kind = R_FONT;
    else if (strcmp(key, "font_size") == 0) *r = (rule_t){ R_INT, 8, alertbox ? 200 : 120, NULL };
    else if (strcmp(key, "text_color") == 0 || strcmp(key, "accent_color") == 0) r->kind = R_COLOR;
    else if (strcmp(key, "layout") == 0) *r = (rule_t){ R_ENUM, 0, 0, layouts };
    else if (strcmp(key, "gap_ms") == 0) *r = (rule_t){ R_INT, 0, 60000, NULL };
    else if (strcmp(key, "words") == 0 || strcmp(key, "bots") == 0) r->kind = R_WORDS;
    else if (strcmp(key, "max_messages") == 0) *r = (rule_t){ R_INT, 1, 100, NULL };
    else if (strcmp(key, "lifetime_ms") == 0) *r = (rule_t){ R_INT, 0, 3600000, NULL };
    else if (strcmp(key, "platforms") == 0) r->kind = R_PLATFORMS;
    else if (strcmp(key, "background") == 0) r->kind = R_BG;
    else return false;
    return true;
}

static bool hex_color(const char *s, size_t digits)
{
    if (s[0] != '#' || strlen(s) != digits + 1)
        return false;
    for (size_t i = 1; i <= digits; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool font_ok(const char *s, size_t len)
{
    if (len < 1 || len > SP_WCFG_FONT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr(" ,-_'", c))
            return false;
    }
    return true;
}

/* "" or /uploads/{user}/{64 hex}.{ext} (what POST /api/widgets/uploads answers). */
static bool upload_url_ok(const char *s, size_t len)
{
    if (len == 0)
        return true;
    if (len > SP_WCFG_URL_MAX || strncmp(s, "/uploads/", 9) != 0)
        return false;
    const char *u = s + 9, *slash = strchr(u, '/');
    if (!slash || slash == u || slash - u > 64)
        return false;
    for (const char *p = u; p < slash; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    const char *h = slash + 1;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)h[i]) || isupper((unsigned char)h[i]))
            return false;
    if (h[64] != '.')
        return false;
    return in_list(upload_exts, h + 65);
}

static bool words_ok(const json_t *v, bool platforms_only, const char **why)
{
    if (!json_is_array(v)) {
        *why = "must be an array of strings";
        return false;
    }
    if (json_array_size(v) > SP_WCFG_WORDS_MAX) {
        *why = "too many entries";
        return false;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *w = json_array_get(v, i);
        size_t n = json_string_length(w);
        if (!json_is_string(w) || n < 1 || n > SP_WCFG_WORD_MAX ||
            memchr(json_string_value(w), 0, n)) {
            *why = "entries must be strings of 1..64 bytes";
            return false;
        }
        if (platforms_only) {
            if (!in_list(platforms, json_string_value(w))) {
                *why = "unknown platform";
                return false;
            }
            for (size_t j = 0; j < i; j++)
                if (json_equal(json_array_get(v, j), w)) {
                    *why = "duplicate platform";
                    return false;
                }
        }
    }
    return true;
}

static bool leaf_ok(const rule_t *r, const json_t *v, const char **why)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (s && memchr(s, 0, n)) {
        *why = "must not contain NUL";
        return false;
    }
    switch (r->kind) {
    case R_BOOL:
        *why = "must be a boolean";
        return json_is_boolean(v);
    case R_INT:
        *why = "must be an integer in range";
        return json_is_integer(v) && (double)json_integer_value(v) >= r->min &&
               (double)json_integer_value(v) <= r->max;
    case R_NUM: {
        *why = "must be a number in range";
        double d = json_number_value(v);
        return json_is_number(v) && isfinite(d) && d >= r->min && d <= r->max;
    }
    case R_ENUM:
        *why = "must be one of the listed values";
        return s && in_list(r->list, s);
    case R_COLOR:
        *why = "must be a colour #RRGGBB";
        return s && hex_color(s, 6);
    case R_BG:
        *why = "must be transparent, #RRGGBB or #RRGGBBAA";
        return s && (strcmp(s, "transparent") == 0 || hex_color(s, 6) || hex_color(s, 8));
    case R_FONT:
        *why = "must be 1..64 characters of letters, digits, space , - _ '";
        return s && font_ok(s, n);
    case R_URL:
        *why = "must be empty or an uploaded file's URL";
        return s && upload_url_ok(s, n);
    case R_TPL: {
        size_t pos = 0;
        *why = "must be a string";
        if (!s)
            return false;
        int rc = sp_atpl_validate(s, n, &pos);
        *why = rc == SP_ETOOBIG ? "template too long"
                                : "unknown variable or unbalanced brace in template";
        return rc == 0;
    }
    case R_WORDS: return words_ok(v, false, why);
    case R_PLATFORMS: return words_ok(v, true, why);
    }
    return false;
}

/* ---- merge ---------------------------------------------------------------------------- */

static void field_set(char *field, size_t cap, const char *prefix, const char *key)
{
    if (field && cap)
        snprintf(field, cap, "%s%s%s", prefix, *prefix ? "." : "", key);
}

/* Applies patch onto dst (a deep copy of the base), both objects at path `prefix`. */
static int merge(bool alertbox, json_t *dst, const json_t *patch, const char *prefix,
                 const char *parent, char *field, size_t cap, const char **why)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v) {
        json_t *cur = json_object_get(dst, key);
        if (cur == NULL || strlen(key) > 32) {
            field_set(field, cap, prefix, key);
            *why = "unknown field";
            return SP_EINVAL;
        }
        if (json_is_object(cur)) {
            if (!json_is_object(v)) {
                field_set(field, cap, prefix, key);
                *why = "must be an object";
                return SP_EINVAL;
            }
            char sub[SP_WCFG_FIELD_CAP];
            snprintf(sub, sizeof(sub), "%s%s%s", prefix, *prefix ? "." : "", key);
            int rc = merge(alertbox, cur, v, sub, key, field, cap, why);
            if (rc)
                return rc;
            continue;
        }
        rule_t r;
        if (!rule_of(alertbox, parent, key, &r) || !leaf_ok(&r, v, why)) {
            field_set(field, cap, prefix, key);
            return SP_EINVAL;
        }
        json_t *copy = json_deep_copy(v);
        if (copy == NULL || json_object_set_new(dst, key, copy) != 0)
            return SP_ENOMEM;
    }
    return 0;
}

int sp_wcfg_apply(const char *type, const json_t *base, const json_t *patch, json_t **out,
                  char *field, size_t field_cap, const char **why)
{
    static const char *dummy;
    if (why == NULL)
        why = &dummy;
    if (field && field_cap)
        field[0] = 0;
    if (out == NULL || !sp_wcfg_type_ok(type)) {
        *why = "unknown widget type";
        return SP_EINVAL;
    }
    *out = NULL;
    if (!json_is_object(patch)) {
        *why = "the config must be a JSON object";
        return SP_EINVAL;
    }
    json_t *dst = base ? json_deep_copy(base) : sp_wcfg_defaults(type);
    if (dst == NULL)
        return SP_ENOMEM;
    int rc = merge(type[0] == 'a', dst, patch, "", "", field, field_cap, why);
    if (rc) {
        json_decref(dst);
        return rc;
    }
    *out = dst;
    return 0;
}

json_t *sp_wcfg_load(const char *type, const json_t *stored)
{
    json_t *def = sp_wcfg_defaults(type), *out = NULL;
    if (def == NULL || !json_is_object(stored))
        return def;
    if (sp_wcfg_apply(type, def, stored, &out, NULL, 0, NULL) == 0) {
        json_decref(def);
        return out;
    }
    /* field by field: keep what is still valid (one top-level key at a time) */
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)stored, key, v) {
        json_t *one = json_pack("{s:O}", key, v), *next = NULL;
        if (one && sp_wcfg_apply(type, def, one, &next, NULL, 0, NULL) == 0) {
            json_decref(def);
            def = next;
        }
        json_decref(one);
    }
    return def;
}

/* ---- message filter ------------------------------------------------------------------- */

static bool ci_contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0 || m > n)
        return false;
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)hay[i + j]) == tolower((unsigned char)needle[j]))
            j++;
        if (j == m)
            return true;
    }
    return false;
}

static bool is_link(const char *w, size_t n)
{
    static const char *const tlds[] = { "com", "net", "org", "tv", "gg", "io", "ly", "me", "co",
                                        "be", "live", "app", "xyz", "info", "de", "uk", NULL };
    if (ci_contains(w, n, "://") || (n > 4 && strncasecmp(w, "www.", 4) == 0))
        return true;
    /* host.tld, host.tld/..., trailing punctuation allowed */
    size_t end = n;
    const char *slash = memchr(w, '/', n);
    if (slash)
        end = (size_t)(slash - w);
    while (end > 0 && strchr(".,!?:;)\"'", w[end - 1]))
        end--;
    const char *dot = NULL;
    for (size_t i = 0; i < end; i++)
        if (w[i] == '.')
            dot = w + i;
    if (!dot || dot == w || dot + 1 >= w + end)
        return false;
    size_t tl = (size_t)(w + end - dot - 1);
    for (const char *const *t = tlds; *t; t++)
        if (strlen(*t) == tl && strncasecmp(dot + 1, *t, tl) == 0)
            return true;
    return false;
}

static bool masked(const char *w, size_t n, bool links, const json_t *words)
{
    if (links && is_link(w, n))
        return true;
    for (size_t i = 0; i < json_array_size(words); i++) {
        const char *f = json_string_value(json_array_get(words, i));
        if (f && ci_contains(w, n, f))
            return true;
    }
    return false;
}

size_t sp_wcfg_mask_text(const char *in, size_t len, bool links, const json_t *words, char *out,
                         size_t cap)
{
    if (out == NULL || cap == 0)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap;) {
        if (isspace((unsigned char)in[i])) {
            out[o++] = in[i++];
            continue;
        }
        size_t j = i;
        while (j < len && !isspace((unsigned char)in[j]))
            j++;
        const char *src = in + i;
        size_t n = j - i;
        if (masked(src, n, links, words)) {
            src = "***";
            n = 3;
        }
        size_t room = cap - 1 - o;
        if (n > room) {
            n = room;
            while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) /* UTF-8 boundary */
                n--;
            memcpy(out + o, src, n);
            o += n;
            break;
        }
        memcpy(out + o, src, n);
        o += n;
        i = j;
    }
    out[o] = 0;
    return o;
}
