/* sp_ls_alerts: every user's AlertQueue, wired. See sp_ls_alerts.h. */
#include "livestream/sp_ls_alerts.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/sp_pubsub.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "core/sp_registry.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "livestream/sp_alert_template.h"
#include "livestream/sp_widget_config.h"
#include "store/sp_store.h"

#define MOD "alerts"
#define PENDING_MAX 64           /* alerts waiting for the user's config to load */
#define KEEP_DONE_MS 86400000LL  /* shown / dropped rows kept a day (their ids stay dupes) */
#define USER_CAP 64

typedef struct uq_s {
    char user[USER_CAP];
    sp_alertq_t *q;
    json_t *cfg;                 /* the alertbox config (whole) */
    bool cfg_loaded;             /* the stored config arrived (or none is needed) */
    bool cfg_ready;              /* loaded and the restore is done: pushes go in */
    sp_aq_alert_t *pending[PENDING_MAX];
    size_t n_pending;
    uint64_t cur_key;            /* on screen (published or about to be) */
    uint64_t filtered;
    bool active;                 /* in the tick list */
    struct uq_s *next_active;
} uq_t;

struct sp_alerts_s {
    sp_alerts_opts_t o;
    sp_map_t *users;             /* user_id -> uq_t */
    uv_timer_t timer;
    bool timer_on, restoring, stopped, dead;
    unsigned inflight;           /* store callbacks and the timer's close */
    uq_t *active;
    uint64_t tot_filtered;
    sp_aq_entry_t *scratch;      /* one expanded entry (persist_entry) */
    struct marks_s *marks;       /* the shows of the running tick, to mark shown */
};

static void maybe_free(sp_alerts_t *a);

/* ---- alert JSON ------------------------------------------------------------------------ */

static bool copy_str(char *dst, size_t cap, const json_t *v, bool required)
{
    const char *s = json_string_value(v);
    if (s == NULL)
        return !required && v == NULL;
    size_t n = json_string_length(v);
    if ((required && n == 0) || n >= cap || memchr(s, 0, n))
        return false;
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

int sp_alerts_from_json(const json_t *j, sp_aq_alert_t *out)
{
    if (!json_is_object(j) || out == NULL)
        return SP_EINVAL;
    memset(out, 0, sizeof(*out));
    const char *type = json_string_value(json_object_get(j, "type"));
    out->type = SP_AQ_TYPE_COUNT;
    for (int t = 0; type && t < SP_AQ_TYPE_COUNT; t++)
        if (strcmp(type, sp_aq_type_name((sp_aq_type_t)t)) == 0)
            out->type = (sp_aq_type_t)t;
    if (out->type == SP_AQ_TYPE_COUNT)
        return SP_EINVAL;
    if (!copy_str(out->id, sizeof(out->id), json_object_get(j, "id"), true) ||
        !copy_str(out->platform, sizeof(out->platform), json_object_get(j, "platform"), true) ||
        !copy_str(out->name, sizeof(out->name), json_object_get(j, "name"), false) ||
        !copy_str(out->currency, sizeof(out->currency), json_object_get(j, "currency"), false))
        return SP_EINVAL;
    json_t *v;
    if ((v = json_object_get(j, "amount")) != NULL) {
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || d < 0 || d > SP_AQ_AMOUNT_MAX)
            return SP_EINVAL;
        out->has_amount = true;
        out->amount = d;
    }
    if ((v = json_object_get(j, "count")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > SP_AQ_COUNT_MAX)
            return SP_EINVAL;
        out->has_count = true;
        out->count = json_integer_value(v);
    }
    if ((v = json_object_get(j, "tier")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3)
            return SP_EINVAL;
        out->tier = (int)json_integer_value(v);
    }
    if ((v = json_object_get(j, "message")) != NULL) {
        const char *m = json_string_value(v);
        if (m == NULL)
            return SP_EINVAL;
        out->has_message = true;
        sp_aq_copy_utf8(out->message, sizeof(out->message), m, strlen(m));
    }
    out->ts = json_integer_value(json_object_get(j, "ts"));
    return 0;
}

static json_t *alert_json(const sp_aq_alert_t *al, const char *message)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", al->id, "type",
                          sp_aq_type_name(al->type), "platform", al->platform, "name", al->name,
                          "ts", (json_int_t)al->ts);
    if (j == NULL)
        return NULL;
    if (al->has_amount) json_object_set_new(j, "amount", json_real(al->amount));
    if (al->currency[0]) json_object_set_new(j, "currency", json_string(al->currency));
    if (al->has_count) json_object_set_new(j, "count", json_integer(al->count));
    if (al->tier) json_object_set_new(j, "tier", json_integer(al->tier));
    if (message) json_object_set_new(j, "message", json_string(message));
    return j;
}

