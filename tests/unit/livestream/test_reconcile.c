#include <criterion/criterion.h>

#include "core/sp_err.h"
#include "livestream/sp_reconcile.h"

static int count_op(const sp_rec_action_t *a, int n, sp_rec_op_t op)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += a[i].op == op;
    return c;
}

static const sp_rec_action_t *find_row(const sp_rec_action_t *a, int n, int row)
{
    for (int i = 0; i < n; i++)
        if (a[i].row == row) return &a[i];
    return NULL;
}

Test(reconcile, state_names)
{
    for (int i = SP_OUT_CREATING; i <= SP_OUT_CLOSED; i++)
        cr_assert_eq(sp_out_state_parse(sp_out_state_name(i)), i);
    cr_assert_eq(sp_out_state_parse("x"), -1);
    cr_assert_str_eq(sp_rec_op_name(SP_REC_ADOPT), "adopt");
}

Test(reconcile, crash_after_api_call_adopts_by_url_and_key)
{
    /* intent row written, API call succeeded, crash before confirmation */
    sp_rec_row_t rows[] = {
        { "r1", NULL, "rtmp://a/live", "k1", SP_OUT_CREATING },
        { "r2", "o2", "rtmp://b/live", "k2", SP_OUT_ACTIVE },
    };
    sp_rec_remote_t rem[] = {
        { "o2", "rtmp://b/live", "k2" },
        { "o1", "rtmp://a/live", "k1" },
    };
    sp_rec_action_t out[4];
    int n = sp_rec_plan(rows, 2, rem, 2, true, out, 4);
    cr_assert_eq(n, 2);
    const sp_rec_action_t *a = find_row(out, n, 0);
    cr_assert_eq(a->op, SP_REC_ADOPT);
    cr_assert_eq(a->remote, 1);
    a = find_row(out, n, 1);
    cr_assert_eq(a->op, SP_REC_KEEP);
    cr_assert_eq(a->remote, 0);
    cr_assert_eq(count_op(out, n, SP_REC_DELETE_REMOTE), 0);
    cr_assert_eq(count_op(out, n, SP_REC_RECREATE), 0);
}

Test(reconcile, crash_before_api_call_recreates_once)
{
    sp_rec_row_t rows[] = { { "r1", NULL, "rtmp://a/live", "k1", SP_OUT_CREATING } };
    sp_rec_action_t out[1];
    int n = sp_rec_plan(rows, 1, NULL, 0, true, out, 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].op, SP_REC_RECREATE);
}

Test(reconcile, duplicates_and_orphans_are_deleted)
{
    sp_rec_row_t rows[] = {
        { "r1", NULL, "rtmp://a/live", "k1", SP_OUT_CREATING },
        { "r0", "old", "rtmp://z/live", "kz", SP_OUT_CLOSED },
    };
    sp_rec_remote_t rem[] = {
        { "o1", "rtmp://a/live", "k1" },
        { "o1b", "rtmp://a/live", "k1" }, /* duplicate of the same destination */
        { "x", "rtmp://other/live", "kx" }, /* unknown */
        { "old", "rtmp://z/live", "kz" },  /* belongs to a closed row */
    };
    sp_rec_action_t out[6];
    int n = sp_rec_plan(rows, 2, rem, 4, true, out, 6);
    cr_assert_eq(count_op(out, n, SP_REC_ADOPT), 1);
    cr_assert_eq(count_op(out, n, SP_REC_DELETE_REMOTE), 3);
    for (int i = 0; i < n; i++)
        if (out[i].op == SP_REC_DELETE_REMOTE) {
            cr_assert_eq(out[i].row, -1);
            cr_assert_neq(out[i].remote, 0);
        }
    cr_assert_null(find_row(out, n, 1)); /* closed rows untouched */
}

Test(reconcile, deleting_rows_finish_the_delete)
{
    sp_rec_row_t rows[] = {
        { "r1", "o1", "rtmp://a/live", "k1", SP_OUT_DELETING },
        { "r2", "o2", "rtmp://b/live", "k2", SP_OUT_DELETING },
    };
    sp_rec_remote_t rem[] = { { "o1", "rtmp://a/live", "k1" } };
    sp_rec_action_t out[3];
    int n = sp_rec_plan(rows, 2, rem, 1, true, out, 3);
    cr_assert_eq(n, 2);
    cr_assert_eq(find_row(out, n, 0)->op, SP_REC_DELETE_REMOTE);
    cr_assert_eq(find_row(out, n, 0)->remote, 0);
    cr_assert_eq(find_row(out, n, 1)->op, SP_REC_CLOSE_ROW);
}

Test(reconcile, inactive_stream_clears_everything)
{
    sp_rec_row_t rows[] = {
        { "r1", "o1", "rtmp://a/live", "k1", SP_OUT_ACTIVE },
        { "r2", NULL, "rtmp://b/live", "k2", SP_OUT_CREATING },
        { "r3", "o3", "rtmp://c/live", "k3", SP_OUT_FAILED },
    };
    sp_rec_remote_t rem[] = {
        { "o1", "rtmp://a/live", "k1" },
        { "o2", "rtmp://b/live", "k2" },
    };
    sp_rec_action_t out[5];
    int n = sp_rec_plan(rows, 3, rem, 2, false, out, 5);
    cr_assert_eq(find_row(out, n, 0)->op, SP_REC_DELETE_REMOTE);
    cr_assert_eq(find_row(out, n, 1)->op, SP_REC_CLOSE_ROW);
    cr_assert_eq(find_row(out, n, 2)->op, SP_REC_CLOSE_ROW);
    /* o2 (no uid on row, stream inactive) is an orphan */
    cr_assert_eq(count_op(out, n, SP_REC_DELETE_REMOTE), 2);
    cr_assert_eq(count_op(out, n, SP_REC_ADOPT), 0);
    cr_assert_eq(count_op(out, n, SP_REC_RECREATE), 0);
}

Test(reconcile, active_row_lost_remotely_is_recreated)
{
    sp_rec_row_t rows[] = { { "r1", "gone", "rtmp://a/live", "k1", SP_OUT_ACTIVE } };
    sp_rec_action_t out[1];
    int n = sp_rec_plan(rows, 1, NULL, 0, true, out, 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].op, SP_REC_RECREATE);
}

Test(reconcile, never_more_remote_outputs_than_rows)
{
    /* property: after applying the plan, each open row has exactly one remote and
       no remote is left without a row */
    sp_rec_row_t rows[] = {
        { "r1", NULL, "rtmp://a/live", "k", SP_OUT_CREATING },
        { "r2", NULL, "rtmp://a/live", "k", SP_OUT_CREATING }, /* two dests, same url+key */
        { "r3", "o3", "rtmp://c/live", "k3", SP_OUT_ACTIVE },
    };
    sp_rec_remote_t rem[] = {
        { "o1", "rtmp://a/live", "k" },
        { "o3", "rtmp://c/live", "k3" },
        { "o4", "rtmp://a/live", "k" },
        { "o5", "rtmp://a/live", "k" },
    };
    sp_rec_action_t out[7];
    int n = sp_rec_plan(rows, 3, rem, 4, true, out, 7);
    int remote_after = 4 - count_op(out, n, SP_REC_DELETE_REMOTE) +
                       count_op(out, n, SP_REC_RECREATE);
    cr_assert_eq(remote_after, 3);
    cr_assert_eq(count_op(out, n, SP_REC_ADOPT), 2);
    cr_assert_eq(count_op(out, n, SP_REC_KEEP), 1);
    cr_assert_eq(sp_rec_plan(rows, 3, rem, 4, true, out, 6), SP_ETOOBIG);
}
