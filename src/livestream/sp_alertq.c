#include "livestream/sp_alertq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"

struct sp_alertq {
    sp_aq_opts_t o;
    sp_aq_entry_t **slot;            /* capacity pointers; [0, len) used, unordered */
    size_t len;
    uint64_t *seen;                  /* ring of id hashes (0 = empty) */
    size_t seen_next;
    size_t seen_len;                 /* ids in the ring (scans stop there) */
    int64_t next_seq, next_replay_seq;
    uint64_t next_key;
    bool paused, showing;
    int64_t show_until, gap_until;
    uint64_t evicted;                /* key evicted by the last push/replay (0 = none) */
    sp_aq_stats_t st;
};

static const char *const type_names[SP_AQ_TYPE_COUNT] = {
    "follow", "subscription", "gift_subscription", "cheer",
    "raid", "super_chat", "member", "donation",
};

const char *sp_aq_type_name(sp_aq_type_t t)
{
    return (unsigned)t < SP_AQ_TYPE_COUNT ? type_names[t] : NULL;
}

size_t sp_aq_copy_utf8(char *dst, size_t cap, const char *src, size_t len)
{
    if (cap == 0)
        return 0;
    size_t n = len < cap - 1 ? len : cap - 1;
    if (n < len) /* cut: back off continuation bytes to a sequence start */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

void sp_alertq_opts_default(sp_aq_opts_t *o)
{
    static const int prio[SP_AQ_TYPE_COUNT] = {
        [SP_AQ_DONATION] = 50, [SP_AQ_SUPER_CHAT] = 50, [SP_AQ_CHEER] = 50, [SP_AQ_RAID] = 40,
        [SP_AQ_SUBSCRIPTION] = 30, [SP_AQ_GIFT_SUBSCRIPTION] = 30, [SP_AQ_MEMBER] = 20,
        [SP_AQ_FOLLOW] = 10,
    };
    memset(o, 0, sizeof(*o));
    o->capacity = 50;
    o->dedupe_n = 1024;
    o->merge_window_ms = 5000;
    o->gap_ms = 1000;
    for (int i = 0; i < SP_AQ_TYPE_COUNT; i++) {
        o->duration_ms[i] = 5000;
        o->priority[i] = prio[i];
    }
    o->min_cheer_bits = 0;
    o->min_amount = 0;
}

static bool opts_ok(const sp_aq_opts_t *o)
{
    if (o->capacity < 1 || o->capacity > SP_AQ_CAPACITY_MAX)
        return false;
    if (o->dedupe_n < 1 || o->dedupe_n > SP_AQ_DEDUPE_MAX)
        return false;
    if (o->merge_window_ms < 0 || o->gap_ms < 0 || o->gap_ms > 3600000 ||
        o->merge_window_ms > 3600000)
        return false;
    for (int i = 0; i < SP_AQ_TYPE_COUNT; i++)
        if (o->duration_ms[i] < 0 || o->duration_ms[i] > 3600000 || o->priority[i] < 0 ||
            o->priority[i] > 1000)
            return false;
    if (o->min_cheer_bits < 0 || !(o->min_amount >= 0 && o->min_amount <= SP_AQ_AMOUNT_MAX))
        return false;
    return true;
}

sp_alertq_t *sp_alertq_new(const sp_aq_opts_t *o)
{
    if (o == NULL || !opts_ok(o))
        return NULL;
    sp_alertq_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->o = *o;
    q->slot = calloc(o->capacity, sizeof(*q->slot));
    q->seen = calloc(o->dedupe_n, sizeof(*q->seen));
    if (q->slot == NULL || q->seen == NULL)
        goto fail;
    q->next_seq = 1;
    q->next_replay_seq = -1;
    q->next_key = 1;
    return q;
fail:
    sp_alertq_free(q);
    return NULL;
}

int sp_alertq_set_opts(sp_alertq_t *q, const sp_aq_opts_t *o)
{
    if (q == NULL || o == NULL || !opts_ok(o) || o->capacity != q->o.capacity ||
        o->dedupe_n != q->o.dedupe_n)
        return SP_EINVAL;
    q->o = *o;
    return 0;
}

uint64_t sp_alertq_last_evicted(const sp_alertq_t *q)
{
    return q ? q->evicted : 0;
}

void sp_alertq_free(sp_alertq_t *q)
{
    if (q == NULL)
        return;
    if (q->slot != NULL)
        for (size_t i = 0; i < q->len; i++)
            free(q->slot[i]);
    free(q->slot);
    free(q->seen);
    free(q);
}

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ? h : 1;
}