static json_t *entry_json(const sp_aq_entry_t *e)
{
    json_t *names = json_array();
    for (size_t i = 0; i < e->n_names; i++)
        json_array_append_new(names, json_string(e->names[i]));
    return json_pack("{s:o, s:o, s:b}", "alert",
                     alert_json(&e->alert, e->alert.has_message ? e->alert.message : NULL),
                     "names", names, "replay", e->replay);
}

static int entry_from_json(const json_t *j, uint64_t key, sp_aq_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    if (!json_is_object(j) || sp_alerts_from_json(json_object_get(j, "alert"), &e->alert) != 0)
        return SP_EINVAL;
    e->key = key;
    e->replay = json_is_true(json_object_get(j, "replay"));
    const json_t *names = json_object_get(j, "names");
    for (size_t i = 0; i < json_array_size(names) && e->n_names < SP_AQ_NAMES_MAX; i++)
        if (copy_str(e->names[e->n_names], SP_AQ_NAME_CAP, json_array_get(names, i), true))
            e->n_names++;
    return 0;
}

/* ---- config ---------------------------------------------------------------------------- */

static const json_t *type_cfg(const uq_t *u, sp_aq_type_t t)
{
    return json_object_get(json_object_get(u->cfg, "types"), sp_aq_type_name(t));
}

static void apply_opts(sp_alerts_t *a, uq_t *u)
{
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.capacity = a->o.capacity;
    o.gap_ms = json_integer_value(json_object_get(u->cfg, "gap_ms"));
    const json_t *prio = json_object_get(u->cfg, "priorities");
    for (int t = 0; t < SP_AQ_TYPE_COUNT; t++) {
        const char *n = sp_aq_type_name((sp_aq_type_t)t);
        o.duration_ms[t] = json_integer_value(json_object_get(type_cfg(u, (sp_aq_type_t)t),
                                                              "duration_ms"));
        o.priority[t] = (int)json_integer_value(json_object_get(prio, n));
    }
    if (sp_alertq_set_opts(u->q, &o) != 0)
        sp_ulog(SP_LOG_WARN, MOD, u->user, "alert options refused", "%s", "");
}

/* Not queued: a disabled type, or under the type's min_amount (cheer: bits). */
static bool config_filters(const uq_t *u, const sp_aq_alert_t *al)
{
    const json_t *tc = type_cfg(u, al->type);
    if (json_is_false(json_object_get(tc, "enabled")))
        return true;
    double min = json_number_value(json_object_get(tc, "min_amount"));
    bool amounts = al->type == SP_AQ_CHEER || al->type == SP_AQ_DONATION ||
                   al->type == SP_AQ_SUPER_CHAT;
    return amounts && min > 0 && (al->has_amount ? al->amount : 0) < min;
}

/* ---- persistence ----------------------------------------------------------------------- */

/* The entry as waiting; a row that exists keeps its state: a show's mark (SHOWN_SQL, not
 * batched) may have overtaken this batched write of the same entry. */
#define UPSERT_SQL                                                                          \
    "INSERT INTO alert_queue (user_id, akey, state, entry, created_at, updated_at) "         \
    "VALUES ($1, $2, 0, $3, $4, $4) ON CONFLICT (user_id, akey) DO UPDATE SET "               \
    "entry = excluded.entry, updated_at = excluded.updated_at"
/* A show's durable mark: its own statement (not behind the group-commit window), written
 * whole so that it holds even when it runs before the entry's batched UPSERT. */
#define SHOWN_SQL                                                                           \
    "INSERT INTO alert_queue (user_id, akey, state, entry, created_at, updated_at) "         \
    "VALUES ($1, $2, 1, $3, $4, $4) ON CONFLICT (user_id, akey) DO UPDATE SET "               \
    "state = 1, updated_at = excluded.updated_at"

/* The waiting entry `key` as its row (expanded into the one scratch entry of a). */
static void persist_entry(sp_alerts_t *a, const uq_t *u, uint64_t key)
{
    sp_aq_entry_t *e = a->scratch;
    if (a->o.store == NULL || e == NULL || !sp_alertq_get(u->q, key, e))
        return;
    json_t *j = entry_json(e);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return;
    sp_store_enqueue(a->o.store, UPSERT_SQL,
                     json_pack("[s, I, s, I]", u->user, (json_int_t)e->key, text,
                               (json_int_t)sp_wall_ms()),
                     NULL, NULL);
    free(text);
}

