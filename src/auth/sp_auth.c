/* sp_auth: accounts, sessions, the route guard. See sp_auth.h. */
#include "auth/sp_auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "auth/sp_jwt.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "auth/sp_password.h"
#include "core/sp_ratelimit.h"
#include "store/sp_store.h"
#include "core/sp_time.h"

#define DEFAULT_SESSION_TTL_MS (7LL * 24 * 3600 * 1000)
#define MAX_ORIGINS 16
#define UA_MAX 256
#define TOKEN_CAP (SP_JWT_MAX_TOKEN + 1)
#define CSRF_LEN 43 /* base64url(32 bytes), no padding */
#define RL_MAX_KEYS 65536

struct sp_auth_s {
    sp_app_t *app;
    uint8_t *key;
    size_t keylen;
    bool secure;
    const char *cookie;
    char *origins[MAX_ORIGINS];
    size_t n_origins;
    int64_t ttl_ms;
    sp_ratelimit_t *rl_login_ip, *rl_login_email, *rl_reg_ip, *rl_reg_email;
    unsigned pending;
    bool freeing;
};

typedef enum { OP_REGISTER, OP_LOGIN, OP_GUARD, OP_WS, OP_LOGOUT, OP_TOKEN, OP_REHASH } op_kind_t;

typedef struct {
    op_kind_t kind;
    sp_auth_t *a;
    sp_http_req_t *req;
    char *password;
    size_t pwlen;
    char hash[SP_PASSWORD_HASH_MAX];
    bool found;
    sp_auth_user_t user;
    char ua[UA_MAX + 1];
    char ip[64];
    int64_t now_ms;
    int64_t expires_ms;
    sp_auth_ws_cb wscb;
    void *wsud;
} op_t;

static void auth_release(sp_auth_t *a);

/* ---- helpers ------------------------------------------------------------------------ */

static op_t *op_new(sp_auth_t *a, sp_http_req_t *req, op_kind_t kind)
{
    op_t *op = sp_calloc(1, sizeof(*op));
    op->a = a;
    op->req = req;
    op->kind = kind;
    op->now_ms = sp_wall_ms();
    a->pending++;
    return op;
}

static void op_free(op_t *op)
{
    sp_auth_t *a = op->a;
    if (op->password) {
        sodium_memzero(op->password, op->pwlen);
        sp_free(op->password);
    }
    sodium_memzero(op->hash, sizeof(op->hash));
    sp_free(op);
    a->pending--;
    if (a->freeing && a->pending == 0)
        auth_release(a);
}

static void respond_err(sp_http_req_t *req, int status, const char *code, const char *msg,
                        const char *field)
{
    if (!field) {
        sp_http_respond_error(req, status, code, msg);
        return;
    }
    json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", msg, "field",
                          field);
    sp_http_respond_json(req, status, e);
}

static void respond_store_err(sp_http_req_t *req, int err)
{
    sp_warn("auth", "store error", "err=%s", sp_err_name(err));
    sp_http_res_header(req, "Retry-After", "1");
    sp_http_respond_error(req, 503, "unavailable", "The database is unavailable, try again");
}

static void respond_429(sp_http_req_t *req, uint64_t retry_ms)
{
    char ra[32];
    uint64_t s = (retry_ms + 999) / 1000;
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)(s ? s : 1));
    sp_http_res_header(req, "Retry-After", ra);
    sp_http_respond_error(req, 429, "rate_limited", "Too many attempts, try again later");
}

static void respond_401(sp_http_req_t *req)
{
    sp_http_respond_error(req, 401, "unauthenticated", "Log in to continue");
}

static json_t *user_json(const sp_auth_user_t *u)
{
    return json_pack("{s:s,s:s,s:s}", "id", u->id, "email", u->email, "display_name",
                     u->display_name);
}

static void csrf_token(const sp_auth_t *a, const char *sid, char out[CSRF_LEN + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, a->key, a->keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"sp-csrf:", 8);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)sid, strlen(sid));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, CSRF_LEN + 1, mac, sizeof(mac),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(&st, sizeof(st));
}

