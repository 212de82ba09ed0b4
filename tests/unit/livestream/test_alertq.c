#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_alertq.h"

static sp_aq_alert_t mk(sp_aq_type_t t, const char *id, const char *name)
{
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    a.type = t;
    snprintf(a.id, sizeof(a.id), "%s", id);
    snprintf(a.platform, sizeof(a.platform), "twitch");
    snprintf(a.name, sizeof(a.name), "%s", name);
    return a;
}

static sp_aq_alert_t money(sp_aq_type_t t, const char *id, double amount)
{
    sp_aq_alert_t a = mk(t, id, "donor");
    a.has_amount = true;
    a.amount = amount;
    snprintf(a.currency, sizeof(a.currency), "%s", t == SP_AQ_CHEER ? "bits" : "USD");
    return a;
}

static sp_alertq_t *newq(size_t cap, int64_t window)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.capacity = cap;
    o.merge_window_ms = window;
    sp_alertq_t *q = sp_alertq_new(&o);
    cr_assert_not_null(q);
    return q;
}

static void check_invariant(const sp_alertq_t *q)
{
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.accepted - s.merged + s.replayed + s.restored,
                 sp_alertq_len(q) + s.shown + s.dropped + s.cleared);
}

static int push(sp_alertq_t *q, sp_aq_alert_t a, int64_t now)
{
    return sp_alertq_push(q, &a, now, NULL);
}

Test(alertq, options_and_input_checked)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    cr_assert_eq(o.capacity, 50);
    o.capacity = 0;
    cr_assert_null(sp_alertq_new(&o));
    sp_alertq_opts_default(&o);
    o.priority[SP_AQ_RAID] = -1;
    cr_assert_null(sp_alertq_new(&o));
    sp_alertq_t *q = newq(4, 0);
    sp_aq_alert_t a = mk(SP_AQ_FOLLOW, "", "x");
    cr_assert_eq(sp_alertq_push(q, &a, 0, NULL), SP_EINVAL); /* empty id */
    a = mk(8, "id", "x");
    cr_assert_eq(sp_alertq_push(q, &a, 0, NULL), SP_EINVAL);
    a = money(SP_AQ_DONATION, "id", -1);
    cr_assert_eq(sp_alertq_push(q, &a, 0, NULL), SP_EINVAL);
    a = mk(SP_AQ_SUBSCRIPTION, "id", "x");
    a.tier = 4;
    cr_assert_eq(sp_alertq_push(q, &a, 0, NULL), SP_EINVAL);
    a.tier = 0;
    memset(a.name, 'n', sizeof(a.name)); /* unterminated */
    cr_assert_eq(sp_alertq_push(q, &a, 0, NULL), SP_EINVAL);
    cr_assert_eq(sp_alertq_len(q), 0);
    cr_assert_str_eq(sp_aq_type_name(SP_AQ_GIFT_SUBSCRIPTION), "gift_subscription");
    cr_assert_null(sp_aq_type_name(SP_AQ_TYPE_COUNT));
    sp_alertq_free(q);
}

