/* sp_auth as a library: tokens, CSRF, throttling and the account/session operations on SQLite,
 * with no HTTP server and no app. */
#include <criterion/criterion.h>
#include <string.h>

#include "../store/store_common.h"
#include "auth/sp_auth.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_time.h"

#define PW "correct horse battery"

typedef struct {
    int done;
    sp_auth_status_t st;
    sp_auth_user_t user;
    char token[SP_AUTH_TOKEN_CAP];
    int64_t created_ms, expires_ms;
} res_t;

static tenv_t env;
static sp_auth_t *auth;

static void setup(void)
{
    tenv_setup(&env, false);
    env.cfg.public_url = "http://app.example.com";
    env.cfg.allowed_origins = "https://other.example.com";
    char err[256];
    cr_assert(tenv_open(&env, err, sizeof(err)) == 0, "%s", err);
    cr_assert(sp_auth_new(&env.loop, &env.cfg, env.s, &auth) == 0);
}

static void teardown(void)
{
    sp_auth_free(auth);
    auth = NULL;
    tenv_teardown(&env);
}

TestSuite(auth, .init = setup, .fini = teardown);

static void on_session(sp_auth_status_t st, const sp_auth_user_t *u, const sp_auth_session_t *s,
                       void *ud)
{
    res_t *r = ud;
    r->done = 1;
    r->st = st;
    cr_assert((st == SP_AUTH_OK) == (u != NULL && s != NULL));
    if (u)
        r->user = *u;
    if (s) {
        snprintf(r->token, sizeof(r->token), "%s", s->token);
        r->created_ms = s->created_ms;
        r->expires_ms = s->expires_ms;
    }
}

static void on_user(sp_auth_status_t st, const sp_auth_user_t *u, void *ud)
{
    res_t *r = ud;
    r->done = 1;
    r->st = st;
    cr_assert((st == SP_AUTH_OK) == (u != NULL));
    if (u)
        r->user = *u;
}

static void on_done(sp_auth_status_t st, void *ud)
{
    res_t *r = ud;
    r->done = 1;
    r->st = st;
}

static res_t do_register(const char *email, const char *pw)
{
    res_t r = {0};
    sp_auth_user_t u = {0};
    snprintf(u.email, sizeof(u.email), "%s", email);
    snprintf(u.display_name, sizeof(u.display_name), "Someone");
    sp_auth_client_t cl = {.user_agent = "unit", .ip = "192.0.2.1"};
    cr_assert(sp_auth_register(auth, &u, pw, strlen(pw), &cl, on_session, &r) == 0);
    cr_assert(!r.done, "callback called synchronously");
    twait(&env, &r.done);
    return r;
}

static res_t do_login(const char *email, const char *pw)
{
    res_t r = {0};
    sp_auth_login(auth, email, pw, strlen(pw), NULL, on_session, &r);
    cr_assert(!r.done, "callback called synchronously");
    twait(&env, &r.done);
    return r;
}

static res_t do_check(const char *token)
{
    res_t r = {0};
    sp_jwt_claims_t c;
    cr_assert(sp_auth_token_verify(auth, token, &c) == 0);
    sp_auth_session_check(auth, &c, true, on_user, &r);
    cr_assert(!r.done, "callback called synchronously");
    twait(&env, &r.done);
    return r;
}

Test(auth, tokens_issue_and_verify)
{
    char *jwt = NULL;
    int64_t now = sp_wall_ms();
    const char *sub = "3f1b7a0e-8c1d-4f61-9f5a-1d2c3b4a5e6f";
    const char *sid = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    cr_assert(sp_auth_token_issue(auth, sub, sid, now, now + 60000, &jwt) == 0);
    sp_jwt_claims_t c;
    cr_assert(sp_auth_token_verify(auth, jwt, &c) == 0);
    cr_assert_str_eq(c.sub, sub);
    cr_assert_str_eq(c.sid, sid);
    jwt[strlen(jwt) - 2] ^= 1; /* a signature bit */
    cr_assert(sp_auth_token_verify(auth, jwt, &c) == SP_EAUTH);
    sp_free(jwt);
    cr_assert(sp_auth_token_issue(auth, sub, sid, now - 120000, now - 60000, &jwt) == 0);
    cr_assert(sp_auth_token_verify(auth, jwt, &c) == SP_EAUTH, "expired");
    sp_free(jwt);
    cr_assert(sp_auth_token_verify(auth, "a.b.c", &c) == SP_EAUTH);
    cr_assert(sp_auth_token_verify(auth, NULL, &c) == SP_EAUTH);
    cr_assert_str_eq(sp_auth_cookie_name(auth), SP_AUTH_COOKIE_PLAIN);
    cr_assert(!sp_auth_cookie_secure(auth));
}

