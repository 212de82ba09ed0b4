/* sp_auth: accounts and sessions, the library. See sp_auth.h. */
#include "auth/sp_auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/sp_auth_int.h"
#include "auth/sp_login_throttle.h"
#include "auth/sp_password.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "core/sp_ratelimit.h"
#include "core/sp_time.h"

#define DEFAULT_SESSION_TTL_MS (7LL * 24 * 3600 * 1000)
#define MAX_ORIGINS 16
#define UA_MAX 256
#define RL_MAX_KEYS 65536
#define DEFAULT_TOKEN_TTL_MS (12LL * 3600 * 1000)
#define TOUCH_INTERVAL_MS 60000 /* last_used_at is written at most this often per session */
#define DENIED_MAX 65536        /* remembered refused session ids */

struct sp_auth_s {
    uv_loop_t *loop;
    sp_store_t *store;
    uint8_t *key;
    size_t keylen;
    bool secure;
    const char *cookie;
    char *origins[MAX_ORIGINS];
    size_t n_origins;
    int64_t ttl_ms;
    int64_t token_ttl_ms; /* POST /api/auth/token sessions (SOCKET_TOKEN_TTL) */
    sp_map_t *denied;     /* session id -> exp (ms, sp_malloc'd): refused without a query */
    sp_auth_revoke_cb on_revoke;
    void *on_revoke_ud;
    sp_ratelimit_t *rl_login_ip, *rl_reg_ip, *rl_reg_email;
    sp_login_throttle_t *login_backoff;
    unsigned pending;
    bool freeing;
};

/* One asynchronous operation; exactly one of the callbacks is set. */
typedef struct {
    sp_auth_t *a;
    char *password;
    size_t pwlen;
    char hash[SP_PASSWORD_HASH_MAX];
    bool found;
    sp_auth_user_t user;
    char ua[UA_MAX + 1];
    char ip[64];
    int64_t now_ms;
    int64_t expires_ms;
    int64_t token_exp_ms; /* session check: the JWT's exp, for the denied cache */
    bool bearer_session;  /* session creation: kind 'bearer', token_ttl_ms */
    sp_auth_session_cb session_cb;
    sp_auth_user_cb user_cb;
    sp_auth_done_cb done_cb;
    sp_auth_ws_cb ws_cb;
    sp_http_req_t *req; /* ws_cb only */
    uv_timer_t *later;  /* session check answered from the denied cache */
    void *ud;
} op_t;

static void auth_release(sp_auth_t *a);
static void deny_remember(sp_auth_t *a, const char *sid, int64_t exp_ms);

/* ---- helpers ------------------------------------------------------------------------ */

static op_t *op_new(sp_auth_t *a, void *ud)
{
    op_t *op = sp_calloc(1, sizeof(*op));
    op->a = a;
    op->ud = ud;
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

static void set_client(op_t *op, const sp_auth_client_t *client)
{
    const char *ua = client ? client->user_agent : NULL;
    const char *ip = client ? client->ip : NULL;
    snprintf(op->ua, sizeof(op->ua), "%s", ua ? ua : "");
    snprintf(op->ip, sizeof(op->ip), "%s", ip ? ip : "");
}

static void set_password(op_t *op, const char *pw, size_t len)
{
    op->password = sp_malloc(len + 1);
    memcpy(op->password, pw, len);
    op->password[len] = '\0';
    op->pwlen = len;
}

static sp_auth_status_t store_failed(int err)
{
    sp_warn("auth", "store error", "err=%s", sp_err_name(err));
    return SP_AUTH_STORE;
}

/* ---- tokens and CSRF ------------------------------------------------------------------ */

int sp_auth_token_verify(const sp_auth_t *a, const char *token, sp_jwt_claims_t *out)
{
    if (!a || !token)
        return SP_EAUTH;
    return sp_jwt_verify(a->key, a->keylen, token, strlen(token), sp_wall_ms() / 1000, out);
}

int sp_auth_token_issue(const sp_auth_t *a, const char *user_id, const char *sid, int64_t iat_ms,
                        int64_t exp_ms, char **out)
{
    return sp_jwt_sign(a->key, a->keylen, user_id, sid, iat_ms / 1000, exp_ms / 1000, out);
}

void sp_auth_csrf_token(const sp_auth_t *a, const char *sid, char out[SP_AUTH_CSRF_LEN + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, a->key, a->keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"sp-csrf:", 8);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)sid, strlen(sid));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, SP_AUTH_CSRF_LEN + 1, mac, sizeof(mac),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(&st, sizeof(st));
}

