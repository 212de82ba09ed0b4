/*
 * twitch/map: EventSub notification -> normalised chat message, deletion, alert or stream
 * online/offline. Pure over bytes and jansson values; every field from Twitch is type-,
 * length- and range-checked before it is copied or used in arithmetic.
 */
#include "platforms/twitch/map.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_time.h"

#define TS_MIN 946684800000LL   /* 2000-01-01T00:00:00Z */
#define TS_MAX 4102444800000LL  /* 2100-01-01T00:00:00Z (exclusive) */
#define BITS_MAX 10000000LL     /* far above any real cheer */
#define GIFTS_MAX 1000000LL
#define MONTHS_MAX 10000LL
#define RAIDERS_MAX SP_PMSG_COUNT_MAX

int sp_twitch_parse_time(const char *s, int64_t *out_ms)
{
    int64_t ms;
    if (!s || sp_time_parse_rfc3339(s, strlen(s), &ms) != 0 || ms < TS_MIN || ms >= TS_MAX)
        return SP_EPROTO;
    *out_ms = ms;
    return 0;
}

/* obj[key] into dst: SP_ETOOBIG when a string does not fit, SP_EPROTO for the wrong type, an
 * embedded NUL, or (required) absent/null/empty. */
static int get_str(const json_t *obj, const char *key, char *dst, size_t cap, bool required)
{
    if (sp_json_strcpy(obj, key, dst, cap, required ? SP_JSON_REQUIRED : 0, NULL)) {
        if (required && dst[0] == '\0')
            return SP_EPROTO;
        return 0;
    }
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v) && json_string_length(v) >= cap)
        return SP_ETOOBIG;
    return SP_EPROTO;
}

/* Like get_str for an id: 1..64 of [A-Za-z0-9_-] (optional ids may be ""). */
static int get_id(const json_t *obj, const char *key, char *dst, size_t cap, bool required)
{
    int rc = get_str(obj, key, dst, cap, required);
    if (rc == SP_ETOOBIG)
        return SP_EPROTO;
    if (rc == 0 && dst[0] && !sp_id_ok(dst, strlen(dst)))
        rc = SP_EPROTO;
    if (rc)
        dst[0] = '\0';
    return rc;
}

/* obj[key] as an integer in [min, max]; reals, strings, booleans are SP_EPROTO. Absent or
 * null: *present false and 0 unless required. */
static int get_int(const json_t *obj, const char *key, int64_t min, int64_t max, bool required,
                   int64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    *out = 0;
    if (present)
        *present = false;
    if (!v || json_is_null(v))
        return required ? SP_EPROTO : 0;
    if (!json_is_integer(v))
        return SP_EPROTO;
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return SP_EPROTO;
    *out = (int64_t)n;
    if (present)
        *present = true;
    return 0;
}

/* obj[key] as a boolean; absent or null is false; any other type SP_EPROTO. */
static int get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    *out = json_is_true(v);
    return (!v || json_is_null(v) || json_is_boolean(v)) ? 0 : SP_EPROTO;
}

/* "#RRGGBB" kept, anything else (absent, "", malformed) becomes "": colour is cosmetic. */
static void get_color(const json_t *obj, char dst[SP_PMSG_COLOR_CAP])
{
    const char *c = sp_json_str(obj, "color");
    dst[0] = '\0';
    if (!c || json_string_length(json_object_get(obj, "color")) != 7 || c[0] != '#')
        return;
    for (int i = 1; i < 7; i++)
        if (sp_hex_digit((unsigned char)c[i]) < 0)
            return;
    memcpy(dst, c, 8);
}

/* "1000" / "2000" / "3000" -> 1..3 */
static int get_tier(const json_t *event, int *tier)
{
    const char *t = sp_json_str(event, "tier");
    if (!t)
        return SP_EPROTO;
    if (strcmp(t, "1000") == 0)
        *tier = 1;
    else if (strcmp(t, "2000") == 0)
        *tier = 2;
    else if (strcmp(t, "3000") == 0)
        *tier = 3;
    else
        return SP_EPROTO;
    return 0;
}

