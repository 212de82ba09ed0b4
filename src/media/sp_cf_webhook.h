/*
 * sp_cf_webhook: Cloudflare Notifications ("Stream Live Input") webhooks.
 *
 *  - sp_cf_webhook_auth_ok: constant-time check of the cf-webhook-auth header
 *    against CLOUDFLARE_WEBHOOK_SECRET (the plain secret; Cloudflare signs nothing).
 *    Call it BEFORE parsing the body; answer 401 on false and change nothing.
 *  - sp_cf_webhook_parse: pure parse of the JSON payload
 *      {"name", "text", "data": {"input_id", "event_type", "updated_at", ...}, "ts"}
 *    with caps (body <= SP_CF_WEBHOOK_MAX_BODY, ids <= 64 chars).
 * There is no signed timestamp and no message id: receivers de-duplicate on
 * (input_id, event_type, updated_at) and ignore events whose updated_ms is older than
 * the state they already applied (docs/internals/media-client.md, "sp_cf_webhook").
 */
#ifndef SP_CF_WEBHOOK_H
#define SP_CF_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_CF_WEBHOOK_MAX_BODY (64 * 1024)

typedef enum {
    SP_CF_EVT_OTHER = 0,    /* valid JSON but not a live-input event (e.g. the "Hello World" test
                             * POST sent when the destination is created): answer 200, ignore */
    SP_CF_EVT_CONNECTED,
    SP_CF_EVT_DISCONNECTED,
    SP_CF_EVT_ERRORED,
    SP_CF_EVT_REC_STARTED, /* the built-in relay's live_input.recording_started */
    SP_CF_EVT_REC_ENDED,   /* ... live_input.recording_ended (data.recording: bytes, ...) */
} sp_cf_event_type_t;

typedef struct {
    sp_cf_event_type_t type;
    char input_id[65];
    char updated_at[64];   /* as sent (RFC 3339, often nanoseconds); "" if absent */
    int64_t updated_ms;    /* updated_at as Unix ms; 0 if absent/unparseable */
    int64_t ts;            /* top-level "ts" (Unix seconds); 0 if absent */
    char error_code[64];   /* errored: data.live_input_errored.error.code */
    char error_message[256];
    /* recording events: data.recording {bytes, duration_ms, error}; -1 / "" when absent */
    int64_t rec_bytes;
    int64_t rec_duration_ms;
    char rec_error[160];
} sp_cf_webhook_event_t;

/** 0 (out filled), SP_ETOOBIG (body over the cap), SP_EPROTO (not JSON / wrong types /
 *  a live-input event without a valid input_id). */
int sp_cf_webhook_parse(const uint8_t *body, size_t len, sp_cf_webhook_event_t *out);

/** true iff secret is non-empty and header (len bytes, surrounding blanks ignored) equals it.
 *  Constant time with respect to the content (sodium_memcmp); only the length can leak. */
bool sp_cf_webhook_auth_ok(const char *header, size_t header_len, const char *secret);

/** The whole receiver check in the right order, for POST /webhooks/cloudflare. Returns the
 *  HTTP status to answer: 401 (auth failed: checked first, body not parsed), 413 (body over
 *  the cap), 400 (malformed), 200 (out filled; out->type may be SP_CF_EVT_OTHER: ignore). */
int sp_cf_webhook_receive(const char *auth_header, size_t auth_len, const uint8_t *body,
                          size_t len, const char *secret, sp_cf_webhook_event_t *out);


const char *sp_cf_event_type_name(sp_cf_event_type_t t);

typedef enum {
    SP_CF_WEBHOOK_APPLY = 0, /* newer than what we know: apply it */
    SP_CF_WEBHOOK_DUPLICATE, /* same event as the one applied last: 2xx, no side effect */
    SP_CF_WEBHOOK_STALE,     /* older than the state we hold: 2xx, ignored */
} sp_cf_webhook_verdict_t;

/** Pure: compares an event with the last applied one for the same input (applied_ms = its
 *  updated time in Unix ms, 0 if none; applied_type = its type). Events without a usable
 *  updated_at fall back to ts (seconds). An event with no time at all is applied only if
 *  its type differs from applied_type. */
sp_cf_webhook_verdict_t sp_cf_webhook_classify(const sp_cf_webhook_event_t *e, int64_t applied_ms,
                                               sp_cf_event_type_t applied_type);
/** The event's effective time in Unix ms (updated_ms, else ts * 1000, else 0). */
int64_t sp_cf_webhook_event_ms(const sp_cf_webhook_event_t *e);

#endif
