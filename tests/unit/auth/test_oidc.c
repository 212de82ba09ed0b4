/* sp_oidc: JWKS parsing, RS256 signatures and id_token claims (pure part), and the key cache
 * against a local HTTP server is covered by tests/integration/signin.test.mjs. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth/sp_oidc.h"
#include "core/sp_err.h"

#define NOW 1800000000LL
#define ISS "https://accounts.google.com"
#define AUD "client-123.apps.example"
#define NONCE "n0nce-abcdefghijklmnopqrstuvwxyz0123456789AB"

static EVP_PKEY *g_key, *g_other, *g_small;

static EVP_PKEY *gen(unsigned bits)
{
    EVP_PKEY *k = EVP_RSA_gen(bits);
    cr_assert_not_null(k);
    return k;
}

static void setup(void)
{
    if (sodium_init() < 0)
        cr_assert_fail("sodium");
    if (!g_key) {
        g_key = gen(2048);
        g_other = gen(2048);
        g_small = gen(1024);
    }
}

static void b64u(const unsigned char *p, size_t n, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void bn_b64u(EVP_PKEY *k, const char *name, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    cr_assert(EVP_PKEY_get_bn_param(k, name, &bn));
    unsigned char buf[1100];
    int n = BN_bn2bin(bn, buf);
    b64u(buf, (size_t)n, out, cap);
    BN_free(bn);
}

/* A JWK object for k with kid (extra: a JSON fragment appended, e.g. ,"use":"enc"). */
static char *jwk(EVP_PKEY *k, const char *kid, const char *extra)
{
    char n[1500], e[32];
    bn_b64u(k, OSSL_PKEY_PARAM_RSA_N, n, sizeof(n));
    bn_b64u(k, OSSL_PKEY_PARAM_RSA_E, e, sizeof(e));
    char *out = malloc(2000);
    snprintf(out, 2000, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid, n, e,
             extra ? extra : "");
    return out;
}

static sp_oidc_jwks_t *jwks_of(const char *keys_json)
{
    char doc[8000];
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", keys_json);
    sp_oidc_jwks_t *k = NULL;
    cr_assert_eq(sp_oidc_jwks_parse(doc, strlen(doc), &k), 0);
    return k;
}

static sp_oidc_jwks_t *std_jwks(void)
{
    char *a = jwk(g_key, "k1", ",\"alg\":\"RS256\",\"use\":\"sig\"");
    sp_oidc_jwks_t *k = jwks_of(a);
    free(a);
    return k;
}

/* header.payload signed RS256 with k (NULL: signature "AAAA"). */
static char *token(EVP_PKEY *k, const char *header, const char *payload)
{
    static char out[8192];
    char h[2048], p[4096];
    b64u((const unsigned char *)header, strlen(header), h, sizeof(h));
    b64u((const unsigned char *)payload, strlen(payload), p, sizeof(p));
    snprintf(out, sizeof(out), "%s.%s", h, p);
    if (!k) {
        size_t l = strlen(out);
        snprintf(out + l, sizeof(out) - l, ".AAAA");
        return out;
    }
    unsigned char sig[1024];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1);
    cr_assert(EVP_DigestSign(md, sig, &sl, (unsigned char *)out, strlen(out)) == 1);
    EVP_MD_CTX_free(md);
    char s[1500];
    b64u(sig, sl, s, sizeof(s));
    size_t n = strlen(out);
    snprintf(out + n, sizeof(out) - n, ".%s", s);
    return out;
}

static char *claims(const char *override)
{
    static char p[2048];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"azp\":\"" AUD "\","
             "\"sub\":\"10769150350006150715113082367\","
             "\"email\":\"alice@example.com\",\"email_verified\":true,\"name\":\"Alice\","
             "\"iat\":%lld,\"exp\":%lld,\"nonce\":\"" NONCE "\"%s}",
             NOW - 10, NOW + 3600, override ? override : "");
    return p;
}

static const char *HDR = "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}";

static sp_oidc_result_t check(sp_oidc_jwks_t *k, const char *tok, sp_oidc_claims_t *c)
{
    sp_oidc_expect_t e = {.issuer = ISS, .audience = AUD, .nonce = NONCE, .now_s = NOW};
    return sp_oidc_verify(k, tok, strlen(tok), &e, c);
}

TestSuite(oidc, .init = setup);

