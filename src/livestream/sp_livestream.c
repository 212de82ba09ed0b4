/*
 * sp_livestream: the livestream subsystem (see the header): its lifecycle, the managers
 * (start, load, timer), presence hooks, start-up recovery, debug views and metrics.
 * Start-up reconciliation (sp_reconcile) fixes both sides after a kill -9.
 * Layer: above sp_ls_monitor.c (sp_livestream_internal.h).
 */
#include "livestream/sp_livestream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sp_seal.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "livestream/sp_livestream_internal.h"

/* ------------------------------------------------------------------------- */
/* small helpers                                                              */

static sp_input_status_t input_status_parse(const char *s)
{
    if (s == NULL) return SP_INPUT_NONE;
    if (strcmp(s, "connected") == 0) return SP_INPUT_CONNECTED;
    if (strcmp(s, "disconnected") == 0) return SP_INPUT_DISCONNECTED;
    if (strcmp(s, "errored") == 0) return SP_INPUT_ERRORED;
    if (strcmp(s, "unknown") == 0) return SP_INPUT_UNKNOWN;
    return SP_INPUT_NONE;
}

/* ------------------------------------------------------------------------- */
/* presence hooks                                                             */

static int hook_start(const char *user_id, void *ud)
{
    sp_livestream_t *ls = ud;
    sp_ls_manager_t *m = NULL;
    int rc = sp_ls_mgr_ensure(ls, user_id, false, &m);
    if (rc == 0) ls->counters.sessions_started++;
    return rc;
}

static void hook_stop(const char *user_id, void *ud)
{
    sp_livestream_t *ls = ud;
    sp_ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
    if (m != NULL) sp_ls_mgr_stop_now(m, "absent");
}

static bool hook_can_stop(const char *user_id, void *ud)
{
    sp_livestream_t *ls = ud;
    sp_ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
    return m == NULL || sp_ls_mgr_can_stop(m);
}

int sp_livestream_session_join(sp_livestream_t *ls, const char *user_id, uint64_t session_id)
{
    if (ls == NULL || ls->presence == NULL) return SP_EINVAL;
    int rc = sp_presence_join(ls->presence, user_id, session_id);
    if (rc == 0) {
        sp_ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
        if (m) m->next_poll_mono = 0; /* on the page: poll soon */
    }
    return rc;
}

void sp_livestream_session_leave(sp_livestream_t *ls, const char *user_id, uint64_t session_id)
{
    if (ls == NULL || ls->presence == NULL) return;
    sp_presence_leave(ls->presence, user_id, session_id);
}

/* ------------------------------------------------------------------------- */
/* creation and loading                                                       */

static void mgr_load(sp_ls_manager_t *m);

int sp_ls_mgr_ensure(sp_livestream_t *ls, const char *user_id, bool force, sp_ls_manager_t **out)
{
    *out = NULL;
    if (user_id == NULL || user_id[0] == '\0' || strlen(user_id) > 64) return SP_EINVAL;
    if (ls->shutting_down) return SP_ECLOSED;
    sp_ls_manager_t *m = sp_registry_lookup(ls->reg, SP_REG_USER_STREAM_MANAGER, user_id, NULL);
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

static void load_done(sp_ls_manager_t *m)
{
    m->loaded = true;
    /* recovered while streaming: the platform side starts again */
    if (!m->load_failed && m->ss.state == SP_SS_STREAMING && m->stream_id[0])
        sp_ls_hook_streaming(m);
    m->next_poll_mono = 0;
    m->input_verify = !m->load_failed && m->input_uid != NULL && m->ls->has_media;
    if (!m->load_failed) sp_ls_protection_sync(m, true); /* the relay input's default is on */
    sp_ls_mgr_arm_timer(m);
    sp_ls_mgr_run_waiters(m);
    if (m->needs_reconcile) sp_ls_reconcile_start(m);
    sp_ls_autostart_loaded(m);
    sp_ls_mgr_recheck_presence(m);
}

static void on_load_outputs(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_ls_manager_t *m = ud;
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
        sp_ls_out_t *o = sp_calloc(1, sizeof(*o));
        o->m = m;
        o->row_id = sp_strdup(sp_json_str(row, "id") ? sp_json_str(row, "id") : "");
        sp_ls_set_str(&o->destination_id, sp_json_str(row, "destination_id"));
        sp_ls_set_str(&o->output_uid, sp_json_str(row, "output_uid"));
        sp_ls_set_str(&o->last_error, sp_json_str(row, "last_error"));
        sp_ls_set_str(&o->name, sp_json_str(row, "name"));
        sp_ls_set_str(&o->platform, sp_json_str(row, "platform"));
        sp_ls_set_str(&o->url, sp_json_str(row, "url"));
        int st = sp_out_state_parse(sp_json_str(row, "state"));
        o->state = st < 0 ? SP_OUT_FAILED : (sp_out_state_t)st;
        const char *sealed = sp_json_str(row, "stream_key_sealed");
        if (sealed != NULL) {
            sp_buf_t b;
            sp_buf_init(&b, 4096);
            if (sp_ls_unseal(m->user_id, "destination_key", sealed, &b) == 0)
                o->key = sp_buf_detach(&b, NULL);
            sp_buf_cleanup(&b);
        }
        sp_sup_init(&o->sup, 5, 60000, 1000, 30000);
        sp_ls_mgr_add_output(m, o);
    }
    if (m->n_outs > 0 || m->ss.state != SP_SS_OFFLINE) m->needs_reconcile = true;
    sp_ls_input_ensure(m, load_done);
out:
    sp_ls_unref(m);
}

