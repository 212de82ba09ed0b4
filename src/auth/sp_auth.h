/*
 * sp_auth: accounts and sessions, as a library (docs/auth.md). It has no HTTP
 * routes: src/web/sp_routes_auth.c maps these calls to the account routes
 * and the route guard, src/web/sp_socket_auth.c to the WebSocket hub.
 *
 * A session is a row in `sessions` plus a JWT (HS256, sp_jwt.h) naming it
 * (sid) and its user (sub). Checking a session re-reads the row and the user,
 * so logout (revoked_at) and a deleted user take effect at once; a session id
 * once refused is remembered (until its token's exp) and refused again
 * without a query. Rows have a kind: 'cookie' (login,
 * sign-in) or 'bearer' (sp_auth_token_new, SOCKET_TOKEN_TTL); last_used_at is
 * written at most once a minute. The user lists and revokes them
 * (sp_auth_sessions_list / sp_auth_sessions_revoke, sp_auth_sessions.c). Passwords are
 * argon2id on the thread pool (sp_password.h); secrets at rest are sealed by
 * sp_seal.h; the pure input checks are sp_authcheck.h.
 *
 * The instance gets what it needs explicitly: the loop, the config (signing
 * key, PUBLIC_URL/ALLOWED_ORIGINS, SESSION_TTL, STREAMPAI_ENV) and the store.
 * Everything runs on the loop thread; callbacks come later on the loop, never
 * from inside the call that started the operation.
 */
#ifndef SP_AUTH_H
#define SP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/sp_authcheck.h"
#include "auth/sp_jwt.h"
#include "core/sp_config.h"
#include "core/sp_uuid.h"
#include "net/sp_http.h"
#include "store/sp_store.h"

#define SP_AUTH_COOKIE_SECURE "__Host-sp_session" /* PUBLIC_URL https:// */
#define SP_AUTH_COOKIE_PLAIN "sp_session"         /* plain http (dev, tests) */
#define SP_AUTH_COOKIE_CSRF "sp_csrf"
#define SP_AUTH_CSRF_HEADER "X-CSRF-Token"
#define SP_AUTH_CSRF_LEN 43 /* base64url(HMAC-SHA256), no padding */
#define SP_AUTH_TOKEN_CAP (SP_JWT_MAX_TOKEN + 1)

typedef struct sp_auth_s sp_auth_t;

typedef struct sp_auth_user {
    char id[SP_UUID_STRLEN];
    char email[SP_EMAIL_MAX + 1];
    char display_name[SP_DISPLAY_NAME_BYTES];
    char sid[SP_UUID_STRLEN]; /* the session this request runs under */
    bool bearer;              /* authenticated by a bearer token (not the cookie) */
    int64_t expires_ms;       /* session check: when the session ends (its token's exp) */
} sp_auth_user_t;

/** Outcome of an asynchronous operation. */
typedef enum {
    SP_AUTH_OK = 0,
    SP_AUTH_DENIED,   /* wrong credentials; session revoked/expired; user deleted */
    SP_AUTH_TAKEN,    /* register: the email has an account */
    SP_AUTH_BUSY,     /* the password-hash queue is full */
    SP_AUTH_STORE,    /* database error (logged) */
    SP_AUTH_INTERNAL, /* the session token cannot be signed (logged) */
    SP_AUTH_NOT_FOUND, /* sessions: no such active session of this user */
} sp_auth_status_t;

/** A session just created: its JWT and lifetime (valid during the callback only). */
typedef struct {
    const char *token;
    int64_t created_ms;
    int64_t expires_ms;
} sp_auth_session_t;

/** user and session are set only with SP_AUTH_OK; valid during the callback (copy them). */
typedef void (*sp_auth_session_cb)(sp_auth_status_t st, const sp_auth_user_t *user,
                                   const sp_auth_session_t *session, void *ud);
typedef void (*sp_auth_user_cb)(sp_auth_status_t st, const sp_auth_user_t *user, void *ud);
typedef void (*sp_auth_done_cb)(sp_auth_status_t st, void *ud);

/* ---- lifecycle ----------------------------------------------------------------------- */

/**
 * Resolves the signing key (TOKEN_SIGNING_SECRET, or the dev/test key file in
 * DATA_DIR), sets the password-hash cost (64 MiB/t=2; the OWASP minimum
 * 19 MiB/t=2 when STREAMPAI_ENV=test) and computes the dummy hash. Blocking
 * (start-up only). cfg and store must outlive the instance. 0 and *out, or
 * SP_ECONFIG / SP_EIO (logged).
 */
