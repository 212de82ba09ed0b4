/*
 * sp_platform_msg: the normalised chat/alert/viewers/status messages and their JSON encoders.
 * Pure: no I/O, no globals but the name tables.
 */
#include "platforms/sp_platform_msg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"

static const char *const alert_names[SP_ALERT_TYPE_COUNT] = {
    [SP_ALERT_FOLLOW] = "follow",         [SP_ALERT_SUBSCRIPTION] = "subscription",
    [SP_ALERT_GIFT_SUBSCRIPTION] = "gift_subscription",
    [SP_ALERT_CHEER] = "cheer",           [SP_ALERT_RAID] = "raid",
    [SP_ALERT_SUPER_CHAT] = "super_chat", [SP_ALERT_MEMBER] = "member",
    [SP_ALERT_DONATION] = "donation",
};

static const char *const status_names[SP_PSTATUS_COUNT] = {
    [SP_PSTATUS_CONNECTING] = "connecting", [SP_PSTATUS_CONNECTED] = "connected",
    [SP_PSTATUS_DEGRADED] = "degraded",     [SP_PSTATUS_NEEDS_REAUTH] = "needs_reauth",
    [SP_PSTATUS_STOPPED] = "stopped",
};

const char *sp_alert_type_name(sp_alert_type_t t)
{
    return (unsigned)t < SP_ALERT_TYPE_COUNT ? alert_names[t] : NULL;
}

int sp_alert_type_parse(const char *s, sp_alert_type_t *out)
{
    for (unsigned i = 0; s && i < SP_ALERT_TYPE_COUNT; i++)
        if (strcmp(s, alert_names[i]) == 0) {
            *out = (sp_alert_type_t)i;
            return 0;
        }
    return SP_EINVAL;
}

const char *sp_platform_status_name(sp_platform_status_t s)
{
    return (unsigned)s < SP_PSTATUS_COUNT ? status_names[s] : NULL;
}

int sp_platform_status_parse(const char *s, sp_platform_status_t *out)
{
    for (unsigned i = 0; s && i < SP_PSTATUS_COUNT; i++)
        if (strcmp(s, status_names[i]) == 0) {
            *out = (sp_platform_status_t)i;
            return 0;
        }
    return SP_EINVAL;
}

const char *sp_frag_type_name(sp_frag_type_t t)
{
    switch (t) {
    case SP_FRAG_TEXT:
        return "text";
    case SP_FRAG_EMOTE:
        return "emote";
    case SP_FRAG_MENTION:
        return "mention";
    }
    return NULL;
}

int sp_chat_msg_add_fragment(sp_chat_msg_t *m, sp_frag_type_t type, const char *text,
                             size_t len, const char *emote_url)
{
    if (!sp_frag_type_name(type) || (!text && len))
        return SP_EINVAL;
    if (m->n_fragments >= SP_PMSG_FRAGMENTS_MAX || len >= SP_PMSG_TEXT_CAP ||
        (emote_url && strlen(emote_url) >= SP_PMSG_URL_CAP))
        return SP_ETOOBIG;
    if (len && memchr(text, '\0', len))
        return SP_EINVAL;
    char *copy = malloc(len + 1);
    if (!copy)
        return SP_ENOMEM;
    if (len)
        memcpy(copy, text, len);
    copy[len] = '\0';
    sp_chat_fragment_t *arr =
        realloc(m->fragments, (m->n_fragments + 1) * sizeof(sp_chat_fragment_t));
    if (!arr) {
        free(copy);
        return SP_ENOMEM;
    }
    m->fragments = arr;
    sp_chat_fragment_t *f = &arr[m->n_fragments++];
    memset(f, 0, sizeof *f);
    f->type = type;
    f->text = copy;
    if (emote_url && type == SP_FRAG_EMOTE)
        memcpy(f->emote_url, emote_url, strlen(emote_url) + 1);
    return 0;
}

void sp_chat_msg_clear(sp_chat_msg_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_fragments; i++)
        free(m->fragments[i].text);
    free(m->fragments);
    json_decref(m->raw);
    memset(m, 0, sizeof *m);
}

void sp_chat_deletion_clear(sp_chat_deletion_t *d)
{
    if (!d)
        return;
    json_decref(d->raw);
    memset(d, 0, sizeof *d);
}

void sp_alert_clear(sp_alert_t *a)
{
    if (!a)
        return;
    json_decref(a->raw);
    memset(a, 0, sizeof *a);
}

/* Sets obj[key] = v (stolen); false (and v released) on failure or v == NULL. */
static bool put(json_t *obj, const char *key, json_t *v)
{
    return v && json_object_set_new(obj, key, v) == 0;
}

/* A NUL-terminated string stored in a cap-byte field: a JSON string, or NULL when the field is
 * not terminated inside its cap or not valid UTF-8 (jansson checks). */
static json_t *str(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    return n < cap ? json_stringn(s, n) : NULL;
}

static bool ts_ok(int64_t ts)
{
    return ts >= 0 && ts <= 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
}

static bool attach_raw(json_t *o, const json_t *raw, unsigned flags)
{
    if (!(flags & SP_PMSG_RAW) || !raw)
        return true;
    return put(o, "raw", json_incref((json_t *)raw));
}