static void persist_state(sp_alerts_t *a, const uq_t *u, uint64_t key, int state)
{
    if (a->o.store == NULL || key == 0)
        return;
    sp_store_enqueue(a->o.store,
                     "UPDATE alert_queue SET state = $3, updated_at = $4 "
                     "WHERE user_id = $1 AND akey = $2",
                     json_pack("[s, I, i, I]", u->user, (json_int_t)key, state,
                               (json_int_t)sp_wall_ms()),
                     NULL, NULL);
}

/* ---- publishing ----------------------------------------------------------------------- */

static void publish(sp_alerts_t *a, const char *user, const char *event, json_t *payload)
{
    if (a->o.bus && !a->stopped && payload) {
        char topic[SP_TOPIC_MAX];
        snprintf(topic, sizeof(topic), "alertbox:%s", user);
        int64_t rc = sp_pubsub_publish(a->o.bus, topic, event, payload);
        if (rc < 0)
            sp_warn(MOD, "publish failed", "event=%s err=%s", event, sp_err_name((int)rc));
    }
    json_decref(payload);
}

static json_t *state_json(const uq_t *u)
{
    return json_pack("{s:b, s:I, s:o}", "paused", sp_alertq_paused(u->q), "queued",
                     (json_int_t)sp_alertq_len(u->q),
                     "current", u->cur_key ? json_integer((json_int_t)u->cur_key) : json_null());
}

static json_t *show_json(const uq_t *u, const sp_aq_tick_t *t)
{
    const sp_aq_entry_t *e = &t->entry;
    sp_aq_alert_t al = e->alert; /* the copy the template sees: filtered message, total count */
    const json_t *filter = json_object_get(u->cfg, "filter");
    bool show_msg = !json_is_false(json_object_get(u->cfg, "show_message"));
    if (al.has_message && show_msg) {
        char *m = malloc(SP_AQ_MESSAGE_CAP);
        if (m == NULL)
            return NULL;
        sp_wcfg_mask_text(e->alert.message, strlen(e->alert.message),
                          json_is_true(json_object_get(filter, "links")),
                          json_object_get(filter, "words"), m, SP_AQ_MESSAGE_CAP);
        memcpy(al.message, m, SP_AQ_MESSAGE_CAP);
        free(m);
    } else {
        al.has_message = false;
        al.message[0] = 0;
    }
    int64_t count = e->alert.has_count ? e->alert.count : 1;
    const char *tpl = json_string_value(json_object_get(type_cfg(u, al.type), "template"));
    if (al.type == SP_AQ_FOLLOW && count > 1)
        tpl = "{count} new followers!";
    if (tpl == NULL)
        tpl = "{name}";
    char text[SP_ATPL_OUT_MAX + 1];
    if (sp_atpl_render(tpl, strlen(tpl), &al, text, sizeof(text), NULL) < 0)
        text[0] = 0;
    json_t *names = json_array();
    for (size_t i = 0; i < e->n_names; i++)
        json_array_append_new(names, json_string(e->names[i]));
    if (e->n_names == 0 && al.name[0])
        json_array_append_new(names, json_string(al.name));
    return json_pack("{s:I, s:o, s:o, s:I, s:s, s:b, s:b, s:I}", "key", (json_int_t)e->key,
                     "alert", alert_json(&al, al.has_message ? al.message : NULL), "names",
                     names, "count", (json_int_t)count, "text", text, "test",
                     strncmp(al.id, "test-", 5) == 0, "replay", e->replay, "duration_ms",
                     (json_int_t)t->duration_ms);
}

int64_t sp_alerts_wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The bench's stamps (opts.stamp_ns): when the queue released the show, when it was published */
static void stamp(const sp_alerts_t *a, json_t *show, const char *field)
{
    if (a->o.stamp_ns && show)
        json_object_set_new(show, field, json_integer((json_int_t)sp_alerts_wall_ns()));
}

/*
 * A show is published after its row is marked shown (committed). The shows released by one
 * tick are marked together: one transaction (one commit) per tick, at most MARKS_MAX rows.
 */
#define MARKS_MAX 1024

typedef struct {
    char user[USER_CAP];
    json_t *show;
} mark_t;

typedef struct marks_s {
    sp_alerts_t *a;
    size_t n;
    json_t *params[MARKS_MAX];
    mark_t m[MARKS_MAX];
} marks_t;