static bool seen_has(const sp_alertq_t *q, uint64_t h)
{
    for (size_t i = 0; i < q->seen_len; i++)
        if (q->seen[i] == h)
            return true;
    return false;
}

static void seen_add(sp_alertq_t *q, uint64_t h)
{
    q->seen[q->seen_next] = h;
    q->seen_next = (q->seen_next + 1) % q->o.dedupe_n;
    if (q->seen_len < q->o.dedupe_n)
        q->seen_len++;
}

static bool str_ok(const char *s, size_t cap, bool nonempty)
{
    const char *z = memchr(s, '\0', cap);
    return z != NULL && (!nonempty || z != s);
}

static bool alert_ok(const sp_aq_alert_t *a)
{
    if (a == NULL || (unsigned)a->type >= SP_AQ_TYPE_COUNT)
        return false;
    if (!str_ok(a->id, sizeof(a->id), true) || !str_ok(a->platform, sizeof(a->platform), false) ||
        !str_ok(a->name, sizeof(a->name), false) ||
        !str_ok(a->currency, sizeof(a->currency), false) ||
        !str_ok(a->message, sizeof(a->message), false))
        return false;
    if (a->has_amount && !(a->amount >= 0 && a->amount <= SP_AQ_AMOUNT_MAX))
        return false;
    if (a->has_count && (a->count < 0 || a->count > SP_AQ_COUNT_MAX))
        return false;
    return a->tier >= 0 && a->tier <= 3;
}

/* true when x shows before y */
static bool before(const sp_alertq_t *q, const sp_aq_entry_t *x, const sp_aq_entry_t *y)
{
    int px = q->o.priority[x->alert.type], py = q->o.priority[y->alert.type];
    if (px != py)
        return px > py;
    return x->seq < y->seq;
}

static void remove_at(sp_alertq_t *q, size_t i)
{
    free(q->slot[i]);
    q->slot[i] = q->slot[--q->len];
    q->slot[q->len] = NULL;
}

/*
 * Makes room for one entry of type t when full. false: the newcomer itself is the victim
 * (strictly lower priority than everything waiting).
 */
static bool make_room(sp_alertq_t *q, sp_aq_type_t t)
{
    if (q->len < q->o.capacity)
        return true;
    size_t v = 0;
    for (size_t i = 1; i < q->len; i++) {
        int pi = q->o.priority[q->slot[i]->alert.type], pv = q->o.priority[q->slot[v]->alert.type];
        /* lowest priority; among those the oldest arrival (replays count as oldest) */
        if (pi < pv || (pi == pv && q->slot[i]->seq < q->slot[v]->seq))
            v = i;
    }
    if (q->o.priority[t] < q->o.priority[q->slot[v]->alert.type])
        return false;
    q->evicted = q->slot[v]->key;
    remove_at(q, v);
    q->st.dropped++;
    return true;
}

static int64_t count_of(const sp_aq_alert_t *a)
{
    return a->has_count ? a->count : 1;
}

static sp_aq_entry_t *merge_target(sp_alertq_t *q, const sp_aq_alert_t *a, int64_t now)
{
    if (q->o.merge_window_ms <= 0 ||
        (a->type != SP_AQ_FOLLOW && a->type != SP_AQ_GIFT_SUBSCRIPTION))
        return NULL;
    for (size_t i = 0; i < q->len; i++) {
        sp_aq_entry_t *e = q->slot[i];
        if (e->replay || e->alert.type != a->type || strcmp(e->alert.platform, a->platform) != 0)
            continue;
        if (now - e->first_ms > q->o.merge_window_ms || now < e->first_ms)
            continue;
        if (a->type == SP_AQ_GIFT_SUBSCRIPTION && strcmp(e->alert.name, a->name) != 0)
            continue;
        return e;
    }
    return NULL;
}

static bool filtered(const sp_alertq_t *q, const sp_aq_alert_t *a)
{
    double amt = a->has_amount ? a->amount : 0;
    if (a->type == SP_AQ_CHEER)
        return amt < (double)q->o.min_cheer_bits;
    if (a->type == SP_AQ_DONATION || a->type == SP_AQ_SUPER_CHAT)
        return amt < q->o.min_amount;
    return false;
}

