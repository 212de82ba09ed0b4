/*
 * sp_ls_destinations: the destinations model, custom RTMP(S) destinations of a user.
 * URLs go through sp_dest_url (strict parse, then DNS + SSRF address check:
 * private/loopback/link-local refused unless ALLOW_PRIVATE_DESTINATIONS).
 * Stream keys are sealed at rest (purpose "destination_key") and masked in every
 * result except reveal. Every query is scoped by the user id. Results come through
 * sp_ls_result_cb (sp_livestream.h); validation failures are SP_EINVAL with a code.
 */
#ifndef SP_LS_DESTINATIONS_H
#define SP_LS_DESTINATIONS_H

#include <jansson.h>

#include "livestream/sp_livestream.h"

/** {destinations: [...]} (keys masked). */
void sp_ls_destinations_list(sp_livestream_t *ls, const char *user_id, sp_ls_result_cb cb,
                             void *ud);
/** Creates (id NULL: {platform:"custom", name, url, stream_key, enabled?}) or updates (any
 *  of name, url, stream_key, enabled) a destination from fields (borrowed). Result: the
 *  destination (key masked); SP_ECONFLICT "too_many_destinations" over
 *  MAX_PLATFORMS_PER_USER; SP_ENOTFOUND when updating another user's or no destination. */
void sp_ls_destination_save(sp_livestream_t *ls, const char *user_id, const char *id,
                            json_t *fields, sp_ls_result_cb cb, void *ud);
/** Deletes; body NULL. SP_ECONFLICT "in_use" while the running stream uses it. */
void sp_ls_destination_delete(sp_livestream_t *ls, const char *user_id, const char *id,
                              sp_ls_result_cb cb, void *ud);
/** {stream_key} in clear; SP_ECRYPTO if the sealed key cannot be read. */
void sp_ls_destination_reveal(sp_livestream_t *ls, const char *user_id, const char *id,
                              sp_ls_result_cb cb, void *ud);

#endif
