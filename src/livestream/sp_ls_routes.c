/*
 * sp_ls_routes: the livestream subsystem's setup/shutdown and HTTP routes:
 *   GET /api/stream, POST /api/stream/start, POST /api/stream/stop,
 *   PUT /api/stream/metadata, GET /api/streams, GET /api/streams/{id},
 *   GET /api/events, POST /webhooks/cloudflare, GET /api/admin/debug
 * (destinations are in sp_ls_destinations.c), metrics, and start-up recovery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/sp_alloc.h"
#include "auth/sp_auth.h"
#include "media/sp_cf_webhook.h"
#include "core/sp_err.h"
#include "livestream/sp_livestream_internal.h"
#include "core/sp_log.h"
#include "livestream/sp_ls_media_cf.h"
#include "net/sp_metrics.h"
#include "auth/sp_seal.h"
#include "core/sp_time.h"
#include "net/sp_ws.h"

/* ------------------------------------------------------------------------- */
/* helpers                                                                    */

int ls_unseal(const char *user_id, const char *purpose, const char *sealed, sp_buf_t *out)
{
    return sp_unseal(user_id, purpose, sealed, out);
}

char *ls_seal(const char *user_id, const char *purpose, const char *plain)
{
    return sp_seal(user_id, purpose, plain, strlen(plain));
}

const char *ls_req_user(sp_http_req_t *req)
{
    const sp_auth_user_t *u = sp_auth_user(req);
    return u ? u->id : NULL;
}

void ls_respond_err(sp_http_req_t *req, int err)
{
    switch (err) {
    case SP_ELIMIT:
        sp_http_respond_error(req, 503, "too_many_users",
                              "the server is at MAX_CONCURRENT_USERS; try again later");
        return;
    case SP_ENOTFOUND: sp_http_respond_error(req, 404, "not_found", "not found"); return;
    case SP_ECLOSED:
        sp_http_respond_error(req, 503, "shutting_down", "the server is shutting down");
        return;
    default:
        sp_http_respond_error(req, 503, "unavailable", sp_strerror(err));
        return;
    }
}

static json_t *parse_json_text(const char *s)
{
    if (s == NULL) return json_null();
    json_t *j = json_loads(s, 0, NULL);
    return j ? j : json_null();
}

/* ------------------------------------------------------------------------- */
/* running a handler against the user's loaded manager                        */

typedef void (*mgr_handler_fn)(ls_manager_t *m, sp_http_req_t *req);

typedef struct {
    sp_http_req_t *req;
    mgr_handler_fn fn;
} mgr_call_t;

static void run_mgr_call(ls_manager_t *m, void *ud)
{
    mgr_call_t *c = ud;
    if (m->stopped)
        sp_http_respond_error(c->req, 503, "unavailable", "stream manager stopped");
    else if (m->load_failed)
        sp_http_respond_error(c->req, 503, "unavailable", "stream state could not be loaded");
    else
        c->fn(m, c->req);
    sp_free(c);
}

static void with_manager(sp_livestream_t *ls, sp_http_req_t *req, mgr_handler_fn fn)
{
    const char *user = ls_req_user(req);
    if (user == NULL) {
        sp_http_respond_error(req, 401, "unauthorized", "login required");
        return;
    }
    ls_manager_t *m = NULL;
    int rc = ls_mgr_ensure(ls, user, false, &m);
    if (rc != 0) {
        ls_respond_err(req, rc);
        return;
    }
    sp_presence_adopt(ls->presence, user); /* no-op when a dashboard session holds it */
    mgr_call_t *c = sp_calloc(1, sizeof(*c));
    c->req = req;
    c->fn = fn;
    ls_mgr_when_loaded(m, run_mgr_call, c);
}

/* ------------------------------------------------------------------------- */
/* GET /api/stream                                                            */

static json_t *destinations_json(ls_manager_t *m, json_t *rows);

typedef struct {
    ls_manager_t *m;
    sp_http_req_t *req;
} req_ctx_t;

static void on_stream_dests(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    req_ctx_t *c = ud;
    json_t *st = ls_status_json(c->m, true);
    json_object_set_new(st, "destinations", err == 0 ? destinations_json(c->m, rows)
                                                     : json_array());
    json_object_set_new(st, "stats", json_object());
    sp_http_respond_json(c->req, 200, st);
    ls_unref(c->m);
    sp_free(c);
}

static void stream_get(ls_manager_t *m, sp_http_req_t *req)
{
    req_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->req = req;
    ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT id, platform, name, url, stream_key_sealed, enabled, created_at, "
                   "updated_at FROM destinations WHERE user_id = $1 ORDER BY created_at, id",
                   json_pack("[s]", m->user_id), on_stream_dests, c);
}

static void h_stream_get(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_get);
}

/* masked view of destination rows (keys never leave except through reveal) */
static json_t *destinations_json(ls_manager_t *m, json_t *rows)
{
    (void)m;
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:b, s:s}", "id", json_object_get(row, "id"),
                              "platform", json_object_get(row, "platform"), "name",
                              json_object_get(row, "name"), "url", json_object_get(row, "url"),
                              "enabled", json_integer_value(json_object_get(row, "enabled")) != 0,
                              "stream_key", "********");
        if (o) json_array_append_new(arr, o);
    }
    return arr;
}

