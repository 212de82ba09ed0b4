/*
 * sp_platform_msg: the normalised messages every platform client produces (Twitch, YouTube,
 * Kick, Facebook) and the alert queue, widgets and dashboard consume. Nothing outside
 * src/platforms/<name>/ knows a platform's JSON; everything else knows these structs and the
 * JSON shapes their encoders produce:
 *
 *   chat message   {id, platform, author:{id, name, display_name, color, badges:[{set_id, id}]},
 *                   text, fragments:[{type:"text"|"emote"|"mention", text, emote_url?}],
 *                   reply_to?, ts}
 *   chat deletion  {id, platform, ts}                  (id: the deleted chat message's id)
 *   alert          {id, type, platform, name, amount?, currency?, count?, tier?, message?, ts}
 *   viewers        {total, platforms:{twitch: N, ...}, ts}
 *   status         {platform, status, error?}
 *
 * ts is Unix milliseconds (a JSON integer). reply_to is the parent chat message's id (the same
 * id a reply sent through POST /api/chat names). Optional members are omitted, never null.
 * With SP_PMSG_RAW the encoders add "raw": the platform's own object (ids for persistence);
 * without it the output is exactly the shape above (what is published to browsers).
 *
 * Caps (bytes, excluding the NUL; generous enough for every platform: Twitch chat 500
 * characters, YouTube super chat 200 characters, Kick 500, Facebook comments ~8000):
 *   ids 128, platform 15, login name 128, display name 256, color 7 ("#RRGGBB" or ""),
 *   badges 16 of set_id/id 64, text and alert message 8192 (UTF-8, checked by jansson),
 *   fragments 256 (each with its own text up to 8192), emote URL 256, currency 15,
 *   status error 256.
 * The structs are plain values owned by the caller. A chat message owns its fragments array
 * and (like alerts and deletions) one reference to raw: release them with the matching
 * *_clear function (safe on a zeroed struct, and twice). The encoders are pure: they never
 * modify their input and return a new reference, or NULL when a field is out of its domain
 * (unknown enum value, negative count, a NaN amount).
 */
#ifndef SP_PLATFORM_MSG_H
#define SP_PLATFORM_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_PMSG_ID_CAP 129
#define SP_PMSG_PLATFORM_CAP 16
#define SP_PMSG_NAME_CAP 129
#define SP_PMSG_DISPLAY_CAP 257
#define SP_PMSG_COLOR_CAP 8
#define SP_PMSG_BADGES_MAX 16
#define SP_PMSG_BADGE_CAP 65
#define SP_PMSG_TEXT_CAP 8193
#define SP_PMSG_FRAGMENTS_MAX 256
#define SP_PMSG_URL_CAP 257
#define SP_PMSG_CURRENCY_CAP 16
#define SP_PMSG_ERROR_CAP 257
#define SP_PMSG_VIEWER_PLATFORMS_MAX 8
/* Counts (gift totals, raid viewers, months, viewers) and amounts are range-checked by the
 * platform mappers against these before they reach a struct; the encoders refuse values
 * outside them. */
#define SP_PMSG_COUNT_MAX 1000000000LL
#define SP_PMSG_AMOUNT_MAX 1e12

#define SP_PMSG_RAW 1u /* encoders: attach "raw" when the struct holds one */

typedef enum {
    SP_FRAG_TEXT = 0,
    SP_FRAG_EMOTE,
    SP_FRAG_MENTION,
} sp_frag_type_t;

typedef struct {
    sp_frag_type_t type;
    char *text;                          /* heap, NUL-terminated, <= SP_PMSG_TEXT_CAP - 1 */
    char emote_url[SP_PMSG_URL_CAP];     /* SP_FRAG_EMOTE only; "" otherwise */
} sp_chat_fragment_t;

typedef struct {
    char set_id[SP_PMSG_BADGE_CAP];
    char id[SP_PMSG_BADGE_CAP];
} sp_chat_badge_t;

typedef struct {
    char id[SP_PMSG_ID_CAP];
    char name[SP_PMSG_NAME_CAP];         /* login / handle */
    char display_name[SP_PMSG_DISPLAY_CAP];
    char color[SP_PMSG_COLOR_CAP];       /* "#RRGGBB" or "" */
    sp_chat_badge_t badges[SP_PMSG_BADGES_MAX];
    size_t n_badges;
} sp_chat_author_t;

typedef struct {
    char id[SP_PMSG_ID_CAP];
    char platform[SP_PMSG_PLATFORM_CAP];
    sp_chat_author_t author;
    char text[SP_PMSG_TEXT_CAP];
    sp_chat_fragment_t *fragments;       /* owned; n_fragments <= SP_PMSG_FRAGMENTS_MAX */
    size_t n_fragments;
    char reply_to[SP_PMSG_ID_CAP];       /* "" when not a reply */
    int64_t ts;                          /* Unix ms */
    json_t *raw;                         /* owned reference or NULL */
} sp_chat_msg_t;

