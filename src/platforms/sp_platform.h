/*
 * sp_platform: the one interface every streaming platform implements (Twitch, YouTube, Kick,
 * Facebook), and the small runtime they share. A platform is a const vtable in its own folder
 * (src/platforms/<name>/<name>.c exports `const sp_platform_t sp_platform_<name>`) plus one
 * line in the registry (sp_platform.c). Nothing outside src/platforms/<name>/ knows a
 * platform's JSON or URLs; the rest of the program sees this vtable and the normalised
 * messages of sp_platform_msg.h.
 *
 * Platform code never includes livestream/ or web/ headers: what it learns (chat, alerts,
 * status) it reports through the sink it is given; what it needs (loop, HTTP client, config)
 * it gets in an sp_platform_env_t.
 *
 * Accounts: an sp_platform_account_t is one user's connected account on one platform,
 * reference counted (sp_accounts.h creates them; platform calls hold a reference while in
 * flight, so a disconnect during a call is safe). Its token lifecycle is sp_token.h.
 *
 * Calls: every asynchronous operation calls its callback exactly once, never synchronously,
 * on the loop thread. Strings passed to callbacks are valid during the callback only.
 * Errors are SP_E* codes (core/sp_err.h): SP_EAUTH (token refused twice / needs_reauth),
 * SP_EFORBIDDEN (scope missing), SP_ERATELIMIT, SP_EUPSTREAM (5xx), SP_EOPEN (breaker open),
 * SP_EIO / SP_ETIMEDOUT (transport), SP_EPROTO (unparseable answer), SP_EINVAL, SP_ENOTSUP
 * (the platform has no such operation), SP_ECANCELED (shutdown).
 */
#ifndef SP_PLATFORM_H
#define SP_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_config.h"
#include "core/sp_uuid.h"
#include "platforms/sp_platform_msg.h"
#include "platforms/sp_token.h"

struct sp_curlm_s; /* net/sp_curlm.h */

#define SP_PLATFORM_MAX 8
#define SP_PLATFORM_SCOPES_CAP 1024
#define SP_PLATFORM_EMAIL_CAP 321
#define SP_PLATFORM_INGEST_URL_CAP 512
#define SP_PLATFORM_INGEST_KEY_CAP 256

typedef struct sp_platform_s sp_platform_t;

/** What platform code gets from the program. Outlives every account and monitor. */
typedef struct sp_platform_env_s {
    uv_loop_t *loop;
    const sp_config_t *cfg;
    struct sp_curlm_s *http; /* shared HTTP client */
    const char *ca_file;     /* NULL = system store */
} sp_platform_env_t;

/** The OAuth descriptor of a platform, resolved from the config. */
typedef struct {
    const char *authorize_url; /* e.g. {TWITCH_AUTH_URL}/authorize */
    const char *token_url;     /* e.g. {TWITCH_AUTH_URL}/token */
    const char *revoke_url;    /* NULL: the provider has no revoke endpoint */
    const char *client_id;
    const char *client_secret;
    const char *redirect_uri;  /* {PUBLIC_URL}/auth/{name}/callback unless configured */
    const char *connect_scopes; /* space-separated, for "connect" (streaming account) */
    const char *login_scopes;   /* space-separated, for "login" (sign-in); NULL: no sign-in */
    bool pkce;                  /* S256 code challenge */
    const char *authorize_extra; /* NULL or "k=v&..." already encoded (e.g. force_verify=true) */
} sp_platform_oauth_t;

/** Who an account is on its platform. */
typedef struct {
    char id[SP_PMSG_ID_CAP];
    char login[SP_PMSG_NAME_CAP];
    char display_name[SP_PMSG_DISPLAY_CAP];
    char email[SP_PLATFORM_EMAIL_CAP]; /* "" when not known */
    bool email_verified;               /* only when the provider says so */
} sp_platform_identity_t;

/** One user's connected account on one platform (sp_accounts.h owns the list). */
typedef struct sp_platform_account_s {
    int refs;
    char user_id[SP_UUID_STRLEN];
    const sp_platform_t *platform;
    sp_platform_identity_t who;
    char scopes[SP_PLATFORM_SCOPES_CAP];
    sp_token_t *token;  /* single-flight token lifecycle */
    bool disconnected;  /* removed by the user: calls in flight end, nothing new starts */
    void *owner;        /* sp_accounts internals */
} sp_platform_account_t;

void sp_platform_account_ref(sp_platform_account_t *a);
/** Drops one reference; the last one frees the account (through its owner's hook). */
void sp_platform_account_unref(sp_platform_account_t *a);
/** Installed by sp_accounts: frees an account whose last reference went. */
typedef void (*sp_platform_account_free_fn)(sp_platform_account_t *a);
void sp_platform_account_set_free_hook(sp_platform_account_free_fn fn);

/** What a monitor reports. Every member may be NULL. ud is passed back. Messages are valid
 *  during the call only (the receiver copies or encodes them). */
typedef struct {
    void (*chat)(void *ud, const sp_chat_msg_t *m);
    void (*chat_deleted)(void *ud, const sp_chat_deletion_t *d);
    void (*alert)(void *ud, const sp_alert_t *a);
    /** connecting / connected / degraded / needs_reauth / stopped; error "" or a reason safe
     *  to show (never a token). */
    void (*status)(void *ud, sp_platform_status_t st, const char *error);
    /** The monitor gave up (it will do nothing more until stopped): the supervisor restarts
     *  it with backoff, within its restart budget. */
    void (*failed)(void *ud, const char *why);
    void *ud;
} sp_platform_sink_t;