/* ------------------------------------------------------------------------- */
/* POST /api/stream/start                                                     */

typedef struct {
    ls_manager_t *m;
    sp_http_req_t *req;
    json_t *ids; /* requested destination ids */
    sp_ss_t saved;
} start_ctx_t;

void ls_answer_start(ls_manager_t *m, const char *reason)
{
    sp_http_req_t *req = m->start_req;
    m->start_busy = false;
    if (req == NULL) return;
    m->start_req = NULL;
    if (reason && strcmp(reason, "all_outputs_failed") == 0) {
        json_t *outs = ls_outputs_json(m);
        size_t i;
        json_t *o;
        json_array_foreach(outs, i, o) json_object_set_new(o, "status", json_string("failed"));
        json_t *e = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "all_outputs_failed",
                              "message", "no destination output could be created",
                              "outputs", outs);
        sp_http_respond_json(req, 502, e);
        return;
    }
    if (reason && strcmp(reason, "ended") == 0) {
        sp_http_respond_error(req, 409, "ended", "the stream ended while starting");
        return;
    }
    json_t *o = json_pack("{s:s, s:s?, s:o, s:b}", "state", sp_ss_state_name(m->ss.state),
                          "stream_id", m->stream_id[0] ? m->stream_id : NULL, "outputs",
                          ls_outputs_json(m), "partial_failure",
                          reason && strcmp(reason, "partial_failure") == 0);
    sp_http_respond_json(req, 200, o);
}

static void start_fail(start_ctx_t *c, int status, const char *code, const char *msg)
{
    c->m->start_busy = false;
    sp_http_respond_error(c->req, status, code, msg);
    json_decref(c->ids);
    ls_unref(c->m);
    sp_free(c);
}

static void on_start_tx(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    start_ctx_t *c = ud;
    ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    if (m->stopped) {
        m->start_req = NULL;
        start_fail(c, 503, "unavailable", "stream manager stopped");
        return;
    }
    if (err != 0) {
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "start: intent not stored", "err=%s",
                sp_err_name(err));
        ls->state_hist[m->ss.state]--;
        ls->state_hist[c->saved.state]++;
        sp_ss_state_t cur_input = m->ss.input_connected;
        m->ss = c->saved;
        m->stream_id[0] = '\0';
        for (size_t i = 0; i < m->n_outs; i++) m->outs[i]->state = SP_OUT_CLOSED;
        m->start_req = NULL;
        if ((bool)cur_input != m->ss.input_connected) {
            sp_ss_event_t ev = { .type = cur_input ? SP_SSE_INPUT_CONNECTED
                                                   : SP_SSE_INPUT_DISCONNECTED };
            ls_mgr_apply(m, &ev, NULL, NULL);
        }
        ls_outputs_pump(m);
        start_fail(c, 503, "storage_unavailable", "the stream could not be recorded");
        return;
    }
    ls->counters.streams_started++;
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "stream started",
            "stream_id=%s destinations=%zu", m->stream_id, m->n_outs);
    char topic[128];
    snprintf(topic, sizeof(topic), "stream_lifecycle:%s", m->user_id);
    ls_publish(ls, topic, "stream_started", json_pack("{s:s}", "stream_id", m->stream_id));
    ls_record_event(m, m->stream_id, "stream_started", json_pack("{s:s, s:I}", "stream_id", m->stream_id,
                                                   "destinations", (json_int_t)m->n_outs));
    ls_publish_state(m, "started");
    ls_mgr_arm_timer(m);
    if (!m->ss.starting)
        ls_answer_start(m, NULL);
    else
        ls_outputs_pump(m);
    json_decref(c->ids);
    ls_unref(m);
    sp_free(c);
}

static void on_start_dests(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    start_ctx_t *c = ud;
    ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    if (m->stopped) {
        start_fail(c, 503, "unavailable", "stream manager stopped");
        return;
    }
    if (err != 0) {
        start_fail(c, 503, "storage_unavailable", "destinations could not be read");
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
            start_fail(c, 422, "unknown_destination", "a selected destination does not exist");
            return;
        }
        if (json_integer_value(json_object_get(found[i], "enabled")) == 0) {
            sp_free(found);
            start_fail(c, 422, "destination_disabled", "a selected destination is disabled");
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
        start_fail(c, 409, r.reason, "the stream cannot be started now");
        return;
    }
    ls->state_hist[c->saved.state]--;
    ls->state_hist[m->ss.state]++;
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
    sqls[1] = LS_SQL_UPSERT_STATE;
    params[1] = ls_state_params(m);
    for (size_t i = 0; i < n; i++) {
        json_t *row = found[i];
        ls_output_t *o = sp_calloc(1, sizeof(*o));
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
            if (ls_unseal(m->user_id, "destination_key", sealed, &b) == 0)
                o->key = sp_buf_detach(&b, NULL);
            sp_buf_cleanup(&b);
        }
        o->state = SP_OUT_CREATING;
        sp_sup_init(&o->sup, 5, 60000, 1000, 30000);
        ls_mgr_add_output(m, o);
        sqls[2 + i] = "INSERT INTO stream_outputs (id, stream_id, user_id, destination_id, "
                      "output_uid, state, last_error, created_at, updated_at) VALUES "
                      "($1, $2, $3, $4, NULL, 'creating', NULL, $5, $5)";
        params[2 + i] = json_pack("[s, s, s, s, I]", o->row_id, m->stream_id, m->user_id,
                                  o->destination_id, (json_int_t)now);
    }
    sp_free(found);
    m->start_req = c->req;
    ls->counters.persists++;
    sp_store_tx(ls->store, nsql, sqls, params, on_start_tx, c);
    sp_free(sqls);
    sp_free(params);
}

