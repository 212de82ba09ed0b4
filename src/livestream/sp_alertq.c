#include "livestream/sp_alertq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"

#define SEEN_START 16                /* id hashes allocated at first */

/*
 * A waiting entry, stored compactly: the fixed fields, then its strings packed once,
 * NUL-terminated, in data[] (id, platform, name, currency, message, then the merged names).
 * A typical alert is ~150 bytes instead of the ~4.6 KiB of an sp_aq_entry_t; an entry is
 * expanded into an sp_aq_entry_t only when it leaves (tick) or is looked at (get/find/peek).
 */
enum { S_ID = 0, S_PLATFORM, S_NAME, S_CURRENCY, S_MESSAGE, S_NAMES,
       S_COUNT = S_NAMES + SP_AQ_NAMES_MAX };

typedef struct {
    uint64_t key;
    int64_t seq, first_ms, count, ts;
    double amount;
    uint8_t type, tier, n_names;
    bool has_amount, has_count, has_message, replay;
    uint16_t off[S_COUNT];           /* start of each string in data */
    uint16_t size;                   /* bytes of data used */
    char data[];
} cent_t;

struct sp_alertq {
    sp_aq_opts_t o;
    cent_t **slot;                   /* capacity pointers; [0, len) used, unordered */
    size_t len;
    uint64_t *seen;                  /* ring of id hashes (0 = empty); grows up to dedupe_n */
    size_t seen_cap;                 /* allocated slots */
    size_t seen_next;
    size_t seen_len;                 /* ids in the ring (scans stop there) */
    int64_t next_seq, next_replay_seq;
    uint64_t next_key;
    bool paused, showing;
    int64_t show_until, gap_until;
    uint64_t evicted;                /* key evicted by the last push/replay (0 = none) */
    sp_aq_entry_t *view;             /* find/peek's expanded entry (allocated on first use) */
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
    q->seen_cap = o->dedupe_n < SEEN_START ? o->dedupe_n : SEEN_START;
    q->seen = calloc(q->seen_cap, sizeof(*q->seen));
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
    free(q->view);
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
    /* the ring grows (doubling) until dedupe_n before it wraps: an idle user's queue stays
     * small; without memory it wraps early (remembers fewer ids) */
    if (q->seen_len == q->seen_cap && q->seen_cap < q->o.dedupe_n && q->seen_next == 0) {
        /* full, oldest at 0: the new slots follow the newest */
        size_t cap = q->seen_cap * 2 < q->o.dedupe_n ? q->seen_cap * 2 : q->o.dedupe_n;
        uint64_t *g = realloc(q->seen, cap * sizeof(*g));
        if (g != NULL) {
            q->seen = g;
            q->seen_next = q->seen_cap;
            q->seen_cap = cap;
        }
    }
    q->seen[q->seen_next] = h;
    q->seen_next = (q->seen_next + 1) % q->seen_cap;
    if (q->seen_len < q->seen_cap)
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
/* ---- compact entries --------------------------------------------------------------------- */

static const char *cstr(const cent_t *e, int i)
{
    return e->data + e->off[i];
}

/*
 * A compact entry of alert a (strings already checked terminated) with n_names names; NULL
 * without memory. Strings are cut to their caps, so the packed size stays under 64 KiB.
 */
static cent_t *cent_new(const sp_aq_alert_t *a, const char (*names)[SP_AQ_NAME_CAP],
                        size_t n_names)
{
    const char *s[S_COUNT] = { a->id, a->platform, a->name, a->currency, a->message };
    size_t len[S_COUNT] = { 0 }, total = 0;
    if (n_names > SP_AQ_NAMES_MAX)
        n_names = SP_AQ_NAMES_MAX;
    for (size_t i = 0; i < n_names; i++)
        s[S_NAMES + i] = names[i];
    for (int i = 0; i < S_NAMES + (int)n_names; i++) {
        len[i] = strlen(s[i]);
        total += len[i] + 1;
    }
    cent_t *e = malloc(sizeof(*e) + total);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    size_t o = 0;
    for (int i = 0; i < S_COUNT; i++) {
        e->off[i] = (uint16_t)o;
        if (i < S_NAMES + (int)n_names) {
            memcpy(e->data + o, s[i], len[i] + 1);
            o += len[i] + 1;
        }
    }
    e->size = (uint16_t)o;
    e->type = (uint8_t)a->type;
    e->tier = (uint8_t)a->tier;
    e->n_names = (uint8_t)n_names;
    e->has_amount = a->has_amount;
    e->amount = a->amount;
    e->has_count = a->has_count;
    e->count = a->count;
    e->has_message = a->has_message;
    e->ts = a->ts;
    return e;
}

/* Appends a name (a merged follow); false without memory (the entry is unchanged). */
static bool cent_add_name(cent_t **pe, const char *name)
{
    cent_t *e = *pe;
    size_t n = strlen(name) + 1;
    cent_t *g = realloc(e, sizeof(*e) + e->size + n);
    if (g == NULL)
        return false;
    g->off[S_NAMES + g->n_names] = g->size;
    memcpy(g->data + g->size, name, n);
    g->size = (uint16_t)(g->size + n);
    g->n_names++;
    *pe = g;
    return true;
}

static void copy_cap(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void cent_expand(const cent_t *e, sp_aq_entry_t *out)
{
    memset(out, 0, sizeof(*out));
    out->key = e->key;
    out->seq = e->seq;
    out->first_ms = e->first_ms;
    out->replay = e->replay;
    out->n_names = e->n_names;
    sp_aq_alert_t *a = &out->alert;
    a->type = (sp_aq_type_t)e->type;
    a->tier = e->tier;
    a->has_amount = e->has_amount;
    a->amount = e->amount;
    a->has_count = e->has_count;
    a->count = e->count;
    a->has_message = e->has_message;
    a->ts = e->ts;
    copy_cap(a->id, sizeof(a->id), cstr(e, S_ID));
    copy_cap(a->platform, sizeof(a->platform), cstr(e, S_PLATFORM));
    copy_cap(a->name, sizeof(a->name), cstr(e, S_NAME));
    copy_cap(a->currency, sizeof(a->currency), cstr(e, S_CURRENCY));
    copy_cap(a->message, sizeof(a->message), cstr(e, S_MESSAGE));
    for (size_t i = 0; i < e->n_names; i++)
        copy_cap(out->names[i], sizeof(out->names[i]), cstr(e, S_NAMES + (int)i));
}

/* ---- queue ------------------------------------------------------------------------------- */

/* true when x shows before y */
static bool before(const sp_alertq_t *q, const cent_t *x, const cent_t *y)
{
    int px = q->o.priority[x->type], py = q->o.priority[y->type];
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
        int pi = q->o.priority[q->slot[i]->type], pv = q->o.priority[q->slot[v]->type];
        /* lowest priority; among those the oldest arrival (replays count as oldest) */
        if (pi < pv || (pi == pv && q->slot[i]->seq < q->slot[v]->seq))
            v = i;
    }
    if (q->o.priority[t] < q->o.priority[q->slot[v]->type])
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

static size_t merge_target(sp_alertq_t *q, const sp_aq_alert_t *a, int64_t now)
{
    if (q->o.merge_window_ms <= 0 ||
        (a->type != SP_AQ_FOLLOW && a->type != SP_AQ_GIFT_SUBSCRIPTION))
        return SIZE_MAX;
    for (size_t i = 0; i < q->len; i++) {
        const cent_t *e = q->slot[i];
        if (e->replay || e->type != (uint8_t)a->type ||
            strcmp(cstr(e, S_PLATFORM), a->platform) != 0)
            continue;
        if (now - e->first_ms > q->o.merge_window_ms || now < e->first_ms)
            continue;
        if (a->type == SP_AQ_GIFT_SUBSCRIPTION && strcmp(cstr(e, S_NAME), a->name) != 0)
            continue;
        return i;
    }
    return SIZE_MAX;
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
static int insert_owned(sp_alertq_t *q, cent_t *e, int64_t seq, uint64_t key, uint64_t *key_out)
{
    if (!make_room(q, (sp_aq_type_t)e->type)) {
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

/* A new entry for a (its name as the first of names for a follow). */
static cent_t *entry_from(const sp_aq_alert_t *a, int64_t now)
{
    bool named = a->type == SP_AQ_FOLLOW && a->name[0] != '\0';
    cent_t *e = cent_new(a, named ? &a->name : NULL, named ? 1 : 0);
    if (e != NULL)
        e->first_ms = now;
    return e;
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
    size_t mi = merge_target(q, a, now_ms);
    if (mi != SIZE_MAX) {
        if (a->type == SP_AQ_FOLLOW && a->name[0] != '\0' &&
            q->slot[mi]->n_names < SP_AQ_NAMES_MAX && !cent_add_name(&q->slot[mi], a->name))
            return SP_ENOMEM;
        cent_t *m = q->slot[mi];
        int64_t c = (m->has_count ? m->count : 1) + count_of(a);
        m->count = c > SP_AQ_COUNT_MAX ? SP_AQ_COUNT_MAX : c;
        m->has_count = true;
        seen_add(q, h);
        q->st.accepted++;
        q->st.merged++;
        if (key != NULL)
            *key = m->key;
        return SP_AQ_MERGED;
    }
    cent_t *e = entry_from(a, now_ms);
    if (e == NULL)
        return SP_ENOMEM;
    if (a->type == SP_AQ_FOLLOW || a->type == SP_AQ_GIFT_SUBSCRIPTION) {
        e->has_count = true; /* merge-capable entries always carry their count */
        e->count = count_of(a);
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
    cent_t *e = entry_from(a, now_ms);
    if (e == NULL)
        return SP_ENOMEM;
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
    for (size_t i = 0; i < n; i++) {
        if (!alert_ok(&entries[i].alert) || entries[i].n_names > SP_AQ_NAMES_MAX ||
            entries[i].key == 0)
            return SP_EINVAL;
        for (size_t k = 0; k < entries[i].n_names; k++)
            if (!str_ok(entries[i].names[k], SP_AQ_NAME_CAP, false))
                return SP_EINVAL;
    }
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
        cent_t *e = cent_new(&src->alert, (const char (*)[SP_AQ_NAME_CAP])src->names,
                             src->n_names);
        if (e == NULL)
            return SP_ENOMEM;
        e->first_ms = now_ms; /* a restored entry no longer merges with older arrivals */
        e->replay = src->replay;
        int64_t seq = src->replay ? rseq++ : q->next_seq++;
        insert_owned(q, e, seq, src->key, NULL);
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
    out->show = false;
    out->entry.key = 0;
    out->duration_ms = out->gap_ms = 0;
    if (q->showing && now_ms >= q->show_until) {
        q->showing = false;
        q->gap_until = q->show_until + q->o.gap_ms;
    }
    if (!q->showing && !q->paused && q->len > 0 && now_ms >= q->gap_until) {
        size_t b = best_index(q);
        out->show = true;
        cent_expand(q->slot[b], &out->entry);
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

bool sp_alertq_get(const sp_alertq_t *q, uint64_t key, sp_aq_entry_t *out)
{
    if (q == NULL || key == 0)
        return false;
    for (size_t i = 0; i < q->len; i++)
        if (q->slot[i]->key == key) {
            if (out != NULL)
                cent_expand(q->slot[i], out);
            return true;
        }
    return false;
}

/* find/peek hand out the queue's view: one expanded entry, allocated on first use */
static const sp_aq_entry_t *view_of(const sp_alertq_t *q, const cent_t *e)
{
    sp_alertq_t *w = (sp_alertq_t *)q;
    if (w->view == NULL && (w->view = malloc(sizeof(*w->view))) == NULL)
        return NULL;
    cent_expand(e, w->view);
    return w->view;
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
            return view_of(q, q->slot[k]);
    }
    return NULL;
}

const sp_aq_entry_t *sp_alertq_find(const sp_alertq_t *q, uint64_t key)
{
    if (q == NULL)
        return NULL;
    for (size_t i = 0; i < q->len; i++)
        if (q->slot[i]->key == key)
            return view_of(q, q->slot[i]);
    return NULL;
}