static void on_marked(int err, json_t *rows, int64_t changes, void *ud)
{
    marks_t *c = ud;
    sp_alerts_t *a = c->a;
    (void)rows;
    (void)changes;
    a->inflight--;
    if (err)
        sp_warn(MOD, "alerts shown without their marks persisted", "n=%zu err=%s", c->n,
                sp_err_name(err));
    for (size_t i = 0; i < c->n; i++) {
        mark_t *m = &c->m[i];
        if (a->dead) {
            json_decref(m->show);
            continue;
        }
        stamp(a, m->show, "published_at_ns");
        publish(a, m->user, "show", m->show);
        uq_t *u = sp_map_gets(a->users, m->user);
        if (u)
            publish(a, m->user, "state", state_json(u));
    }
    free(c);
    maybe_free(a);
}

static void flush_marks(sp_alerts_t *a)
{
    marks_t *c = a->marks;
    if (c == NULL)
        return;
    a->marks = NULL;
    static const char *sqls[MARKS_MAX];
    for (size_t i = 0; i < c->n; i++)
        sqls[i] = SHOWN_SQL;
    a->inflight++;
    sp_store_tx(a->o.store, c->n, sqls, c->params, on_marked, c);
}

/* ---- users ------------------------------------------------------------------------------ */

static void activate(sp_alerts_t *a, uq_t *u)
{
    if (u->active)
        return;
    u->active = true;
    u->next_active = a->active;
    a->active = u;
}

static void uq_free(void *v)
{
    uq_t *u = v;
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n_pending; i++)
        free(u->pending[i]);
    sp_alertq_free(u->q);
    json_decref(u->cfg);
    free(u);
}

static void push_now(sp_alerts_t *a, uq_t *u, const sp_aq_alert_t *al)
{
    if (config_filters(u, al)) {
        u->filtered++;
        a->tot_filtered++;
        return;
    }
    uint64_t key = 0;
    int rc = sp_alertq_push(u->q, al, (int64_t)uv_now(a->o.loop), &key);
    if (rc < 0) {
        sp_ulog(SP_LOG_WARN, MOD, u->user, "alert refused", "err=%s", sp_err_name(rc));
        return;
    }
    uint64_t ev = sp_alertq_last_evicted(u->q);
    if (ev)
        persist_state(a, u, ev, 2);
    if (rc == SP_AQ_QUEUED || rc == SP_AQ_MERGED) {
        persist_entry(a, u, key);
        activate(a, u);
    }
}

static void maybe_ready(sp_alerts_t *a, uq_t *u)
{
    if (u->cfg_ready || !u->cfg_loaded || a->restoring)
        return;
    u->cfg_ready = true;
    for (size_t i = 0; i < u->n_pending; i++) {
        push_now(a, u, u->pending[i]);
        free(u->pending[i]);
    }
    u->n_pending = 0;
    activate(a, u);
}

typedef struct {
    sp_alerts_t *a;
    char user[USER_CAP];
} cfg_ctx_t;

static void on_config(int err, json_t *rows, int64_t changes, void *ud)
{
    cfg_ctx_t *c = ud;
    sp_alerts_t *a = c->a;
    (void)changes;
    a->inflight--;
    uq_t *u = a->dead ? NULL : sp_map_gets(a->users, c->user);
    if (u && !u->cfg_ready) {
        json_t *stored = NULL;
        const char *text = json_string_value(json_object_get(json_array_get(rows, 0), "config"));
        if (!err && text)
            stored = json_loads(text, 0, NULL);
        if (err)
            sp_ulog(SP_LOG_WARN, MOD, c->user, "alertbox config unreadable: defaults", "err=%s",
                    sp_err_name(err));
        json_decref(u->cfg);
        u->cfg = sp_wcfg_load("alertbox", stored);
        apply_opts(a, u);
        u->cfg_loaded = true;
        maybe_ready(a, u);
        json_decref(stored);
    }
    free(c);
    maybe_free(a);
}