static void stream_start(ls_manager_t *m, sp_http_req_t *req)
{
    sp_livestream_t *ls = m->ls;
    json_t *body = NULL;
    const sp_buf_t *raw = sp_http_req_body(req);
    if (raw && raw->len > 0) {
        body = sp_http_req_json_or_400(req);
        if (body == NULL) return;
    }
    json_t *dests = body ? json_object_get(body, "destinations") : NULL;
    if (dests != NULL && !json_is_array(dests)) {
        json_decref(body);
        sp_http_respond_error(req, 422, "invalid", "destinations must be an array of ids");
        return;
    }
    json_t *ids = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(dests, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || strlen(s) > 64) {
            json_decref(ids);
            json_decref(body);
            sp_http_respond_error(req, 422, "invalid", "destinations must be an array of ids");
            return;
        }
        bool dup = false;
        size_t k;
        json_t *w;
        json_array_foreach(ids, k, w) dup |= strcmp(json_string_value(w), s) == 0;
        if (!dup) json_array_append_new(ids, json_string(s));
    }
    json_decref(body);
    if (ls->cfg->max_platforms_per_user > 0 &&
        (int64_t)json_array_size(ids) > ls->cfg->max_platforms_per_user) {
        json_decref(ids);
        sp_http_respond_error(req, 422, "too_many_destinations",
                              "more destinations than MAX_PLATFORMS_PER_USER");
        return;
    }
    if (m->start_busy) {
        json_decref(ids);
        ls->counters.illegal_requests++;
        sp_http_respond_error(req, 409, "starting", "a start is already in progress");
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
        sp_http_respond_error(req, 409, r.reason, msg);
        return;
    }
    if (m->input_uid == NULL) {
        json_decref(ids);
        sp_http_respond_error(req, 409, "no_input", "no live input exists for this user");
        return;
    }
    if (m->needs_reconcile || m->reconciling) {
        json_decref(ids);
        sp_http_respond_error(req, 503, "reconciling",
                              "outputs are being reconciled with the media service; retry");
        return;
    }
    start_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->req = req;
    c->ids = ids;
    m->start_busy = true;
    ls_ref(m);
    sp_store_query(ls->store,
                   "SELECT id, platform, name, url, stream_key_sealed, enabled FROM destinations "
                   "WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_start_dests, c);
}

static void h_stream_start(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_start);
}

/* ------------------------------------------------------------------------- */
/* POST /api/stream/stop                                                      */

static void on_stop_persisted(ls_manager_t *m, int err, void *ud)
{
    sp_http_req_t *req = ud;
    if (err != 0) sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "stop persisted late", "");
    sp_http_respond_json(req, 200,
                         json_pack("{s:s, s:s?, s:s}", "state", sp_ss_state_name(m->ss.state),
                                   "stream_id", m->stream_id[0] ? m->stream_id : NULL,
                                   "end_reason", sp_ss_end_reason_name(m->ss.end_reason)));
}

static void stream_stop(ls_manager_t *m, sp_http_req_t *req)
{
    sp_ss_event_t ev = { .type = SP_SSE_STOP };
    sp_ss_result_t r = ls_mgr_apply(m, &ev, on_stop_persisted, req);
    if (r.err != 0) {
        const char *msg = strcmp(r.reason, "not_streaming") == 0 ? "nothing is streaming"
                          : strcmp(r.reason, "starting") == 0
                              ? "the stream is still starting"
                              : "the stream is already ending";
        sp_http_respond_error(req, 409, r.reason, msg);
    }
}

static void h_stream_stop(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_stop);
}

/* ------------------------------------------------------------------------- */
/* PUT /api/stream/metadata                                                   */

static void stream_metadata(ls_manager_t *m, sp_http_req_t *req)
{
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    json_t *t = json_object_get(body, "title");
    json_t *d = json_object_get(body, "description");
    if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 140 ||
        (d != NULL && !json_is_null(d) && (!json_is_string(d) || json_string_length(d) > 5000))) {
        json_decref(body);
        sp_http_respond_error(req, 422, "invalid",
                              "title: 1-140 characters; description: at most 5000");
        return;
    }
    sp_free(m->title);
    m->title = sp_strdup(json_string_value(t));
    sp_free(m->description);
    m->description = json_is_string(d) ? sp_strdup(json_string_value(d)) : NULL;
    json_decref(body);
    if (m->stream_id[0])
        ls_write(m, "UPDATE streams SET title = $2, description = $3 WHERE id = $1",
                 json_pack("[s, s, s?]", m->stream_id, m->title, m->description));
    ls_publish_state(m, "metadata");
    sp_http_respond_json(req, 200, json_pack("{s:s, s:s?, s:b}", "title", m->title,
                                             "description", m->description, "live",
                                             m->stream_id[0] != '\0'));
}

