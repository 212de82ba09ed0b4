/*
 * sp_oauth: the provider-independent pieces of an OAuth 2.0 authorization-code flow (RFC 6749,
 * PKCE RFC 7636), as pure functions plus one in-memory store. No I/O: the caller (the platform
 * framework and web/ handlers) sends the requests with sp_curlm and answers HTTP itself.
 *
 *   connect:  sp_oauth_state_issue(session, platform, purpose) -> state (+ PKCE verifier kept
 *             with it) -> sp_oauth_authorize_url(...) -> 302 to the provider
 *   callback: sp_oauth_state_take(state, session) -> the pending flow (single use: the state is
 *             gone after the first take, whatever its outcome) -> sp_oauth_token_form(code grant)
 *             -> POST token URL -> sp_oauth_parse_token(status, body)
 *   refresh:  sp_oauth_token_form(refresh grant) -> POST -> sp_oauth_parse_token; a result of
 *             SP_OAUTH_REAUTH (400 / 401 / invalid_grant) means the grant is gone: mark the
 *             account needs_reauth and stop retrying; SP_OAUTH_RETRY means try later.
 *
 * States are 256-bit random, URL-safe, bound to the session that asked for them (a state taken
 * with another session is refused and consumed), live SP_OAUTH_STATE_TTL_MS, and are capped in
 * number: a full store evicts expired states only and otherwise refuses (SP_ELIMIT), so a flood
 * can never push out a pending flow. Tokens parsed from a response are wiped from memory by
 * sp_oauth_token_clear; they never reach a log.
 */
#ifndef SP_OAUTH_H
#define SP_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"

#define SP_OAUTH_STATE_LEN 43     /* base64url of 32 random bytes, no padding */
#define SP_OAUTH_VERIFIER_LEN 64  /* PKCE code_verifier: base64url of 48 random bytes */
#define SP_OAUTH_CHALLENGE_LEN 43 /* base64url(SHA-256(verifier)), no padding */
#define SP_OAUTH_STATE_TTL_MS (10 * 60 * 1000)

/* ---- PKCE (S256) --------------------------------------------------------------------- */
/** A new random code_verifier (NUL-terminated, SP_OAUTH_VERIFIER_LEN characters). */
void sp_oauth_pkce_verifier(char out[SP_OAUTH_VERIFIER_LEN + 1]);
/** code_challenge = base64url(SHA-256(verifier)) without padding. SP_EINVAL for a verifier
 *  outside RFC 7636's 43..128 characters of [A-Za-z0-9-._~]. */
int sp_oauth_pkce_challenge(const char *verifier, char out[SP_OAUTH_CHALLENGE_LEN + 1]);

/* ---- authorize URL ------------------------------------------------------------------- */
typedef struct {
    const char *authorize_url;  /* the provider's endpoint, may carry its own query */
    const char *client_id;
    const char *redirect_uri;
    const char *scopes;         /* space-separated */
    const char *state;
    const char *code_challenge; /* NULL: no PKCE */
    const char *nonce;          /* NULL: none (OpenID Connect sign-in sets one) */
    const char *extra;          /* NULL or "k=v&k2=v2", already encoded (e.g. force_verify) */
} sp_oauth_authorize_t;
/** Appends the full authorize URL (response_type=code, every value percent-encoded) to out.
 *  SP_EINVAL when a required field is missing or the endpoint is not http(s). */
int sp_oauth_authorize_url(const sp_oauth_authorize_t *a, sp_buf_t *out);

/* ---- token request body --------------------------------------------------------------- */
typedef enum {
    SP_OAUTH_GRANT_CODE,        /* code, redirect_uri, code_verifier (if any) */
    SP_OAUTH_GRANT_REFRESH,     /* refresh_token */
    SP_OAUTH_GRANT_CLIENT,      /* client_credentials (app token) */
} sp_oauth_grant_t;
typedef struct {
    sp_oauth_grant_t grant;
    const char *client_id, *client_secret;
    const char *code, *redirect_uri, *code_verifier; /* GRANT_CODE */
    const char *refresh_token;                       /* GRANT_REFRESH */
    const char *scopes;                              /* GRANT_CLIENT, optional */
} sp_oauth_form_t;
/** Appends the application/x-www-form-urlencoded body (every value encoded: refresh tokens
 *  may hold '%' and '='). SP_EINVAL when a field the grant needs is missing. */