int sp_auth_csrf_verify(const sp_auth_t *a, const char *method, const char *origin,
                        const char *sec_fetch_site, const char *header_token,
                        const char *cookie_token, const char *sid)
{
    char expected[SP_AUTH_CSRF_LEN + 1];
    sp_auth_csrf_token(a, sid, expected);
    return sp_auth_csrf_check(method, origin, sec_fetch_site, header_token, cookie_token,
                              expected, (const char *const *)a->origins, a->n_origins);
}

/* ---- throttling ----------------------------------------------------------------------- */

int sp_auth_throttle(sp_auth_t *a, sp_auth_throttle_t what, const char *ip, const char *email,
                     uint64_t *retry_ms)
{
    bool login = what == SP_AUTH_THROTTLE_LOGIN;
    char key[128];
    uint64_t now = sp_mono_ms(), retry = 0;
    sp_auth_ip_key(ip, key, sizeof(key));
    /* The per-IP bucket first: a request it refuses touches nothing else (no account's
     * allowance, no table entry), so one throttled address cannot lock anyone out. */
    int rc = sp_ratelimit_check(login ? a->rl_login_ip : a->rl_reg_ip, key, now, &retry);
    if (rc == 0 && email && email[0])
        rc = login ? sp_login_throttle_check(a->login_backoff, email, key, now, &retry)
                   : sp_ratelimit_check(a->rl_reg_email, email, now, &retry);
    if (retry_ms)
        *retry_ms = rc ? retry : 0;
    return rc ? SP_ERATELIMIT : 0;
}

/* Tells the login backoff how an attempt that sp_auth_throttle let through ended. */
static void login_outcome(op_t *op, sp_login_outcome_t outcome)
{
    char key[128];
    sp_auth_ip_key(op->ip, key, sizeof(key));
    sp_login_throttle_done(op->a->login_backoff, op->user.email, key, outcome, sp_mono_ms());
}

/* ---- session creation (register, login, new session) ----------------------------------- */

static const char *SQL_INSERT_SESSION =
    "INSERT INTO sessions (id, user_id, created_at, expires_at, user_agent, ip, kind, "
    "last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $3)";

static json_t *session_params(op_t *op)
{
    int64_t ttl = op->bearer_session && op->a->token_ttl_ms < op->a->ttl_ms ? op->a->token_ttl_ms
                                                                            : op->a->ttl_ms;
    op->expires_ms = op->now_ms + ttl;
    return json_pack("[s,s,I,I,s,s,s]", op->user.sid, op->user.id, (json_int_t)op->now_ms,
                     (json_int_t)op->expires_ms, op->ua, op->ip,
                     op->bearer_session ? "bearer" : "cookie");
}

/* Signs the JWT of op->user.sid and hands the session to the caller. */
static void session_done(op_t *op)
{
    char *jwt = NULL;
    int rc = sp_auth_token_issue(op->a, op->user.id, op->user.sid, op->now_ms, op->expires_ms,
                                 &jwt);
    if (rc) {
        sp_error("auth", "cannot sign session token", "err=%s", sp_err_name(rc));
        op->session_cb(SP_AUTH_INTERNAL, NULL, NULL, op->ud);
        return;
    }
    sp_auth_session_t s = {.token = jwt, .created_ms = op->now_ms, .expires_ms = op->expires_ms};
    op->session_cb(SP_AUTH_OK, &op->user, &s, op->ud);
    sodium_memzero(jwt, strlen(jwt));
    sp_free(jwt);
}

/* ---- register --------------------------------------------------------------------------- */

static void register_done(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    (void)changes;
    if (err == SP_EEXISTS) {
        op->session_cb(SP_AUTH_TAKEN, NULL, NULL, op->ud);
    } else if (err) {
        op->session_cb(store_failed(err), NULL, NULL, op->ud);
    } else {
        sp_info("auth", "user registered", "user_id=%s", op->user.id);
        session_done(op);
    }
    op_free(op);
}

