/*
 * sp_ls_monitor: the user's live input (CloudflareManager: create, restore on the built-in
 * relay) and its monitor (CloudflareLiveInputMonitor: status polling within the call budget;
 * webhooks arrive through sp_ls_stream.c), and the output refresh while streaming (health,
 * outputs the media service lost). Layer: above sp_ls_engine.c (sp_livestream_internal.h).
 */
#include "livestream/sp_livestream_internal.h"
#include "livestream/sp_ls_health.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

/* ------------------------------------------------------------------------- */
/* input status                                                               */

static void publish_input(sp_ls_manager_t *m)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "cloudflare_input:%s", m->user_id);
    sp_ls_publish(m->ls, topic, "input_status",
                  json_pack("{s:s, s:I}", "status", sp_input_status_name(m->input_status), "at",
                            (json_int_t)sp_wall_ms()));
}

int sp_ls_apply_input(sp_ls_manager_t *m, sp_input_status_t st, int64_t event_at,
                      const char *source, sp_ls_persist_fn done, void *ud)
{
    sp_livestream_t *ls = m->ls;
    if (event_at < m->input_event_at) {
        bool wh = strcmp(source, "webhook") == 0;
        ls->counters.webhooks_stale += wh;
        sp_ulog(wh ? SP_LOG_INFO : SP_LOG_DEBUG, "livestream", m->user_id,
                "stale input event ignored",
                "source=%s status=%s event_at=%lld last=%lld", source, sp_input_status_name(st),
                (long long)event_at, (long long)m->input_event_at);
        return SP_LS_INPUT_STALE;
    }
    sp_input_status_t prev = m->input_status;
    m->input_event_at = event_at;
    m->input_status = st;
    if (st == SP_INPUT_CONNECTED && m->last_error &&
        strncmp(m->last_error, "input errored", 13) == 0)
        sp_ls_set_str(&m->last_error, NULL);
    sp_ls_input_observed(m, st, event_at); /* last known status, event log */
    if (prev != st) {
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "cloudflare input status",
                "source=%s status=%s", source, sp_input_status_name(st));
        publish_input(m);
    }
    if (st == SP_INPUT_CONNECTED && prev != st) {
        /* the encoder is back: the outputs reconnect now, show it without a poll period */
        uint64_t soon = sp_mono_ms() + SP_LS_QUICK_OUT_POLL_MS;
        if (m->next_out_poll_mono > soon) m->next_out_poll_mono = soon;
        m->quick_out_polls = SP_LS_QUICK_OUT_POLLS;
    }
    sp_ss_event_t ev = { .type = st == SP_INPUT_CONNECTED ? SP_SSE_INPUT_CONNECTED
                                                          : SP_SSE_INPUT_DISCONNECTED };
    sp_ss_result_t r = sp_ls_mgr_apply(m, &ev, done, ud);
    if (r.actions & SP_SSA_PERSIST) return SP_LS_INPUT_APPLIED;
    if (prev == st) {
        if (strcmp(source, "webhook") == 0) ls->counters.webhooks_duplicate++;
        if (r.actions & SP_SSA_PUBLISH) sp_ls_publish_state(m, "input");
        return SP_LS_INPUT_DUPLICATE;
    }
    /* status changed without a state change (e.g. while ending): persist and show it */
    sp_ls_publish_state(m, "input");
    sp_ls_persist(m, done, ud);
    return SP_LS_INPUT_APPLIED;
}

/* ------------------------------------------------------------------------- */
/* CloudflareManager: the user's live input                                   */

static void input_finish(sp_ls_manager_t *m)
{
    sp_ls_mgr_fn w = m->input_waiter;
    m->input_waiter = NULL;
    if (w) w(m);
}

static void on_input_row(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    sp_ls_manager_t *m = ud;
    if (err != 0)
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "live_inputs insert failed", "err=%s",
                sp_err_name(err));
    if (!m->stopped) {
        sp_ls_publish_state(m, "input_created");
        input_finish(m);
    }
    sp_ls_unref(m);
}

