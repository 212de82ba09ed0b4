/*
 * sp_ls_engine: executes the stream state machine's actions for one manager
 * (StreamStateServer), runs the user's outputs (CloudflareOutputManager) and start-up
 * reconciliation. The two call each other (effects pump the outputs; output results are
 * state machine events), so they share this file. Layer: above sp_ls_manager.c
 * (sp_livestream_internal.h).
 */
#include "livestream/sp_livestream_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

static const char *const SQL_OUTPUT_ROW =
    "UPDATE stream_outputs SET state = $2, output_uid = $3, last_error = $4, updated_at = $5 "
    "WHERE id = $1";

static void write_row(sp_ls_out_t *o)
{
    sp_ls_write(o->m, SQL_OUTPUT_ROW,
                json_pack("[s, s, s?, s?, I]", o->row_id, sp_out_state_name(o->state),
                          o->output_uid, o->last_error, (json_int_t)sp_wall_ms()));
}

/* ------------------------------------------------------------------------- */
/* state machine execution                                                    */

typedef struct {
    sp_ls_manager_t *m;
    sp_ss_result_t r;
    sp_ss_state_t before;
    char closed_stream[SP_UUID_STRLEN];
    sp_ls_persist_fn done;
    void *ud;
} apply_ctx_t;

static void effects(apply_ctx_t *c)
{
    sp_ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    unsigned a = c->r.actions;
    if (c->before != m->ss.state) {
        ls->counters.transitions++;
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "stream state_changed",
                "from=%s to=%s stream_id=%s reason=%s", sp_ss_state_name(c->before),
                sp_ss_state_name(m->ss.state),
                c->closed_stream[0] ? c->closed_stream : m->stream_id,
                c->r.reason ? c->r.reason : sp_ss_end_reason_name(m->ss.end_reason));
    }
    /* a start that failed everywhere is answered with the outputs' errors, before cleanup */
    if (c->r.reason && strcmp(c->r.reason, "all_outputs_failed") == 0)
        sp_ls_answer_start(m, c->r.reason);
    else if (m->start_cb && m->ss.state != SP_SS_STREAMING)
        sp_ls_answer_start(m, "ended");
    if (a & SP_SSA_DELETE_OUTPUTS) {
        for (size_t i = 0; i < m->n_outs; i++) {
            sp_ls_out_t *o = m->outs[i];
            if (o->state != SP_OUT_CLOSED) {
                o->state = SP_OUT_DELETING;
                o->next_at_mono = 0;
                o->delete_attempts = 0;
            }
        }
        if (m->ss.state == SP_SS_ENDING) m->cleanup_started = true;
    }
    if (a & SP_SSA_STOP_MONITORS)
        sp_ls_hook_ending(m, c->closed_stream[0] ? c->closed_stream : m->stream_id);
    if (a & SP_SSA_CLOSE_STREAM) {
        ls->counters.streams_ended++;
        char topic[128];
        snprintf(topic, sizeof(topic), "stream_lifecycle:%s", m->user_id);
        sp_ls_publish(ls, topic, "stream_ended",
                      json_pack("{s:s, s:s}", "stream_id", c->closed_stream, "end_reason",
                                sp_ss_end_reason_name(m->ss.end_reason)));
        sp_ls_record_event(m, c->closed_stream, "stream_ended",
                           json_pack("{s:s, s:s}", "stream_id", c->closed_stream, "end_reason",
                                     sp_ss_end_reason_name(m->ss.end_reason)));
    }
    if (a & SP_SSA_PUBLISH) sp_ls_publish_state(m, c->r.reason);
    if (c->before != m->ss.state)
        sp_ls_record_event(m, c->closed_stream[0] ? c->closed_stream : m->stream_id,
                           "state_changed",
                           json_pack("{s:s, s:s, s:s?}", "from", sp_ss_state_name(c->before), "to",
                                     sp_ss_state_name(m->ss.state), "reason", c->r.reason));
    sp_ls_mgr_arm_timer(m);
    sp_ls_outputs_pump(m);
    if (m->ss.state == SP_SS_OFFLINE) sp_ls_mgr_recheck_presence(m);
    sp_ls_autostart_after(m, c->before); /* auto go-live (sp_ls_settings.c) */
}

static void on_apply_persisted(sp_ls_manager_t *m, int err, void *ud)
{
    apply_ctx_t *c = ud;
    (void)m;
    if (!c->m->stopped) effects(c);
    if (c->done) c->done(c->m, err, c->ud);
    sp_ls_unref(c->m);
    sp_free(c);
}