typedef struct {
    bool sent;
    char reason[SP_PMSG_ERROR_CAP]; /* when !sent: the platform's drop reason or our error */
    char message_id[SP_PMSG_ID_CAP]; /* the platform's id of the sent message, or "" */
} sp_platform_chat_result_t;

typedef void (*sp_platform_done_cb)(int err, void *ud);
typedef void (*sp_platform_identity_cb)(int err, const sp_platform_identity_t *who, void *ud);
typedef void (*sp_platform_ingest_cb)(int err, const char *url, const char *key, void *ud);
typedef void (*sp_platform_chat_cb)(int err, const sp_platform_chat_result_t *r, void *ud);
typedef void (*sp_platform_viewers_cb)(int err, bool live, int64_t viewers, void *ud);
/** categories: a JSON array [{id, name, box_art_url?}] (borrowed). */
typedef void (*sp_platform_json_cb)(int err, json_t *categories, void *ud);

/** An opaque running monitor of one account (chat + events) for one stream. */
typedef struct sp_platform_monitor_s sp_platform_monitor_t;

struct sp_platform_s {
    const char *name;         /* "twitch": the URL segment, the `platform` column and field */
    const char *display_name; /* "Twitch" */
    /** Fills the OAuth descriptor from the config; false when the platform is not configured
     *  (no client id/secret): its connect and sign-in routes answer 404 not_configured. */
    bool (*oauth)(const sp_config_t *cfg, sp_platform_oauth_t *out);
    /** After a code exchange: who the token belongs to (Twitch: GET /helix/users). */
    void (*lookup)(const sp_platform_env_t *env, const char *access_token,
                   sp_platform_identity_cb cb, void *ud);
    /** The RTMP(S) ingest for the account's stream output: URL and key (Twitch: the
     *  TWITCH_INGEST_URL and GET /helix/streams/key). The key is a secret: never logged. */
    void (*ingest)(const sp_platform_env_t *env, sp_platform_account_t *a,
                   sp_platform_ingest_cb cb, void *ud);
    /** Starts chat + event delivery for the account; NULL on allocation failure. The
     *  monitor holds a reference on a until stopped and reconnects on its own; it reports
     *  through sink (copied). */
    sp_platform_monitor_t *(*monitor_start)(const sp_platform_env_t *env,
                                            sp_platform_account_t *a,
                                            const sp_platform_sink_t *sink);
    /** Stops and frees the monitor (reports nothing more, not even `stopped`). */
    void (*monitor_stop)(sp_platform_monitor_t *m);
    /** Sends text (reply_to: a chat message id on this platform, or NULL). */
    void (*send_chat)(const sp_platform_env_t *env, sp_platform_account_t *a, const char *text,
                      const char *reply_to, sp_platform_chat_cb cb, void *ud);
    /** Sets the channel's title (NULL: keep) and category (NULL: keep; "": unset). */
    void (*update_channel)(const sp_platform_env_t *env, sp_platform_account_t *a,
                           const char *title, const char *category_id, sp_platform_done_cb cb,
                           void *ud);
    /** Current viewers (live false: the platform sees the channel offline; viewers 0). */
    void (*viewers)(const sp_platform_env_t *env, sp_platform_account_t *a,
                    sp_platform_viewers_cb cb, void *ud);
    /** Category search for a picker; NULL when the platform has none. */
    void (*search_categories)(const sp_platform_env_t *env, sp_platform_account_t *a,
                              const char *query, sp_platform_json_cb cb, void *ud);
    /** Revokes a token at the provider (disconnect); NULL when there is no endpoint. */
    void (*revoke)(const sp_platform_env_t *env, const char *token, sp_platform_done_cb cb,
                   void *ud);
};

/* ---- registry ----------------------------------------------------------------------------- */
/** Every compiled-in platform, NULL-terminated, in display order. */
const sp_platform_t *const *sp_platform_all(void);
/** By name; NULL when unknown. */
const sp_platform_t *sp_platform_find(const char *name);

/* ---- shared runtime for platform code ----------------------------------------------------- */
/**
 * One authorized REST call for an account: gets a token (sp_token_get), sends the request with
 * `Authorization: Bearer <token>` plus extra headers, and on a 401 asks sp_token for a fresh
 * token once (reporting the failed one) and retries once. Honors the platform's rate limit and
 * breaker (sp_platform_gate). The callback gets the final answer (status, body) or an error
 * (SP_EAUTH when the account needs reauth; SP_EOPEN when the platform's breaker is open;
 * SP_ERATELIMIT when the platform asked to wait longer than the call's deadline).
 */
typedef struct {
    const char *method;          /* NULL = GET */
    const char *url;
    const char *const *headers;  /* NULL-terminated extra "Name: value" (e.g. Client-Id) */
    const char *body;
    size_t body_len;
    const char *content_type;    /* NULL = none (or application/json with a body) */
    uint64_t timeout_ms;         /* 0 = 10000 */
} sp_platform_req_t;
typedef struct {
    long status;
    const char *body;
    size_t body_len;
    const char *retry_after;     /* Retry-After or NULL */
    const char *rl_remaining;    /* Ratelimit-Remaining or NULL */
    const char *rl_reset;        /* Ratelimit-Reset or NULL */
} sp_platform_resp_t;
typedef void (*sp_platform_http_cb)(int err, const sp_platform_resp_t *r, void *ud);
int sp_platform_http(const sp_platform_env_t *env, sp_platform_account_t *a,
                     const sp_platform_req_t *req, sp_platform_http_cb cb, void *ud);

#endif
