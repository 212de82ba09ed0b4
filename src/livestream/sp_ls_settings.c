/*
 * sp_ls_settings: the user's stream settings and auto go-live (see the header).
 * Auto go-live is crash safe ("intent first"): when the encoder connects (offline -> ready)
 * with auto_start on, stream_settings.auto_start_pending is written before the start; the
 * start's own transaction moves the state to streaming. After a kill -9 a loaded manager
 * still `ready` with the flag set starts again; any other state clears the flag. Duplicate
 * or reordered input notifications cause no transition, hence no second start.
 * Layer: above sp_ls_stream.c (sp_livestream_internal.h).
 */
#include "livestream/sp_ls_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_registry.h"
#include "core/sp_time.h"
#include "livestream/sp_livestream_internal.h"

static const char *const SQL_UPSERT =
    "INSERT INTO stream_settings (user_id, auto_start, auto_start_destinations, "
    "disconnect_protection, auto_start_pending, updated_at) VALUES ($1, $2, $3, $4, 0, $5) "
    "ON CONFLICT (user_id) DO UPDATE SET auto_start = excluded.auto_start, "
    "auto_start_destinations = excluded.auto_start_destinations, "
    "disconnect_protection = excluded.disconnect_protection, updated_at = excluded.updated_at";

static const char *const SQL_PENDING =
    "UPDATE stream_settings SET auto_start_pending = $2 WHERE user_id = $1";

/* ------------------------------------------------------------------------- */
/* load                                                                       */

static void settings_defaults(sp_ls_settings_t *s)
{
    json_decref(s->auto_dests);
    s->auto_dests = json_array();
    s->auto_start = false;
    s->disconnect_protection = true;
    s->pending = false;
}

/* a stored id list: distinct strings of at most 64 characters, at most SP_LS_AUTO_DESTS_MAX */
static json_t *ids_from_text(const char *text)
{
    json_t *out = json_array();
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        if (json_array_size(out) >= SP_LS_AUTO_DESTS_MAX) break;
        if (json_is_string(v) && json_string_length(v) <= 64)
            json_array_append_new(out, json_string(json_string_value(v)));
    }
    json_decref(j);
    return out;
}

typedef struct {
    sp_ls_manager_t *m;
    sp_ls_mgr_fn next;
} load_ctx_t;

static void on_settings_row(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    load_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    sp_ls_settings_t *s = &m->settings;
    settings_defaults(s);
    if (err != 0) {
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "stream settings not read: defaults",
                "err=%s", sp_err_name(err));
    } else if (json_array_size(rows) == 1) {
        json_t *row = json_array_get(rows, 0);
        s->auto_start = sp_ls_jint(row, "auto_start") != 0;
        s->disconnect_protection = sp_ls_jint(row, "disconnect_protection") != 0;
        s->pending = sp_ls_jint(row, "auto_start_pending") != 0;
        json_decref(s->auto_dests);
        s->auto_dests = ids_from_text(sp_json_str(row, "auto_start_destinations"));
    }
    c->next(m); /* the rest of the load sees m->stopped itself */
    sp_ls_unref(m);
    sp_free(c);
}

void sp_ls_settings_load(sp_ls_manager_t *m, sp_ls_mgr_fn next)
{
    settings_defaults(&m->settings);
    load_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->next = next;
    sp_ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT auto_start, auto_start_destinations, disconnect_protection, "
                   "auto_start_pending FROM stream_settings WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_settings_row, c);
}

/* ------------------------------------------------------------------------- */
/* GET / PUT                                                                  */

json_t *sp_ls_manager_settings(sp_ls_manager_t *m)
{
    const sp_ls_settings_t *s = &m->settings;
    return json_pack("{s:b, s:O, s:b}", "auto_start", s->auto_start, "auto_start_destinations",
                     s->auto_dests ? s->auto_dests : json_array(), "disconnect_protection",
                     s->disconnect_protection);
}

bool sp_ls_manager_disconnect_protection(const sp_ls_manager_t *m)
{
    return m->settings.disconnect_protection;
}

bool sp_livestream_disconnect_protection(sp_livestream_t *ls, const char *user_id)
{
    sp_ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
    if (m == NULL || m->stopped || !m->loaded) return true;
    return m->settings.disconnect_protection;
}

void sp_livestream_on_settings_changed(sp_livestream_t *ls, sp_ls_settings_changed_fn fn,
                                       void *ud)
{
    ls->settings_changed = fn;
    ls->settings_changed_ud = ud;
}

/* ------------------------------------------------------------------------- */
/* the built-in relay's input follows the setting (docs/relay.md)             */

typedef struct {
    sp_ls_manager_t *m;
    bool on;
} prot_ctx_t;