static void set_cookies(sp_auth_t *a, sp_http_req_t *req, const char *jwt, const char *sid,
                        int64_t max_age_s)
{
    char v[TOKEN_CAP + 256];
    char csrf[CSRF_LEN + 1];
    const char *sec = a->secure ? "; Secure" : "";
    if (jwt) {
        csrf_token(a, sid, csrf);
        snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s", a->cookie,
                 jwt, (long long)max_age_s, sec);
        sp_http_res_header(req, "Set-Cookie", v);
        snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; SameSite=Lax%s", SP_AUTH_COOKIE_CSRF,
                 csrf, (long long)max_age_s, sec);
        sp_http_res_header(req, "Set-Cookie", v);
        sodium_memzero(v, sizeof(v));
    } else {
        snprintf(v, sizeof(v), "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s", a->cookie, sec);
        sp_http_res_header(req, "Set-Cookie", v);
        snprintf(v, sizeof(v), "%s=; Path=/; Max-Age=0; SameSite=Lax%s", SP_AUTH_COOKIE_CSRF, sec);
        sp_http_res_header(req, "Set-Cookie", v);
    }
    sp_http_res_header(req, "Cache-Control", "no-store");
}

static void fill_client(op_t *op)
{
    const char *ua = sp_http_req_header(op->req, "User-Agent");
    snprintf(op->ua, sizeof(op->ua), "%s", ua ? ua : "");
    const char *ip = sp_http_req_remote_ip(op->req);
    snprintf(op->ip, sizeof(op->ip), "%s", ip ? ip : "");
}

/* Rate-limit keys: "<ip>" and "<email>" in separate limiters. */
static int throttle(sp_ratelimit_t *by_ip, sp_ratelimit_t *by_email, sp_http_req_t *req,
                    const char *email)
{
    char key[128];
    uint64_t now = sp_mono_ms(), r1 = 0, r2 = 0;
    sp_auth_ip_key(sp_http_req_remote_ip(req), key, sizeof(key));
    int e1 = sp_ratelimit_check(by_ip, key, now, &r1);
    int e2 = email && email[0] ? sp_ratelimit_check(by_email, email, now, &r2) : 0;
    if (e1 || e2) {
        respond_429(req, r1 > r2 ? r1 : r2);
        return SP_ERATELIMIT;
    }
    return 0;
}