static void on_apply_tx(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    apply_ctx_t *c = ud;
    if (err != 0)
        sp_ulog(SP_LOG_ERROR, "livestream", c->m->user_id, "persist (close stream) failed",
                "err=%s", sp_err_name(err));
    on_apply_persisted(c->m, err, c);
}

sp_ss_result_t sp_ls_mgr_apply(sp_ls_manager_t *m, const sp_ss_event_t *ev,
                               sp_ls_persist_fn done, void *ud)
{
    sp_livestream_t *ls = m->ls;
    uint64_t t0 = sp_mono_us();
    sp_ss_state_t before = m->ss.state;
    sp_ss_result_t r = sp_ss_apply(&m->ss, ev, sp_wall_ms());
    ls->counters.call_count++;
    ls->counters.events_processed++;
    if (r.err != 0) {
        ls->counters.illegal_requests++;
        ls->counters.call_us_total += sp_mono_us() - t0;
        return r;
    }
    if (!(r.actions & SP_SSA_PERSIST)) {
        ls->counters.call_us_total += sp_mono_us() - t0;
        return r;
    }
    apply_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->r = r;
    c->before = before;
    c->done = done;
    c->ud = ud;
    sp_ls_ref(m);
    if (r.actions & SP_SSA_CLOSE_STREAM) {
        snprintf(c->closed_stream, sizeof(c->closed_stream), "%s", m->stream_id);
        m->stream_id[0] = '\0';
        const char *sqls[2] = {
            SP_LS_SQL_UPSERT_STATE,
            "UPDATE streams SET state = 'ended', ended_at = $2, end_reason = $3, "
            "destinations = $4 WHERE id = $1",
        };
        json_t *outs = sp_ls_outputs_json(m);
        char *outs_text = json_dumps(outs, JSON_COMPACT);
        json_decref(outs);
        json_t *params[2] = {
            sp_ls_state_params(m),
            json_pack("[s, I, s, s]", c->closed_stream, (json_int_t)sp_wall_ms(),
                      sp_ss_end_reason_name(m->ss.end_reason), outs_text ? outs_text : "[]"),
        };
        free(outs_text);
        ls->counters.persists++;
        sp_store_tx(ls->store, 2, sqls, params, on_apply_tx, c);
    } else {
        sp_ls_persist(m, on_apply_persisted, c);
    }
    ls->counters.call_us_total += sp_mono_us() - t0;
    return r;
}

/* ------------------------------------------------------------------------- */
/* CloudflareOutputManager                                                    */

static void on_created(int err, const char *errmsg, const sp_ls_output_t *out, void *ud)
{
    sp_ls_out_t *o = ud;
    sp_ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = false;
    m->out_gen++;
    sp_ls_out_clear_health(o);
    if (err == 0 && out && out->uid) {
        sp_ls_set_str(&o->output_uid, out->uid);
        if (o->state == SP_OUT_DELETING) {
            write_row(o); /* the stream ended meanwhile: the pump deletes it */
        } else {
            if (o->last_error) sp_ls_event_output(m, o, "output_recovered", NULL);
            o->state = SP_OUT_ACTIVE;
            sp_ls_set_str(&o->last_error, NULL);
            sp_sup_success(&o->sup);
            ls->counters.outputs_created++;
            sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "cloudflare output_created",
                    "stream_id=%s destination=%s output=%s", m->stream_id,
                    o->destination_id ? o->destination_id : "", o->output_uid);
            write_row(o);
        }
    } else {
        ls->counters.outputs_failed++;
        if (err == 0) err = SP_EPROTO;
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", errmsg && errmsg[0] ? errmsg : sp_strerror(err));
        if (o->state != SP_OUT_DELETING && !(o->last_error && strcmp(o->last_error, msg) == 0))
            sp_ls_event_output(m, o, "output_failed", msg);
        sp_ls_set_str(&o->last_error, msg);
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "cloudflare output_failed",
                "stream_id=%s destination=%s err=%s msg=\"%s\"", m->stream_id,
                o->destination_id ? o->destination_id : "", sp_err_name(err), msg);
        if (o->state == SP_OUT_DELETING) {
            o->state = SP_OUT_CLOSED; /* nothing was created */
        } else {
            o->state = SP_OUT_FAILED;
            sp_sup_decision_t d = sp_sup_failure(&o->sup, sp_mono_ms());
            o->next_at_mono = sp_mono_ms() + d.delay_ms;
        }
        write_row(o);
    }
    if (!m->stopped) {
        if (!m->ss.starting) sp_ls_publish_state(m, "output_changed");
        sp_ls_outputs_pump(m);
        sp_ls_mgr_arm_timer(m);
    }
    sp_ls_unref(m);
}