typedef struct {
    char id[SP_PMSG_ID_CAP];             /* the deleted message's id */
    char platform[SP_PMSG_PLATFORM_CAP];
    int64_t ts;
    json_t *raw;                         /* owned reference or NULL */
} sp_chat_deletion_t;

typedef enum {
    SP_ALERT_FOLLOW = 0,
    SP_ALERT_SUBSCRIPTION,
    SP_ALERT_GIFT_SUBSCRIPTION,
    SP_ALERT_CHEER,
    SP_ALERT_RAID,
    SP_ALERT_SUPER_CHAT,
    SP_ALERT_MEMBER,
    SP_ALERT_DONATION,
    SP_ALERT_TYPE_COUNT
} sp_alert_type_t;

typedef struct {
    char id[SP_PMSG_ID_CAP];             /* stable across redeliveries: the dedupe key */
    sp_alert_type_t type;
    char platform[SP_PMSG_PLATFORM_CAP];
    char name[SP_PMSG_DISPLAY_CAP];      /* who: display name, or "Anonymous" */
    bool has_amount;
    double amount;                       /* 0..SP_PMSG_AMOUNT_MAX; whole numbers encode as ints */
    char currency[SP_PMSG_CURRENCY_CAP]; /* "" = absent; "bits", "USD", ... */
    bool has_count;
    int64_t count;                       /* 0..SP_PMSG_COUNT_MAX: gifts, raiders, months */
    int tier;                            /* 0 = absent, else 1..3 */
    bool has_message;
    char message[SP_PMSG_TEXT_CAP];
    int64_t ts;
    json_t *raw;                         /* owned reference or NULL */
} sp_alert_t;

typedef struct {
    char platform[SP_PMSG_PLATFORM_CAP];
    int64_t count;                       /* 0..SP_PMSG_COUNT_MAX */
} sp_viewer_count_t;

typedef struct {
    sp_viewer_count_t platforms[SP_PMSG_VIEWER_PLATFORMS_MAX];
    size_t n_platforms;                  /* total = the sum, computed by the encoder */
    int64_t ts;
} sp_viewers_t;

typedef enum {
    SP_PSTATUS_CONNECTING = 0,
    SP_PSTATUS_CONNECTED,
    SP_PSTATUS_DEGRADED,
    SP_PSTATUS_NEEDS_REAUTH,
    SP_PSTATUS_STOPPED,
    SP_PSTATUS_COUNT
} sp_platform_status_t;

typedef struct {
    char platform[SP_PMSG_PLATFORM_CAP];
    sp_platform_status_t status;
    char error[SP_PMSG_ERROR_CAP];       /* "" = absent */
} sp_platform_status_msg_t;

/** "follow", "subscription", ...; NULL for a value outside the enum. */
const char *sp_alert_type_name(sp_alert_type_t t);
/** Parses a name from sp_alert_type_name; 0, or SP_EINVAL (out untouched). */
int sp_alert_type_parse(const char *s, sp_alert_type_t *out);
/** "connecting", "connected", "degraded", "needs_reauth", "stopped"; NULL outside the enum. */
const char *sp_platform_status_name(sp_platform_status_t s);
/** Parses a name from sp_platform_status_name; 0, or SP_EINVAL (out untouched). */
int sp_platform_status_parse(const char *s, sp_platform_status_t *out);
/** "text", "emote", "mention"; NULL outside the enum. */
const char *sp_frag_type_name(sp_frag_type_t t);

/**
 * Appends a fragment to m (copying text, at most SP_PMSG_TEXT_CAP - 1 bytes, no NUL inside;
 * emote_url may be NULL, at most SP_PMSG_URL_CAP - 1 bytes). 0, SP_ETOOBIG (text, URL or
 * fragment count over its cap) or SP_ENOMEM; m is unchanged on error.
 */
int sp_chat_msg_add_fragment(sp_chat_msg_t *m, sp_frag_type_t type, const char *text,
                             size_t len, const char *emote_url);
/** Releases fragments and raw; m is left zeroed. NULL is a no-op. */
void sp_chat_msg_clear(sp_chat_msg_t *m);
void sp_chat_deletion_clear(sp_chat_deletion_t *d);
void sp_alert_clear(sp_alert_t *a);

/* Encoders: a new reference in exactly the shapes above, or NULL (out of domain / no memory). */
json_t *sp_chat_msg_to_json(const sp_chat_msg_t *m, unsigned flags);
json_t *sp_chat_deletion_to_json(const sp_chat_deletion_t *d, unsigned flags);
json_t *sp_alert_to_json(const sp_alert_t *a, unsigned flags);
json_t *sp_viewers_to_json(const sp_viewers_t *v);
json_t *sp_platform_status_to_json(const sp_platform_status_msg_t *s);

#endif