static void h_stream_metadata(sp_http_req_t *req, void *ud)
{
    with_manager(ud, req, stream_metadata);
}

/* ------------------------------------------------------------------------- */
/* GET /api/streams, /api/streams/{id}, /api/events                           */

/* JSON columns come back as text (SQLite TEXT, and PostgreSQL JSONB unless the backend
   already decoded them): decode text, keep values that are already JSON */
static void decode_json_col(json_t *o, json_t *row, const char *col)
{
    json_t *v = json_object_get(row, col);
    if (json_is_string(v)) json_object_set_new(o, col, parse_json_text(json_string_value(v)));
}

static json_t *stream_row_json(json_t *row)
{
    json_t *o = json_deep_copy(row);
    decode_json_col(o, row, "destinations");
    decode_json_col(o, row, "stats");
    return o;
}

static void on_streams_list(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_http_req_t *req = ud;
    if (err != 0) {
        ls_respond_err(req, err);
        return;
    }
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) json_array_append_new(arr, stream_row_json(row));
    sp_http_respond_json(req, 200, json_pack("{s:o}", "streams", arr));
}

static const char *const SQL_STREAM_COLS =
    "id, title, description, state, started_at, ended_at, end_reason, destinations, stats, "
    "peak_viewers, avg_viewers";

static void h_streams_list(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    const char *user = ls_req_user(req);
    char lim[16];
    int64_t limit = 50;
    if (sp_http_req_query_param(req, "limit", lim, sizeof(lim))) {
        limit = strtoll(lim, NULL, 10);
        if (limit < 1 || limit > 200) limit = 50;
    }
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM streams WHERE user_id = $1 ORDER BY started_at DESC, id LIMIT $2",
             SQL_STREAM_COLS);
    sp_store_query(ls->store, sql, json_pack("[s, I]", user, (json_int_t)limit), on_streams_list,
                   req);
}

typedef struct {
    sp_livestream_t *ls;
    sp_http_req_t *req;
    json_t *stream;
} stream_one_t;

static void on_stream_outputs(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    stream_one_t *c = ud;
    json_object_set(c->stream, "outputs", err == 0 ? rows : json_array());
    sp_http_respond_json(c->req, 200, c->stream);
    sp_free(c);
}

static void on_stream_one(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    stream_one_t *c = ud;
    if (err != 0 || json_array_size(rows) != 1) {
        if (err != 0)
            ls_respond_err(c->req, err);
        else
            sp_http_respond_error(c->req, 404, "not_found", "no such stream");
        sp_free(c);
        return;
    }
    c->stream = stream_row_json(json_array_get(rows, 0));
    const char *user = ls_req_user(c->req);
    sp_store_query(c->ls->store,
                   "SELECT id, destination_id, output_uid, state, last_error, created_at, "
                   "updated_at FROM stream_outputs WHERE stream_id = $1 AND user_id = $2 "
                   "ORDER BY created_at, id",
                   json_pack("[s, s]", jstr_or_null(c->stream, "id"), user), on_stream_outputs,
                   c);
}

static void h_streams_one(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    const char *user = ls_req_user(req);
    const char *id = sp_http_req_param(req, "id");
    if (id == NULL || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such stream");
        return;
    }
    stream_one_t *c = sp_calloc(1, sizeof(*c));
    c->ls = ls;
    c->req = req;
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM streams WHERE id = $1 AND user_id = $2",
             SQL_STREAM_COLS);
    sp_store_query(ls->store, sql, json_pack("[s, s]", id, user), on_stream_one, c);
}

static void on_events(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_http_req_t *req = ud;
    if (err != 0) {
        ls_respond_err(req, err);
        return;
    }
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *o = json_deep_copy(row);
        decode_json_col(o, row, "payload");
        json_array_append_new(arr, o);
    }
    sp_http_respond_json(req, 200, json_pack("{s:o}", "events", arr));
}

static void h_events(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    const char *user = ls_req_user(req);
    char buf[64], sid[64];
    int64_t after = 0, limit = 100;
    if (sp_http_req_query_param(req, "after_seq", buf, sizeof(buf))) after = strtoll(buf, NULL, 10);
    if (sp_http_req_query_param(req, "limit", buf, sizeof(buf))) {
        limit = strtoll(buf, NULL, 10);
        if (limit < 1 || limit > 500) limit = 100;
    }
    bool by_stream = sp_http_req_query_param(req, "stream_id", sid, sizeof(sid)) && sid[0];
    if (by_stream)
        sp_store_query(ls->store,
                       "SELECT id, stream_id, platform, type, payload, seq, created_at FROM events "
                       "WHERE user_id = $1 AND seq > $2 AND stream_id = $4 ORDER BY seq LIMIT $3",
                       json_pack("[s, I, I, s]", user, (json_int_t)after, (json_int_t)limit, sid),
                       on_events, req);
    else
        sp_store_query(ls->store,
                       "SELECT id, stream_id, platform, type, payload, seq, created_at FROM events "
                       "WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                       json_pack("[s, I, I]", user, (json_int_t)after, (json_int_t)limit),
                       on_events, req);
}