/* Gets a string member (or NULL when absent / null). *bad set when present but not a string. */
static const char *json_str(json_t *o, const char *k, size_t *len, bool *bad)
{
    json_t *v = json_object_get(o, k);
    *len = 0;
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* ---- session creation (shared by register, login, token) ----------------------------- */

static json_t *session_params(op_t *op)
{
    op->expires_ms = op->now_ms + op->a->ttl_ms;
    return json_pack("[s,s,I,I,s,s]", op->user.sid, op->user.id, (json_int_t)op->now_ms,
                     (json_int_t)op->expires_ms, op->ua, op->ip);
}

static const char *SQL_INSERT_SESSION =
    "INSERT INTO sessions (id, user_id, created_at, expires_at, user_agent, ip) "
    "VALUES ($1, $2, $3, $4, $5, $6)";

/* Signs the JWT for op->user.sid; on failure responds 500 and returns NULL. */
static char *sign_session(op_t *op)
{
    char *jwt = NULL;
    int rc = sp_jwt_sign(op->a->key, op->a->keylen, op->user.id, op->user.sid, op->now_ms / 1000,
                         op->expires_ms / 1000, &jwt);
    if (rc) {
        sp_error("auth", "cannot sign session token", "err=%s", sp_err_name(rc));
        sp_http_respond_error(op->req, 500, "internal", "Cannot create a session");
        return NULL;
    }
    return jwt;
}

static void respond_with_session(op_t *op, int status)
{
    char *jwt = sign_session(op);
    if (!jwt)
        return;
    set_cookies(op->a, op->req, jwt, op->user.sid, (op->expires_ms - op->now_ms) / 1000);
    sodium_memzero(jwt, strlen(jwt));
    sp_free(jwt);
    sp_http_req_set_user(op->req, op->user.id);
    sp_http_respond_json(op->req, status, json_pack("{s:o}", "user", user_json(&op->user)));
}

/* ---- register ----------------------------------------------------------------------- */

static void register_done(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    (void)changes;
    if (err == SP_EEXISTS) {
        respond_err(op->req, 409, "email_taken", "An account with this email already exists",
                    "email");
    } else if (err) {
        respond_store_err(op->req, err);
    } else {
        sp_info("auth", "user registered", "user_id=%s", op->user.id);
        respond_with_session(op, 201);
    }
    op_free(op);
}

static void register_hashed(int err, const char *hash, void *ud)
{
    op_t *op = ud;
    if (err) {
        sp_http_res_header(op->req, "Retry-After", "1");
        sp_http_respond_error(op->req, 503, "busy", "Server busy, try again");
        op_free(op);
        return;
    }
    const char *s[2] = {
        "INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $5)",
        SQL_INSERT_SESSION};
    json_t *params[2];
    params[0] = json_pack("[s,s,s,s,I]", op->user.id, op->user.email, hash, op->user.display_name,
                          (json_int_t)op->now_ms);
    params[1] = session_params(op);
    sp_store_tx(op->a->app->store, 2, s, params, register_done, op);
}

static void h_register(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    bool bad = false;
    size_t elen, plen, dlen;
    const char *email = json_str(body, "email", &elen, &bad);
    const char *pw = json_str(body, "password", &plen, &bad);
    const char *dn = json_str(body, "display_name", &dlen, &bad);
    sp_auth_user_t u;
    memset(&u, 0, sizeof(u));
    int rc;
    if (!email || sp_auth_normalize_email(email, elen, u.email, sizeof(u.email)) != 0) {
        respond_err(req, 422, "invalid_email", "Enter a valid email address", "email");
        goto out;
    }
    if (!pw) {
        respond_err(req, 422, "invalid_password", "Enter a password", "password");
        goto out;
    }
    rc = sp_password_check_policy(pw, plen);
    if (rc == SP_ETOOBIG) {
        respond_err(req, 422, "invalid_password", "Password must be at most 1024 bytes",
                    "password");
        goto out;
    } else if (rc) {
        respond_err(req, 422, "invalid_password",
                    rc == SP_EUTF8 ? "Password must be valid text"
                                   : "Password must be at least 8 characters",
                    "password");
        goto out;
    }
    if (bad) {
        respond_err(req, 422, "invalid_display_name", "Display name must be text",
                    "display_name");
        goto out;
    }
    if (dn && dlen) {
        rc = sp_auth_check_display_name(dn, dlen, u.display_name, sizeof(u.display_name));
        if (rc) {
            respond_err(req, 422, "invalid_display_name",
                        rc == SP_ETOOBIG ? "Display name must be at most 64 characters"
                                         : "Display name contains invalid characters",
                        "display_name");
            goto out;
        }
    } else {
        /* default: the local part of the email */
        const char *at = strchr(u.email, '@');
        size_t n = (size_t)(at - u.email);
        if (n > SP_DISPLAY_NAME_MAX)
            n = SP_DISPLAY_NAME_MAX;
        memcpy(u.display_name, u.email, n);
        u.display_name[n] = '\0';
    }
    if (throttle(a->rl_reg_ip, a->rl_reg_email, req, u.email))
        goto out;
    op_t *op = op_new(a, req, OP_REGISTER);
    op->user = u;
    sp_uuid_v4(op->user.id);
    sp_uuid_v4(op->user.sid);
    fill_client(op);
    rc = sp_password_hash(a->app->loop, pw, plen, register_hashed, op);
    if (rc) {
        sp_http_res_header(req, "Retry-After", "1");
        sp_http_respond_error(req, 503, "busy", "Server busy, try again");
        op_free(op);
    }
out:
    json_decref(body);
}

/* ---- login -------------------------------------------------------------------------- */

/* Upgrading a hash made with older parameters: in the background after a good login. */
static void rehash_saved(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    if (err == 0 && changes == 1)
        sp_info("auth", "password hash upgraded", "user_id=%s", op->user.id);
    op_free(op);
}

static void rehash_done(int err, const char *hash, void *ud)
{
    op_t *op = ud;
    if (err || op->a->freeing) {
        op_free(op);
        return;
    }
    /* only if the stored hash is still the one we verified (no concurrent change) */
    sp_store_query(op->a->app->store,
                   "UPDATE users SET password_hash = $1, updated_at = $2 "
                   "WHERE id = $3 AND password_hash = $4",
                   json_pack("[s,I,s,s]", hash, (json_int_t)sp_wall_ms(), op->user.id, op->hash),
                   rehash_saved, op);
}

static void maybe_rehash(op_t *login)
{
    if (!sp_password_needs_rehash(login->hash))
        return;
    op_t *op = op_new(login->a, NULL, OP_REHASH);
    memcpy(op->user.id, login->user.id, sizeof(op->user.id));
    memcpy(op->hash, login->hash, sizeof(op->hash));
    if (sp_password_hash(login->a->app->loop, login->password, login->pwlen, rehash_done, op))
        op_free(op);
}

static void cleanup_done(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)ud;
    if (err)
        sp_debug("auth", "session cleanup failed", "err=%s", sp_err_name(err));
    else if (changes)
        sp_debug("auth", "old sessions removed", "n=%lld", (long long)changes);
}

