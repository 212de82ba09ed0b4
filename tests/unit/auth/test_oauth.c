#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "auth/sp_oauth.h"
#include "core/sp_err.h"

Test(oauth, pkce_rfc7636_appendix_b)
{
    /* RFC 7636 Appendix B */
    char ch[SP_OAUTH_CHALLENGE_LEN + 1];
    cr_assert_eq(sp_oauth_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", ch), 0);
    cr_assert_str_eq(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    cr_assert_eq(sp_oauth_pkce_challenge("short", ch), SP_EINVAL);
    cr_assert_eq(sp_oauth_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX k", ch),
                 SP_EINVAL);
    cr_assert_eq(sp_oauth_pkce_challenge(NULL, ch), SP_EINVAL);
    char v1[SP_OAUTH_VERIFIER_LEN + 1], v2[SP_OAUTH_VERIFIER_LEN + 1];
    sp_oauth_pkce_verifier(v1);
    sp_oauth_pkce_verifier(v2);
    cr_assert_eq(strlen(v1), SP_OAUTH_VERIFIER_LEN);
    cr_assert_str_neq(v1, v2);
    cr_assert_eq(sp_oauth_pkce_challenge(v1, ch), 0, "a generated verifier is valid");
}

Test(oauth, authorize_url_encodes_everything)
{
    sp_buf_t b;
    sp_buf_init(&b, 4096);
    sp_oauth_authorize_t a = {
        .authorize_url = "https://id.twitch.tv/oauth2/authorize",
        .client_id = "cid",
        .redirect_uri = "https://sp.example/auth/twitch/callback?x=1&y=2",
        .scopes = "user:read:chat channel:manage:broadcast",
        .state = "st-ate_1",
        .code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        .extra = "force_verify=true",
    };
    cr_assert_eq(sp_oauth_authorize_url(&a, &b), 0);
    cr_assert_str_eq(b.p,
                     "https://id.twitch.tv/oauth2/authorize?response_type=code&client_id=cid"
                     "&redirect_uri=https%3A%2F%2Fsp.example%2Fauth%2Ftwitch%2Fcallback%3Fx%3D1"
                     "%26y%3D2&scope=user%3Aread%3Achat%20channel%3Amanage%3Abroadcast"
                     "&state=st-ate_1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                     "&code_challenge_method=S256&force_verify=true");
    sp_buf_cleanup(&b);
    sp_buf_init(&b, 4096);
    a.authorize_url = "https://accounts.example/auth?prompt=consent";
    a.code_challenge = NULL;
    a.extra = NULL;
    a.nonce = "n1";
    cr_assert_eq(sp_oauth_authorize_url(&a, &b), 0);
    const char *want = "https://accounts.example/auth?prompt=consent&response_type=code&";
    cr_assert(strncmp(b.p, want, strlen(want)) == 0, "%s", b.p);
    cr_assert_not_null(strstr(b.p, "&nonce=n1"));
    cr_assert_null(strstr(b.p, "code_challenge"));
    sp_buf_cleanup(&b);
    sp_buf_init(&b, 4096);
    a.authorize_url = "javascript:alert(1)";
    cr_assert_eq(sp_oauth_authorize_url(&a, &b), SP_EINVAL);
    a.authorize_url = "https://x/a";
    a.state = NULL;
    cr_assert_eq(sp_oauth_authorize_url(&a, &b), SP_EINVAL);
    sp_buf_cleanup(&b);
}

Test(oauth, token_forms)
{
    sp_buf_t b;
    sp_buf_init(&b, 4096);
    sp_oauth_form_t f = { .grant = SP_OAUTH_GRANT_REFRESH, .client_id = "cid",
                          .client_secret = "sec", .refresh_token = "eyJfMzU%asdf=" };
    cr_assert_eq(sp_oauth_token_form(&f, &b), 0);
    cr_assert_str_eq(b.p, "grant_type=refresh_token&refresh_token=eyJfMzU%25asdf%3D&client_id=cid"
                          "&client_secret=sec");
    b.len = 0;
    sp_oauth_form_t c = { .grant = SP_OAUTH_GRANT_CODE, .client_id = "cid", .code = "abc",
                          .redirect_uri = "http://127.0.0.1:4000/cb", .code_verifier = "v~1" };
    cr_assert_eq(sp_oauth_token_form(&c, &b), 0);
    cr_assert_str_eq(b.p, "grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F"
                          "127.0.0.1%3A4000%2Fcb&code_verifier=v~1&client_id=cid");
    c.code = NULL;
    cr_assert_eq(sp_oauth_token_form(&c, &b), SP_EINVAL);
    sp_oauth_form_t cc = { .grant = SP_OAUTH_GRANT_CLIENT, .client_id = "cid" };
    cr_assert_eq(sp_oauth_token_form(&cc, &b), SP_EINVAL, "client credentials need the secret");
    sp_buf_cleanup(&b);
}

static sp_oauth_result_t parse(int status, const char *body, sp_oauth_token_t *t)
{
    return sp_oauth_parse_token(status, body, body ? strlen(body) : 0, t);
}

Test(oauth, token_response_twitch_shapes)
{
    sp_oauth_token_t t;
    const char *ok = "{\"access_token\":\"1ssjqsqfy6bads1ws7m03gras79zfr\",\"expires_in\":14124,"
                     "\"refresh_token\":\"eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%asdfasdf=\","
                     "\"scope\":[\"channel:manage:broadcast\",\"user:read:chat\"],"
                     "\"token_type\":\"bearer\"}";
    cr_assert_eq(parse(200, ok, &t), SP_OAUTH_OK, "%s", t.error);
    cr_assert_str_eq(t.access_token, "1ssjqsqfy6bads1ws7m03gras79zfr");
    cr_assert_str_eq(t.refresh_token, "eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%asdfasdf=");
    cr_assert_eq(t.expires_in_s, 14124);
    cr_assert_str_eq(t.scopes, "channel:manage:broadcast user:read:chat");
    cr_assert_null(t.id_token);
    sp_oauth_token_clear(&t);
    cr_assert_null(t.access_token);
    sp_oauth_token_clear(&t);

    /* refresh refused: the grant is gone */
    cr_assert_eq(parse(400, "{\"status\":400,\"message\":\"Invalid refresh token\"}", &t),
                 SP_OAUTH_REAUTH);
    cr_assert_str_eq(t.error, "HTTP 400: Invalid refresh token");
    cr_assert_eq(parse(401, "{\"status\":401,\"message\":\"invalid access token\"}", &t),
                 SP_OAUTH_REAUTH);
    cr_assert_eq(parse(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Bad Request\"}",
                       &t),
                 SP_OAUTH_REAUTH);
    cr_assert_str_eq(t.error, "HTTP 400: Bad Request");
    /* try later */
    cr_assert_eq(parse(429, "", &t), SP_OAUTH_RETRY);
    cr_assert_eq(parse(503, "<html>down</html>", &t), SP_OAUTH_RETRY);
    cr_assert_str_eq(t.error, "HTTP 503");
    cr_assert_eq(parse(403, "{}", &t), SP_OAUTH_BAD);
}

Test(oauth, token_response_google_shapes)
{
    sp_oauth_token_t t;
    /* Google: scope as a string, no refresh token on refresh, an id_token for sign-in */
    const char *g = "{\"access_token\":\"ya29.a0Af\",\"expires_in\":3599,\"scope\":\"openid "
                    "https://www.googleapis.com/auth/youtube\",\"token_type\":\"Bearer\","
                    "\"id_token\":\"eyJhbGciOiJSUzI1NiJ9.e30.sig\"}";
    cr_assert_eq(parse(200, g, &t), SP_OAUTH_OK, "%s", t.error);
    cr_assert_null(t.refresh_token);
    cr_assert_str_eq(t.id_token, "eyJhbGciOiJSUzI1NiJ9.e30.sig");
    cr_assert_str_eq(t.scopes, "openid https://www.googleapis.com/auth/youtube");
    sp_oauth_token_clear(&t);
}

Test(oauth, token_response_hostile)
{
    sp_oauth_token_t t;
    const char *bad[] = {
        "",
        "[]",
        "{\"expires_in\":5}",                                     /* no access token */
        "{\"access_token\":\"\"}",                                 /* empty */
        "{\"access_token\":42}",                                   /* not a string */
        "{\"access_token\":\"a b\"}",                              /* space */
        "{\"access_token\":\"a\\nb\"}",                            /* control character */
        "{\"access_token\":\"a\\u0000b\"}",                        /* embedded NUL */
        "{\"access_token\":\"a\",\"token_type\":\"mac\"}",         /* not a bearer token */
        "{\"access_token\":\"a\",\"expires_in\":\"soon\"}",        /* not a number */
        "{\"access_token\":\"a\",\"scope\":[1]}",                  /* scope not a string */
        "{\"access_token\":\"a\",\"scope\":[\"a b\"]}",            /* a scope with a space */
        "{\"access_token\":\"a\",\"access_token\":\"b\"}",         /* duplicate key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse(200, bad[i], &t), SP_OAUTH_BAD, "accepted %s", bad[i]);
        cr_assert_null(t.access_token);
        cr_assert_null(t.refresh_token);
    }
    /* huge lifetimes are clamped, negative ones are 0 */
    cr_assert_eq(parse(200, "{\"access_token\":\"a\",\"expires_in\":9223372036854775807}", &t),
                 SP_OAUTH_OK);
    cr_assert_eq(t.expires_in_s, SP_OAUTH_MAX_EXPIRES_S);
    sp_oauth_token_clear(&t);
    cr_assert_eq(parse(200, "{\"access_token\":\"a\",\"expires_in\":-5}", &t), SP_OAUTH_OK);
    cr_assert_eq(t.expires_in_s, 0);
    sp_oauth_token_clear(&t);
    /* over the token cap */
    static char big[SP_OAUTH_MAX_TOKEN + 64];
    int n = snprintf(big, sizeof(big), "{\"access_token\":\"");
    memset(big + n, 'x', SP_OAUTH_MAX_TOKEN + 1);
    memcpy(big + n + SP_OAUTH_MAX_TOKEN + 1, "\"}", 3);
    cr_assert_eq(parse(200, big, &t), SP_OAUTH_BAD);
    /* the provider's message is sanitized */
    cr_assert_eq(parse(400, "{\"message\":\"bad\\u0007\\ntoken\"}", &t), SP_OAUTH_REAUTH);
    cr_assert_str_eq(t.error, "HTTP 400: bad??token");
}

Test(oauth, states_single_use_bound_expiring)
{
    sp_oauth_states_t *st = sp_oauth_states_new(3);
    char s1[SP_OAUTH_STATE_LEN + 1], s2[SP_OAUTH_STATE_LEN + 1], s3[SP_OAUTH_STATE_LEN + 1];
    sp_oauth_pending_t p, got;
    cr_assert_eq(sp_oauth_state_issue(st, "sess-A", "twitch", "connect", true, false, 1000, s1, &p),
                 0);
    cr_assert_eq(strlen(s1), SP_OAUTH_STATE_LEN);
    cr_assert_eq(strlen(p.verifier), SP_OAUTH_VERIFIER_LEN);
    cr_assert_str_eq(p.nonce, "");
    /* the right session takes it once */
    cr_assert_eq(sp_oauth_state_take(st, s1, "sess-A", 2000, &got), 0);
    cr_assert_str_eq(got.platform, "twitch");
    cr_assert_str_eq(got.purpose, "connect");
    cr_assert_str_eq(got.verifier, p.verifier);
    cr_assert_eq(sp_oauth_state_take(st, s1, "sess-A", 2000, &got), SP_ENOTFOUND, "reused");
    /* another session's state is refused, and consumed */
    cr_assert_eq(sp_oauth_state_issue(st, "sess-A", "google", "login", false, true, 1000, s2, &p),
                 0);
    cr_assert_eq(strlen(p.nonce), SP_OAUTH_STATE_LEN);
    cr_assert_str_eq(p.verifier, "");
    cr_assert_eq(sp_oauth_state_take(st, s2, "sess-B", 2000, &got), SP_EFORBIDDEN);
    cr_assert_eq(sp_oauth_state_take(st, s2, "sess-A", 2000, &got), SP_ENOTFOUND);
    /* expired after 10 minutes */
    cr_assert_eq(sp_oauth_state_issue(st, "sess-A", "twitch", "connect", true, false, 1000, s3, &p),
                 0);
    cr_assert_eq(sp_oauth_state_take(st, s3, "sess-A", 1000 + SP_OAUTH_STATE_TTL_MS, &got),
                 SP_ETIMEDOUT);
    /* unknown, malformed */
    cr_assert_eq(sp_oauth_state_take(st, "nope", "sess-A", 2000, &got), SP_ENOTFOUND);
    cr_assert_eq(sp_oauth_state_take(st, NULL, "sess-A", 2000, &got), SP_ENOTFOUND);
    cr_assert_eq(sp_oauth_states_count(st), 0);
    cr_assert_eq(sp_oauth_state_issue(st, "", "twitch", "connect", 0, 0, 1, s1, &p), SP_EINVAL);
    cr_assert_eq(sp_oauth_state_issue(st, "s", "tw itch", "connect", 0, 0, 1, s1, &p), SP_EINVAL);
    sp_oauth_states_free(st);
}

Test(oauth, states_full_store_never_evicts_live_flows)
{
    sp_oauth_states_t *st = sp_oauth_states_new(2);
    char a[SP_OAUTH_STATE_LEN + 1], b[SP_OAUTH_STATE_LEN + 1], c[SP_OAUTH_STATE_LEN + 1];
    sp_oauth_pending_t p;
    cr_assert_eq(sp_oauth_state_issue(st, "victim", "twitch", "connect", 1, 0, 0, a, &p), 0);
    cr_assert_eq(sp_oauth_state_issue(st, "x", "twitch", "connect", 1, 0, 1000, b, &p), 0);
    /* full: a flood is refused while both are alive */
    cr_assert_eq(sp_oauth_state_issue(st, "y", "twitch", "connect", 1, 0, 2000, c, &p), SP_ELIMIT);
    cr_assert_eq(sp_oauth_state_take(st, a, "victim", 3000, &p), 0, "the pending flow survived");
    /* once the first has expired, a new one pushes out only the expired one */
    cr_assert_eq(sp_oauth_state_issue(st, "v2", "twitch", "connect", 1, 0, 0, a, &p), 0);
    cr_assert_eq(sp_oauth_state_issue(st, "z", "twitch", "connect", 1, 0, SP_OAUTH_STATE_TTL_MS + 1,
                                      c, &p),
                 0);
    cr_assert_eq(sp_oauth_state_take(st, b, "x", SP_OAUTH_STATE_TTL_MS + 2, &p), 0,
                 "the live one was kept");
    cr_assert_eq(sp_oauth_state_take(st, a, "v2", SP_OAUTH_STATE_TTL_MS + 2, &p), SP_ENOTFOUND);
    sp_oauth_states_free(st);
}
