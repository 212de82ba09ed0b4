/*
 * sp_ls_engine: executes the stream state machine's actions for one manager
 * (StreamStateServer), runs the user's outputs (CloudflareOutputManager),
 * the live input (CloudflareManager) and its monitor
 * (CloudflareLiveInputMonitor: polling half; webhooks arrive through
 * sp_ls_routes.c), and start-up reconciliation.
 */
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "livestream/sp_livestream_internal.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

#if __has_include("bus/sp_pubsub.h")
#include "bus/sp_pubsub.h"
#define LS_HAVE_PUBSUB 1
#endif

static const char *const SQL_OUTPUT_ROW =
    "UPDATE stream_outputs SET state = $2, output_uid = $3, last_error = $4, updated_at = $5 "
    "WHERE id = $1";

static void write_row(ls_output_t *o)
{
    ls_write(o->m, SQL_OUTPUT_ROW,
             json_pack("[s, s, s?, s?, I]", o->row_id, sp_out_state_name(o->state),
                       o->output_uid, o->last_error, (json_int_t)sp_wall_ms()));
}

static void set_s(char **dst, const char *src)
{
    sp_free(*dst);
    *dst = src ? sp_strdup(src) : NULL;
}

/* ------------------------------------------------------------------------- */
/* publishing and events                                                      */

void ls_publish(sp_livestream_t *ls, const char *topic, const char *event, json_t *payload)
{
#ifdef LS_HAVE_PUBSUB
    if (ls->app && ls->app->pubsub) {
        sp_pubsub_publish(ls->app->pubsub, topic, event, payload); /* payload borrowed */
        json_decref(payload);
        return;
    }
#else
    (void)ls;
    (void)topic;
    (void)event;
#endif
    json_decref(payload);
}

json_t *ls_outputs_json(ls_manager_t *m)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < m->n_outs; i++) {
        ls_output_t *o = m->outs[i];
        const char *st = sp_out_state_name(o->state);
        if (o->state == SP_OUT_FAILED) st = "retrying";
        if (o->state == SP_OUT_FAILED && o->sup.degraded) st = "failed";
        json_t *j = json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:s?}", "id", o->row_id,
                              "destination_id", o->destination_id, "name", o->name, "platform",
                              o->platform, "status", st, "state", sp_out_state_name(o->state),
                              "output_uid", o->output_uid, "error", o->last_error);
        if (j && o->h_status && o->state == SP_OUT_ACTIVE) {
            json_t *h = json_pack("{s:s, s:s?}", "status", o->h_status, "last_error", o->h_error);
            if (h && o->h_bytes >= 0) json_object_set_new(h, "bytes", json_integer(o->h_bytes));
            if (h && o->h_reconnects >= 0)
                json_object_set_new(h, "reconnects", json_integer(o->h_reconnects));
            if (h) json_object_set_new(j, "health", h);
        }
        if (j) json_array_append_new(arr, j);
    }
    return arr;
}

json_t *ls_status_json(ls_manager_t *m, bool with_key)
{
    sp_livestream_t *ls = m->ls;
    json_t *input = json_null();
    if (m->input_uid) {
        input = json_pack("{s:s, s:s, s:s?, s:s?}", "status",
                          sp_input_status_name(m->input_status), "provider",
                          ls->has_media ? ls->media.ops->provider : "none", "rtmp_url",
                          m->rtmp_url, "input_uid", m->input_uid);
        if (with_key) json_object_set_new(input, "stream_key", json_string(m->stream_key));
    }
    bool media_degraded = ls->has_media && ls->media.ops->degraded &&
                          ls->media.ops->degraded(ls->media.ctx);
    json_t *o = json_pack(
        "{s:s, s:s?, s:b, s:o, s:o, s:o?, s:I, s:s?, s:s?, s:b, s:s?}", "state",
        sp_ss_state_name(m->ss.state), "stream_id", m->stream_id[0] ? m->stream_id : NULL,
        "starting", m->ss.starting, "input", input, "outputs", ls_outputs_json(m),
        "disconnect_deadline",
        m->ss.disconnect_deadline ? json_integer(m->ss.disconnect_deadline) : NULL,
        "state_changed_at", (json_int_t)m->ss.state_changed_at, "title", m->title, "description",
        m->description, "degraded", m->degraded || media_degraded, "end_reason",
        m->ss.end_reason ? sp_ss_end_reason_name(m->ss.end_reason) : NULL);
    json_object_set_new(o, "server_time", json_integer(sp_wall_ms()));
    if (m->last_error) json_object_set_new(o, "error", json_string(m->last_error));
    return o;
}