/* Rows of this user's sessions that expired or were revoked over a day ago go at the next
 * login, so the table stays bounded without a sweeper. */
static void cleanup_sessions(op_t *op)
{
    int64_t cutoff = op->now_ms - 24LL * 3600 * 1000;
    sp_store_query(op->a->app->store,
                   "DELETE FROM sessions WHERE user_id = $1 AND "
                   "(expires_at < $2 OR (revoked_at IS NOT NULL AND revoked_at < $2))",
                   json_pack("[s,I]", op->user.id, (json_int_t)cutoff), cleanup_done, NULL);
}

static void login_session_done(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    (void)changes;
    if (err) {
        respond_store_err(op->req, err);
    } else {
        sp_info("auth", "login", "user_id=%s", op->user.id);
        respond_with_session(op, 200);
        cleanup_sessions(op);
    }
    op_free(op);
}

static void login_verified(int err, void *ud)
{
    op_t *op = ud;
    if (err == SP_EAUTH || (err == 0 && !op->found)) {
        sp_info("auth", "login failed", "ip=%s", op->ip);
        sp_http_respond_error(op->req, 401, "invalid_credentials", "Invalid email or password");
        op_free(op);
        return;
    }
    if (err) {
        sp_http_res_header(op->req, "Retry-After", "1");
        sp_http_respond_error(op->req, 503, "busy", "Server busy, try again");
        op_free(op);
        return;
    }
    maybe_rehash(op);
    sp_uuid_v4(op->user.sid);
    op->now_ms = sp_wall_ms();
    sp_store_query(op->a->app->store, SQL_INSERT_SESSION, session_params(op), login_session_done,
                   op);
}

static void login_loaded(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)changes;
    if (err) {
        respond_store_err(op->req, err);
        op_free(op);
        return;
    }
    json_t *row = json_array_get(rows, 0);
    const char *id = json_string_value(json_object_get(row, "id"));
    const char *hash = json_string_value(json_object_get(row, "password_hash"));
    const char *dn = json_string_value(json_object_get(row, "display_name"));
    if (row && id && hash && strlen(id) < sizeof(op->user.id) &&
        strlen(hash) < sizeof(op->hash)) {
        op->found = true;
        snprintf(op->user.id, sizeof(op->user.id), "%s", id);
        snprintf(op->hash, sizeof(op->hash), "%s", hash);
        snprintf(op->user.display_name, sizeof(op->user.display_name), "%s", dn ? dn : "");
    }
    int rc = sp_password_verify(op->a->app->loop, op->found ? op->hash : NULL, op->password,
                                op->pwlen, login_verified, op);
    if (rc) {
        sp_http_res_header(op->req, "Retry-After", "1");
        sp_http_respond_error(op->req, 503, "busy", "Server busy, try again");
        op_free(op);
    }
}

