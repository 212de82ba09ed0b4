/* sp_routes_oauth: the OAuth connect and sign-in flows. See sp_routes_oauth.h. */
#include "web/sp_routes_oauth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/sp_auth.h"
#include "auth/sp_oauth.h"
#include "auth/sp_oidc.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_ratelimit.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"
#include "platforms/sp_accounts.h"
#include "platforms/sp_platform.h"

#define FLOW_COOKIE "sp_oauth"
#define FLOW_COOKIE_LEN 43 /* base64url of 32 bytes */
#define NAME_CAP 32
#define CODE_CAP 2048
#define GOOGLE_SCOPES "openid email profile"
#define RL_KEYS 65536

struct sp_routes_oauth_s {
    sp_app_t *app;
    sp_oidc_keys_t *google_keys; /* NULL unless Google sign-in is configured */
    sp_ratelimit_t *rl;          /* flow starts per client IP */
    unsigned pending;            /* flows in flight */
    bool freeing;
    int64_t test_skew_ms;        /* added to the clock of state takes (test hook) */
};

/* One request of the three routes, alive until it has answered. */
typedef struct {
    sp_routes_oauth_t *o;
    sp_http_req_t *req;
    char name[NAME_CAP];
    const sp_platform_t *p; /* NULL: Google */
    sp_platform_oauth_t desc;
    bool configured;
    bool logged_in;
    sp_auth_user_t user;
    char cookie[FLOW_COOKIE_LEN + 1];
    bool login; /* callback: the flow's purpose */
    char state[SP_OAUTH_STATE_LEN + 8];
    char code[CODE_CAP];
    char error[64];
    sp_oauth_pending_t pend;
    sp_oauth_token_t tok;
    void (*next)(void *f);
} flow_t;

/* ---- small helpers ------------------------------------------------------------------- */

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= NAME_CAP)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static bool google_desc(const sp_config_t *cfg, sp_platform_oauth_t *o)
{
    memset(o, 0, sizeof(*o));
    if (!cfg->google_client_id || !cfg->google_client_id[0] || !cfg->google_client_secret ||
        !cfg->google_client_secret[0] || !cfg->google_redirect_uri)
        return false;
    o->authorize_url = cfg->google_auth_url;
    o->token_url = cfg->google_token_url;
    o->client_id = cfg->google_client_id;
    o->client_secret = cfg->google_client_secret;
    o->redirect_uri = cfg->google_redirect_uri;
    o->login_scopes = GOOGLE_SCOPES;
    o->pkce = true;
    return true;
}

static void flow_free(flow_t *f)
{
    sp_routes_oauth_t *o = f->o;
    sp_oauth_token_clear(&f->tok);
    sodium_memzero(f, sizeof(*f));
    sp_free(f);
    o->pending--;
    if (o->freeing && o->pending == 0)
        sp_free(o);
}

/* Resolves f->name to a platform (or Google); false after answering 404. */
static bool resolve(flow_t *f)
{
    const char *name = sp_http_req_param(f->req, "platform");
    const sp_config_t *cfg = f->o->app->cfg;
    if (!name_ok(name)) {
        sp_http_respond_error(f->req, 404, "not_found", "Unknown platform");
        return false;
    }
    snprintf(f->name, sizeof(f->name), "%s", name);
    if (strcmp(name, "google") == 0) {
        f->configured = google_desc(cfg, &f->desc);
        return true;
    }
    f->p = sp_platform_find(name);
    if (!f->p) {
        sp_http_respond_error(f->req, 404, "not_found", "Unknown platform");
        return false;
    }
    memset(&f->desc, 0, sizeof(f->desc));
    f->configured = f->p->oauth && f->p->oauth(cfg, &f->desc);
    return true;
}

static void redirect(sp_http_req_t *req, const char *location)
{
    sp_http_res_header(req, "Location", location);
    sp_http_res_header(req, "Cache-Control", "no-store");
    sp_http_res_header(req, "Referrer-Policy", "no-referrer");
    sp_http_respond(req, 302, NULL, NULL, 0);
}