int sp_auth_new(uv_loop_t *loop, const sp_config_t *cfg, sp_store_t *store, sp_auth_t **out);
/** Frees the instance once operations in flight are done (their callbacks still run). NULL-safe. */
void sp_auth_free(sp_auth_t *a);

/** Name of the session cookie ("__Host-sp_session" or "sp_session"). */
const char *sp_auth_cookie_name(const sp_auth_t *a);
/** True when cookies must carry Secure (PUBLIC_URL is https://). */
bool sp_auth_cookie_secure(const sp_auth_t *a);

/* ---- tokens and CSRF (synchronous) --------------------------------------------------- */

/** Verifies a session JWT now (sp_jwt_verify). 0 and *out, or SP_EAUTH. */
int sp_auth_token_verify(const sp_auth_t *a, const char *token, sp_jwt_claims_t *out);
/** Signs a session JWT for (user_id, sid) valid from iat_ms to exp_ms. *out is sp_malloc'd. */
int sp_auth_token_issue(const sp_auth_t *a, const char *user_id, const char *sid, int64_t iat_ms,
                        int64_t exp_ms, char **out);

/** The session's CSRF token: base64url(HMAC-SHA256(key, "sp-csrf:" + sid)). */
void sp_auth_csrf_token(const sp_auth_t *a, const char *sid, char out[SP_AUTH_CSRF_LEN + 1]);
/**
 * The CSRF decision (sp_auth_csrf_check) for a cookie-authenticated request of
 * session sid, against PUBLIC_URL's origin and ALLOWED_ORIGINS. 0 or SP_EFORBIDDEN.
 */
int sp_auth_csrf_verify(const sp_auth_t *a, const char *method, const char *origin,
                        const char *sec_fetch_site, const char *header_token,
                        const char *cookie_token, const char *sid);

/* ---- login throttling ---------------------------------------------------------------- */

typedef enum { SP_AUTH_THROTTLE_LOGIN, SP_AUTH_THROTTLE_REGISTER } sp_auth_throttle_t;

/**
 * May this request go on? The per-IP bucket of `what` first (IPv6 by /64; per
 * minute 10, 60 in the test profile): a request it refuses touches nothing
 * else. Then, when email is non-empty: for a login, the per-account backoff
 * (sp_login_throttle.h: the attempt is charged, and sp_auth_login settles the
 * charge when the password has been judged, so call sp_auth_login after a 0);
 * for a registration, the per-email bucket (5/min). 0, or SP_ERATELIMIT with
 * *retry_ms set.
 */
int sp_auth_throttle(sp_auth_t *a, sp_auth_throttle_t what, const char *ip, const char *email,
                     uint64_t *retry_ms);

/* ---- accounts and sessions (asynchronous) -------------------------------------------- */

/** Who is asking: recorded on the session row (NULL = ""). */
typedef struct {
    const char *user_agent;
    const char *ip;
} sp_auth_client_t;

/**
 * Creates the account user (id and sid are generated here; email and
 * display_name must already be checked, sp_authcheck.h) with a new session.
 * The password must pass sp_password_check_policy. 0 (cb later: OK, TAKEN,
 * BUSY, STORE, INTERNAL) or SP_EBUSY (hash queue full; cb never called).
 */
int sp_auth_register(sp_auth_t *a, const sp_auth_user_t *user, const char *password, size_t len,
                     const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud);
/**
 * Checks email (normalised) + password; an unknown email costs the same hash.
 * On success a new session (never a reused id); a hash made with older
 * parameters is upgraded in the background, and the user's sessions that ended
 * over a day ago are deleted. cb: OK, DENIED, BUSY, STORE, INTERNAL.
 */
void sp_auth_login(sp_auth_t *a, const char *email, const char *password, size_t len,
                   const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud);
/** A new session (own id and row) for an authenticated user. cb: OK, STORE, INTERNAL. */
void sp_auth_session_new(sp_auth_t *a, const sp_auth_user_t *user,
                         const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud);
/**
 * A bearer session (kind 'bearer', own id and row) for an authenticated user, living
 * SOCKET_TOKEN_TTL (at most SESSION_TTL): POST /api/auth/token. cb: OK, STORE, INTERNAL.
 */
void sp_auth_token_new(sp_auth_t *a, const sp_auth_user_t *user, const sp_auth_client_t *client,
                       sp_auth_session_cb cb, void *ud);
/** Revokes the session user->sid (then the sp_auth_on_revoke hook runs). cb: OK, STORE. */
void sp_auth_logout(sp_auth_t *a, const sp_auth_user_t *user, sp_auth_done_cb cb, void *ud);

