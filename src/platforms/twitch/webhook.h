/*
 * webhook: pure verification of a Twitch EventSub webhook request (POST /webhooks/twitch),
 * the web handler's whole decision in one call, checks in this order:
 *   1. body over SP_TWITCH_WH_MAX_BODY                              -> 413 "body_too_big"
 *   2. no secret configured                                         -> 403 "no_secret"
 *   3. a missing Twitch-Eventsub-Message-Id/-Timestamp/-Signature/-Type header -> 400
 *   4. signature != "sha256=" + lowercase hex HMAC-SHA256(secret, id + timestamp + body),
 *      compared in constant time (libsodium)                        -> 403 "bad_signature"
 *   5. timestamp (RFC 3339, any fraction) unparseable               -> 403 "bad_timestamp";
 *      older than SP_TWITCH_WH_MAX_AGE_MS before now_ms (replay)    -> 403 "stale";
 *      more than SP_TWITCH_WH_MAX_FUTURE_MS after now_ms            -> 403 "future"
 *   6. body not the JSON of its type                                -> 400 "bad_body"
 * then, by Twitch-Eventsub-Message-Type:
 *   webhook_callback_verification -> 200, answer `challenge` raw as text/plain
 *   notification                  -> 204, hand `event` to the mapper
 *   revocation                    -> 204, the subscription type is dropped (status says why)
 *   anything else                 -> 400 "unknown_type"
 * De-duplication by message_id is the caller's (persistent, unique per platform): a replay
 * with a fresh signature inside the 10-minute window passes this check by design.
 */
#ifndef SP_TWITCH_WEBHOOK_H
#define SP_TWITCH_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SP_TWITCH_WH_MAX_BODY (64 * 1024)
#define SP_TWITCH_WH_MAX_AGE_MS (10 * 60 * 1000)
#define SP_TWITCH_WH_MAX_FUTURE_MS (5 * 60 * 1000)
#define SP_TWITCH_WH_CHALLENGE_MAX 512 /* incl. NUL */

typedef enum {
    SP_TWITCH_WH_REFUSED = 0,
    SP_TWITCH_WH_VERIFICATION,
    SP_TWITCH_WH_NOTIFICATION,
    SP_TWITCH_WH_REVOCATION,
} sp_twitch_wh_kind_t;

typedef struct {
    const char *message_id; /* Twitch-Eventsub-Message-Id; NULL when absent */
    const char *timestamp;  /* Twitch-Eventsub-Message-Timestamp */
    const char *signature;  /* Twitch-Eventsub-Message-Signature */
    const char *type;       /* Twitch-Eventsub-Message-Type */
    const uint8_t *body;
    size_t body_len;
} sp_twitch_wh_request_t;

typedef struct {
    sp_twitch_wh_kind_t kind;
    int http_status;
    const char *reason;      /* refused: snake_case; "" otherwise */
    char message_id[128];
    int64_t timestamp_ms;
    char sub_type[64];       /* notification / revocation: subscription.type */
    char sub_status[64];     /* revocation: subscription.status (why) */
    char challenge[SP_TWITCH_WH_CHALLENGE_MAX];
    json_t *event;           /* notification: the event object (owned; see result_free) */
} sp_twitch_wh_result_t;

/** Fills out (always). Returns out->http_status. secret: TWITCH_WEBHOOK_SECRET. */
int sp_twitch_wh_verify(const sp_twitch_wh_request_t *req, const char *secret, int64_t now_ms,
                        sp_twitch_wh_result_t *out);
/** Releases out->event. */
void sp_twitch_wh_result_free(sp_twitch_wh_result_t *out);

#endif