static void h_login(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    bool bad = false;
    size_t elen, plen;
    const char *email = json_str(body, "email", &elen, &bad);
    const char *pw = json_str(body, "password", &plen, &bad);
    char norm[SP_EMAIL_MAX + 1];
    norm[0] = '\0';
    if (!email || !elen) {
        respond_err(req, 422, "invalid_email", "Enter your email address", "email");
        goto out;
    }
    if (!pw || !plen) {
        respond_err(req, 422, "invalid_password", "Enter your password", "password");
        goto out;
    }
    if (plen > SP_PASSWORD_MAX_BYTES) {
        respond_err(req, 422, "invalid_password", "Password must be at most 1024 bytes",
                    "password");
        goto out;
    }
    /* A malformed email is just an unknown account (same answer, same cost). */
    if (sp_auth_normalize_email(email, elen, norm, sizeof(norm)) != 0)
        snprintf(norm, sizeof(norm), "%.*s", (int)(elen < SP_EMAIL_MAX ? elen : SP_EMAIL_MAX),
                 email);
    if (throttle(a->rl_login_ip, a->rl_login_email, req, norm))
        goto out;
    op_t *op = op_new(a, req, OP_LOGIN);
    snprintf(op->user.email, sizeof(op->user.email), "%s", norm);
    op->password = sp_malloc(plen + 1);
    memcpy(op->password, pw, plen);
    op->password[plen] = '\0';
    op->pwlen = plen;
    fill_client(op);
    sp_store_query(a->app->store,
                   "SELECT id, email, password_hash, display_name FROM users WHERE email = $1",
                   json_pack("[s]", norm), login_loaded, op);
out:
    json_decref(body);
}

/* ---- logout, token, me -------------------------------------------------------------- */

static void logout_done(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    (void)changes;
    if (err) {
        respond_store_err(op->req, err);
    } else {
        set_cookies(op->a, op->req, NULL, NULL, 0);
        sp_http_respond(op->req, 204, NULL, NULL, 0);
    }
    op_free(op);
}

static void h_logout(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        respond_401(req);
        return;
    }
    op_t *op = op_new(a, req, OP_LOGOUT);
    op->user = *u;
    sp_store_query(a->app->store,
                   "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 "
                   "AND revoked_at IS NULL",
                   json_pack("[I,s,s]", (json_int_t)op->now_ms, u->sid, u->id), logout_done, op);
}

static void token_done(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    (void)changes;
    if (err) {
        respond_store_err(op->req, err);
        op_free(op);
        return;
    }
    char *jwt = sign_session(op);
    if (jwt) {
        char ts[40];
        sp_time_rfc3339(op->expires_ms, ts, sizeof(ts));
        sp_http_res_header(op->req, "Cache-Control", "no-store");
        sp_http_respond_json(op->req, 200,
                             json_pack("{s:s,s:s,s:I}", "token", jwt, "expires_at", ts,
                                       "expires_at_ms", (json_int_t)op->expires_ms));
        sodium_memzero(jwt, strlen(jwt));
        sp_free(jwt);
    }
    op_free(op);
}

static void h_token(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        respond_401(req);
        return;
    }
    op_t *op = op_new(a, req, OP_TOKEN);
    op->user = *u;
    sp_uuid_v4(op->user.sid);
    fill_client(op);
    sp_store_query(a->app->store, SQL_INSERT_SESSION, session_params(op), token_done, op);
}