/* The person: display name (user_name), else login; "Anonymous" when anon is set. */
static int get_person(const json_t *event, const char *prefix, bool anon, char *dst, size_t cap)
{
    char key[48];
    if (anon) {
        snprintf(dst, cap, "%s", "Anonymous");
        return 0;
    }
    snprintf(key, sizeof key, "%suser_name", prefix);
    int rc = get_str(event, key, dst, cap, false);
    if (rc == 0 && dst[0] == '\0') {
        snprintf(key, sizeof key, "%suser_login", prefix);
        rc = get_str(event, key, dst, cap, true);
    }
    return rc;
}

static int map_badges(const json_t *event, sp_chat_author_t *a)
{
    json_t *badges = json_object_get(event, "badges");
    if (!badges || json_is_null(badges))
        return 0;
    if (!json_is_array(badges))
        return SP_EPROTO;
    for (size_t i = 0; i < json_array_size(badges); i++) {
        json_t *b = json_array_get(badges, i);
        if (!json_is_object(b))
            return SP_EPROTO;
        if (a->n_badges == SP_PMSG_BADGES_MAX)
            continue; /* more than anyone can show; the rest stay in raw */
        sp_chat_badge_t *nb = &a->badges[a->n_badges];
        int rc = get_id(b, "set_id", nb->set_id, sizeof nb->set_id, true);
        if (rc == 0)
            rc = get_id(b, "id", nb->id, sizeof nb->id, true);
        if (rc)
            return rc;
        a->n_badges++;
    }
    return 0;
}

static int map_fragment(const json_t *f, sp_chat_msg_t *m)
{
    if (!json_is_object(f))
        return SP_EPROTO;
    const char *type = sp_json_str(f, "type");
    json_t *text = json_object_get(f, "text");
    if (!type || !json_is_string(text))
        return SP_EPROTO;
    sp_frag_type_t ft = SP_FRAG_TEXT;
    char url[SP_PMSG_URL_CAP] = "";
    if (strcmp(type, "emote") == 0) {
        json_t *emote = json_object_get(f, "emote");
        char id[SP_PMSG_BADGE_CAP];
        if (!json_is_object(emote) || get_id(emote, "id", id, sizeof id, true) != 0)
            return SP_EPROTO;
        snprintf(url, sizeof url, SP_TWITCH_EMOTE_URL_FMT, id);
        ft = SP_FRAG_EMOTE;
    } else if (strcmp(type, "mention") == 0) {
        ft = SP_FRAG_MENTION;
    } /* "text", "cheermote" and types Twitch adds later read as text */
    int rc = sp_chat_msg_add_fragment(m, ft, json_string_value(text), json_string_length(text),
                                      ft == SP_FRAG_EMOTE ? url : NULL);
    return rc == SP_EINVAL ? SP_EPROTO : rc;
}

