/*
 * sp_ls_stream: the user-facing operations on a user's stream (sp_livestream.h): the
 * loaded manager for a user, status, start, stop, metadata, and input webhooks.
 * Layer: the top of the livestream tree (sp_livestream_internal.h).
 */
#include "livestream/sp_livestream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "core/sp_time.h"

/* ------------------------------------------------------------------------- */
/* the user's loaded manager                                                  */

typedef struct {
    sp_ls_manager_cb cb;
    void *ud;
} mgr_call_t;

static void run_mgr_call(sp_ls_manager_t *m, void *ud)
{
    mgr_call_t c = *(mgr_call_t *)ud;
    sp_free(ud);
    sp_ls_result_t r = { .err = SP_EUNAVAIL, .code = "unavailable" };
    if (m->stopped) {
        r.message = "stream manager stopped";
        c.cb(NULL, &r, c.ud);
    } else if (m->load_failed) {
        r.message = "stream state could not be loaded";
        c.cb(NULL, &r, c.ud);
    } else {
        c.cb(m, NULL, c.ud);
    }
}

void sp_livestream_with_manager(sp_livestream_t *ls, const char *user_id, sp_ls_manager_cb cb,
                                void *ud)
{
    sp_ls_manager_t *m = NULL;
    int rc = sp_ls_mgr_ensure(ls, user_id, false, &m);
    if (rc != 0) {
        sp_ls_result_t r = { .err = rc };
        cb(NULL, &r, ud);
        return;
    }
    sp_presence_adopt(ls->presence, user_id); /* no-op when a dashboard session holds it */
    mgr_call_t *c = sp_calloc(1, sizeof(*c));
    c->cb = cb;
    c->ud = ud;
    sp_ls_mgr_when_loaded(m, run_mgr_call, c);
}

/* ------------------------------------------------------------------------- */
/* status                                                                     */

/* masked view of destination rows (keys never leave except through reveal) */
static json_t *destinations_json(json_t *rows)
{
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        bool managed = sp_ls_is_platform_url(sp_json_str(row, "url"));
        json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:b, s:s?, s:b}", "id",
                              json_object_get(row, "id"), "platform",
                              json_object_get(row, "platform"), "name",
                              json_object_get(row, "name"), "url", json_object_get(row, "url"),
                              "enabled", json_integer_value(json_object_get(row, "enabled")) != 0,
                              "stream_key", managed ? NULL : "********", "managed", managed);
        if (o) json_array_append_new(arr, o);
    }
    return arr;
}

typedef struct {
    sp_ls_manager_t *m;
    sp_ls_result_cb cb;
    void *ud;
} op_ctx_t;

static void on_status_dests(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    op_ctx_t *c = ud;
    json_t *st = sp_ls_status_json(c->m, true);
    json_object_set_new(st, "destinations", err == 0 ? destinations_json(rows) : json_array());
    json_t *input = json_object_get(st, "input");
    if (err == 0 && c->m->n_outs == 0 && json_is_object(input)) {
        /* not streaming: warn against the limits of the enabled destinations */
        const char *plats[64];
        size_t n = 0, i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            if (n < 64 && json_integer_value(json_object_get(row, "enabled")) != 0)
                plats[n++] = sp_json_str(row, "platform");
        }
        json_object_set_new(input, "health", sp_ls_health_json(c->m, plats, n));
    }
    sp_livestream_t *ls = c->m->ls;
    json_t *stats = NULL;
    if (ls->phooks.stats && c->m->stream_id[0])
        stats = ls->phooks.stats(ls->phooks.ud, c->m->user_id);
    json_object_set_new(st, "stats", stats ? stats : json_object());
    sp_ls_ok(c->cb, c->ud, st);
    sp_ls_unref(c->m);
    sp_free(c);
}

void sp_ls_manager_status(sp_ls_manager_t *m, sp_ls_result_cb cb, void *ud)
{
    op_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    sp_ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT id, platform, name, url, stream_key_sealed, enabled, created_at, "
                   "updated_at FROM destinations WHERE user_id = $1 ORDER BY created_at, id",
                   json_pack("[s]", m->user_id), on_status_dests, c);
}

/* ------------------------------------------------------------------------- */
/* start                                                                      */

typedef struct {
    sp_ls_manager_t *m;
    sp_ls_result_cb cb;
    void *ud;
    json_t *ids; /* requested destination ids */
    sp_ss_t saved;
} start_ctx_t;

