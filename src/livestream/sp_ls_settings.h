/*
 * sp_ls_settings: the user's stream settings (docs/api.md "Stream settings"), auto go-live,
 * and the stream event log (docs/api.md "Stream events"):
 *   auto_start               go live automatically when the encoder connects (default off)
 *   auto_start_destinations  the destination ids it goes live to (default none)
 *   disconnect_protection    keep the destinations connected through an encoder drop within
 *                            the grace window (default on; the built-in relay's slate reads it)
 * Settings live in stream_settings (migration 0005) and are cached in the user's manager
 * once it is loaded. Everything runs on the loop thread.
 */
#ifndef SP_LS_SETTINGS_H
#define SP_LS_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "livestream/sp_livestream.h"

/** At most this many auto go-live destinations (a request over it is refused). */
#define SP_LS_AUTO_DESTS_MAX 32
/** The stream event log keeps this many events per user (the oldest go first). */
#define SP_LS_EVENTS_KEEP 200

/** {auto_start, auto_start_destinations, disconnect_protection} of a loaded manager. */
json_t *sp_ls_manager_settings(sp_ls_manager_t *m);
/** Updates the settings from `patch` (borrowed; each present field already type-checked by
 *  the caller: booleans, an array of distinct id strings). Destination ids the user does
 *  not have: SP_EINVAL "unknown_destination" with body {field}. Answers the new settings. */
void sp_ls_manager_settings_put(sp_ls_manager_t *m, json_t *patch, sp_ls_result_cb cb,
                                void *ud);
/** Whether disconnect protection is on for this loaded manager (h13d: the relay input). */
bool sp_ls_manager_disconnect_protection(const sp_ls_manager_t *m);
/** The same for a user: the running manager's setting; true (the default) when the user has
 *  no loaded manager. */
bool sp_livestream_disconnect_protection(sp_livestream_t *ls, const char *user_id);
/** fn(ud, user_id, disconnect_protection) after each settings change (NULL: none). */
typedef void (*sp_ls_settings_changed_fn)(void *ud, const char *user_id,
                                          bool disconnect_protection);
void sp_livestream_on_settings_changed(sp_livestream_t *ls, sp_ls_settings_changed_fn fn,
                                       void *ud);

/** GET /api/stream/events: the user's newest stream events, newest first:
 *  {events: [{id, stream_id, type, message, payload, created_at, seq}]}. */
void sp_ls_stream_events(sp_livestream_t *ls, const char *user_id, int64_t limit,
                         sp_ls_result_cb cb, void *ud);

#endif