static int map_chat(const json_t *ev, int64_t ts, sp_chat_msg_t *m)
{
    int rc;
    snprintf(m->platform, sizeof m->platform, "%s", "twitch");
    m->ts = ts;
    if ((rc = get_id(ev, "message_id", m->id, sizeof m->id, true)) ||
        (rc = get_id(ev, "chatter_user_id", m->author.id, sizeof m->author.id, true)) ||
        (rc = get_str(ev, "chatter_user_login", m->author.name, sizeof m->author.name, true)) ||
        (rc = get_str(ev, "chatter_user_name", m->author.display_name,
                      sizeof m->author.display_name, false)) ||
        (rc = map_badges(ev, &m->author)))
        return rc;
    if (!m->author.display_name[0])
        memcpy(m->author.display_name, m->author.name, strlen(m->author.name) + 1);
    get_color(ev, m->author.color);
    json_t *msg = json_object_get(ev, "message");
    if (!json_is_object(msg))
        return SP_EPROTO;
    if ((rc = get_str(msg, "text", m->text, sizeof m->text, false)))
        return rc;
    if (!json_is_string(json_object_get(msg, "text")))
        return SP_EPROTO;
    json_t *frags = json_object_get(msg, "fragments");
    if (json_is_array(frags)) {
        if (json_array_size(frags) > SP_PMSG_FRAGMENTS_MAX)
            return SP_ETOOBIG;
        for (size_t i = 0; i < json_array_size(frags); i++)
            if ((rc = map_fragment(json_array_get(frags, i), m)))
                return rc;
    } else if (frags && !json_is_null(frags)) {
        return SP_EPROTO;
    }
    if (m->n_fragments == 0 && m->text[0] &&
        (rc = sp_chat_msg_add_fragment(m, SP_FRAG_TEXT, m->text, strlen(m->text), NULL)))
        return rc;
    json_t *reply = json_object_get(ev, "reply");
    if (reply && !json_is_null(reply)) {
        if (!json_is_object(reply))
            return SP_EPROTO;
        if ((rc = get_id(reply, "parent_message_id", m->reply_to, sizeof m->reply_to, true)))
            return rc;
    }
    return 0;
}

/* Each alert mapper fills the type-specific fields; id, platform, ts are set by the caller. */
static int alert_follow(const json_t *ev, sp_alert_t *a)
{
    a->type = SP_ALERT_FOLLOW;
    const char *at = sp_json_str(ev, "followed_at");
    if (at && sp_twitch_parse_time(at, &a->ts) != 0)
        return SP_EPROTO;
    return get_person(ev, "", false, a->name, sizeof a->name);
}

static int alert_message_text(const json_t *ev, sp_alert_t *a)
{
    json_t *msg = json_object_get(ev, "message");
    if (!msg || json_is_null(msg))
        return 0;
    int rc;
    if (json_is_object(msg)) /* channel.subscription.message: {text, emotes} */
        rc = get_str(msg, "text", a->message, sizeof a->message, false);
    else /* channel.cheer: a string */
        rc = get_str(ev, "message", a->message, sizeof a->message, false);
    a->has_message = rc == 0 && a->message[0] != '\0';
    return rc;
}

static int alert_sub(const json_t *ev, bool resub, sp_alert_t *a)
{
    int rc;
    a->type = SP_ALERT_SUBSCRIPTION;
    if ((rc = get_tier(ev, &a->tier)) || (rc = get_person(ev, "", false, a->name, sizeof a->name)))
        return rc;
    if (!resub)
        return 0;
    if ((rc = get_int(ev, "cumulative_months", 0, MONTHS_MAX, false, &a->count, &a->has_count)))
        return rc;
    return alert_message_text(ev, a);
}

static int alert_gift(const json_t *ev, sp_alert_t *a)
{
    int rc;
    bool anon;
    a->type = SP_ALERT_GIFT_SUBSCRIPTION;
    if ((rc = get_bool(ev, "is_anonymous", &anon)) || (rc = get_tier(ev, &a->tier)) ||
        (rc = get_int(ev, "total", 1, GIFTS_MAX, true, &a->count, &a->has_count)))
        return rc;
    return get_person(ev, "", anon, a->name, sizeof a->name);
}

static int alert_cheer(const json_t *ev, sp_alert_t *a)
{
    int rc;
    bool anon;
    int64_t bits;
    a->type = SP_ALERT_CHEER;
    if ((rc = get_bool(ev, "is_anonymous", &anon)) ||
        (rc = get_int(ev, "bits", 1, BITS_MAX, true, &bits, NULL)) ||
        (rc = get_person(ev, "", anon, a->name, sizeof a->name)))
        return rc;
    a->has_amount = true;
    a->amount = (double)bits;
    snprintf(a->currency, sizeof a->currency, "%s", "bits");
    return alert_message_text(ev, a);
}

