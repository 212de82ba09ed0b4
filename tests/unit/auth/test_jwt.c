/* sp_jwt: every forgery must be rejected; a genuine token accepted. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "auth/sp_jwt.h"

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t KEY2[32] = "fedcba9876543210fedcba9876543210";
#define NOW 1800000000LL
#define SUB "3f1b7a0e-8c1d-4f61-9f5a-1d2c3b4a5e6f"
#define SID "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"

static void b64(const void *p, size_t n, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Builds header.payload.signature with a chosen alg; sig_alg: 256, 512, or 0 (empty sig). */
static void forge(char *out, size_t cap, const char *header, const char *payload, int sig_alg,
                  const uint8_t *key)
{
    char h[1024], p[2048], input[4096], s[256];
    b64(header, strlen(header), h, sizeof(h));
    b64(payload, strlen(payload), p, sizeof(p));
    snprintf(input, sizeof(input), "%s.%s", h, p);
    s[0] = '\0';
    if (sig_alg == 256) {
        unsigned char mac[32];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, 32);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, strlen(input));
        crypto_auth_hmacsha256_final(&st, mac);
        b64(mac, sizeof(mac), s, sizeof(s));
    } else if (sig_alg == 512) {
        unsigned char mac[64];
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, key, 32);
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)input, strlen(input));
        crypto_auth_hmacsha512_final(&st, mac);
        b64(mac, sizeof(mac), s, sizeof(s));
    }
    snprintf(out, cap, "%s.%s", input, s);
}

static int verify(const char *tok)
{
    sp_jwt_claims_t c;
    return sp_jwt_verify(KEY, sizeof(KEY), tok, strlen(tok), NOW, &c);
}

#define GOOD_PAYLOAD                                                                             \
    "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600,"            \
    "\"typ\":\"session\"}"

Test(jwt, sign_and_verify_roundtrip)
{
    char *tok = NULL;
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW, NOW + 3600, &tok), 0);
    sp_jwt_claims_t c;
    cr_assert_eq(sp_jwt_verify(KEY, sizeof(KEY), tok, strlen(tok), NOW + 10, &c), 0);
    cr_assert_str_eq(c.sub, SUB);
    cr_assert_str_eq(c.sid, SID);
    cr_assert_eq(c.exp, NOW + 3600);
    cr_assert_eq(c.iat, NOW);
    /* a hand-made genuine token is accepted too (the forge helper is sound) */
    char t[4096];
    forge(t, sizeof(t), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), 0);
    sp_free(tok);
}

Test(jwt, short_or_null_key_refused)
{
    char *tok = NULL;
    cr_assert_eq(sp_jwt_sign(KEY, 16, SUB, SID, NOW, NOW + 60, &tok), SP_EINVAL);
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW, NOW + 60, &tok), 0);
    sp_jwt_claims_t c;
    cr_assert_eq(sp_jwt_verify(NULL, 0, tok, strlen(tok), NOW, &c), SP_EAUTH);
    cr_assert_eq(sp_jwt_verify(KEY, 16, tok, strlen(tok), NOW, &c), SP_EAUTH);
    sp_free(tok);
}

Test(jwt, alg_none_rejected)
{
    char t[4096];
    const char *hdrs[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
                          "{\"alg\":\"NONE\"}", "{\"alg\":\"none\"}"};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        forge(t, sizeof(t), hdrs[i], GOOD_PAYLOAD, 0, KEY);
        cr_assert_eq(verify(t), SP_EAUTH, "accepted %s", hdrs[i]);
        /* with a signature segment that is a valid HS256 MAC: alg still not HS256 */
        forge(t, sizeof(t), hdrs[i], GOOD_PAYLOAD, 256, KEY);
        cr_assert_eq(verify(t), SP_EAUTH, "accepted signed %s", hdrs[i]);
    }
}

Test(jwt, wrong_key_rejected)
{
    char t[4096];
    forge(t, sizeof(t), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, 256, KEY2);
    cr_assert_eq(verify(t), SP_EAUTH);
}

