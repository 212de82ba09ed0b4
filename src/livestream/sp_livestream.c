/*
 * sp_livestream: per-user UserStreamManager and its components (see the
 * header). Everything runs on the loop thread. Crash safety follows
 * "intent first": the stream_state row, the streams row and the
 * stream_outputs rows are written before the media API is called, and start-up
 * reconciliation (sp_reconcile) fixes both sides after a kill -9.
 *
 * Lifetime: a manager is refcounted. Every asynchronous operation (store query,
 * media call) holds a reference; stopping the manager unregisters it, closes
 * its timer and drops the owner's reference; memory goes when the last
 * reference and the timer's close callback are gone.
 */
#include "livestream/sp_livestream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "livestream/sp_presence.h"
#include "livestream/sp_reconcile.h"
#include "livestream/sp_registry.h"
#include "livestream/sp_stream_state.h"
#include "livestream/sp_supervisor.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "livestream/sp_livestream_internal.h"

/* ------------------------------------------------------------------------- */
/* small helpers                                                              */

const char *sp_input_status_name(sp_input_status_t s)
{
    switch (s) {
    case SP_INPUT_NONE: return "none";
    case SP_INPUT_CONNECTED: return "connected";
    case SP_INPUT_DISCONNECTED: return "disconnected";
    case SP_INPUT_ERRORED: return "errored";
    case SP_INPUT_UNKNOWN: return "unknown";
    }
    return "unknown";
}

static sp_input_status_t input_status_parse(const char *s)
{
    if (s == NULL) return SP_INPUT_NONE;
    if (strcmp(s, "connected") == 0) return SP_INPUT_CONNECTED;
    if (strcmp(s, "disconnected") == 0) return SP_INPUT_DISCONNECTED;
    if (strcmp(s, "errored") == 0) return SP_INPUT_ERRORED;
    if (strcmp(s, "unknown") == 0) return SP_INPUT_UNKNOWN;
    return SP_INPUT_NONE;
}

static void set_str(char **dst, const char *src)
{
    sp_free(*dst);
    *dst = (src != NULL) ? sp_strdup(src) : NULL;
}

static void wipe_free(char *s)
{
    if (s == NULL) return;
    sodium_memzero(s, strlen(s));
    sp_free(s);
}