static uq_t *user_get(sp_alerts_t *a, const char *user_id, bool load_config)
{
    uq_t *u = sp_map_gets(a->users, user_id);
    if (u || strlen(user_id) >= USER_CAP || !*user_id)
        return u;
    u = calloc(1, sizeof(*u));
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.capacity = a->o.capacity;
    if (u == NULL || (u->q = sp_alertq_new(&o)) == NULL) {
        free(u);
        return NULL;
    }
    snprintf(u->user, sizeof(u->user), "%s", user_id);
    u->cfg = sp_wcfg_defaults("alertbox");
    apply_opts(a, u);
    sp_map_sets(a->users, u->user, u);
    if (a->o.reg)
        sp_registry_register(a->o.reg, SP_REG_ALERT_QUEUE, u->user, NULL, u->q);
    cfg_ctx_t *c = NULL;
    if (!load_config || a->o.store == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
        u->cfg_loaded = true;
        maybe_ready(a, u);
        return u;
    }
    c->a = a;
    snprintf(c->user, sizeof(c->user), "%s", user_id);
    a->inflight++;
    sp_store_query(a->o.store,
                   "SELECT config FROM widget_configs WHERE user_id = $1 AND "
                   "widget_type = 'alertbox'",
                   json_pack("[s]", user_id), on_config, c);
    return u;
}

/* ---- tick ------------------------------------------------------------------------------ */

static void show(sp_alerts_t *a, uq_t *u, const sp_aq_tick_t *t)
{
    u->cur_key = t->entry.key;
    json_t *payload = show_json(u, t);
    stamp(a, payload, "released_at_ns");
    if (payload && a->o.store && a->marks == NULL && (a->marks = malloc(sizeof(marks_t))))
        a->marks->n = 0;
    if (payload == NULL || a->o.store == NULL || a->marks == NULL) {
        stamp(a, payload, "published_at_ns");
        publish(a, u->user, "show", payload);
        publish(a, u->user, "state", state_json(u));
        return;
    }
    json_t *ej = entry_json(&t->entry);
    char *text = ej ? json_dumps(ej, JSON_COMPACT) : NULL;
    json_decref(ej);
    marks_t *c = a->marks;
    c->a = a;
    snprintf(c->m[c->n].user, sizeof(c->m[c->n].user), "%s", u->user);
    c->m[c->n].show = payload;
    c->params[c->n] = json_pack("[s, I, s, I]", u->user, (json_int_t)t->entry.key,
                                text ? text : "{}", (json_int_t)sp_wall_ms());
    c->n++;
    free(text);
    if (c->n == MARKS_MAX)
        flush_marks(a);
}

/* One user's tick; false when it has nothing left to do (leaves the tick list). */
static bool tick_user(sp_alerts_t *a, uq_t *u, int64_t now)
{
    if (!u->cfg_ready)
        return u->n_pending > 0 || sp_alertq_len(u->q) > 0;
    sp_aq_tick_t t;
    if (sp_alertq_tick(u->q, now, &t) != 0)
        return false;
    if (u->cur_key && (!sp_alertq_showing(u->q) || t.show)) {
        u->cur_key = 0; /* the alert on screen ended */
        if (!t.show)
            publish(a, u->user, "state", state_json(u));
    }
    if (t.show)
        show(a, u, &t);
    return t.next_due_ms >= 0 || sp_alertq_showing(u->q);
}

static void on_tick(uv_timer_t *h)
{
    sp_alerts_t *a = h->data;
    int64_t now = (int64_t)uv_now(a->o.loop);
    uq_t **pp = &a->active;
    while (*pp) {
        uq_t *u = *pp;
        if (tick_user(a, u, now)) {
            pp = &u->next_active;
        } else {
            *pp = u->next_active;
            u->active = false;
            u->next_active = NULL;
        }
    }
    flush_marks(a); /* this tick's shows: one commit, then published */
}

/* ---- API ------------------------------------------------------------------------------- */

void sp_alerts_push(sp_alerts_t *a, const char *user_id, const sp_aq_alert_t *al)
{
    if (a == NULL || a->stopped || user_id == NULL || al == NULL)
        return;
    uq_t *u = user_get(a, user_id, true);
    if (u == NULL)
        return;
    if (u->cfg_ready) {
        push_now(a, u, al);
        return;
    }
    sp_aq_alert_t *copy = u->n_pending < PENDING_MAX ? malloc(sizeof(*copy)) : NULL;
    if (copy == NULL) {
        sp_ulog(SP_LOG_WARN, MOD, user_id, "alert dropped while the queue loads", "%s", "");
        return;
    }
    *copy = *al;
    u->pending[u->n_pending++] = copy;
    activate(a, u);
}

static uq_t *control_user(sp_alerts_t *a, const char *user_id, int *err)
{
    *err = 0;
    if (a == NULL || user_id == NULL || a->stopped) {
        *err = SP_ECLOSED;
        return NULL;
    }
    if (a->restoring) {
        *err = SP_EBUSY;
        return NULL;
    }
    uq_t *u = user_get(a, user_id, true);
    if (u == NULL)
        *err = SP_ENOMEM;
    return u;
}

