/*
 * sp_oidc: OpenID Connect id_token verification (Sign in with Google), docs/auth.md.
 *
 * Pure part (unit-tested, fuzzed): a JWKS document parsed into RSA public keys by kid
 * (sp_oidc_jwks_parse), and sp_oidc_verify: an RS256 compact JWS checked against those keys
 * (header exactly alg RS256 with a kid; jku/jwk/x5u/x5c/crit refused), then the claims:
 * iss equal to the expected issuer (or to it without "https://", as Google issues both),
 * aud the client id (a string, or an array holding it with azp equal to it), exp and iat
 * integers within a skew, nbf if present, the flow's nonce (constant-time compare), sub
 * 1..255 printable ASCII. email / email_verified / name are reported, never required:
 * the caller decides what an unverified email may do (never link an account).
 *
 * Key cache (I/O): sp_oidc_keys_t fetches the JWKS URL with sp_curlm, keeps the keys by kid,
 * refetches when a token names an unknown kid or the keys are over an hour old, never more
 * than once a minute, one fetch in flight with the waiting verifications queued (capped).
 * Callbacks run on the loop thread, never synchronously.
 */
#ifndef SP_OIDC_H
#define SP_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SP_OIDC_MAX_TOKEN 8192
#define SP_OIDC_MAX_JWKS (64 * 1024)
#define SP_OIDC_MAX_KEYS 32
#define SP_OIDC_SUB_CAP 256
#define SP_OIDC_EMAIL_CAP 321
#define SP_OIDC_NAME_CAP 256
#define SP_OIDC_SKEW_S 60

typedef struct sp_oidc_jwks_s sp_oidc_jwks_t;

/** Parses {"keys":[{kty:"RSA", kid, n, e, alg?:"RS256", use?:"sig"}, ...]}; keys of another
 *  type, use or alg are skipped, RSA keys under 2048 or over 8192 bits refused. 0 and *out
 *  (possibly with 0 keys), SP_EPROTO (not a JWKS), SP_ETOOBIG (over SP_OIDC_MAX_JWKS). */
int sp_oidc_jwks_parse(const char *json, size_t len, sp_oidc_jwks_t **out);
void sp_oidc_jwks_free(sp_oidc_jwks_t *k);
size_t sp_oidc_jwks_count(const sp_oidc_jwks_t *k);
bool sp_oidc_jwks_has(const sp_oidc_jwks_t *k, const char *kid);

/** The kid of a token's header (no verification). 0, or SP_EPROTO. */
int sp_oidc_peek_kid(const char *jwt, size_t len, char *kid, size_t cap);

typedef struct {
    const char *issuer;   /* required */
    const char *audience; /* the client id; required */
    const char *nonce;    /* required ("" refuses every token) */
    int64_t now_s;
    int64_t skew_s;       /* 0 = SP_OIDC_SKEW_S */
} sp_oidc_expect_t;

typedef struct {
    char sub[SP_OIDC_SUB_CAP];
    char email[SP_OIDC_EMAIL_CAP]; /* "" when absent */
    bool email_verified;           /* true only for email_verified: true (or "true") */
    char name[SP_OIDC_NAME_CAP];   /* "" when absent */
    int64_t exp;
} sp_oidc_claims_t;

/** Why a token was refused (stable strings, safe to log: never token material). */
typedef enum {
    SP_OIDC_OK = 0,
    SP_OIDC_MALFORMED, /* not three base64url segments, bad JSON, oversize */
    SP_OIDC_HEADER,    /* alg not RS256, no kid, forbidden header member */
    SP_OIDC_UNKNOWN_KEY,
    SP_OIDC_SIGNATURE,
    SP_OIDC_ISSUER,
    SP_OIDC_AUDIENCE,
    SP_OIDC_EXPIRED,   /* exp past, iat in the future, nbf in the future */
    SP_OIDC_NONCE,
    SP_OIDC_SUBJECT,   /* sub missing or unusable */
} sp_oidc_result_t;

const char *sp_oidc_result_name(sp_oidc_result_t r);

/** Verifies jwt against keys and e. SP_OIDC_OK fills *out (may be NULL). */
sp_oidc_result_t sp_oidc_verify(const sp_oidc_jwks_t *keys, const char *jwt, size_t len,
                                const sp_oidc_expect_t *e, sp_oidc_claims_t *out);

/* ---- key cache ------------------------------------------------------------------------- */
struct sp_curlm_s; /* net/sp_curlm.h */
typedef struct sp_oidc_keys_s sp_oidc_keys_t;

/** jwks_url is copied; http must outlive the cache. */
sp_oidc_keys_t *sp_oidc_keys_new(uv_loop_t *loop, struct sp_curlm_s *http, const char *jwks_url,
                                 const char *ca_file);
/** Waiting verifications end with SP_ECANCELED (their callbacks run inside this call).
 *  Handles close on the loop; memory goes when they are closed. NULL-safe. */
void sp_oidc_keys_free(sp_oidc_keys_t *c);
/** The least time between two fetches (default 60 s; the test hook lowers it). */
void sp_oidc_keys_set_min_refetch(sp_oidc_keys_t *c, uint64_t ms);

/** err: 0 (then r tells the verdict; claims set only with SP_OIDC_OK), SP_EUPSTREAM (JWKS
 *  unreachable or unusable and no keys to use), SP_ELIMIT (too many waiting), SP_ECANCELED. */
typedef void (*sp_oidc_verify_cb)(int err, sp_oidc_result_t r, const sp_oidc_claims_t *claims,
                                  void *ud);
/** Verifies jwt (copied) with the cached keys, fetching them first when needed. e's strings
 *  are copied. */
void sp_oidc_keys_verify(sp_oidc_keys_t *c, const char *jwt, const sp_oidc_expect_t *e,
                         sp_oidc_verify_cb cb, void *ud);

#endif