void ls_publish_state(ls_manager_t *m, const char *reason)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "user_stream:%s", m->user_id);
    json_t *p = ls_status_json(m, false);
    if (reason) json_object_set_new(p, "reason", json_string(reason));
    ls_publish(m->ls, topic, "state_changed", p);
}

static void publish_input(ls_manager_t *m)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "cloudflare_input:%s", m->user_id);
    ls_publish(m->ls, topic, "input_status",
               json_pack("{s:s, s:I}", "status", sp_input_status_name(m->input_status), "at",
                         (json_int_t)sp_wall_ms()));
}

static int64_t event_seq(void)
{
    static int64_t last;
    int64_t v = sp_wall_ms() * 1000;
    if (v <= last) v = last + 1;
    last = v;
    return v;
}

void ls_record_event(ls_manager_t *m, const char *stream_id, const char *type, json_t *payload)
{
    char id[SP_UUID_STRLEN];
    sp_uuid_v4(id);
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    sp_store_enqueue(m->ls->store,
                     "INSERT INTO events (id, user_id, stream_id, platform, platform_event_id, "
                     "type, payload, seq, created_at) VALUES ($1, $2, $3, 'streampai', $1, $4, "
                     "$5, $6, $7)",
                     json_pack("[s, s, s?, s, s, I, I]", id, m->user_id,
                               stream_id && stream_id[0] ? stream_id : NULL, type, text ? text : "{}",
                               (json_int_t)event_seq(), (json_int_t)sp_wall_ms()),
                     NULL, NULL);
    free(text);
}

/* ------------------------------------------------------------------------- */
/* state machine execution                                                    */

typedef struct {
    ls_manager_t *m;
    sp_ss_result_t r;
    sp_ss_state_t before;
    char closed_stream[SP_UUID_STRLEN];
    ls_persist_fn done;
    void *ud;
} apply_ctx_t;

static void effects(apply_ctx_t *c)
{
    ls_manager_t *m = c->m;
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
        ls_answer_start(m, c->r.reason);
    else if (m->start_req && m->ss.state != SP_SS_STREAMING)
        ls_answer_start(m, "ended");
    if (a & SP_SSA_DELETE_OUTPUTS) {
        for (size_t i = 0; i < m->n_outs; i++) {
            ls_output_t *o = m->outs[i];
            if (o->state != SP_OUT_CLOSED) {
                o->state = SP_OUT_DELETING;
                o->next_at_mono = 0;
                o->delete_attempts = 0;
            }
        }
        if (m->ss.state == SP_SS_ENDING) m->cleanup_started = true;
    }
    if (a & SP_SSA_STOP_MONITORS)
        sp_ulog(SP_LOG_DEBUG, "livestream", m->user_id, "platform monitors stopped", "n=%d", 0);
    if (a & SP_SSA_CLOSE_STREAM) {
        ls->counters.streams_ended++;
        char topic[128];
        snprintf(topic, sizeof(topic), "stream_lifecycle:%s", m->user_id);
        ls_publish(ls, topic, "stream_ended",
                   json_pack("{s:s, s:s}", "stream_id", c->closed_stream, "end_reason",
                             sp_ss_end_reason_name(m->ss.end_reason)));
        ls_record_event(m, c->closed_stream, "stream_ended",
                        json_pack("{s:s, s:s}", "stream_id", c->closed_stream, "end_reason",
                                  sp_ss_end_reason_name(m->ss.end_reason)));
    }
    if (a & SP_SSA_PUBLISH) ls_publish_state(m, c->r.reason);
    if (c->before != m->ss.state)
        ls_record_event(m, c->closed_stream[0] ? c->closed_stream : m->stream_id,
                        "state_changed",
                        json_pack("{s:s, s:s, s:s?}", "from", sp_ss_state_name(c->before), "to",
                                  sp_ss_state_name(m->ss.state), "reason", c->r.reason));
    ls_mgr_arm_timer(m);
    ls_outputs_pump(m);
    if (m->ss.state == SP_SS_OFFLINE) ls_mgr_recheck_presence(m);
}

