/* sp_ls_history: stream history and events (see the header). */
#include "livestream/sp_ls_history.h"

#include <stdio.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_time.h"
#include "livestream/sp_livestream_internal.h"
#include "livestream/sp_ls_summary.h"

typedef struct {
    sp_livestream_t *ls;
    sp_ls_result_cb cb;
    void *ud;
    char user[72];
    json_t *stream;
    json_t *series; /* GET /api/streams/{id}: the viewer series, then the chat counts */
    json_t *chat;
} hist_ctx_t;

static hist_ctx_t *ctx_new(sp_livestream_t *ls, const char *user, sp_ls_result_cb cb, void *ud)
{
    hist_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->ls = ls;
    c->cb = cb;
    c->ud = ud;
    snprintf(c->user, sizeof(c->user), "%s", user);
    return c;
}

static json_t *parse_json_text(const char *s)
{
    if (s == NULL) return json_null();
    json_t *j = json_loads(s, 0, NULL);
    return j ? j : json_null();
}

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

static const char *const SQL_STREAM_COLS =
    "id, title, description, state, started_at, ended_at, end_reason, destinations, stats, "
    "peak_viewers, avg_viewers";

static void on_streams_list(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    sp_ls_answer_rows(c->cb, c->ud, err, rows, "streams", stream_row_json);
    sp_free(c);
}

void sp_ls_history_streams(sp_livestream_t *ls, const char *user_id, int64_t limit,
                           sp_ls_result_cb cb, void *ud)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM streams WHERE user_id = $1 ORDER BY started_at DESC, id LIMIT $2",
             SQL_STREAM_COLS);
    sp_store_query(ls->store, sql, json_pack("[s, I]", user_id, (json_int_t)limit),
                   on_streams_list, ctx_new(ls, user_id, cb, ud));
}

/* GET /api/streams/{id}: the row, then its outputs, viewer samples, chat counts and alerts;
   the answer adds `outputs`, `viewers` (the chart series) and `summary` (sp_ls_summary.h). */
static void stream_one_done(hist_ctx_t *c)
{
    json_decref(c->series);
    json_decref(c->chat);
    sp_free(c);
}

static void on_stream_alerts(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    json_t *none = json_array();
    json_object_set_new(c->stream, "summary",
                        sp_ls_stream_summary(c->stream, c->series, c->chat,
                                             err == 0 ? rows : none, sp_wall_ms()));
    json_decref(none);
    json_object_set(c->stream, "viewers", c->series);
    sp_ls_ok(c->cb, c->ud, c->stream);
    stream_one_done(c);
}

static void on_stream_chat(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    c->chat = err == 0 ? json_incref(rows) : json_array();
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT platform, payload FROM events WHERE stream_id = $1 AND user_id = $2 AND "
             "type = 'alert' LIMIT %d",
             SP_LS_SUMMARY_ALERTS_MAX);
    sp_store_query(c->ls->store, sql, json_pack("[s, s]", sp_json_str(c->stream, "id"), c->user),
                   on_stream_alerts, c);
}

static void on_stream_samples(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    json_t *none = json_array();
    c->series = sp_ls_viewer_series(err == 0 ? rows : none);
    json_decref(none);
    sp_store_query(c->ls->store,
                   "SELECT platform, COUNT(*) AS n FROM events WHERE stream_id = $1 AND "
                   "user_id = $2 AND type = 'chat_message' GROUP BY platform ORDER BY platform",
                   json_pack("[s, s]", sp_json_str(c->stream, "id"), c->user), on_stream_chat, c);
}

static void on_stream_outputs(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    json_object_set_new(c->stream, "outputs", err == 0 ? json_incref(rows) : json_array());
    char sql[256];
    /* the stream is the user's (checked by the first query) */
    snprintf(sql, sizeof(sql),
             "SELECT ts, platform, viewers FROM viewer_samples WHERE stream_id = $1 "
             "ORDER BY ts, platform LIMIT %d",
             SP_LS_SAMPLES_MAX);
    sp_store_query(c->ls->store, sql, json_pack("[s]", sp_json_str(c->stream, "id")),
                   on_stream_samples, c);
}

static void on_stream_one(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    if (err != 0 || json_array_size(rows) != 1) {
        if (err != 0)
            sp_ls_fail(c->cb, c->ud, err, NULL, NULL);
        else
            sp_ls_fail(c->cb, c->ud, SP_ENOTFOUND, "not_found", "no such stream");
        sp_free(c);
        return;
    }
    c->stream = stream_row_json(json_array_get(rows, 0));
    sp_store_query(c->ls->store,
                   "SELECT id, destination_id, output_uid, state, last_error, created_at, "
                   "updated_at FROM stream_outputs WHERE stream_id = $1 AND user_id = $2 "
                   "ORDER BY created_at, id",
                   json_pack("[s, s]", sp_json_str(c->stream, "id"), c->user), on_stream_outputs,
                   c);
}

void sp_ls_history_stream(sp_livestream_t *ls, const char *user_id, const char *stream_id,
                          sp_ls_result_cb cb, void *ud)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM streams WHERE id = $1 AND user_id = $2",
             SQL_STREAM_COLS);
    sp_store_query(ls->store, sql, json_pack("[s, s]", stream_id, user_id), on_stream_one,
                   ctx_new(ls, user_id, cb, ud));
}

static json_t *event_row_json(json_t *row)
{
    json_t *o = json_deep_copy(row);
    decode_json_col(o, row, "payload");
    return o;
}

static void on_events(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    hist_ctx_t *c = ud;
    sp_ls_answer_rows(c->cb, c->ud, err, rows, "events", event_row_json);
    sp_free(c);
}

void sp_ls_history_events(sp_livestream_t *ls, const char *user_id, int64_t after_seq,
                          int64_t limit, const char *stream_id, sp_ls_result_cb cb, void *ud)
{
    hist_ctx_t *c = ctx_new(ls, user_id, cb, ud);
    if (stream_id)
        sp_store_query(ls->store,
                       "SELECT id, stream_id, platform, type, payload, seq, created_at FROM events "
                       "WHERE user_id = $1 AND seq > $2 AND stream_id = $4 ORDER BY seq LIMIT $3",
                       json_pack("[s, I, I, s]", user_id, (json_int_t)after_seq,
                                 (json_int_t)limit, stream_id),
                       on_events, c);
    else
        sp_store_query(ls->store,
                       "SELECT id, stream_id, platform, type, payload, seq, created_at FROM events "
                       "WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                       json_pack("[s, I, I]", user_id, (json_int_t)after_seq, (json_int_t)limit),
                       on_events, c);
}