/* answer: false when the pending start was answered already (manager stopped) */
static void start_fail(start_ctx_t *c, bool answer, int err, const char *code, const char *msg)
{
    c->m->start_busy = false;
    if (answer) sp_ls_fail(c->cb, c->ud, err, code, msg);
    json_decref(c->ids);
    sp_ls_unref(c->m);
    sp_free(c);
}

static void on_start_tx(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    start_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    if (m->stopped) {
        /* sp_ls_mgr_stop_now answered the pending start unless it was not pending yet */
        bool pending = m->start_cb != NULL;
        m->start_cb = NULL;
        start_fail(c, pending, SP_EUNAVAIL, "unavailable", "stream manager stopped");
        return;
    }
    if (err != 0) {
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "start: intent not stored", "err=%s",
                sp_err_name(err));
        sp_ss_state_t cur_input = m->ss.input_connected;
        m->ss = c->saved;
        m->stream_id[0] = '\0';
        for (size_t i = 0; i < m->n_outs; i++) m->outs[i]->state = SP_OUT_CLOSED;
        m->start_cb = NULL;
        if ((bool)cur_input != m->ss.input_connected) {
            sp_ss_event_t ev = { .type = cur_input ? SP_SSE_INPUT_CONNECTED
                                                   : SP_SSE_INPUT_DISCONNECTED };
            sp_ls_mgr_apply(m, &ev, NULL, NULL);
        }
        sp_ls_outputs_pump(m);
        start_fail(c, true, SP_EUNAVAIL, "storage_unavailable", "the stream could not be recorded");
        return;
    }
    ls->counters.streams_started++;
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "stream started",
            "stream_id=%s destinations=%zu", m->stream_id, m->n_outs);
    char topic[128];
    snprintf(topic, sizeof(topic), "stream_lifecycle:%s", m->user_id);
    sp_ls_publish(ls, topic, "stream_started", json_pack("{s:s}", "stream_id", m->stream_id));
    sp_ls_record_event(m, m->stream_id, "stream_started",
                       json_pack("{s:s, s:I}", "stream_id", m->stream_id, "destinations",
                                 (json_int_t)m->n_outs));
    sp_ls_publish_state(m, "started");
    sp_ls_hook_streaming(m); /* platform monitors, titles */
    sp_ls_mgr_arm_timer(m);
    if (!m->ss.starting)
        sp_ls_answer_start(m, NULL);
    else
        sp_ls_outputs_pump(m);
    json_decref(c->ids);
    sp_ls_unref(m);
    sp_free(c);
}

