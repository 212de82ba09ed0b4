/* sp_authcheck: email normalisation, display names, CSRF decision, origins, IP keys. */
#include <criterion/criterion.h>
#include <string.h>

#include "auth/sp_authcheck.h"
#include "core/sp_err.h"

static int norm(const char *in, char *out)
{
    return sp_auth_normalize_email(in, strlen(in), out, SP_EMAIL_MAX + 1);
}

Test(email, normalises)
{
    char out[SP_EMAIL_MAX + 1];
    cr_assert_eq(norm("  Alice.Smith+tag@Example.COM \n", out), 0);
    cr_assert_str_eq(out, "alice.smith+tag@example.com");
    cr_assert_eq(norm("a@b.co", out), 0);
    cr_assert_str_eq(out, "a@b.co");
    cr_assert_eq(norm("x_y-z@sub-domain.example.org", out), 0);
}

Test(email, rejects)
{
    char out[SP_EMAIL_MAX + 1];
    const char *bad[] = {"", "   ", "plain", "@example.com", "a@", "a@b", "a@@b.com",
                         "a@b@c.com", "a b@c.com", ".a@b.com", "a.@b.com", "a..b@c.com",
                         "a@-b.com", "a@b-.com", "a@b..com", "a@.b.com", "a@b.com.",
                         "\"a\"@b.com", "a@b_c.com", "a(b)@c.com", "é@b.com", "a@bé.com",
                         "a\r\n@b.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(norm(bad[i], out), SP_EINVAL, "accepted '%s'", bad[i]);
    char longlocal[100];
    memset(longlocal, 'a', 65);
    memcpy(longlocal + 65, "@b.com", 7);
    cr_assert_eq(norm(longlocal, out), SP_EINVAL);
    char longmail[300];
    memset(longmail, 'a', 60);
    longmail[60] = '@';
    for (int i = 61; i < 290; i += 2) {
        longmail[i] = 'b';
        longmail[i + 1] = '.';
    }
    memcpy(longmail + 290, "com", 4);
    cr_assert_eq(norm(longmail, out), SP_EINVAL);
    /* embedded NUL with explicit length */
    cr_assert_eq(sp_auth_normalize_email("a\0b@c.com", 9, out, sizeof(out)), SP_EINVAL);
}

Test(display_name, checks)
{
    char out[SP_DISPLAY_NAME_BYTES];
    cr_assert_eq(sp_auth_check_display_name("  Ada Lovelace ", 15, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "Ada Lovelace");
    cr_assert_eq(sp_auth_check_display_name("Zoë 🎮", strlen("Zoë 🎮"), out, sizeof(out)), 0);
    cr_assert_eq(sp_auth_check_display_name("   ", 3, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_auth_check_display_name("a\nINFO admin", 12, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_auth_check_display_name("a\x1b[2J", 5, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_auth_check_display_name("a\xc0\x80", 3, out, sizeof(out)), SP_EUTF8);
    cr_assert_eq(sp_auth_check_display_name("\xed\xa0\x80", 3, out, sizeof(out)), SP_EUTF8);
    char s[200];
    memset(s, 'x', 64);
    cr_assert_eq(sp_auth_check_display_name(s, 64, out, sizeof(out)), 0);
    memset(s, 'x', 65);
    cr_assert_eq(sp_auth_check_display_name(s, 65, out, sizeof(out)), SP_ETOOBIG);
    /* 64 four-byte code points fit, 65 do not */
    char e[300];
    for (int i = 0; i < 65; i++)
        memcpy(e + i * 4, "\xf0\x9f\x8e\xae", 4);
    cr_assert_eq(sp_auth_check_display_name(e, 256, out, sizeof(out)), 0);
    cr_assert_eq(sp_auth_check_display_name(e, 260, out, sizeof(out)), SP_ETOOBIG);
}

static const char *ORIGINS[] = {"https://app.example", "http://127.0.0.1:8080"};
#define CSRF(m, o, sfs, h, c, e) sp_auth_csrf_check(m, o, sfs, h, c, e, ORIGINS, 2)

Test(csrf, decisions)
{
    const char *tok = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    /* safe methods */
    cr_assert_eq(CSRF("GET", NULL, NULL, NULL, NULL, tok), 0);
    cr_assert_eq(CSRF("HEAD", "https://evil.example", NULL, NULL, NULL, tok), 0);
    /* missing token, no origin */
    cr_assert_eq(CSRF("POST", NULL, NULL, NULL, tok, tok), SP_EFORBIDDEN);
    cr_assert_eq(CSRF("DELETE", NULL, NULL, NULL, NULL, tok), SP_EFORBIDDEN);
    /* double submit matching and bound to the session */
    cr_assert_eq(CSRF("POST", NULL, NULL, tok, tok, tok), 0);
    cr_assert_eq(CSRF("PUT", NULL, NULL, tok, tok, tok), 0);
    cr_assert_eq(CSRF("PATCH", NULL, NULL, tok, tok, tok), 0);
    /* header != cookie */
    cr_assert_eq(CSRF("POST", NULL, NULL, tok, "other", tok), SP_EFORBIDDEN);
    /* header == cookie but another session's token (user A's token with B's cookie) */
    cr_assert_eq(CSRF("POST", NULL, NULL, "forged", "forged", tok), SP_EFORBIDDEN);
    cr_assert_eq(CSRF("POST", NULL, NULL, "", "", ""), SP_EFORBIDDEN);
    /* same-origin Origin passes without token */
    cr_assert_eq(CSRF("POST", "https://app.example", NULL, NULL, NULL, tok), 0);
    cr_assert_eq(CSRF("POST", "HTTP://127.0.0.1:8080", NULL, NULL, NULL, tok), 0);
    /* cross origin refused even with a valid token */
    cr_assert_eq(CSRF("POST", "https://evil.example", NULL, tok, tok, tok), SP_EFORBIDDEN);
    cr_assert_eq(CSRF("POST", "null", NULL, tok, tok, tok), SP_EFORBIDDEN);
    cr_assert_eq(CSRF("POST", "https://app.example.evil.com", NULL, NULL, NULL, tok),
                 SP_EFORBIDDEN);
    /* Sec-Fetch-Site cross-site refused */
    cr_assert_eq(CSRF("POST", NULL, "cross-site", tok, tok, tok), SP_EFORBIDDEN);
    cr_assert_eq(CSRF("POST", NULL, "same-origin", tok, tok, tok), 0);
}

Test(bearer, parse)
{
    cr_assert_str_eq(sp_auth_bearer("Bearer abc.def.ghi"), "abc.def.ghi");
    cr_assert_str_eq(sp_auth_bearer("bearer  x"), "x");
    cr_assert_null(sp_auth_bearer("Basic abc"));
    cr_assert_null(sp_auth_bearer("Bearer "));
    cr_assert_null(sp_auth_bearer(NULL));
}

Test(origin, from_url)
{
    char o[SP_ORIGIN_MAX];
    cr_assert_eq(sp_auth_url_origin("https://App.Example:443/x?y", o, sizeof(o)), 0);
    cr_assert_str_eq(o, "https://app.example");
    cr_assert_eq(sp_auth_url_origin("http://127.0.0.1:8080", o, sizeof(o)), 0);
    cr_assert_str_eq(o, "http://127.0.0.1:8080");
    cr_assert_eq(sp_auth_url_origin("http://h:80/", o, sizeof(o)), 0);
    cr_assert_str_eq(o, "http://h");
    cr_assert_eq(sp_auth_url_origin("ftp://h", o, sizeof(o)), SP_EINVAL);
    cr_assert_eq(sp_auth_url_origin("https://user@h", o, sizeof(o)), SP_EINVAL);
    cr_assert_eq(sp_auth_url_origin("nourl", o, sizeof(o)), SP_EINVAL);
}

Test(ipkey, grouping)
{
    char k[80];
    sp_auth_ip_key("192.0.2.7", k, sizeof(k));
    cr_assert_str_eq(k, "192.0.2.7");
    sp_auth_ip_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k, sizeof(k));
    cr_assert_str_eq(k, "2001:db8:1:2::/64");
    char k2[80];
    sp_auth_ip_key("2001:db8:1:2::1", k2, sizeof(k2));
    cr_assert_str_eq(k, k2);
    sp_auth_ip_key("::ffff:10.0.0.1", k, sizeof(k));
    cr_assert_str_eq(k, "10.0.0.1");
}
