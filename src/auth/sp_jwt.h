/*
 * sp_jwt: session tokens, JWT HS256 (libjwt 1.10) with a pinned algorithm.
 *
 * Verification is a pure function of (key, token, now): it always passes the
 * key to libjwt (libjwt accepts unsigned tokens when the key is NULL), pins
 * alg = HS256 (rejecting none, HS384/512, RS*, ES*), rejects kid/jku/x5u/crit
 * headers, and checks claim types strictly: exp and iat integers within
 * [0, SP_TIME_MAX_S] (exp in the future, iat not in the future beyond a small
 * leeway), nbf the same when present (not in the future), sub and sid strings
 * of sane length, typ the string "session" when present. A claim of another
 * type (an integer typ, a string nbf) is a forgery, never an absent claim.
 * Every failure is SP_EAUTH, so callers answer one uniform 401.
 *
 * Key handling: TOKEN_SIGNING_SECRET (>= 32 bytes) is required in prod; in dev
 * and test, when unset, 32 random bytes are generated once into
 * DATA_DIR/token_signing.key (mode 0600) and reused on the next start.
 */
#ifndef SP_JWT_H
#define SP_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/sp_config.h"

#define SP_JWT_MIN_KEY 32
#define SP_JWT_MAX_TOKEN 4096  /* longer tokens are rejected before parsing */
#define SP_JWT_ID_MAX 64       /* sub / sid buffers (uuids are 36) */
#define SP_JWT_LEEWAY_S 60     /* iat clock skew */
#define SP_JWT_KEY_FILE "token_signing.key"

typedef struct {
    char sub[SP_JWT_ID_MAX];
    char sid[SP_JWT_ID_MAX];
    int64_t iat; /* seconds */
    int64_t exp; /* seconds */
} sp_jwt_claims_t;

/** Signs {sub, sid, iat, exp, typ:"session"} with HS256. *out is sp_malloc'd. */
int sp_jwt_sign(const uint8_t *key, size_t keylen, const char *sub, const char *sid, int64_t iat,
                int64_t exp, char **out);

/** Pure verification. 0 and *out filled, or SP_EAUTH (also for a NULL/short key). */
int sp_jwt_verify(const uint8_t *key, size_t keylen, const char *token, size_t toklen,
                  int64_t now_s, sp_jwt_claims_t *out);

/**
 * Resolves the signing key (blocking file I/O; call at startup). On success
 * *key is sp_malloc'd (*keylen >= 32). SP_ECONFIG with a message in err when
 * the secret is short, or missing in prod; SP_EIO when the key file is unusable.
 */
int sp_jwt_load_key(const sp_config_t *cfg, uint8_t **key, size_t *keylen, char *err,
                    size_t errlen);

#endif
