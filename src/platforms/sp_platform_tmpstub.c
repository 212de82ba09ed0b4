/*
 * TEMPORARY (helper D, branch psup): link stand-ins for the accounts until the branch that
 * implements sp_accounts.c lands on main. Delete on merge.
 */
#include "platforms/sp_accounts.h"

#include "core/sp_alloc.h"
#include "core/sp_err.h"

struct sp_accounts_s {
    int unused;
};

sp_accounts_t *sp_accounts_new(const sp_platform_env_t *env, struct sp_store_s *store,
                               sp_accounts_status_fn on_status, void *ud)
{
    (void)env;
    (void)store;
    (void)on_status;
    (void)ud;
    return sp_calloc(1, sizeof(sp_accounts_t));
}

void sp_accounts_free(sp_accounts_t *acc)
{
    sp_free(acc);
}

void sp_accounts_get(sp_accounts_t *acc, const char *user_id, const char *platform,
                     sp_accounts_get_cb cb, void *ud)
{
    (void)acc;
    (void)user_id;
    (void)platform;
    cb(SP_ENOTFOUND, NULL, ud);
}

void sp_accounts_set_degraded(sp_accounts_t *acc, const char *user_id, const char *platform,
                              bool degraded)
{
    (void)acc;
    (void)user_id;
    (void)platform;
    (void)degraded;
}