/* ------------------------------------------------------------------------- */
/* POST /webhooks/cloudflare                                                  */

typedef struct {
    sp_livestream_t *ls;
    sp_http_req_t *req;
    sp_cf_webhook_event_t ev;
    int64_t event_at;
} wh_ctx_t;

static void on_wh_persisted(ls_manager_t *m, int err, void *ud)
{
    sp_http_req_t *req = ud;
    (void)m;
    if (err != 0)
        sp_http_respond_error(req, 503, "storage_unavailable", "event not stored; retry");
    else
        sp_http_respond_json(req, 200, json_pack("{s:b, s:s}", "ok", 1, "result", "applied"));
}

static void wh_apply(ls_manager_t *m, void *ud)
{
    wh_ctx_t *c = ud;
    if (m->stopped || m->load_failed) {
        sp_http_respond_error(c->req, 503, "unavailable", "try again");
        sp_free(c);
        return;
    }
    sp_input_status_t st = c->ev.type == SP_CF_EVT_CONNECTED      ? SP_INPUT_CONNECTED
                           : c->ev.type == SP_CF_EVT_DISCONNECTED ? SP_INPUT_DISCONNECTED
                                                                  : SP_INPUT_ERRORED;
    if (st == SP_INPUT_ERRORED && c->ev.error_code[0]) {
        char msg[400];
        snprintf(msg, sizeof(msg), "input errored: %s %s", c->ev.error_code, c->ev.error_message);
        sp_free(m->last_error);
        m->last_error = sp_strdup(msg);
    }
    int rc = ls_apply_input(m, st, c->event_at, "webhook", on_wh_persisted, c->req);
    if (rc == LS_INPUT_APPLIED) {
        c->ls->counters.webhooks_ok++;
    } else {
        sp_http_respond_json(c->req, 200,
                             json_pack("{s:b, s:s}", "ok", 1, "result",
                                       rc == LS_INPUT_STALE ? "stale" : "duplicate"));
    }
    sp_free(c);
}

static void on_wh_lookup(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    wh_ctx_t *c = ud;
    if (err != 0) {
        sp_http_respond_error(c->req, 503, "storage_unavailable", "try again");
        sp_free(c);
        return;
    }
    const char *user = json_array_size(rows) == 1 ? jstr_or_null(json_array_get(rows, 0), "user_id")
                                                  : NULL;
    if (user == NULL) {
        c->ls->counters.webhooks_unknown_input++;
        sp_http_respond_json(c->req, 200,
                             json_pack("{s:b, s:s}", "ok", 1, "result", "unknown_input"));
        sp_free(c);
        return;
    }
    ls_manager_t *m = NULL;
    int rc = ls_mgr_ensure(c->ls, user, true, &m);
    if (rc != 0) {
        ls_respond_err(c->req, rc);
        sp_free(c);
        return;
    }
    sp_presence_adopt(c->ls->presence, user);
    ls_mgr_when_loaded(m, wh_apply, c);
}

static void h_webhook(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    const char *hdr = sp_http_req_header(req, "cf-webhook-auth");
    if (!sp_cf_webhook_auth_ok(hdr, hdr ? strlen(hdr) : 0, ls->cfg->cloudflare_webhook_secret)) {
        ls->counters.webhooks_unauthorized++;
        sp_warn("livestream", "cloudflare webhook refused", "reason=bad_secret ip=%s",
                sp_http_req_remote_ip(req));
        sp_http_respond_error(req, 401, "unauthorized", "bad or missing cf-webhook-auth");
        return;
    }
    const sp_buf_t *body = sp_http_req_body(req);
    wh_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->ls = ls;
    c->req = req;
    int rc = sp_cf_webhook_parse((const uint8_t *)(body ? body->p : ""), body ? body->len : 0,
                                 &c->ev);
    if (rc != 0) {
        ls->counters.webhooks_bad++;
        sp_free(c);
        sp_http_respond_error(req, 400, "bad_payload", "not a Cloudflare notification payload");
        return;
    }
    if (c->ev.type == SP_CF_EVT_OTHER) {
        sp_free(c);
        sp_http_respond_json(req, 200, json_pack("{s:b, s:s}", "ok", 1, "result", "ignored"));
        return;
    }
    int64_t now = sp_wall_ms();
    c->event_at = c->ev.updated_ms ? c->ev.updated_ms : (c->ev.ts ? c->ev.ts * 1000 : now);
    if (c->event_at > now) c->event_at = now; /* a clock ahead of ours cannot block polls */
    ls_manager_t *m = sp_map_gets(ls->by_input, c->ev.input_id);
    if (m != NULL && !m->stopped) {
        ls_mgr_when_loaded(m, wh_apply, c);
        return;
    }
    sp_store_query(ls->store, "SELECT user_id FROM live_inputs WHERE input_uid = $1",
                   json_pack("[s]", c->ev.input_id), on_wh_lookup, c);
}

/* ------------------------------------------------------------------------- */
/* GET /api/admin/debug?what=presence|managers|users|counts                   */