Test(alertq, duplicates_refused_also_after_shown)
{
    sp_alertq_t *q = newq(10, 0);
    uint64_t k1 = 0, k2 = 0;
    sp_aq_alert_t a = mk(SP_AQ_RAID, "ev1", "r");
    cr_assert_eq(sp_alertq_push(q, &a, 0, &k1), SP_AQ_QUEUED);
    cr_assert_neq(k1, 0);
    cr_assert_eq(sp_alertq_push(q, &a, 1, &k2), SP_AQ_DUPLICATE);
    sp_aq_tick_t t;
    sp_alertq_tick(q, 10, &t);
    cr_assert(t.show);
    cr_assert_eq(t.entry.key, k1);
    cr_assert_eq(sp_alertq_push(q, &a, 20, NULL), SP_AQ_DUPLICATE); /* shown: still refused */
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.duplicates, 2);
    cr_assert_eq(s.accepted, 1);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, dedupe_memory_is_bounded)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.dedupe_n = 3;
    o.capacity = 100;
    sp_alertq_t *q = sp_alertq_new(&o);
    char id[32];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "e%d", i);
        cr_assert_eq(push(q, mk(SP_AQ_RAID, id, "r"), i), SP_AQ_QUEUED);
    }
    /* e0 fell out of the last 3; e1..e3 are remembered */
    cr_assert_eq(push(q, mk(SP_AQ_RAID, "e3", "r"), 9), SP_AQ_DUPLICATE);
    cr_assert_eq(push(q, mk(SP_AQ_RAID, "e1", "r"), 9), SP_AQ_DUPLICATE);
    cr_assert_eq(push(q, mk(SP_AQ_RAID, "e0", "r"), 9), SP_AQ_QUEUED);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, minimums_filter)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.min_cheer_bits = 100;
    o.min_amount = 1.0;
    sp_alertq_t *q = sp_alertq_new(&o);
    cr_assert_eq(push(q, money(SP_AQ_CHEER, "c1", 99), 0), SP_AQ_FILTERED);
    cr_assert_eq(push(q, money(SP_AQ_CHEER, "c2", 100), 0), SP_AQ_QUEUED);
    cr_assert_eq(push(q, money(SP_AQ_DONATION, "d1", 0.99), 0), SP_AQ_FILTERED);
    cr_assert_eq(push(q, money(SP_AQ_DONATION, "d2", 1.0), 0), SP_AQ_QUEUED);
    cr_assert_eq(push(q, money(SP_AQ_SUPER_CHAT, "s1", 0.5), 0), SP_AQ_FILTERED);
    cr_assert_eq(push(q, mk(SP_AQ_DONATION, "d3", "no amount"), 0), SP_AQ_FILTERED);
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "f1", "x"), 0), SP_AQ_QUEUED); /* no minimum */
    /* a filtered id was not accepted: a later valid redelivery is not a duplicate */
    cr_assert_eq(push(q, money(SP_AQ_CHEER, "c1", 500), 0), SP_AQ_QUEUED);
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.filtered, 4);
    cr_assert_eq(s.accepted, 4);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, follows_merge_with_names_capped)
{
    sp_alertq_t *q = newq(50, 5000);
    char id[32], name[32];
    uint64_t first = 0, k = 0;
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "f%d", i);
        snprintf(name, sizeof(name), "viewer%d", i);
        sp_aq_alert_t a = mk(SP_AQ_FOLLOW, id, name);
        int rc = sp_alertq_push(q, &a, 1000 + i * 100, &k);
        cr_assert_eq(rc, i == 0 ? SP_AQ_QUEUED : SP_AQ_MERGED);
        if (i == 0)
            first = k;
        cr_assert_eq(k, first);
    }
    cr_assert_eq(sp_alertq_len(q), 1);
    const sp_aq_entry_t *e = sp_alertq_find(q, first);
    cr_assert_not_null(e);
    cr_assert_eq(e->alert.count, 12);
    cr_assert_eq(e->n_names, SP_AQ_NAMES_MAX);
    cr_assert_str_eq(e->names[0], "viewer0");
    cr_assert_str_eq(e->names[4], "viewer4");
    cr_assert_str_eq(e->alert.name, "viewer0");
    /* another platform does not merge */
    sp_aq_alert_t y = mk(SP_AQ_FOLLOW, "y1", "yt");
    snprintf(y.platform, sizeof(y.platform), "youtube");
    cr_assert_eq(sp_alertq_push(q, &y, 2000, NULL), SP_AQ_QUEUED);
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.merged, 11);
    cr_assert_eq(s.accepted, 13);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, merge_window_edges)
{
    sp_alertq_t *q = newq(50, 5000);
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "a", "a"), 1000), SP_AQ_QUEUED);
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "b", "b"), 6000), SP_AQ_MERGED);  /* exactly window */
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "c", "c"), 6001), SP_AQ_QUEUED);  /* window + 1 */
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "d", "d"), 6002), SP_AQ_MERGED);  /* into "c" */
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "e", "e"), 500), SP_AQ_QUEUED);   /* clock behind */
    cr_assert_eq(sp_alertq_len(q), 3);
    cr_assert_eq(sp_alertq_peek(q, 0)->alert.count, 2);
    cr_assert_str_eq(sp_alertq_peek(q, 1)->alert.name, "c");
    cr_assert_eq(sp_alertq_peek(q, 1)->alert.count, 2);
    /* window 0: never merge */
    sp_alertq_t *z = newq(50, 0);
    cr_assert_eq(push(z, mk(SP_AQ_FOLLOW, "a", "a"), 1000), SP_AQ_QUEUED);
    cr_assert_eq(push(z, mk(SP_AQ_FOLLOW, "b", "b"), 1000), SP_AQ_QUEUED);
    /* a showing entry is no longer waiting: no merge into it */
    sp_aq_tick_t t;
    sp_alertq_t *w = newq(50, 5000);
    cr_assert_eq(push(w, mk(SP_AQ_FOLLOW, "a", "a"), 1000), SP_AQ_QUEUED);
    sp_alertq_tick(w, 1000, &t);
    cr_assert(t.show);
    cr_assert_eq(push(w, mk(SP_AQ_FOLLOW, "b", "b"), 1001), SP_AQ_QUEUED);
    check_invariant(q);
    check_invariant(z);
    check_invariant(w);
    sp_alertq_free(q);
    sp_alertq_free(z);
    sp_alertq_free(w);
}