static int alert_raid(const json_t *ev, sp_alert_t *a)
{
    int rc;
    a->type = SP_ALERT_RAID;
    if ((rc = get_int(ev, "viewers", 0, RAIDERS_MAX, true, &a->count, &a->has_count)))
        return rc;
    return get_person(ev, "from_broadcaster_", false, a->name, sizeof a->name);
}

static int map_alert(const char *type, const json_t *ev, sp_alert_t *a)
{
    if (strcmp(type, "channel.follow") == 0)
        return alert_follow(ev, a);
    if (strcmp(type, "channel.subscribe") == 0)
        return alert_sub(ev, false, a);
    if (strcmp(type, "channel.subscription.message") == 0)
        return alert_sub(ev, true, a);
    if (strcmp(type, "channel.subscription.gift") == 0)
        return alert_gift(ev, a);
    if (strcmp(type, "channel.cheer") == 0)
        return alert_cheer(ev, a);
    return alert_raid(ev, a); /* the caller only passes the six alert types */
}

static bool is_alert_type(const char *t)
{
    static const char *const types[] = {
        "channel.follow", "channel.subscribe",  "channel.subscription.message",
        "channel.subscription.gift", "channel.cheer", "channel.raid",
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i]) == 0)
            return true;
    return false;
}

static int map_dispatch(const char *type, int64_t ts, const json_t *ev, sp_twitch_mapped_t *out)
{
    int rc;
    if (strcmp(type, "channel.chat.message") == 0) {
        out->kind = SP_TWITCH_CHAT;
        if ((rc = map_chat(ev, ts, &out->u.chat)))
            return rc;
        out->u.chat.raw = json_incref((json_t *)ev);
    } else if (strcmp(type, "channel.chat.message_delete") == 0) {
        sp_chat_deletion_t *d = &out->u.deleted;
        out->kind = SP_TWITCH_CHAT_DELETED;
        snprintf(d->platform, sizeof d->platform, "%s", "twitch");
        d->ts = ts;
        if ((rc = get_id(ev, "message_id", d->id, sizeof d->id, true)))
            return rc;
        d->raw = json_incref((json_t *)ev);
    } else if (is_alert_type(type)) {
        sp_alert_t *a = &out->u.alert;
        bool gift = false;
        if (strcmp(type, "channel.subscribe") == 0 && (rc = get_bool(ev, "is_gift", &gift)))
            return rc;
        if (gift)
            return 0; /* a recipient of a gift: the gift_subscription alert covers it */
        out->kind = SP_TWITCH_ALERT;
        memcpy(a->id, out->message_id, sizeof a->id);
        snprintf(a->platform, sizeof a->platform, "%s", "twitch");
        a->ts = ts;
        if ((rc = map_alert(type, ev, a)))
            return rc;
        a->raw = json_incref((json_t *)ev);
    } else if (strcmp(type, "stream.online") == 0) {
        out->kind = SP_TWITCH_STREAM_ONLINE;
        if ((rc = get_id(ev, "id", out->u.stream.stream_id, sizeof out->u.stream.stream_id,
                         false)))
            return rc;
        const char *at = sp_json_str(ev, "started_at");
        if (!at || sp_twitch_parse_time(at, &out->u.stream.started_at) != 0)
            return SP_EPROTO;
    } else if (strcmp(type, "stream.offline") == 0) {
        out->kind = SP_TWITCH_STREAM_OFFLINE;
        out->u.stream.started_at = ts;
    }
    return 0;
}

void sp_twitch_mapped_clear(sp_twitch_mapped_t *out)
{
    if (!out)
        return;
    if (out->kind == SP_TWITCH_CHAT)
        sp_chat_msg_clear(&out->u.chat);
    else if (out->kind == SP_TWITCH_CHAT_DELETED)
        sp_chat_deletion_clear(&out->u.deleted);
    else if (out->kind == SP_TWITCH_ALERT)
        sp_alert_clear(&out->u.alert);
    memset(out, 0, sizeof *out);
}