static void on_start_dests(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    start_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    if (m->stopped) {
        start_fail(c, true, SP_EUNAVAIL, "unavailable", "stream manager stopped");
        return;
    }
    if (err != 0) {
        start_fail(c, true, SP_EUNAVAIL, "storage_unavailable", "destinations could not be read");
        return;
    }
    size_t n = json_array_size(c->ids);
    json_t **found = sp_calloc(n + 1, sizeof(*found));
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(c->ids, i));
        size_t k;
        json_t *row;
        json_array_foreach(rows, k, row)
        {
            const char *rid = json_string_value(json_object_get(row, "id"));
            if (rid && strcmp(rid, id) == 0) found[i] = row;
        }
        if (found[i] == NULL) {
            sp_free(found);
            start_fail(c, true, SP_EINVAL, "unknown_destination",
                       "a selected destination does not exist");
            return;
        }
        if (json_integer_value(json_object_get(found[i], "enabled")) == 0) {
            sp_free(found);
            start_fail(c, true, SP_EINVAL, "destination_disabled",
                       "a selected destination is disabled");
            return;
        }
    }
    /* the real transition, then the intent (streams + stream_state + outputs) in one tx */
    c->saved = m->ss;
    sp_ss_event_t ev = { .type = SP_SSE_START, .n_destinations = (int)n };
    sp_ss_result_t r = sp_ss_apply(&m->ss, &ev, sp_wall_ms());
    ls->counters.call_count++;
    ls->counters.events_processed++;
    if (r.err != 0) {
        sp_free(found);
        ls->counters.illegal_requests++;
        start_fail(c, true, SP_ECONFLICT, r.reason, "the stream cannot be started now");
        return;
    }
    /* forget outputs left from an earlier stream (all closed by now) */
    for (size_t i = 0; i < m->n_outs; i++)
        if (m->outs[i]->state != SP_OUT_CLOSED)
            sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "open output from an earlier stream",
                    "row=%s", m->outs[i]->row_id);
    sp_uuid_v4(m->stream_id);
    m->stream_started_at = sp_wall_ms();
    int64_t now = sp_wall_ms();
    size_t nsql = 2 + n;
    const char **sqls = sp_calloc(nsql, sizeof(*sqls));
    json_t **params = sp_calloc(nsql, sizeof(*params));
    json_t *dsum = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(dsum, json_pack("{s:O, s:O, s:O}", "id",
                                              json_object_get(found[i], "id"), "name",
                                              json_object_get(found[i], "name"), "platform",
                                              json_object_get(found[i], "platform")));
    char *dtext = json_dumps(dsum, JSON_COMPACT);
    json_decref(dsum);
    sqls[0] = "INSERT INTO streams (id, user_id, title, description, state, started_at, "
              "destinations, stats) VALUES ($1, $2, $3, $4, 'streaming', $5, $6, '{}')";
    params[0] = json_pack("[s, s, s?, s?, I, s]", m->stream_id, m->user_id, m->title,
                          m->description, (json_int_t)now, dtext ? dtext : "[]");
    free(dtext);
    sqls[1] = SP_LS_SQL_UPSERT_STATE;
    params[1] = sp_ls_state_params(m);
    for (size_t i = 0; i < n; i++) {
        json_t *row = found[i];
        sp_ls_out_t *o = sp_calloc(1, sizeof(*o));
        o->m = m;
        char rid[SP_UUID_STRLEN];
        sp_uuid_v4(rid);
        o->row_id = sp_strdup(rid);
        o->destination_id = sp_strdup(json_string_value(json_object_get(row, "id")));
        o->name = sp_strdup(json_string_value(json_object_get(row, "name")) ?: "");
        o->platform = sp_strdup(json_string_value(json_object_get(row, "platform")) ?: "");
        o->url = sp_strdup(json_string_value(json_object_get(row, "url")) ?: "");
        const char *sealed = json_string_value(json_object_get(row, "stream_key_sealed"));
        if (sealed) {
            sp_buf_t b;
            sp_buf_init(&b, 4096);
            if (sp_ls_unseal(m->user_id, "destination_key", sealed, &b) == 0)
                o->key = sp_buf_detach(&b, NULL);
            sp_buf_cleanup(&b);
        }
        o->state = SP_OUT_CREATING;
        sp_sup_init(&o->sup, 5, 60000, 1000, 30000);
        sp_ls_mgr_add_output(m, o);
        sqls[2 + i] = "INSERT INTO stream_outputs (id, stream_id, user_id, destination_id, "
                      "output_uid, state, last_error, created_at, updated_at) VALUES "
                      "($1, $2, $3, $4, NULL, 'creating', NULL, $5, $5)";
        params[2 + i] = json_pack("[s, s, s, s, I]", o->row_id, m->stream_id, m->user_id,
                                  o->destination_id, (json_int_t)now);
    }
    sp_free(found);
    m->start_cb = c->cb;
    m->start_ud = c->ud;
    ls->counters.persists++;
    sp_store_tx(ls->store, nsql, sqls, params, on_start_tx, c);
    sp_free(sqls);
    sp_free(params);
}

