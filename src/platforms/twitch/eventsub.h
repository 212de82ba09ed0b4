/*
 * eventsub: the Twitch EventSub WebSocket session as a pure state machine (no I/O, no clocks:
 * the caller owns the sockets, the timer and the HTTP calls, feeds events in and executes the
 * returned actions in order). docs/platforms-twitch-eventsub.md has the diagram and tables.
 *
 * Lifecycle
 *   idle --START--> connecting --OPENED--> awaiting_welcome --welcome--> subscribing
 *   subscribing --SUBS_RESULT (>= 1 created)--> live
 *   live --session_reconnect--> reconnecting (CONNECT reconnect_url; the old socket stays and
 *        keeps delivering) --welcome on the new socket--> live (CLOSE old; subscriptions are
 *        NOT re-created: they carry over to the new session)
 *   any connected state --close / keepalive timeout / welcome timeout--> backoff (CLOSE what
 *        is left, RECONNECT_LATER with sp_backoff jitter) --TICK at the time--> connecting
 *        (a fresh session: subscriptions ARE re-created after its welcome)
 *   any --STOP--> closed (status stopped);  authorization_revoked --> failed (needs_reauth)
 *   closed / failed --START--> connecting
 *
 * Sockets are named by ids this machine hands out in CONNECT actions (1, 2, ...). Events for
 * a socket it no longer tracks (already closed by a CLOSE action, or superseded) are ignored,
 * so a late close or message from an old socket can never disturb the new session. After a
 * CLOSE action the caller need not feed that socket's CLOSED event (it would be ignored).
 *
 * Messages: the raw text frame is parsed here (cap SP_TWITCH_ES_MAX_MSG). Any valid envelope
 * on the current socket counts as traffic for the keepalive. Notifications and revocations
 * are delivered once: message ids are remembered in a ring of the last SP_TWITCH_ES_DEDUP ids
 * (64-bit FNV-1a hashes, shared by both sockets and across reconnects; persistent dedupe
 * across restarts is the caller's, e.g. a unique key in `events`), and those whose
 * message_timestamp is more than SP_TWITCH_ES_MAX_AGE_MS before wall_ms are refused.
 *
 * Timers: one deadline at a time, per state (connect, welcome, keepalive = last traffic +
 * keepalive_timeout_seconds + SP_TWITCH_ES_KEEPALIVE_MARGIN_MS, migration grace, backoff).
 * ARM_TIMER / RECONNECT_LATER give its absolute time on the caller's monotonic clock; the
 * caller (re)starts its one timer and feeds TICK when it fires. A TICK before the deadline
 * (traffic moved it) answers with a fresh ARM_TIMER.
 *
 * Size: about 4.6 KiB per session (two urls, ids, the 2 KiB dedupe ring), no heap but the
 * held frame.
 *
 * Lifetime: pointers in actions (urls, ids, the event JSON) borrow from the machine and stay
 * valid until the next sp_twitch_es_apply or sp_twitch_es_free. The machine holds a jansson
 * reference for DELIVER; sp_twitch_es_free releases it.
 */
#ifndef SP_TWITCH_EVENTSUB_H
#define SP_TWITCH_EVENTSUB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_backoff.h"

#define SP_TWITCH_ES_MAX_MSG (64 * 1024)          /* a larger frame is refused unparsed */
#define SP_TWITCH_ES_DEDUP 256                    /* message ids remembered (2 KiB) */
#define SP_TWITCH_ES_MAX_AGE_MS (10 * 60 * 1000)  /* older notifications are refused */
#define SP_TWITCH_ES_KEEPALIVE_MARGIN_MS 5000     /* added to keepalive_timeout_seconds */
#define SP_TWITCH_ES_CONNECT_TIMEOUT_MS 15000     /* START/TICK -> OPENED */
#define SP_TWITCH_ES_WELCOME_TIMEOUT_MS 10000     /* OPENED -> session_welcome */
#define SP_TWITCH_ES_RECONNECT_GRACE_MS 30000     /* session_reconnect -> new welcome */
#define SP_TWITCH_ES_DEGRADED_AFTER 3             /* failed attempts in a row -> degraded */
#define SP_TWITCH_ES_MAX_ACTIONS 8
#define SP_TWITCH_ES_ID_MAX 128                   /* session / message ids, incl. NUL */
#define SP_TWITCH_ES_URL_MAX 1024                 /* ws(s) urls, incl. NUL */