void sp_ls_store_input(sp_ls_manager_t *m, const sp_ls_input_t *in, bool reset_status,
                       sp_store_cb cb, void *ud)
{
    sp_livestream_t *ls = m->ls;
    char *sealed = sp_ls_seal(m->user_id, "input_key", in->stream_key);
    sp_store_query(ls->store,
                   reset_status
                       ? "INSERT INTO live_inputs (user_id, provider, input_uid, rtmp_url, "
                         "stream_key_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
                         "ON CONFLICT (user_id) DO UPDATE SET provider = excluded.provider, "
                         "input_uid = excluded.input_uid, rtmp_url = excluded.rtmp_url, "
                         "stream_key_sealed = excluded.stream_key_sealed, last_status = NULL, "
                         "last_status_at = NULL"
                       : "INSERT INTO live_inputs (user_id, provider, input_uid, rtmp_url, "
                         "stream_key_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
                         "ON CONFLICT (user_id) DO UPDATE SET provider = excluded.provider, "
                         "input_uid = excluded.input_uid, rtmp_url = excluded.rtmp_url, "
                         "stream_key_sealed = excluded.stream_key_sealed",
                   json_pack("[s, s, s, s, s, I]", m->user_id, ls->media.ops->provider, in->uid,
                             in->rtmp_url ? in->rtmp_url : "", sealed ? sealed : "",
                             (json_int_t)sp_wall_ms()),
                   cb, ud);
    sp_free(sealed);
}

static void on_input_created(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    sp_ls_manager_t *m = ud;
    sp_livestream_t *ls = m->ls;
    m->input_creating = false;
    if (m->stopped) goto out;
    if (err != 0 || in == NULL || in->uid == NULL || in->stream_key == NULL) {
        ls->counters.input_errors++;
        sp_sup_decision_t d = sp_sup_failure(&m->input_sup, sp_mono_ms());
        m->input_retry_mono = sp_mono_ms() + d.delay_ms;
        m->degraded = d.degraded;
        sp_ls_set_str(&m->last_error, errmsg && errmsg[0] ? errmsg : "live input creation failed");
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "cloudflare input create failed",
                "err=%s retry_ms=%llu", sp_err_name(err ? err : SP_EPROTO),
                (unsigned long long)d.delay_ms);
        sp_ls_mgr_arm_timer(m);
        input_finish(m);
        goto out;
    }
    sp_sup_success(&m->input_sup);
    m->degraded = false;
    sp_ls_set_str(&m->last_error, NULL);
    m->input_retry_mono = 0;
    ls->counters.inputs_created++;
    sp_ls_mgr_set_input(m, in->uid, in->rtmp_url, in->stream_key);
    sp_ls_protection_sync(m, true); /* a new relay input has it on */
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "cloudflare input created", "input=%s",
            in->uid);
    sp_ls_ref(m);
    sp_ls_store_input(m, in, false, on_input_row, m);
out:
    sp_ls_unref(m);
}

void sp_ls_input_ensure(sp_ls_manager_t *m, sp_ls_mgr_fn done)
{
    sp_livestream_t *ls = m->ls;
    if (done) m->input_waiter = done;
    if (m->input_uid != NULL || !ls->has_media) {
        input_finish(m);
        return;
    }
    if (m->input_creating) return;
    m->input_creating = true;
    sp_ls_ref(m);
    int rc = ls->media.ops->create_input(ls->media.ctx, m->user_id, on_input_created, m);
    if (rc != 0) on_input_created(rc, sp_strerror(rc), NULL, m);
}

/* ------------------------------------------------------------------------- */
/* CloudflareLiveInputMonitor: polling (webhooks are in sp_ls_stream.c)      */

typedef struct {
    sp_ls_manager_t *m;
    int64_t issued_at;
} poll_ctx_t;

static uint64_t poll_interval(sp_ls_manager_t *m, bool prio)
{
    uint64_t base = (uint64_t)m->ls->cfg->cloudflare_input_poll_interval;
    if (base == 0) base = 15000;
    return prio ? base : base * 4;
}

static bool poll_prio(sp_ls_manager_t *m)
{
    return m->ss.state != SP_SS_OFFLINE || m->input_verify ||
           (m->ls->presence && sp_presence_sessions(m->ls->presence, m->user_id) > 0);
}

/* Consecutive failed polls after which a loaded manager stops waiting for its input's status
   (it is shown `unknown`; the next poll that answers still applies). */