Test(jwt, hs512_and_others_rejected)
{
    char t[4096];
    forge(t, sizeof(t), "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, 512, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"ES256\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"hs256\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
}

Test(jwt, extra_headers_rejected)
{
    char t[4096];
    forge(t, sizeof(t), "{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"HS256\",\"jku\":\"https://evil.example/k\"}", GOOD_PAYLOAD,
          256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
    forge(t, sizeof(t), "{\"typ\":\"JWT\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_PAYLOAD, 256, KEY);
    cr_assert_eq(verify(t), SP_EAUTH);
}

Test(jwt, expired_rejected)
{
    char *tok = NULL;
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW - 7200, NOW - 1, &tok), 0);
    cr_assert_eq(verify(tok), SP_EAUTH);
    sp_free(tok);
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW - 7200, NOW, &tok), 0);
    cr_assert_eq(verify(tok), SP_EAUTH, "exp == now must be rejected");
    sp_free(tok);
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW - 7200, NOW + 1, &tok), 0);
    cr_assert_eq(verify(tok), 0);
    sp_free(tok);
}

Test(jwt, missing_or_bad_claims_rejected)
{
    char t[4096];
    const char *h = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *payloads[] = {
        /* missing exp */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990}",
        /* missing iat */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"exp\":1800003600}",
        /* exp as a string */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":\"1800003600\"}",
        /* exp as a float */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600.5}",
        /* missing sub */
        "{\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600}",
        /* missing sid */
        "{\"sub\":\"" SUB "\",\"iat\":1799999990,\"exp\":1800003600}",
        /* sub not a string */
        "{\"sub\":42,\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600}",
        /* iat in the future beyond leeway */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1800003000,\"exp\":1800003600}",
        /* wrong typ */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600,"
        "\"typ\":\"refresh\"}",
        /* nbf in the future */
        "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600,"
        "\"nbf\":1800001000}",
        /* odd characters in sub */
        "{\"sub\":\"a b\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600}",
        /* not an object */
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        forge(t, sizeof(t), h, payloads[i], 256, KEY);
        cr_assert_eq(verify(t), SP_EAUTH, "accepted payload %zu: %s", i, payloads[i]);
    }
}

/* issue 12 finding 6 (an integer typ, a string nbf were accepted) and finding 4 (times from
 * outside range-checked before arithmetic) */
Test(jwt, claim_types_are_strict_and_times_in_range)
{
    char t[4096];
    const char *h = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
#define CL "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\","
    const char *payloads[] = {
        CL "\"iat\":1799999990,\"exp\":1800003600,\"typ\":1}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"typ\":null}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"typ\":[\"session\"]}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"nbf\":\"1800001000\"}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"nbf\":\"0\"}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"nbf\":null}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"nbf\":1.5}",
        CL "\"iat\":1799999990,\"exp\":9223372036854775807,\"typ\":\"session\"}",
        CL "\"iat\":-9223372036854775808,\"exp\":1800003600}",
        CL "\"iat\":-1,\"exp\":1800003600}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"nbf\":-9223372036854775808}",
        CL "\"iat\":1799999990,\"exp\":1800003600,\"nbf\":9223372036854775807}",
    };
#undef CL
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        forge(t, sizeof(t), h, payloads[i], 256, KEY);
        cr_assert_eq(verify(t), SP_EAUTH, "accepted payload %zu: %s", i, payloads[i]);
    }
    /* controls: an integer nbf in the past and an absent typ are fine */
    forge(t, sizeof(t), h,
          "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600,"
          "\"nbf\":1799999990,\"typ\":\"session\"}",
          256, KEY);
    cr_assert_eq(verify(t), 0);
    forge(t, sizeof(t), h,
          "{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1799999990,\"exp\":1800003600}",
          256, KEY);
    cr_assert_eq(verify(t), 0);
}

