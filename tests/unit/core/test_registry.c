#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_registry.h"

Test(registry, keys_follow_the_seed)
{
    char k[128];
    cr_assert_eq(sp_registry_key(k, sizeof(k), SP_REG_USER_STREAM_MANAGER, "u1", NULL), 22);
    cr_assert_str_eq(k, "user_stream_manager:u1");
    sp_registry_key(k, sizeof(k), SP_REG_PLATFORM_MONITOR, "u1", "twitch");
    cr_assert_str_eq(k, "platform_monitor:u1:twitch");
    cr_assert_eq(sp_registry_key(k, sizeof(k), SP_REG_PLATFORM_MONITOR, "u1", NULL), SP_EINVAL);
    cr_assert_eq(sp_registry_key(k, sizeof(k), SP_REG_STREAM_STATE, "u1", "x"), SP_EINVAL);
    cr_assert_eq(sp_registry_key(k, sizeof(k), SP_REG_STREAM_STATE, "", NULL), SP_EINVAL);
    cr_assert_eq(sp_registry_key(k, sizeof(k), SP_REG_STREAM_STATE, "a:b", NULL), SP_EINVAL);
    cr_assert_eq(sp_registry_key(k, 8, SP_REG_STREAM_STATE, "u1", NULL), SP_ETOOBIG);
}

Test(registry, register_lookup_unregister)
{
    sp_registry_t *r = sp_registry_new();
    int a = 1, b = 2, c = 3;
    cr_assert_eq(sp_registry_register(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL, &a), 0);
    cr_assert_eq(sp_registry_register(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL, &b), SP_EEXISTS);
    cr_assert_eq(sp_registry_register(r, SP_REG_STREAM_STATE, "u1", NULL, &b), 0);
    cr_assert_eq(sp_registry_register(r, SP_REG_PLATFORM_MONITOR, "u1", "twitch", &c), 0);
    cr_assert_eq(sp_registry_lookup(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL), &a);
    cr_assert_eq(sp_registry_lookup(r, SP_REG_STREAM_STATE, "u1", NULL), &b);
    cr_assert_eq(sp_registry_lookup(r, SP_REG_PLATFORM_MONITOR, "u1", "twitch"), &c);
    cr_assert_null(sp_registry_lookup(r, SP_REG_PLATFORM_MONITOR, "u1", "youtube"));
    cr_assert_null(sp_registry_lookup(r, SP_REG_USER_STREAM_MANAGER, "u2", NULL));
    cr_assert_eq(sp_registry_count(r, SP_REG_USER_STREAM_MANAGER), 1);
    cr_assert_eq(sp_registry_total(r), 3);
    /* unregister with a stale value does nothing */
    cr_assert_not(sp_registry_unregister(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL, &b));
    cr_assert(sp_registry_unregister(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL, &a));
    cr_assert_null(sp_registry_lookup(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL));
    cr_assert_eq(sp_registry_count(r, SP_REG_USER_STREAM_MANAGER), 0);
    cr_assert_not(sp_registry_unregister(r, SP_REG_USER_STREAM_MANAGER, "u1", NULL, NULL));
    sp_registry_free(r);
}

Test(registry, iterate_one_kind_and_scale)
{
    sp_registry_t *r = sp_registry_new();
    static int vals[2000];
    char id[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "user-%d", i);
        cr_assert_eq(sp_registry_register(r, SP_REG_USER_STREAM_MANAGER, id, NULL, &vals[i]), 0);
        cr_assert_eq(sp_registry_register(r, SP_REG_PLATFORM_MONITOR, id, "kick", &vals[i]), 0);
    }
    size_t it = 0, n = 0, ul;
    const char *u;
    void *v;
    while (sp_registry_next(r, SP_REG_PLATFORM_MONITOR, &it, &u, &ul, &v)) {
        cr_assert(ul > 5 && memcmp(u, "user-", 5) == 0);
        cr_assert(u[ul] == ':');
        n++;
    }
    cr_assert_eq(n, 2000);
    cr_assert_eq(sp_registry_count(r, SP_REG_PLATFORM_MONITOR), 2000);
    cr_assert_eq(sp_registry_lookup(r, SP_REG_USER_STREAM_MANAGER, "user-1234", NULL), &vals[1234]);
    sp_registry_free(r);
}