Test(auth, csrf_bound_to_session_and_origins)
{
    char t1[SP_AUTH_CSRF_LEN + 1], t1b[SP_AUTH_CSRF_LEN + 1], t2[SP_AUTH_CSRF_LEN + 1];
    sp_auth_csrf_token(auth, "sid-one", t1);
    sp_auth_csrf_token(auth, "sid-one", t1b);
    sp_auth_csrf_token(auth, "sid-two", t2);
    cr_assert_eq(strlen(t1), SP_AUTH_CSRF_LEN);
    cr_assert_str_eq(t1, t1b);
    cr_assert_str_neq(t1, t2);
    /* token in header and cookie, no Origin */
    cr_assert(sp_auth_csrf_verify(auth, "POST", NULL, NULL, t1, t1, "sid-one") == 0);
    /* another session's token */
    cr_assert(sp_auth_csrf_verify(auth, "POST", NULL, NULL, t2, t2, "sid-one") == SP_EFORBIDDEN);
    cr_assert(sp_auth_csrf_verify(auth, "POST", NULL, NULL, NULL, NULL, "sid-one") ==
              SP_EFORBIDDEN);
    /* PUBLIC_URL's and ALLOWED_ORIGINS' origins pass; others are refused even with a token */
    cr_assert(sp_auth_csrf_verify(auth, "POST", "http://app.example.com", NULL, NULL, NULL,
                                  "sid-one") == 0);
    cr_assert(sp_auth_csrf_verify(auth, "POST", "https://other.example.com", NULL, NULL, NULL,
                                  "sid-one") == 0);
    cr_assert(sp_auth_csrf_verify(auth, "POST", "https://evil.example", NULL, t1, t1,
                                  "sid-one") == SP_EFORBIDDEN);
    cr_assert(sp_auth_csrf_verify(auth, "GET", "https://evil.example", NULL, NULL, NULL,
                                  "sid-one") == 0);
}

Test(auth, throttle_per_account_and_per_ip)
{
    uint64_t retry = 0;
    /* charged attempts that are never settled count as failures: 5 from one address are free,
     * the 6th from that address waits (pair backoff) */
    for (int i = 0; i < 5; i++)
        cr_assert(sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "192.0.2.7", "a@example.com",
                                   &retry) == 0);
    cr_assert(sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "192.0.2.7", "a@example.com",
                               &retry) == SP_ERATELIMIT);
    cr_assert(retry > 0 && retry <= 1000, "retry %llu", (unsigned long long)retry);
    /* another address gets through the account gate (one attempt per second), then waits */
    cr_assert(sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "192.0.2.8", "a@example.com",
                               &retry) == 0);
    cr_assert(sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "192.0.2.9", "a@example.com",
                               &retry) == SP_ERATELIMIT);
    cr_assert(retry > 0 && retry <= 1000, "retry %llu", (unsigned long long)retry);
    /* register has its own buckets */
    cr_assert(sp_auth_throttle(auth, SP_AUTH_THROTTLE_REGISTER, "192.0.2.8", "a@example.com",
                               &retry) == 0);
    /* per IP: the test profile's burst is 60; an IPv6 /64 is one key */
    int ok = 0;
    char email[64];
    for (int i = 0; i < 80; i++) {
        snprintf(email, sizeof(email), "u%d@example.com", i);
        const char *ip = i % 2 ? "2001:db8::1" : "2001:db8::2";
        if (sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, ip, email, &retry) != 0)
            break;
        ok++;
    }
    cr_assert(ok >= 60 && ok <= 61, "throttled after %d", ok);
}

/* issue 12 finding 1: requests refused per IP spent the per-email allowance, so one throttled
 * address kept any account locked (429 even with the right password from elsewhere). */
Test(auth, ip_refused_logins_touch_no_account)
{
    uint64_t retry = 0;
    char email[64];
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(email, sizeof(email), "filler%d@example.com", i);
        const char *target = i < 70 ? email : "victim@example.com";
        if (sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "198.51.100.66", target, &retry) != 0)
            refused++;
    }
    cr_assert(refused >= 130, "the address was throttled (%d refused)", refused);
    /* the victim, from another address, is not limited at all */
    for (int i = 0; i < 3; i++)
        cr_assert(sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "203.0.113.5",
                                   "victim@example.com", &retry) == 0,
                  "attempt %d refused, retry %llu", i, (unsigned long long)retry);
}