/* ---- the user's sessions (sp_auth_sessions.c) --------------------------------------------- */

/**
 * Called on the loop right after sessions were revoked (logout, sp_auth_sessions_revoke):
 * sid is the revoked session, or NULL when every session of user_id was revoked. The web
 * layer closes their sockets. One hook; cb NULL removes it.
 */
typedef void (*sp_auth_revoke_cb)(const char *user_id, const char *sid, void *ud);
void sp_auth_on_revoke(sp_auth_t *a, sp_auth_revoke_cb cb, void *ud);

/**
 * rows (borrowed, valid during the callback; only with OK): the active sessions of the
 * user, newest first, at most 200: [{id, kind, user_agent, ip, created_at, last_used_at,
 * expires_at}] (times in ms; last_used_at may be null).
 */
typedef void (*sp_auth_rows_cb)(sp_auth_status_t st, json_t *rows, void *ud);
/** cb: OK, STORE. */
void sp_auth_sessions_list(sp_auth_t *a, const char *user_id, sp_auth_rows_cb cb, void *ud);
/**
 * Revokes the active session sid of user_id, or every active session of the user when sid is
 * NULL ("log out everywhere"). cb: OK (n = how many were revoked), NOT_FOUND (sid given and
 * not an active session of this user), STORE.
 */
typedef void (*sp_auth_count_cb)(sp_auth_status_t st, size_t n, void *ud);
void sp_auth_sessions_revoke(sp_auth_t *a, const char *user_id, const char *sid,
                             sp_auth_count_cb cb, void *ud);
/**
 * Loads the session named by verified claims: not revoked, not expired, and
 * its user still exists. cb: OK (user with id, email, display_name, sid and
 * `bearer` as given), DENIED, STORE.
 */
void sp_auth_session_check(sp_auth_t *a, const sp_jwt_claims_t *claims, bool bearer,
                           sp_auth_user_cb cb, void *ud);

/* ---- requests ------------------------------------------------------------------------- */

/** Attaches a copy of user to req (freed with the request) and names it in the access log. */
const sp_auth_user_t *sp_auth_set_user(sp_http_req_t *req, const sp_auth_user_t *user);
/** The user attached by sp_auth_set_user (the route guard), or NULL. */
const sp_auth_user_t *sp_auth_user(sp_http_req_t *req);

/**
 * Authentication of a WebSocket upgrade request: `Authorization: Bearer`,
 * then `?token=JWT`, then the session cookie; the session is checked like the
 * route guard does (no CSRF: it is a GET; the hub checks Origin). Never
 * responds. Returns SP_EAUTH synchronously (cb not called) when there is no
 * credential or the JWT is invalid; otherwise 0 and cb later with OK (the
 * request's access-log user is set), DENIED or STORE.
 */
typedef void (*sp_auth_ws_cb)(sp_http_req_t *req, sp_auth_status_t st, const sp_auth_user_t *user,
                              void *ud);
int sp_auth_ws_authenticate(sp_auth_t *a, sp_http_req_t *req, sp_auth_ws_cb cb, void *ud);

/* ---- external identities (sp_auth_ext.c): Sign in with Twitch / Google ---------------- */

/** users.password_hash of an account created by a provider sign-in: not an argon2 string,
 *  so no password ever verifies against it (sp_password_verify refuses it). */
#define SP_AUTH_EXTERNAL_HASH "!external"

typedef struct {
    const char *provider;     /* "twitch" | "google" (1..31 of [a-z0-9]) */
    const char *subject;      /* the provider's stable user id (1..255 printable ASCII) */
    const char *email;        /* NULL or "" when the provider gave none */
    bool email_verified;      /* only when the provider says so */
    const char *display_name; /* NULL: derived */
} sp_auth_external_t;

/**
 * Signs in with an external identity: the user already linked to (provider, subject); else,
 * when the email is verified, the existing user with that email (linked now); else a new
 * user whose email is the verified email, or a placeholder "<provider>-<id>@users.invalid"
 * when the email is absent or unverified (an unverified address is never stored as a user's
 * email: it could be someone else's), with SP_AUTH_EXTERNAL_HASH as its password hash.
 * Then a new session, as sp_auth_session_new. cb: OK, DENIED (bad provider or subject),
 * STORE, INTERNAL. store must be the instance's store.
 */
void sp_auth_external_signin(sp_auth_t *a, sp_store_t *store, const sp_auth_external_t *ext,
                             const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud);

#endif