/* Takes e (heap; freed when dropped). */
static int insert_owned(sp_alertq_t *q, sp_aq_entry_t *e, int64_t seq, uint64_t key,
                        uint64_t *key_out)
{
    if (!make_room(q, e->alert.type)) {
        free(e);
        q->st.dropped++;
        if (key_out != NULL)
            *key_out = 0;
        return SP_AQ_DROPPED;
    }
    e->seq = seq;
    e->key = key;
    q->slot[q->len++] = e;
    if (key_out != NULL)
        *key_out = key;
    return SP_AQ_QUEUED;
}

static int insert(sp_alertq_t *q, const sp_aq_entry_t *src, int64_t seq, uint64_t key,
                  uint64_t *key_out)
{
    sp_aq_entry_t *e = malloc(sizeof(*e));
    if (e == NULL)
        return SP_ENOMEM;
    *e = *src;
    return insert_owned(q, e, seq, key, key_out);
}

static void entry_from(sp_aq_entry_t *e, const sp_aq_alert_t *a, int64_t now)
{
    memset(e, 0, sizeof(*e));
    e->alert = *a;
    e->first_ms = now;
    if (a->type == SP_AQ_FOLLOW && a->name[0] != '\0') {
        memcpy(e->names[0], a->name, sizeof(e->names[0]));
        e->n_names = 1;
    }
}

int sp_alertq_push(sp_alertq_t *q, const sp_aq_alert_t *a, int64_t now_ms, uint64_t *key)
{
    if (q == NULL || !alert_ok(a))
        return SP_EINVAL;
    q->evicted = 0;
    if (key != NULL)
        *key = 0;
    uint64_t h = id_hash(a->id);
    if (seen_has(q, h)) {
        q->st.duplicates++;
        return SP_AQ_DUPLICATE;
    }
    if (filtered(q, a)) {
        q->st.filtered++;
        return SP_AQ_FILTERED;
    }
    sp_aq_entry_t *m = merge_target(q, a, now_ms);
    if (m != NULL) {
        int64_t c = count_of(&m->alert) + count_of(a);
        m->alert.count = c > SP_AQ_COUNT_MAX ? SP_AQ_COUNT_MAX : c;
        m->alert.has_count = true;
        if (a->type == SP_AQ_FOLLOW && a->name[0] != '\0' && m->n_names < SP_AQ_NAMES_MAX)
            memcpy(m->names[m->n_names++], a->name, sizeof(m->names[0]));
        seen_add(q, h);
        q->st.accepted++;
        q->st.merged++;
        if (key != NULL)
            *key = m->key;
        return SP_AQ_MERGED;
    }
    sp_aq_entry_t *e = malloc(sizeof(*e));
    if (e == NULL)
        return SP_ENOMEM;
    entry_from(e, a, now_ms);
    if (a->type == SP_AQ_FOLLOW || a->type == SP_AQ_GIFT_SUBSCRIPTION) {
        e->alert.has_count = true; /* merge-capable entries always carry their count */
        e->alert.count = count_of(a);
    }
    int rc = insert_owned(q, e, q->next_seq, q->next_key, key);
    q->next_seq++;
    if (rc == SP_AQ_QUEUED)
        q->next_key++;
    seen_add(q, h);
    q->st.accepted++;
    return rc;
}

int sp_alertq_replay(sp_alertq_t *q, const sp_aq_alert_t *a, int64_t now_ms, uint64_t *key)
{
    if (q == NULL || !alert_ok(a))
        return SP_EINVAL;
    q->evicted = 0;
    sp_aq_entry_t *e = malloc(sizeof(*e));
    if (e == NULL)
        return SP_ENOMEM;
    entry_from(e, a, now_ms);
    e->replay = true;
    int rc = insert_owned(q, e, q->next_replay_seq, q->next_key, key);
    q->next_replay_seq--;
    if (rc == SP_AQ_QUEUED)
        q->next_key++;
    q->st.replayed++;
    return rc;
}