static bool loopback(const char *ip)
{
    return ip && (strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0 ||
                  strncmp(ip, "::ffff:127.", 11) == 0 || strncmp(ip, "127.", 4) == 0);
}

static json_t *debug_counts(sp_livestream_t *ls)
{
    json_t *o = json_object();
    for (int k = 0; k < SP_REG_KIND_COUNT; k++)
        json_object_set_new(o, sp_registry_kind_name((sp_reg_kind_t)k),
                            json_integer((json_int_t)sp_registry_count(ls->reg, (sp_reg_kind_t)k)));
    json_object_set_new(o, "presence_users",
                        json_integer((json_int_t)sp_presence_user_count(ls->presence)));
    json_object_set_new(o, "presence_sessions",
                        json_integer((json_int_t)sp_presence_session_count(ls->presence)));
    json_t *states = json_object();
    for (int s = 0; s < 4; s++)
        json_object_set_new(states, sp_ss_state_name((sp_ss_state_t)s),
                            json_integer((json_int_t)ls->state_hist[s]));
    json_object_set_new(o, "states", states);
    return o;
}

static json_t *debug_managers(sp_livestream_t *ls, bool ids_only)
{
    json_t *arr = json_array();
    size_t it = 0;
    void *v;
    while (sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, NULL, NULL, &v)) {
        ls_manager_t *m = v;
        if (ids_only) {
            json_array_append_new(arr, json_string(m->user_id));
            continue;
        }
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s?, s:b, s:s, s:I, s:I, s:b, s:I}", "user_id",
                           m->user_id, "state", sp_ss_state_name(m->ss.state), "stream_id",
                           m->stream_id[0] ? m->stream_id : NULL, "loaded", m->loaded,
                           "input_status", sp_input_status_name(m->input_status), "outputs",
                           (json_int_t)m->n_outs, "sessions",
                           (json_int_t)sp_presence_sessions(ls->presence, m->user_id),
                           "degraded", m->degraded, "disconnect_deadline",
                           (json_int_t)m->ss.disconnect_deadline));
    }
    return arr;
}

static void h_admin_debug(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    if (ls->shutting_down) {
        sp_http_respond_error(req, 503, "shutting_down", "the server is shutting down");
        return;
    }
    const char *tok = ls->cfg->admin_token;
    if (tok == NULL || tok[0] == '\0') {
        sp_http_respond_error(req, 404, "admin_disabled", "ADMIN_TOKEN is not set");
        return;
    }
    if (!loopback(sp_http_req_remote_ip(req))) {
        sp_http_respond_error(req, 403, "forbidden", "admin endpoint is loopback only");
        return;
    }
    const char *auth = sp_http_req_header(req, "authorization");
    size_t tl = strlen(tok);
    bool ok = auth && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == tl &&
              sodium_memcmp(auth + 7, tok, tl) == 0;
    if (!ok) {
        sp_http_respond_error(req, 401, "unauthorized", "admin token required");
        return;
    }
    char what[32] = "counts";
    sp_http_req_query_param(req, "what", what, sizeof(what));
    json_t *data;
    if (strcmp(what, "presence") == 0)
        data = sp_presence_debug(ls->presence);
    else if (strcmp(what, "managers") == 0)
        data = debug_managers(ls, false);
    else if (strcmp(what, "users") == 0)
        data = debug_managers(ls, true);
    else if (strcmp(what, "counts") == 0)
        data = debug_counts(ls);
    else {
        sp_http_respond_error(req, 422, "invalid", "what: presence|managers|users|counts");
        return;
    }
    sp_http_respond_json(req, 200, json_pack("{s:s, s:o}", "what", what, "data", data));
}

/* ------------------------------------------------------------------------- */
/* metrics                                                                    */