typedef enum {
    SP_TWITCH_ES_IDLE = 0,
    SP_TWITCH_ES_CONNECTING,       /* CONNECT issued, waiting for OPENED */
    SP_TWITCH_ES_AWAITING_WELCOME, /* socket open, waiting for session_welcome */
    SP_TWITCH_ES_SUBSCRIBING,      /* CREATE_SUBS issued, waiting for SUBS_RESULT */
    SP_TWITCH_ES_LIVE,
    SP_TWITCH_ES_RECONNECTING,     /* migrating to reconnect_url, old socket still open */
    SP_TWITCH_ES_BACKOFF,          /* waiting to open a fresh session */
    SP_TWITCH_ES_CLOSED,           /* stopped by the caller */
    SP_TWITCH_ES_FAILED,           /* needs re-authorisation; START again after it */
} sp_twitch_es_state_t;

/* The subscriptions a monitor creates, with their versions (platform-apis.md A.4). */
typedef enum {
    SP_TWITCH_SUB_CHAT_MESSAGE = 0, /* channel.chat.message v1: broadcaster_user_id, user_id */
    SP_TWITCH_SUB_FOLLOW,           /* channel.follow v2: broadcaster_user_id, moderator_user_id */
    SP_TWITCH_SUB_SUBSCRIBE,        /* channel.subscribe v1 */
    SP_TWITCH_SUB_GIFT,             /* channel.subscription.gift v1 */
    SP_TWITCH_SUB_RESUB,            /* channel.subscription.message v1 */
    SP_TWITCH_SUB_CHEER,            /* channel.cheer v1 */
    SP_TWITCH_SUB_RAID,             /* channel.raid v1: to_broadcaster_user_id */
    SP_TWITCH_SUB_ONLINE,           /* stream.online v1 */
    SP_TWITCH_SUB_OFFLINE,          /* stream.offline v1 */
    SP_TWITCH_SUB_CHAT_DELETE,      /* channel.chat.message_delete v1: broadcaster_user_id,
                                     * user_id (moderation removals -> chat `deleted`) */
    SP_TWITCH_SUB_COUNT,
} sp_twitch_sub_t;

#define SP_TWITCH_SUB_ALL ((1u << SP_TWITCH_SUB_COUNT) - 1u)

typedef enum {
    SP_TWITCH_ES_ST_CONNECTING = 0,
    SP_TWITCH_ES_ST_CONNECTED,
    SP_TWITCH_ES_ST_DEGRADED,
    SP_TWITCH_ES_ST_NEEDS_REAUTH,
    SP_TWITCH_ES_ST_STOPPED,
} sp_twitch_es_status_t;

typedef enum {
    SP_TWITCH_ES_EV_START = 0,   /* (re)start from idle/closed/failed */
    SP_TWITCH_ES_EV_STOP,
    SP_TWITCH_ES_EV_OPENED,      /* sock: the WebSocket handshake completed */
    SP_TWITCH_ES_EV_MESSAGE,     /* sock, data/len: one text frame; wall_ms for its age */
    SP_TWITCH_ES_EV_CLOSED,      /* sock, close_code (0 or 1006: no close frame / failed) */
    SP_TWITCH_ES_EV_TICK,        /* the timer fired */
    SP_TWITCH_ES_EV_SUBS_RESULT, /* sock (of the CREATE_SUBS), subs_ok / subs_failed masks;
                                  * 409 (already exists) counts as ok; auth_failed: a 401
                                  * the token refresh could not fix */
} sp_twitch_es_event_type_t;

typedef struct {
    sp_twitch_es_event_type_t type;
    uint32_t sock;
    int64_t now_ms;  /* monotonic ms: every event */
    int64_t wall_ms; /* Unix ms: MESSAGE (message age) */
    const char *data;
    size_t len;
    int close_code;
    unsigned subs_ok;
    unsigned subs_failed;
    bool auth_failed;
} sp_twitch_es_event_t;

typedef enum {
    SP_TWITCH_ES_A_CONNECT = 0,  /* sock, url: open a WebSocket (send nothing on it, answer
                                  * pings: Twitch closes 4001/4002 otherwise) */
    SP_TWITCH_ES_A_CLOSE,        /* sock: close it (or abort the attempt) */
    SP_TWITCH_ES_A_CREATE_SUBS,  /* sock, session_id, subs mask: one POST per type
                                  * (sp_twitch_es_sub_body), then feed SUBS_RESULT */
    SP_TWITCH_ES_A_DELIVER,      /* message_id, sub_type, sub_version, event (borrowed) */
    SP_TWITCH_ES_A_REVOKED,      /* sub_type, reason (the revocation status): type dropped */
    SP_TWITCH_ES_A_STATUS,       /* status, reason ("" when none) */
    SP_TWITCH_ES_A_ARM_TIMER,    /* at_ms */
    SP_TWITCH_ES_A_RECONNECT_LATER, /* at_ms = now + delay_ms (backoff with jitter) */
    SP_TWITCH_ES_A_CANCEL_TIMER,
} sp_twitch_es_action_type_t;