static const char *jstr(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* manager lifetime                                                           */

void ls_out_free(ls_output_t *o)
{
    if (o == NULL) return;
    sp_free(o->row_id);
    sp_free(o->destination_id);
    sp_free(o->name);
    sp_free(o->platform);
    sp_free(o->url);
    wipe_free(o->key);
    sp_free(o->output_uid);
    sp_free(o->last_error);
    sp_free(o->h_status);
    sp_free(o->h_error);
    sp_free(o);
}

static void outs_clear(ls_manager_t *m)
{
    for (size_t i = 0; i < m->n_outs; i++) ls_out_free(m->outs[i]);
    sp_free(m->outs);
    m->outs = NULL;
    m->n_outs = 0;
}

static void mgr_free_mem(ls_manager_t *m)
{
    outs_clear(m);
    sp_free(m->user_id);
    sp_free(m->input_uid);
    sp_free(m->rtmp_url);
    wipe_free(m->stream_key);
    sp_free(m->title);
    sp_free(m->description);
    sp_free(m->last_error);
    sp_free(m);
}

void ls_maybe_free(sp_livestream_t *ls)
{
    if (!ls->owner_gone || !ls->poll_closed || ls->managers_freed != ls->counters.managers_started)
        return;
    sp_registry_free(ls->reg);
    sp_map_free(ls->by_input);
    sp_free(ls);
}

static void mgr_maybe_free(ls_manager_t *m)
{
    if (m->refs == 0 && m->timer_closed) {
        sp_livestream_t *ls = m->ls;
        ls->managers_freed++;
        mgr_free_mem(m);
        ls_maybe_free(ls);
    }
}

void ls_ref(ls_manager_t *m)
{
    m->refs++;
}

void ls_unref(ls_manager_t *m)
{
    m->refs--;
    mgr_maybe_free(m);
}

static void on_mgr_timer_closed(uv_handle_t *h)
{
    ls_manager_t *m = h->data;
    m->timer_closed = true;
    mgr_maybe_free(m);
}

static void run_waiters(ls_manager_t *m)
{
    ls_waiter_t *w = m->waiters;
    m->waiters = NULL;
    while (w != NULL) {
        ls_waiter_t *next = w->next;
        w->fn(m, w->ud);
        ls_unref(m);
        sp_free(w);
        w = next;
    }
}

void ls_mgr_stop_now(ls_manager_t *m, const char *why)
{
    if (m->stopped) return;
    sp_livestream_t *ls = m->ls;
    m->stopped = true;
    sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "manager stopped", "reason=%s", why);
    ls->counters.managers_stopped++;
    for (int k = 0; k < SP_REG_KIND_COUNT; k++)
        if (k != SP_REG_PLATFORM_MONITOR)
            sp_registry_unregister(ls->reg, (sp_reg_kind_t)k, m->user_id, NULL, NULL);
    if (m->input_uid) sp_map_dels(ls->by_input, m->input_uid, NULL);
    /* waiters see m->stopped and answer 503 */
    run_waiters(m);
    if (m->start_req) {
        sp_http_req_t *req = m->start_req;
        m->start_req = NULL;
        sp_http_respond_error(req, 503, "unavailable", "stream manager stopped");
    }
    uv_close((uv_handle_t *)&m->timer, on_mgr_timer_closed);
    ls_unref(m); /* the owner's reference */
}

bool ls_mgr_has_open_outputs(const ls_manager_t *m)
{
    for (size_t i = 0; i < m->n_outs; i++)
        if (m->outs[i]->state != SP_OUT_CLOSED) return true;
    return false;
}

static bool mgr_can_stop(const ls_manager_t *m)
{
    return m->loaded && m->ss.state == SP_SS_OFFLINE && !ls_mgr_has_open_outputs(m) &&
           !m->start_busy && m->orphan_deletes == 0;
}

/* ------------------------------------------------------------------------- */
/* presence hooks                                                             */

int ls_hook_start(const char *user_id, void *ud)
{
    sp_livestream_t *ls = ud;
    ls_manager_t *m = NULL;
    int rc = ls_mgr_ensure(ls, user_id, false, &m);
    if (rc == 0) ls->counters.sessions_started++;
    return rc;
}

void ls_hook_stop(const char *user_id, void *ud)
{
    sp_livestream_t *ls = ud;
    ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
    if (m != NULL) ls_mgr_stop_now(m, "absent");
}

bool ls_hook_can_stop(const char *user_id, void *ud)
{
    sp_livestream_t *ls = ud;
    ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
    return m == NULL || mgr_can_stop(m);
}

int sp_livestream_session_join(sp_livestream_t *ls, const char *user_id, uint64_t session_id)
{
    if (ls == NULL || ls->presence == NULL) return SP_EINVAL;
    int rc = sp_presence_join(ls->presence, user_id, session_id);
    if (rc == 0) {
        ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
        if (m) m->next_poll_mono = 0; /* on the page: poll soon */
    }
    return rc;
}

void sp_livestream_session_leave(sp_livestream_t *ls, const char *user_id, uint64_t session_id)
{
    if (ls == NULL || ls->presence == NULL) return;
    sp_presence_leave(ls->presence, user_id, session_id);
}

void ls_mgr_recheck_presence(ls_manager_t *m)
{
    if (!m->stopped && m->ls->presence && mgr_can_stop(m)) sp_presence_recheck(m->ls->presence, m->user_id);
}

/* ------------------------------------------------------------------------- */
/* creation and loading                                                       */

static void mgr_load(ls_manager_t *m);