Test(alertq, gift_bomb_counts_add_per_gifter)
{
    sp_alertq_t *q = newq(50, 5000);
    sp_aq_alert_t g = mk(SP_AQ_GIFT_SUBSCRIPTION, "g1", "gifter");
    g.has_count = true;
    g.count = 20;
    g.tier = 1;
    cr_assert_eq(sp_alertq_push(q, &g, 0, NULL), SP_AQ_QUEUED);
    snprintf(g.id, sizeof(g.id), "g2");
    g.count = 30;
    cr_assert_eq(sp_alertq_push(q, &g, 10, NULL), SP_AQ_MERGED);
    snprintf(g.id, sizeof(g.id), "g3");
    g.has_count = false; /* one gift */
    cr_assert_eq(sp_alertq_push(q, &g, 20, NULL), SP_AQ_MERGED);
    sp_aq_alert_t o = mk(SP_AQ_GIFT_SUBSCRIPTION, "o1", "other");
    cr_assert_eq(sp_alertq_push(q, &o, 30, NULL), SP_AQ_QUEUED);
    cr_assert_eq(sp_alertq_len(q), 2);
    cr_assert_eq(sp_alertq_peek(q, 0)->alert.count, 51);
    cr_assert_eq(sp_alertq_peek(q, 1)->alert.count, 1);
    /* subscriptions and raids never merge */
    cr_assert_eq(push(q, mk(SP_AQ_SUBSCRIPTION, "s1", "gifter"), 40), SP_AQ_QUEUED);
    cr_assert_eq(push(q, mk(SP_AQ_SUBSCRIPTION, "s2", "gifter"), 40), SP_AQ_QUEUED);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, order_priority_then_arrival)
{
    sp_alertq_t *q = newq(50, 0);
    push(q, mk(SP_AQ_FOLLOW, "1", "f"), 0);
    push(q, mk(SP_AQ_MEMBER, "2", "m"), 0);
    push(q, mk(SP_AQ_SUBSCRIPTION, "3", "s"), 0);
    push(q, mk(SP_AQ_RAID, "4", "r"), 0);
    push(q, money(SP_AQ_DONATION, "5", 5), 0);
    push(q, mk(SP_AQ_GIFT_SUBSCRIPTION, "6", "g"), 0);
    push(q, money(SP_AQ_CHEER, "7", 100), 0);
    push(q, money(SP_AQ_SUPER_CHAT, "8", 2), 0);
    const char *want[] = { "5", "7", "8", "4", "3", "6", "2", "1" };
    int64_t now = 0;
    for (int i = 0; i < 8; i++) {
        sp_aq_tick_t t;
        sp_alertq_tick(q, now, &t);
        cr_assert(t.show, "tick %d", i);
        cr_assert_str_eq(t.entry.alert.id, want[i]);
        now += t.duration_ms + t.gap_ms;
    }
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, priority_configurable)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.priority[SP_AQ_FOLLOW] = 999;
    sp_alertq_t *q = sp_alertq_new(&o);
    push(q, money(SP_AQ_DONATION, "d", 5), 0);
    push(q, mk(SP_AQ_FOLLOW, "f", "f"), 1);
    cr_assert_str_eq(sp_alertq_peek(q, 0)->alert.id, "f");
    cr_assert_str_eq(sp_alertq_peek(q, 1)->alert.id, "d");
    cr_assert_null(sp_alertq_peek(q, 2));
    sp_alertq_free(q);
}