static void on_protection_set(int err, const char *errmsg, void *ud)
{
    prot_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    if (err != 0) {
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id,
                "disconnect protection not applied to the live input",
                "on=%d err=%s msg=\"%s\"", c->on, sp_err_name(err), errmsg ? errmsg : "");
    } else {
        sp_ulog(SP_LOG_INFO, "livestream", m->user_id,
                "disconnect protection applied to the live input", "on=%d", c->on);
        /* a retried older PUT may have landed after a newer one: send the current value */
        if (!m->stopped && m->settings.disconnect_protection != c->on)
            sp_ls_protection_sync(m, false);
    }
    sp_ls_unref(m);
    sp_free(c);
}

void sp_ls_protection_sync(sp_ls_manager_t *m, bool only_off)
{
    sp_livestream_t *ls = m->ls;
    bool on = m->settings.disconnect_protection;
    if (m->stopped || !ls->has_media || !ls->media.ops->set_input_protection ||
        m->input_uid == NULL || (only_off && on))
        return;
    prot_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->on = on;
    sp_ls_ref(m);
    int rc = ls->media.ops->set_input_protection(ls->media.ctx, m->input_uid, on,
                                                 on_protection_set, c);
    if (rc != 0) on_protection_set(rc, sp_strerror(rc), c);
}

typedef struct {
    sp_ls_manager_t *m;
    sp_ls_result_cb cb;
    void *ud;
    bool auto_start, protection;
    json_t *ids;
} put_ctx_t;

static void put_done(put_ctx_t *c)
{
    json_decref(c->ids);
    sp_ls_unref(c->m);
    sp_free(c);
}

static void on_put_written(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    put_ctx_t *c = ud;
    sp_ls_manager_t *m = c->m;
    if (err != 0) {
        sp_ls_fail(c->cb, c->ud, SP_EUNAVAIL, "storage_unavailable",
                   "the settings could not be saved");
        put_done(c);
        return;
    }
    sp_ls_settings_t *s = &m->settings;
    bool was = s->disconnect_protection;
    s->auto_start = c->auto_start;
    s->disconnect_protection = c->protection;
    json_decref(s->auto_dests);
    s->auto_dests = json_incref(c->ids);
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "stream settings saved",
            "auto_start=%d destinations=%zu disconnect_protection=%d", s->auto_start,
            json_array_size(s->auto_dests), s->disconnect_protection);
    sp_livestream_t *ls = m->ls;
    if (ls->settings_changed && !m->stopped)
        ls->settings_changed(ls->settings_changed_ud, m->user_id, s->disconnect_protection);
    sp_ls_protection_sync(m, false);
    if (was != s->disconnect_protection) sp_ls_publish_state(m, "settings");
    sp_ls_ok(c->cb, c->ud, sp_ls_manager_settings(m));
    put_done(c);
}

static void put_write(put_ctx_t *c)
{
    char *text = json_dumps(c->ids, JSON_COMPACT);
    sp_store_query(c->m->ls->store, SQL_UPSERT,
                   json_pack("[s, i, s, i, I]", c->m->user_id, c->auto_start ? 1 : 0,
                             text ? text : "[]", c->protection ? 1 : 0,
                             (json_int_t)sp_wall_ms()),
                   on_put_written, c);
    free(text);
}

static bool row_has_id(json_t *rows, const char *id)
{
    size_t k;
    json_t *row;
    json_array_foreach(rows, k, row)
    {
        const char *rid = sp_json_str(row, "id");
        if (rid && strcmp(rid, id) == 0) return true;
    }
    return false;
}