void sp_livestream_metrics(sp_livestream_t *ls, sp_buf_t *out)
{
    if (ls == NULL) return;
    ls_counters_t *c = &ls->counters;
#define C(name, help, v)                                                                      \
    sp_buf_appendf(out, "# HELP streampai_livestream_" name " " help "\n"                     \
                        "# TYPE streampai_livestream_" name " counter\n"                      \
                        "streampai_livestream_" name " %llu\n",                               \
                   (unsigned long long)(v))
#define G(name, help, v)                                                                      \
    sp_buf_appendf(out, "# HELP streampai_livestream_" name " " help "\n"                     \
                        "# TYPE streampai_livestream_" name " gauge\n"                        \
                        "streampai_livestream_" name " %llu\n",                               \
                   (unsigned long long)(v))
    G("managers", "running user stream managers",
      sp_registry_count(ls->reg, SP_REG_USER_STREAM_MANAGER));
    G("active_sessions", "dashboard presence sessions", sp_presence_session_count(ls->presence));
    G("presence_users", "users tracked by presence", sp_presence_user_count(ls->presence));
    sp_buf_appendf(out, "# HELP streampai_livestream_state_users users by stream state\n"
                        "# TYPE streampai_livestream_state_users gauge\n");
    for (int s = 0; s < 4; s++)
        sp_buf_appendf(out, "streampai_livestream_state_users{state=\"%s\"} %llu\n",
                       sp_ss_state_name((sp_ss_state_t)s),
                       (unsigned long long)ls->state_hist[s]);
    C("stream_state_server_calls_total", "state machine calls", c->call_count);
    sp_buf_appendf(out,
                   "# HELP streampai_livestream_stream_state_server_call_duration_seconds "
                   "state machine call time\n"
                   "# TYPE streampai_livestream_stream_state_server_call_duration_seconds "
                   "summary\n"
                   "streampai_livestream_stream_state_server_call_duration_seconds_sum %.6f\n"
                   "streampai_livestream_stream_state_server_call_duration_seconds_count %llu\n",
                   (double)c->call_us_total / 1e6, (unsigned long long)c->call_count);
    C("events_processed_total", "events applied to stream state machines", c->events_processed);
    G("events_queue_size", "events waiting (always 0: applied inline)", 0);
    C("user_sessions_started_total", "managers started by a first dashboard session",
      c->sessions_started);
    C("managers_started_total", "managers started", c->managers_started);
    C("managers_stopped_total", "managers stopped", c->managers_stopped);
    C("managers_refused_total", "managers refused by MAX_CONCURRENT_USERS", c->refused_limit);
    C("recovered_total", "users recovered at start-up with a non-offline state", c->recovered);
    C("state_transitions_total", "stream state changes", c->transitions);
    C("illegal_requests_total", "requests refused with 409", c->illegal_requests);
    C("streams_started_total", "streams started", c->streams_started);
    C("streams_ended_total", "streams ended", c->streams_ended);
    C("webhooks_applied_total", "cloudflare webhooks applied", c->webhooks_ok);
    C("webhooks_unauthorized_total", "cloudflare webhooks refused (secret)",
      c->webhooks_unauthorized);
    C("webhooks_duplicate_total", "duplicate cloudflare webhooks", c->webhooks_duplicate);
    C("webhooks_stale_total", "stale cloudflare webhooks ignored", c->webhooks_stale);
    C("webhooks_unknown_input_total", "webhooks for unknown inputs", c->webhooks_unknown_input);
    C("input_polls_total", "live input polls", c->polls);
    C("input_poll_errors_total", "live input polls failed", c->poll_errors);
    C("input_polls_skipped_budget_total", "polls skipped for the call budget",
      c->poll_skipped_budget);
    C("cloudflare_output_created_total", "outputs created", c->outputs_created);
    C("cloudflare_output_failed_total", "output creations failed", c->outputs_failed);
    C("cloudflare_output_deleted_total", "outputs deleted", c->outputs_deleted);
    C("cloudflare_output_adopted_total", "outputs adopted by reconciliation", c->outputs_adopted);
    C("cloudflare_orphans_deleted_total", "orphan outputs deleted", c->orphans_deleted);
    C("reconciliations_total", "output reconciliations", c->reconciles);
    C("output_polls_total", "output health refreshes (list outputs while streaming)",
      c->output_polls);
    C("inputs_restored_total", "live inputs re-created on the built-in relay after it lost them",
      c->inputs_restored);
    C("cloudflare_outputs_lost_total", "active outputs the media service no longer had (recreated)",
      c->outputs_lost);
    C("cloudflare_inputs_created_total", "live inputs created", c->inputs_created);
#undef C
#undef G
}

static void render_metrics(sp_buf_t *out, void *ud)
{
    sp_livestream_t *ls = ud;
    sp_livestream_metrics(ls, out);
    /* the media client belongs to the livestream subsystem's wiring: expose it here */
    if (ls->app && ls->app->cloudflare) sp_cloudflare_metrics(ls->app->cloudflare, out);
}

/* ------------------------------------------------------------------------- */
/* init / shutdown / recovery                                                 */

static void on_poll_timer(uv_timer_t *t)
{
    ls_poll_tick(t->data);
}

static void on_recover_rows(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_livestream_t *ls = ud;
    if (err != 0) {
        sp_error("livestream", "recovery query failed", "err=%s", sp_err_name(err));
        return;
    }
    if (ls->shutting_down) return;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *user = jstr_or_null(row, "user_id");
        ls_manager_t *m = NULL;
        if (user && ls_mgr_ensure(ls, user, true, &m) == 0) sp_presence_adopt(ls->presence, user);
    }
    sp_info("livestream", "recovery started", "users=%zu", json_array_size(rows));
}