Test(alertq, full_drops_oldest_lowest_never_higher)
{
    sp_alertq_t *q = newq(3, 0);
    push(q, mk(SP_AQ_FOLLOW, "f1", "a"), 0);
    push(q, mk(SP_AQ_FOLLOW, "f2", "b"), 1);
    push(q, mk(SP_AQ_RAID, "r1", "c"), 2);
    /* a raid in a full queue evicts the oldest follow */
    cr_assert_eq(push(q, mk(SP_AQ_RAID, "r2", "d"), 3), SP_AQ_QUEUED);
    cr_assert_null(sp_alertq_peek(q, 3));
    cr_assert_str_eq(sp_alertq_peek(q, 2)->alert.id, "f2");
    /* same priority as the lowest: the oldest of it goes, the newcomer stays */
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "f3", "e"), 4), SP_AQ_QUEUED);
    cr_assert_str_eq(sp_alertq_peek(q, 2)->alert.id, "f3");
    /* lower than everything waiting: the newcomer is dropped, a raid is never evicted */
    push(q, mk(SP_AQ_RAID, "r3", "f"), 5);
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "f4", "g"), 6), SP_AQ_DROPPED);
    cr_assert_eq(sp_alertq_len(q), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sp_alertq_peek(q, i)->alert.type, SP_AQ_RAID);
    /* the dropped one was accepted: a redelivery is a duplicate */
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "f4", "g"), 7), SP_AQ_DUPLICATE);
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.dropped, 4); /* f1, f2, f3, f4 */
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, flood_of_10000_keeps_highest)
{
    sp_alertq_t *q = newq(50, 0);
    char id[32];
    int n_money = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "ev%d", i);
        sp_aq_type_t t = (sp_aq_type_t)(i % SP_AQ_TYPE_COUNT);
        sp_aq_alert_t a = (t == SP_AQ_CHEER || t == SP_AQ_DONATION || t == SP_AQ_SUPER_CHAT)
                              ? money(t, id, 5)
                              : mk(t, id, "x");
        int rc = sp_alertq_push(q, &a, i, NULL);
        cr_assert(rc == SP_AQ_QUEUED || rc == SP_AQ_DROPPED);
        n_money += (t == SP_AQ_CHEER || t == SP_AQ_DONATION || t == SP_AQ_SUPER_CHAT);
        cr_assert_leq(sp_alertq_len(q), 50);
    }
    cr_assert_eq(sp_alertq_len(q), 50);
    /* only the top priority is left, and the newest of it (oldest dropped first) */
    int64_t prev = -1;
    for (int i = 0; i < 50; i++) {
        const sp_aq_entry_t *e = sp_alertq_peek(q, i);
        cr_assert(e->alert.type == SP_AQ_CHEER || e->alert.type == SP_AQ_DONATION ||
                  e->alert.type == SP_AQ_SUPER_CHAT);
        cr_assert_gt(e->seq, prev);
        prev = e->seq;
    }
    /* the 50 newest money alerts: 3 of every 8 pushes; the newest is ev9999 (donation) */
    cr_assert_str_eq(sp_alertq_peek(q, 49)->alert.id, "ev9999");
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.accepted, 10000);
    cr_assert_eq(s.dropped, 10000 - 50);
    cr_assert_eq(n_money, 3750);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, pacing_one_at_a_time_with_gap)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.duration_ms[SP_AQ_RAID] = 3000;
    o.gap_ms = 500;
    sp_alertq_t *q = sp_alertq_new(&o);
    sp_aq_tick_t t;
    sp_alertq_tick(q, 0, &t);
    cr_assert_not(t.show);
    cr_assert_eq(t.next_due_ms, -1); /* idle */
    push(q, mk(SP_AQ_RAID, "r1", "a"), 0);
    push(q, mk(SP_AQ_RAID, "r2", "b"), 0);
    sp_alertq_tick(q, 100, &t);
    cr_assert(t.show);
    cr_assert_str_eq(t.entry.alert.id, "r1");
    cr_assert_eq(t.duration_ms, 3000);
    cr_assert_eq(t.gap_ms, 500);
    cr_assert_eq(t.next_due_ms, 3100);
    cr_assert(sp_alertq_showing(q));
    sp_alertq_tick(q, 3099, &t);
    cr_assert_not(t.show);
    sp_alertq_tick(q, 3100, &t); /* ends; the gap runs until 3600 */
    cr_assert_not(t.show);
    cr_assert_not(sp_alertq_showing(q));
    cr_assert_eq(t.next_due_ms, 3600);
    sp_alertq_tick(q, 3599, &t);
    cr_assert_not(t.show);
    sp_alertq_tick(q, 3600, &t);
    cr_assert(t.show);
    cr_assert_str_eq(t.entry.alert.id, "r2");
    /* a late tick: the gap counts from the scheduled end, not from the tick */
    sp_alertq_tick(q, 9000, &t);
    cr_assert_not(t.show);
    cr_assert_eq(t.next_due_ms, -1);
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.shown, 2);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, pause_resume_skip_clear)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.gap_ms = 100;
    sp_alertq_t *q = sp_alertq_new(&o);
    sp_aq_tick_t t;
    push(q, mk(SP_AQ_RAID, "r1", "a"), 0);
    push(q, mk(SP_AQ_RAID, "r2", "b"), 0);
    push(q, mk(SP_AQ_RAID, "r3", "c"), 0);
    sp_alertq_pause(q);
    cr_assert(sp_alertq_paused(q));
    sp_alertq_tick(q, 0, &t);
    cr_assert_not(t.show);
    cr_assert_eq(t.next_due_ms, -1);
    sp_alertq_resume(q);
    sp_alertq_tick(q, 0, &t);
    cr_assert(t.show);
    cr_assert_eq(sp_alertq_skip(q, 0), 0);
    cr_assert_not(sp_alertq_showing(q));
    cr_assert_eq(sp_alertq_skip(q, 1), SP_ENOTFOUND); /* nothing showing */
    sp_alertq_tick(q, 99, &t); /* gap from the skip */
    cr_assert_not(t.show);
    cr_assert_eq(t.next_due_ms, 100);
    sp_alertq_tick(q, 100, &t);
    cr_assert(t.show);
    cr_assert_str_eq(t.entry.alert.id, "r2");
    sp_alertq_pause(q); /* the one on screen plays out */
    cr_assert(sp_alertq_showing(q));
    cr_assert_eq(sp_alertq_clear(q), 1);
    cr_assert_eq(sp_alertq_len(q), 0);
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.cleared, 1);
    cr_assert_eq(s.shown, 2);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, replay_front_of_its_priority_not_deduped)
{
    sp_alertq_t *q = newq(10, 0);
    push(q, mk(SP_AQ_RAID, "r1", "a"), 0);
    push(q, mk(SP_AQ_RAID, "r2", "b"), 0);
    push(q, money(SP_AQ_DONATION, "d1", 3), 0);
    sp_aq_alert_t old = mk(SP_AQ_RAID, "r1", "a"); /* same id as a queued one */
    uint64_t k = 0;
    cr_assert_eq(sp_alertq_replay(q, &old, 1, &k), SP_AQ_QUEUED);
    cr_assert_neq(k, 0);
    cr_assert_eq(sp_alertq_replay(q, &old, 2, NULL), SP_AQ_QUEUED); /* again: not deduped */
    cr_assert_str_eq(sp_alertq_peek(q, 0)->alert.id, "d1");
    cr_assert(sp_alertq_peek(q, 1)->replay);
    cr_assert(sp_alertq_peek(q, 2)->replay);
    cr_assert_str_eq(sp_alertq_peek(q, 3)->alert.id, "r1");
    cr_assert_not(sp_alertq_peek(q, 3)->replay);
    /* a replayed follow is not merged and not filtered */
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.min_cheer_bits = 100;
    sp_alertq_t *z = sp_alertq_new(&o);
    sp_aq_alert_t c = money(SP_AQ_CHEER, "c", 1);
    cr_assert_eq(sp_alertq_replay(z, &c, 0, NULL), SP_AQ_QUEUED);
    sp_aq_stats_t s;
    sp_alertq_stats(q, &s);
    cr_assert_eq(s.replayed, 2);
    check_invariant(q);
    check_invariant(z);
    sp_alertq_free(q);
    sp_alertq_free(z);
}

