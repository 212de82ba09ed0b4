/*
 * sp_ls_eventlog: the user's stream event log (events rows of platform 'streampai') in plain
 * words, bounded per user, and the input's last known status (live_inputs.last_status,
 * migration 0005), which survives a restart of the server or of the media service.
 * Layer: next to sp_ls_manager.c (sp_livestream_internal.h); see sp_ls_settings.h.
 */
#include "livestream/sp_ls_settings.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "livestream/sp_livestream_internal.h"

/* ------------------------------------------------------------------------- */
/* messages                                                                   */

static void duration_words(int64_t ms, char *out, size_t cap)
{
    int64_t s = ms / 1000;
    if (s >= 120 && s % 60 == 0)
        snprintf(out, cap, "%lld min", (long long)(s / 60));
    else if (s >= 60)
        snprintf(out, cap, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, cap, "%lld s", (long long)s);
}

static void ended_words(sp_ls_manager_t *m, const char *reason, char *out, size_t cap)
{
    if (reason == NULL) reason = "";
    if (strcmp(reason, "user_stop") == 0) {
        snprintf(out, cap, "You stopped the stream");
    } else if (strcmp(reason, "disconnect_timeout") == 0) {
        char d[48];
        duration_words(m->ls->cfg->stream_disconnect_timeout, d, sizeof(d));
        snprintf(out, cap, "Encoder disconnected for %s: the stream ended", d);
    } else if (strcmp(reason, "error") == 0) {
        snprintf(out, cap, "The stream ended: no destination could be reached");
    } else {
        snprintf(out, cap, "The stream ended");
    }
}

void sp_ls_event_describe(sp_ls_manager_t *m, const char *type, json_t *payload)
{
    if (!json_is_object(payload) || json_object_get(payload, "message")) return;
    char msg[320];
    msg[0] = '\0';
    if (strcmp(type, "stream_started") == 0) {
        json_int_t n = json_integer_value(json_object_get(payload, "destinations"));
        snprintf(msg, sizeof(msg), "Stream started to %lld destination%s", (long long)n,
                 n == 1 ? "" : "s");
    } else if (strcmp(type, "stream_ended") == 0) {
        ended_words(m, sp_json_str(payload, "end_reason"), msg, sizeof(msg));
    }
    if (msg[0]) json_object_set_new(payload, "message", json_string(msg));
}

void sp_ls_event_publish(sp_ls_manager_t *m, const char *id, const char *type, json_t *payload)
{
    json_t *msg = json_object_get(payload, "message");
    if (!json_is_string(msg)) return;
    char topic[128];
    snprintf(topic, sizeof(topic), "stream_lifecycle:%s", m->user_id);
    sp_ls_publish(m->ls, topic, "stream_event",
                  json_pack("{s:s, s:s, s:O, s:I}", "id", id, "type", type, "message", msg,
                            "created_at", (json_int_t)sp_wall_ms()));
}

/* ------------------------------------------------------------------------- */
/* retention                                                                  */

void sp_ls_events_prune(sp_ls_manager_t *m)
{
    /* after the insert (same queue, same order): everything older than the KEEP newest */
    sp_store_enqueue(m->ls->store,
                     "DELETE FROM events WHERE user_id = $1 AND platform = 'streampai' AND "
                     "seq <= (SELECT seq FROM events WHERE user_id = $1 AND "
                     "platform = 'streampai' ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                     json_pack("[s, I]", m->user_id, (json_int_t)SP_LS_EVENTS_KEEP), NULL,
                     NULL);
}

/* ------------------------------------------------------------------------- */
/* the input's last known status                                              */

static const char *input_words(sp_input_status_t st)
{
    switch (st) {
    case SP_INPUT_CONNECTED: return "Encoder connected";
    case SP_INPUT_DISCONNECTED: return "Encoder disconnected";
    case SP_INPUT_ERRORED: return "Encoder connection failed";
    default: return NULL;
    }
}