static void h_me(sp_http_req_t *req, void *ud)
{
    (void)ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        respond_401(req);
        return;
    }
    sp_http_res_header(req, "Cache-Control", "no-store");
    sp_http_respond_json(req, 200, json_pack("{s:o}", "user", user_json(u)));
}

/* ---- authentication (guard and WebSocket) -------------------------------------------- */

static const sp_auth_user_t *attach_user(sp_auth_t *a, sp_http_req_t *req,
                                         const sp_auth_user_t *src)
{
    (void)a;
    /* A copy per request, freed by the server when the request ends. */
    sp_auth_user_t *u = sp_malloc(sizeof(*u));
    *u = *src;
    sp_http_req_set_data(req, u);
    sp_http_req_set_data_free(req, sp_free);
    sp_http_req_set_user(req, u->id);
    return u;
}

const sp_auth_user_t *sp_auth_user(sp_http_req_t *req)
{
    return sp_http_req_get_data(req);
}

static void session_loaded(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)changes;
    sp_http_req_t *req = op->req;
    if (err) {
        if (op->kind == OP_WS) {
            sp_warn("auth", "store error", "err=%s", sp_err_name(err));
            op->wscb(req, 503, NULL, op->wsud);
        } else {
            respond_store_err(req, err);
        }
        op_free(op);
        return;
    }
    json_t *row = json_array_get(rows, 0);
    const char *id = json_string_value(json_object_get(row, "id"));
    const char *email = json_string_value(json_object_get(row, "email"));
    const char *dn = json_string_value(json_object_get(row, "display_name"));
    if (!row || !id || !email || strcmp(id, op->user.id) != 0) {
        if (op->kind == OP_WS)
            op->wscb(req, 401, NULL, op->wsud);
        else
            respond_401(req);
        op_free(op);
        return;
    }
    snprintf(op->user.email, sizeof(op->user.email), "%s", email);
    snprintf(op->user.display_name, sizeof(op->user.display_name), "%s", dn ? dn : "");
    if (op->kind == OP_WS) {
        sp_http_req_set_user(req, op->user.id);
        op->wscb(req, 0, &op->user, op->wsud);
    } else {
        attach_user(op->a, req, &op->user);
        sp_http_req_continue(req);
    }
    op_free(op);
}

static void load_session(op_t *op, const sp_jwt_claims_t *c)
{
    /* ids are UUIDs; anything else cannot match a row */
    const char *sub = sp_uuid_valid(c->sub) ? c->sub : "-";
    const char *sid = sp_uuid_valid(c->sid) ? c->sid : "-";
    memcpy(op->user.id, sub, strlen(sub) + 1);
    memcpy(op->user.sid, sid, strlen(sid) + 1);
    sp_store_query(op->a->app->store,
                   "SELECT u.id AS id, u.email AS email, u.display_name AS display_name "
                   "FROM sessions s JOIN users u ON u.id = s.user_id "
                   "WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL "
                   "AND s.expires_at > $3",
                   json_pack("[s,s,I]", sid, sub, (json_int_t)op->now_ms), session_loaded,
                   op);
}

