/*
 * twitch/map: Twitch EventSub notification JSON -> one normalised message (pure, fuzzed).
 *
 * Two transports, one mapping:
 *   WebSocket  {"metadata":{message_id, message_type:"notification", message_timestamp,
 *               subscription_type, ...}, "payload":{"subscription":{type,...}, "event":{...}}}
 *              -> sp_twitch_map_notification
 *   webhook    body {"subscription":{type,...}, "event":{...}}, message id and timestamp in the
 *              Twitch-Eventsub-Message-Id / -Timestamp headers -> sp_twitch_map_webhook
 *   both end in sp_twitch_map_event (subscription type + event object), usable directly by a
 *   caller that already parsed the envelope (the EventSub session machine).
 *
 * Every notification produces exactly one of (out->kind):
 *   CHAT          channel.chat.message              chat message, id = event.message_id
 *   CHAT_DELETED  channel.chat.message_delete       chat deletion, id = event.message_id
 *   ALERT         channel.follow                    follow
 *                 channel.subscribe (not a gift)    subscription, tier
 *                 channel.subscription.message      subscription, tier, count = cumulative
 *                                                   months, message = message.text
 *                 channel.subscription.gift         gift_subscription, count = total, tier,
 *                                                   name "Anonymous" when is_anonymous
 *                 channel.cheer                     cheer, amount = bits, currency "bits",
 *                                                   message, name "Anonymous" when anonymous
 *                 channel.raid                      raid, name = from_broadcaster_user_name,
 *                                                   count = viewers
 *                 alert id = the notification's message id (stable across redeliveries)
 *   STREAM_ONLINE / STREAM_OFFLINE   stream.online (started_at, stream id) / stream.offline
 *   IGNORED       any other type; channel.subscribe with is_gift (the gift alert covers it)
 * out->message_id is always the notification's message id: the dedupe key.
 *
 * Errors (out is then cleared, kind IGNORED, nothing to free): SP_ETOOBIG (input over
 * SP_TWITCH_MAP_MAX_INPUT, a string over its cap, too many fragments), SP_EPROTO (not JSON,
 * not a notification, a field of the wrong type or missing, a number out of range, a bad
 * timestamp or tier), SP_ENOMEM. Timestamps (RFC 3339, nanoseconds) must lie in
 * [2000-01-01, 2100-01-01). Counts are checked against their real ranges before use.
 * On success release out with sp_twitch_mapped_clear (it may hold heap fragments and a
 * reference to the event object, kept as the message's raw).
 */
#ifndef SP_TWITCH_MAP_H
#define SP_TWITCH_MAP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "platforms/sp_platform_msg.h"

#define SP_TWITCH_MAP_MAX_INPUT (64 * 1024)
#define SP_TWITCH_SUBTYPE_CAP 65
#define SP_TWITCH_EMOTE_URL_FMT "https://static-cdn.jtvnw.net/emoticons/v2/%s/default/dark/1.0"

typedef enum {
    SP_TWITCH_IGNORED = 0,
    SP_TWITCH_CHAT,
    SP_TWITCH_CHAT_DELETED,
    SP_TWITCH_ALERT,
    SP_TWITCH_STREAM_ONLINE,
    SP_TWITCH_STREAM_OFFLINE,
} sp_twitch_kind_t;

typedef struct {
    sp_twitch_kind_t kind;
    char message_id[SP_PMSG_ID_CAP];          /* notification message id: the dedupe key */
    char sub_type[SP_TWITCH_SUBTYPE_CAP];     /* e.g. "channel.follow" */
    union {
        sp_chat_msg_t chat;                   /* SP_TWITCH_CHAT */
        sp_chat_deletion_t deleted;           /* SP_TWITCH_CHAT_DELETED */
        sp_alert_t alert;                     /* SP_TWITCH_ALERT */
        struct {                              /* SP_TWITCH_STREAM_ONLINE / _OFFLINE */
            char stream_id[SP_PMSG_ID_CAP];   /* online only; "" if absent */
            int64_t started_at;               /* online: Unix ms; offline: notification ts */
        } stream;
    } u;
} sp_twitch_mapped_t;

/** A WebSocket message (bytes; need not be NUL-terminated). See the top comment. */
int sp_twitch_map_notification(const char *json, size_t len, sp_twitch_mapped_t *out);

/** A webhook body plus the Twitch-Eventsub-Message-Id and -Timestamp header values. */
int sp_twitch_map_webhook(const char *body, size_t len, const char *message_id,
                          const char *message_ts, sp_twitch_mapped_t *out);

/**
 * The common core: sub_type (the subscription type), the notification's message id and
 * timestamp (RFC 3339), and the event object (borrowed; a reference is kept as raw).
 */
int sp_twitch_map_event(const char *sub_type, const char *message_id, const char *message_ts,
                        const json_t *event, sp_twitch_mapped_t *out);

/** Releases what a successful map left in out; out is left zeroed (kind IGNORED). */
void sp_twitch_mapped_clear(sp_twitch_mapped_t *out);

/** RFC 3339 (any fraction, Z or +hh:mm) to Unix ms within [2000, 2100); 0 or SP_EPROTO. */
int sp_twitch_parse_time(const char *s, int64_t *out_ms);

#endif