int ls_mgr_ensure(sp_livestream_t *ls, const char *user_id, bool force, ls_manager_t **out)
{
    *out = NULL;
    if (user_id == NULL || user_id[0] == '\0' || strlen(user_id) > 64) return SP_EINVAL;
    if (ls->shutting_down) return SP_ECLOSED;
    ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
    if (m != NULL) {
        *out = m;
        return 0;
    }
    size_t running = sp_registry_count(ls->reg, SP_REG_USER_STREAM_MANAGER);
    if (!force && ls->cfg->max_concurrent_users > 0 &&
        (int64_t)running >= ls->cfg->max_concurrent_users) {
        ls->counters.refused_limit++;
        sp_ulog(SP_LOG_WARN, "livestream", user_id, "manager refused: MAX_CONCURRENT_USERS",
                "running=%zu max=%lld", running, (long long)ls->cfg->max_concurrent_users);
        return SP_ELIMIT;
    }
    m = sp_calloc(1, sizeof(*m));
    m->ls = ls;
    m->user_id = sp_strdup(user_id);
    m->refs = 1;
    sp_ss_init(&m->ss, ls->cfg->stream_disconnect_timeout, sp_wall_ms());
    sp_sup_init(&m->input_sup, 5, 60000, 1000, 60000);
    {
        uint64_t iv = (uint64_t)ls->cfg->cloudflare_input_poll_interval;
        uint64_t cap = iv * 8 < 30000 ? iv * 8 : 30000;
        sp_backoff_init(&m->poll_bo, iv ? iv : 15000, cap > iv ? cap : iv);
    }
    uv_timer_init(ls->loop, &m->timer);
    m->timer.data = m;
    sp_registry_register(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL, m);
    sp_registry_register(ls->reg, SP_REG_STREAM_STATE, user_id, NULL, m);
    sp_registry_register(ls->reg, SP_REG_CLOUDFLARE_OUTPUT, user_id, NULL, m);
    ls->counters.managers_started++;
    sp_ulog(SP_LOG_INFO, "livestream", user_id, "manager started", "force=%d", force);
    mgr_load(m);
    *out = m;
    return 0;
}

/* Runs fn(m, ud) once the manager is loaded (at once if it is). */
void ls_mgr_when_loaded(ls_manager_t *m, void (*fn)(ls_manager_t *, void *), void *ud)
{
    if (m->loaded || m->stopped) {
        fn(m, ud);
        return;
    }
    ls_waiter_t *w = sp_calloc(1, sizeof(*w));
    w->fn = fn;
    w->ud = ud;
    ls_ref(m);
    /* append (FIFO) */
    ls_waiter_t **pp = &m->waiters;
    while (*pp) pp = &(*pp)->next;
    *pp = w;
}

static void load_done(ls_manager_t *m)
{
    m->loaded = true;
    m->next_poll_mono = 0;
    ls_mgr_arm_timer(m);
    run_waiters(m);
    if (m->needs_reconcile) ls_reconcile_start(m);
    ls_mgr_recheck_presence(m);
}

static void on_load_outputs(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    ls_manager_t *m = ud;
    if (m->stopped) goto out;
    if (err != 0) {
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "load outputs failed", "err=%s",
                sp_err_name(err));
        m->load_failed = true;
        load_done(m);
        goto out;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        ls_output_t *o = sp_calloc(1, sizeof(*o));
        o->m = m;
        o->row_id = sp_strdup(jstr(row, "id") ? jstr(row, "id") : "");
        set_str(&o->destination_id, jstr(row, "destination_id"));
        set_str(&o->output_uid, jstr(row, "output_uid"));
        set_str(&o->last_error, jstr(row, "last_error"));
        set_str(&o->name, jstr(row, "name"));
        set_str(&o->platform, jstr(row, "platform"));
        set_str(&o->url, jstr(row, "url"));
        int st = sp_out_state_parse(jstr(row, "state"));
        o->state = st < 0 ? SP_OUT_FAILED : (sp_out_state_t)st;
        const char *sealed = jstr(row, "stream_key_sealed");
        if (sealed != NULL) {
            sp_buf_t b;
            sp_buf_init(&b, 4096);
            if (ls_unseal(m->user_id, "destination_key", sealed, &b) == 0)
                o->key = sp_buf_detach(&b, NULL);
            sp_buf_cleanup(&b);
        }
        sp_sup_init(&o->sup, 5, 60000, 1000, 30000);
        ls_mgr_add_output(m, o);
    }
    if (m->n_outs > 0 || m->ss.state != SP_SS_OFFLINE) m->needs_reconcile = true;
    ls_input_ensure(m, load_done);
