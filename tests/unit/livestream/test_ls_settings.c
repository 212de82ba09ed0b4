/* sp_ls_settings: the disconnect protection accessors other modules read (the relay slate),
 * and the settings-changed hook, on a registry with hand-made managers. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_registry.h"
#include "livestream/sp_livestream_internal.h"
#include "livestream/sp_ls_settings.h"

typedef struct {
    int calls;
    bool last;
} hook_seen_t;

static void on_changed(void *ud, const char *user_id, bool protection)
{
    hook_seen_t *h = ud;
    (void)user_id;
    h->calls++;
    h->last = protection;
}

Test(ls_settings, disconnect_protection_accessors)
{
    struct sp_livestream_s ls;
    memset(&ls, 0, sizeof(ls));
    ls.reg = sp_registry_new();
    cr_assert_not_null(ls.reg);
    struct sp_ls_manager_s off, on, loading;
    memset(&off, 0, sizeof(off));
    memset(&on, 0, sizeof(on));
    memset(&loading, 0, sizeof(loading));
    off.loaded = true;
    off.settings.disconnect_protection = false;
    on.loaded = true;
    on.settings.disconnect_protection = true;
    loading.settings.disconnect_protection = false; /* not loaded yet: the default is told */
    cr_assert_eq(sp_registry_register(ls.reg, SP_REG_USER_STREAM_MANAGER, "u-off", NULL, &off), 0);
    cr_assert_eq(sp_registry_register(ls.reg, SP_REG_USER_STREAM_MANAGER, "u-on", NULL, &on), 0);
    cr_assert_eq(sp_registry_register(ls.reg, SP_REG_USER_STREAM_MANAGER, "u-load", NULL,
                                      &loading), 0);
    cr_assert_eq(sp_ls_manager_disconnect_protection(&off), false);
    cr_assert_eq(sp_ls_manager_disconnect_protection(&on), true);
    cr_assert_eq(sp_livestream_disconnect_protection(&ls, "u-off"), false);
    cr_assert_eq(sp_livestream_disconnect_protection(&ls, "u-on"), true);
    cr_assert_eq(sp_livestream_disconnect_protection(&ls, "u-load"), true, "default on");
    cr_assert_eq(sp_livestream_disconnect_protection(&ls, "nobody"), true, "default on");
    off.stopped = true;
    cr_assert_eq(sp_livestream_disconnect_protection(&ls, "u-off"), true, "stopped: default");

    hook_seen_t seen = { 0 };
    sp_livestream_on_settings_changed(&ls, on_changed, &seen);
    cr_assert_eq((void *)ls.settings_changed, (void *)on_changed);
    cr_assert_eq(ls.settings_changed_ud, &seen);
    ls.settings_changed(ls.settings_changed_ud, "u-on", false);
    cr_assert_eq(seen.calls, 1);
    cr_assert_eq(seen.last, false);
    sp_livestream_on_settings_changed(&ls, NULL, NULL);
    cr_assert_null(ls.settings_changed);
    sp_registry_free(ls.reg);
}