static bool guard(sp_http_req_t *req, unsigned flags, void *ud)
{
    sp_auth_t *a = ud;
    if (!(flags & SP_ROUTE_AUTH))
        return true;
    char tok[TOKEN_CAP];
    const char *token = sp_auth_bearer(sp_http_req_header(req, "Authorization"));
    bool bearer = token != NULL;
    if (!bearer) {
        if (!sp_http_req_cookie(req, a->cookie, tok, sizeof(tok)) || !tok[0]) {
            respond_401(req);
            return false;
        }
        token = tok;
    }
    sp_jwt_claims_t c;
    if (sp_jwt_verify(a->key, a->keylen, token, strlen(token), sp_wall_ms() / 1000, &c) != 0) {
        respond_401(req);
        return false;
    }
    if (!bearer && !(flags & SP_ROUTE_NO_CSRF)) {
        char expected[CSRF_LEN + 1], cookie[CSRF_LEN + 8];
        csrf_token(a, c.sid, expected);
        if (!sp_http_req_cookie(req, SP_AUTH_COOKIE_CSRF, cookie, sizeof(cookie)))
            cookie[0] = '\0';
        if (sp_auth_csrf_check(sp_http_req_method(req), sp_http_req_header(req, "Origin"),
                               sp_http_req_header(req, "Sec-Fetch-Site"),
                               sp_http_req_header(req, SP_AUTH_CSRF_HEADER), cookie, expected,
                               (const char *const *)a->origins, a->n_origins) != 0) {
            sp_http_respond_error(req, 403, "csrf_failed",
                                  "Missing or invalid CSRF token; reload the page");
            return false;
        }
    }
    op_t *op = op_new(a, req, OP_GUARD);
    op->user.bearer = bearer;
    load_session(op, &c);
    return false;
}

int sp_auth_ws_authenticate(sp_app_t *app, sp_http_req_t *req, sp_auth_ws_cb cb, void *ud)
{
    sp_auth_t *a = app->auth;
    char tok[TOKEN_CAP];
    bool bearer = false;
    if (!a || !cb)
        return SP_EINVAL;
    const char *h = sp_auth_bearer(sp_http_req_header(req, "Authorization"));
    if (h) {
        if (strlen(h) >= sizeof(tok))
            return SP_EAUTH;
        memcpy(tok, h, strlen(h) + 1);
        bearer = true;
    } else if (sp_http_req_query_param(req, "token", tok, sizeof(tok)) && tok[0]) {
        bearer = true;
    } else if (!sp_http_req_cookie(req, a->cookie, tok, sizeof(tok))) {
        tok[0] = '\0';
    }
    sp_jwt_claims_t c;
    if (!tok[0] ||
        sp_jwt_verify(a->key, a->keylen, tok, strlen(tok), sp_wall_ms() / 1000, &c) != 0)
        return SP_EAUTH;
    op_t *op = op_new(a, req, OP_WS);
    op->wscb = cb;
    op->wsud = ud;
    op->user.bearer = bearer;
    load_session(op, &c);
    return 0;
}