out:
    ls_unref(m);
}

static void on_load_stream(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    ls_manager_t *m = ud;
    if (m->stopped) goto out;
    if (err == 0 && json_array_size(rows) == 1) {
        json_t *row = json_array_get(rows, 0);
        set_str(&m->title, jstr(row, "title"));
        if (m->ss.state == SP_SS_ENDING) {
            int er = sp_ss_end_reason_parse(jstr(row, "end_reason"));
            m->ss.end_reason = er <= 0 ? SP_SS_END_ERROR : (sp_ss_end_reason_t)er;
        }
        set_str(&m->description, jstr(row, "description"));
        m->stream_started_at = jint(row, "started_at");
    }
    ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT o.id, o.destination_id, o.output_uid, o.state, o.last_error, d.url, "
                   "d.stream_key_sealed, d.name, d.platform FROM stream_outputs o "
                   "LEFT JOIN destinations d ON d.id = o.destination_id "
                   "WHERE o.user_id = $1 AND o.state <> 'closed' ORDER BY o.created_at",
                   json_pack("[s]", m->user_id), on_load_outputs, m);
out:
    ls_unref(m);
}

static void on_load_input(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    ls_manager_t *m = ud;
    if (m->stopped) goto out;
    if (err == 0 && json_array_size(rows) == 1) {
        json_t *row = json_array_get(rows, 0);
        ls_mgr_set_input(m, jstr(row, "input_uid"), jstr(row, "rtmp_url"), NULL);
        const char *sealed = jstr(row, "stream_key_sealed");
        if (sealed) {
            sp_buf_t b;
            sp_buf_init(&b, 4096);
            if (ls_unseal(m->user_id, "input_key", sealed, &b) == 0) {
                wipe_free(m->stream_key);
                m->stream_key = sp_buf_detach(&b, NULL);
            }
            sp_buf_cleanup(&b);
        }
    }
    ls_ref(m);
    if (m->stream_id[0]) {
        sp_store_query(m->ls->store,
                       "SELECT title, description, started_at, end_reason FROM streams WHERE id = $1",
                       json_pack("[s]", m->stream_id), on_load_stream, m);
    } else {
        on_load_stream(SP_ENOTFOUND, NULL, 0, m);
    }
out:
    ls_unref(m);
}

static void on_load_state(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    ls_manager_t *m = ud;
    if (m->stopped) goto out;
    if (err != 0) {
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "load state failed", "err=%s",
                sp_err_name(err));
        m->load_failed = true;
        load_done(m);
        goto out;
    }
    if (json_array_size(rows) == 1) {
        json_t *row = json_array_get(rows, 0);
        int st = sp_ss_state_parse(jstr(row, "state"));
        m->ss.state = st < 0 ? SP_SS_OFFLINE : (sp_ss_state_t)st;
        m->ss.state_changed_at = jint(row, "state_changed_at");
        m->ss.disconnect_deadline = jint(row, "disconnect_deadline");
        m->input_status = input_status_parse(jstr(row, "input_status"));
        m->input_event_at = jint(row, "updated_at");
        const char *sid = jstr(row, "stream_id");
        if (sid && strlen(sid) < sizeof(m->stream_id) && m->ss.state != SP_SS_OFFLINE)
            snprintf(m->stream_id, sizeof(m->stream_id), "%s", sid);
        /* what we believe about the input until the monitor tells otherwise */
        if (m->ss.state == SP_SS_READY)
            m->ss.input_connected = true;
        else if (m->ss.state == SP_SS_STREAMING)
            m->ss.input_connected = m->ss.disconnect_deadline == 0;
        else
            m->ss.input_connected = m->input_status == SP_INPUT_CONNECTED;
        if (m->ss.state != SP_SS_OFFLINE) {
            m->ls->counters.recovered++;
            sp_ulog(SP_LOG_INFO, "livestream", m->user_id, "state recovered",
                    "state=%s stream_id=%s deadline=%lld", sp_ss_state_name(m->ss.state),
                    m->stream_id, (long long)m->ss.disconnect_deadline);
        }
    }
    ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT input_uid, rtmp_url, stream_key_sealed, provider FROM live_inputs "
                   "WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_load_input, m);
