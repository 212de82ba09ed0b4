/*
 * libFuzzer target: the AlertQueue (sp_alertq) driven by a byte script of operations (push,
 * replay, tick, pause, resume, skip, clear, restore). Checks its invariants, not just the
 * absence of crashes: never more entries than capacity, the stats add up, at most one showing,
 * SHOW only when allowed, shown entries never shown again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_alertq.h"

static void check(const sp_alertq_t *q, size_t cap)
{
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    if (sp_alertq_len(q) > cap)
        __builtin_trap();
    if (s.accepted - s.merged + s.replayed + s.restored !=
        sp_alertq_len(q) + s.shown + s.dropped + s.cleared)
        __builtin_trap();
    if (s.merged > s.accepted)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 4)
        return 0;
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.capacity = 1 + d[0] % 8;
    o.dedupe_n = 1 + d[1] % 16;
    o.merge_window_ms = (d[2] % 4) * 50;
    o.gap_ms = (d[3] % 4) * 10;
    for (int t = 0; t < SP_AQ_TYPE_COUNT; t++) {
        o.duration_ms[t] = 10 + t * 5;
        o.priority[t] = (d[3] >> 2) & 1 ? (t * 7) % 5 : o.priority[t];
    }
    o.min_cheer_bits = 10;
    o.min_amount = 1;
    sp_alertq_t *q = sp_alertq_new(&o);
    if (q == NULL)
        __builtin_trap();
    static uint64_t shown_keys[1024];
    size_t n_shown = 0;
    static sp_aq_entry_t rows[16];
    bool rshown[16];
    size_t n_rows = 0;
    int64_t now = 0;
    bool last_paused = false;
    for (size_t i = 4; i + 2 < n && i < 4 + 3 * 400; i += 3) {
        uint8_t op = d[i], a1 = d[i + 1], a2 = d[i + 2];
        now += a2 % 32;
        sp_aq_alert_t a;
        memset(&a, 0, sizeof(a));
        a.type = (sp_aq_type_t)(a1 % SP_AQ_TYPE_COUNT);
        snprintf(a.id, sizeof(a.id), "e%u", (unsigned)(a1 >> 3) + 32u * (a2 & 3));
        snprintf(a.platform, sizeof(a.platform), (a2 & 4) ? "twitch" : "kick");
        snprintf(a.name, sizeof(a.name), "n%u", (unsigned)(a2 >> 5));
        a.has_amount = (a2 & 8) != 0;
        a.amount = a2 / 4.0;
        a.has_count = (a2 & 16) != 0;
        a.count = a2;
        size_t before_len = sp_alertq_len(q);
        switch (op % 9) {
        case 0:
        case 1:
        case 2: {
            uint64_t key = 0;
            int rc = sp_alertq_push(q, &a, now, &key);
            if (rc < 0 && rc != SP_ENOMEM)
                __builtin_trap();
            if (rc == SP_AQ_QUEUED && (key == 0 || sp_alertq_find(q, key) == NULL))
                __builtin_trap();
            if (rc == SP_AQ_MERGED && sp_alertq_len(q) != before_len)
                __builtin_trap();
            if ((rc == SP_AQ_DUPLICATE || rc == SP_AQ_FILTERED || rc == SP_AQ_DROPPED) &&
                sp_alertq_len(q) != before_len)
                __builtin_trap();
            break;
        }
        case 3:
            if (sp_alertq_replay(q, &a, now, NULL) < 0)
                __builtin_trap();
            break;
        case 4:
        case 5: {
            sp_aq_tick_t t;
            if (sp_alertq_tick(q, now, &t) != 0)
                __builtin_trap();
            if (t.show) {
                if (sp_alertq_paused(q) || !sp_alertq_showing(q))
                    __builtin_trap();
                if (sp_alertq_len(q) + 1 != before_len)
                    __builtin_trap();
                for (size_t k = 0; k < n_shown; k++)
                    if (shown_keys[k] == t.entry.key)
                        __builtin_trap(); /* a key is shown at most once */
                if (n_shown < 1024)
                    shown_keys[n_shown++] = t.entry.key;
                if (n_rows < 16) {
                    rows[n_rows] = t.entry;
                    rshown[n_rows++] = true;
                }
                if (t.next_due_ms != now + t.duration_ms)
                    __builtin_trap();
            } else if (t.next_due_ms != -1 && t.next_due_ms < now) {
                __builtin_trap();
            }
            break;
        }
        case 6:
            if (a1 & 1)
                sp_alertq_pause(q);
            else
                sp_alertq_resume(q);
            last_paused = a1 & 1;
            if (sp_alertq_paused(q) != last_paused)
                __builtin_trap();
            break;
        case 7: {
            bool was = sp_alertq_showing(q);
            int rc = sp_alertq_skip(q, now);
            if ((rc == 0) != was || sp_alertq_showing(q))
                __builtin_trap();
            if (a1 & 1) {
                if (sp_alertq_clear(q) != before_len || sp_alertq_len(q) != 0)
                    __builtin_trap();
            }
            break;
        }
        default: {
            /* snapshot the waiting entries into the restore rows, then restore a new queue */
            for (size_t k = 0; k < sp_alertq_len(q) && n_rows < 16; k++) {
                rows[n_rows] = *sp_alertq_peek(q, k);
                rshown[n_rows++] = false;
            }
            sp_alertq_t *r = sp_alertq_new(&o);
            if (r == NULL)
                __builtin_trap();
            int rc = sp_alertq_restore(r, rows, rshown, n_rows, now);
            if (rc != 0 && rc != SP_ENOMEM)
                __builtin_trap();
            size_t unshown = 0;
            for (size_t k = 0; k < n_rows; k++)
                unshown += !rshown[k];
            if (rc == 0 && sp_alertq_len(r) > (unshown < o.capacity ? unshown : o.capacity))
                __builtin_trap();
            check(r, o.capacity);
            sp_alertq_free(r);
            n_rows = 0;
            break;
        }
        }
        check(q, o.capacity);
    }
    sp_alertq_free(q);
    return 0;
}