static void on_load_stream(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_ls_manager_t *m = ud;
    if (m->stopped) goto out;
    if (err == 0 && json_array_size(rows) == 1) {
        json_t *row = json_array_get(rows, 0);
        sp_ls_set_str(&m->title, sp_json_str(row, "title"));
        if (m->ss.state == SP_SS_ENDING) {
            int er = sp_ss_end_reason_parse(sp_json_str(row, "end_reason"));
            m->ss.end_reason = er <= 0 ? SP_SS_END_ERROR : (sp_ss_end_reason_t)er;
        }
        sp_ls_set_str(&m->description, sp_json_str(row, "description"));
        m->stream_started_at = sp_ls_jint(row, "started_at");
    }
    sp_ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT o.id, o.destination_id, o.output_uid, o.state, o.last_error, d.url, "
                   "d.stream_key_sealed, d.name, d.platform FROM stream_outputs o "
                   "LEFT JOIN destinations d ON d.id = o.destination_id "
                   "WHERE o.user_id = $1 AND o.state <> 'closed' ORDER BY o.created_at",
                   json_pack("[s]", m->user_id), on_load_outputs, m);
out:
    sp_ls_unref(m);
}

/* the input's last known status (migration 0005; before it, stream_state's), shown until the
   media service says more: a restart never turns it into "never connected" */
static void load_input_known(sp_ls_manager_t *m, json_t *row)
{
    sp_input_status_t k = input_status_parse(sp_json_str(row, "last_status"));
    int64_t at = sp_ls_jint(row, "last_status_at");
    if (k == SP_INPUT_NONE || k == SP_INPUT_UNKNOWN) {
        k = m->input_status == SP_INPUT_UNKNOWN ? SP_INPUT_NONE : m->input_status;
        at = 0;
    }
    m->input_known = k;
    m->input_known_at = at;
    if (m->input_status == SP_INPUT_NONE || m->input_status == SP_INPUT_UNKNOWN)
        m->input_status = k;
}

static void on_load_input(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_ls_manager_t *m = ud;
    if (m->stopped) goto out;
    if (err == 0 && json_array_size(rows) == 1) {
        json_t *row = json_array_get(rows, 0);
        sp_ls_mgr_set_input(m, sp_json_str(row, "input_uid"), sp_json_str(row, "rtmp_url"), NULL);
        load_input_known(m, row);
        const char *sealed = sp_json_str(row, "stream_key_sealed");
        if (sealed) {
            sp_buf_t b;
            sp_buf_init(&b, 4096);
            if (sp_ls_unseal(m->user_id, "input_key", sealed, &b) == 0) {
                sp_ls_wipe_free(m->stream_key);
                m->stream_key = sp_buf_detach(&b, NULL);
            }
            sp_buf_cleanup(&b);
        }
    }
    sp_ls_ref(m);
    if (m->stream_id[0]) {
        sp_store_query(m->ls->store,
                       "SELECT title, description, started_at, end_reason FROM streams "
                       "WHERE id = $1",
                       json_pack("[s]", m->stream_id), on_load_stream, m);
    } else {
        on_load_stream(SP_ENOTFOUND, NULL, 0, m);
    }
out:
    sp_ls_unref(m);
}