out:
    ls_unref(m);
}

static void mgr_load(ls_manager_t *m)
{
    ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT state, stream_id, state_changed_at, disconnect_deadline, input_status, "
                   "updated_at FROM stream_state WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_load_state, m);
}

void ls_mgr_add_output(ls_manager_t *m, ls_output_t *o)
{
    m->outs = sp_realloc(m->outs, (m->n_outs + 1) * sizeof(*m->outs));
    m->outs[m->n_outs++] = o;
}

void ls_mgr_set_input(ls_manager_t *m, const char *uid, const char *rtmp_url, const char *key)
{
    sp_livestream_t *ls = m->ls;
    if (m->input_uid) sp_map_dels(ls->by_input, m->input_uid, NULL);
    set_str(&m->input_uid, uid);
    set_str(&m->rtmp_url, rtmp_url);
    if (key) {
        wipe_free(m->stream_key);
        m->stream_key = sp_strdup(key);
    }
    if (m->input_uid) {
        sp_map_sets(ls->by_input, m->input_uid, m);
        if (!sp_registry_lookup(ls->reg, SP_REG_CLOUDFLARE_INPUT, m->user_id, NULL))
            sp_registry_register(ls->reg, SP_REG_CLOUDFLARE_INPUT, m->user_id, NULL, m);
    }
}

/* ------------------------------------------------------------------------- */
/* persistence                                                                */

typedef struct {
    ls_manager_t *m;
    void (*done)(ls_manager_t *m, int err, void *ud);
    void *ud;
} persist_ctx_t;

static void on_persisted(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    persist_ctx_t *c = ud;
    if (err != 0)
        sp_ulog(SP_LOG_ERROR, "livestream", c->m->user_id, "persist stream_state failed",
                "err=%s", sp_err_name(err));
    if (c->done) c->done(c->m, err, c->ud);
    ls_unref(c->m);
    sp_free(c);
}

json_t *ls_state_params(ls_manager_t *m)
{
    return json_pack("[s, s, s?, I, o?, s, I]", m->user_id, sp_ss_state_name(m->ss.state),
                     m->stream_id[0] ? m->stream_id : NULL, (json_int_t)m->ss.state_changed_at,
                     m->ss.disconnect_deadline ? json_integer(m->ss.disconnect_deadline) : NULL,
                     sp_input_status_name(m->input_status), (json_int_t)sp_wall_ms());
}

const char *const LS_SQL_UPSERT_STATE =
    "INSERT INTO stream_state (user_id, state, stream_id, state_changed_at, "
    "disconnect_deadline, input_status, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id) DO UPDATE SET "
    "state = excluded.state, stream_id = excluded.stream_id, "
    "state_changed_at = excluded.state_changed_at, "
    "disconnect_deadline = excluded.disconnect_deadline, input_status = excluded.input_status, "
    "updated_at = excluded.updated_at";

/* the streams row follows the state (its end_reason is what recovery of `ending` reads) */
static const char *const SQL_STREAM_STATE =
    "UPDATE streams SET state = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL";

