/*
 * sp_accounts: the connected platform accounts (`streaming_account`, seed 000), one per
 * platform per user. Tokens are sealed at rest (auth/sp_seal.h, purpose "oauth:<platform>",
 * as stream keys are); the platform user's id/login/display name, the scopes and the account
 * status (ok | needs_reauth) live in `extra_data`. Loaded accounts are cached (one
 * sp_platform_account_t per user and platform) with their sp_token: the refresher posts the
 * refresh grant to the platform's token URL (sp_oauth), persists the new (possibly rotated)
 * tokens sealed, and only then hands the access token to the waiters. A refresh answered
 * invalid_grant / 400 / 401 marks the account needs_reauth (persisted; status callback).
 *
 * Connecting a platform also keeps one row in `destinations` for it (platform = the name,
 * url = the platform's ingest, no stored key: the key is fetched at Start through the
 * platform's ingest call), so a connected account appears in the destination list without
 * pasting anything; disconnecting removes that row.
 *
 * Everything runs on the loop thread; callbacks are never synchronous.
 */
#ifndef SP_ACCOUNTS_H
#define SP_ACCOUNTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/sp_oauth.h"
#include "platforms/sp_platform.h"

struct sp_store_s; /* store/sp_store.h */

typedef struct sp_accounts_s sp_accounts_t;

/** Told when an account's status changes (needs_reauth after a failed refresh, ok after a
 *  reconnect, removed after a disconnect). */
typedef void (*sp_accounts_status_fn)(void *ud, const char *user_id, const char *platform,
                                      sp_platform_status_t st, const char *error);

sp_accounts_t *sp_accounts_new(const sp_platform_env_t *env, struct sp_store_s *store,
                               sp_accounts_status_fn on_status, void *ud);
/** Pending loads and refreshes end with SP_ECANCELED; accounts still referenced elsewhere
 *  live until their last reference goes. */
void sp_accounts_free(sp_accounts_t *acc);

/** a is referenced for the caller (unref when done) and valid; NULL with err SP_ENOTFOUND
 *  (not connected), SP_ECRYPTO (cannot unseal), or a store error. */
typedef void (*sp_accounts_get_cb)(int err, sp_platform_account_t *a, void *ud);
void sp_accounts_get(sp_accounts_t *acc, const char *user_id, const char *platform,
                     sp_accounts_get_cb cb, void *ud);

/** GET /api/platforms: a JSON array, one object per registered platform:
 *  {platform, display_name, configured, connected, status: ok|needs_reauth|degraded|null,
 *   account:{id, login, display_name}|null, scopes:[...], expires_at: ms|null}. Never a token.
 *  degraded comes from sp_accounts_set_degraded (the supervisor). */
typedef void (*sp_accounts_json_cb)(int err, json_t *list, void *ud);
void sp_accounts_list(sp_accounts_t *acc, const char *user_id, sp_accounts_json_cb cb, void *ud);

/** Stores a grant from the connect flow (replaces any previous one of this user on this
 *  platform, clears needs_reauth) and its destination row. */
void sp_accounts_connect(sp_accounts_t *acc, const char *user_id, const sp_platform_t *p,
                         const sp_oauth_token_t *tok, const sp_platform_identity_t *who,
                         sp_platform_done_cb cb, void *ud);
/** Revokes at the provider (best effort, when it has an endpoint), deletes the row and the
 *  destination row. SP_ENOTFOUND when not connected. */
void sp_accounts_disconnect(sp_accounts_t *acc, const char *user_id, const char *platform,
                            sp_platform_done_cb cb, void *ud);
/** The supervisor's view: a platform past its restart budget is `degraded` in the list
 *  until it recovers (false). In memory only. */
void sp_accounts_set_degraded(sp_accounts_t *acc, const char *user_id, const char *platform,
                              bool degraded);

#endif