void sp_ls_manager_start(sp_ls_manager_t *m, json_t *ids, sp_ls_result_cb cb, void *ud)
{
    sp_livestream_t *ls = m->ls;
    if (m->start_busy) {
        json_decref(ids);
        ls->counters.illegal_requests++;
        sp_ls_fail(cb, ud, SP_ECONFLICT, "starting", "a start is already in progress");
        return;
    }
    sp_ss_t tmp = m->ss;
    sp_ss_event_t ev = { .type = SP_SSE_START, .n_destinations = (int)json_array_size(ids) };
    sp_ss_result_t r = sp_ss_apply(&tmp, &ev, sp_wall_ms());
    if (r.err != 0) {
        json_decref(ids);
        ls->counters.illegal_requests++;
        const char *msg = strcmp(r.reason, "not_ready") == 0
                              ? "the stream is not ready: no input is connected"
                              : "the stream cannot be started in its current state";
        sp_ls_fail(cb, ud, SP_ECONFLICT, r.reason, msg);
        return;
    }
    if (m->input_uid == NULL) {
        json_decref(ids);
        sp_ls_fail(cb, ud, SP_ECONFLICT, "no_input", "no live input exists for this user");
        return;
    }
    if (json_array_size(ids) == 0) { /* "live" to nowhere helps nobody (issue 13 #2) */
        json_decref(ids);
        ls->counters.illegal_requests++;
        sp_ls_fail(cb, ud, SP_EINVAL, "no_destinations",
                   "select at least one destination to go live");
        return;
    }
    if (m->needs_reconcile || m->reconciling) {
        json_decref(ids);
        sp_ls_fail(cb, ud, SP_EUNAVAIL, "reconciling",
                   "outputs are being reconciled with the media service; retry");
        return;
    }
    start_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    c->ids = ids;
    m->start_busy = true;
    sp_ls_ref(m);
    sp_store_query(ls->store,
                   "SELECT id, platform, name, url, stream_key_sealed, enabled FROM destinations "
                   "WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_start_dests, c);
}

/* ------------------------------------------------------------------------- */
/* stop and metadata                                                          */

static void on_stop_persisted(sp_ls_manager_t *m, int err, void *ud)
{
    op_ctx_t *c = ud;
    if (err != 0) sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "stop persisted late", "");
    sp_ls_ok(c->cb, c->ud,
             json_pack("{s:s, s:s?, s:s}", "state", sp_ss_state_name(m->ss.state), "stream_id",
                       m->stream_id[0] ? m->stream_id : NULL, "end_reason",
                       sp_ss_end_reason_name(m->ss.end_reason)));
    sp_free(c);
}

void sp_ls_manager_stop(sp_ls_manager_t *m, sp_ls_result_cb cb, void *ud)
{
    op_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    sp_ss_event_t ev = { .type = SP_SSE_STOP };
    sp_ss_result_t r = sp_ls_mgr_apply(m, &ev, on_stop_persisted, c);
    if (r.err != 0) {
        sp_free(c);
        const char *msg = strcmp(r.reason, "not_streaming") == 0 ? "nothing is streaming"
                          : strcmp(r.reason, "starting") == 0
                              ? "the stream is still starting"
                              : "the stream is already ending";
        sp_ls_fail(cb, ud, SP_ECONFLICT, r.reason, msg);
    } else if (!(r.actions & SP_SSA_PERSIST)) {
        on_stop_persisted(m, 0, c); /* not seen: a stop always persists */
    }
}

json_t *sp_ls_manager_set_metadata(sp_ls_manager_t *m, const char *title,
                                   const char *description, json_t *categories)
{
    sp_ls_set_str(&m->title, title);
    if (json_is_object(categories)) {
        if (m->categories == NULL) m->categories = json_object();
        json_object_update(m->categories, categories);
    }
    sp_ls_set_str(&m->description, description);
    if (m->stream_id[0])
        sp_ls_write(m, "UPDATE streams SET title = $2, description = $3 WHERE id = $1",
                    json_pack("[s, s, s?]", m->stream_id, m->title, m->description));
    sp_ls_publish_state(m, "metadata");
    if (m->ss.state == SP_SS_STREAMING && m->stream_id[0] && m->ls->phooks.metadata)
        m->ls->phooks.metadata(m->ls->phooks.ud, m->user_id, m->title, categories);
    return json_pack("{s:s, s:s?, s:O?, s:b}", "title", m->title, "description", m->description,
                     "categories", m->categories, "live", m->stream_id[0] != '\0');
}

/* ------------------------------------------------------------------------- */
/* input webhooks                                                             */

typedef struct {
    sp_livestream_t *ls;
    sp_ls_result_cb cb;
    void *ud;
    sp_cf_webhook_event_t ev;
    int64_t event_at;
} wh_ctx_t;

static json_t *wh_result(const char *result)
{
    return json_pack("{s:b, s:s}", "ok", 1, "result", result);
}

static void on_wh_persisted(sp_ls_manager_t *m, int err, void *ud)
{
    wh_ctx_t *c = ud;
    (void)m;
    if (err != 0)
        sp_ls_fail(c->cb, c->ud, SP_EUNAVAIL, "storage_unavailable", "event not stored; retry");
    else
        sp_ls_ok(c->cb, c->ud, wh_result("applied"));
    sp_free(c);
}