/* Ends a flow on the dashboard (a logged-in browser) or the login page with ?error=code. */
static void fail(flow_t *f, const char *code, const char *detail)
{
    char loc[160];
    bool dash = f->logged_in;
    snprintf(loc, sizeof(loc), "%s?error=%s&%s=%s", dash ? "/dashboard" : "/login", code,
             dash ? "platform" : "provider", f->name);
    sp_ulog(SP_LOG_INFO, "oauth", f->logged_in ? f->user.id : NULL, "oauth flow failed",
            "platform=%s purpose=%s error=%s detail=\"%s\"", f->name,
            f->login ? "login" : "connect", code, detail ? detail : "");
    redirect(f->req, loc);
    flow_free(f);
}

static flow_t *flow_new(sp_routes_oauth_t *o, sp_http_req_t *req)
{
    flow_t *f = sp_calloc(1, sizeof(*f));
    f->o = o;
    f->req = req;
    o->pending++;
    return f;
}

/* ---- the browser's flow cookie and the optional session ------------------------------- */

static bool cookie_ok(const char *c)
{
    if (strlen(c) != FLOW_COOKIE_LEN)
        return false;
    for (const char *p = c; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* Reads the flow cookie into f->cookie ("" when absent or malformed). */
static void read_cookie(flow_t *f)
{
    char c[FLOW_COOKIE_LEN + 8];
    if (!sp_http_req_cookie(f->req, FLOW_COOKIE, c, sizeof(c)) || !cookie_ok(c))
        c[0] = '\0';
    memcpy(f->cookie, c, strlen(c) + 1); /* "" or exactly FLOW_COOKIE_LEN characters */
}

/* A flow start: the cookie, new when absent, (re)sent with a fresh 10 minute life. */
static void ensure_cookie(flow_t *f)
{
    read_cookie(f);
    if (!f->cookie[0]) {
        unsigned char r[32];
        randombytes_buf(r, sizeof(r));
        sodium_bin2base64(f->cookie, sizeof(f->cookie), r, sizeof(r),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    char v[160];
    snprintf(v, sizeof(v), "%s=%s; Path=/auth/; Max-Age=%d; HttpOnly; SameSite=Lax%s",
             FLOW_COOKIE, f->cookie, SP_OAUTH_STATE_TTL_MS / 1000,
             sp_auth_cookie_secure(f->o->app->auth) ? "; Secure" : "");
    sp_http_res_header(f->req, "Set-Cookie", v);
}

static void binding_key(const flow_t *f, bool with_user, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", f->cookie[0] ? f->cookie : "-",
             with_user && f->logged_in ? f->user.id : "");
}

static void session_checked(sp_auth_status_t st, const sp_auth_user_t *u, void *ud)
{
    flow_t *f = ud;
    if (st == SP_AUTH_STORE) {
        sp_http_res_header(f->req, "Retry-After", "1");
        sp_http_respond_error(f->req, 503, "unavailable", "The database is unavailable");
        flow_free(f);
        return;
    }
    if (st == SP_AUTH_OK) {
        f->logged_in = true;
        f->user = *u;
        sp_http_req_set_user(f->req, u->id);
    }
    f->next(f);
}

/* Who is logged in (the session cookie, checked like the route guard), then f->next. */
static void with_session(flow_t *f, void (*next)(void *))
{
    sp_auth_t *a = f->o->app->auth;
    char tok[SP_AUTH_TOKEN_CAP];
    sp_jwt_claims_t c;
    f->next = next;
    if (!sp_http_req_cookie(f->req, sp_auth_cookie_name(a), tok, sizeof(tok)) || !tok[0] ||
        sp_auth_token_verify(a, tok, &c) != 0) {
        sodium_memzero(tok, sizeof(tok));
        next(f);
        return;
    }
    sodium_memzero(tok, sizeof(tok));
    sp_auth_session_check(a, &c, false, session_checked, f);
}

static bool throttled(flow_t *f)
{
    char key[128];
    uint64_t retry = 0;
    if (!f->o->rl)
        return false;
    sp_auth_ip_key(sp_http_req_remote_ip(f->req), key, sizeof(key));
    return sp_ratelimit_check(f->o->rl, key, sp_mono_ms(), &retry) != 0;
}

/* ---- flow starts ------------------------------------------------------------------------ */

/* Issues a state for purpose and redirects to the provider. */
static void start(flow_t *f, const char *purpose, const char *scopes, bool nonce)
{
    char key[FLOW_COOKIE_LEN + 64], state[SP_OAUTH_STATE_LEN + 1];
    char challenge[SP_OAUTH_CHALLENGE_LEN + 1];
    sp_oauth_pending_t p;
    f->login = strcmp(purpose, "login") == 0;
    if (throttled(f)) {
        fail(f, "rate_limited", "too many flows from this address");
        return;
    }
    ensure_cookie(f);
    binding_key(f, !f->login, key, sizeof(key));
    int rc = sp_oauth_state_issue(f->o->app->oauth_states, key, f->name, purpose, f->desc.pkce,
                                  nonce, sp_wall_ms(), state, &p);
    if (rc) {
        fail(f, "busy", rc == SP_ELIMIT ? "too many pending flows" : "cannot issue a state");
        return;
    }
    if (f->desc.pkce && sp_oauth_pkce_challenge(p.verifier, challenge) != 0) {
        fail(f, "internal", "pkce");
        return;
    }
    sp_buf_t url;
    sp_buf_init(&url, 8192);
    sp_oauth_authorize_t az = {.authorize_url = f->desc.authorize_url,
                               .client_id = f->desc.client_id,
                               .redirect_uri = f->desc.redirect_uri,
                               .scopes = scopes,
                               .state = state,
                               .code_challenge = f->desc.pkce ? challenge : NULL,
                               .nonce = nonce ? p.nonce : NULL,
                               .extra = f->login ? NULL : f->desc.authorize_extra};
    rc = sp_oauth_authorize_url(&az, &url);
    sodium_memzero(&p, sizeof(p));
    if (rc) {
        sp_buf_cleanup(&url);
        fail(f, "not_configured", "authorize URL");
        return;
    }
    sp_ulog(SP_LOG_INFO, "oauth", f->logged_in ? f->user.id : NULL, "oauth flow started",
            "platform=%s purpose=%s", f->name, purpose);
    redirect(f->req, url.p);
    sp_buf_cleanup(&url);
    flow_free(f);
}

static void connect_session(void *ud)
{
    flow_t *f = ud;
    if (!f->logged_in) {
        redirect(f->req, "/login");
        flow_free(f);
        return;
    }
    if (!f->configured || !f->desc.connect_scopes) {
        fail(f, "not_configured", "no client id/secret");
        return;
    }
    start(f, "connect", f->desc.connect_scopes, false);
}

static void h_connect(sp_http_req_t *req, void *ud)
{
    flow_t *f = flow_new(ud, req);
    if (!resolve(f)) {
        flow_free(f);
        return;
    }
    if (!f->p) { /* Google signs in; it is not a streaming platform to connect */
        sp_http_respond_error(req, 404, "not_found", "Unknown platform");
        flow_free(f);
        return;
    }
    with_session(f, connect_session);
}

static void login_session(void *ud)
{
    flow_t *f = ud;
    f->login = true;
    if (f->logged_in) {
        redirect(f->req, "/dashboard");
        flow_free(f);
        return;
    }
    if (!f->configured || !f->desc.login_scopes) {
        fail(f, "not_configured", "sign-in not configured");
        return;
    }
    start(f, "login", f->desc.login_scopes, f->p == NULL);
}

static void h_login(sp_http_req_t *req, void *ud)
{
    flow_t *f = flow_new(ud, req);
    if (!resolve(f)) {
        flow_free(f);
        return;
    }
    with_session(f, login_session);
}

/* ---- callback: sign-in --------------------------------------------------------------------- */

static void set_session_cookies(flow_t *f, const char *jwt, const char *sid, int64_t max_age_s)
{
    sp_auth_t *a = f->o->app->auth;
    char v[SP_AUTH_TOKEN_CAP + 256];
    char csrf[SP_AUTH_CSRF_LEN + 1];
    const char *sec = sp_auth_cookie_secure(a) ? "; Secure" : "";
    sp_auth_csrf_token(a, sid, csrf);
    snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
             sp_auth_cookie_name(a), jwt, (long long)max_age_s, sec);
    sp_http_res_header(f->req, "Set-Cookie", v);
    snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; SameSite=Lax%s", SP_AUTH_COOKIE_CSRF,
             csrf, (long long)max_age_s, sec);
    sp_http_res_header(f->req, "Set-Cookie", v);
    /* the flow cookie has done its job */
    snprintf(v, sizeof(v), "%s=; Path=/auth/; Max-Age=0; HttpOnly; SameSite=Lax%s", FLOW_COOKIE,
             sec);
    sp_http_res_header(f->req, "Set-Cookie", v);
    sodium_memzero(v, sizeof(v));
}

static void signed_in(sp_auth_status_t st, const sp_auth_user_t *u, const sp_auth_session_t *s,
                      void *ud)
{
    flow_t *f = ud;
    if (st != SP_AUTH_OK) {
        fail(f, st == SP_AUTH_STORE ? "unavailable" : "signin_failed", "account");
        return;
    }
    set_session_cookies(f, s->token, u->sid, (s->expires_ms - s->created_ms) / 1000);
    sp_http_req_set_user(f->req, u->id);
    sp_ulog(SP_LOG_INFO, "oauth", u->id, "signed in", "provider=%s", f->name);
    redirect(f->req, "/dashboard");
    flow_free(f);
}

static void sign_in(flow_t *f, const char *subject, const char *email, bool verified,
                    const char *name)
{
    sp_auth_external_t ext = {.provider = f->name, .subject = subject, .email = email,
                              .email_verified = verified, .display_name = name};
    sp_auth_client_t cl = {.user_agent = sp_http_req_header(f->req, "User-Agent"),
                           .ip = sp_http_req_remote_ip(f->req)};
    sp_oauth_token_clear(&f->tok); /* a sign-in keeps no provider token */
    sp_auth_external_signin(f->o->app->auth, f->o->app->store, &ext, &cl, signed_in, f);
}

static void oidc_verified(int err, sp_oidc_result_t r, const sp_oidc_claims_t *c, void *ud)
{
    flow_t *f = ud;
    if (err) {
        fail(f, err == SP_ECANCELED ? "shutting_down" : "provider_unavailable",
             "signing keys unavailable");
        return;
    }
    if (r != SP_OIDC_OK) {
        fail(f, "invalid_id_token", sp_oidc_result_name(r));
        return;
    }
    if (f->o->freeing) {
        fail(f, "shutting_down", "");
        return;
    }
    sign_in(f, c->sub, c->email, c->email_verified, c->name);
}

/* ---- callback: connect --------------------------------------------------------------------- */

static void connected(int err, void *ud)
{
    flow_t *f = ud;
    if (err) {
        fail(f, "save_failed", sp_err_name(err));
        return;
    }
    char loc[96];
    snprintf(loc, sizeof(loc), "/dashboard?connected=%s", f->name);
    sp_ulog(SP_LOG_INFO, "oauth", f->user.id, "platform connected", "platform=%s", f->name);
    redirect(f->req, loc);
    flow_free(f);
}

static void identified(int err, const sp_platform_identity_t *who, void *ud)
{
    flow_t *f = ud;
    if (err || !who || !who->id[0]) {
        fail(f, "lookup_failed", err ? sp_err_name(err) : "no account id");
        return;
    }
    if (f->o->freeing) {
        fail(f, "shutting_down", "");
        return;
    }
    if (f->login) {
        sign_in(f, who->id, who->email, who->email_verified,
                who->display_name[0] ? who->display_name : who->login);
        return;
    }
    sp_accounts_connect(f->o->app->accounts, f->user.id, f->p, &f->tok, who, connected, f);
}

/* ---- callback: the code exchange ------------------------------------------------------------ */

static void exchanged(const sp_curlm_response_t *res, void *ud)
{
    flow_t *f = ud;
    if (res->err) {
        fail(f, res->err == SP_ECANCELED ? "shutting_down" : "provider_unavailable",
             sp_err_name(res->err));
        return;
    }
    sp_oauth_result_t r = sp_oauth_parse_token((int)res->status, res->body, res->body_len,
                                               &f->tok);
    if (r != SP_OAUTH_OK) {
        char d[192];
        snprintf(d, sizeof(d), "token endpoint status %ld: %s", res->status, f->tok.error);
        fail(f, r == SP_OAUTH_RETRY ? "provider_unavailable" : "token_failed", d);
        return;
    }
    if (f->o->freeing) {
        fail(f, "shutting_down", "");
        return;
    }
    if (f->p == NULL) { /* Google: OpenID Connect */
        const sp_config_t *cfg = f->o->app->cfg;
        if (!f->tok.id_token || !f->o->google_keys) {
            fail(f, "invalid_id_token", "no id_token");
            return;
        }
        sp_oidc_expect_t e = {.issuer = cfg->google_issuer ? cfg->google_issuer
                                                           : "https://accounts.google.com",
                              .audience = cfg->google_client_id,
                              .nonce = f->pend.nonce,
                              .now_s = sp_wall_ms() / 1000};
        sp_oidc_keys_verify(f->o->google_keys, f->tok.id_token, &e, oidc_verified, f);
        return;
    }
    if (!f->p->lookup) {
        fail(f, "lookup_failed", "platform has no lookup");
        return;
    }
    f->p->lookup(f->o->app->penv, f->tok.access_token, identified, f);
}

static void exchange(flow_t *f)
{
    sp_buf_t body;
    sp_buf_init(&body, 16384);
    sp_oauth_form_t form = {.grant = SP_OAUTH_GRANT_CODE,
                            .client_id = f->desc.client_id,
                            .client_secret = f->desc.client_secret,
                            .code = f->code,
                            .redirect_uri = f->desc.redirect_uri,
                            .code_verifier = f->pend.verifier[0] ? f->pend.verifier : NULL};
    int rc = sp_oauth_token_form(&form, &body);
    sodium_memzero(f->code, sizeof(f->code));
    if (rc) {
        sp_buf_cleanup(&body);
        fail(f, "internal", "token request");
        return;
    }
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          "Accept: application/json", NULL};
    sp_curlm_request_t rq = {.method = "POST", .url = f->desc.token_url, .headers = hdrs,
                             .body = body.p, .body_len = body.len, .timeout_ms = 10000,
                             .max_response_bytes = SP_OAUTH_MAX_BODY + 1};
    rc = sp_curlm_request(f->o->app->curlm, &rq, exchanged, f);
    sodium_memzero(body.p, body.len);
    sp_buf_cleanup(&body);
    if (rc)
        fail(f, "provider_unavailable", sp_err_name(rc));
}