static void on_apply_persisted(ls_manager_t *m, int err, void *ud)
{
    apply_ctx_t *c = ud;
    (void)m;
    if (!c->m->stopped) effects(c);
    if (c->done) c->done(c->m, err, c->ud);
    ls_unref(c->m);
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

sp_ss_result_t ls_mgr_apply(ls_manager_t *m, const sp_ss_event_t *ev, ls_persist_fn done, void *ud)
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
    if (before != m->ss.state) {
        ls->state_hist[before]--;
        ls->state_hist[m->ss.state]++;
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
    ls_ref(m);
    if (r.actions & SP_SSA_CLOSE_STREAM) {
        snprintf(c->closed_stream, sizeof(c->closed_stream), "%s", m->stream_id);
        m->stream_id[0] = '\0';
        const char *sqls[2] = {
            LS_SQL_UPSERT_STATE,
            "UPDATE streams SET state = 'ended', ended_at = $2, end_reason = $3, "
            "destinations = $4 WHERE id = $1",
        };
        json_t *outs = ls_outputs_json(m);
        char *outs_text = json_dumps(outs, JSON_COMPACT);
        json_decref(outs);
        json_t *params[2] = {
            ls_state_params(m),
            json_pack("[s, I, s, s]", c->closed_stream, (json_int_t)sp_wall_ms(),
                      sp_ss_end_reason_name(m->ss.end_reason), outs_text ? outs_text : "[]"),
        };
        free(outs_text);
        ls->counters.persists++;
        sp_store_tx(ls->store, 2, sqls, params, on_apply_tx, c);
    } else {
        ls_persist(m, on_apply_persisted, c);
    }
    ls->counters.call_us_total += sp_mono_us() - t0;
    return r;
}

int ls_apply_input(ls_manager_t *m, sp_input_status_t st, int64_t event_at, const char *source,
                   ls_persist_fn done, void *ud)
{
    sp_livestream_t *ls = m->ls;
    if (event_at < m->input_event_at) {
        bool wh = strcmp(source, "webhook") == 0;
        ls->counters.webhooks_stale += wh;
        sp_ulog(wh ? SP_LOG_INFO : SP_LOG_DEBUG, "livestream", m->user_id,
                "stale input event ignored",
                "source=%s status=%s event_at=%lld last=%lld", source, sp_input_status_name(st),
                (long long)event_at, (long long)m->input_event_at);
        return LS_INPUT_STALE;
    }
    sp_input_status_t prev = m->input_status;
    m->input_event_at = event_at;
    m->input_status = st;
    if (st == SP_INPUT_CONNECTED && m->last_error && strncmp(m->last_error, "input errored", 13) == 0)
        set_s(&m->last_error, NULL);
    if (prev != st) {
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "cloudflare input status",
                "source=%s status=%s", source, sp_input_status_name(st));
        publish_input(m);
    }
    sp_ss_event_t ev = { .type = st == SP_INPUT_CONNECTED ? SP_SSE_INPUT_CONNECTED
                                                          : SP_SSE_INPUT_DISCONNECTED };
    sp_ss_result_t r = ls_mgr_apply(m, &ev, done, ud);
    if (r.actions & SP_SSA_PERSIST) return LS_INPUT_APPLIED;
    if (prev == st) {
        if (strcmp(source, "webhook") == 0) ls->counters.webhooks_duplicate++;
        if (r.actions & SP_SSA_PUBLISH) ls_publish_state(m, "input");
        return LS_INPUT_DUPLICATE;
    }
    /* status changed without a state change (e.g. while ending): persist and show it */
    ls_publish_state(m, "input");
    ls_persist(m, done, ud);
    return LS_INPUT_APPLIED;
}

/* ------------------------------------------------------------------------- */
/* CloudflareOutputManager                                                    */

static void clear_health(ls_output_t *o)
{
    set_s(&o->h_status, NULL);
    set_s(&o->h_error, NULL);
    o->h_bytes = -1;
    o->h_reconnects = -1;
}