static void on_load_state(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_ls_manager_t *m = ud;
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
        int st = sp_ss_state_parse(sp_json_str(row, "state"));
        m->ss.state = st < 0 ? SP_SS_OFFLINE : (sp_ss_state_t)st;
        m->ss.state_changed_at = sp_ls_jint(row, "state_changed_at");
        m->ss.disconnect_deadline = sp_ls_jint(row, "disconnect_deadline");
        m->input_status = input_status_parse(sp_json_str(row, "input_status"));
        /* updated_at is our write time, never comparable with the provider's event times
           (chaos finding 7): the input is re-checked by a poll (sp_ls_monitor.c) instead */
        m->input_event_at = 0;
        const char *sid = sp_json_str(row, "stream_id");
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
    sp_ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT input_uid, rtmp_url, stream_key_sealed, provider, last_status, "
                   "last_status_at FROM live_inputs "
                   "WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_load_input, m);
out:
    sp_ls_unref(m);
}

static void mgr_load_state(sp_ls_manager_t *m)
{
    sp_ls_ref(m);
    sp_store_query(m->ls->store,
                   "SELECT state, stream_id, state_changed_at, disconnect_deadline, input_status, "
                   "updated_at FROM stream_state WHERE user_id = $1",
                   json_pack("[s]", m->user_id), on_load_state, m);
}

static void mgr_load(sp_ls_manager_t *m)
{
    sp_ls_settings_load(m, mgr_load_state); /* the stream settings first (auto go-live) */
}

/* ------------------------------------------------------------------------- */
/* timer: disconnect deadline, output retries, input creation retry           */

static void on_mgr_timer(uv_timer_t *t)
{
    sp_ls_manager_t *m = t->data;
    if (m->stopped) return;
    int64_t now = sp_wall_ms();
    if (m->ss.state == SP_SS_STREAMING && m->ss.disconnect_deadline != 0 &&
        now >= m->ss.disconnect_deadline) {
        sp_ss_event_t ev = { .type = SP_SSE_DISCONNECT_TIMEOUT };
        sp_ls_mgr_apply(m, &ev, NULL, NULL);
    }
    if (m->loaded && m->input_uid == NULL && !m->input_creating && m->input_retry_mono != 0 &&
        sp_mono_ms() >= m->input_retry_mono)
        sp_ls_input_ensure(m, NULL);
    if (m->needs_reconcile && !m->reconciling && m->reconcile_retry_mono != 0 &&
        sp_mono_ms() >= m->reconcile_retry_mono)
        sp_ls_reconcile_start(m);
    sp_ls_outputs_pump(m);
    sp_ls_mgr_arm_timer(m);
}

/* ------------------------------------------------------------------------- */
/* subsystem lifecycle, recovery, debug and metrics                            */

static void on_poll_timer(uv_timer_t *t)
{
    sp_ls_poll_tick(t->data);
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
        const char *user = sp_json_str(row, "user_id");
        sp_ls_manager_t *m = NULL;
        if (user && sp_ls_mgr_ensure(ls, user, true, &m) == 0)
            sp_presence_adopt(ls->presence, user);
    }
    sp_info("livestream", "recovery started", "users=%zu", json_array_size(rows));
}

int sp_livestream_new(const sp_livestream_opts_t *o, sp_livestream_t **out)
{
    *out = NULL;
    /* stream keys are sealed at rest: make sure the key is loaded (idempotent) */
    char *probe = sp_seal("probe", "probe", "x", 1);
    if (probe == NULL) {
        char err[256];
        int rc = sp_seal_init(o->cfg, err, sizeof(err));
        if (rc != 0) {
            sp_error("livestream", "secrets unavailable", "detail=\"%s\"", err);
            return rc;
        }
    }
    sp_free(probe);
    sp_livestream_t *ls = sp_calloc(1, sizeof(*ls));
    ls->loop = o->loop;
    ls->cfg = o->cfg;
    ls->store = o->store;
    ls->bus = o->bus;
    ls->mgr_timer_cb = on_mgr_timer;
    ls->reg = sp_registry_new();
    ls->by_input = sp_map_new(NULL);
    sp_presence_hooks_t hooks = { hook_start, hook_stop, hook_can_stop };
    ls->presence = sp_presence_new(o->loop, o->cfg->presence_cleanup_timeout, &hooks, ls);
    if (o->media && o->media->ops) {
        ls->media = *o->media;
        ls->has_media = true;
    }
    if (o->platform_hooks) ls->phooks = *o->platform_hooks;
    uv_timer_init(o->loop, &ls->poll_timer);
    ls->poll_timer.data = ls;
    uint64_t tick = (uint64_t)o->cfg->cloudflare_input_poll_interval / 4;
    if (tick < 50) tick = 50;
    if (tick > 1000) tick = 1000;
    uv_timer_start(&ls->poll_timer, on_poll_timer, tick, tick);
    *out = ls;
    sp_info("livestream", "started", "media=%s poll_ms=%lld disconnect_timeout_ms=%lld "
            "presence_cleanup_ms=%lld",
            ls->has_media ? ls->media.ops->provider : "none",
            (long long)o->cfg->cloudflare_input_poll_interval,
            (long long)o->cfg->stream_disconnect_timeout,
            (long long)o->cfg->presence_cleanup_timeout);
    if (ls->store)
        sp_store_query(ls->store,
                       "SELECT user_id FROM stream_state WHERE state <> 'offline' UNION "
                       "SELECT user_id FROM stream_outputs WHERE state <> 'closed'",
                       NULL, on_recover_rows, ls);
    return 0;
}

