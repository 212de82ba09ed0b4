/*
 * sp_presence: the seed's PresenceManager. Every authenticated dashboard
 * WebSocket is a session of its user.
 *
 *  - first session of a user -> hooks.start(user) (the user's manager starts);
 *    if start fails (e.g. SP_ELIMIT: MAX_CONCURRENT_USERS reached) the join is
 *    refused with that error and nothing is recorded;
 *  - more sessions -> same manager;
 *  - last session leaves -> cleanup after cleanup_timeout_ms unless a session
 *    returns; when the timer fires, hooks.can_stop(user) decides: a manager
 *    whose stream is ready/streaming/ending is kept (the user stays listed as
 *    absent) until sp_presence_recheck() is called once the stream is offline.
 *  - sp_presence_adopt() records a manager started without a session (start-up
 *    recovery); it is cleaned up like an absent user.
 * Loop thread only.
 */
#ifndef SP_PRESENCE_H
#define SP_PRESENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
    int (*start)(const char *user_id, void *ud);     /* 0 or SP_E* */
    void (*stop)(const char *user_id, void *ud);
    bool (*can_stop)(const char *user_id, void *ud); /* false while ready/streaming/ending */
} sp_presence_hooks_t;

typedef struct sp_presence_s sp_presence_t;

sp_presence_t *sp_presence_new(uv_loop_t *loop, int64_t cleanup_timeout_ms,
                               const sp_presence_hooks_t *hooks, void *ud);
/** Closes every timer (no stop hooks are called); memory is released once closed. */
void sp_presence_free(sp_presence_t *p);

/** session_id is unique per socket. Joining twice with the same id is a no-op. */
int sp_presence_join(sp_presence_t *p, const char *user_id, uint64_t session_id);
void sp_presence_leave(sp_presence_t *p, const char *user_id, uint64_t session_id);
/** Records a manager running with no session (recovery); schedules cleanup. */
void sp_presence_adopt(sp_presence_t *p, const char *user_id);
/** The user's stream became stoppable: schedule cleanup if nobody is present. */
void sp_presence_recheck(sp_presence_t *p, const char *user_id);

size_t sp_presence_sessions(const sp_presence_t *p, const char *user_id);
bool sp_presence_managed(const sp_presence_t *p, const char *user_id);
bool sp_presence_cleanup_pending(const sp_presence_t *p, const char *user_id);
size_t sp_presence_user_count(const sp_presence_t *p);   /* users with a manager */
size_t sp_presence_session_count(const sp_presence_t *p);
/** [{user_id, sessions, cleanup_pending, absent_since}] (PresenceHelper.debug/list_presence). */
json_t *sp_presence_debug(const sp_presence_t *p);

#endif