int sp_twitch_map_event(const char *sub_type, const char *message_id, const char *message_ts,
                        const json_t *event, sp_twitch_mapped_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t ts;
    size_t tlen = sub_type ? strnlen(sub_type, SP_TWITCH_SUBTYPE_CAP) : 0;
    size_t idlen = message_id ? strnlen(message_id, 65) : 0;
    if (tlen == 0 || !sp_id_ok(message_id, idlen) || sp_twitch_parse_time(message_ts, &ts) != 0)
        return SP_EPROTO;
    memcpy(out->message_id, message_id, idlen + 1);
    if (tlen == SP_TWITCH_SUBTYPE_CAP)
        return 0; /* longer than any type we map: ignored */
    memcpy(out->sub_type, sub_type, tlen + 1);
    if (!json_is_object(event)) {
        static const char *const known[] = {
            "channel.chat.message", "channel.chat.message_delete", "stream.online",
            "stream.offline",
        };
        bool mapped = is_alert_type(sub_type);
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            mapped = mapped || strcmp(sub_type, known[i]) == 0;
        if (mapped)
            memset(out, 0, sizeof *out); /* errors leave out cleared */
        return mapped ? SP_EPROTO : 0;
    }
    int rc = map_dispatch(out->sub_type, ts, event, out);
    if (rc) {
        sp_twitch_mapped_clear(out);
        return rc;
    }
    return 0;
}

/* Parses bytes into an object root; SP_ETOOBIG over the cap, SP_EPROTO if not a JSON object. */
static int load_root(const char *json, size_t len, json_t **root)
{
    *root = NULL;
    if (len > SP_TWITCH_MAP_MAX_INPUT)
        return SP_ETOOBIG;
    if (!json)
        return SP_EPROTO;
    json_error_t err;
    *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return SP_EPROTO;
    }
    return 0;
}

/* The subscription type from payload.subscription.type (and, when present, the same in
 * metadata.subscription_type). */
static const char *sub_type_of(const json_t *container, const json_t *metadata)
{
    const char *t = sp_json_str(json_object_get(container, "subscription"), "type");
    if (metadata) {
        json_t *mt = json_object_get(metadata, "subscription_type");
        if (mt && (!json_is_string(mt) || !t || strcmp(t, json_string_value(mt)) != 0))
            return NULL;
    }
    return t;
}

int sp_twitch_map_notification(const char *json, size_t len, sp_twitch_mapped_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *root;
    int rc = load_root(json, len, &root);
    if (rc)
        return rc;
    json_t *md = json_object_get(root, "metadata");
    json_t *payload = json_object_get(root, "payload");
    const char *mtype = sp_json_str(md, "message_type");
    if (!json_is_object(md) || !json_is_object(payload) || !mtype ||
        strcmp(mtype, "notification") != 0) {
        json_decref(root);
        return SP_EPROTO;
    }
    const char *st = sub_type_of(payload, md);
    rc = st ? sp_twitch_map_event(st, sp_json_str(md, "message_id"),
                                  sp_json_str(md, "message_timestamp"),
                                  json_object_get(payload, "event"), out)
            : SP_EPROTO;
    json_decref(root); /* out keeps its own reference to the event */
    return rc;
}

int sp_twitch_map_webhook(const char *body, size_t len, const char *message_id,
                          const char *message_ts, sp_twitch_mapped_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *root;
    int rc = load_root(body, len, &root);
    if (rc)
        return rc;
    const char *st = sub_type_of(root, NULL);
    rc = st ? sp_twitch_map_event(st, message_id, message_ts, json_object_get(root, "event"), out)
            : SP_EPROTO;
    json_decref(root);
    return rc;
}
