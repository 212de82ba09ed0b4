/* sp_routes_auth: the account routes and the route guard over src/auth. See sp_routes_auth.h. */
#include "web/sp_routes_auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth/sp_auth.h"
#include "auth/sp_password.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_time.h"

/* A request waiting for the auth library. */
typedef struct {
    sp_auth_t *a;
    sp_http_req_t *req;
} call_t;

static call_t *call_new(sp_auth_t *a, sp_http_req_t *req)
{
    call_t *c = sp_malloc(sizeof(*c));
    c->a = a;
    c->req = req;
    return c;
}

/* ---- responses ------------------------------------------------------------------------ */

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

static void respond_store_err(sp_http_req_t *req)
{
    sp_http_res_header(req, "Retry-After", "1");
    sp_http_respond_error(req, 503, "unavailable", "The database is unavailable, try again");
}

static void respond_busy(sp_http_req_t *req)
{
    sp_http_res_header(req, "Retry-After", "1");
    sp_http_respond_error(req, 503, "busy", "Server busy, try again");
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

/* The answer to a failed library call (not SP_AUTH_OK). */
static void respond_status(sp_http_req_t *req, sp_auth_status_t st)
{
    switch (st) {
    case SP_AUTH_DENIED:
        respond_401(req);
        break;
    case SP_AUTH_TAKEN:
        respond_err(req, 409, "email_taken", "An account with this email already exists",
                    "email");
        break;
    case SP_AUTH_BUSY:
        respond_busy(req);
        break;
    case SP_AUTH_INTERNAL:
        sp_http_respond_error(req, 500, "internal", "Cannot create a session");
        break;
    default:
        respond_store_err(req);
        break;
    }
}

static json_t *user_json(const sp_auth_user_t *u)
{
    return json_pack("{s:s,s:s,s:s}", "id", u->id, "email", u->email, "display_name",
                     u->display_name);
}

static void set_cookies(sp_auth_t *a, sp_http_req_t *req, const char *jwt, const char *sid,
                        int64_t max_age_s)
{
    char v[SP_AUTH_TOKEN_CAP + 256];
    char csrf[SP_AUTH_CSRF_LEN + 1];
    const char *sec = sp_auth_cookie_secure(a) ? "; Secure" : "";
    const char *name = sp_auth_cookie_name(a);
    if (jwt) {
        sp_auth_csrf_token(a, sid, csrf);
        snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s", name, jwt,
                 (long long)max_age_s, sec);
        sp_http_res_header(req, "Set-Cookie", v);
        snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; SameSite=Lax%s", SP_AUTH_COOKIE_CSRF,
                 csrf, (long long)max_age_s, sec);
        sp_http_res_header(req, "Set-Cookie", v);
        sodium_memzero(v, sizeof(v));
    } else {
        snprintf(v, sizeof(v), "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s", name, sec);
        sp_http_res_header(req, "Set-Cookie", v);
        snprintf(v, sizeof(v), "%s=; Path=/; Max-Age=0; SameSite=Lax%s", SP_AUTH_COOKIE_CSRF, sec);
        sp_http_res_header(req, "Set-Cookie", v);
    }
    sp_http_res_header(req, "Cache-Control", "no-store");
}

static sp_auth_client_t client_of(sp_http_req_t *req)
{
    sp_auth_client_t c = {.user_agent = sp_http_req_header(req, "User-Agent"),
                          .ip = sp_http_req_remote_ip(req)};
    return c;
}