#define VERIFY_MAX_ERRORS 5

/* The stored input status was confirmed (or given up on): the manager may go when unused. */
static void input_verified(sp_ls_manager_t *m)
{
    m->input_verify = false;
    sp_ls_mgr_recheck_presence(m);
}

static void on_input_restored(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    sp_ls_manager_t *m = ud;
    m->input_restoring = false;
    if (m->stopped) goto out;
    if (err != 0 || in == NULL || in->uid == NULL || m->input_uid == NULL ||
        strcmp(in->uid, m->input_uid) != 0) {
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "live input restore failed",
                "err=%s msg=\"%s\"", sp_err_name(err ? err : SP_EPROTO), errmsg ? errmsg : "");
        goto out;
    }
    m->ls->counters.inputs_restored++;
    sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "live input restored on the media service",
            "input=%s state=%s", in->uid, sp_ss_state_name(m->ss.state));
    m->next_poll_mono = 0;
    m->next_out_poll_mono = 0; /* its outputs are gone too: the refresh recreates them */
    sp_ls_protection_sync(m, true);
out:
    sp_ls_unref(m);
}

/* The built-in relay lost the input (started without its state file): put it back with the
   same uid and key, so the encoder reconnects with its settings unchanged. */
static void input_restore(sp_ls_manager_t *m)
{
    sp_livestream_t *ls = m->ls;
    if (m->input_restoring || !ls->media.ops->restore_input || !m->input_uid || !m->stream_key)
        return;
    m->input_restoring = true;
    sp_ls_ref(m);
    int rc = ls->media.ops->restore_input(ls->media.ctx, m->user_id, m->input_uid, m->stream_key,
                                          on_input_restored, m);
    if (rc != 0) on_input_restored(rc, sp_strerror(rc), NULL, m);
}

static void health_update(sp_ls_manager_t *m, const json_t *raw);

static void on_polled(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    poll_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    m->polling = false;
    if (m->stopped) goto out;
    uint64_t now = sp_mono_ms();
    if (err != 0 || in == NULL) {
        ls->counters.poll_errors++;
        uint64_t delay = sp_backoff_next(&m->poll_bo);
        uint64_t iv = poll_interval(m, poll_prio(m));
        m->next_poll_mono = now + (delay > iv ? delay : iv);
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "input poll failed",
                "err=%s msg=\"%s\" state_kept=%s", sp_err_name(err ? err : SP_EPROTO),
                errmsg ? errmsg : "", sp_ss_state_name(m->ss.state));
        if (m->input_status != SP_INPUT_UNKNOWN) {
            /* keep the stream state; only show that we do not know */
            m->input_status = SP_INPUT_UNKNOWN;
            publish_input(m);
            sp_ls_publish_state(m, "input_unknown");
        }
        if (err == SP_ENOTFOUND) input_restore(m);
        if (m->input_verify && m->poll_bo.attempt >= VERIFY_MAX_ERRORS) input_verified(m);
        goto out;
    }
    sp_backoff_reset(&m->poll_bo);
    m->next_poll_mono = now + poll_interval(m, poll_prio(m));
    sp_input_status_t st = in->status; /* NONE (never connected) counts as not connected */
    if (st == SP_INPUT_UNKNOWN) goto out;
    /* the poll's event time is when Cloudflare says the status began, so a webhook about a
       later transition is never taken for stale (and an older one is); without it, the time
       the poll was issued */
    int64_t at = in->since_ms > 0 ? in->since_ms : c->issued_at;
    if (at > c->issued_at) at = c->issued_at;
    if (st == SP_INPUT_NONE && !m->ss.input_connected) at = 0; /* nothing new to say */
    if (m->input_status == SP_INPUT_UNKNOWN) at = c->issued_at; /* first answer after an outage */
    st = sp_ls_input_none_mapped(m, st); /* a restarted media service forgot the connection */
    if (m->input_verify) {
        /* the first answer since the manager was loaded: what the media service says now wins
           over the stored status (the load keeps no event time; only a webhook received since
           the load, with a later provider time, can make this answer stale) */
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "input status verified",
                "stored=%s media=%s state=%s", sp_input_status_name(m->input_status),
                sp_input_status_name(st), sp_ss_state_name(m->ss.state));
    }
    sp_ls_apply_input(m, st, at, "poll", NULL, NULL);
    health_update(m, st == SP_INPUT_CONNECTED ? in->health : NULL);
    sp_ls_recording_update(m, in->recording);
    if (m->input_verify) input_verified(m);