static void on_created(int err, const char *errmsg, const sp_ls_output_t *out, void *ud)
{
    ls_output_t *o = ud;
    ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = false;
    m->out_gen++;
    clear_health(o);
    if (err == 0 && out && out->uid) {
        set_s(&o->output_uid, out->uid);
        if (o->state == SP_OUT_DELETING) {
            write_row(o); /* the stream ended meanwhile: the pump deletes it */
        } else {
            o->state = SP_OUT_ACTIVE;
            set_s(&o->last_error, NULL);
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
        set_s(&o->last_error, msg);
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
        if (!m->ss.starting) ls_publish_state(m, "output_changed");
        ls_outputs_pump(m);
        ls_mgr_arm_timer(m);
    }
    ls_unref(m);
}

static void start_create(ls_output_t *o)
{
    ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = true;
    o->attempted = true;
    m->out_gen++;
    ls_ref(m);
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
    ls_output_t *o = ud;
    ls_manager_t *m = o->m;
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
        set_s(&o->last_error, errmsg && errmsg[0] ? errmsg : sp_strerror(err));
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "cloudflare output delete failed",
                "output=%s err=%s attempts=%d", o->output_uid ? o->output_uid : "",
                sp_err_name(err), o->delete_attempts);
    }
    if (!m->stopped) {
        ls_outputs_pump(m);
        ls_mgr_arm_timer(m);
    }
    ls_unref(m);
}

static void start_delete(ls_output_t *o)
{
    ls_manager_t *m = o->m;
    sp_livestream_t *ls = m->ls;
    o->inflight = true;
    m->out_gen++;
    ls_ref(m);
    int rc = SP_EUNAVAIL;
    if (ls->has_media && m->input_uid)
        rc = ls->media.ops->delete_output(ls->media.ctx, m->input_uid, o->output_uid, on_deleted,
                                          o);
    if (rc != 0) on_deleted(rc, "media backend unavailable", o);
}

static void compact_outputs(ls_manager_t *m)
{
    size_t j = 0;
    for (size_t i = 0; i < m->n_outs; i++) {
        ls_output_t *o = m->outs[i];
        if (o->state == SP_OUT_CLOSED && !o->inflight)
            ls_out_free(o);
        else
            m->outs[j++] = o;
    }
    m->n_outs = j;
}