static void on_put_dests(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    put_ctx_t *c = ud;
    if (err != 0) {
        sp_ls_fail(c->cb, c->ud, SP_EUNAVAIL, "storage_unavailable",
                   "destinations could not be read");
        put_done(c);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(c->ids, i, v)
    {
        if (!row_has_id(rows, json_string_value(v))) {
            sp_ls_result_t r = { .err = SP_EINVAL, .code = "unknown_destination",
                                 .message = "auto_start_destinations: no such destination",
                                 .body = json_pack("{s:s}", "field",
                                                   "auto_start_destinations") };
            c->cb(&r, c->ud);
            json_decref(r.body);
            put_done(c);
            return;
        }
    }
    put_write(c);
}

void sp_ls_manager_settings_put(sp_ls_manager_t *m, json_t *patch, sp_ls_result_cb cb,
                                void *ud)
{
    put_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    json_t *v = json_object_get(patch, "auto_start");
    c->auto_start = v ? json_is_true(v) : m->settings.auto_start;
    v = json_object_get(patch, "disconnect_protection");
    c->protection = v ? json_is_true(v) : m->settings.disconnect_protection;
    v = json_object_get(patch, "auto_start_destinations");
    c->ids = v ? json_deep_copy(v) : json_incref(m->settings.auto_dests);
    if (c->ids == NULL) c->ids = json_array();
    sp_ls_ref(m);
    if (v == NULL || json_array_size(c->ids) == 0) {
        put_write(c);
        return;
    }
    sp_store_query(m->ls->store, "SELECT id FROM destinations WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_put_dests, c);
}

/* ------------------------------------------------------------------------- */
/* auto go-live                                                               */

static void set_pending(sp_ls_manager_t *m, bool on, sp_store_cb cb, void *ud)
{
    m->settings.pending = on;
    if (cb == NULL) {
        sp_ls_write(m, SQL_PENDING, json_pack("[s, i]", m->user_id, on ? 1 : 0));
        return;
    }
    sp_store_query(m->ls->store, SQL_PENDING, json_pack("[s, i]", m->user_id, on ? 1 : 0), cb,
                   ud);
}

/* the end of an auto go-live (started, refused or failed); drops its reference */
static void auto_finish(sp_ls_manager_t *m, const char *type, const char *message)
{
    m->settings.running = false;
    if (!m->stopped) {
        if (m->settings.pending) set_pending(m, false, NULL, NULL);
        if (type) {
            sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "auto go-live", "result=%s", type);
            sp_ls_record_event(m, m->stream_id, type, json_pack("{s:s}", "message", message));
        }
        if (type && strcmp(type, "auto_start") != 0) {
            sp_ls_set_str(&m->last_error, message);
            sp_ls_publish_state(m, "auto_start_failed");
        } else if (m->last_error && strncmp(m->last_error, "Auto go-live", 12) == 0) {
            sp_ls_set_str(&m->last_error, NULL);
            sp_ls_publish_state(m, "auto_start");
        }
    }
    sp_ls_unref(m);
}

static void on_auto_started(sp_ls_result_t *res, void *ud)
{
    sp_ls_manager_t *m = ud;
    if (res->err == 0) {
        auto_finish(m, "auto_start",
                    "Auto go-live: your encoder connected, so the stream started");
        return;
    }
    char msg[320];
    snprintf(msg, sizeof(msg), "Auto go-live failed: %s",
             res->message ? res->message : sp_strerror(res->err));
    auto_finish(m, "auto_start_failed", msg);
}

static void on_auto_dests(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_ls_manager_t *m = ud;
    if (m->stopped) {
        auto_finish(m, NULL, NULL);
        return;
    }
    if (err != 0) {
        auto_finish(m, "auto_start_failed",
                    "Auto go-live failed: your destinations could not be read");
        return;
    }
    json_t *ids = json_array();
    size_t i, k;
    json_t *v, *row;
    json_array_foreach(m->settings.auto_dests, i, v)
    {
        json_array_foreach(rows, k, row)
        {
            const char *rid = sp_json_str(row, "id");
            if (rid && strcmp(rid, json_string_value(v)) == 0 &&
                sp_ls_jint(row, "enabled") != 0)
                json_array_append(ids, v);
        }
    }
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        auto_finish(m, "auto_start_skipped",
                    "Auto go-live did not start: the destinations selected for it were "
                    "deleted or disabled");
        return;
    }
    if (m->ss.state != SP_SS_READY || m->start_busy) { /* changed while we read */
        json_decref(ids);
        auto_finish(m, NULL, NULL);
        return;
    }
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "auto go-live: starting", "destinations=%zu",
            json_array_size(ids));
    sp_ls_manager_start(m, ids, on_auto_started, m); /* m's reference goes to the callback */
}

/* runs with a reference on m (released by auto_finish) */
static void auto_run(sp_ls_manager_t *m)
{
    if (m->stopped) {
        auto_finish(m, NULL, NULL);
        return;
    }
    if (m->ss.state != SP_SS_READY || !m->ss.input_connected || m->start_busy) {
        /* the encoder left again, or a start is under way (the user's own) */
        auto_finish(m, NULL, NULL);
        return;
    }
    if (json_array_size(m->settings.auto_dests) == 0) {
        auto_finish(m, "auto_start_skipped",
                    "Auto go-live did not start: no destination is selected for it");
        return;
    }
    sp_store_query(m->ls->store, "SELECT id, enabled FROM destinations WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_auto_dests, m);
}

static void on_pending_written(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    sp_ls_manager_t *m = ud;
    if (err != 0)
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "auto go-live intent not stored",
                "err=%s", sp_err_name(err));
    auto_run(m);
}

void sp_ls_autostart_after(sp_ls_manager_t *m, sp_ss_state_t before)
{
    if (before != SP_SS_OFFLINE || m->ss.state != SP_SS_READY) return;
    if (!m->settings.auto_start || m->settings.running || m->stopped || !m->loaded) return;
    m->settings.running = true;
    sp_ls_ref(m);
    set_pending(m, true, on_pending_written, m);
}

void sp_ls_autostart_loaded(sp_ls_manager_t *m)
{
    if (!m->settings.pending || m->settings.running || m->stopped || m->load_failed) return;
    if (m->needs_reconcile || m->reconciling) return; /* again once reconciled */
    if (m->ss.state != SP_SS_READY || !m->settings.auto_start) {
        set_pending(m, false, NULL, NULL);
        return;
    }
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "auto go-live resumed after a restart", "");
    m->settings.running = true;
    sp_ls_ref(m);
    auto_run(m);
}
