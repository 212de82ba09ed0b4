/* sp_ls_settings: the disconnect protection accessors other modules read (the relay slate),
 * and the settings-changed hook, on a registry with hand-made managers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
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

/* sp_ls_protection_sync: the built-in relay's input follows the setting through the media
 * vtable's set_input_protection (relay only: a vtable without it, like Cloudflare's, gets
 * nothing). The fake records the calls; the test answers them as the loop would. */
typedef struct {
    int calls;
    char uid[64];
    bool on;
    sp_ls_done_cb cb;
    void *ud;
    int rc; /* synchronous answer */
} prot_fake_t;

static prot_fake_t pf;

static int fake_set_protection(void *ctx, const char *input_uid, bool on, sp_ls_done_cb cb,
                               void *ud)
{
    (void)ctx;
    if (pf.rc != 0) return pf.rc;
    pf.calls++;
    snprintf(pf.uid, sizeof(pf.uid), "%s", input_uid);
    pf.on = on;
    pf.cb = cb;
    pf.ud = ud;
    return 0;
}

static void answer(int err)
{
    sp_ls_done_cb cb = pf.cb;
    void *ud = pf.ud;
    pf.cb = NULL;
    cr_assert_not_null(cb, "a call is pending");
    cb(err, err ? "boom" : "", ud);
}

Test(ls_settings, protection_sync_to_relay_input)
{
    memset(&pf, 0, sizeof(pf));
    struct sp_livestream_s ls;
    memset(&ls, 0, sizeof(ls));
    sp_ls_media_ops_t relay_ops = { .provider = "cloudflare",
                                    .set_input_protection = fake_set_protection };
    sp_ls_media_ops_t cf_ops = { .provider = "cloudflare" };
    ls.media.ops = &relay_ops;
    ls.has_media = true;
    struct sp_ls_manager_s m;
    memset(&m, 0, sizeof(m));
    m.ls = &ls;
    m.refs = 1;
    char user[] = "u1", uid[] = "abc123";
    m.user_id = user;
    m.loaded = true;
    m.settings.disconnect_protection = true;

    sp_ls_protection_sync(&m, false);
    cr_assert_eq(pf.calls, 0, "no input yet: nothing to tell");
    m.input_uid = uid;
    sp_ls_protection_sync(&m, true);
    cr_assert_eq(pf.calls, 0, "only_off with the setting on (the relay's default): nothing");
    sp_ls_protection_sync(&m, false);
    cr_assert_eq(pf.calls, 1);
    cr_assert_str_eq(pf.uid, "abc123");
    cr_assert_eq(pf.on, true);
    cr_assert_eq(m.refs, 2, "the manager is held while the call runs");
    answer(0);
    cr_assert_eq(m.refs, 1);
    cr_assert_eq(pf.calls, 1, "the relay has the current value: no resend");

    m.settings.disconnect_protection = false;
    sp_ls_protection_sync(&m, true);
    cr_assert_eq(pf.calls, 2);
    cr_assert_eq(pf.on, false);
    /* the user turned it on again while the PUT ran: the answer brings the current value */
    m.settings.disconnect_protection = true;
    answer(0);
    cr_assert_eq(pf.calls, 3, "resent");
    cr_assert_eq(pf.on, true);
    answer(0);
    cr_assert_eq(pf.calls, 3);

    /* a failure is only logged (the stream is never held up), and never resent at once */
    m.settings.disconnect_protection = false;
    sp_ls_protection_sync(&m, false);
    cr_assert_eq(pf.calls, 4);
    m.settings.disconnect_protection = true;
    answer(SP_EUNAVAIL);
    cr_assert_eq(pf.calls, 4);
    cr_assert_eq(m.refs, 1);
    /* refused synchronously: released at once */
    pf.rc = SP_ERATELIMIT;
    sp_ls_protection_sync(&m, false);
    cr_assert_eq(pf.calls, 4);
    cr_assert_eq(m.refs, 1);
    pf.rc = 0;

    /* Cloudflare's vtable has no such op: never sent there; nor without media or once stopped */
    ls.media.ops = &cf_ops;
    sp_ls_protection_sync(&m, false);
    ls.media.ops = &relay_ops;
    ls.has_media = false;
    sp_ls_protection_sync(&m, false);
    ls.has_media = true;
    m.stopped = true;
    sp_ls_protection_sync(&m, false);
    cr_assert_eq(pf.calls, 4);
}