/* The ingest of a connected-platform destination arrived (or not): create the output. */
static void on_ingest(int err, const char *url, const char *key, void *ud)
{
    sp_ls_out_t *o = ud;
    sp_ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    if (err == 0 && (url == NULL || key == NULL || !url[0] || !key[0])) err = SP_EPROTO;
    if (err != 0 || m->stopped || o->state == SP_OUT_DELETING) {
        char msg[160];
        snprintf(msg, sizeof(msg), "platform ingest unavailable (%s)",
                 err ? sp_err_name(err) : "stream ending");
        on_created(err ? err : SP_ECANCELED, msg, NULL, o);
        return;
    }
    sp_ls_set_str(&o->url, url);
    sp_ls_wipe_free(o->key);
    o->key = sp_strdup(key);
    int rc = SP_EUNAVAIL;
    if (ls->has_media && m->input_uid)
        rc = ls->media.ops->create_output(ls->media.ctx, m->input_uid, o->url, o->key, on_created,
                                          o);
    if (rc != 0) on_created(rc, "media backend unavailable", NULL, o);
}

static void start_create(sp_ls_out_t *o)
{
    sp_ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = true;
    o->attempted = true;
    m->out_gen++;
    sp_ls_ref(m);
    if (sp_ls_is_platform_url(o->url) && o->key == NULL) {
        /* a connected platform: its ingest (and key) is asked for at each create */
        if (ls->phooks.resolve_ingest == NULL) {
            on_created(SP_ENOTFOUND, "platform not available", NULL, o);
            return;
        }
        ls->phooks.resolve_ingest(ls->phooks.ud, m->user_id,
                                  o->url + strlen(SP_LS_PLATFORM_URL_PREFIX), on_ingest, o);
        return;
    }
    int rc = SP_EUNAVAIL;
    if (ls->has_media && o->url && o->key)
        rc = ls->media.ops->create_output(ls->media.ctx, m->input_uid, o->url, o->key, on_created,
                                          o);
    if (rc != 0) {
        const char *msg = (o->url && o->key) ? "media backend unavailable"
                                             : "destination no longer exists";
        on_created(rc, msg, NULL, o);
    }
}

static void on_deleted(int err, const char *errmsg, void *ud)
{
    sp_ls_out_t *o = ud;
    sp_ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = false;
    m->out_gen++;
    if (err == 0 || err == SP_ENOTFOUND) {
        o->state = SP_OUT_CLOSED;
        ls->counters.outputs_deleted++;
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "cloudflare output_deleted", "output=%s",
                o->output_uid ? o->output_uid : "");
        write_row(o);
    } else {
        o->delete_attempts++;
        sp_sup_decision_t d = sp_sup_failure(&o->sup, sp_mono_ms());
        o->next_at_mono = sp_mono_ms() + d.delay_ms;
        sp_ls_set_str(&o->last_error, errmsg && errmsg[0] ? errmsg : sp_strerror(err));
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "cloudflare output delete failed",
                "output=%s err=%s attempts=%d", o->output_uid ? o->output_uid : "",
                sp_err_name(err), o->delete_attempts);
    }
    if (!m->stopped) {
        sp_ls_outputs_pump(m);
        sp_ls_mgr_arm_timer(m);
    }
    sp_ls_unref(m);
}

static void start_delete(sp_ls_out_t *o)
{
    sp_ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = true;
    m->out_gen++;
    sp_ls_ref(m);
    int rc = SP_EUNAVAIL;
    if (ls->has_media && m->input_uid)
        rc = ls->media.ops->delete_output(ls->media.ctx, m->input_uid, o->output_uid, on_deleted,
                                          o);
    if (rc != 0) on_deleted(rc, "media backend unavailable", o);
}

static void compact_outputs(sp_ls_manager_t *m)
{
    size_t j = 0;
    for (size_t i = 0; i < m->n_outs; i++) {
        sp_ls_out_t *o = m->outs[i];
        if (o->state == SP_OUT_CLOSED && !o->inflight)
            sp_ls_out_free(o);
        else
            m->outs[j++] = o;
    }
    m->n_outs = j;
}

