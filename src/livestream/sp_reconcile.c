/*
 * sp_reconcile: output reconciliation planner (see the header).
 */
#include "livestream/sp_reconcile.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

static const char *const out_names[] = { "creating", "active", "failed", "deleting", "closed" };
static const char *const op_names[] = { "keep", "adopt", "delete_remote", "close_row",
                                        "recreate" };

const char *sp_out_state_name(sp_out_state_t s)
{
    if ((unsigned)s > SP_OUT_CLOSED) return "unknown";
    return out_names[s];
}

int sp_out_state_parse(const char *s)
{
    if (s == NULL) return -1;
    for (int i = 0; i <= SP_OUT_CLOSED; i++)
        if (strcmp(s, out_names[i]) == 0) return i;
    return -1;
}

const char *sp_rec_op_name(sp_rec_op_t op)
{
    if ((unsigned)op > SP_REC_RECREATE) return "unknown";
    return op_names[op];
}

static bool streq(const char *a, const char *b)
{
    if (a == NULL) a = "";
    if (b == NULL) b = "";
    return strcmp(a, b) == 0;
}

static bool has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool open_row(const sp_rec_row_t *r)
{
    return r->state == SP_OUT_CREATING || r->state == SP_OUT_ACTIVE || r->state == SP_OUT_FAILED;
}

int sp_rec_plan(const sp_rec_row_t *rows, size_t nrows, const sp_rec_remote_t *remotes,
                size_t nremotes, bool stream_active, sp_rec_action_t *out, size_t cap)
{
    if (cap < nrows + nremotes) return SP_ETOOBIG;
    size_t n = 0;
    /* match[i] = remote matched to row i (-1), claimed[j] = remote j taken */
    int *match = sp_malloc((nrows + 1) * sizeof(int));
    bool *claimed = sp_calloc(nremotes + 1, sizeof(bool));
    for (size_t i = 0; i < nrows; i++) match[i] = -1;

    /* 1. exact uid matches (open and deleting rows) */
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].state == SP_OUT_CLOSED || !has(rows[i].output_uid)) continue;
        for (size_t j = 0; j < nremotes; j++) {
            if (!claimed[j] && streq(rows[i].output_uid, remotes[j].uid)) {
                match[i] = (int)j;
                claimed[j] = true;
                break;
            }
        }
    }
    /* 2. url + key adoption for open rows without a live remote (only while active) */
    if (stream_active) {
        for (size_t i = 0; i < nrows; i++) {
            if (!open_row(&rows[i]) || match[i] >= 0) continue;
            for (size_t j = 0; j < nremotes; j++) {
                if (!claimed[j] && streq(rows[i].url, remotes[j].url) &&
                    streq(rows[i].stream_key, remotes[j].stream_key)) {
                    match[i] = (int)j;
                    claimed[j] = true;
                    out[n++] = (sp_rec_action_t){ SP_REC_ADOPT, (int)i, (int)j };
                    break;
                }
            }
        }
    }
    /* 3. per-row decisions */
    for (size_t i = 0; i < nrows; i++) {
        const sp_rec_row_t *r = &rows[i];
        if (r->state == SP_OUT_CLOSED) continue;
        int j = match[i];
        if (r->state == SP_OUT_DELETING || !stream_active) {
            if (j >= 0)
                out[n++] = (sp_rec_action_t){ SP_REC_DELETE_REMOTE, (int)i, j };
            else
                out[n++] = (sp_rec_action_t){ SP_REC_CLOSE_ROW, (int)i, -1 };
            continue;
        }
        if (j >= 0) {
            if (has(r->output_uid) && streq(r->output_uid, remotes[j].uid))
                out[n++] = (sp_rec_action_t){ SP_REC_KEEP, (int)i, j };
            /* else: ADOPT already emitted */
        } else {
            out[n++] = (sp_rec_action_t){ SP_REC_RECREATE, (int)i, -1 };
        }
    }
    /* 4. orphans and duplicates */
    for (size_t j = 0; j < nremotes; j++)
        if (!claimed[j]) out[n++] = (sp_rec_action_t){ SP_REC_DELETE_REMOTE, -1, (int)j };

    sp_free(match);
    sp_free(claimed);
    return (int)n;
}