static json_t *author_to_json(const sp_chat_author_t *a)
{
    if (a->n_badges > SP_PMSG_BADGES_MAX)
        return NULL;
    json_t *o = json_object(), *badges = json_array();
    bool ok = o && badges && put(o, "id", str(a->id, sizeof a->id)) &&
              put(o, "name", str(a->name, sizeof a->name)) &&
              put(o, "display_name", str(a->display_name, sizeof a->display_name)) &&
              put(o, "color", str(a->color, sizeof a->color));
    for (size_t i = 0; ok && i < a->n_badges; i++) {
        const sp_chat_badge_t *b = &a->badges[i];
        json_t *bo = json_object();
        ok = bo && put(bo, "set_id", str(b->set_id, sizeof b->set_id)) &&
             put(bo, "id", str(b->id, sizeof b->id)) && json_array_append_new(badges, bo) == 0;
        if (!ok)
            json_decref(bo);
    }
    if (ok && put(o, "badges", badges))
        return o;
    if (!ok)
        json_decref(badges);
    json_decref(o);
    return NULL;
}

static json_t *fragments_to_json(const sp_chat_msg_t *m)
{
    if (m->n_fragments > SP_PMSG_FRAGMENTS_MAX || (m->n_fragments && !m->fragments))
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < m->n_fragments; i++) {
        const sp_chat_fragment_t *f = &m->fragments[i];
        const char *type = sp_frag_type_name(f->type);
        json_t *fo = json_object();
        bool ok = fo && type && f->text && put(fo, "type", json_string(type)) &&
                  put(fo, "text", str(f->text, SP_PMSG_TEXT_CAP));
        if (ok && f->type == SP_FRAG_EMOTE && f->emote_url[0])
            ok = put(fo, "emote_url", str(f->emote_url, sizeof f->emote_url));
        if (!ok || json_array_append_new(arr, fo) != 0) {
            json_decref(fo);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *sp_chat_msg_to_json(const sp_chat_msg_t *m, unsigned flags)
{
    if (!m || !ts_ok(m->ts))
        return NULL;
    json_t *o = json_object();
    bool ok = o && put(o, "id", str(m->id, sizeof m->id)) &&
              put(o, "platform", str(m->platform, sizeof m->platform)) &&
              put(o, "author", author_to_json(&m->author)) &&
              put(o, "text", str(m->text, sizeof m->text)) &&
              put(o, "fragments", fragments_to_json(m));
    if (ok && m->reply_to[0])
        ok = put(o, "reply_to", str(m->reply_to, sizeof m->reply_to));
    ok = ok && put(o, "ts", json_integer(m->ts)) && attach_raw(o, m->raw, flags);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sp_chat_deletion_to_json(const sp_chat_deletion_t *d, unsigned flags)
{
    if (!d || !ts_ok(d->ts))
        return NULL;
    json_t *o = json_object();
    bool ok = o && put(o, "id", str(d->id, sizeof d->id)) &&
              put(o, "platform", str(d->platform, sizeof d->platform)) &&
              put(o, "ts", json_integer(d->ts)) && attach_raw(o, d->raw, flags);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Whole amounts (bits, whole dollars) encode as JSON integers, others as reals. */
static json_t *amount_json(double v)
{
    if (!isfinite(v) || v < 0 || v > SP_PMSG_AMOUNT_MAX)
        return NULL;
    if (v == floor(v))
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *sp_alert_to_json(const sp_alert_t *a, unsigned flags)
{
    if (!a || !ts_ok(a->ts) || !sp_alert_type_name(a->type) || a->tier < 0 || a->tier > 3 ||
        (a->has_count && (a->count < 0 || a->count > SP_PMSG_COUNT_MAX)))
        return NULL;
    json_t *o = json_object();
    bool ok = o && put(o, "id", str(a->id, sizeof a->id)) &&
              put(o, "type", json_string(sp_alert_type_name(a->type))) &&
              put(o, "platform", str(a->platform, sizeof a->platform)) &&
              put(o, "name", str(a->name, sizeof a->name));
    if (ok && a->has_amount)
        ok = put(o, "amount", amount_json(a->amount));
    if (ok && a->currency[0])
        ok = put(o, "currency", str(a->currency, sizeof a->currency));
    if (ok && a->has_count)
        ok = put(o, "count", json_integer(a->count));
    if (ok && a->tier)
        ok = put(o, "tier", json_integer(a->tier));
    if (ok && a->has_message)
        ok = put(o, "message", str(a->message, sizeof a->message));
    ok = ok && put(o, "ts", json_integer(a->ts)) && attach_raw(o, a->raw, flags);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sp_viewers_to_json(const sp_viewers_t *v)
{
    if (!v || !ts_ok(v->ts) || v->n_platforms > SP_PMSG_VIEWER_PLATFORMS_MAX)
        return NULL;
    json_t *per = json_object();
    int64_t total = 0;
    bool ok = per != NULL;
    for (size_t i = 0; ok && i < v->n_platforms; i++) {
        const sp_viewer_count_t *p = &v->platforms[i];
        /* each count <= 1e9 and at most 8 of them: the sum cannot overflow */
        ok = p->count >= 0 && p->count <= SP_PMSG_COUNT_MAX && p->platform[0] &&
             strnlen(p->platform, sizeof p->platform) < sizeof p->platform &&
             !json_object_get(per, p->platform) &&
             put(per, p->platform, json_integer(p->count));
        total += ok ? p->count : 0;
    }
    json_t *o = ok ? json_object() : NULL;
    if (!o) {
        json_decref(per);
        return NULL;
    }
    if (!put(o, "total", json_integer(total))) {
        json_decref(per);
        json_decref(o);
        return NULL;
    }
    /* put() consumes per even when it fails */
    if (!put(o, "platforms", per) || !put(o, "ts", json_integer(v->ts))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sp_platform_status_to_json(const sp_platform_status_msg_t *s)
{
    if (!s || !sp_platform_status_name(s->status))
        return NULL;
    json_t *o = json_object();
    bool ok = o && put(o, "platform", str(s->platform, sizeof s->platform)) &&
              put(o, "status", json_string(sp_platform_status_name(s->status)));
    if (ok && s->error[0])
        ok = put(o, "error", str(s->error, sizeof s->error));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