void ls_outputs_pump(ls_manager_t *m)
{
    if (m->stopped || !m->loaded || m->needs_reconcile || m->reconciling) return;
    uint64_t now = sp_mono_ms();
    bool streaming = m->ss.state == SP_SS_STREAMING;
    for (size_t i = 0; i < m->n_outs; i++) {
        ls_output_t *o = m->outs[i];
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
            ls_output_t *o = m->outs[i];
            if (o->inflight || (o->state == SP_OUT_CREATING && !o->attempted)) pending = true;
            if (o->state == SP_OUT_ACTIVE) ok++;
            if (o->state == SP_OUT_FAILED) failed++;
        }
        if (!pending) {
            sp_ss_event_t ev = { .type = SP_SSE_OUTPUTS_RESULT, .n_ok = ok, .n_failed = failed };
            sp_ss_result_t r = ls_mgr_apply(m, &ev, NULL, NULL);
            if (!(r.reason && strcmp(r.reason, "all_outputs_failed") == 0))
                ls_answer_start(m, r.reason);
            return;
        }
    }
    if (m->ss.state == SP_SS_ENDING && m->cleanup_started) {
        bool done = true;
        for (size_t i = 0; i < m->n_outs; i++) {
            ls_output_t *o = m->outs[i];
            if (o->state == SP_OUT_CLOSED) continue;
            if (o->state == SP_OUT_DELETING && !o->inflight && o->delete_attempts >= 3) continue;
            done = false;
        }
        if (done) {
            m->cleanup_started = false;
            sp_ss_event_t ev = { .type = SP_SSE_CLEANUP_DONE };
            ls_mgr_apply(m, &ev, NULL, NULL);
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
    ls_manager_t *m = ud;
    m->orphan_deletes--;
    m->out_gen++;
    if (err == 0 || err == SP_ENOTFOUND) {
        m->ls->counters.orphans_deleted++;
    } else {
        /* try again at the next reconciliation */
        m->needs_reconcile = true;
        m->reconcile_retry_mono = sp_mono_ms() + 5000;
        if (!m->stopped) ls_mgr_arm_timer(m);
    }
    if (!m->stopped) ls_mgr_recheck_presence(m);
    ls_unref(m);
}

/* periodic: the check made while streaming (ls_outputs_refresh): only outputs that were
   active and vanished from the media service are recreated (failed/creating ones are on
   their own retry schedule), and agreeing rows are not logged. */
static void reconcile_apply(ls_manager_t *m, const sp_ls_output_t *remotes, size_t nremotes,
                            bool periodic)
{
    sp_livestream_t *ls = m->ls;
    m->out_gen++;
    size_t nrows = 0;
    ls_output_t **idx = sp_calloc(m->n_outs + 1, sizeof(*idx));
    sp_rec_row_t *rows = sp_calloc(m->n_outs + 1, sizeof(*rows));
    for (size_t i = 0; i < m->n_outs; i++) {
        ls_output_t *o = m->outs[i];
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
        ls_output_t *o = a->row >= 0 ? idx[a->row] : NULL;
        const char *ruid = a->remote >= 0 ? remotes[a->remote].uid : NULL;
        if (periodic && a->op == SP_REC_KEEP && o->state == SP_OUT_ACTIVE) continue;
        if (periodic && a->op == SP_REC_RECREATE && o->state != SP_OUT_ACTIVE) continue;
        if (periodic && a->op == SP_REC_RECREATE) {
            ls->counters.outputs_lost++;
            sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "output lost by the media service",
                    "stream_id=%s destination=%s output=%s action=recreate", m->stream_id,
                    o->destination_id ? o->destination_id : "",
                    o->output_uid ? o->output_uid : "");
            clear_health(o);
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
            set_s(&o->output_uid, ruid);
            o->state = SP_OUT_ACTIVE;
            o->attempted = true;
            ls->counters.outputs_adopted++;
            write_row(o);
            break;
        case SP_REC_DELETE_REMOTE:
            if (o != NULL) {
                set_s(&o->output_uid, ruid);
                o->state = SP_OUT_DELETING;
                o->next_at_mono = 0;
            } else if (ls->has_media && m->input_uid) {
                m->orphan_deletes++;
                ls_ref(m);
                if (ls->media.ops->delete_output(ls->media.ctx, m->input_uid, ruid,
                                                 on_orphan_deleted, m) != 0) {
                    m->orphan_deletes--;
                    ls_unref(m);
                }
            }
            break;
        case SP_REC_CLOSE_ROW:
            o->state = SP_OUT_CLOSED;
            write_row(o);
            break;
        case SP_REC_RECREATE:
            set_s(&o->output_uid, NULL);
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
    ls_manager_t *m = ud;
    m->reconciling = false;
    if (m->stopped) goto out;
    if (err != 0) {
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "reconcile: list outputs failed",
                "err=%s msg=\"%s\"", sp_err_name(err), errmsg ? errmsg : "");
        m->reconcile_retry_mono = sp_mono_ms() + 2000;
        ls_mgr_arm_timer(m);
        goto out;
    }
    reconcile_apply(m, outs, n, false);
    ls_publish_state(m, "reconciled");
    ls_outputs_pump(m);
    ls_mgr_arm_timer(m);
    ls_mgr_recheck_presence(m);
out:
    ls_unref(m);
}

void ls_reconcile_start(ls_manager_t *m)
{
    sp_livestream_t *ls = m->ls;
    if (m->stopped || m->reconciling) return;
    if (!ls->has_media || m->input_uid == NULL) {
        /* no input: no remote output can exist */
        on_listed(0, NULL, NULL, 0, (ls_ref(m), m));
        return;
    }
    m->reconciling = true;
    ls_ref(m);
    int rc = ls->media.ops->list_outputs(ls->media.ctx, m->input_uid, on_listed, m);
    if (rc != 0) on_listed(rc, "media backend unavailable", NULL, 0, m);
}

/* ------------------------------------------------------------------------- */
/* CloudflareManager: the user's live input                                   */

static void input_finish(ls_manager_t *m)
{
    ls_done_fn w = m->input_waiter;
    m->input_waiter = NULL;
    if (w) w(m);
}

static void on_input_row(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    ls_manager_t *m = ud;
    if (err != 0)
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "live_inputs insert failed", "err=%s",
                sp_err_name(err));
    if (!m->stopped) {
        ls_publish_state(m, "input_created");
        input_finish(m);
    }
    ls_unref(m);
}