int sp_livestream_init(sp_app_t *app)
{
    /* stream keys are sealed at rest: make sure the key is loaded (idempotent) */
    char *probe = sp_seal("probe", "probe", "x", 1);
    if (probe == NULL) {
        char err[256];
        int rc = sp_seal_init(app->cfg, err, sizeof(err));
        if (rc != 0) {
            sp_error("livestream", "secrets unavailable", "detail=\"%s\"", err);
            return rc;
        }
    }
    sp_free(probe);
    sp_livestream_t *ls = sp_calloc(1, sizeof(*ls));
    ls->app = app;
    ls->loop = app->loop;
    ls->cfg = app->cfg;
    ls->store = app->store;
    ls->reg = sp_registry_new();
    ls->by_input = sp_map_new(NULL);
    sp_presence_hooks_t hooks = { ls_hook_start, ls_hook_stop, ls_hook_can_stop };
    ls->presence = sp_presence_new(app->loop, app->cfg->presence_cleanup_timeout, &hooks, ls);
    if (app->cloudflare) {
        if (app->cfg->media_backend && strcmp(app->cfg->media_backend, "local") == 0)
            sp_ls_media_relay(app->cloudflare, &ls->media);
        else
            sp_ls_media_cloudflare(app->cloudflare, &ls->media);
        ls->has_media = true;
    }
    uv_timer_init(app->loop, &ls->poll_timer);
    ls->poll_timer.data = ls;
    uint64_t tick = (uint64_t)app->cfg->cloudflare_input_poll_interval / 4;
    if (tick < 50) tick = 50;
    if (tick > 1000) tick = 1000;
    uv_timer_start(&ls->poll_timer, on_poll_timer, tick, tick);
    app->live = ls;
    sp_metrics_register(render_metrics, ls);
    sp_info("livestream", "started", "media=%s poll_ms=%lld disconnect_timeout_ms=%lld "
            "presence_cleanup_ms=%lld",
            ls->has_media ? ls->media.ops->provider : "none",
            (long long)app->cfg->cloudflare_input_poll_interval,
            (long long)app->cfg->stream_disconnect_timeout,
            (long long)app->cfg->presence_cleanup_timeout);
    if (ls->store)
        sp_store_query(ls->store,
                       "SELECT user_id FROM stream_state WHERE state <> 'offline' UNION "
                       "SELECT user_id FROM stream_outputs WHERE state <> 'closed'",
                       NULL, on_recover_rows, ls);
    return 0;
}

void sp_livestream_set_media(sp_livestream_t *ls, const sp_ls_media_t *media)
{
    ls->media = *media;
    ls->has_media = media->ops != NULL;
}

void sp_livestream_register_routes(sp_app_t *app)
{
    sp_livestream_t *ls = app->live;
    sp_router_t *r = app->router;
    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_route_opts_t hook = { .body_limit = SP_CF_WEBHOOK_MAX_BODY,
                             .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_CSRF };
    sp_route_opts_t pub = { .body_limit = 0, .flags = SP_ROUTE_PUBLIC };
    sp_router_add(r, "GET", "/api/stream", h_stream_get, ls, &auth);
    sp_router_add(r, "POST", "/api/stream/start", h_stream_start, ls, &auth);
    sp_router_add(r, "POST", "/api/stream/stop", h_stream_stop, ls, &auth);
    sp_router_add(r, "PUT", "/api/stream/metadata", h_stream_metadata, ls, &auth);
    sp_router_add(r, "GET", "/api/streams", h_streams_list, ls, &auth);
    sp_router_add(r, "GET", "/api/streams/{id}", h_streams_one, ls, &auth);
    sp_router_add(r, "GET", "/api/events", h_events, ls, &auth);
    sp_router_add(r, "POST", "/webhooks/cloudflare", h_webhook, ls, &hook);
    sp_router_add(r, "GET", "/api/admin/debug", h_admin_debug, ls, &pub);
    ls_destinations_register(ls, r);
}

static void on_poll_timer_closed(uv_handle_t *h)
{
    sp_livestream_t *ls = h->data;
    ls->poll_closed = true;
    ls_maybe_free(ls);
}

void sp_livestream_shutdown(sp_app_t *app)
{
    sp_livestream_t *ls = app->live;
    if (ls == NULL || ls->shutting_down) return;
    ls->shutting_down = true;
    sp_info("livestream", "stopping managers", "managers=%zu",
            sp_registry_count(ls->reg, SP_REG_USER_STREAM_MANAGER));
    uv_close((uv_handle_t *)&ls->poll_timer, on_poll_timer_closed);
    /* stop every manager (pending requests get 503): state stays persisted for next start */
    for (;;) {
        size_t it = 0;
        void *v;
        if (!sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, NULL, NULL, &v)) break;
        ls_mgr_stop_now(v, "shutdown");
    }
    sp_presence_free(ls->presence);
    ls->presence = NULL;
}

void sp_livestream_free(sp_app_t *app)
{
    sp_livestream_t *ls = app->live;
    if (ls == NULL) return;
    sp_livestream_shutdown(app);
    sp_metrics_unregister(render_metrics, ls);
    app->live = NULL;
    ls->owner_gone = true;
    ls_maybe_free(ls);
}

/* ------------------------------------------------------------------------- */
/* dashboard WebSocket: authentication and presence                           */

static int ws_opened(const char *user_id, uint64_t conn_id, void *ud)
{
    sp_app_t *app = ud;
    if (app->live == NULL) return 0;
    return sp_livestream_session_join(app->live, user_id, conn_id);
}

static void ws_closed(const char *user_id, uint64_t conn_id, void *ud)
{
    sp_app_t *app = ud;
    if (app->live) sp_livestream_session_leave(app->live, user_id, conn_id);
}

void sp_livestream_attach_ws(sp_app_t *app)
{
    if (app->ws == NULL) return;
    sp_ws_observer_t obs = { ws_opened, ws_closed, app };
    sp_ws_hub_set_observer(app->ws, &obs);
}