Test(alertq, restore_requeues_unshown_in_order)
{
    sp_alertq_t *q = newq(10, 5000);
    uint64_t k[4];
    push(q, mk(SP_AQ_RAID, "r1", "a"), 0);
    sp_alertq_push(q, &(sp_aq_alert_t){ 0 }, 0, NULL); /* invalid: ignored */
    sp_aq_alert_t a;
    a = mk(SP_AQ_RAID, "r2", "b");
    sp_alertq_push(q, &a, 0, &k[1]);
    a = mk(SP_AQ_FOLLOW, "f1", "c");
    sp_alertq_push(q, &a, 0, &k[2]);
    a = mk(SP_AQ_FOLLOW, "f2", "d");
    sp_alertq_push(q, &a, 1, &k[3]); /* merged into f1 */
    cr_assert_eq(k[3], k[2]);
    sp_aq_tick_t t;
    sp_alertq_tick(q, 0, &t); /* shows r1 */
    cr_assert_str_eq(t.entry.alert.id, "r1");
    /* the caller's persisted rows: every accepted entry, shown flags */
    sp_aq_entry_t rows[3];
    bool shown[3] = { true, false, false };
    rows[0] = t.entry;
    rows[1] = *sp_alertq_find(q, k[1]);
    rows[2] = *sp_alertq_find(q, k[2]);
    sp_alertq_free(q);

    sp_alertq_t *r = newq(10, 5000); /* after kill -9 */
    cr_assert_eq(sp_alertq_restore(r, rows, shown, 3, 100000), 0);
    cr_assert_eq(sp_alertq_len(r), 2);
    cr_assert_str_eq(sp_alertq_peek(r, 0)->alert.id, "r2");
    cr_assert_eq(sp_alertq_peek(r, 0)->key, k[1]);
    cr_assert_eq(sp_alertq_peek(r, 1)->alert.count, 2);
    cr_assert_eq(sp_alertq_peek(r, 1)->n_names, 2);
    /* redeliveries of any of them, shown or not, stay duplicates */
    cr_assert_eq(push(r, mk(SP_AQ_RAID, "r1", "a"), 100001), SP_AQ_DUPLICATE);
    cr_assert_eq(push(r, mk(SP_AQ_FOLLOW, "f1", "c"), 100001), SP_AQ_DUPLICATE);
    /* new keys never collide with restored ones */
    uint64_t nk = 0;
    a = mk(SP_AQ_RAID, "r9", "z");
    sp_alertq_push(r, &a, 100002, &nk);
    cr_assert_gt(nk, k[2]);
    sp_aq_stats_t s;
    sp_alertq_stats(r, &s);
    cr_assert_eq(s.restored, 2);
    check_invariant(r);
    /* bad rows change nothing */
    rows[1].key = 0;
    cr_assert_eq(sp_alertq_restore(r, rows, shown, 3, 0), SP_EINVAL);
    cr_assert_eq(sp_alertq_len(r), 3);
    sp_alertq_free(r);
}