typedef struct {
    sp_twitch_es_action_type_t type;
    uint32_t sock;
    const char *url;
    const char *session_id;
    unsigned subs;
    const char *message_id;
    const char *sub_type;
    const char *sub_version;
    json_t *event;
    sp_twitch_es_status_t status;
    const char *reason;
    int64_t at_ms;
    uint64_t delay_ms;
} sp_twitch_es_action_t;

typedef struct {
    int err;          /* 0, or SP_EINVAL (bad event / START when running) */
    const char *note; /* why an input changed nothing: "duplicate", "stale", "bad_message",
                       * "unknown_socket", "early", "not_running"...; NULL otherwise */
    size_t n;
    sp_twitch_es_action_t a[SP_TWITCH_ES_MAX_ACTIONS];
} sp_twitch_es_result_t;

typedef struct {
    sp_twitch_es_state_t state;
    char base_url[SP_TWITCH_ES_URL_MAX];
    char reconnect_url[SP_TWITCH_ES_URL_MAX];
    char session_id[SP_TWITCH_ES_ID_MAX];
    char msg_id[SP_TWITCH_ES_ID_MAX];   /* of the DELIVER / REVOKED being handed out */
    char reason[96];                    /* of the STATUS being handed out */
    char revoked[64];                   /* of the REVOKED being handed out */
    char sub_type[64];                  /* of a DELIVER for a type not in the table */
    unsigned want;                      /* subscriptions wanted (mask) */
    unsigned active;                    /* created on the session and not revoked */
    uint32_t next_id;                   /* last socket id handed out */
    uint32_t cur;                       /* the session's socket (0 = none) */
    uint32_t mig;                       /* reconnecting: the new socket (0 = none) */
    bool mig_open;
    int64_t deadline;                   /* monotonic ms, 0 = none */
    int64_t last_rx;                    /* last traffic on cur (monotonic ms) */
    int64_t keepalive_ms;
    sp_backoff_t backoff;
    uint64_t seen[SP_TWITCH_ES_DEDUP];  /* ring of message-id hashes, 0 = empty */
    unsigned seen_pos;
    json_t *held;                       /* the parsed frame an action borrows from */
} sp_twitch_es_t;

/** url: the base WebSocket url (ws:// or wss://, < SP_TWITCH_ES_URL_MAX). subs: the mask to
 *  create (0 = SP_TWITCH_SUB_ALL). backoff_base_ms/max_ms: 0 for 1000 / 60000. 0 or
 *  SP_EINVAL. */
int sp_twitch_es_init(sp_twitch_es_t *es, const char *url, unsigned subs, uint64_t backoff_base_ms,
                      uint64_t backoff_max_ms);
/** Releases the held frame. The struct may be re-initialised after. */
void sp_twitch_es_free(sp_twitch_es_t *es);
sp_twitch_es_result_t sp_twitch_es_apply(sp_twitch_es_t *es, const sp_twitch_es_event_t *ev);

const char *sp_twitch_es_state_name(sp_twitch_es_state_t st);
const char *sp_twitch_es_status_name(sp_twitch_es_status_t st);
/** What a close code means (4000 "internal_error" ... 4007 "invalid_reconnect"). */
const char *sp_twitch_es_close_reason(int code);

/** The subscription's type and version strings; NULL for an unknown value. */
const char *sp_twitch_sub_type(sp_twitch_sub_t sub);
const char *sp_twitch_sub_version(sp_twitch_sub_t sub);
/** The sp_twitch_sub_t for a type string, or -1. */
int sp_twitch_sub_parse(const char *type);

typedef struct {
    const char *method;     /* "websocket" or "webhook" */
    const char *session_id; /* websocket */
    const char *callback;   /* webhook: https:// (or http://, outside prod) url */
    const char *secret;     /* webhook: 10..100 printable ASCII characters */
} sp_twitch_transport_t;

/**
 * The POST /helix/eventsub/subscriptions body for one subscription, with its version and
 * condition: broadcaster_id is the channel, user_id the account whose token makes the call
 * (chat reader, follow moderator; usually the broadcaster). Ids: 1..32 digits. On success
 * *out is a NUL-terminated JSON text to free with free(). 0, SP_EINVAL.
 */
int sp_twitch_es_sub_body(sp_twitch_sub_t sub, const char *broadcaster_id, const char *user_id,
                          const sp_twitch_transport_t *transport, char **out);

#endif
