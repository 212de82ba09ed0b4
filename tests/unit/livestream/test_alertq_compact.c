/* sp_alertq's compact entries (strings packed once) and its growing dedupe ring. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_alertq.h"

/* a string of n bytes: 'a'..'z' repeating, so a cut or a shifted offset shows */
static void fill(char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)('a' + i % 26);
    dst[n] = '\0';
}

static sp_aq_alert_t full_alert(const char *id)
{
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    a.type = SP_AQ_DONATION;
    snprintf(a.id, sizeof(a.id), "%s", id);
    fill(a.platform, SP_AQ_PLATFORM_CAP - 1);
    fill(a.name, SP_AQ_NAME_CAP - 1);
    fill(a.currency, SP_AQ_CURRENCY_CAP - 1);
    fill(a.message, SP_AQ_MESSAGE_CAP - 1);
    a.has_message = true;
    a.has_amount = true;
    a.amount = 12.5;
    a.has_count = true;
    a.count = 7;
    a.tier = 2;
    a.ts = 1733370000123;
    return a;
}

static sp_alertq_t *newq(size_t dedupe)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.dedupe_n = dedupe;
    o.gap_ms = 0;
    sp_alertq_t *q = sp_alertq_new(&o);
    cr_assert_not_null(q);
    return q;
}

Test(alertq_compact, every_field_at_its_cap_survives_storage)
{
    sp_alertq_t *q = newq(1024);
    sp_aq_alert_t a = full_alert("max-1");
    uint64_t key = 0;
    cr_assert_eq(sp_alertq_push(q, &a, 10, &key), SP_AQ_QUEUED);
    sp_aq_entry_t *e = malloc(sizeof(*e));
    cr_assert_not_null(e);
    cr_assert(sp_alertq_get(q, key, e));
    cr_assert_eq(e->key, key);
    cr_assert_str_eq(e->alert.id, "max-1");
    cr_assert_str_eq(e->alert.platform, a.platform);
    cr_assert_str_eq(e->alert.name, a.name);
    cr_assert_str_eq(e->alert.currency, a.currency);
    cr_assert_str_eq(e->alert.message, a.message);
    cr_assert_eq(strlen(e->alert.message), SP_AQ_MESSAGE_CAP - 1);
    cr_assert(e->alert.has_message && e->alert.has_amount && e->alert.has_count);
    cr_assert_eq(e->alert.amount, 12.5);
    cr_assert_eq(e->alert.count, 7);
    cr_assert_eq(e->alert.tier, 2);
    cr_assert_eq(e->alert.ts, 1733370000123);
    cr_assert_eq(e->alert.type, SP_AQ_DONATION);
    cr_assert_eq(e->n_names, 0);
    cr_assert_not(sp_alertq_get(q, key + 1, NULL), "no such key");
    cr_assert(sp_alertq_get(q, key, NULL));
    /* the tick hands out the same entry */
    sp_aq_tick_t *t = malloc(sizeof(*t));
    cr_assert_not_null(t);
    cr_assert_eq(sp_alertq_tick(q, 20, t), 0);
    cr_assert(t->show);
    cr_assert_str_eq(t->entry.alert.message, a.message);
    cr_assert_str_eq(t->entry.alert.name, a.name);
    cr_assert_not(sp_alertq_get(q, key, NULL), "shown: no longer waiting");
    free(t);
    free(e);
    sp_alertq_free(q);
}

Test(alertq_compact, merged_follow_names_grow_the_entry_in_order)
{
    sp_alertq_t *q = newq(1024);
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    a.type = SP_AQ_FOLLOW;
    snprintf(a.platform, sizeof(a.platform), "twitch");
    uint64_t first = 0, key = 0;
    for (int i = 0; i < 8; i++) {
        snprintf(a.id, sizeof(a.id), "f%d", i);
        fill(a.name, SP_AQ_NAME_CAP - 1 - (size_t)i); /* long names, each a different length */
        int rc = sp_alertq_push(q, &a, 100 + i, &key);
        cr_assert_eq(rc, i == 0 ? SP_AQ_QUEUED : SP_AQ_MERGED);
        if (i == 0)
            first = key;
        cr_assert_eq(key, first);
    }
    const sp_aq_entry_t *e = sp_alertq_find(q, first);
    cr_assert_not_null(e);
    cr_assert_eq(e->alert.count, 8);
    cr_assert_eq(e->n_names, SP_AQ_NAMES_MAX);
    for (size_t i = 0; i < SP_AQ_NAMES_MAX; i++)
        cr_assert_eq(strlen(e->names[i]), SP_AQ_NAME_CAP - 1 - i, "name %zu", i);
    cr_assert_eq(strlen(e->alert.name), SP_AQ_NAME_CAP - 1, "the first name stays the name");
    /* a restore of that entry keeps the names and their order */
    sp_aq_entry_t *row = malloc(sizeof(*row));
    cr_assert_not_null(row);
    *row = *e;
    bool shown = false;
    sp_alertq_t *r = newq(1024);
    cr_assert_eq(sp_alertq_restore(r, row, &shown, 1, 500), 0);
    const sp_aq_entry_t *g = sp_alertq_peek(r, 0);
    cr_assert_not_null(g);
    cr_assert_eq(g->key, first);
    cr_assert_eq(g->n_names, SP_AQ_NAMES_MAX);
    for (size_t i = 0; i < SP_AQ_NAMES_MAX; i++)
        cr_assert_str_eq(g->names[i], row->names[i]);
    /* a row whose name is not terminated is refused whole */
    memset(row->names[2], 'x', SP_AQ_NAME_CAP);
    sp_alertq_t *bad = newq(1024);
    cr_assert_eq(sp_alertq_restore(bad, row, &shown, 1, 500), SP_EINVAL);
    cr_assert_eq(sp_alertq_len(bad), 0);
    sp_alertq_free(bad);
    free(row);
    sp_alertq_free(r);
    sp_alertq_free(q);
}

/* The dedupe ring starts small and grows: still exactly the last dedupe_n ids. */
static void dedupe_window(size_t n)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.dedupe_n = n;
    o.capacity = 4096;
    o.merge_window_ms = 0;
    sp_alertq_t *q = sp_alertq_new(&o);
    cr_assert_not_null(q);
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    a.type = SP_AQ_RAID;
    snprintf(a.platform, sizeof(a.platform), "twitch");
    size_t total = n + 37;
    for (size_t i = 0; i < total; i++) {
        snprintf(a.id, sizeof(a.id), "id-%zu", i);
        cr_assert_eq(sp_alertq_push(q, &a, 1, NULL), SP_AQ_QUEUED, "id %zu", i);
    }
    /* the last n are remembered; the 37 before them are forgotten */
    for (size_t i = total - n; i < total; i++) {
        snprintf(a.id, sizeof(a.id), "id-%zu", i);
        cr_assert_eq(sp_alertq_push(q, &a, 2, NULL), SP_AQ_DUPLICATE, "n=%zu id %zu", n, i);
    }
    snprintf(a.id, sizeof(a.id), "id-%zu", total - n - 1);
    cr_assert_eq(sp_alertq_push(q, &a, 3, NULL), SP_AQ_QUEUED, "n=%zu: forgotten", n);
    sp_alertq_free(q);
}

Test(alertq_compact, dedupe_ring_grows_and_keeps_the_last_n_ids)
{
    dedupe_window(1);
    dedupe_window(5);
    dedupe_window(16);
    dedupe_window(17);
    dedupe_window(1024);
    dedupe_window(3000);
}
