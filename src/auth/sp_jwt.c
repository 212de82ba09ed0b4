/* sp_jwt: HS256 session tokens with a pinned algorithm. See sp_jwt.h. */
#include "auth/sp_jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_time.h"

int sp_jwt_sign(const uint8_t *key, size_t keylen, const char *sub, const char *sid, int64_t iat,
                int64_t exp, char **out)
{
    jwt_t *j = NULL;
    char *s = NULL;
    int rc = SP_ECRYPTO;
    *out = NULL;
    if (!key || keylen < SP_JWT_MIN_KEY || keylen > INT32_MAX || !sub || !sid)
        return SP_EINVAL;
    if (jwt_new(&j) != 0)
        return SP_ENOMEM;
    if (jwt_add_grant(j, "sub", sub) || jwt_add_grant(j, "sid", sid) ||
        jwt_add_grant_int(j, "iat", (long)iat) || jwt_add_grant_int(j, "exp", (long)exp) ||
        jwt_add_grant(j, "typ", "session"))
        goto out;
    if (jwt_set_alg(j, JWT_ALG_HS256, key, (int)keylen) != 0)
        goto out;
    s = jwt_encode_str(j);
    if (!s)
        goto out;
    *out = sp_strdup(s);
    free(s);
    rc = 0;
out:
    jwt_free(j);
    return rc;
}

/* The protected header, decoded by hand: libjwt 1.10 keeps unknown headers but
 * we want a strict allowlist ({alg, typ} only) before trusting anything. */
static int check_header(const char *token, size_t seglen)
{
    unsigned char raw[512];
    size_t rawlen = 0;
    if (seglen == 0 || seglen > 680)
        return SP_EAUTH;
    if (sodium_base642bin(raw, sizeof(raw) - 1, token, seglen, NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return SP_EAUTH;
    raw[rawlen] = '\0';
    json_error_t jerr;
    json_t *h = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!h || !json_is_object(h)) {
        json_decref(h);
        return SP_EAUTH;
    }
    int rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        if (strcmp(k, "alg") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "HS256") != 0)
                rc = SP_EAUTH;
        } else if (strcmp(k, "typ") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "JWT") != 0)
                rc = SP_EAUTH;
        } else {
            rc = SP_EAUTH; /* kid, jku, x5u, crit, ...: not ours */
        }
    }
    if (!json_object_get(h, "alg"))
        rc = SP_EAUTH;
    json_decref(h);
    return rc;
}

/* A time claim: an integer within [0, SP_TIME_MAX_S] (so no arithmetic on it can overflow). */
static bool claim_time(json_t *pl, const char *name, int64_t *out)
{
    json_t *v = json_object_get(pl, name);
    if (!json_is_integer(v))
        return false;
    json_int_t t = json_integer_value(v);
    if (t < 0 || t > SP_TIME_MAX_S)
        return false;
    *out = (int64_t)t;
    return true;
}

static bool claim_id(json_t *pl, const char *name, char *out, size_t cap)
{
    json_t *v = json_object_get(pl, name);
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= cap || strlen(s) != n || !sp_id_ok(s, n))
        return false;
    memcpy(out, s, n + 1);
    return true;
}

/* Claim types are strict: exp, iat integers; nbf an integer when present; sub, sid strings;
 * typ, when present, the string "session". A claim of another type is a forgery. */
static int check_claims(jwt_t *j, int64_t now_s, sp_jwt_claims_t *c)
{
    char *js = jwt_get_grants_json(j, NULL);
    if (!js)
        return SP_EAUTH;
    json_error_t jerr;
    json_t *pl = json_loads(js, JSON_REJECT_DUPLICATES, &jerr);
    free(js);
    int rc = SP_EAUTH;
    int64_t nbf = 0;
    json_t *typ = json_object_get(pl, "typ");
    if (!json_is_object(pl) || !claim_time(pl, "exp", &c->exp) ||
        !claim_time(pl, "iat", &c->iat))
        goto out;
    if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "session") != 0))
        goto out;
    if (json_object_get(pl, "nbf") && !claim_time(pl, "nbf", &nbf))
        goto out;
    if (c->exp <= now_s || c->iat > now_s + SP_JWT_LEEWAY_S || c->iat > c->exp ||
        nbf > now_s + SP_JWT_LEEWAY_S)
        goto out;
    if (!claim_id(pl, "sub", c->sub, sizeof(c->sub)) ||
        !claim_id(pl, "sid", c->sid, sizeof(c->sid)))
        goto out;
    rc = 0;
out:
    json_decref(pl);
    return rc;
}

