/*
 * helix: Twitch Helix REST as pure functions: request bodies built, answers parsed and
 * classified, rate-limit headers turned into a wait. No I/O (the platform client sends the
 * requests with sp_curlm, with `Authorization: Bearer <token>` and `Client-Id` on every call).
 *
 * Every parser takes (status, body, len), never reads past len, caps the body at
 * SP_HELIX_MAX_BODY, copies strings bounded (a field that does not fit is an error, never a
 * truncation) and range-checks numbers before use. Shapes: docs/platforms.md ("Twitch Helix").
 */
#ifndef SP_TWITCH_HELIX_H
#define SP_TWITCH_HELIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"

#define SP_HELIX_MAX_BODY (256 * 1024)
#define SP_HELIX_MAX_CHAT 500       /* characters (code points) per chat message */
#define SP_HELIX_MAX_TITLE 140      /* characters of a channel title */
#define SP_HELIX_MAX_WAIT_MS 120000 /* a rate-limit wait is never longer */

/**
 * What an answer's status means for the caller: 0 (2xx), SP_EAUTH (401: refresh the token
 * once, then needs_reauth), SP_EFORBIDDEN (403: missing scope / not allowed), SP_ERATELIMIT
 * (429), SP_EUPSTREAM (5xx), SP_ENOTFOUND (404), SP_EINVAL (other 4xx).
 */
int sp_helix_status(int http_status);

/**
 * How long to wait before the next call, from the answer's headers (NULL when absent):
 * Ratelimit-Remaining, Ratelimit-Reset (Unix epoch seconds) and Retry-After (seconds). 0 when
 * calls may go on. A 429, or Remaining 0, waits until Reset (or Retry-After, or 1 s when
 * neither is usable), clamped to 0..SP_HELIX_MAX_WAIT_MS. Malformed values are ignored.
 */
int64_t sp_helix_wait_ms(int http_status, const char *remaining, const char *reset,
                         const char *retry_after, int64_t now_ms);

typedef struct {
    char id[32];
    char login[64];
    char display_name[128];
    char email[256]; /* "" without the user:read:email scope */
} sp_helix_user_t;
/** GET /helix/users: the first user of "data". SP_ENOTFOUND when data is empty. */
int sp_helix_parse_user(int status, const char *body, size_t len, sp_helix_user_t *out);

typedef struct {
    bool live;
    int64_t viewer_count;  /* 0..SP_HELIX_MAX_VIEWERS */
    int64_t started_at_ms; /* 0 when absent */
    char title[512];
    char game_id[32];
    char game_name[256];
} sp_helix_stream_t;
#define SP_HELIX_MAX_VIEWERS 100000000LL
/** GET /helix/streams?user_id=: live with viewers, or live=false for `{"data":[]}`. */
int sp_helix_parse_stream(int status, const char *body, size_t len, sp_helix_stream_t *out);

/** GET /helix/streams/key: the key into out (cap bytes incl. NUL). */
int sp_helix_parse_stream_key(int status, const char *body, size_t len, char *out, size_t cap);

typedef struct {
    char message_id[64];
    bool is_sent;
    char drop_code[64];
    char drop_message[256];
} sp_helix_chat_sent_t;
/** POST /helix/chat/messages answer. */
int sp_helix_parse_chat_sent(int status, const char *body, size_t len, sp_helix_chat_sent_t *out);

/** Body of POST /helix/chat/messages; reply_to may be NULL. SP_EINVAL for an empty message or
 *  ids, SP_ETOOBIG over SP_HELIX_MAX_CHAT characters, SP_EUTF8 for invalid UTF-8. */
int sp_helix_chat_body(const char *broadcaster_id, const char *sender_id, const char *message,
                       const char *reply_to, sp_buf_t *out);

/** Body of PATCH /helix/channels: title (1..SP_HELIX_MAX_TITLE characters) and/or game_id
 *  (NULL: unchanged, "": unset the category). SP_EINVAL when both are NULL or title is "". */
int sp_helix_channel_body(const char *title, const char *game_id, sp_buf_t *out);

#endif