void sp_ls_outputs_pump(sp_ls_manager_t *m)
{
    if (m->stopped || !m->loaded || m->needs_reconcile || m->reconciling) return;
    uint64_t now = sp_mono_ms();
    bool streaming = m->ss.state == SP_SS_STREAMING;
    for (size_t i = 0; i < m->n_outs; i++) {
        sp_ls_out_t *o = m->outs[i];
        if (o->inflight) continue;
        switch (o->state) {
        case SP_OUT_CREATING:
        case SP_OUT_FAILED:
            if (streaming && m->input_uid && (o->next_at_mono == 0 || now >= o->next_at_mono) &&
                !(o->sup.degraded && o->attempted && now < o->next_at_mono))
                start_create(o);
            break;
        case SP_OUT_DELETING:
            if (o->next_at_mono != 0 && now < o->next_at_mono) break;
            if (o->output_uid) {
                start_delete(o);
            } else {
                o->state = SP_OUT_CLOSED;
                write_row(o);
            }
            break;
        default: break;
        }
    }
    if (m->ss.state == SP_SS_STREAMING && m->ss.starting) {
        int ok = 0, failed = 0;
        bool pending = false;
        for (size_t i = 0; i < m->n_outs; i++) {
            sp_ls_out_t *o = m->outs[i];
            if (o->inflight || (o->state == SP_OUT_CREATING && !o->attempted)) pending = true;
            if (o->state == SP_OUT_ACTIVE) ok++;
            if (o->state == SP_OUT_FAILED) failed++;
        }
        if (!pending) {
            sp_ss_event_t ev = { .type = SP_SSE_OUTPUTS_RESULT, .n_ok = ok, .n_failed = failed };
            sp_ss_result_t r = sp_ls_mgr_apply(m, &ev, NULL, NULL);
            if (!(r.reason && strcmp(r.reason, "all_outputs_failed") == 0))
                sp_ls_answer_start(m, r.reason);
            return;
        }
    }
    if (m->ss.state == SP_SS_ENDING && m->cleanup_started) {
        bool done = true;
        for (size_t i = 0; i < m->n_outs; i++) {
            sp_ls_out_t *o = m->outs[i];
            if (o->state == SP_OUT_CLOSED) continue;
            if (o->state == SP_OUT_DELETING && !o->inflight && o->delete_attempts >= 3) continue;
            done = false;
        }
        if (done) {
            m->cleanup_started = false;
            sp_ss_event_t ev = { .type = SP_SSE_CLEANUP_DONE };
            sp_ls_mgr_apply(m, &ev, NULL, NULL);
            return;
        }
    }
    if (m->ss.state == SP_SS_READY || m->ss.state == SP_SS_OFFLINE) compact_outputs(m);
}

/* ------------------------------------------------------------------------- */
/* reconciliation                                                             */

static void on_orphan_deleted(int err, const char *errmsg, void *ud)
{
    (void)errmsg;
    sp_ls_manager_t *m = ud;
    m->orphan_deletes--;
    m->out_gen++;
    if (err == 0 || err == SP_ENOTFOUND) {
        m->ls->counters.orphans_deleted++;
    } else {
        /* try again at the next reconciliation */
        m->needs_reconcile = true;
        m->reconcile_retry_mono = sp_mono_ms() + 5000;
        if (!m->stopped) sp_ls_mgr_arm_timer(m);
    }
    if (!m->stopped) sp_ls_mgr_recheck_presence(m);
    sp_ls_unref(m);
}

/* periodic: the check made while streaming (sp_ls_monitor.c): only outputs that were
   active and vanished from the media service are recreated (failed/creating ones are on
   their own retry schedule), and agreeing rows are not logged. */
