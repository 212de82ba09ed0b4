/*
 * sp_ls_history: a user's past streams and stream events, read from the store. Every
 * query is scoped by the user id; results come through sp_ls_result_cb (sp_livestream.h).
 */
#ifndef SP_LS_HISTORY_H
#define SP_LS_HISTORY_H

#include <stdint.h>

#include "livestream/sp_livestream.h"

/** {streams: [...]}, newest first; limit 1-200 (the caller clamps). */
void sp_ls_history_streams(sp_livestream_t *ls, const char *user_id, int64_t limit,
                           sp_ls_result_cb cb, void *ud);
/** One stream with its outputs; SP_ENOTFOUND "not_found" if it is not the user's. */
void sp_ls_history_stream(sp_livestream_t *ls, const char *user_id, const char *stream_id,
                          sp_ls_result_cb cb, void *ud);
/** {events: [...]} with seq > after_seq, oldest first; stream_id NULL = every stream. */
void sp_ls_history_events(sp_livestream_t *ls, const char *user_id, int64_t after_seq,
                          int64_t limit, const char *stream_id, sp_ls_result_cb cb, void *ud);

#endif
