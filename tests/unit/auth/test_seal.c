/* sp_seal: round trip, associated data binds user and purpose, tamper, key file 0600. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_err.h"
#include "core/sp_alloc.h"
#include "auth/sp_seal.h"

static char dir[64];
static sp_config_t cfg;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sp-seal-XXXXXX");
    cr_assert(mkdtemp(dir));
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = SP_ENV_TEST;
    cfg.data_dir = dir;
}

static void teardown(void)
{
    char cmd[128];
    sp_seal_shutdown();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect(system(cmd) == 0);
}

TestSuite(seal, .init = setup, .fini = teardown);

Test(seal, round_trip_and_key_file_0600)
{
    char err[256];
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == 0, "%s", err);
    char path[128];
    snprintf(path, sizeof(path), "%s/secrets.key", dir);
    struct stat st;
    cr_assert(stat(path, &st) == 0);
    cr_assert((st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);

    const char *secret = "live_1234567890_streamkey";
    char *s = sp_seal("user-a", "stream_key", secret, strlen(secret));
    cr_assert(s);
    cr_assert(strstr(s, "streamkey") == NULL);
    sp_buf_t out;
    sp_buf_init(&out, 4096);
    cr_assert(sp_unseal("user-a", "stream_key", s, &out) == 0);
    cr_assert(out.len == strlen(secret) && memcmp(out.p, secret, out.len) == 0);
    sp_buf_cleanup(&out);

    /* two seals of the same value differ (random nonce) */
    char *s2 = sp_seal("user-a", "stream_key", secret, strlen(secret));
    cr_assert(strcmp(s, s2) != 0);
    sp_free(s2);

    /* the key is reused on the next start: old values still open */
    sp_seal_shutdown();
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == 0, "%s", err);
    sp_buf_init(&out, 4096);
    cr_assert(sp_unseal("user-a", "stream_key", s, &out) == 0);
    sp_buf_cleanup(&out);
    sp_free(s);
}

Test(seal, other_user_or_purpose_fails)
{
    char err[256];
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == 0, "%s", err);
    char *s = sp_seal("user-a", "refresh_token", "tok", 3);
    sp_buf_t out;
    sp_buf_init(&out, 4096);
    cr_assert(sp_unseal("user-b", "refresh_token", s, &out) == SP_ECRYPTO);
    cr_assert(sp_unseal("user-a", "access_token", s, &out) == SP_ECRYPTO);
    /* "user-a|x" vs "user-a|" + "x": the separator keeps these apart too */
    cr_assert(sp_unseal("user-a|refresh", "_token", s, &out) == SP_ECRYPTO);
    cr_assert(out.len == 0);
    sp_buf_cleanup(&out);
    sp_free(s);
}

Test(seal, tamper_and_garbage_fail)
{
    char err[256];
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == 0, "%s", err);
    char *s = sp_seal("u", "p", "hello world", 11);
    size_t n = strlen(s);
    sp_buf_t out;
    sp_buf_init(&out, 4096);
    for (size_t i = 0; i < n; i += 3) {
        char *t = sp_strdup(s);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        cr_assert(sp_unseal("u", "p", t, &out) == SP_ECRYPTO, "flip at %zu opened", i);
        sp_free(t);
    }
    cr_assert(sp_unseal("u", "p", "", &out) == SP_ECRYPTO);
    cr_assert(sp_unseal("u", "p", "!!!notbase64", &out) == SP_ECRYPTO);
    cr_assert(sp_unseal("u", "p", "AAAA", &out) == SP_ECRYPTO);
    s[n - 6] = '\0'; /* truncated */
    cr_assert(sp_unseal("u", "p", s, &out) == SP_ECRYPTO);
    cr_assert(out.len == 0);
    sp_buf_cleanup(&out);
    sp_free(s);
}

Test(seal, env_key_prod_rules_and_wrong_key)
{
    char err[256];
    cfg.secrets_key = "c2hvcnQ="; /* "short" */
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == SP_ECONFIG);
    cr_assert(strstr(err, "SECRETS_KEY") != NULL);
    cfg.secrets_key = NULL;
    cfg.env = SP_ENV_PROD;
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == SP_ECONFIG);
    cr_assert(strstr(err, "required in prod") != NULL, "%s", err);
    cr_assert(sp_seal("u", "p", "x", 1) == NULL, "no key: nothing sealed");
    cfg.secrets_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == 0, "%s", err);
    char *s = sp_seal("u", "p", "x", 1);
    cfg.secrets_key = "HwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    cr_assert(sp_seal_init(&cfg, err, sizeof(err)) == 0, "%s", err);
    sp_buf_t out;
    sp_buf_init(&out, 64);
    cr_assert(sp_unseal("u", "p", s, &out) == SP_ECRYPTO, "wrong key must not open");
    sp_buf_cleanup(&out);
    sp_free(s);
}