void sp_ls_reconcile_apply(sp_ls_manager_t *m, const sp_ls_output_t *remotes, size_t nremotes,
                           bool periodic)
{
    sp_livestream_t *ls = m->ls;
    m->out_gen++;
    size_t nrows = 0;
    sp_ls_out_t **idx = sp_calloc(m->n_outs + 1, sizeof(*idx));
    sp_rec_row_t *rows = sp_calloc(m->n_outs + 1, sizeof(*rows));
    for (size_t i = 0; i < m->n_outs; i++) {
        sp_ls_out_t *o = m->outs[i];
        if (o->state == SP_OUT_CLOSED) continue;
        idx[nrows] = o;
        rows[nrows] = (sp_rec_row_t){ o->row_id, o->output_uid, o->url, o->key, o->state };
        nrows++;
    }
    sp_rec_remote_t *rem = sp_calloc(nremotes + 1, sizeof(*rem));
    for (size_t j = 0; j < nremotes; j++)
        rem[j] = (sp_rec_remote_t){ remotes[j].uid, remotes[j].url, remotes[j].stream_key };
    size_t cap = nrows + nremotes + 1;
    sp_rec_action_t *acts = sp_calloc(cap, sizeof(*acts));
    bool active = m->ss.state == SP_SS_STREAMING;
    int n = sp_rec_plan(rows, nrows, rem, nremotes, active, acts, cap);
    for (int k = 0; k < n; k++) {
        sp_rec_action_t *a = &acts[k];
        sp_ls_out_t *o = a->row >= 0 ? idx[a->row] : NULL;
        const char *ruid = a->remote >= 0 ? remotes[a->remote].uid : NULL;
        if (periodic && a->op == SP_REC_KEEP && o->state == SP_OUT_ACTIVE) continue;
        if (periodic && a->op == SP_REC_RECREATE && o->state != SP_OUT_ACTIVE) continue;
        if (periodic && a->op == SP_REC_RECREATE) {
            ls->counters.outputs_lost++;
            sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "output lost by the media service",
                    "stream_id=%s destination=%s output=%s action=recreate", m->stream_id,
                    o->destination_id ? o->destination_id : "",
                    o->output_uid ? o->output_uid : "");
            sp_ls_out_clear_health(o);
        }
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "reconcile", "op=%s row=%s remote=%s",
                sp_rec_op_name(a->op), o ? o->row_id : "-", ruid ? ruid : "-");
        switch (a->op) {
        case SP_REC_KEEP:
            if (o->state != SP_OUT_ACTIVE) {
                o->state = SP_OUT_ACTIVE;
                write_row(o);
            }
            o->attempted = true;
            break;
        case SP_REC_ADOPT:
            sp_ls_set_str(&o->output_uid, ruid);
            o->state = SP_OUT_ACTIVE;
            o->attempted = true;
            ls->counters.outputs_adopted++;
            write_row(o);
            break;
        case SP_REC_DELETE_REMOTE:
            if (o != NULL) {
                sp_ls_set_str(&o->output_uid, ruid);
                o->state = SP_OUT_DELETING;
                o->next_at_mono = 0;
            } else if (ls->has_media && m->input_uid) {
                m->orphan_deletes++;
                sp_ls_ref(m);
                if (ls->media.ops->delete_output(ls->media.ctx, m->input_uid, ruid,
                                                 on_orphan_deleted, m) != 0) {
                    m->orphan_deletes--;
                    sp_ls_unref(m);
                }
            }
            break;
        case SP_REC_CLOSE_ROW:
            o->state = SP_OUT_CLOSED;
            write_row(o);
            break;
        case SP_REC_RECREATE:
            sp_ls_set_str(&o->output_uid, NULL);
            o->state = SP_OUT_CREATING;
            o->attempted = false;
            o->next_at_mono = 0;
            write_row(o);
            break;
        }
    }
    sp_free(acts);
    sp_free(rem);
    sp_free(rows);
    sp_free(idx);
    ls->counters.reconciles++;
    m->needs_reconcile = false;
    m->reconcile_retry_mono = 0;
    if (m->ss.state == SP_SS_ENDING) {
        for (size_t i = 0; i < m->n_outs; i++)
            if (m->outs[i]->state != SP_OUT_CLOSED) m->outs[i]->state = SP_OUT_DELETING;
        m->cleanup_started = true;
    }
}

static void on_listed(int err, const char *errmsg, const sp_ls_output_t *outs, size_t n, void *ud)
{
    sp_ls_manager_t *m = ud;
    m->reconciling = false;
    if (m->stopped) goto out;
    if (err != 0) {
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "reconcile: list outputs failed",
                "err=%s msg=\"%s\"", sp_err_name(err), errmsg ? errmsg : "");
        m->reconcile_retry_mono = sp_mono_ms() + 2000;
        sp_ls_mgr_arm_timer(m);
        goto out;
    }
    sp_ls_reconcile_apply(m, outs, n, false);
    sp_ls_publish_state(m, "reconciled");
    sp_ls_outputs_pump(m);
    sp_ls_mgr_arm_timer(m);
    sp_ls_mgr_recheck_presence(m);
    sp_ls_autostart_loaded(m); /* an auto go-live owed from before a restart */
out:
    sp_ls_unref(m);
}

void sp_ls_reconcile_start(sp_ls_manager_t *m)
{
    sp_livestream_t *ls = m->ls;
    if (m->stopped || m->reconciling) return;
    if (!ls->has_media || m->input_uid == NULL) {
        /* no input: no remote output can exist */
        on_listed(0, NULL, NULL, 0, (sp_ls_ref(m), m));
        return;
    }
    m->reconciling = true;
    sp_ls_ref(m);
    int rc = ls->media.ops->list_outputs(ls->media.ctx, m->input_uid, on_listed, m);
    if (rc != 0) on_listed(rc, "media backend unavailable", NULL, 0, m);
}