static void callback_session(void *ud)
{
    flow_t *f = ud;
    char key[FLOW_COOKIE_LEN + 64];
    read_cookie(f);
    binding_key(f, true, key, sizeof(key));
    uint64_t now = (uint64_t)(sp_wall_ms() + f->o->test_skew_ms);
    int rc = sp_oauth_state_take(f->o->app->oauth_states, f->state, key, now, &f->pend);
    if (rc == 0 && strcmp(f->pend.platform, f->name) != 0)
        rc = SP_ENOTFOUND;
    if (rc) {
        fail(f, rc == SP_ETIMEDOUT ? "state_expired"
                : rc == SP_EFORBIDDEN ? "state_mismatch" : "invalid_state",
             sp_err_name(rc));
        return;
    }
    f->login = strcmp(f->pend.purpose, "login") == 0;
    if (f->error[0]) {
        fail(f, strcmp(f->error, "access_denied") == 0 ? "access_denied" : "provider_error",
             f->error);
        return;
    }
    if (!f->code[0]) {
        fail(f, "invalid_request", "no code");
        return;
    }
    if (!f->configured || (!f->login && !f->logged_in)) {
        fail(f, "not_configured", "");
        return;
    }
    exchange(f);
}

static void printable_only(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '_';
}

static void h_callback(sp_http_req_t *req, void *ud)
{
    flow_t *f = flow_new(ud, req);
    if (!resolve(f)) {
        flow_free(f);
        return;
    }
    if (!sp_http_req_query_param(req, "state", f->state, sizeof(f->state)))
        f->state[0] = '\0';
    if (!sp_http_req_query_param(req, "code", f->code, sizeof(f->code)))
        f->code[0] = '\0';
    if (!sp_http_req_query_param(req, "error", f->error, sizeof(f->error)))
        f->error[0] = '\0';
    printable_only(f->error);
    with_session(f, callback_session);
}