void ls_persist(ls_manager_t *m, void (*done)(ls_manager_t *, int, void *), void *ud)
{
    persist_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->done = done;
    c->ud = ud;
    ls_ref(m);
    m->ls->counters.persists++;
    if (m->stream_id[0] && (m->ss.state == SP_SS_STREAMING || m->ss.state == SP_SS_ENDING)) {
        const char *sqls[2] = { LS_SQL_UPSERT_STATE, SQL_STREAM_STATE };
        const char *er = sp_ss_end_reason_name(m->ss.end_reason);
        json_t *params[2] = { ls_state_params(m),
                              json_pack("[s, s, s?]", m->stream_id,
                                        sp_ss_state_name(m->ss.state), er[0] ? er : NULL) };
        sp_store_tx(m->ls->store, 2, sqls, params, on_persisted, c);
        return;
    }
    sp_store_query(m->ls->store, LS_SQL_UPSERT_STATE, ls_state_params(m), on_persisted, c);
}

static void on_write_logged(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    ls_manager_t *m = ud;
    if (err != 0)
        sp_ulog(SP_LOG_ERROR, "livestream", m->user_id, "write failed", "err=%s",
                sp_err_name(err));
    ls_unref(m);
}

void ls_write(ls_manager_t *m, const char *sql, json_t *params)
{
    ls_ref(m);
    sp_store_query(m->ls->store, sql, params, on_write_logged, m);
}

/* ------------------------------------------------------------------------- */
/* timer: disconnect deadline, output retries, input creation retry           */

static void on_mgr_timer(uv_timer_t *t)
{
    ls_manager_t *m = t->data;
    if (m->stopped) return;
    int64_t now = sp_wall_ms();
    if (m->ss.state == SP_SS_STREAMING && m->ss.disconnect_deadline != 0 &&
        now >= m->ss.disconnect_deadline) {
        sp_ss_event_t ev = { .type = SP_SSE_DISCONNECT_TIMEOUT };
        ls_mgr_apply(m, &ev, NULL, NULL);
    }
    if (m->loaded && m->input_uid == NULL && !m->input_creating && m->input_retry_mono != 0 &&
        sp_mono_ms() >= m->input_retry_mono)
        ls_input_ensure(m, NULL);
    if (m->needs_reconcile && !m->reconciling && m->reconcile_retry_mono != 0 &&
        sp_mono_ms() >= m->reconcile_retry_mono)
        ls_reconcile_start(m);
    ls_outputs_pump(m);
    ls_mgr_arm_timer(m);
}

void ls_mgr_arm_timer(ls_manager_t *m)
{
    if (m->stopped) return;
    uint64_t now_mono = sp_mono_ms();
    int64_t now_wall = sp_wall_ms();
    uint64_t due = UINT64_MAX;
    if (m->ss.state == SP_SS_STREAMING && m->ss.disconnect_deadline != 0) {
        int64_t d = m->ss.disconnect_deadline - now_wall;
        due = now_mono + (uint64_t)(d > 0 ? d : 0);
    }
    for (size_t i = 0; i < m->n_outs; i++) {
        ls_output_t *o = m->outs[i];
        if (o->inflight || o->next_at_mono == 0) continue;
        if (o->state == SP_OUT_CLOSED || o->state == SP_OUT_ACTIVE) continue;
        if (o->next_at_mono < due) due = o->next_at_mono;
    }
    if (m->input_uid == NULL && m->input_retry_mono != 0 && m->input_retry_mono < due)
        due = m->input_retry_mono;
    if (m->needs_reconcile && m->reconcile_retry_mono != 0 && m->reconcile_retry_mono < due)
        due = m->reconcile_retry_mono;
    if (due == UINT64_MAX) {
        uv_timer_stop(&m->timer);
        return;
    }
    uv_timer_start(&m->timer, on_mgr_timer, due > now_mono ? due - now_mono : 0, 0);
}