static bool throttled(sp_auth_t *a, sp_auth_throttle_t what, sp_http_req_t *req,
                      const char *email)
{
    uint64_t retry = 0;
    if (sp_auth_throttle(a, what, sp_http_req_remote_ip(req), email, &retry) == 0)
        return false;
    respond_429(req, retry);
    return true;
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

/* Register and login answer: the user, the session and CSRF cookies. */
static void session_ready(sp_auth_status_t st, const sp_auth_user_t *u,
                          const sp_auth_session_t *s, void *ud, int status)
{
    call_t *c = ud;
    if (st != SP_AUTH_OK) {
        if (st == SP_AUTH_DENIED)
            sp_http_respond_error(c->req, 401, "invalid_credentials",
                                  "Invalid email or password");
        else
            respond_status(c->req, st);
    } else {
        set_cookies(c->a, c->req, s->token, u->sid, (s->expires_ms - s->created_ms) / 1000);
        sp_http_req_set_user(c->req, u->id);
        sp_http_respond_json(c->req, status, json_pack("{s:o}", "user", user_json(u)));
    }
    sp_free(c);
}

/* ---- register --------------------------------------------------------------------------- */

static void registered(sp_auth_status_t st, const sp_auth_user_t *u, const sp_auth_session_t *s,
                       void *ud)
{
    session_ready(st, u, s, ud, 201);
}

/* Checks the display name, or defaults it to the email's local part. false: answered 422. */
static bool display_name(sp_http_req_t *req, const char *dn, size_t dlen, sp_auth_user_t *u)
{
    if (dn && dlen) {
        int rc = sp_auth_check_display_name(dn, dlen, u->display_name, sizeof(u->display_name));
        if (rc) {
            respond_err(req, 422, "invalid_display_name",
                        rc == SP_ETOOBIG ? "Display name must be at most 64 characters"
                                         : "Display name contains invalid characters",
                        "display_name");
            return false;
        }
        return true;
    }
    const char *at = strchr(u->email, '@');
    size_t n = (size_t)(at - u->email);
    if (n > SP_DISPLAY_NAME_MAX)
        n = SP_DISPLAY_NAME_MAX;
    memcpy(u->display_name, u->email, n);
    u->display_name[n] = '\0';
    return true;
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
    if (!display_name(req, dn, dlen, &u))
        goto out;
    if (throttled(a, SP_AUTH_THROTTLE_REGISTER, req, u.email))
        goto out;
    sp_auth_client_t cl = client_of(req);
    call_t *c = call_new(a, req);
    if (sp_auth_register(a, &u, pw, plen, &cl, registered, c) != 0) {
        respond_busy(req);
        sp_free(c);
    }
out:
    json_decref(body);
}

/* ---- login ------------------------------------------------------------------------------ */

static void logged_in(sp_auth_status_t st, const sp_auth_user_t *u, const sp_auth_session_t *s,
                      void *ud)
{
    session_ready(st, u, s, ud, 200);
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
    if (throttled(a, SP_AUTH_THROTTLE_LOGIN, req, norm))
        goto out;
    sp_auth_client_t cl = client_of(req);
    sp_auth_login(a, norm, pw, plen, &cl, logged_in, call_new(a, req));
out:
    json_decref(body);
}

/* ---- logout, token, me -------------------------------------------------------------- */

static void logged_out(sp_auth_status_t st, void *ud)
{
    call_t *c = ud;
    if (st != SP_AUTH_OK) {
        respond_status(c->req, st);
    } else {
        set_cookies(c->a, c->req, NULL, NULL, 0);
        sp_http_respond(c->req, 204, NULL, NULL, 0);
    }
    sp_free(c);
}

static void h_logout(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        respond_401(req);
        return;
    }
    sp_auth_logout(a, u, logged_out, call_new(a, req));
}

static void token_issued(sp_auth_status_t st, const sp_auth_user_t *u,
                         const sp_auth_session_t *s, void *ud)
{
    sp_http_req_t *req = ud;
    (void)u;
    if (st != SP_AUTH_OK) {
        respond_status(req, st);
        return;
    }
    char ts[40];
    sp_time_rfc3339(s->expires_ms, ts, sizeof(ts));
    sp_http_res_header(req, "Cache-Control", "no-store");
    sp_http_respond_json(req, 200,
                         json_pack("{s:s,s:s,s:I}", "token", s->token, "expires_at", ts,
                                   "expires_at_ms", (json_int_t)s->expires_ms));
}