static void register_hashed(int err, const char *hash, void *ud)
{
    op_t *op = ud;
    if (err) {
        op->session_cb(SP_AUTH_BUSY, NULL, NULL, op->ud);
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
    sp_store_tx(op->a->store, 2, s, params, register_done, op);
}

int sp_auth_register(sp_auth_t *a, const sp_auth_user_t *user, const char *password, size_t len,
                     const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud)
{
    op_t *op = op_new(a, ud);
    op->session_cb = cb;
    op->user = *user;
    op->user.bearer = false;
    sp_uuid_v4(op->user.id);
    sp_uuid_v4(op->user.sid);
    set_client(op, client);
    int rc = sp_password_hash(a->loop, password, len, register_hashed, op);
    if (rc) {
        op_free(op);
        return SP_EBUSY;
    }
    return 0;
}

/* ---- login ------------------------------------------------------------------------------ */

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
    sp_store_query(op->a->store,
                   "UPDATE users SET password_hash = $1, updated_at = $2 "
                   "WHERE id = $3 AND password_hash = $4",
                   json_pack("[s,I,s,s]", hash, (json_int_t)sp_wall_ms(), op->user.id, op->hash),
                   rehash_saved, op);
}

static void maybe_rehash(op_t *login)
{
    if (!sp_password_needs_rehash(login->hash))
        return;
    op_t *op = op_new(login->a, NULL);
    memcpy(op->user.id, login->user.id, sizeof(op->user.id));
    memcpy(op->hash, login->hash, sizeof(op->hash));
    if (sp_password_hash(login->a->loop, login->password, login->pwlen, rehash_done, op))
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
    sp_store_query(op->a->store,
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
        op->session_cb(store_failed(err), NULL, NULL, op->ud);
    } else {
        sp_info("auth", "login", "user_id=%s", op->user.id);
        session_done(op);
        cleanup_sessions(op);
    }
    op_free(op);
}

static void login_verified(int err, void *ud)
{
    op_t *op = ud;
    if (err == SP_EAUTH || (err == 0 && !op->found)) {
        sp_info("auth", "login failed", "ip=%s", op->ip);
        login_outcome(op, SP_LOGIN_FAILED);
        op->session_cb(SP_AUTH_DENIED, NULL, NULL, op->ud);
        op_free(op);
        return;
    }
    if (err) {
        login_outcome(op, SP_LOGIN_UNJUDGED);
        op->session_cb(SP_AUTH_BUSY, NULL, NULL, op->ud);
        op_free(op);
        return;
    }
    login_outcome(op, SP_LOGIN_OK);
    maybe_rehash(op);
    sp_uuid_v4(op->user.sid);
    op->now_ms = sp_wall_ms();
    sp_store_query(op->a->store, SQL_INSERT_SESSION, session_params(op), login_session_done, op);
}

static void login_loaded(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)changes;
    if (err) {
        login_outcome(op, SP_LOGIN_UNJUDGED);
        op->session_cb(store_failed(err), NULL, NULL, op->ud);
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
    int rc = sp_password_verify(op->a->loop, op->found ? op->hash : NULL, op->password,
                                op->pwlen, login_verified, op);
    if (rc) {
        login_outcome(op, SP_LOGIN_UNJUDGED);
        op->session_cb(SP_AUTH_BUSY, NULL, NULL, op->ud);
        op_free(op);
    }
}

void sp_auth_login(sp_auth_t *a, const char *email, const char *password, size_t len,
                   const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud)
{
    op_t *op = op_new(a, ud);
    op->session_cb = cb;
    snprintf(op->user.email, sizeof(op->user.email), "%s", email);
    set_password(op, password, len);
    set_client(op, client);
    sp_store_query(a->store,
                   "SELECT id, email, password_hash, display_name FROM users WHERE email = $1",
                   json_pack("[s]", op->user.email), login_loaded, op);
}

/* ---- new session, logout ------------------------------------------------------------- */

static void session_inserted(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    (void)changes;
    if (err)
        op->session_cb(store_failed(err), NULL, NULL, op->ud);
    else
        session_done(op);
    op_free(op);
}