/* ---- test hook ---------------------------------------------------------------------------- */

#ifdef SP_TEST_HOOKS
/* POST /api/_test/oauth_clock {"skew_ms"?: N, "jwks_min_refetch_ms"?: M} (asan/fuzz builds,
 * TEST_MODE only): moves the clock of state takes (expire a state without waiting 10 min) and
 * sets the least time between two JWKS fetches (see a key rotation without waiting 1 min). */
static void h_clock(sp_http_req_t *req, void *ud)
{
    sp_routes_oauth_t *o = ud;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    json_t *v = json_object_get(body, "skew_ms");
    json_t *m = json_object_get(body, "jwks_min_refetch_ms");
    if ((v && !json_is_integer(v)) || (m && (!json_is_integer(m) || json_integer_value(m) < 0))) {
        sp_http_respond_error(req, 422, "invalid", "integers expected");
    } else {
        if (v)
            o->test_skew_ms = json_integer_value(v);
        if (m)
            sp_oidc_keys_set_min_refetch(o->google_keys, (uint64_t)json_integer_value(m));
        sp_http_respond(req, 204, NULL, NULL, 0);
    }
    json_decref(body);
}
#endif

/* GET /api/auth/providers (public): the sign-in providers this server offers, for the login
 * and signup pages: {providers: [{name, display_name, url}]}. */
