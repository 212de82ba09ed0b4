/*
 * sp_seal: secrets at rest with XChaCha20-Poly1305, associated data
 * "user_id|purpose". See sp_seal.h.
 */
#include "auth/sp_seal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"

#define KEYLEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCELEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAGLEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_MAX (16u * 1024 * 1024)

static unsigned char g_key[KEYLEN];
static atomic_bool g_ready;

static int decode_key(const char *b64, unsigned char *key)
{
    size_t n = 0;
    unsigned char tmp[64];
    size_t len = strlen(b64);
    while (len && (b64[len - 1] == '\n' || b64[len - 1] == '\r' || b64[len - 1] == ' '))
        len--;
    if (sodium_base642bin(tmp, sizeof(tmp), b64, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 &&
        sodium_base642bin(tmp, sizeof(tmp), b64, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 &&
        sodium_base642bin(tmp, sizeof(tmp), b64, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
        return -1;
    if (n != KEYLEN) {
        sodium_memzero(tmp, sizeof(tmp));
        return -1;
    }
    memcpy(key, tmp, KEYLEN);
    sodium_memzero(tmp, sizeof(tmp));
    return 0;
}

static void register_secret(const char *b64)
{
    sp_log_add_secret(b64);
}

static int load_or_create(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    char b64[sodium_base64_ENCODED_LEN(KEYLEN, sodium_base64_VARIANT_ORIGINAL)];
    snprintf(path, sizeof(path), "%s/secrets.key", dir && *dir ? dir : ".");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        char buf[128];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) {
            snprintf(err, errlen, "SECRETS_KEY: cannot read %s", path);
            return SP_EIO;
        }
        buf[n] = '\0';
        if (decode_key(buf, g_key) != 0) {
            sodium_memzero(buf, sizeof(buf));
            snprintf(err, errlen, "SECRETS_KEY: %s does not hold 32 bytes of base64", path);
            return SP_ECONFIG;
        }
        sodium_memzero(buf, sizeof(buf));
        sodium_bin2base64(b64, sizeof(b64), g_key, KEYLEN, sodium_base64_VARIANT_ORIGINAL);
        register_secret(b64);
        sodium_memzero(b64, sizeof(b64));
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "SECRETS_KEY: cannot open %s", path);
        return SP_EIO;
    }
    mkdir(dir && *dir ? dir : ".", 0700);
    randombytes_buf(g_key, KEYLEN);
    sodium_bin2base64(b64, sizeof(b64), g_key, KEYLEN, sodium_base64_VARIANT_ORIGINAL);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        sodium_memzero(b64, sizeof(b64));
        snprintf(err, errlen, "SECRETS_KEY: cannot create %s", path);
        return SP_EIO;
    }
    fchmod(fd, 0600);
    size_t len = strlen(b64);
    bool ok = write(fd, b64, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path);
        sodium_memzero(b64, sizeof(b64));
        snprintf(err, errlen, "SECRETS_KEY: cannot write %s", path);
        return SP_EIO;
    }
    register_secret(b64);
    sodium_memzero(b64, sizeof(b64));
    sp_info("seal", "generated a secrets key", "path=%s", path);
    return 0;
}

int sp_seal_init(const sp_config_t *cfg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium initialisation failed");
        return SP_ECRYPTO;
    }
    atomic_store(&g_ready, false);
    if (cfg->secrets_key && *cfg->secrets_key) {
        if (decode_key(cfg->secrets_key, g_key) != 0) {
            snprintf(err, errlen, "SECRETS_KEY: expected 32 bytes encoded as base64");
            return SP_ECONFIG;
        }
        register_secret(cfg->secrets_key);
    } else if (cfg->env == SP_ENV_PROD) {
        snprintf(err, errlen,
                 "SECRETS_KEY: required in prod (32 bytes base64, e.g. `openssl rand -base64 32`)");
        return SP_ECONFIG;
    } else {
        int rc = load_or_create(cfg->data_dir, err, errlen);
        if (rc != 0)
            return rc;
    }
    atomic_store(&g_ready, true);
    return 0;
}

void sp_seal_shutdown(void)
{
    atomic_store(&g_ready, false);
    sodium_memzero(g_key, sizeof(g_key));
}

static char *make_ad(const char *user_id, const char *purpose, size_t *len)
{
    size_t a = strlen(user_id), b = strlen(purpose);
    char *ad = sp_malloc(a + b + 2);
    memcpy(ad, user_id, a);
    ad[a] = '|';
    memcpy(ad + a + 1, purpose, b + 1);
    *len = a + b + 1;
    return ad;
}

char *sp_seal(const char *user_id, const char *purpose, const void *plain, size_t len)
{
    if (!atomic_load(&g_ready) || !user_id || !purpose || (!plain && len) || len > SEAL_MAX)
        return NULL;
    size_t adlen;
    char *ad = make_ad(user_id, purpose, &adlen);
    size_t clen = NONCELEN + len + TAGLEN;
    unsigned char *buf = sp_malloc(clen);
    randombytes_buf(buf, NONCELEN);
    unsigned long long outlen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(buf + NONCELEN, &outlen, plain, len,
                                               (const unsigned char *)ad, adlen, NULL, buf,
                                               g_key);
    size_t b64len = sodium_base64_ENCODED_LEN(clen, sodium_base64_VARIANT_ORIGINAL);
    char *out = sp_malloc(b64len);
    sodium_bin2base64(out, b64len, buf, clen, sodium_base64_VARIANT_ORIGINAL);
    sp_free(buf);
    sp_free(ad);
    return out;
}

int sp_unseal(const char *user_id, const char *purpose, const char *sealed, sp_buf_t *out)
{
    if (!atomic_load(&g_ready) || !user_id || !purpose || !sealed)
        return SP_ECRYPTO;
    size_t slen = strlen(sealed);
    if (slen > SEAL_MAX * 2)
        return SP_ECRYPTO;
    size_t cap = slen / 4 * 3 + 3, n = 0;
    unsigned char *bin = sp_malloc(cap);
    int rc = SP_ECRYPTO;
    unsigned char *plain = NULL;
    char *ad = NULL;
    if (sodium_base642bin(bin, cap, sealed, slen, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n < NONCELEN + TAGLEN)
        goto out;
    size_t adlen;
    ad = make_ad(user_id, purpose, &adlen);
    plain = sp_malloc(n - NONCELEN - TAGLEN + 1);
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, bin + NONCELEN,
                                                   n - NONCELEN, (const unsigned char *)ad,
                                                   adlen, bin, g_key) != 0)
        goto out;
    rc = sp_buf_append(out, plain, (size_t)plen);
    sodium_memzero(plain, (size_t)plen);
out:
    sp_free(plain);
    sp_free(ad);
    sp_free(bin);
    return rc;
}
