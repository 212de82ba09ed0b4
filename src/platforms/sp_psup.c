/*
 * sp_psup: the PlatformSupervisor (see the header): per (user, platform) monitor lifecycle
 * with a restart budget, the sinks monitors report through, dedupe + publish + persist of
 * chat and alerts, and the one timer that drives restarts and viewers sampling. The calls
 * made on the user's behalf (viewers, title, chat send) are in sp_psup_ops.c.
 */
#include "platforms/sp_psup.h"

#include <stdio.h>
#include <string.h>

#include "bus/sp_pubsub.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "platforms/sp_psup_int.h"
#include "store/sp_store.h"

#define DEFAULT_BO_BASE_MS 1000
#define DEFAULT_BO_MAX_MS 60000

/* ------------------------------------------------------------------------------------------ */
/* ops                                                                                        */

sp_psup_op_t *sp_psup_op_new(sp_psup_t *s, sp_psup_op_kind_t kind, const char *user_id,
                             uint64_t gen)
{
    sp_psup_op_t *op = sp_calloc(1, sizeof(*op));
    op->s = s;
    op->kind = kind;
    op->gen = gen;
    snprintf(op->user_id, sizeof(op->user_id), "%s", user_id ? user_id : "");
    op->next = s->ops;
    if (s->ops) s->ops->prev = op;
    s->ops = op;
    return op;
}

void sp_psup_op_end(sp_psup_op_t *op)
{
    if (op->s) {
        if (op->prev)
            op->prev->next = op->next;
        else
            op->s->ops = op->next;
        if (op->next) op->next->prev = op->prev;
    }
    if (op->acct) sp_platform_account_unref(op->acct);
    if (op->batch) sp_psup_batch_unref(op->batch);
    sp_free(op);
}

sp_psup_user_t *sp_psup_op_user(sp_psup_op_t *op)
{
    if (op->s == NULL) return NULL;
    sp_psup_user_t *u = sp_map_gets(op->s->users, op->user_id);
    return u && u->gen == op->gen ? u : NULL;
}