Test(oidc, good_token_gives_claims)
{
    sp_oidc_jwks_t *k = std_jwks();
    sp_oidc_claims_t c;
    cr_assert_eq(check(k, token(g_key, HDR, claims(NULL)), &c), SP_OIDC_OK);
    cr_assert_str_eq(c.sub, "10769150350006150715113082367");
    cr_assert_str_eq(c.email, "alice@example.com");
    cr_assert(c.email_verified);
    cr_assert_str_eq(c.name, "Alice");
    cr_assert_eq(c.exp, NOW + 3600);
    /* issuer without scheme, as Google also issues */
    char *p = claims(NULL);
    char q[2048];
    snprintf(q, sizeof(q), "%s", p);
    char *at = strstr(q, "https://");
    memmove(at, at + 8, strlen(at + 8) + 1);
    cr_assert_eq(check(k, token(g_key, HDR, q), &c), SP_OIDC_OK);
    sp_oidc_jwks_free(k);
}

Test(oidc, signature_forgeries_refused)
{
    sp_oidc_jwks_t *k = std_jwks();
    sp_oidc_claims_t c;
    /* another key under the same kid */
    cr_assert_eq(check(k, token(g_other, HDR, claims(NULL)), &c), SP_OIDC_SIGNATURE);
    cr_assert_str_eq(c.sub, "", "nothing reported for a refused token");
    /* tampered payload: re-encode the claims with another sub under the old signature */
    char good[8192];
    snprintf(good, sizeof(good), "%s", token(g_key, HDR, claims(NULL)));
    char *forged = token(g_key, HDR, claims(",\"x\":1"));
    char mix[8192];
    const char *gsig = strrchr(good, '.');
    size_t fl = (size_t)(strrchr(forged, '.') - forged);
    snprintf(mix, sizeof(mix), "%.*s%s", (int)fl, forged, gsig);
    cr_assert_eq(check(k, mix, &c), SP_OIDC_SIGNATURE);
    /* garbage and empty signatures */
    cr_assert_eq(check(k, token(NULL, HDR, claims(NULL)), &c), SP_OIDC_SIGNATURE);
    char nosig[8192];
    snprintf(nosig, sizeof(nosig), "%s", good);
    *(strrchr(nosig, '.') + 1) = '\0';
    cr_assert_eq(check(k, nosig, &c), SP_OIDC_MALFORMED);
    /* one bit flipped in the signature */
    char flip[8192];
    snprintf(flip, sizeof(flip), "%s", good);
    char *last = flip + strlen(flip) - 3;
    *last = *last == 'A' ? 'B' : 'A';
    cr_assert_eq(check(k, flip, &c), SP_OIDC_SIGNATURE);
    sp_oidc_jwks_free(k);
}

Test(oidc, header_rules)
{
    sp_oidc_jwks_t *k = std_jwks();
    sp_oidc_claims_t c;
    const char *bad[] = {
        "{\"alg\":\"none\",\"kid\":\"k1\"}",
        "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
        "{\"alg\":\"RS512\",\"kid\":\"k1\"}",
        "{\"alg\":\"PS256\",\"kid\":\"k1\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"RS256\",\"kid\":\"k1\",\"jku\":\"https://evil/jwks\"}",
        "{\"alg\":\"RS256\",\"kid\":\"k1\",\"jwk\":{}}",
        "{\"alg\":\"RS256\",\"kid\":\"k1\",\"x5u\":\"https://evil\"}",
        "{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"RS256\",\"kid\":\"\"}",
        "{\"alg\":\"RS256\",\"kid\":7}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(check(k, token(g_key, bad[i], claims(NULL)), &c), SP_OIDC_HEADER, "%s",
                     bad[i]);
    /* duplicate alg */
    cr_assert_eq(check(k, token(g_key, "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"k1\"}",
                                claims(NULL)),
                       &c),
                 SP_OIDC_MALFORMED);
    /* HS256 with the public modulus as the MAC key (alg confusion) cannot pass */
    cr_assert_eq(check(k, token(g_key, "{\"alg\":\"RS256\",\"kid\":\"other\"}", claims(NULL)),
                       &c),
                 SP_OIDC_UNKNOWN_KEY);
    char kid[64];
    cr_assert_eq(sp_oidc_peek_kid("a.b.c", 5, kid, sizeof(kid)), SP_EPROTO);
    const char *t = token(g_key, HDR, claims(NULL));
    cr_assert_eq(sp_oidc_peek_kid(t, strlen(t), kid, sizeof(kid)), 0);
    cr_assert_str_eq(kid, "k1");
    sp_oidc_jwks_free(k);
}

