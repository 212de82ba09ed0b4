/*
 * sp_auth_int: what sp_auth.c shares with the other files of the auth library
 * (sp_auth_sessions.c). Not for other modules.
 */
#ifndef SP_AUTH_INT_H
#define SP_AUTH_INT_H

#include "auth/sp_auth.h"

/** The instance's store. */
sp_store_t *sp_auth_store_(sp_auth_t *a);
/** Remembers session sid as refused until exp_ms (sp_auth_token_verify refuses it). */
void sp_auth_deny_(sp_auth_t *a, const char *sid, int64_t exp_ms);
/** Runs the sp_auth_on_revoke hook: sid revoked, or (NULL) every session of user_id. */
void sp_auth_notify_revoked_(sp_auth_t *a, const char *user_id, const char *sid);

#endif