static void new_session(sp_auth_t *a, const sp_auth_user_t *user, const sp_auth_client_t *client,
                        bool bearer, sp_auth_session_cb cb, void *ud)
{
    op_t *op = op_new(a, ud);
    op->session_cb = cb;
    op->user = *user;
    op->bearer_session = bearer;
    sp_uuid_v4(op->user.sid);
    set_client(op, client);
    sp_store_query(a->store, SQL_INSERT_SESSION, session_params(op), session_inserted, op);
}

void sp_auth_session_new(sp_auth_t *a, const sp_auth_user_t *user,
                         const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud)
{
    new_session(a, user, client, false, cb, ud);
}

void sp_auth_token_new(sp_auth_t *a, const sp_auth_user_t *user, const sp_auth_client_t *client,
                       sp_auth_session_cb cb, void *ud)
{
    new_session(a, user, client, true, cb, ud);
}

static void logout_done(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)rows;
    if (!err && changes > 0) {
        deny_remember(op->a, op->user.sid, op->expires_ms);
        sp_auth_notify_revoked_(op->a, op->user.id, op->user.sid);
    }
    op->done_cb(err ? store_failed(err) : SP_AUTH_OK, op->ud);
    op_free(op);
}

void sp_auth_logout(sp_auth_t *a, const sp_auth_user_t *user, sp_auth_done_cb cb, void *ud)
{
    op_t *op = op_new(a, ud);
    op->done_cb = cb;
    op->user = *user;
    op->expires_ms = op->now_ms + a->ttl_ms; /* the cache entry outlives any token of it */
    sp_store_query(a->store,
                   "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 "
                   "AND revoked_at IS NULL",
                   json_pack("[I,s,s]", (json_int_t)op->now_ms, user->sid, user->id),
                   logout_done, op);
}

/* ---- refused session ids, last use ------------------------------------------------------- */

/* A session id refused once is refused for good (revocation, expiry and a deleted user are
 * final), so it is remembered until its token expires: a leaked, revoked token replayed
 * costs a map lookup, not a query. Bounded: when full, expired entries go, then all (a
 * forgotten id only costs one query again). */
static void deny_remember(sp_auth_t *a, const char *sid, int64_t exp_ms)
{
    int64_t now = sp_wall_ms();
    if (!a->denied || !sp_uuid_valid(sid) || exp_ms <= now || sp_map_gets(a->denied, sid))
        return;
    if (sp_map_count(a->denied) >= DENIED_MAX) {
        size_t it = 0, kl, n = 0;
        const char *k;
        void *v;
        char(*gone)[SP_UUID_STRLEN] = sp_malloc(DENIED_MAX * sizeof(*gone));
        while (sp_map_next(a->denied, &it, &k, &kl, &v))
            if (*(int64_t *)v <= now && kl < SP_UUID_STRLEN && n < DENIED_MAX) {
                memcpy(gone[n], k, kl);
                gone[n++][kl] = '\0';
            }
        for (size_t i = 0; i < n; i++)
            sp_map_dels(a->denied, gone[i], NULL);
        sp_free(gone);
        if (sp_map_count(a->denied) >= DENIED_MAX) {
            sp_map_free(a->denied);
            a->denied = sp_map_new(sp_free);
        }
    }
    int64_t *e = sp_malloc(sizeof(*e));
    *e = exp_ms;
    sp_map_sets(a->denied, sid, e);
}

static bool deny_known(const sp_auth_t *a, const char *sid)
{
    const int64_t *e = a->denied ? sp_map_gets(a->denied, sid) : NULL;
    return e && *e > sp_wall_ms();
}

static void touched(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    (void)ud;
    if (err)
        sp_debug("auth", "session last_used_at not updated", "err=%s", sp_err_name(err));
}

static void touch_session(sp_auth_t *a, const char *sid, int64_t now_ms)
{
    sp_store_query(a->store, "UPDATE sessions SET last_used_at = $1 WHERE id = $2",
                   json_pack("[I,s]", (json_int_t)now_ms, sid), touched, NULL);
}

void sp_auth_deny_(sp_auth_t *a, const char *sid, int64_t exp_ms)
{
    if (sid)
        deny_remember(a, sid, exp_ms);
}