int sp_oauth_token_form(const sp_oauth_form_t *f, sp_buf_t *out);

/* ---- token response ------------------------------------------------------------------ */
typedef enum {
    SP_OAUTH_OK = 0,
    SP_OAUTH_REAUTH, /* 400/401, invalid_grant, invalid refresh token: the grant is gone */
    SP_OAUTH_RETRY,  /* 429, 5xx, 408: try again later */
    SP_OAUTH_BAD,    /* a 2xx that is not a usable token response, or another status */
} sp_oauth_result_t;

#define SP_OAUTH_MAX_TOKEN 4096 /* bytes per token; Google id_tokens are ~1-2 KiB */
#define SP_OAUTH_MAX_SCOPES 1024
#define SP_OAUTH_MAX_BODY (64 * 1024)
#define SP_OAUTH_MAX_EXPIRES_S (400LL * 24 * 3600) /* longer lifetimes are clamped */

typedef struct {
    char *access_token;  /* never NULL on SP_OAUTH_OK */
    char *refresh_token; /* NULL when the response has none (Google refresh, app tokens) */
    char *id_token;      /* NULL unless OpenID Connect */
    int64_t expires_in_s; /* 0 when absent; clamped to 0..SP_OAUTH_MAX_EXPIRES_S */
    char scopes[SP_OAUTH_MAX_SCOPES]; /* space-separated; "scope" as array or string */
    char error[128];      /* provider's error / message on failure, sanitized, no token */
} sp_oauth_token_t;

/**
 * Classifies and parses a token endpoint answer (status + body). On SP_OAUTH_OK, out holds
 * copies of the tokens (free with sp_oauth_token_clear). On the other results out->error says
 * why in a form safe to log and to show. Never reads past len; bodies over SP_OAUTH_MAX_BODY,
 * tokens over SP_OAUTH_MAX_TOKEN or with control characters are SP_OAUTH_BAD.
 */
sp_oauth_result_t sp_oauth_parse_token(int http_status, const char *body, size_t len,
                                       sp_oauth_token_t *out);
/** Wipes and frees the tokens; the struct is zeroed (safe to call twice). */
void sp_oauth_token_clear(sp_oauth_token_t *t);

/* ---- pending flows (state store) ------------------------------------------------------ */
typedef struct sp_oauth_states_s sp_oauth_states_t;
typedef struct {
    char platform[32];
    char purpose[16];                           /* "connect" | "login" */
    char verifier[SP_OAUTH_VERIFIER_LEN + 1];   /* "" when the flow has no PKCE */
    char nonce[SP_OAUTH_STATE_LEN + 1];         /* OpenID Connect nonce ("" if none) */
} sp_oauth_pending_t;

/** cap: most pending flows at once (>= 1). */
sp_oauth_states_t *sp_oauth_states_new(size_t cap);
void sp_oauth_states_free(sp_oauth_states_t *st);
size_t sp_oauth_states_count(const sp_oauth_states_t *st);
/**
 * A new state bound to session_id (a logged-in session, or the pre-login browser cookie for
 * sign-in); with_pkce adds a fresh verifier, with_nonce a nonce. out_state receives the state.
 * SP_EINVAL for a bad argument, SP_ELIMIT when cap live flows are pending.
 */
int sp_oauth_state_issue(sp_oauth_states_t *st, const char *session_id, const char *platform,
                         const char *purpose, bool with_pkce, bool with_nonce, uint64_t now_ms,
                         char out_state[SP_OAUTH_STATE_LEN + 1], sp_oauth_pending_t *out);
/**
 * Takes a state once: 0 and *out filled when it exists, is not expired and belongs to
 * session_id; SP_ENOTFOUND (unknown, already used), SP_ETIMEDOUT (expired) or SP_EFORBIDDEN
 * (another session's). A known state is removed by any take, so it can never be replayed.
 */
int sp_oauth_state_take(sp_oauth_states_t *st, const char *state, const char *session_id,
                        uint64_t now_ms, sp_oauth_pending_t *out);

#endif
