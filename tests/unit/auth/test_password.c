/* sp_password: argon2id with at least OWASP parameters; policy; async path on a loop. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "auth/sp_password.h"

static void setup(void)
{
    cr_assert_eq(sp_password_init(1, 1024, 2), 0); /* clamped up to 19 MiB / t=2 */
}

Test(password, hash_verify_and_params, .init = setup)
{
    char h[SP_PASSWORD_HASH_MAX];
    cr_assert_eq(sp_password_hash_sync("correct horse", 13, h), 0);
    cr_assert(strncmp(h, "$argon2id$v=19$", 15) == 0, "%s", h);
    unsigned m = 0, t = 0, p = 0;
    cr_assert_eq(sscanf(h, "$argon2id$v=19$m=%u,t=%u,p=%u$", &m, &t, &p), 3);
    cr_assert_geq(m, 19456u);
    cr_assert_geq(t, 2u);
    cr_assert_eq(p, 1u);
    cr_assert_eq(sp_password_verify_sync(h, "correct horse", 13), 0);
    cr_assert_eq(sp_password_verify_sync(h, "correct horsf", 13), SP_EAUTH);
    cr_assert_eq(sp_password_verify_sync(h, "correct hors", 12), SP_EAUTH);
    /* the dummy never matches */
    cr_assert_eq(sp_password_verify_sync(NULL, "correct horse", 13), SP_EAUTH);
    cr_assert_eq(sp_password_verify_sync("garbage", "correct horse", 13), SP_EAUTH);
    /* two hashes of one password differ (salted) */
    char h2[SP_PASSWORD_HASH_MAX];
    cr_assert_eq(sp_password_hash_sync("correct horse", 13, h2), 0);
    cr_assert_str_neq(h, h2);
}

Test(password, policy)
{
    cr_assert_eq(sp_password_check_policy("1234567", 7), SP_EINVAL);
    cr_assert_eq(sp_password_check_policy("12345678", 8), 0);
    /* 8 code points, 16 bytes */
    cr_assert_eq(sp_password_check_policy("ééééééé", 14), SP_EINVAL);
    cr_assert_eq(sp_password_check_policy("éééééééé", 16), 0);
    cr_assert_eq(sp_password_check_policy("abc\xff" "defgh", 9), SP_EUTF8);
    cr_assert_eq(sp_password_check_policy("abcd\0efgh", 9), SP_EUTF8);
    static char big[1100];
    memset(big, 'a', sizeof(big));
    cr_assert_eq(sp_password_check_policy(big, 1024), 0);
    cr_assert_eq(sp_password_check_policy(big, 1025), SP_ETOOBIG);
}

static int g_verify_rc = 99, g_hash_rc = 99;
static char g_hash[SP_PASSWORD_HASH_MAX];

static void on_hash(int err, const char *hash, void *ud)
{
    (void)ud;
    g_hash_rc = err;
    if (hash)
        snprintf(g_hash, sizeof(g_hash), "%s", hash);
}

static int g_verify_count;

static void on_verify(int err, void *ud)
{
    (void)ud;
    g_verify_count++;
    g_verify_rc = err;
}

Test(password, async_on_loop_and_inflight_cap, .init = setup)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    cr_assert_eq(sp_password_hash(&loop, "hunter2hunter2", 14, on_hash, NULL), 0);
    cr_assert_eq(sp_password_inflight(), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g_hash_rc, 0);
    cr_assert_eq(sp_password_inflight(), 0);
    cr_assert_eq(sp_password_verify(&loop, g_hash, "hunter2hunter2", 14, on_verify, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g_verify_rc, 0);
    cr_assert_eq(sp_password_verify(&loop, NULL, "hunter2hunter2", 14, on_verify, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g_verify_rc, SP_EAUTH);
    /* 2 running + SP_PASSWORD_MAX_WAITING queued; one more is refused */
    g_verify_count = 0;
    for (int i = 0; i < 2 + SP_PASSWORD_MAX_WAITING; i++)
        cr_assert_eq(sp_password_verify(&loop, g_hash, "x", 1, on_verify, NULL), 0);
    cr_assert_eq(sp_password_inflight(), 2 + SP_PASSWORD_MAX_WAITING);
    cr_assert_eq(sp_password_verify(&loop, g_hash, "x", 1, on_verify, NULL), SP_EBUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g_verify_rc, SP_EAUTH);
    cr_assert_eq(g_verify_count, 2 + SP_PASSWORD_MAX_WAITING);
    cr_assert_eq(sp_password_inflight(), 0);
    cr_assert_eq(sp_password_hash(&loop, "x", 2000, on_hash, NULL), SP_ETOOBIG);
    uv_loop_close(&loop);
}

Test(password, needs_rehash_after_parameter_change)
{
    char h[SP_PASSWORD_HASH_MAX];
    cr_assert_eq(sp_password_init(3, 20u * 1024 * 1024, 2), 0);
    cr_assert_eq(sp_password_hash_sync("a long password", 15, h), 0);
    cr_assert_not(sp_password_needs_rehash(h));
    cr_assert_eq(sp_password_init(2, 19u * 1024 * 1024, 2), 0);
    cr_assert(sp_password_needs_rehash(h));
    cr_assert_eq(sp_password_verify_sync(h, "a long password", 15), 0, "old hashes still verify");
    cr_assert_not(sp_password_needs_rehash("garbage"));
}