void sp_auth_notify_revoked_(sp_auth_t *a, const char *user_id, const char *sid)
{
    if (a->on_revoke)
        a->on_revoke(user_id, sid, a->on_revoke_ud);
}

void sp_auth_on_revoke(sp_auth_t *a, sp_auth_revoke_cb cb, void *ud)
{
    a->on_revoke = cb;
    a->on_revoke_ud = ud;
}

sp_store_t *sp_auth_store_(sp_auth_t *a)
{
    return a->store;
}

/* ---- session check (route guard, WebSocket) -------------------------------------------- */

static void session_result(op_t *op, sp_auth_status_t st)
{
    const sp_auth_user_t *u = st == SP_AUTH_OK ? &op->user : NULL;
    if (op->ws_cb) {
        if (u)
            sp_http_req_set_user(op->req, u->id);
        op->ws_cb(op->req, st, u, op->ud);
    } else {
        op->user_cb(st, u, op->ud);
    }
}

static void session_loaded(int err, json_t *rows, int64_t changes, void *ud)
{
    op_t *op = ud;
    (void)changes;
    if (err) {
        session_result(op, store_failed(err));
        op_free(op);
        return;
    }
    json_t *row = json_array_get(rows, 0);
    const char *id = json_string_value(json_object_get(row, "id"));
    const char *email = json_string_value(json_object_get(row, "email"));
    const char *dn = json_string_value(json_object_get(row, "display_name"));
    if (!row || !id || !email || strcmp(id, op->user.id) != 0) {
        /* revoked, expired, unknown or its user deleted: final, so remembered */
        deny_remember(op->a, op->user.sid, op->token_exp_ms);
        session_result(op, SP_AUTH_DENIED);
        op_free(op);
        return;
    }
    snprintf(op->user.email, sizeof(op->user.email), "%s", email);
    snprintf(op->user.display_name, sizeof(op->user.display_name), "%s", dn ? dn : "");
    json_t *lu = json_object_get(row, "last_used_at");
    if (!json_is_integer(lu) || op->now_ms - json_integer_value(lu) >= TOUCH_INTERVAL_MS)
        touch_session(op->a, op->user.sid, op->now_ms);
    session_result(op, SP_AUTH_OK);
    op_free(op);
}

static void denied_closed(uv_handle_t *h)
{
    op_t *op = h->data;
    sp_free(h);
    session_result(op, SP_AUTH_DENIED);
    op_free(op);
}

static void denied_later(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, denied_closed);
}

static void load_session(op_t *op, const sp_jwt_claims_t *c, bool bearer)
{
    /* ids are UUIDs; anything else cannot match a row */
    const char *sub = sp_uuid_valid(c->sub) ? c->sub : "-";
    const char *sid = sp_uuid_valid(c->sid) ? c->sid : "-";
    memcpy(op->user.id, sub, strlen(sub) + 1);
    memcpy(op->user.sid, sid, strlen(sid) + 1);
    op->user.bearer = bearer;
    op->token_exp_ms = c->exp * 1000;
    op->user.expires_ms = op->token_exp_ms;
    if (deny_known(op->a, sid)) { /* answered on the next loop turn, without a query */
        op->later = sp_malloc(sizeof(*op->later));
        uv_timer_init(op->a->loop, op->later);
        op->later->data = op;
        uv_timer_start(op->later, denied_later, 0, 0);
        return;
    }
    sp_store_query(op->a->store,
                   "SELECT u.id AS id, u.email AS email, u.display_name AS display_name, "
                   "s.last_used_at AS last_used_at "
                   "FROM sessions s JOIN users u ON u.id = s.user_id "
                   "WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL "
                   "AND s.expires_at > $3",
                   json_pack("[s,s,I]", sid, sub, (json_int_t)op->now_ms), session_loaded,
                   op);
}

void sp_auth_session_check(sp_auth_t *a, const sp_jwt_claims_t *claims, bool bearer,
                           sp_auth_user_cb cb, void *ud)
{
    op_t *op = op_new(a, ud);
    op->user_cb = cb;
    load_session(op, claims, bearer);
}