Test(oidc, claims_rules)
{
    sp_oidc_jwks_t *k = std_jwks();
    sp_oidc_claims_t c;
    struct {
        const char *payload;
        sp_oidc_result_t want;
    } cases[] = {
        {"{\"iss\":\"https://evil.example\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_ISSUER},
        {"{\"iss\":\"accounts.google.com.evil\",\"aud\":\"" AUD "\",\"sub\":\"1\","
         "\"iat\":1799999990,\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_ISSUER},
        {"{\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,\"exp\":1800003600,"
         "\"nonce\":\"" NONCE "\"}", SP_OIDC_ISSUER},
        {"{\"iss\":\"" ISS "\",\"aud\":\"other-client\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_AUDIENCE},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"azp\":\"other\",\"sub\":\"1\","
         "\"iat\":1799999990,\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_AUDIENCE},
        {"{\"iss\":\"" ISS "\",\"sub\":\"1\",\"iat\":1799999990,\"exp\":1800003600,"
         "\"nonce\":\"" NONCE "\"}", SP_OIDC_AUDIENCE},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799990000,"
         "\"exp\":1799999940,\"nonce\":\"" NONCE "\"}", SP_OIDC_EXPIRED},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1800000100,"
         "\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_EXPIRED},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":1800003600.5,\"nonce\":\"" NONCE "\"}", SP_OIDC_EXPIRED},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":\"1800003600\",\"nonce\":\"" NONCE "\"}", SP_OIDC_EXPIRED},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"nbf\":1800000500,\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_EXPIRED},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":1800003600,\"nonce\":\"other\"}", SP_OIDC_NONCE},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":1800003600}", SP_OIDC_NONCE},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1799999990,"
         "\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_SUBJECT},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a b\",\"iat\":1799999990,"
         "\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_SUBJECT},
        /* within the 60 s skew: accepted */
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\",\"iat\":1800000050,"
         "\"exp\":1799999950,\"nonce\":\"" NONCE "\"}", SP_OIDC_OK},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\"],\"sub\":\"1\",\"iat\":1799999990,"
         "\"exp\":1800003600,\"nonce\":\"" NONCE "\"}", SP_OIDC_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(check(k, token(g_key, HDR, cases[i].payload), &c), cases[i].want,
                     "case %zu: got %s", i,
                     sp_oidc_result_name(check(k, token(g_key, HDR, cases[i].payload), &c)));
    /* an empty expected nonce refuses everything */
    sp_oidc_expect_t e = {.issuer = ISS, .audience = AUD, .nonce = "", .now_s = NOW};
    const char *t = token(g_key, HDR, claims(NULL));
    cr_assert_eq(sp_oidc_verify(k, t, strlen(t), &e, &c), SP_OIDC_NONCE);
    sp_oidc_jwks_free(k);
}

Test(oidc, email_verified_reported_not_required)
{
    sp_oidc_jwks_t *k = std_jwks();
    sp_oidc_claims_t c;
    const char *p = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\",\"iat\":1799999990,"
                    "\"exp\":1800003600,\"nonce\":\"" NONCE "\",\"email\":\"bob@example.com\","
                    "\"email_verified\":false}";
    cr_assert_eq(check(k, token(g_key, HDR, p), &c), SP_OIDC_OK);
    cr_assert_str_eq(c.email, "bob@example.com");
    cr_assert_not(c.email_verified);
    p = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\",\"iat\":1799999990,"
        "\"exp\":1800003600,\"nonce\":\"" NONCE "\",\"email\":\"bob@example.com\","
        "\"email_verified\":\"true\"}";
    cr_assert_eq(check(k, token(g_key, HDR, p), &c), SP_OIDC_OK);
    cr_assert(c.email_verified);
    p = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\",\"iat\":1799999990,"
        "\"exp\":1800003600,\"nonce\":\"" NONCE "\",\"email_verified\":true}";
    cr_assert_eq(check(k, token(g_key, HDR, p), &c), SP_OIDC_OK);
    cr_assert_str_eq(c.email, "");
    cr_assert_not(c.email_verified, "no email: nothing is verified");
    sp_oidc_jwks_free(k);
}