static int queue_direct(sp_alerts_t *a, uq_t *u, const sp_aq_alert_t *al, bool replay,
                        uint64_t *key)
{
    uint64_t k = 0;
    int64_t now = (int64_t)uv_now(a->o.loop);
    int rc = replay ? sp_alertq_replay(u->q, al, now, &k) : sp_alertq_push(u->q, al, now, &k);
    if (rc < 0)
        return rc;
    uint64_t ev = sp_alertq_last_evicted(u->q);
    if (ev)
        persist_state(a, u, ev, 2);
    if (k)
        persist_entry(a, u, k);
    if (key)
        *key = k;
    activate(a, u);
    return rc == SP_AQ_DROPPED ? SP_ELIMIT : 0;
}

int sp_alerts_test(sp_alerts_t *a, const char *user_id, const char *type_name, uint64_t *key)
{
    sp_aq_alert_t al;
    memset(&al, 0, sizeof(al));
    al.type = SP_AQ_TYPE_COUNT;
    for (int t = 0; type_name && t < SP_AQ_TYPE_COUNT; t++)
        if (strcmp(type_name, sp_aq_type_name((sp_aq_type_t)t)) == 0)
            al.type = (sp_aq_type_t)t;
    if (al.type == SP_AQ_TYPE_COUNT)
        return SP_EINVAL;
    int err;
    uq_t *u = control_user(a, user_id, &err);
    if (u == NULL)
        return err;
    char uuid[SP_UUID_STRLEN];
    sp_uuid_v4(uuid);
    snprintf(al.id, sizeof(al.id), "test-%s", uuid);
    snprintf(al.platform, sizeof(al.platform), "twitch");
    snprintf(al.name, sizeof(al.name), "TestUser");
    al.ts = sp_wall_ms();
    switch (al.type) {
    case SP_AQ_CHEER: al.has_amount = true; al.amount = 500; break;
    case SP_AQ_DONATION:
    case SP_AQ_SUPER_CHAT:
        al.has_amount = true;
        al.amount = al.type == SP_AQ_DONATION ? 5 : 10;
        snprintf(al.currency, sizeof(al.currency), "USD");
        break;
    case SP_AQ_GIFT_SUBSCRIPTION: al.has_count = true; al.count = 5; al.tier = 1; break;
    case SP_AQ_RAID: al.has_count = true; al.count = 42; break;
    case SP_AQ_SUBSCRIPTION: al.tier = 1; break;
    default: break;
    }
    if (al.type == SP_AQ_CHEER || al.type == SP_AQ_DONATION || al.type == SP_AQ_SUPER_CHAT ||
        al.type == SP_AQ_SUBSCRIPTION) {
        al.has_message = true;
        snprintf(al.message, sizeof(al.message), "This is a test alert!");
    }
    return queue_direct(a, u, &al, false, key);
}

int sp_alerts_replay(sp_alerts_t *a, const char *user_id, const sp_aq_alert_t *al, uint64_t *key)
{
    int err;
    uq_t *u = control_user(a, user_id, &err);
    if (u == NULL)
        return err;
    return queue_direct(a, u, al, true, key);
}

int sp_alerts_control(sp_alerts_t *a, const char *user_id, sp_alerts_ctl_t c, json_t **state)
{
    int err;
    uq_t *u = control_user(a, user_id, &err);
    if (state)
        *state = NULL;
    if (u == NULL)
        return err;
    switch (c) {
    case SP_ALERTS_PAUSE: sp_alertq_pause(u->q); break;
    case SP_ALERTS_RESUME: sp_alertq_resume(u->q); break;
    case SP_ALERTS_SKIP: {
        uint64_t key = u->cur_key;
        if (key == 0 || sp_alertq_skip(u->q, (int64_t)uv_now(a->o.loop)) != 0)
            return SP_ENOTFOUND;
        u->cur_key = 0;
        publish(a, u->user, "skip", json_pack("{s:I}", "key", (json_int_t)key));
        break;
    }
    case SP_ALERTS_CLEAR:
        sp_alertq_clear(u->q);
        if (a->o.store)
            sp_store_enqueue(a->o.store,
                             "UPDATE alert_queue SET state = 2, updated_at = $2 "
                             "WHERE user_id = $1 AND state = 0",
                             json_pack("[s, I]", u->user, (json_int_t)sp_wall_ms()), NULL, NULL);
        publish(a, u->user, "clear", json_object());
        break;
    }
    activate(a, u);
    publish(a, u->user, "state", state_json(u));
    if (state)
        *state = state_json(u);
    return 0;
}