Test(alertq, copy_utf8_cuts_at_boundary)
{
    char out[5];
    const char *s = "ab\xc3\xa9\xc3\xa9"; /* ab + 2x e-acute */
    cr_assert_eq(sp_aq_copy_utf8(out, sizeof(out), s, strlen(s)), 4);
    cr_assert_str_eq(out, "ab\xc3\xa9");
    char o2[4];
    cr_assert_eq(sp_aq_copy_utf8(o2, sizeof(o2), s, strlen(s)), 2);
    cr_assert_str_eq(o2, "ab");
    cr_assert_eq(sp_aq_copy_utf8(o2, sizeof(o2), "xy", 2), 2);
}

Test(alertq, last_evicted_names_the_dropped_entry)
{
    sp_alertq_t *q = newq(2, 0);
    uint64_t k1 = 0, k2 = 0, k3 = 0;
    sp_aq_alert_t a = mk(SP_AQ_SUBSCRIPTION, "s1", "a"), b = mk(SP_AQ_SUBSCRIPTION, "s2", "b");
    sp_aq_alert_t c = mk(SP_AQ_SUBSCRIPTION, "s3", "c"), f = mk(SP_AQ_FOLLOW, "f1", "f");
    cr_assert_eq(sp_alertq_push(q, &a, 0, &k1), SP_AQ_QUEUED);
    cr_assert_eq(sp_alertq_last_evicted(q), 0);
    cr_assert_eq(sp_alertq_push(q, &b, 1, &k2), SP_AQ_QUEUED);
    cr_assert_eq(sp_alertq_push(q, &c, 2, &k3), SP_AQ_QUEUED);
    cr_assert_eq(sp_alertq_last_evicted(q), k1, "the oldest of the lowest priority");
    cr_assert_null(sp_alertq_find(q, k1));
    cr_assert_eq(sp_alertq_push(q, &f, 3, NULL), SP_AQ_DROPPED);
    cr_assert_eq(sp_alertq_last_evicted(q), 0, "the new alert itself was dropped");
    cr_assert_eq(sp_alertq_push(q, &f, 4, NULL), SP_AQ_DUPLICATE);
    cr_assert_eq(sp_alertq_last_evicted(q), 0);
    check_invariant(q);
    sp_alertq_free(q);
}