void sp_ls_input_observed(sp_ls_manager_t *m, sp_input_status_t st, int64_t at)
{
    if (st == SP_INPUT_UNKNOWN || st == SP_INPUT_NONE || st == m->input_known) return;
    bool first = m->input_known == SP_INPUT_NONE;
    m->input_known = st;
    m->input_known_at = at > 0 ? at : sp_wall_ms();
    sp_ls_write(m, "UPDATE live_inputs SET last_status = $2, last_status_at = $3 "
                   "WHERE user_id = $1",
                json_pack("[s, s, I]", m->user_id, sp_input_status_name(st),
                          (json_int_t)m->input_known_at));
    /* a first "disconnected" (never seen connected) is nothing to tell */
    if (first && st == SP_INPUT_DISCONNECTED) return;
    const char *w = input_words(st);
    char msg[400];
    if (st == SP_INPUT_ERRORED && m->last_error && strncmp(m->last_error, "input errored", 13) == 0)
        snprintf(msg, sizeof(msg), "%s (%s)", w, m->last_error + 15);
    else
        snprintf(msg, sizeof(msg), "%s", w);
    sp_ls_record_event(m, m->stream_id, st == SP_INPUT_CONNECTED      ? "input_connected"
                                        : st == SP_INPUT_DISCONNECTED ? "input_disconnected"
                                                                      : "input_errored",
                       json_pack("{s:s}", "message", msg));
}

sp_input_status_t sp_ls_input_none_mapped(const sp_ls_manager_t *m, sp_input_status_t st)
{
    if (st == SP_INPUT_NONE && m->input_known != SP_INPUT_NONE) return SP_INPUT_DISCONNECTED;
    return st;
}

void sp_ls_input_json_extra(const sp_ls_manager_t *m, json_t *input)
{
    if (!json_is_object(input) || m->input_known == SP_INPUT_NONE) return;
    json_object_set_new(input, "last_status", json_string(sp_input_status_name(m->input_known)));
    if (m->input_known_at > 0)
        json_object_set_new(input, "status_since", json_integer(m->input_known_at));
}

/* ------------------------------------------------------------------------- */
/* outputs                                                                    */

void sp_ls_event_output(sp_ls_manager_t *m, const sp_ls_out_t *o, const char *type,
                        const char *error)
{
    const char *name = o->name && o->name[0] ? o->name : "A destination";
    char msg[400];
    if (strcmp(type, "output_recovered") == 0)
        snprintf(msg, sizeof(msg), "%s: connected again", name);
    else if (strcmp(type, "output_failed") == 0)
        snprintf(msg, sizeof(msg), "%s: could not be started (%s)", name,
                 error && error[0] ? error : "unknown error");
    else
        snprintf(msg, sizeof(msg), "%s: connection error (%s)", name,
                 error && error[0] ? error : "unknown error");
    sp_ls_record_event(m, m->stream_id, type,
                       json_pack("{s:s, s:s?, s:s}", "message", msg, "destination_id",
                                 o->destination_id, "name", name));
}

/* ------------------------------------------------------------------------- */
/* GET /api/stream/events                                                     */

typedef struct {
    sp_ls_result_cb cb;
    void *ud;
} list_ctx_t;

static json_t *event_json(json_t *row)
{
    json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(row, "id"),
                          "stream_id", json_object_get(row, "stream_id") ?: json_null(), "type",
                          json_object_get(row, "type"), "created_at",
                          json_object_get(row, "created_at"), "seq",
                          json_object_get(row, "seq"));
    if (o == NULL) return json_object();
    json_t *p = json_object_get(row, "payload");
    json_t *payload = json_is_string(p) ? json_loads(json_string_value(p), 0, NULL)
                                        : json_incref(p);
    if (!json_is_object(payload)) {
        json_decref(payload);
        payload = json_object();
    }
    json_t *msg = json_object_get(payload, "message");
    json_object_set(o, "message", json_is_string(msg) ? msg : json_null());
    json_object_set_new(o, "payload", payload);
    return o;
}

static void on_events(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    list_ctx_t *c = ud;
    sp_ls_answer_rows(c->cb, c->ud, err, rows, "events", event_json);
    sp_free(c);
}

void sp_ls_stream_events(sp_livestream_t *ls, const char *user_id, int64_t limit,
                         sp_ls_result_cb cb, void *ud)
{
    list_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->cb = cb;
    c->ud = ud;
    sp_store_query(ls->store,
                   "SELECT id, stream_id, type, payload, seq, created_at FROM events "
                   "WHERE user_id = $1 AND platform = 'streampai' ORDER BY seq DESC LIMIT $2",
                   json_pack("[s, I]", user_id, (json_int_t)limit), on_events, c);
}

/* ------------------------------------------------------------------------- */
/* recordings                                                                 */