static void h_providers(sp_http_req_t *req, void *ud)
{
    sp_routes_oauth_t *o = ud;
    const sp_config_t *cfg = o->app->cfg;
    json_t *list = json_array();
    sp_platform_oauth_t d;
    const sp_platform_t *tw = sp_platform_find("twitch");
    if (tw && tw->oauth && tw->oauth(cfg, &d) && d.login_scopes)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name", "twitch", "display_name",
                                              "Twitch", "url", "/auth/twitch/login"));
    if (google_desc(cfg, &d) && o->google_keys)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name", "google", "display_name",
                                              "Google", "url", "/auth/google/login"));
    sp_http_respond_json(req, 200, json_pack("{s:o}", "providers", list));
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

sp_routes_oauth_t *sp_routes_oauth_new(sp_app_t *app)
{
    sp_routes_oauth_t *o = sp_calloc(1, sizeof(*o));
    o->app = app;
    bool test = app->cfg->env == SP_ENV_TEST;
    o->rl = sp_ratelimit_new((test ? 600 : 30) / 60.0, test ? 600 : 30, RL_KEYS);
    sp_platform_oauth_t g;
    if (google_desc(app->cfg, &g) && app->cfg->google_jwks_url)
        o->google_keys = sp_oidc_keys_new(app->loop, app->curlm, app->cfg->google_jwks_url, NULL);
    sp_route_opts_t pub = {.body_limit = 1024, .flags = SP_ROUTE_PUBLIC};
    sp_router_add(app->router, "GET", "/auth/{platform}/connect", h_connect, o, &pub);
    sp_router_add(app->router, "GET", "/auth/{platform}/login", h_login, o, &pub);
    sp_router_add(app->router, "GET", "/auth/{platform}/callback", h_callback, o, &pub);
    sp_router_add(app->router, "GET", "/api/auth/providers", h_providers, o, &pub);
#ifdef SP_TEST_HOOKS
    if (app->cfg->test_mode)
        sp_router_add(app->router, "POST", "/api/_test/oauth_clock", h_clock, o, &pub);
#endif
    sp_info("oauth", "flows ready", "google_signin=%s", o->google_keys ? "on" : "off");
    return o;
}

void sp_routes_oauth_free(sp_routes_oauth_t *o)
{
    if (!o || o->freeing)
        return;
    o->freeing = true;
    o->pending++; /* flows ending inside the calls below must not free o under us */
    sp_oidc_keys_t *keys = o->google_keys;
    o->google_keys = NULL;
    sp_oidc_keys_free(keys); /* waiting verifications end now */
    sp_ratelimit_free(o->rl);
    o->rl = NULL;
    if (--o->pending == 0)
        sp_free(o);
}