out:
    sp_ls_unref(m);
    sp_free(c);
}

/* keeps what a poll reported (NULL: none); publishes a change */
static void health_update(sp_ls_manager_t *m, const json_t *raw)
{
    json_t *h = raw ? sp_ls_health_sanitize(raw) : NULL;
    bool changed = (h == NULL) != (m->input_health == NULL) ||
                   (h && !json_equal(h, m->input_health));
    json_decref(m->input_health);
    m->input_health = h;
    if (changed) sp_ls_publish_state(m, "input_health");
}

static bool poll_one(sp_ls_manager_t *m)
{
    sp_livestream_t *ls = m->ls;
    if (ls->media.ops->poll_allowed && !ls->media.ops->poll_allowed(ls->media.ctx)) {
        ls->counters.poll_skipped_budget++;
        return false;
    }
    poll_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->issued_at = sp_wall_ms();
    m->polling = true;
    ls->counters.polls++;
    sp_ls_ref(m);
    int rc = ls->media.ops->get_input(ls->media.ctx, m->input_uid, on_polled, c);
    if (rc == SP_ERATELIMIT) {
        /* the client's budget keeps its reserve for interactive calls: not an outage */
        ls->counters.polls--;
        ls->counters.poll_skipped_budget++;
        m->polling = false;
        sp_free(c);
        sp_ls_unref(m);
        return false;
    }
    if (rc != 0) on_polled(rc, sp_strerror(rc), NULL, c);
    return true;
}

/* ------------------------------------------------------------------------- */
/* output refresh while streaming: health + outputs the media service lost     */

typedef struct {
    sp_ls_manager_t *m;
    uint64_t gen;
} outpoll_ctx_t;

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void on_outputs_polled(int err, const char *errmsg, const sp_ls_output_t *outs, size_t n,
                              void *ud)
{
    outpoll_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    m->out_polling = false;
    if (m->stopped) goto out;
    m->next_out_poll_mono = sp_mono_ms() + poll_interval(m, true);
    if (err != 0) {
        /* health unknown for now; never a reason to touch the stream or its outputs */
        sp_ulog(SP_LOG_DEBUG, "livestream", m->user_id, "output refresh failed",
                "err=%s msg=\"%s\"", sp_err_name(err), errmsg ? errmsg : "");
        bool known = false;
        for (size_t i = 0; i < m->n_outs; i++) {
            if (m->outs[i]->h_status && m->outs[i]->state == SP_OUT_ACTIVE) known = true;
            sp_ls_out_clear_health(m->outs[i]);
        }
        if (known) sp_ls_publish_state(m, "output_health");
        goto out;
    }
    bool changed = false;
    bool settling = false;
    for (size_t i = 0; i < m->n_outs; i++) {
        sp_ls_out_t *o = m->outs[i];
        const sp_ls_output_t *r = NULL;
        for (size_t j = 0; o->output_uid && j < n; j++)
            if (outs[j].uid && strcmp(outs[j].uid, o->output_uid) == 0) r = &outs[j];
        const char *st = r ? r->status : NULL;
        const char *le = r && r->status ? r->last_error : NULL;
        if (!str_eq(st, o->h_status) || !str_eq(le, o->h_error)) {
            if (o->state == SP_OUT_ACTIVE && st != NULL)
                sp_ulog(strcmp(st, "error") == 0 ? SP_LOG_WARN : SP_LOG_INFO, "livestream",
                        m->user_id, "output health", "destination=%s output=%s status=%s "
                        "error=\"%s\"", o->destination_id ? o->destination_id : "",
                        o->output_uid ? o->output_uid : "", st, le ? le : "");
            if (o->state == SP_OUT_ACTIVE && (st != NULL || o->h_status != NULL)) changed = true;
            bool err_now = st && strcmp(st, "error") == 0;
            bool err_was = o->h_status && strcmp(o->h_status, "error") == 0;
            if (o->state == SP_OUT_ACTIVE && err_now != err_was && (err_now || st))
                sp_ls_event_output(m, o, err_now ? "output_error" : "output_recovered", le);
            sp_ls_set_str(&o->h_status, st);
            sp_ls_set_str(&o->h_error, le);
        }
        /* only a backend that reports health (the relay) has something to settle */
        if (o->state == SP_OUT_ACTIVE && st != NULL &&
            (strcmp(st, "idle") == 0 || strcmp(st, "connecting") == 0))
            settling = true;
        o->h_bytes = r && r->status ? r->bytes : -1;
        o->h_reconnects = r && r->status ? r->reconnects : -1;
    }
    /* an output just created and not forwarding yet: look again soon, a few times */
    if (settling && m->quick_out_polls > 0) {
        m->quick_out_polls--;
        uint64_t soon = sp_mono_ms() + SP_LS_QUICK_OUT_POLL_MS;
        if (m->next_out_poll_mono > soon) m->next_out_poll_mono = soon;
    } else if (!settling) {
        m->quick_out_polls = 0;
    }
    /* outputs the media service no longer has (e.g. the relay lost its state): recreate.
       Only on a quiet list: nothing changed on our side since it was issued. */
    bool quiet = c->gen == m->out_gen && !m->reconciling && !m->needs_reconcile &&
                 m->ss.state == SP_SS_STREAMING && !m->ss.starting;
    for (size_t i = 0; quiet && i < m->n_outs; i++)
        if (m->outs[i]->inflight) quiet = false;
    if (quiet) {
        uint64_t lost = ls->counters.outputs_lost;
        sp_ls_reconcile_apply(m, outs, n, true);
        if (ls->counters.outputs_lost != lost) changed = true;
        sp_ls_outputs_pump(m);
        sp_ls_mgr_arm_timer(m);
    }
    if (changed) sp_ls_publish_state(m, "output_health");
out:
    sp_ls_unref(m);
    sp_free(c);
}

