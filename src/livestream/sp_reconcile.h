/*
 * sp_reconcile: the output reconciliation planner (pure). Given our
 * stream_outputs rows of a user's live input and the outputs the media API
 * lists for that input, decide how to make both sides agree after a crash at
 * any point of start or stop (intent-first, docs/livestream.md "Crash safety"):
 *
 *  - a remote output whose uid is on an open row (creating/active/failed)
 *    is KEPT (row confirmed active); a second remote output for the same row
 *    (same uid impossible, same url+key) is a duplicate and DELETED;
 *  - a remote output with no uid match but the same url + stream key as an
 *    open row that has no live remote yet is ADOPTED (the crash happened
 *    after the API call and before the confirmation) — never created twice;
 *  - any other remote output is an orphan and DELETED;
 *  - a row in `deleting` whose remote still exists: DELETE_REMOTE then close;
 *    without remote: CLOSE_ROW;
 *  - an open row with no remote: RECREATE if the stream is still active,
 *    otherwise CLOSE_ROW;
 *  - stream not active: every remote output is deleted and every open row
 *    closed.
 * Rows in `closed` are ignored (their uid, if listed remotely, is an orphan).
 */
#ifndef SP_RECONCILE_H
#define SP_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SP_OUT_CREATING = 0,
    SP_OUT_ACTIVE,
    SP_OUT_FAILED,
    SP_OUT_DELETING,
    SP_OUT_CLOSED,
} sp_out_state_t;

const char *sp_out_state_name(sp_out_state_t s);
int sp_out_state_parse(const char *s); /* -1 if unknown */

typedef struct {
    const char *row_id;
    const char *output_uid; /* NULL/"" before confirmation */
    const char *url;
    const char *stream_key; /* plain (unsealed) */
    sp_out_state_t state;
} sp_rec_row_t;

typedef struct {
    const char *uid;
    const char *url;
    const char *stream_key;
} sp_rec_remote_t;

typedef enum {
    SP_REC_KEEP = 0,     /* row + remote agree (confirm row active with the uid) */
    SP_REC_ADOPT,        /* set row's output_uid = remote uid, state active */
    SP_REC_DELETE_REMOTE,/* delete remote; if row >= 0 close that row afterwards */
    SP_REC_CLOSE_ROW,    /* row -> closed */
    SP_REC_RECREATE,     /* create the output again for this row */
} sp_rec_op_t;

typedef struct {
    sp_rec_op_t op;
    int row;    /* index into rows or -1 */
    int remote; /* index into remotes or -1 */
} sp_rec_action_t;

/**
 * Writes at most nrows + nremotes actions into out (cap must be at least that).
 * Returns the number of actions or SP_ETOOBIG.
 */
int sp_rec_plan(const sp_rec_row_t *rows, size_t nrows, const sp_rec_remote_t *remotes,
                size_t nremotes, bool stream_active, sp_rec_action_t *out, size_t cap);

const char *sp_rec_op_name(sp_rec_op_t op);

#endif