sp_psup_mon_t *sp_psup_find_mon(sp_psup_user_t *u, const char *platform)
{
    for (size_t i = 0; u && i < u->n_mons; i++)
        if (strcmp(u->mons[i].platform, platform) == 0) return &u->mons[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* publishing and persistence                                                                 */

void sp_psup_publish(sp_psup_t *s, const char *topic, const char *event, json_t *payload)
{
    if (s->bus && payload) {
        int64_t rc = sp_pubsub_publish(s->bus, topic, event, payload);
        if (rc < 0)
            sp_warn("platforms", "publish failed", "topic=%s event=%s err=%s", topic, event,
                    sp_err_name((int)rc));
    }
    json_decref(payload);
}

/* Same scheme as the livestream's events: wall microseconds, strictly increasing. */
static int64_t event_seq(void)
{
    static int64_t last;
    int64_t v = sp_wall_ms() * 1000;
    if (v <= last) v = last + 1;
    last = v;
    return v;
}

static void persist(sp_psup_t *s, sp_psup_user_t *u, const char *platform, const char *peid,
                    const char *type, json_t *payload)
{
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    if (s->store == NULL || text == NULL) {
        free(text);
        return;
    }
    char id[SP_UUID_STRLEN];
    sp_uuid_v4(id);
    sp_store_enqueue(s->store,
                     "INSERT INTO events (id, user_id, stream_id, platform, platform_event_id, "
                     "type, payload, seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                     "$9) ON CONFLICT (platform, platform_event_id) DO NOTHING",
                     json_pack("[s, s, s?, s, s, s, s, I, I]", id, u->user_id,
                               u->stream_id[0] ? u->stream_id : NULL, platform, peid, type, text,
                               (json_int_t)event_seq(), (json_int_t)sp_wall_ms()),
                     NULL, NULL);
    free(text);
}

/* ------------------------------------------------------------------------------------------ */
/* dedupe                                                                                     */

static uint64_t seen_hash(char kind, const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    h = (h ^ (uint8_t)kind) * 1099511628211ULL;
    for (const char *p = id; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h ? h : 1;
}

static bool seen_find(sp_psup_user_t *u, char kind, const char *platform, uint64_t h)
{
    for (size_t i = 0; i < SP_PSUP_SEEN_MAX; i++) {
        const sp_psup_seen_t *e = &u->seen[i];
        if (e->h == h && e->kind == kind &&
            (platform == NULL || strcmp(e->platform, platform) == 0))
            return true;
    }
    return false;
}

/* true: already seen (a duplicate); otherwise remembered. */
static bool seen_check_add(sp_psup_user_t *u, char kind, const char *platform, const char *id)
{
    uint64_t h = seen_hash(kind, id);
    if (seen_find(u, kind, platform, h)) return true;
    sp_psup_seen_t *e = &u->seen[u->seen_pos];
    u->seen_pos = (u->seen_pos + 1) % SP_PSUP_SEEN_MAX;
    e->h = h;
    e->kind = kind;
    snprintf(e->platform, sizeof(e->platform), "%s", platform);
    return false;
}

const char *sp_psup_seen_chat_platform(sp_psup_user_t *u, const char *id)
{
    uint64_t h = seen_hash('c', id);
    for (size_t i = 0; u && i < SP_PSUP_SEEN_MAX; i++)
        if (u->seen[i].h == h && u->seen[i].kind == 'c') return u->seen[i].platform;
    return "";
}

/* ------------------------------------------------------------------------------------------ */
/* what monitors (and webhooks) deliver                                                       */

static void topic_of(char *out, size_t cap, const char *prefix, const char *user)
{
    snprintf(out, cap, "%s:%s", prefix, user);
}

/* The persisted form: the published object plus "raw" (what the encoders give with
   SP_PMSG_RAW), as a shallow copy sharing the published object's members instead of encoding
   the message a second time (chat is the hot path: docs/platforms-performance.md). */
static json_t *with_raw(json_t *pub, json_t *raw)
{
    json_t *full = pub ? json_copy(pub) : NULL;
    if (full && raw && json_object_set(full, "raw", raw) != 0) {
        json_decref(full);
        return NULL;
    }
    return full;
}

static void handle_chat(sp_psup_t *s, sp_psup_user_t *u, const char *platform,
                        const sp_chat_msg_t *m)
{
    if (m == NULL || m->id[0] == '\0') return;
    if (seen_check_add(u, 'c', platform, m->id)) {
        s->duplicates++;
        return;
    }
    json_t *pub = sp_chat_msg_to_json(m, 0);
    json_t *full = with_raw(pub, m->raw);
    if (pub == NULL || full == NULL) {
        sp_ulog(SP_LOG_WARN, "platforms", u->user_id, "chat message dropped (out of domain)",
                "platform=%s", platform);
        json_decref(pub);
        json_decref(full);
        return;
    }
    char topic[SP_TOPIC_MAX];
    topic_of(topic, sizeof(topic), "chat", u->user_id);
    sp_psup_publish(s, topic, "message", pub);
    persist(s, u, platform, m->id, "chat_message", full);
    s->events++;
}

static void handle_deleted(sp_psup_t *s, sp_psup_user_t *u, const char *platform,
                           const sp_chat_deletion_t *d)
{
    if (d == NULL || d->id[0] == '\0') return;
    if (seen_check_add(u, 'd', platform, d->id)) {
        s->duplicates++;
        return;
    }
    json_t *pub = sp_chat_deletion_to_json(d, 0);
    json_t *full = sp_chat_deletion_to_json(d, SP_PMSG_RAW);
    if (pub == NULL || full == NULL) {
        json_decref(pub);
        json_decref(full);
        return;
    }
    char topic[SP_TOPIC_MAX], peid[SP_PMSG_ID_CAP + 8];
    topic_of(topic, sizeof(topic), "chat", u->user_id);
    sp_psup_publish(s, topic, "deleted", pub);
    snprintf(peid, sizeof(peid), "deleted:%s", d->id); /* not the chat message's own row */
    persist(s, u, platform, peid, "chat_deleted", full);
    s->events++;
}

static void handle_alert(sp_psup_t *s, sp_psup_user_t *u, const char *platform,
                         const sp_alert_t *a)
{
    if (a == NULL || a->id[0] == '\0') return;
    if (seen_check_add(u, 'a', platform, a->id)) {
        s->duplicates++;
        return;
    }
    json_t *pub = sp_alert_to_json(a, 0);
    json_t *full = sp_alert_to_json(a, SP_PMSG_RAW);
    if (pub == NULL || full == NULL) {
        sp_ulog(SP_LOG_WARN, "platforms", u->user_id, "alert dropped (out of domain)",
                "platform=%s", platform);
        json_decref(pub);
        json_decref(full);
        return;
    }
    char topic[SP_TOPIC_MAX];
    topic_of(topic, sizeof(topic), "alertbox", u->user_id);
    sp_psup_publish(s, topic, "alert", pub);
    persist(s, u, platform, a->id, "alert", full);
    s->events++;
}

/* ------------------------------------------------------------------------------------------ */
/* monitors                                                                                   */

static void publish_status(sp_psup_mon_t *mon, sp_platform_status_t st, const char *error)
{
    if (error == NULL) error = "";
    if (mon->last_status == (int)st && strcmp(mon->last_error, error) == 0) return;
    mon->last_status = (int)st;
    snprintf(mon->last_error, sizeof(mon->last_error), "%s", error);
    sp_platform_status_msg_t msg;
    memset(&msg, 0, sizeof(msg));
    snprintf(msg.platform, sizeof(msg.platform), "%s", mon->platform);
    msg.status = st;
    snprintf(msg.error, sizeof(msg.error), "%s", error);
    char topic[SP_TOPIC_MAX];
    snprintf(topic, sizeof(topic), "platform:%s:%s", mon->platform, mon->u->user_id);
    sp_psup_publish(mon->s, topic, "status", sp_platform_status_to_json(&msg));
}

static void set_degraded(sp_psup_mon_t *mon, bool on)
{
    if (mon->degraded == on) return;
    mon->degraded = on;
    if (mon->s->accounts) sp_accounts_set_degraded(mon->s->accounts, mon->u->user_id,
                                                   mon->platform, on);
}

static void mon_load(sp_psup_mon_t *mon);
static void arm(sp_psup_t *s);

static void mon_failed(sp_psup_mon_t *mon, const char *why)
{
    if (mon->state != SP_PSUP_MON_RUNNING && mon->state != SP_PSUP_MON_LOADING) return;
    sp_psup_t *s = mon->s;
    uint64_t now = sp_mono_ms();
    mon->restarts[mon->rpos] = now;
    mon->rpos = (mon->rpos + 1) % (SP_PSUP_MAX_RESTARTS + 1);
    int recent = 0;
    for (size_t i = 0; i < SP_PSUP_MAX_RESTARTS + 1; i++)
        if (mon->restarts[i] && now - mon->restarts[i] < SP_PSUP_RESTART_WINDOW_MS) recent++;
    s->restarts++;
    uint64_t delay;
    if (recent > SP_PSUP_MAX_RESTARTS) {
        delay = mon->bo.max_ms;
        if (!mon->degraded) {
            sp_ulog(SP_LOG_WARN, "platforms", mon->u->user_id, "platform degraded",
                    "platform=%s restarts=%d window_ms=%d why=\"%s\"", mon->platform, recent,
                    SP_PSUP_RESTART_WINDOW_MS, why ? why : "");
            set_degraded(mon, true);
        }
        publish_status(mon, SP_PSTATUS_DEGRADED, why);
    } else {
        delay = sp_backoff_next(&mon->bo);
        sp_ulog(SP_LOG_INFO, "platforms", mon->u->user_id, "monitor failed, restarting",
                "platform=%s delay_ms=%llu why=\"%s\"", mon->platform,
                (unsigned long long)delay, why ? why : "");
        if (!mon->degraded) publish_status(mon, SP_PSTATUS_CONNECTING, why);
    }
    mon->state = SP_PSUP_MON_WAIT;
    mon->due = now + delay;
    arm(s);
}

static void mon_reauth(sp_psup_mon_t *mon, const char *why)
{
    if (mon->state == SP_PSUP_MON_REAUTH) return;
    mon->state = SP_PSUP_MON_REAUTH; /* the timer stops the monitor (never from its own call) */
    if (mon->last_status != SP_PSTATUS_NEEDS_REAUTH) { /* not again on each re-check */
        sp_ulog(SP_LOG_WARN, "platforms", mon->u->user_id,
                "account needs reauth: monitor stopped", "platform=%s", mon->platform);
        publish_status(mon, SP_PSTATUS_NEEDS_REAUTH, why);
    }
    arm(mon->s);
}

void sp_psup_auth_failed(sp_psup_t *s, const char *user_id, uint64_t gen, const char *platform)
{
    sp_psup_user_t *u = sp_map_gets(s->users, user_id);
    sp_psup_mon_t *mon = u && u->gen == gen ? sp_psup_find_mon(u, platform) : NULL;
    if (mon && mon->state != SP_PSUP_MON_ABSENT && mon->state != SP_PSUP_MON_LOADING)
        mon_reauth(mon, "reconnect the account");
}

static void mon_stop(sp_psup_mon_t *mon, bool announce)
{
    if (mon->m) {
        mon->acct->platform->monitor_stop(mon->m);
        mon->m = NULL;
    }
    if (mon->acct) {
        sp_platform_account_unref(mon->acct);
        mon->acct = NULL;
    }
    set_degraded(mon, false);
    if (announce && mon->state != SP_PSUP_MON_ABSENT) publish_status(mon, SP_PSTATUS_STOPPED, "");
    mon->state = SP_PSUP_MON_ABSENT;
}

/* ---- the sink -------------------------------------------------------------------------- */

static void sink_chat(void *ud, const sp_chat_msg_t *m)
{
    sp_psup_mon_t *mon = ud;
    handle_chat(mon->s, mon->u, mon->platform, m);
}

static void sink_deleted(void *ud, const sp_chat_deletion_t *d)
{
    sp_psup_mon_t *mon = ud;
    handle_deleted(mon->s, mon->u, mon->platform, d);
}

static void sink_alert(void *ud, const sp_alert_t *a)
{
    sp_psup_mon_t *mon = ud;
    handle_alert(mon->s, mon->u, mon->platform, a);
}

static void sink_status(void *ud, sp_platform_status_t st, const char *error)
{
    sp_psup_mon_t *mon = ud;
    if (mon->state == SP_PSUP_MON_REAUTH || mon->state == SP_PSUP_MON_ABSENT) return;
    switch (st) {
    case SP_PSTATUS_CONNECTED:
        sp_backoff_reset(&mon->bo);
        if (mon->degraded)
            sp_ulog(SP_LOG_INFO, "platforms", mon->u->user_id, "platform recovered",
                    "platform=%s", mon->platform);
        set_degraded(mon, false);
        publish_status(mon, st, error);
        break;
    case SP_PSTATUS_NEEDS_REAUTH: mon_reauth(mon, error); break;
    case SP_PSTATUS_CONNECTING:
        if (!mon->degraded) publish_status(mon, st, error);
        break;
    default: publish_status(mon, st, error); break;
    }
}

static void sink_failed(void *ud, const char *why)
{
    mon_failed(ud, why);
}

static void mon_start(sp_psup_mon_t *mon)
{
    const sp_platform_t *p = mon->acct->platform;
    mon->state = SP_PSUP_MON_RUNNING;
    if (p == NULL || p->monitor_start == NULL) return; /* no events: chat/viewers/title only */
    sp_platform_sink_t sink = { sink_chat, sink_deleted, sink_alert, sink_status, sink_failed,
                                mon };
    sp_platform_monitor_t *m = p->monitor_start(&mon->s->env, mon->acct, &sink);
    if (m != NULL && mon->m != NULL) { /* cannot happen: the old one is stopped first */
        p->monitor_stop(mon->m);
    }
    mon->m = m;
    if (m == NULL) mon_failed(mon, "monitor could not start");
}

static void on_account(int err, sp_platform_account_t *a, void *ud)
{
    sp_psup_op_t *op = ud;
    sp_psup_user_t *u = sp_psup_op_user(op);
    sp_psup_mon_t *mon = sp_psup_find_mon(u, op->platform);
    sp_psup_op_end(op);
    if (mon == NULL || mon->state != SP_PSUP_MON_LOADING) {
        if (a) sp_platform_account_unref(a);
        return;
    }
    if (err == SP_ENOTFOUND || (err == 0 && (a == NULL || a->disconnected))) {
        if (a) sp_platform_account_unref(a);
        if (mon->last_status >= 0) publish_status(mon, SP_PSTATUS_STOPPED, "disconnected");
        mon->state = SP_PSUP_MON_ABSENT; /* not connected: nothing to run */
        arm(mon->s);
        return;
    }
    if (err != 0 || a == NULL) {
        mon_failed(mon, sp_strerror(err));
        return;
    }
    mon->acct = a;
    if (a->token && sp_token_needs_reauth(a->token)) {
        mon_reauth(mon, "reconnect the account");
        return;
    }
    sp_ulog(SP_LOG_INFO, "platforms", mon->u->user_id, "monitor starting", "platform=%s",
            mon->platform);
    sp_psup_push_channel(mon, mon->u->title,
                         json_string_value(json_object_get(mon->u->categories, mon->platform)));
    mon_start(mon);
    arm(mon->s);
}

static void mon_load(sp_psup_mon_t *mon)
{
    sp_psup_t *s = mon->s;
    mon->state = SP_PSUP_MON_LOADING;
    sp_psup_op_t *op = sp_psup_op_new(s, SP_PSUP_OP_ACCOUNT, mon->u->user_id, mon->u->gen);
    snprintf(op->platform, sizeof(op->platform), "%s", mon->platform);
    s->source(s->source_ud, mon->u->user_id, mon->platform, on_account, op);
}

static void mon_restart(sp_psup_mon_t *mon)
{
    if (mon->m) {
        mon->acct->platform->monitor_stop(mon->m);
        mon->m = NULL;
    }
    if (mon->acct && mon->acct->disconnected) {
        sp_platform_account_unref(mon->acct);
        mon->acct = NULL;
    }
    if (mon->acct == NULL) {
        mon_load(mon);
        return;
    }
    mon_start(mon);
}

/* ------------------------------------------------------------------------------------------ */
/* the timer: restarts, reauth stops, viewers                                                 */

static bool viewers_on(const sp_psup_t *s)
{
    return s->env.cfg && s->env.cfg->platform_viewers_interval > 0;
}

/* What falls due within this much after a firing is done in the same firing: with 1,000
   users sampled every 30 s at their own phase the timer would otherwise fire ~33 times a second,
   each a scan of every user; coalesced it fires at most ~10 times a second. */
#define TIMER_SLACK_MS 100

static void on_timer(uv_timer_t *t)
{
    sp_psup_t *s = t->data;
    uint64_t now = sp_mono_ms() + TIMER_SLACK_MS;
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; sp_map_next(s->users, &it, &k, &kl, &v);) {
        sp_psup_user_t *u = v;
        for (size_t i = 0; i < u->n_mons; i++) {
            sp_psup_mon_t *mon = &u->mons[i];
            if (mon->state == SP_PSUP_MON_WAIT && mon->due <= now) {
                mon_restart(mon);
            } else if (mon->state == SP_PSUP_MON_REAUTH && (mon->m || mon->acct)) {
                if (mon->m) mon->acct->platform->monitor_stop(mon->m);
                mon->m = NULL;
                sp_platform_account_unref(mon->acct);
                mon->acct = NULL;
            }
        }
        if (u->next_viewers && u->next_viewers <= now) {
            u->next_viewers += (uint64_t)s->env.cfg->platform_viewers_interval;
            if (u->next_viewers <= now) /* late by a whole period (a stalled loop): re-phase */
                u->next_viewers = now + (uint64_t)s->env.cfg->platform_viewers_interval;
            sp_psup_viewers_tick(s, u);
            /* at the same pace: has a needs_reauth account been reconnected meanwhile, or a
               running one disconnected by the user? */
            for (size_t i = 0; i < u->n_mons; i++) {
                sp_psup_mon_t *mon = &u->mons[i];
                if (mon->state == SP_PSUP_MON_REAUTH && !mon->m && !mon->acct)
                    mon_load(mon);
                else if (mon->acct && mon->acct->disconnected &&
                         mon->state != SP_PSUP_MON_LOADING)
                    mon_stop(mon, true);
            }
        }
    }
    arm(s);
}

/* Re-arms the one timer for the earliest due restart, reauth stop or viewers sample. */
static void arm(sp_psup_t *s)
{
    uint64_t now = sp_mono_ms(), due = 0;
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; sp_map_next(s->users, &it, &k, &kl, &v);) {
        sp_psup_user_t *u = v;
        for (size_t i = 0; i < u->n_mons; i++) {
            sp_psup_mon_t *mon = &u->mons[i];
            uint64_t d = 0;
            if (mon->state == SP_PSUP_MON_WAIT) d = mon->due;
            if (mon->state == SP_PSUP_MON_REAUTH && (mon->m || mon->acct)) d = now;
            if (d && (due == 0 || d < due)) due = d;
        }
        if (u->next_viewers && (due == 0 || u->next_viewers < due)) due = u->next_viewers;
    }
    if (due == 0) {
        uv_timer_stop(&s->timer);
        return;
    }
    uv_timer_start(&s->timer, on_timer, due > now ? due - now : 0, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                  */

static void default_source(void *ud, const char *user_id, const char *platform,
                           sp_accounts_get_cb cb, void *cb_ud)
{
    sp_psup_t *s = ud;
    if (s->accounts == NULL) {
        cb(SP_ENOTFOUND, NULL, cb_ud);
        return;
    }
    sp_accounts_get(s->accounts, user_id, platform, cb, cb_ud);
}

sp_psup_t *sp_psup_new(const sp_platform_env_t *env, struct sp_store_s *store,
                       struct sp_pubsub_s *bus, sp_accounts_t *accounts)
{
    if (env == NULL || env->loop == NULL) return NULL;
    sp_psup_t *s = sp_calloc(1, sizeof(*s));
    s->env = *env;
    s->store = store;
    s->bus = bus;
    s->accounts = accounts;
    s->source = default_source;
    s->source_ud = s;
    s->bo_base = DEFAULT_BO_BASE_MS;
    s->bo_max = DEFAULT_BO_MAX_MS;
    s->users = sp_map_new(NULL);
    uv_timer_init(env->loop, &s->timer);
    s->timer.data = s;
    return s;
}

void sp_psup_set_bus(sp_psup_t *s, struct sp_pubsub_s *bus)
{
    s->bus = bus;
}

void sp_psup_set_account_source(sp_psup_t *s, sp_psup_account_fn fn, void *ud)
{
    s->source = fn ? fn : default_source;
    s->source_ud = fn ? ud : s;
}

void sp_psup_set_backoff(sp_psup_t *s, uint64_t base_ms, uint64_t max_ms)
{
    if (base_ms == 0 || max_ms < base_ms) return;
    s->bo_base = base_ms;
    s->bo_max = max_ms;
}

static void user_free(sp_psup_user_t *u)
{
    sp_free(u->title);
    json_decref(u->categories);
    sp_free(u);
}

/* Stops every monitor of u and forgets it; final: fill the stream's peak/avg viewers. */
static void end_user(sp_psup_t *s, sp_psup_user_t *u, bool final)
{
    for (size_t i = 0; i < u->n_mons; i++) {
        mon_stop(&u->mons[i], final);
        if (s->reg)
            sp_registry_unregister(s->reg, SP_REG_PLATFORM_MONITOR, u->user_id,
                                   u->mons[i].platform, &u->mons[i]);
    }
    if (final && u->stream_id[0]) sp_psup_viewers_final(s, u->stream_id);
    sp_ulog(SP_LOG_INFO, "platforms", u->user_id, "platform monitors stopped",
            "stream_id=%s n=%zu", u->stream_id, u->n_mons);
    sp_map_dels(s->users, u->user_id, NULL);
    user_free(u);
}

static void on_closed(uv_handle_t *h)
{
    sp_free(h->data);
}

void sp_psup_free(sp_psup_t *s)
{
    if (s == NULL) return;
    const char *k;
    size_t kl;
    void *v;
    for (;;) {
        size_t it = 0;
        if (!sp_map_next(s->users, &it, &k, &kl, &v)) break;
        end_user(s, v, false);
    }
    sp_map_free(s->users);
    for (sp_psup_op_t *op = s->ops; op;) {
        sp_psup_op_t *next = op->next;
        op->s = NULL;
        op->prev = op->next = NULL;
        if (op->batch) sp_psup_batch_cancel(op->batch);
        op = next;
    }
    s->ops = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

void sp_psup_stream_started(sp_psup_t *s, const char *user_id, const char *stream_id,
                            const char *title, json_t *categories,
                            const char *const *platforms, size_t n)
{
    if (!user_id || !stream_id || strlen(user_id) >= SP_PSUP_USER_CAP ||
        strlen(stream_id) >= SP_PSUP_USER_CAP || !user_id[0])
        return;
    sp_psup_user_t *u = sp_map_gets(s->users, user_id);
    if (u && strcmp(u->stream_id, stream_id) == 0) return; /* idempotent */
    if (u) end_user(s, u, true);                            /* an older stream never ended */
    u = sp_calloc(1, sizeof(*u));
    snprintf(u->user_id, sizeof(u->user_id), "%s", user_id);
    snprintf(u->stream_id, sizeof(u->stream_id), "%s", stream_id);
    u->gen = ++s->next_gen;
    u->title = title && title[0] ? sp_strdup(title) : NULL;
    u->categories = json_is_object(categories) ? json_deep_copy(categories) : NULL;
    for (size_t i = 0; i < n && u->n_mons < SP_PLATFORM_MAX; i++) {
        const char *p = platforms[i];
        if (!p || !p[0] || strlen(p) >= SP_PMSG_PLATFORM_CAP || sp_psup_find_mon(u, p)) continue;
        sp_psup_mon_t *mon = &u->mons[u->n_mons++];
        mon->s = s;
        mon->u = u;
        snprintf(mon->platform, sizeof(mon->platform), "%s", p);
        mon->last_status = -1;
        sp_backoff_init(&mon->bo, s->bo_base, s->bo_max);
        /* the seed's key {platform_monitor, user_id, platform} */
        if (s->reg)
            sp_registry_register(s->reg, SP_REG_PLATFORM_MONITOR, u->user_id, mon->platform,
                                 mon);
    }
    if (viewers_on(s))
        u->next_viewers = sp_mono_ms() + (uint64_t)s->env.cfg->platform_viewers_interval;
    sp_map_sets(s->users, u->user_id, u);
    sp_ulog(SP_LOG_INFO, "platforms", u->user_id, "platform monitors starting",
            "stream_id=%s platforms=%zu", u->stream_id, u->n_mons);
    uint64_t gen = u->gen;
    for (size_t i = 0; i < u->n_mons; i++) {
        /* a synchronous account answer may run anything; the user must still be this one */
        if (sp_map_gets(s->users, user_id) != u || u->gen != gen) break;
        mon_load(&u->mons[i]);
    }
    arm(s);
}

void sp_psup_stream_ended(sp_psup_t *s, const char *user_id, const char *stream_id)
{
    if (!user_id) return;
    sp_psup_user_t *u = sp_map_gets(s->users, user_id);
    if (u == NULL) return;
    if (stream_id && stream_id[0] && strcmp(u->stream_id, stream_id) != 0) return;
    end_user(s, u, true);
    arm(s);
}

void sp_psup_metadata(sp_psup_t *s, const char *user_id, const char *title,
                      json_t *categories)
{
    sp_psup_user_t *u = user_id ? sp_map_gets(s->users, user_id) : NULL;
    if (u == NULL) return;
    if (title && title[0]) {
        sp_free(u->title);
        u->title = sp_strdup(title);
    }
    if (json_is_object(categories)) {
        if (u->categories == NULL) u->categories = json_object();
        json_object_update(u->categories, categories);
    }
    for (size_t i = 0; i < u->n_mons; i++) {
        sp_psup_mon_t *mon = &u->mons[i];
        if (mon->acct && (mon->state == SP_PSUP_MON_RUNNING || mon->state == SP_PSUP_MON_WAIT))
            sp_psup_push_channel(
                mon, title && title[0] ? title : NULL,
                json_string_value(json_object_get(categories, mon->platform)));
    }
}

void sp_psup_account_status(sp_psup_t *s, const char *user_id, const char *platform,
                            sp_platform_status_t st, const char *error)
{
    sp_psup_user_t *u = user_id ? sp_map_gets(s->users, user_id) : NULL;
    sp_psup_mon_t *mon = platform ? sp_psup_find_mon(u, platform) : NULL;
    if (mon == NULL) return;
    switch (st) {
    case SP_PSTATUS_NEEDS_REAUTH:
        if (mon->state != SP_PSUP_MON_ABSENT) mon_reauth(mon, error);
        break;
    case SP_PSTATUS_CONNECTED:
        if (mon->state == SP_PSUP_MON_REAUTH || mon->state == SP_PSUP_MON_ABSENT) {
            if (mon->m) mon->acct->platform->monitor_stop(mon->m);
            mon->m = NULL;
            if (mon->acct) sp_platform_account_unref(mon->acct);
            mon->acct = NULL;
            mon->last_status = -1;
            mon_load(mon);
        }
        break;
    case SP_PSTATUS_STOPPED: mon_stop(mon, true); break;
    default: break;
    }
    arm(s);
}

/* ------------------------------------------------------------------------------------------ */
/* webhook deliveries                                                                         */

static sp_psup_mon_t *find_by_account(sp_psup_t *s, const char *platform, const char *puid)
{
    const char *k;
    size_t kl;
    void *v;
    if (!platform || !puid || !puid[0]) return NULL;
    for (size_t it = 0; sp_map_next(s->users, &it, &k, &kl, &v);) {
        sp_psup_user_t *u = v;
        for (size_t i = 0; i < u->n_mons; i++) {
            sp_psup_mon_t *mon = &u->mons[i];
            if (mon->acct && strcmp(mon->platform, platform) == 0 &&
                strcmp(mon->acct->who.id, puid) == 0)
                return mon;
        }
    }
    return NULL;
}

/* The running monitor of the account a webhook delivery names, or NULL (counted, logged). */
static sp_psup_mon_t *route(sp_psup_t *s, const char *platform, const char *puid,
                            const char *what)
{
    sp_psup_mon_t *mon = find_by_account(s, platform, puid);
    if (mon == NULL) {
        s->unrouted++;
        sp_debug("platforms", "webhook delivery for no running stream", "what=%s platform=%s",
                 what, platform ? platform : "");
    }
    return mon;
}

void sp_psup_inject_chat(sp_psup_t *s, const char *platform, const char *platform_user_id,
                         const sp_chat_msg_t *m)
{
    sp_psup_mon_t *mon = route(s, platform, platform_user_id, "chat");
    if (mon) handle_chat(s, mon->u, mon->platform, m);
}

void sp_psup_inject_alert(sp_psup_t *s, const char *platform, const char *platform_user_id,
                          const sp_alert_t *a)
{
    sp_psup_mon_t *mon = route(s, platform, platform_user_id, "alert");
    if (mon) handle_alert(s, mon->u, mon->platform, a);
}

void sp_psup_inject_deleted(sp_psup_t *s, const char *platform, const char *platform_user_id,
                            const sp_chat_deletion_t *d)
{
    sp_psup_mon_t *mon = route(s, platform, platform_user_id, "chat_deleted");
    if (mon) handle_deleted(s, mon->u, mon->platform, d);
}

void sp_psup_set_registry(sp_psup_t *s, sp_registry_t *reg)
{
    s->reg = reg;
}

void sp_psup_inject_revoked(sp_psup_t *s, const char *platform, const char *platform_user_id,
                            const char *why)
{
    sp_psup_mon_t *mon = route(s, platform, platform_user_id, "revocation");
    if (mon == NULL) return;
    if (mon->state != SP_PSUP_MON_ABSENT) mon_reauth(mon, why && why[0] ? why : "revoked");
    arm(s);
}

json_t *sp_psup_stats(sp_psup_t *s, const char *user_id)
{
    sp_psup_user_t *u = user_id ? sp_map_gets(s->users, user_id) : NULL;
    if (u == NULL || !u->has_last) return NULL;
    json_t *v = sp_viewers_to_json(&u->v_last);
    if (v == NULL) return NULL;
    return json_pack("{s:o, s:I}", "viewers", v, "peak_viewers", (json_int_t)u->peak_total);
}

json_t *sp_psup_debug(sp_psup_t *s)
{
    size_t monitors = 0, degraded = 0;
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; sp_map_next(s->users, &it, &k, &kl, &v);) {
        sp_psup_user_t *u = v;
        for (size_t i = 0; i < u->n_mons; i++) {
            if (u->mons[i].m) monitors++;
            if (u->mons[i].degraded) degraded++;
        }
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "users",
                     (json_int_t)sp_map_count(s->users), "monitors", (json_int_t)monitors,
                     "restarts", (json_int_t)s->restarts, "degraded", (json_int_t)degraded,
                     "events", (json_int_t)s->events, "duplicates", (json_int_t)s->duplicates,
                     "unrouted", (json_int_t)s->unrouted);
}