int sp_jwt_verify(const uint8_t *key, size_t keylen, const char *token, size_t toklen,
                  int64_t now_s, sp_jwt_claims_t *out)
{
    char buf[SP_JWT_MAX_TOKEN + 1];
    jwt_t *j = NULL;
    int rc = SP_EAUTH;
    sp_jwt_claims_t c;
    memset(&c, 0, sizeof(c));
    if (!key || keylen < SP_JWT_MIN_KEY || keylen > INT32_MAX || !token)
        return SP_EAUTH;
    if (toklen == 0 || toklen > SP_JWT_MAX_TOKEN)
        return SP_EAUTH;
    /* Exactly three base64url segments, nothing else (no NUL, no padding). */
    size_t dots = 0, first_dot = 0;
    for (size_t i = 0; i < toklen; i++) {
        char ch = token[i];
        if (ch == '.') {
            if (dots++ == 0)
                first_dot = i;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_')) {
            return SP_EAUTH;
        }
    }
    if (dots != 2 || token[toklen - 1] == '.')
        return SP_EAUTH; /* also rejects an empty signature (alg none) */
    if (check_header(token, first_dot) != 0)
        return SP_EAUTH;
    memcpy(buf, token, toklen);
    buf[toklen] = '\0';
    /* Never NULL: with a NULL key libjwt skips the signature check. */
    if (jwt_decode(&j, buf, key, (int)keylen) != 0 || !j)
        goto out;
    if (jwt_get_alg(j) != JWT_ALG_HS256)
        goto out;
    if (check_claims(j, now_s, &c) != 0)
        goto out;
    if (out)
        *out = c;
    rc = 0;
out:
    jwt_free(j);
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

/* ---- key loading -------------------------------------------------------------------- */

static int read_key_file(const char *path, uint8_t **key, size_t *keylen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    uint8_t *k = NULL;
    int rc = SP_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    if (st.st_size < SP_JWT_MIN_KEY || st.st_size > 4096) {
        snprintf(err, errlen, "%s: expected at least %d bytes, found %lld", path, SP_JWT_MIN_KEY,
                 (long long)st.st_size);
        rc = SP_ECONFIG;
        goto out;
    }
    if (st.st_mode & 077)
        (void)fchmod(fd, 0600);
    k = sp_malloc((size_t)st.st_size);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, k + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        got += (size_t)n;
    }
    *key = k;
    *keylen = got;
    k = NULL;
    rc = 0;
out:
    if (k) {
        sodium_memzero(k, (size_t)st.st_size);
        sp_free(k);
    }
    close(fd);
    if (rc == SP_EIO && err[0] == '\0')
        snprintf(err, errlen, "%s: cannot read the token signing key", path);
    return rc;
}

static int write_key_file(const char *path, char *err, size_t errlen)
{
    uint8_t k[SP_JWT_MIN_KEY];
    randombytes_buf(k, sizeof(k));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        sodium_memzero(k, sizeof(k));
        if (e == EEXIST)
            return 0; /* somebody else made it; read theirs */
        snprintf(err, errlen, "%s: cannot create the token signing key (errno %d)", path, e);
        return SP_EIO;
    }
    size_t put = 0;
    int rc = 0;
    while (put < sizeof(k)) {
        ssize_t n = write(fd, k + put, sizeof(k) - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = SP_EIO;
            break;
        }
        put += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = SP_EIO;
    close(fd);
    sodium_memzero(k, sizeof(k));
    if (rc) {
        unlink(path);
        snprintf(err, errlen, "%s: cannot write the token signing key", path);
    }
    return rc;
}

int sp_jwt_load_key(const sp_config_t *cfg, uint8_t **key, size_t *keylen, char *err,
                    size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    *key = NULL;
    *keylen = 0;
    if (sodium_init() < 0)
        return SP_ECRYPTO;
    const char *secret = cfg->token_signing_secret;
    if (secret && secret[0]) {
        size_t n = strlen(secret);
        if (n < SP_JWT_MIN_KEY) {
            snprintf(err, errlen,
                     "TOKEN_SIGNING_SECRET is too short (%zu bytes); it needs at least %d "
                     "random bytes",
                     n, SP_JWT_MIN_KEY);
            return SP_ECONFIG;
        }
        *key = sp_malloc(n);
        memcpy(*key, secret, n);
        *keylen = n;
        return 0;
    }
    if (cfg->env == SP_ENV_PROD) {
        snprintf(err, errlen, "TOKEN_SIGNING_SECRET is required in prod (at least %d random bytes)",
                 SP_JWT_MIN_KEY);
        return SP_ECONFIG;
    }
    if (!cfg->data_dir || !cfg->data_dir[0]) {
        snprintf(err, errlen, "DATA_DIR: needed to keep the generated token signing key");
        return SP_ECONFIG;
    }
    char path[4096];
    int pn = snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, SP_JWT_KEY_FILE);
    if (pn < 0 || (size_t)pn >= sizeof(path)) {
        snprintf(err, errlen, "DATA_DIR: path too long");
        return SP_ECONFIG;
    }
    int rc = read_key_file(path, key, keylen, err, errlen);
    if (rc != -ENOENT)
        return rc;
    rc = write_key_file(path, err, errlen);
    if (rc)
        return rc;
    rc = read_key_file(path, key, keylen, err, errlen);
    if (rc == -ENOENT) {
        snprintf(err, errlen, "%s: vanished after creation", path);
        return SP_EIO;
    }
    return rc;
}