Test(alertq, set_opts_reorders_and_repaces)
{
    sp_alertq_t *q = newq(10, 0);
    cr_assert_eq(push(q, mk(SP_AQ_FOLLOW, "f1", "f"), 0), SP_AQ_QUEUED);
    cr_assert_eq(push(q, mk(SP_AQ_RAID, "r1", "r"), 0), SP_AQ_QUEUED);
    cr_assert_str_eq(sp_alertq_peek(q, 0)->alert.id, "r1");
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.capacity = 10;
    o.merge_window_ms = 0;
    o.priority[SP_AQ_FOLLOW] = 900;
    o.duration_ms[SP_AQ_FOLLOW] = 1234;
    o.gap_ms = 0;
    cr_assert_eq(sp_alertq_set_opts(q, &o), 0);
    cr_assert_str_eq(sp_alertq_peek(q, 0)->alert.id, "f1");
    sp_aq_tick_t t;
    cr_assert_eq(sp_alertq_tick(q, 10, &t), 0);
    cr_assert(t.show);
    cr_assert_eq(t.duration_ms, 1234);
    cr_assert_eq(t.gap_ms, 0);
    o.capacity = 11; /* capacity and dedupe_n cannot change */
    cr_assert_eq(sp_alertq_set_opts(q, &o), SP_EINVAL);
    o.capacity = 10;
    o.priority[SP_AQ_RAID] = 1001;
    cr_assert_eq(sp_alertq_set_opts(q, &o), SP_EINVAL);
    cr_assert_eq(sp_alertq_set_opts(NULL, &o), SP_EINVAL);
    sp_alertq_free(q);
}
