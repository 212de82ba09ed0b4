/* sp_auth_external_signin on SQLite: find, link by verified email, create with a placeholder,
 * concurrent first sign-ins, and no password ever opening an account made by a sign-in. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../store/store_common.h"
#include "auth/sp_auth.h"
#include "core/sp_err.h"

#define PW "correct horse battery"

typedef struct {
    int done;
    sp_auth_status_t st;
    sp_auth_user_t user;
} res_t;

static tenv_t env;
static sp_auth_t *auth;

static void setup(void)
{
    tenv_setup(&env, false);
    env.cfg.public_url = "http://app.example.com";
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

TestSuite(auth_ext, .init = setup, .fini = teardown);

static void on_session(sp_auth_status_t st, const sp_auth_user_t *u, const sp_auth_session_t *s,
                       void *ud)
{
    res_t *r = ud;
    r->done = 1;
    r->st = st;
    cr_assert((st == SP_AUTH_OK) == (u != NULL && s != NULL));
    if (u)
        r->user = *u;
}

static void start(const char *prov, const char *sub, const char *email, bool verified,
                  const char *name, res_t *r)
{
    sp_auth_external_t x = {.provider = prov, .subject = sub, .email = email,
                            .email_verified = verified, .display_name = name};
    sp_auth_client_t cl = {.user_agent = "unit", .ip = "192.0.2.7"};
    sp_auth_external_signin(auth, env.s, &x, &cl, on_session, r);
    cr_assert(!r->done, "callback called synchronously");
}

static res_t ext(const char *prov, const char *sub, const char *email, bool verified,
                 const char *name)
{
    res_t r = {0};
    start(prov, sub, email, verified, name, &r);
    twait(&env, &r.done);
    return r;
}

static res_t reg(const char *email)
{
    res_t r = {0};
    sp_auth_user_t u = {0};
    snprintf(u.email, sizeof(u.email), "%s", email);
    snprintf(u.display_name, sizeof(u.display_name), "Reg");
    cr_assert(sp_auth_register(auth, &u, PW, strlen(PW), NULL, on_session, &r) == 0);
    twait(&env, &r.done);
    return r;
}

static res_t pwlogin(const char *email, const char *pw)
{
    res_t r = {0};
    sp_auth_login(auth, email, pw, strlen(pw), NULL, on_session, &r);
    twait(&env, &r.done);
    return r;
}

static long count(const char *sql)
{
    tres_t t = tq(&env, sql, NULL);
    cr_assert_eq(t.err, 0);
    long n = (long)json_integer_value(json_object_get(json_array_get(t.rows, 0), "n"));
    tres_free(&t);
    return n;
}

Test(auth_ext, create_then_find)
{
    res_t a = ext("google", "1001", "New.Person@Example.com", true, "New Person");
    cr_assert_eq(a.st, SP_AUTH_OK);
    cr_assert_str_eq(a.user.email, "new.person@example.com", "verified email, normalised");
    cr_assert_str_eq(a.user.display_name, "New Person");
    cr_assert(a.user.sid[0]);
    res_t b = ext("google", "1001", "new.person@example.com", true, "Renamed");
    cr_assert_eq(b.st, SP_AUTH_OK);
    cr_assert_str_eq(b.user.id, a.user.id);
    cr_assert_str_neq(b.user.sid, a.user.sid, "a new session each time");
    cr_assert_eq(count("SELECT count(*) AS n FROM users"), 1);
    cr_assert_eq(count("SELECT count(*) AS n FROM user_identities"), 1);
    cr_assert_eq(count("SELECT count(*) AS n FROM sessions"), 2);
    /* the same subject at another provider is another person */
    res_t c = ext("twitch", "1001", NULL, false, "tw");
    cr_assert_eq(c.st, SP_AUTH_OK);
    cr_assert_str_neq(c.user.id, a.user.id);
    cr_assert_str_eq(c.user.email, "twitch-1001@users.invalid");
}