static void on_input_created(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    ls_manager_t *m = ud;
    sp_livestream_t *ls = m->ls;
    m->input_creating = false;
    if (m->stopped) goto out;
    if (err != 0 || in == NULL || in->uid == NULL || in->stream_key == NULL) {
        ls->counters.input_errors++;
        sp_sup_decision_t d = sp_sup_failure(&m->input_sup, sp_mono_ms());
        m->input_retry_mono = sp_mono_ms() + d.delay_ms;
        m->degraded = d.degraded;
        set_s(&m->last_error, errmsg && errmsg[0] ? errmsg : "live input creation failed");
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "cloudflare input create failed",
                "err=%s retry_ms=%llu", sp_err_name(err ? err : SP_EPROTO),
                (unsigned long long)d.delay_ms);
        ls_mgr_arm_timer(m);
        input_finish(m);
        goto out;
    }
    sp_sup_success(&m->input_sup);
    m->degraded = false;
    set_s(&m->last_error, NULL);
    m->input_retry_mono = 0;
    ls->counters.inputs_created++;
    ls_mgr_set_input(m, in->uid, in->rtmp_url, in->stream_key);
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "cloudflare input created", "input=%s",
            in->uid);
    char *sealed = ls_seal(m->user_id, "input_key", in->stream_key);
    ls_ref(m);
    sp_store_query(ls->store,
                   "INSERT INTO live_inputs (user_id, provider, input_uid, rtmp_url, "
                   "stream_key_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
                   "ON CONFLICT (user_id) DO UPDATE SET provider = excluded.provider, "
                   "input_uid = excluded.input_uid, rtmp_url = excluded.rtmp_url, "
                   "stream_key_sealed = excluded.stream_key_sealed",
                   json_pack("[s, s, s, s, s, I]", m->user_id, ls->media.ops->provider, in->uid,
                             in->rtmp_url ? in->rtmp_url : "", sealed ? sealed : "",
                             (json_int_t)sp_wall_ms()),
                   on_input_row, m);
    sp_free(sealed);
out:
    ls_unref(m);
}

void ls_input_ensure(ls_manager_t *m, ls_done_fn done)
{
    sp_livestream_t *ls = m->ls;
    if (done) m->input_waiter = done;
    if (m->input_uid != NULL || !ls->has_media) {
        input_finish(m);
        return;
    }
    if (m->input_creating) return;
    m->input_creating = true;
    ls_ref(m);
    int rc = ls->media.ops->create_input(ls->media.ctx, m->user_id, on_input_created, m);
    if (rc != 0) on_input_created(rc, sp_strerror(rc), NULL, m);
}

/* ------------------------------------------------------------------------- */
/* CloudflareLiveInputMonitor: polling (webhooks are in sp_ls_routes.c)      */

typedef struct {
    ls_manager_t *m;
    int64_t issued_at;
} poll_ctx_t;

static uint64_t poll_interval(ls_manager_t *m, bool prio)
{
    uint64_t base = (uint64_t)m->ls->cfg->cloudflare_input_poll_interval;
    if (base == 0) base = 15000;
    return prio ? base : base * 4;
}

static bool poll_prio(ls_manager_t *m)
{
    return m->ss.state != SP_SS_OFFLINE ||
           (m->ls->presence && sp_presence_sessions(m->ls->presence, m->user_id) > 0);
}

static void on_input_restored(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    ls_manager_t *m = ud;
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
out:
    ls_unref(m);
}

/* The built-in relay lost the input (started without its state file): put it back with the
   same uid and key, so the encoder reconnects with its settings unchanged. */
static void input_restore(ls_manager_t *m)
{
    sp_livestream_t *ls = m->ls;
    if (m->input_restoring || !ls->media.ops->restore_input || !m->input_uid || !m->stream_key)
        return;
    m->input_restoring = true;
    ls_ref(m);
    int rc = ls->media.ops->restore_input(ls->media.ctx, m->user_id, m->input_uid, m->stream_key,
                                          on_input_restored, m);
    if (rc != 0) on_input_restored(rc, sp_strerror(rc), NULL, m);
}