static void wh_apply(sp_ls_manager_t *m, void *ud)
{
    wh_ctx_t *c = ud;
    sp_livestream_t *ls = c->ls;
    if (m->stopped || m->load_failed) {
        sp_ls_fail(c->cb, c->ud, SP_EUNAVAIL, "unavailable", "try again");
        sp_free(c);
        return;
    }
    if (c->ev.type == SP_CF_EVT_REC_STARTED || c->ev.type == SP_CF_EVT_REC_ENDED) {
        sp_ls_recording_webhook(m, &c->ev); /* the event log; the state is not touched */
        sp_ls_ok(c->cb, c->ud, wh_result("recorded"));
        sp_free(c);
        return;
    }
    sp_input_status_t st = c->ev.type == SP_CF_EVT_CONNECTED      ? SP_INPUT_CONNECTED
                           : c->ev.type == SP_CF_EVT_DISCONNECTED ? SP_INPUT_DISCONNECTED
                                                                  : SP_INPUT_ERRORED;
    if (st == SP_INPUT_ERRORED && c->ev.error_code[0]) {
        char msg[400];
        snprintf(msg, sizeof(msg), "input errored: %s %s", c->ev.error_code, c->ev.error_message);
        sp_ls_set_str(&m->last_error, msg);
    }
    sp_ls_result_cb cb = c->cb;
    void *cb_ud = c->ud;
    /* c belongs to on_wh_persisted when applied (it may run before this returns) */
    int rc = sp_ls_apply_input(m, st, c->event_at, "webhook", on_wh_persisted, c);
    if (rc == SP_LS_INPUT_APPLIED) {
        ls->counters.webhooks_ok++;
    } else {
        sp_free(c);
        sp_ls_ok(cb, cb_ud, wh_result(rc == SP_LS_INPUT_STALE ? "stale" : "duplicate"));
    }
}

static void on_wh_lookup(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    wh_ctx_t *c = ud;
    if (err != 0) {
        sp_ls_fail(c->cb, c->ud, SP_EUNAVAIL, "storage_unavailable", "try again");
        sp_free(c);
        return;
    }
    const char *user = json_array_size(rows) == 1 ? sp_json_str(json_array_get(rows, 0), "user_id")
                                                  : NULL;
    if (user == NULL) {
        c->ls->counters.webhooks_unknown_input++;
        sp_ls_ok(c->cb, c->ud, wh_result("unknown_input"));
        sp_free(c);
        return;
    }
    sp_ls_manager_t *m = NULL;
    int rc = sp_ls_mgr_ensure(c->ls, user, true, &m);
    if (rc != 0) {
        sp_ls_fail(c->cb, c->ud, rc, NULL, NULL);
        sp_free(c);
        return;
    }
    sp_presence_adopt(c->ls->presence, user);
    sp_ls_mgr_when_loaded(m, wh_apply, c);
}

void sp_livestream_webhook_refused(sp_livestream_t *ls, sp_ls_webhook_refusal_t why)
{
    if (why == SP_LS_WEBHOOK_UNAUTHORIZED)
        ls->counters.webhooks_unauthorized++;
    else
        ls->counters.webhooks_bad++;
}

void sp_livestream_webhook(sp_livestream_t *ls, const sp_cf_webhook_event_t *ev,
                           sp_ls_result_cb cb, void *ud)
{
    if (ev->type == SP_CF_EVT_OTHER) {
        sp_ls_ok(cb, ud, wh_result("ignored"));
        return;
    }
    wh_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->ls = ls;
    c->cb = cb;
    c->ud = ud;
    c->ev = *ev;
    int64_t now = sp_wall_ms();
    c->event_at = sp_cf_webhook_event_ms(&c->ev); /* range-checked: no overflow */
    if (c->event_at <= 0)
        c->event_at = now;
    if (c->event_at > now) c->event_at = now; /* a clock ahead of ours cannot block polls */
    sp_ls_manager_t *m = sp_map_gets(ls->by_input, c->ev.input_id);
    if (m != NULL && !m->stopped) {
        sp_ls_mgr_when_loaded(m, wh_apply, c);
        return;
    }
    sp_store_query(ls->store, "SELECT user_id FROM live_inputs WHERE input_uid = $1",
                   json_pack("[s]", c->ev.input_id), on_wh_lookup, c);
}