static void h_token(sp_http_req_t *req, void *ud)
{
    sp_auth_t *a = ud;
    const sp_auth_user_t *u = sp_auth_user(req);
    if (!u) {
        respond_401(req);
        return;
    }
    sp_auth_client_t cl = client_of(req);
    sp_auth_token_new(a, u, &cl, token_issued, req); /* kind bearer, SOCKET_TOKEN_TTL */
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

/* ---- the route guard ------------------------------------------------------------------ */

static void guard_checked(sp_auth_status_t st, const sp_auth_user_t *u, void *ud)
{
    sp_http_req_t *req = ud;
    if (st != SP_AUTH_OK) {
        respond_status(req, st);
        return;
    }
    sp_auth_set_user(req, u);
    sp_http_req_continue(req);
}

/* SP_ROUTE_AUTH routes: bearer header or session cookie, a valid JWT, CSRF for a cookie
 * (unless SP_ROUTE_NO_CSRF), then the session row; the handler runs on sp_http_req_continue. */
static bool guard(sp_http_req_t *req, unsigned flags, void *ud)
{
    sp_auth_t *a = ud;
    if (!(flags & SP_ROUTE_AUTH))
        return true;
    char tok[SP_AUTH_TOKEN_CAP];
    const char *token = sp_auth_bearer(sp_http_req_header(req, "Authorization"));
    bool bearer = token != NULL;
    if (!bearer) {
        if (!sp_http_req_cookie(req, sp_auth_cookie_name(a), tok, sizeof(tok)) || !tok[0]) {
            respond_401(req);
            return false;
        }
        token = tok;
    }
    sp_jwt_claims_t c;
    if (sp_auth_token_verify(a, token, &c) != 0) {
        respond_401(req);
        return false;
    }
    if (!bearer && !(flags & SP_ROUTE_NO_CSRF)) {
        char cookie[SP_AUTH_CSRF_LEN + 8];
        if (!sp_http_req_cookie(req, SP_AUTH_COOKIE_CSRF, cookie, sizeof(cookie)))
            cookie[0] = '\0';
        if (sp_auth_csrf_verify(a, sp_http_req_method(req), sp_http_req_header(req, "Origin"),
                                sp_http_req_header(req, "Sec-Fetch-Site"),
                                sp_http_req_header(req, SP_AUTH_CSRF_HEADER), cookie,
                                c.sid) != 0) {
            sp_http_respond_error(req, 403, "csrf_failed",
                                  "Missing or invalid CSRF token; reload the page");
            return false;
        }
    }
    sp_auth_session_check(a, &c, bearer, guard_checked, req);
    return false;
}

/* ---- test hook ------------------------------------------------------------------------- */

#ifdef SP_TEST_HOOKS
/* GET /api/_test/ws_auth (asan/fuzz builds, TEST_MODE only): runs sp_auth_ws_authenticate on a
 * plain GET so the WebSocket credential paths (cookie, ?token=, revoked, deleted) are testable
 * over HTTP. */
static void ws_probe_done(sp_http_req_t *req, sp_auth_status_t st, const sp_auth_user_t *u,
                          void *ud)
{
    (void)ud;
    if (st == SP_AUTH_OK)
        sp_http_respond_json(req, 200, json_pack("{s:o,s:b}", "user", user_json(u), "bearer",
                                                 u->bearer));
    else if (st == SP_AUTH_DENIED)
        respond_401(req);
    else
        respond_store_err(req);
}

static void h_ws_probe(sp_http_req_t *req, void *ud)
{
    if (sp_auth_ws_authenticate(ud, req, ws_probe_done, NULL) != 0)
        respond_401(req);
}
#endif

void sp_routes_auth_register(sp_app_t *app)
{
    sp_auth_t *a = app->auth;
    sp_route_opts_t pub = {.body_limit = 8192, .flags = SP_ROUTE_PUBLIC};
    sp_route_opts_t auth = {.body_limit = 1024, .flags = SP_ROUTE_AUTH};
    sp_router_add(app->router, "POST", "/api/auth/register", h_register, a, &pub);
    sp_router_add(app->router, "POST", "/api/auth/login", h_login, a, &pub);
    sp_router_add(app->router, "POST", "/api/auth/logout", h_logout, a, &auth);
    sp_router_add(app->router, "POST", "/api/auth/token", h_token, a, &auth);
    sp_router_add(app->router, "GET", "/api/me", h_me, a, &auth);
#ifdef SP_TEST_HOOKS
    if (app->cfg->test_mode)
        sp_router_add(app->router, "GET", "/api/_test/ws_auth", h_ws_probe, a, &pub);
#endif
    sp_router_set_guard(app->router, guard, a);
}
