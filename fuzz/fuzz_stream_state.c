/*
 * libFuzzer target: the stream state machine (sp_stream_state) and the output
 * reconciliation planner (sp_reconcile), driven by arbitrary event sequences
 * and row/remote sets. Checks their invariants, not just absence of crashes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_reconcile.h"
#include "livestream/sp_stream_state.h"

static void check_ss(const uint8_t *d, size_t n)
{
    sp_ss_t s;
    int64_t now = 1000;
    sp_ss_init(&s, 300, now);
    for (size_t i = 0; i + 1 < n && i < 512; i += 2) {
        sp_ss_event_t ev = { .type = (sp_ss_event_type_t)(d[i] % 9), .n_destinations = d[i + 1] % 4,
                             .n_ok = d[i + 1] % 3, .n_failed = (d[i + 1] >> 2) % 3 };
        now += d[i + 1] * 7;
        sp_ss_state_t before = s.state;
        sp_ss_result_t r = sp_ss_apply(&s, &ev, now);
        if (r.err != 0) {
            if (s.state != before || r.actions != 0) __builtin_trap(); /* refusals change nothing */
            if (r.err != SP_ECONFLICT && r.err != SP_EINVAL) __builtin_trap();
            if (r.reason == NULL) __builtin_trap();
            continue;
        }
        if (s.disconnect_deadline != 0 && s.state != SP_SS_STREAMING) __builtin_trap();
        if (s.starting && s.state != SP_SS_STREAMING) __builtin_trap();
        if (s.state == SP_SS_READY && !s.input_connected) __builtin_trap();
        if (s.state != before && !(r.actions & SP_SSA_PERSIST)) __builtin_trap();
        if ((r.actions & SP_SSA_ARM_TIMER) && s.disconnect_deadline == 0) __builtin_trap();
        if (before == SP_SS_STREAMING && s.state == SP_SS_ENDING &&
            !(r.actions & SP_SSA_DELETE_OUTPUTS))
            __builtin_trap();
    }
}

static void check_rec(const uint8_t *d, size_t n)
{
    static const char *const uids[] = { NULL, "a", "b", "c" };
    static const char *const urls[] = { "u1", "u2" };
    static const char *const keys[] = { "k1", "k2" };
    sp_rec_row_t rows[8];
    sp_rec_remote_t rem[8];
    size_t nr = n > 0 ? d[0] % 9 : 0, nm = n > 1 ? d[1] % 9 : 0;
    size_t p = 2;
    for (size_t i = 0; i < nr; i++, p++) {
        uint8_t b = p < n ? d[p] : 0;
        rows[i] = (sp_rec_row_t){ "r", uids[b & 3], urls[(b >> 2) & 1], keys[(b >> 3) & 1],
                                  (sp_out_state_t)((b >> 4) % 5) };
    }
    for (size_t j = 0; j < nm; j++, p++) {
        uint8_t b = p < n ? d[p] : 0;
        rem[j] = (sp_rec_remote_t){ uids[1 + (b % 3)], urls[(b >> 2) & 1], keys[(b >> 3) & 1] };
    }
    bool active = n > 2 && (d[2] & 0x80);
    sp_rec_action_t out[16];
    int k = sp_rec_plan(rows, nr, rem, nm, active, out, 16);
    if (k < 0 || (size_t)k > nr + nm) __builtin_trap();
    int row_seen[8] = { 0 }, rem_seen[8] = { 0 };
    for (int i = 0; i < k; i++) {
        if (out[i].row >= 0) {
            if (out[i].row >= (int)nr || rows[out[i].row].state == SP_OUT_CLOSED) __builtin_trap();
            if (++row_seen[out[i].row] > 1) __builtin_trap(); /* one decision per row */
        }
        if (out[i].remote >= 0) {
            if (out[i].remote >= (int)nm) __builtin_trap();
            if (++rem_seen[out[i].remote] > 1) __builtin_trap(); /* one decision per remote */
        }
        if (!active && (out[i].op == SP_REC_RECREATE || out[i].op == SP_REC_ADOPT))
            __builtin_trap();
    }
    for (size_t i = 0; i < nr; i++)
        if (rows[i].state != SP_OUT_CLOSED && row_seen[i] != 1) __builtin_trap();
    for (size_t j = 0; j < nm; j++)
        if (rem_seen[j] != 1) __builtin_trap(); /* every remote kept, adopted or deleted */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_ss(data, size);
    check_rec(data, size);
    return 0;
}