/* "recording stopped: No space left on device" -> "disk full"; else the reason as told */
static void rec_error_words(const char *err, char *out, size_t cap)
{
    const char *p = err ? err : "";
    if (strncmp(p, "recording stopped: ", 19) == 0) p += 19;
    if (strstr(p, "space") || strstr(p, "ENOSPC") || strstr(p, "disk full"))
        snprintf(out, cap, "disk full");
    else
        snprintf(out, cap, "%s", p[0] ? p : "unknown error");
}

static void size_words(int64_t bytes, char *out, size_t cap)
{
    if (bytes >= 1024LL * 1024 * 1024)
        snprintf(out, cap, "%.1f GB", (double)bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024 * 1024)
        snprintf(out, cap, "%lld MB", (long long)(bytes / (1024 * 1024)));
    else
        snprintf(out, cap, "%lld kB", (long long)((bytes + 1023) / 1024));
}

static void rec_error_event(sp_ls_manager_t *m, const char *err)
{
    if (m->rec_error_logged && strcmp(m->rec_error_logged, err) == 0) return;
    sp_ls_set_str(&m->rec_error_logged, err);
    char why[200], msg[260];
    rec_error_words(err, why, sizeof(why));
    snprintf(msg, sizeof(msg), "Recording stopped: %s", why);
    sp_ls_record_event(m, m->stream_id, "recording_failed", json_pack("{s:s}", "message", msg));
}

void sp_ls_recording_update(sp_ls_manager_t *m, const json_t *raw)
{
    json_t *r = NULL;
    if (json_is_object(raw)) {
        const char *mode = json_string_value(json_object_get(raw, "mode"));
        json_t *cur = json_object_get(raw, "current");
        const char *state = json_string_value(json_object_get(cur, "state"));
        const char *err = json_string_value(json_object_get(cur, "error"));
        if (state && strlen(state) > 32) state = NULL;
        if (err && strlen(err) > 300) err = NULL;
        if (mode && strlen(mode) > 32) mode = NULL;
        r = json_pack("{s:s, s:b}", "mode", mode ? mode : "off", "active",
                      state && strcmp(state, "recording") == 0);
        if (state) json_object_set_new(r, "state", json_string(state));
        if (err && err[0]) {
            json_object_set_new(r, "error", json_string(err));
            rec_error_event(m, err);
        }
    }
    bool changed = (r == NULL) != (m->recording == NULL) || (r && !json_equal(r, m->recording));
    json_decref(m->recording);
    m->recording = r;
    if (changed) sp_ls_publish_state(m, "recording");
}

json_t *sp_ls_recording_json(const sp_ls_manager_t *m)
{
    if (m->recording) return json_deep_copy(m->recording);
    const char *mode = m->ls->cfg && m->ls->cfg->recording_mode ? m->ls->cfg->recording_mode
                                                                : "off";
    return json_pack("{s:s, s:b}", "mode", mode, "active", 0);
}

void sp_ls_recording_webhook(sp_ls_manager_t *m, const sp_cf_webhook_event_t *ev)
{
    char msg[300];
    const char *type = "recording_started";
    if (ev->type == SP_CF_EVT_REC_STARTED) {
        snprintf(msg, sizeof(msg), "Recording started");
        sp_ls_set_str(&m->rec_error_logged, NULL);
    } else if (ev->rec_error[0]) {
        if (m->rec_error_logged && strcmp(m->rec_error_logged, ev->rec_error) == 0) return;
        rec_error_event(m, ev->rec_error);
        return;
    } else {
        char size[48] = "", dur[48] = "";
        type = "recording_saved";
        if (ev->rec_bytes >= 0) size_words(ev->rec_bytes, size, sizeof(size));
        if (ev->rec_duration_ms >= 0) duration_words(ev->rec_duration_ms, dur, sizeof(dur));
        if (size[0] && dur[0])
            snprintf(msg, sizeof(msg), "Recording saved (%s, %s)", size, dur);
        else
            snprintf(msg, sizeof(msg), "Recording saved");
    }
    /* the poll would show it a moment later: say it now */
    if (m->recording) {
        bool on = ev->type == SP_CF_EVT_REC_STARTED;
        json_object_set_new(m->recording, "active", json_boolean(on));
        sp_ls_publish_state(m, "recording");
    }
    sp_ls_record_event(m, m->stream_id, type, json_pack("{s:s}", "message", msg));
}