const char *sp_auth_cookie_name(const sp_auth_t *a)
{
    return a->cookie;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void add_origin(sp_auth_t *a, const char *url)
{
    char o[SP_ORIGIN_MAX];
    if (a->n_origins >= MAX_ORIGINS || sp_auth_url_origin(url, o, sizeof(o)) != 0)
        return;
    for (size_t i = 0; i < a->n_origins; i++)
        if (!strcmp(a->origins[i], o))
            return;
    a->origins[a->n_origins++] = sp_strdup(o);
}

int sp_auth_init(sp_app_t *app)
{
    const sp_config_t *cfg = app->cfg;
    char err[512];
    sp_auth_t *a = sp_calloc(1, sizeof(*a));
    a->app = app;
    int rc = sp_jwt_load_key(cfg, &a->key, &a->keylen, err, sizeof(err));
    if (rc) {
        sp_error("auth", "token signing key unusable", "err=%s detail=\"%s\"", sp_err_name(rc),
                 err);
        sp_free(a);
        return rc;
    }
    a->secure = cfg->public_url && !strncasecmp(cfg->public_url, "https://", 8);
    a->cookie = a->secure ? SP_AUTH_COOKIE_SECURE : SP_AUTH_COOKIE_PLAIN;
    if (cfg->public_url)
        add_origin(a, cfg->public_url);
    if (cfg->allowed_origins && cfg->allowed_origins[0]) {
        char *list = sp_strdup(cfg->allowed_origins);
        char *p = list;
        while (*p) {
            size_t n = strcspn(p, ", ");
            char save = p[n];
            p[n] = '\0';
            if (n)
                add_origin(a, p);
            if (!save)
                break;
            p += n + 1;
        }
        sp_free(list);
    }
    a->ttl_ms = cfg->session_ttl > 0 ? cfg->session_ttl : DEFAULT_SESSION_TTL_MS;
    bool test = cfg->env == SP_ENV_TEST;
    /* Per minute: login 10/IP and 5/email; register 10/IP and 5/email. The test profile allows
     * more per IP (the suites register many users from 127.0.0.1) but keeps 5/email. */
    a->rl_login_ip = sp_ratelimit_new((test ? 60 : 10) / 60.0, test ? 60 : 10, RL_MAX_KEYS);
    a->rl_login_email = sp_ratelimit_new(5 / 60.0, 5, RL_MAX_KEYS);
    a->rl_reg_ip = sp_ratelimit_new((test ? 60 : 10) / 60.0, test ? 60 : 10, RL_MAX_KEYS);
    a->rl_reg_email = sp_ratelimit_new(5 / 60.0, 5, RL_MAX_KEYS);
    unsigned long long ops = test ? SP_PASSWORD_OWASP_OPSLIMIT : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t mem = test ? SP_PASSWORD_OWASP_MEMLIMIT : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    rc = sp_password_init(ops, mem, 4);
    if (rc) {
        app->auth = a;
        sp_auth_free(app);
        return rc;
    }
    app->auth = a;
    sp_info("auth", "ready", "session_name=%s origins=%zu argon2_mib=%zu argon2_t=%llu", a->cookie,
            a->n_origins, mem >> 20, ops);
    return 0;
}

static void auth_release(sp_auth_t *a)
{
    for (size_t i = 0; i < a->n_origins; i++)
        sp_free(a->origins[i]);
    sp_ratelimit_free(a->rl_login_ip);
    sp_ratelimit_free(a->rl_login_email);
    sp_ratelimit_free(a->rl_reg_ip);
    sp_ratelimit_free(a->rl_reg_email);
    if (a->key) {
        sodium_memzero(a->key, a->keylen);
        sp_free(a->key);
    }
    sp_free(a);
}

void sp_auth_free(sp_app_t *app)
{
    if (!app || !app->auth)
        return;
    sp_auth_t *a = app->auth;
    app->auth = NULL;
    sp_password_cleanup();
    a->freeing = true;
    if (a->pending == 0)
        auth_release(a);
}

/* TEST_MODE only: runs sp_auth_ws_authenticate on a plain GET so the WebSocket
 * credential paths (cookie, ?token=, revoked, deleted) are testable over HTTP. */
static void ws_probe_done(sp_http_req_t *req, int status, const sp_auth_user_t *u, void *ud)
{
    (void)ud;
    if (status == 0)
        sp_http_respond_json(req, 200, json_pack("{s:o,s:b}", "user", user_json(u), "bearer",
                                                 u->bearer));
    else if (status == 401)
        respond_401(req);
    else
        respond_store_err(req, SP_EUNAVAIL);
}

static void h_ws_probe(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    if (sp_auth_ws_authenticate(a->app, req, ws_probe_done, NULL) != 0)
        respond_401(req);
}

void sp_auth_register_routes(sp_app_t *app)
{
    sp_auth_t *a = app->auth;
    sp_route_opts_t pub = {.body_limit = 8192, .flags = SP_ROUTE_PUBLIC};
    sp_route_opts_t auth = {.body_limit = 1024, .flags = SP_ROUTE_AUTH};
    sp_router_add(app->router, "POST", "/api/auth/register", h_register, a, &pub);
    sp_router_add(app->router, "POST", "/api/auth/login", h_login, a, &pub);
    sp_router_add(app->router, "POST", "/api/auth/logout", h_logout, a, &auth);
    sp_router_add(app->router, "POST", "/api/auth/token", h_token, a, &auth);
    sp_router_add(app->router, "GET", "/api/me", h_me, a, &auth);
    if (app->cfg->test_mode)
        sp_router_add(app->router, "GET", "/api/_test/ws_auth", h_ws_probe, a, &pub);
    sp_router_set_guard(app->router, guard, a);
}
