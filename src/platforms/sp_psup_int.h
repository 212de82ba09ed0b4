/*
 * sp_psup_int: what the supervisor's two files share (not for other modules).
 *   sp_psup.c       users, monitors (start, restart budget, degraded, needs_reauth), the sinks,
 *                   dedupe, persistence and publishing of chat/alerts, the timer, debug
 *   sp_psup_ops.c   the calls made on the user's behalf: viewers sampling, title sync, chat
 *                   send (fan-out, reply routing)
 * Every asynchronous call is an op (psup_op_t) linked into the supervisor: when the
 * supervisor is freed first, the op is orphaned (op->s = NULL) and its late callback only
 * releases it. Ops name their user by id and generation, never by pointer: a stream that
 * ended (or restarted) meanwhile is simply not found.
 */
#ifndef SP_PSUP_INT_H
#define SP_PSUP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_backoff.h"
#include "core/sp_map.h"
#include "platforms/sp_psup.h"

#define SP_PSUP_USER_CAP 64
#define SP_PSUP_SEEN_MAX 256 /* recent message ids remembered per user (dedupe, reply lookup) */

typedef enum {
    SP_PSUP_MON_ABSENT = 0, /* not connected (or disconnected / stopped) */
    SP_PSUP_MON_LOADING,    /* the account is being read */
    SP_PSUP_MON_RUNNING,
    SP_PSUP_MON_WAIT,       /* failed: restart at due */
    SP_PSUP_MON_REAUTH,     /* the account needs reauth: stopped until reconnected */
} sp_psup_mon_state_t;

typedef struct {
    uint64_t h;
    char kind; /* 'c' chat, 'd' deletion, 'a' alert */
    char platform[SP_PMSG_PLATFORM_CAP];
} sp_psup_seen_t;

typedef struct sp_psup_user_s sp_psup_user_t;

typedef struct {
    sp_psup_t *s;
    sp_psup_user_t *u;
    char platform[SP_PMSG_PLATFORM_CAP];
    sp_platform_account_t *acct; /* referenced while loaded */
    sp_platform_monitor_t *m;
    sp_psup_mon_state_t state;
    uint64_t due; /* WAIT: restart time (monotonic ms) */
    uint64_t restarts[SP_PSUP_MAX_RESTARTS + 1];
    unsigned rpos;
    sp_backoff_t bo;
    bool degraded;
    int last_status; /* last published, -1 = none */
    char last_error[SP_PMSG_ERROR_CAP];
} sp_psup_mon_t;

struct sp_psup_user_s {
    char user_id[SP_PSUP_USER_CAP];
    char stream_id[SP_PSUP_USER_CAP];
    uint64_t gen;
    char *title;
    json_t *categories; /* {platform: category id} or NULL */
    sp_psup_mon_t mons[SP_PLATFORM_MAX];
    size_t n_mons;
    uint64_t next_viewers; /* monotonic ms; 0 = not sampling */
    int v_pending;
    int64_t v_ts;
    sp_viewers_t v;
    sp_viewers_t v_last;   /* the last complete sample (GET /api/stream's stats) */
    bool has_last;
    int64_t peak_total;    /* highest sampled total of this stream */
    sp_psup_seen_t seen[SP_PSUP_SEEN_MAX];
    unsigned seen_pos;
};

typedef enum {
    SP_PSUP_OP_ACCOUNT = 0,
    SP_PSUP_OP_TITLE,
    SP_PSUP_OP_VIEWERS,
    SP_PSUP_OP_CHAT_ACCOUNT,
    SP_PSUP_OP_CHAT_SEND,
    SP_PSUP_OP_REPLY_LOOKUP,
} sp_psup_op_kind_t;

typedef struct sp_psup_batch_s sp_psup_batch_t;

typedef struct sp_psup_op_s {
    sp_psup_t *s; /* NULL: the supervisor is gone */
    struct sp_psup_op_s *prev, *next;
    sp_psup_op_kind_t kind;
    char user_id[SP_PSUP_USER_CAP];
    uint64_t gen;
    char platform[SP_PMSG_PLATFORM_CAP];
    sp_platform_account_t *acct; /* a reference, released by sp_psup_op_end */
    sp_psup_batch_t *batch;
    size_t slot;
} sp_psup_op_t;

struct sp_psup_s {
    sp_platform_env_t env;
    struct sp_store_s *store;
    struct sp_pubsub_s *bus;
    sp_accounts_t *accounts;
    sp_psup_account_fn source;
    void *source_ud;
    uint64_t bo_base, bo_max;
    sp_map_t *users; /* user_id -> sp_psup_user_t */
    uint64_t next_gen;
    uv_timer_t timer;
    sp_psup_op_t *ops;
    uint64_t restarts, events, duplicates, unrouted;
    sp_registry_t *reg; /* the process's Registry (borrowed) or NULL */
    sp_psup_alert_hook alert_hook; /* every accepted alert (the AlertQueue) or NULL */
    void *alert_hook_ud;
};

/* ---- sp_psup.c -------------------------------------------------------------------------- */
sp_psup_op_t *sp_psup_op_new(sp_psup_t *s, sp_psup_op_kind_t kind, const char *user_id,
                             uint64_t gen);
/** Unlinks (when the supervisor lives), releases the account reference, frees. */
void sp_psup_op_end(sp_psup_op_t *op);
/** The op's user when it is still the same stream (same generation), else NULL. */
sp_psup_user_t *sp_psup_op_user(sp_psup_op_t *op);
sp_psup_mon_t *sp_psup_find_mon(sp_psup_user_t *u, const char *platform);
void sp_psup_publish(sp_psup_t *s, const char *topic, const char *event, json_t *payload);
/** A call on the user's behalf was refused for the account (SP_EAUTH): that platform's
 *  monitor stops as needs_reauth (when the stream of that generation still runs). */
void sp_psup_auth_failed(sp_psup_t *s, const char *user_id, uint64_t gen, const char *platform);
/** The platform of a recent chat message id of this user ("" when not remembered). */
const char *sp_psup_seen_chat_platform(sp_psup_user_t *u, const char *id);

/* ---- sp_psup_ops.c ---------------------------------------------------------------------- */
/** Pushes title/category (NULL: keep) to the monitor's platform. */
void sp_psup_push_channel(sp_psup_mon_t *mon, const char *title, const char *category);
/** Samples viewers of every loaded platform of the user now. */
void sp_psup_viewers_tick(sp_psup_t *s, sp_psup_user_t *u);
/** Fills the stream's peak/avg viewers from its samples (after them in the write queue). */
void sp_psup_viewers_final(sp_psup_t *s, const char *stream_id);
/** The supervisor is being freed: answers a pending chat send with SP_ECANCELED. */
void sp_psup_batch_cancel(sp_psup_batch_t *b);
/** Frees the batch's share held by an op. */
void sp_psup_batch_unref(sp_psup_batch_t *b);

#endif