void sp_livestream_set_bus(sp_livestream_t *ls, struct sp_pubsub_s *bus)
{
    if (ls) ls->bus = bus;
}

void sp_livestream_set_platform_hooks(sp_livestream_t *ls, const sp_ls_platform_hooks_t *h)
{
    if (ls == NULL) return;
    memset(&ls->phooks, 0, sizeof(ls->phooks));
    if (h) ls->phooks = *h;
}

bool sp_livestream_stopping(const sp_livestream_t *ls)
{
    return ls == NULL || ls->shutting_down;
}

static void on_poll_timer_closed(uv_handle_t *h)
{
    sp_livestream_t *ls = h->data;
    ls->poll_closed = true;
    sp_ls_maybe_free(ls);
}

void sp_livestream_shutdown(sp_livestream_t *ls)
{
    if (ls == NULL || ls->shutting_down) return;
    ls->shutting_down = true;
    sp_info("livestream", "stopping managers", "managers=%zu",
            sp_registry_count(ls->reg, SP_REG_USER_STREAM_MANAGER));
    uv_close((uv_handle_t *)&ls->poll_timer, on_poll_timer_closed);
    /* stop every manager (pending operations fail): state stays persisted for next start */
    for (;;) {
        size_t it = 0;
        void *v;
        if (!sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, NULL, NULL, &v)) break;
        sp_ls_mgr_stop_now(v, "shutdown");
    }
    sp_presence_free(ls->presence);
    ls->presence = NULL;
}

void sp_livestream_free(sp_livestream_t *ls)
{
    if (ls == NULL) return;
    sp_livestream_shutdown(ls);
    ls->owner_gone = true;
    sp_ls_maybe_free(ls);
}

/* Users per stream state, counted over the running managers at the time of asking (a scrape
   or `debug counts`): a running tally kept at every transition drifted (a manager's first state
   was never counted, so its first transition took "offline" below zero). */
static void state_hist(sp_livestream_t *ls, uint64_t hist[4])
{
    memset(hist, 0, 4 * sizeof hist[0]);
    const char *uid;
    size_t ulen;
    void *v;
    for (size_t it = 0;
         sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, &uid, &ulen, &v);) {
        const sp_ls_manager_t *m = v;
        if ((unsigned)m->ss.state < 4)
            hist[m->ss.state]++;
    }
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
    uint64_t hist[4];
    state_hist(ls, hist);
    for (int s = 0; s < 4; s++)
        json_object_set_new(states, sp_ss_state_name((sp_ss_state_t)s),
                            json_integer((json_int_t)hist[s]));
    json_object_set_new(o, "states", states);
    return o;
}

static json_t *debug_managers(sp_livestream_t *ls, bool ids_only)
{
    json_t *arr = json_array();
    size_t it = 0;
    void *v;
    while (sp_registry_next(ls->reg, SP_REG_USER_STREAM_MANAGER, &it, NULL, NULL, &v)) {
        sp_ls_manager_t *m = v;
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

void sp_livestream_metrics(sp_livestream_t *ls, sp_buf_t *out)
{
    if (ls == NULL) return;
    sp_ls_counters_t *c = &ls->counters;
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
    uint64_t hist[4];
    state_hist(ls, hist);
    for (int s = 0; s < 4; s++)
        sp_buf_appendf(out, "streampai_livestream_state_users{state=\"%s\"} %llu\n",
                       sp_ss_state_name((sp_ss_state_t)s), (unsigned long long)hist[s]);
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

struct sp_registry_s *sp_livestream_registry(sp_livestream_t *ls)
{
    return ls->reg;
}

json_t *sp_livestream_debug(sp_livestream_t *ls, const char *what)
{
    if (strcmp(what, "presence") == 0) return sp_presence_debug(ls->presence);
    if (strcmp(what, "managers") == 0) return debug_managers(ls, false);
    if (strcmp(what, "users") == 0) return debug_managers(ls, true);
    if (strcmp(what, "counts") == 0) return debug_counts(ls);
    return NULL;
}