/* ---- requests --------------------------------------------------------------------------- */

const sp_auth_user_t *sp_auth_set_user(sp_http_req_t *req, const sp_auth_user_t *user)
{
    /* A copy per request, freed by the server when the request ends. */
    sp_auth_user_t *u = sp_malloc(sizeof(*u));
    *u = *user;
    sp_http_req_set_data(req, u);
    sp_http_req_set_data_free(req, sp_free);
    sp_http_req_set_user(req, u->id);
    return u;
}

const sp_auth_user_t *sp_auth_user(sp_http_req_t *req)
{
    return sp_http_req_get_data(req);
}

int sp_auth_ws_authenticate(sp_auth_t *a, sp_http_req_t *req, sp_auth_ws_cb cb, void *ud)
{
    char tok[SP_AUTH_TOKEN_CAP];
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
    if (!tok[0] || sp_auth_token_verify(a, tok, &c) != 0)
        return SP_EAUTH;
    op_t *op = op_new(a, ud);
    op->ws_cb = cb;
    op->req = req;
    load_session(op, &c, bearer);
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

const char *sp_auth_cookie_name(const sp_auth_t *a)
{
    return a->cookie;
}

bool sp_auth_cookie_secure(const sp_auth_t *a)
{
    return a->secure;
}

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

static void add_origins(sp_auth_t *a, const char *csv)
{
    char *list = sp_strdup(csv);
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

int sp_auth_new(uv_loop_t *loop, const sp_config_t *cfg, sp_store_t *store, sp_auth_t **out)
{
    char err[512];
    *out = NULL;
    sp_auth_t *a = sp_calloc(1, sizeof(*a));
    a->loop = loop;
    a->store = store;
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
    if (cfg->allowed_origins && cfg->allowed_origins[0])
        add_origins(a, cfg->allowed_origins);
    a->ttl_ms = cfg->session_ttl > 0 ? cfg->session_ttl : DEFAULT_SESSION_TTL_MS;
    a->token_ttl_ms = cfg->socket_token_ttl > 0 ? cfg->socket_token_ttl : DEFAULT_TOKEN_TTL_MS;
    a->denied = sp_map_new(sp_free);
    bool test = cfg->env == SP_ENV_TEST;
    /* Per minute: login 10/IP, then the per-account backoff (sp_login_throttle.h); register
     * 10/IP and 5/email. The test profile allows more per IP (the suites register many users
     * from 127.0.0.1). */
    a->rl_login_ip = sp_ratelimit_new((test ? 60 : 10) / 60.0, test ? 60 : 10, RL_MAX_KEYS);
    a->login_backoff = sp_login_throttle_new(RL_MAX_KEYS);
    a->rl_reg_ip = sp_ratelimit_new((test ? 60 : 10) / 60.0, test ? 60 : 10, RL_MAX_KEYS);
    a->rl_reg_email = sp_ratelimit_new(5 / 60.0, 5, RL_MAX_KEYS);
    unsigned long long ops = test ? SP_PASSWORD_OWASP_OPSLIMIT : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t mem = test ? SP_PASSWORD_OWASP_MEMLIMIT : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    rc = sp_password_init(ops, mem, 4);
    if (rc) {
        sp_auth_free(a);
        return rc;
    }
    sp_info("auth", "ready", "session_name=%s origins=%zu argon2_mib=%zu argon2_t=%llu", a->cookie,
            a->n_origins, mem >> 20, ops);
    *out = a;
    return 0;
}

static void auth_release(sp_auth_t *a)
{
    for (size_t i = 0; i < a->n_origins; i++)
        sp_free(a->origins[i]);
    sp_map_free(a->denied);
    sp_ratelimit_free(a->rl_login_ip);
    sp_login_throttle_free(a->login_backoff);
    sp_ratelimit_free(a->rl_reg_ip);
    sp_ratelimit_free(a->rl_reg_email);
    if (a->key) {
        sodium_memzero(a->key, a->keylen);
        sp_free(a->key);
    }
    sp_free(a);
}

void sp_auth_free(sp_auth_t *a)
{
    if (!a)
        return;
    sp_password_cleanup();
    a->freeing = true;
    if (a->pending == 0)
        auth_release(a);
}