json_t *sp_alerts_state(sp_alerts_t *a, const char *user_id)
{
    uq_t *u = a && user_id ? sp_map_gets(a->users, user_id) : NULL;
    sp_aq_stats_t st = { 0 };
    if (u)
        sp_alertq_stats(u->q, &st);
    return json_pack("{s:b, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
                     "paused", u ? sp_alertq_paused(u->q) : 0, "queued",
                     (json_int_t)(u ? sp_alertq_len(u->q) : 0), "current",
                     u && u->cur_key ? json_integer((json_int_t)u->cur_key) : json_null(),
                     "stats", "accepted", (json_int_t)st.accepted, "duplicates",
                     (json_int_t)st.duplicates, "filtered",
                     (json_int_t)(st.filtered + (u ? u->filtered : 0)), "merged",
                     (json_int_t)st.merged, "dropped", (json_int_t)st.dropped, "shown",
                     (json_int_t)st.shown, "cleared", (json_int_t)st.cleared, "replayed",
                     (json_int_t)st.replayed, "restored", (json_int_t)st.restored);
}

void sp_alerts_set_config(sp_alerts_t *a, const char *user_id, const json_t *config)
{
    if (a == NULL || user_id == NULL || !json_is_object(config))
        return;
    uq_t *u = user_get(a, user_id, false);
    if (u == NULL)
        return;
    json_t *c = sp_wcfg_load("alertbox", config);
    if (c == NULL)
        return;
    json_decref(u->cfg);
    u->cfg = c;
    apply_opts(a, u);
    u->cfg_loaded = true;
    maybe_ready(a, u);
}

void sp_alerts_write_metrics(const sp_alerts_t *a, sp_buf_t *out)
{
    if (a == NULL)
        return;
    sp_aq_stats_t t = { 0 }, st;
    uint64_t queued = 0;
    size_t it = 0, kl;
    const char *k;
    void *v;
    while (sp_map_next(a->users, &it, &k, &kl, &v)) {
        const uq_t *u = v;
        sp_alertq_stats(u->q, &st);
        t.accepted += st.accepted;
        t.duplicates += st.duplicates;
        t.filtered += st.filtered;
        t.merged += st.merged;
        t.dropped += st.dropped;
        t.shown += st.shown;
        t.cleared += st.cleared;
        t.replayed += st.replayed;
        t.restored += st.restored;
        queued += sp_alertq_len(u->q);
    }
    sp_buf_appendf(out,
                   "# TYPE streampai_alerts_total counter\n"
                   "streampai_alerts_total{result=\"accepted\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"duplicate\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"filtered\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"merged\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"dropped\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"shown\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"cleared\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"replayed\"} %" PRIu64 "\n"
                   "streampai_alerts_total{result=\"restored\"} %" PRIu64 "\n"
                   "# TYPE streampai_alerts_queued gauge\nstreampai_alerts_queued %" PRIu64 "\n"
                   "# TYPE streampai_alerts_users gauge\nstreampai_alerts_users %zu\n",
                   t.accepted, t.duplicates, t.filtered + a->tot_filtered, t.merged, t.dropped,
                   t.shown, t.cleared, t.replayed, t.restored, queued, sp_map_count(a->users));
}

/* ---- restore, lifecycle ---------------------------------------------------------------- */

static void restore_user(sp_alerts_t *a, const char *user, sp_aq_entry_t *ents, bool *shown,
                         size_t n)
{
    uq_t *u = user_get(a, user, true);
    if (u == NULL || n == 0)
        return;
    if (sp_alertq_restore(u->q, ents, shown, n, (int64_t)uv_now(a->o.loop)) != 0) {
        sp_ulog(SP_LOG_WARN, MOD, user, "alert queue restore refused", "rows=%zu", n);
        return;
    }
    for (size_t i = 0; i < n; i++) /* evicted by the restore itself (over capacity) */
        if (!shown[i] && !sp_alertq_get(u->q, ents[i].key, NULL))
            persist_state(a, u, ents[i].key, 2);
    activate(a, u);
}