static res_t do_login_from(const char *email, const char *pw, const char *ip)
{
    res_t r = {0};
    sp_auth_client_t cl = {.user_agent = "unit", .ip = ip};
    sp_auth_login(auth, email, pw, strlen(pw), &cl, on_session, &r);
    twait(&env, &r.done);
    return r;
}

/* issue 12 finding 1: others' failures never lock the owner out for more than a moment. */
Test(auth, right_password_from_a_fresh_address_is_not_locked_out)
{
    cr_assert_eq(do_register("owner@example.com", PW).st, SP_AUTH_OK);
    uint64_t retry = 0;
    char ip[64];
    int denied = 0;
    /* 30 guesses from 10 addresses, as fast as the throttle lets them through */
    for (int i = 0; i < 30; i++) {
        snprintf(ip, sizeof(ip), "198.51.100.%d", 10 + i % 10);
        if (sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, ip, "owner@example.com", &retry))
            continue;
        cr_assert_eq(do_login_from("owner@example.com", "wrong password!", ip).st,
                     SP_AUTH_DENIED);
        denied++;
    }
    cr_assert(denied >= 5 && denied < 30, "denied %d", denied);
    /* the owner, from an address that never failed: at most a short wait, then in */
    int rc = sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "203.0.113.9", "owner@example.com",
                              &retry);
    if (rc) {
        cr_assert(retry <= 1000, "owner told to wait %llu ms", (unsigned long long)retry);
        uv_sleep((unsigned)retry + 5);
        rc = sp_auth_throttle(auth, SP_AUTH_THROTTLE_LOGIN, "203.0.113.9", "owner@example.com",
                              &retry);
    }
    cr_assert_eq(rc, 0, "retry %llu", (unsigned long long)retry);
    cr_assert_eq(do_login_from("owner@example.com", PW, "203.0.113.9").st, SP_AUTH_OK);
}

Test(auth, register_login_check_logout)
{
    res_t r = do_register("alice@example.com", PW);
    cr_assert_eq(r.st, SP_AUTH_OK);
    cr_assert(sp_uuid_valid(r.user.id) && sp_uuid_valid(r.user.sid));
    cr_assert_str_eq(r.user.email, "alice@example.com");
    cr_assert(r.expires_ms > r.created_ms);
    sp_auth_user_t alice = r.user;

    res_t c = do_check(r.token);
    cr_assert_eq(c.st, SP_AUTH_OK);
    cr_assert_str_eq(c.user.id, alice.id);
    cr_assert_str_eq(c.user.sid, alice.sid);
    cr_assert_str_eq(c.user.display_name, "Someone");
    cr_assert(c.user.bearer);

    cr_assert_eq(do_register("alice@example.com", PW).st, SP_AUTH_TAKEN);
    cr_assert_eq(do_login("alice@example.com", "wrong password!").st, SP_AUTH_DENIED);
    cr_assert_eq(do_login("nobody@example.com", PW).st, SP_AUTH_DENIED);

    res_t l = do_login("alice@example.com", PW);
    cr_assert_eq(l.st, SP_AUTH_OK);
    cr_assert_str_eq(l.user.id, alice.id);
    cr_assert_str_neq(l.user.sid, alice.sid, "login makes a new session");

    res_t t = {0};
    sp_auth_session_new(auth, &l.user, NULL, on_session, &t);
    twait(&env, &t.done);
    cr_assert_eq(t.st, SP_AUTH_OK);
    cr_assert_str_neq(t.user.sid, l.user.sid);

    res_t o = {0};
    sp_auth_logout(auth, &l.user, on_done, &o);
    cr_assert(!o.done);
    twait(&env, &o.done);
    cr_assert_eq(o.st, SP_AUTH_OK);
    cr_assert_eq(do_check(l.token).st, SP_AUTH_DENIED, "revoked");
    cr_assert_eq(do_check(t.token).st, SP_AUTH_OK, "other sessions live on");

    tres_t d = tq(&env, "DELETE FROM users WHERE id = $1", json_pack("[s]", alice.id));
    cr_assert_eq(d.err, 0);
    tres_free(&d);
    cr_assert_eq(do_check(t.token).st, SP_AUTH_DENIED, "deleted user");
}