Test(auth_ext, verified_email_links_unverified_does_not)
{
    res_t r = reg("owner@example.com");
    cr_assert_eq(r.st, SP_AUTH_OK);
    res_t u = ext("google", "2002", "owner@example.com", false, "Impostor");
    cr_assert_eq(u.st, SP_AUTH_OK);
    cr_assert_str_neq(u.user.id, r.user.id, "unverified: a separate user");
    cr_assert_str_eq(u.user.email, "google-2002@users.invalid");
    res_t v = ext("twitch", "3003", "OWNER@example.com", true, "Owner");
    cr_assert_eq(v.st, SP_AUTH_OK);
    cr_assert_str_eq(v.user.id, r.user.id, "verified: linked");
    cr_assert_str_eq(v.user.display_name, "Reg", "the account keeps its own name");
    /* an unverified free email is not stored either */
    res_t w = ext("google", "4004", "free@example.com", false, NULL);
    cr_assert_str_eq(w.user.email, "google-4004@users.invalid");
    cr_assert_str_eq(w.user.display_name, "Google user");
    cr_assert_eq(count("SELECT count(*) AS n FROM users WHERE email = 'free@example.com'"), 0);
    /* the password account still logs in */
    cr_assert_eq(pwlogin("owner@example.com", PW).st, SP_AUTH_OK);
}

Test(auth_ext, no_password_opens_an_external_account)
{
    res_t a = ext("google", "5005", "solo@example.com", true, "Solo");
    cr_assert_eq(a.st, SP_AUTH_OK);
    cr_assert_eq(pwlogin("solo@example.com", PW).st, SP_AUTH_DENIED);
    cr_assert_eq(pwlogin("solo@example.com", SP_AUTH_EXTERNAL_HASH).st, SP_AUTH_DENIED);
    cr_assert_eq(pwlogin("solo@example.com", "").st, SP_AUTH_DENIED);
    cr_assert_eq(pwlogin("google-5005@users.invalid", PW).st, SP_AUTH_DENIED);
}

Test(auth_ext, concurrent_first_sign_ins_make_one_user)
{
    res_t r[4] = {{0}};
    for (int i = 0; i < 4; i++)
        start("google", "6006", "race@example.com", true, "Race", &r[i]);
    for (int i = 0; i < 4; i++)
        twait(&env, &r[i].done);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(r[i].st, SP_AUTH_OK, "sign-in %d: %d", i, r[i].st);
        cr_assert_str_eq(r[i].user.id, r[0].user.id);
    }
    cr_assert_eq(count("SELECT count(*) AS n FROM users"), 1);
    cr_assert_eq(count("SELECT count(*) AS n FROM user_identities"), 1);
}

Test(auth_ext, bad_identities_refused)
{
    const char *prov[] = {"", "Google", "goo gle", "x-y", NULL};
    for (int i = 0; prov[i]; i++) {
        res_t r = ext(prov[i], "1", NULL, false, NULL);
        cr_assert_eq(r.st, SP_AUTH_DENIED, "provider '%s'", prov[i]);
    }
    char longsub[300];
    memset(longsub, '7', sizeof(longsub) - 1);
    longsub[sizeof(longsub) - 1] = '\0';
    cr_assert_eq(ext("google", "", NULL, false, NULL).st, SP_AUTH_DENIED);
    cr_assert_eq(ext("google", "a b", NULL, false, NULL).st, SP_AUTH_DENIED);
    cr_assert_eq(ext("google", longsub, NULL, false, NULL).st, SP_AUTH_DENIED);
    cr_assert_eq(count("SELECT count(*) AS n FROM users"), 0);
    /* a long but valid subject gets a hashed placeholder */
    char sub[200];
    memset(sub, 'a', sizeof(sub) - 1);
    sub[sizeof(sub) - 1] = '\0';
    res_t r = ext("google", sub, "not an email", true, "\001" "bad name");
    cr_assert_eq(r.st, SP_AUTH_OK);
    cr_assert(strlen(r.user.email) < 100 && strstr(r.user.email, "@users.invalid"), "%s",
              r.user.email);
    cr_assert_str_eq(r.user.display_name, "Google user");
}