static void on_restore(int err, json_t *rows, int64_t changes, void *ud)
{
    sp_alerts_t *a = ud;
    (void)changes;
    a->inflight--;
    if (a->dead) {
        maybe_free(a);
        return;
    }
    if (err)
        sp_error(MOD, "alert queues not restored", "err=%s", sp_err_name(err));
    size_t n = json_array_size(rows), start = 0, restored = 0;
    sp_aq_entry_t *ents = n ? calloc(n, sizeof(*ents)) : NULL;
    bool *shown = n ? calloc(n, sizeof(*shown)) : NULL;
    if (n && (!ents || !shown))
        n = 0;
    size_t m = 0; /* rows of the current user in ents[0..m) */
    const char *cur = NULL;
    for (size_t i = 0; i <= n; i++) {
        const json_t *r = i < n ? json_array_get(rows, i) : NULL;
        const char *user = r ? json_string_value(json_object_get(r, "user_id")) : NULL;
        if (cur && (!user || strcmp(user, cur) != 0)) {
            restore_user(a, cur, ents, shown, m);
            restored += m;
            m = 0;
        }
        cur = user;
        if (!r || !user)
            continue;
        json_t *entry = NULL;
        const char *text = json_string_value(json_object_get(r, "entry"));
        if (text)
            entry = json_loads(text, 0, NULL);
        json_int_t key = json_integer_value(json_object_get(r, "akey"));
        if (key > 0 && entry_from_json(entry, (uint64_t)key, &ents[m]) == 0) {
            shown[m] = json_integer_value(json_object_get(r, "state")) == 1;
            m++;
        }
        json_decref(entry);
    }
    (void)start;
    free(ents);
    free(shown);
    a->restoring = false;
    size_t it = 0, kl;
    const char *k;
    void *v;
    while (sp_map_next(a->users, &it, &k, &kl, &v))
        maybe_ready(a, v);
    sp_info(MOD, "alert queues restored", "rows=%zu users=%zu", restored,
            sp_map_count(a->users));
}

sp_alerts_t *sp_alerts_new(const sp_alerts_opts_t *o)
{
    if (o == NULL || o->loop == NULL || o->capacity < 1 || o->capacity > SP_AQ_CAPACITY_MAX ||
        o->interval_ms < 1)
        return NULL;
    sp_alerts_t *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->users = sp_map_new(uq_free)) == NULL) {
        free(a);
        return NULL;
    }
    a->o = *o;
    if (o->store && (a->scratch = malloc(sizeof(*a->scratch))) == NULL) {
        sp_map_free(a->users);
        free(a);
        return NULL;
    }
    uv_timer_init(o->loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, on_tick, (uint64_t)o->interval_ms, (uint64_t)o->interval_ms);
    uv_unref((uv_handle_t *)&a->timer);
    a->timer_on = true;
    if (o->store) {
        a->restoring = true;
        int64_t cutoff = sp_wall_ms() - KEEP_DONE_MS;
        sp_store_enqueue(o->store, "DELETE FROM alert_queue WHERE state <> 0 AND updated_at < $1",
                         json_pack("[I]", (json_int_t)cutoff), NULL, NULL);
        a->inflight++;
        sp_store_query(o->store,
                       "SELECT user_id, akey, state, entry FROM alert_queue "
                       "WHERE state IN (0, 1) ORDER BY user_id, akey",
                       NULL, on_restore, a);
    }
    return a;
}

void sp_alerts_shutdown(sp_alerts_t *a)
{
    if (a == NULL || a->stopped)
        return;
    a->stopped = true;
    a->o.bus = NULL;
    uv_timer_stop(&a->timer);
    size_t it = 0, kl;
    const char *k;
    void *v;
    while (a->o.reg && sp_map_next(a->users, &it, &k, &kl, &v))
        sp_registry_unregister(a->o.reg, SP_REG_ALERT_QUEUE, k, NULL, ((uq_t *)v)->q);
    a->o.reg = NULL; /* the registry goes with the livestream subsystem */
}

static void on_timer_closed(uv_handle_t *h)
{
    sp_alerts_t *a = h->data;
    a->inflight--;
    maybe_free(a);
}

static void maybe_free(sp_alerts_t *a)
{
    if (!a->dead || a->inflight > 0)
        return;
    sp_map_free(a->users);
    free(a->scratch);
    free(a);
}

void sp_alerts_free(sp_alerts_t *a)
{
    if (a == NULL)
        return;
    sp_alerts_shutdown(a);
    a->dead = true;
    a->active = NULL;
    if (a->timer_on) {
        a->timer_on = false;
        a->inflight++;
        uv_close((uv_handle_t *)&a->timer, on_timer_closed);
        return;
    }
    maybe_free(a);
}