Test(oidc, jwks_parsing)
{
    sp_oidc_jwks_t *k = NULL;
    cr_assert_eq(sp_oidc_jwks_parse("[]", 2, &k), SP_EPROTO);
    cr_assert_eq(sp_oidc_jwks_parse("{\"keys\":{}}", 11, &k), SP_EPROTO);
    cr_assert_eq(sp_oidc_jwks_parse("{\"keys\":[", 9, &k), SP_EPROTO);
    cr_assert_null(k);
    char *a = jwk(g_key, "good", NULL);
    char *b = jwk(g_other, "enc", ",\"use\":\"enc\"");
    char *c = jwk(g_other, "rs512", ",\"alg\":\"RS512\"");
    char *d = jwk(g_small, "small", NULL);
    char *dup = jwk(g_other, "good", NULL);
    char all[9000];
    snprintf(all, sizeof(all),
             "%s,%s,%s,%s,%s,{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"AA\","
             "\"y\":\"AA\"},{\"kty\":\"RSA\",\"kid\":\"bad\",\"n\":\"!!!\",\"e\":\"AQAB\"},"
             "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},7",
             a, b, c, d, dup);
    k = jwks_of(all);
    cr_assert_eq(sp_oidc_jwks_count(k), 1, "only the one usable signing key");
    cr_assert(sp_oidc_jwks_has(k, "good"));
    cr_assert_not(sp_oidc_jwks_has(k, "small"), "1024-bit keys refused");
    cr_assert_not(sp_oidc_jwks_has(k, "enc"));
    /* the first key of a kid wins; the duplicate's signature does not verify */
    cr_assert_eq(check(k, token(g_other, "{\"alg\":\"RS256\",\"kid\":\"good\"}", claims(NULL)),
                       NULL),
                 SP_OIDC_SIGNATURE);
    cr_assert_eq(check(k, token(g_key, "{\"alg\":\"RS256\",\"kid\":\"good\"}", claims(NULL)),
                       NULL),
                 SP_OIDC_OK);
    sp_oidc_jwks_free(k);
    free(a);
    free(b);
    free(c);
    free(d);
    free(dup);
    /* oversize */
    static char big[SP_OIDC_MAX_JWKS + 2];
    memset(big, ' ', sizeof(big) - 1);
    cr_assert_eq(sp_oidc_jwks_parse(big, sizeof(big) - 1, &k), SP_ETOOBIG);
    /* no keys at all: parsed, but nothing verifies */
    k = jwks_of("");
    cr_assert_eq(sp_oidc_jwks_count(k), 0);
    cr_assert_eq(check(k, token(g_key, HDR, claims(NULL)), NULL), SP_OIDC_UNKNOWN_KEY);
    sp_oidc_jwks_free(k);
}

Test(oidc, malformed_tokens)
{
    sp_oidc_jwks_t *k = std_jwks();
    const char *bad[] = {"", "a", "a.b", "a.b.c.d", "..", "!!.!!.!!", "e30.e30.", ".e30.AAAA"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_neq(check(k, bad[i], NULL), SP_OIDC_OK, "%s", bad[i]);
    /* payload that is not an object */
    cr_assert_eq(check(k, token(g_key, HDR, "[1,2]"), NULL), SP_OIDC_MALFORMED);
    /* oversize */
    static char big[SP_OIDC_MAX_TOKEN + 10];
    memset(big, 'A', sizeof(big) - 1);
    big[10] = '.';
    big[20] = '.';
    cr_assert_eq(check(k, big, NULL), SP_OIDC_MALFORMED);
    /* padding in a segment */
    char t[8192];
    snprintf(t, sizeof(t), "%s", token(g_key, HDR, claims(NULL)));
    char *d = strchr(t, '.');
    char padded[8300];
    snprintf(padded, sizeof(padded), "%.*s=%s", (int)(d - t), t, d);
    cr_assert_neq(check(k, padded, NULL), SP_OIDC_OK);
    /* NUL inside */
    cr_assert_eq(sp_oidc_verify(k, "a\0b.c.d", 7, &(sp_oidc_expect_t){.issuer = ISS,
                                .audience = AUD, .nonce = NONCE, .now_s = NOW}, NULL),
                 SP_OIDC_MALFORMED);
    cr_assert_str_eq(sp_oidc_result_name(SP_OIDC_NONCE), "nonce");
    sp_oidc_jwks_free(k);
}

/* issue 12 finding 4: exp + skew overflowed for exp = INT64_MAX (UBSan abort); times from
 * outside are range-checked first */
Test(oidc, out_of_range_times_refused)
{
    sp_oidc_jwks_t *k = std_jwks();
    sp_oidc_claims_t c;
#define P(times)                                                                                  \
    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"1\"," times ",\"nonce\":\"" NONCE "\"}"
    static const char *cases[] = {
        P("\"iat\":1799999990,\"exp\":9223372036854775807"),
        P("\"iat\":-9223372036854775808,\"exp\":1800003600"),
        P("\"iat\":1799999990,\"exp\":1800003600,\"nbf\":-9223372036854775808"),
        P("\"iat\":1799999990,\"exp\":1800003600,\"nbf\":9223372036854775807"),
        P("\"iat\":1799999990,\"exp\":253402300800"),
    };
#undef P
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(check(k, token(g_key, HDR, cases[i]), &c), SP_OIDC_EXPIRED, "case %zu: %s",
                     i, cases[i]);
    sp_oidc_jwks_free(k);
}