Test(jwt, tampered_rejected)
{
    char *tok = NULL;
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW, NOW + 3600, &tok), 0);
    size_t n = strlen(tok);
    char *dot1 = strchr(tok, '.');
    /* flip one character of the payload */
    char *t = sp_strdup(tok);
    size_t pos = (size_t)(dot1 - tok) + 5;
    t[pos] = t[pos] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(t), SP_EAUTH);
    /* replace the payload with another user's, keeping the signature */
    char other[4096];
    forge(other, sizeof(other), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
          "{\"sub\":\"00000000-0000-4000-8000-000000000000\",\"sid\":\"" SID
          "\",\"iat\":1800000000,\"exp\":1800003600,\"typ\":\"session\"}",
          256, KEY2);
    char spliced[4096];
    const char *osig = strrchr(other, '.');
    const char *tsig = strrchr(tok, '.');
    snprintf(spliced, sizeof(spliced), "%.*s%s", (int)(osig - other), other, tsig);
    cr_assert_eq(verify(spliced), SP_EAUTH);
    /* truncated signature, extra segment, padding, junk */
    memcpy(t, tok, n + 1);
    t[n - 1] = '\0';
    cr_assert_eq(verify(t), SP_EAUTH);
    char extra[4200];
    snprintf(extra, sizeof(extra), "%s.xyz", tok);
    cr_assert_eq(verify(extra), SP_EAUTH);
    snprintf(extra, sizeof(extra), "%s=", tok);
    cr_assert_eq(verify(extra), SP_EAUTH);
    cr_assert_eq(verify(""), SP_EAUTH);
    cr_assert_eq(verify(".."), SP_EAUTH);
    cr_assert_eq(verify("a.b.c"), SP_EAUTH);
    sp_free(t);
    sp_free(tok);
}

Test(jwt, oversized_rejected)
{
    static char big[70000];
    memset(big, 'A', sizeof(big) - 1);
    big[100] = '.';
    big[200] = '.';
    cr_assert_eq(sp_jwt_verify(KEY, sizeof(KEY), big, strlen(big), NOW, NULL), SP_EAUTH);
}

Test(jwt, embedded_nul_rejected)
{
    char *tok = NULL;
    cr_assert_eq(sp_jwt_sign(KEY, sizeof(KEY), SUB, SID, NOW, NOW + 3600, &tok), 0);
    char buf[4200];
    size_t n = strlen(tok);
    memcpy(buf, tok, n);
    buf[n] = '\0';
    memcpy(buf + n + 1, "junk", 4);
    cr_assert_eq(sp_jwt_verify(KEY, sizeof(KEY), buf, n + 5, NOW, NULL), SP_EAUTH);
    cr_assert_eq(sp_jwt_verify(KEY, sizeof(KEY), buf, n, NOW, NULL), 0);
    sp_free(tok);
}

/* ---- key loading ---- */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

Test(jwt_key, prod_requires_secret)
{
    sp_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = SP_ENV_PROD;
    uint8_t *k = NULL;
    size_t kl = 0;
    char err[256];
    cr_assert_eq(sp_jwt_load_key(&cfg, &k, &kl, err, sizeof(err)), SP_ECONFIG);
    cr_assert(strstr(err, "TOKEN_SIGNING_SECRET"));
    cfg.token_signing_secret = "short-secret";
    cr_assert_eq(sp_jwt_load_key(&cfg, &k, &kl, err, sizeof(err)), SP_ECONFIG);
    cfg.token_signing_secret = "0123456789abcdef0123456789abcdef!";
    cr_assert_eq(sp_jwt_load_key(&cfg, &k, &kl, err, sizeof(err)), 0);
    cr_assert_eq(kl, 33);
    sp_free(k);
}

Test(jwt_key, dev_generates_once_0600)
{
    char dir[] = "/tmp/sp-jwtkey-XXXXXX";
    cr_assert(mkdtemp(dir));
    sp_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = SP_ENV_DEV;
    cfg.data_dir = dir;
    uint8_t *k1 = NULL, *k2 = NULL;
    size_t l1 = 0, l2 = 0;
    char err[256];
    cr_assert_eq(sp_jwt_load_key(&cfg, &k1, &l1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(l1, 32);
    char path[512];
    snprintf(path, sizeof(path), "%s/token_signing.key", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(sp_jwt_load_key(&cfg, &k2, &l2, err, sizeof(err)), 0);
    cr_assert_eq(l2, 32);
    cr_assert_eq(memcmp(k1, k2, 32), 0, "key must be reused");
    sp_free(k1);
    sp_free(k2);
    /* a truncated key file is an error, not silently replaced */
    truncate(path, 8);
    cr_assert_eq(sp_jwt_load_key(&cfg, &k1, &l1, err, sizeof(err)), SP_ECONFIG);
    unlink(path);
    rmdir(dir);
}