int sp_alertq_restore(sp_alertq_t *q, const sp_aq_entry_t *entries, const bool *shown, size_t n,
                      int64_t now_ms)
{
    if (q == NULL || (n > 0 && (entries == NULL || shown == NULL)))
        return SP_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!alert_ok(&entries[i].alert) || entries[i].n_names > SP_AQ_NAMES_MAX ||
            entries[i].key == 0)
            return SP_EINVAL;
    int64_t nrep = 0; /* restored replays keep their order too: ascending negative seqs */
    for (size_t i = 0; i < n; i++)
        nrep += !shown[i] && entries[i].replay;
    int64_t rseq = q->next_replay_seq - nrep + 1;
    q->next_replay_seq -= nrep;
    for (size_t i = 0; i < n; i++) {
        const sp_aq_entry_t *src = &entries[i];
        if (src->key >= q->next_key)
            q->next_key = src->key + 1;
        if (!src->replay)
            seen_add(q, id_hash(src->alert.id));
        if (shown[i])
            continue;
        sp_aq_entry_t e = *src;
        e.first_ms = now_ms; /* a restored entry no longer merges with older arrivals */
        int64_t seq = src->replay ? rseq++ : q->next_seq++;
        int rc = insert(q, &e, seq, src->key, NULL);
        if (rc < 0)
            return rc;
        q->st.restored++;
    }
    return 0;
}

static size_t best_index(const sp_alertq_t *q)
{
    size_t b = 0;
    for (size_t i = 1; i < q->len; i++)
        if (before(q, q->slot[i], q->slot[b]))
            b = i;
    return b;
}

int sp_alertq_tick(sp_alertq_t *q, int64_t now_ms, sp_aq_tick_t *out)
{
    if (q == NULL || out == NULL)
        return SP_EINVAL;
    memset(out, 0, sizeof(*out));
    if (q->showing && now_ms >= q->show_until) {
        q->showing = false;
        q->gap_until = q->show_until + q->o.gap_ms;
    }
    if (!q->showing && !q->paused && q->len > 0 && now_ms >= q->gap_until) {
        size_t b = best_index(q);
        out->show = true;
        out->entry = *q->slot[b];
        remove_at(q, b);
        sp_aq_type_t t = out->entry.alert.type;
        out->duration_ms = q->o.duration_ms[t];
        out->gap_ms = q->o.gap_ms;
        q->showing = true;
        q->show_until = now_ms + out->duration_ms;
        q->st.shown++;
    }
    if (q->showing)
        out->next_due_ms = q->show_until;
    else if (!q->paused && q->len > 0)
        out->next_due_ms = q->gap_until > now_ms ? q->gap_until : now_ms;
    else
        out->next_due_ms = -1;
    return 0;
}

void sp_alertq_pause(sp_alertq_t *q)
{
    if (q != NULL)
        q->paused = true;
}

void sp_alertq_resume(sp_alertq_t *q)
{
    if (q != NULL)
        q->paused = false;
}

bool sp_alertq_paused(const sp_alertq_t *q)
{
    return q != NULL && q->paused;
}

int sp_alertq_skip(sp_alertq_t *q, int64_t now_ms)
{
    if (q == NULL || !q->showing)
        return SP_ENOTFOUND;
    q->showing = false;
    q->show_until = now_ms;
    q->gap_until = now_ms + q->o.gap_ms;
    return 0;
}

size_t sp_alertq_clear(sp_alertq_t *q)
{
    if (q == NULL)
        return 0;
    size_t n = q->len;
    for (size_t i = 0; i < n; i++) {
        free(q->slot[i]);
        q->slot[i] = NULL;
    }
    q->len = 0;
    q->st.cleared += n;
    return n;
}

size_t sp_alertq_len(const sp_alertq_t *q)
{
    return q != NULL ? q->len : 0;
}

bool sp_alertq_showing(const sp_alertq_t *q)
{
    return q != NULL && q->showing;
}

void sp_alertq_stats(const sp_alertq_t *q, sp_aq_stats_t *out)
{
    if (q != NULL)
        *out = q->st;
    else
        memset(out, 0, sizeof(*out));
}

const sp_aq_entry_t *sp_alertq_peek(const sp_alertq_t *q, size_t i)
{
    if (q == NULL || i >= q->len)
        return NULL;
    for (size_t k = 0; k < q->len; k++) {
        size_t rank = 0;
        for (size_t j = 0; j < q->len; j++)
            if (j != k && before(q, q->slot[j], q->slot[k]))
                rank++;
        if (rank == i)
            return q->slot[k];
    }
    return NULL;
}

const sp_aq_entry_t *sp_alertq_find(const sp_alertq_t *q, uint64_t key)
{
    if (q == NULL)
        return NULL;
    for (size_t i = 0; i < q->len; i++)
        if (q->slot[i]->key == key)
            return q->slot[i];
    return NULL;
}