static void on_polled(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    poll_ctx_t *c = ud;
    ls_manager_t *m = c->m;
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
            ls_publish_state(m, "input_unknown");
        }
        if (err == SP_ENOTFOUND) input_restore(m);
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
    ls_apply_input(m, st, at, "poll", NULL, NULL);
out:
    ls_unref(m);
    sp_free(c);
}

static bool poll_one(ls_manager_t *m)
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
    ls_ref(m);
    int rc = ls->media.ops->get_input(ls->media.ctx, m->input_uid, on_polled, c);
    if (rc == SP_ERATELIMIT) {
        /* the client's budget keeps its reserve for interactive calls: not an outage */
        ls->counters.polls--;
        ls->counters.poll_skipped_budget++;
        m->polling = false;
        sp_free(c);
        ls_unref(m);
        return false;
    }
    if (rc != 0) on_polled(rc, sp_strerror(rc), NULL, c);
    return true;
}

/* ------------------------------------------------------------------------- */
/* output refresh while streaming: health + outputs the media service lost     */

typedef struct {
    ls_manager_t *m;
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
    ls_manager_t *m = c->m;
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
            clear_health(m->outs[i]);
        }
        if (known) ls_publish_state(m, "output_health");
        goto out;
    }
    bool changed = false;
    for (size_t i = 0; i < m->n_outs; i++) {
        ls_output_t *o = m->outs[i];
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
            set_s(&o->h_status, st);
            set_s(&o->h_error, le);
        }
        o->h_bytes = r && r->status ? r->bytes : -1;
        o->h_reconnects = r && r->status ? r->reconnects : -1;
    }
    /* outputs the media service no longer has (e.g. the relay lost its state): recreate.
       Only on a quiet list: nothing changed on our side since it was issued. */
    bool quiet = c->gen == m->out_gen && !m->reconciling && !m->needs_reconcile &&
                 m->ss.state == SP_SS_STREAMING && !m->ss.starting;
    for (size_t i = 0; quiet && i < m->n_outs; i++)
        if (m->outs[i]->inflight) quiet = false;
    if (quiet) {
        uint64_t lost = ls->counters.outputs_lost;
        reconcile_apply(m, outs, n, true);
        if (ls->counters.outputs_lost != lost) changed = true;
        ls_outputs_pump(m);
        ls_mgr_arm_timer(m);
    }
    if (changed) ls_publish_state(m, "output_health");
out:
    ls_unref(m);
    sp_free(c);
}

static bool outputs_refresh_due(ls_manager_t *m, uint64_t now)
{
    if (m->ss.state != SP_SS_STREAMING || m->out_polling || m->reconciling ||
        m->needs_reconcile || now < m->next_out_poll_mono)
        return false;
    for (size_t i = 0; i < m->n_outs; i++)
        if (m->outs[i]->state == SP_OUT_ACTIVE) return true;
    return false;
}

static bool outputs_refresh(ls_manager_t *m)
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
    ls_ref(m);
    int rc = list(ls->media.ctx, m->input_uid, on_outputs_polled, c);
    if (rc != 0) {
        ls->counters.output_polls--;
        m->out_polling = false;
        m->next_out_poll_mono = sp_mono_ms() + poll_interval(m, true);
        sp_free(c);
        ls_unref(m);
        if (rc == SP_ERATELIMIT) ls->counters.poll_skipped_budget++;
        return rc != SP_ERATELIMIT;
    }
    return true;
}

void ls_poll_tick(sp_livestream_t *ls)
{
    if (!ls->has_media || ls->shutting_down) return;
    uint64_t now = sp_mono_ms();
    /* two passes: users on the page or live first, then the rest */
    for (int pass = 0; pass < 2; pass++) {
        size_t it = 0;
        void *v;
        while (sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, NULL, NULL, &v)) {
            ls_manager_t *m = v;
            if (m->stopped || !m->loaded || m->input_uid == NULL) continue;
            if (poll_prio(m) != (pass == 0)) continue;
            if (pass == 0 && outputs_refresh_due(m, now) && !outputs_refresh(m)) return;
            if (m->polling || now < m->next_poll_mono) continue;
            if (!poll_one(m)) return; /* out of budget: the rest waits */
        }
    }
}