static bool outputs_refresh_due(sp_ls_manager_t *m, uint64_t now)
{
    if (m->ss.state != SP_SS_STREAMING || m->out_polling || m->reconciling ||
        m->needs_reconcile || now < m->next_out_poll_mono)
        return false;
    for (size_t i = 0; i < m->n_outs; i++)
        if (m->outs[i]->state == SP_OUT_ACTIVE) return true;
    return false;
}

static bool outputs_refresh(sp_ls_manager_t *m)
{
    sp_livestream_t *ls = m->ls;
    int (*list)(void *, const char *, sp_ls_list_cb, void *) =
        ls->media.ops->list_outputs_poll ? ls->media.ops->list_outputs_poll
                                         : ls->media.ops->list_outputs;
    outpoll_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->gen = m->out_gen;
    m->out_polling = true;
    ls->counters.output_polls++;
    sp_ls_ref(m);
    int rc = list(ls->media.ctx, m->input_uid, on_outputs_polled, c);
    if (rc != 0) {
        ls->counters.output_polls--;
        m->out_polling = false;
        m->next_out_poll_mono = sp_mono_ms() + poll_interval(m, true);
        sp_free(c);
        sp_ls_unref(m);
        if (rc == SP_ERATELIMIT) ls->counters.poll_skipped_budget++;
        return rc != SP_ERATELIMIT;
    }
    return true;
}

void sp_ls_poll_tick(sp_livestream_t *ls)
{
    if (!ls->has_media || ls->shutting_down) return;
    uint64_t now = sp_mono_ms();
    /* two passes: users on the page or live first, then the rest */
    for (int pass = 0; pass < 2; pass++) {
        size_t it = 0;
        void *v;
        while (sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, NULL, NULL, &v)) {
            sp_ls_manager_t *m = v;
            if (m->stopped || !m->loaded || m->input_uid == NULL) continue;
            if (poll_prio(m) != (pass == 0)) continue;
            if (pass == 0 && outputs_refresh_due(m, now) && !outputs_refresh(m)) return;
            if (m->polling || now < m->next_poll_mono) continue;
            if (!poll_one(m)) return; /* out of budget: the rest waits */
        }
    }
}
