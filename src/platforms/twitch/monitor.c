/*
 * twitch/monitor: see monitor.h. The I/O around the pure EventSub session machine
 * (twitch/eventsub.h): every ws callback, timer fire and subscription result becomes one event
 * fed to sp_twitch_es_apply, and its actions are executed here in order.
 *
 * Re-entrancy: actions borrow from the machine until the next apply, so an event that arises
 * while actions run (a CONNECT that fails at once, a CREATE_SUBS with nothing to send) is queued
 * and fed after them. A sink callback may stop the monitor: the remaining actions are skipped
 * and the monitor is freed when the feed returns.
 */
#include "platforms/twitch/monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "net/sp_tls.h"
#include "net/sp_ws_client.h"
#include "platforms/twitch/eventsub.h"
#include "platforms/twitch/map.h"
#include "platforms/twitch/twitch.h"

#define MON_SOCKS 4      /* current + migrating, and up to two closing */
#define MON_PENDING 4    /* events queued while actions run */
#define URL_CAP 2048

typedef struct mon_s mon_t;

typedef struct {
    mon_t *m;
    uint32_t id;         /* the machine's socket id; 0 = free slot */
    bool closing;        /* CLOSE issued: the machine no longer tracks it */
    sp_ws_client_t *c;
} sock_t;

/* One CREATE_SUBS: its POSTs complete after the monitor may be gone (m = NULL then). */
typedef struct {
    mon_t *m;
    uint32_t sock;
    int left;
    unsigned ok, failed;
    bool auth_failed;
} batch_t;

typedef struct {
    batch_t *b;
    unsigned bit;
} subcall_t;

struct mon_s {
    sp_platform_env_t env;
    sp_platform_account_t *a;
    sp_platform_sink_t sink;
    uv_timer_t timer;
    bool started;        /* START fed (the first timer fire) */
    bool stopped;        /* monitor_stop called: free when the feed returns */
    bool dead;           /* gave up (sink.failed): does nothing until stopped */
    int depth;           /* feeds on the stack */
    batch_t *batch;
    sock_t socks[MON_SOCKS];
    sp_twitch_es_event_t pending[MON_PENDING];
    int npending;
    sp_twitch_es_t es;
};

/* wss: one TLS context for every monitor (the CA store is read once, not per connection). */
static sp_tls_ctx_t *g_tls;

static void feed(mon_t *m, const sp_twitch_es_event_t *ev);

static sock_t *sock_find(mon_t *m, uint32_t id)
{
    for (int i = 0; i < MON_SOCKS; i++) {
        if (m->socks[i].id == id && id != 0)
            return &m->socks[i];
    }
    return NULL;
}

static void sock_release(sock_t *s)
{
    sp_ws_client_free(s->c);
    s->c = NULL;
    s->id = 0;
    s->closing = false;
}

static void queue_event(mon_t *m, const sp_twitch_es_event_t *ev)
{
    if (m->npending < MON_PENDING)
        m->pending[m->npending++] = *ev;
}

static void queue_closed(mon_t *m, uint32_t sock)
{
    sp_twitch_es_event_t ev = { .type = SP_TWITCH_ES_EV_CLOSED, .sock = sock,
                                .now_ms = (int64_t)sp_mono_ms(), .close_code = 1006 };
    queue_event(m, &ev);
}

/* ---- sink ------------------------------------------------------------------------------------ */

static void report_status(mon_t *m, sp_twitch_es_status_t st, const char *reason)
{
    sp_platform_status_t ps = SP_PSTATUS_CONNECTING;
    switch (st) {
    case SP_TWITCH_ES_ST_CONNECTED:
        ps = SP_PSTATUS_CONNECTED;
        break;
    case SP_TWITCH_ES_ST_DEGRADED:
        ps = SP_PSTATUS_DEGRADED;
        break;
    case SP_TWITCH_ES_ST_NEEDS_REAUTH:
        ps = SP_PSTATUS_NEEDS_REAUTH;
        break;
    case SP_TWITCH_ES_ST_STOPPED:
        ps = SP_PSTATUS_STOPPED;
        break;
    default:
        break;
    }
    sp_ulog(ps == SP_PSTATUS_CONNECTED || ps == SP_PSTATUS_CONNECTING ? SP_LOG_DEBUG
                                                                       : SP_LOG_INFO,
            "twitch", m->a->user_id, "eventsub status", "status=%s reason=%s",
            sp_platform_status_name(ps), reason ? reason : "");
    if (m->sink.status)
        m->sink.status(m->sink.ud, ps, reason ? reason : "");
}

static void give_up(mon_t *m, const char *why)
{
    m->dead = true;
    uv_timer_stop(&m->timer);
    for (int i = 0; i < MON_SOCKS; i++) {
        if (m->socks[i].id)
            sock_release(&m->socks[i]);
    }
    if (m->batch) {
        m->batch->m = NULL;
        m->batch = NULL;
    }
    sp_ulog(SP_LOG_WARN, "twitch", m->a->user_id, "eventsub monitor gave up", "why=%s", why);
    if (m->sink.failed)
        m->sink.failed(m->sink.ud, why);
}

static void deliver(mon_t *m, const sp_twitch_es_action_t *act)
{
    json_t *md = json_object_get(m->es.held, "metadata");
    const char *ts = json_string_value(json_object_get(md, "message_timestamp"));
    sp_twitch_mapped_t out;
    int rc = ts && act->sub_type && act->message_id && act->event
                 ? sp_twitch_map_event(act->sub_type, act->message_id, ts, act->event, &out)
                 : SP_EPROTO;
    if (rc) {
        sp_ulog(SP_LOG_WARN, "twitch", m->a->user_id, "eventsub notification dropped",
                "type=%s err=%s", act->sub_type ? act->sub_type : "", sp_strerror(rc));
        return;
    }
    switch (out.kind) {
    case SP_TWITCH_CHAT:
        if (m->sink.chat)
            m->sink.chat(m->sink.ud, &out.u.chat);
        break;
    case SP_TWITCH_CHAT_DELETED:
        if (m->sink.chat_deleted)
            m->sink.chat_deleted(m->sink.ud, &out.u.deleted);
        break;
    case SP_TWITCH_ALERT:
        if (m->sink.alert)
            m->sink.alert(m->sink.ud, &out.u.alert);
        break;
    default: /* stream.online / offline: the stream's own state says so; ignored here */
        break;
    }
    sp_twitch_mapped_clear(&out);
}

/* ---- subscriptions ------------------------------------------------------------------------- */

static void batch_done(batch_t *b)
{
    mon_t *m = b->m;
    if (m) {
        m->batch = NULL;
        sp_twitch_es_event_t ev = { .type = SP_TWITCH_ES_EV_SUBS_RESULT, .sock = b->sock,
                                    .now_ms = (int64_t)sp_mono_ms(), .subs_ok = b->ok,
                                    .subs_failed = b->failed, .auth_failed = b->auth_failed };
        sp_free(b);
        feed(m, &ev);
        return;
    }
    sp_free(b);
}

static void on_sub(int err, const sp_platform_resp_t *r, void *ud)
{
    subcall_t *sc = ud;
    batch_t *b = sc->b;
    unsigned bit = 1u << sc->bit;
    long st = r ? r->status : 0;
    if (!err && ((st >= 200 && st < 300) || st == 409)) {
        b->ok |= bit;
    } else {
        b->failed |= bit;
        if (err == SP_EAUTH)
            b->auth_failed = true;
        if (b->m)
            sp_ulog(SP_LOG_WARN, "twitch", b->m->a->user_id, "eventsub subscription failed",
                    "type=%s http=%ld err=%s", sp_twitch_sub_type((sp_twitch_sub_t)sc->bit), st,
                    err ? sp_strerror(err) : "none");
    }
    sp_free(sc);
    if (--b->left == 0)
        batch_done(b);
}

static void create_subs(mon_t *m, const sp_twitch_es_action_t *act)
{
    if (m->batch)
        m->batch->m = NULL; /* superseded: its result is dropped */
    batch_t *b = sp_calloc(1, sizeof *b);
    if (!b) {
        m->batch = NULL;
        give_up(m, "out of memory");
        return;
    }
    b->m = m;
    b->sock = act->sock;
    b->left = 1; /* held until every POST is issued */
    m->batch = b;
    char cid[256], url[URL_CAP];
    const char *api = m->env.cfg->twitch_api_url;
    bool cfg_ok = sp_twitch_client_id_header(m->env.cfg, cid, sizeof cid) == 0 && api &&
                  (size_t)snprintf(url, sizeof url, "%s/eventsub/subscriptions", api) < sizeof url;
    sp_twitch_transport_t tr = { .method = "websocket", .session_id = act->session_id };
    const char *hdrs[] = { cid, NULL };
    for (unsigned i = 0; i < SP_TWITCH_SUB_COUNT; i++) {
        if (!(act->subs & (1u << i)))
            continue;
        char *body = NULL;
        subcall_t *sc = NULL;
        int rc = cfg_ok ? sp_twitch_es_sub_body((sp_twitch_sub_t)i, m->a->who.id, m->a->who.id,
                                                &tr, &body)
                        : SP_ECONFIG;
        if (!rc) {
            sc = sp_calloc(1, sizeof *sc);
            rc = sc ? 0 : SP_ENOMEM;
        }
        if (!rc) {
            sc->b = b;
            sc->bit = i;
            sp_platform_req_t req = { .method = "POST", .url = url, .headers = hdrs,
                                      .body = body, .body_len = strlen(body) };
            b->left++;
            rc = sp_platform_http(&m->env, m->a, &req, on_sub, sc);
            if (rc) {
                b->left--;
                sp_free(sc);
            }
        }
        free(body);
        if (rc)
            b->failed |= 1u << i;
    }
    if (--b->left == 0) {
        /* nothing in flight: report from the feed loop, not from inside the actions */
        m->batch = NULL;
        sp_twitch_es_event_t ev = { .type = SP_TWITCH_ES_EV_SUBS_RESULT, .sock = b->sock,
                                    .now_ms = (int64_t)sp_mono_ms(), .subs_ok = b->ok,
                                    .subs_failed = b->failed };
        sp_free(b);
        queue_event(m, &ev);
    }
}

/* ---- sockets ------------------------------------------------------------------------------- */

static void ws_open(sp_ws_client_t *c, void *ud)
{
    (void)c;
    sock_t *s = ud;
    if (s->closing)
        return;
    sp_twitch_es_event_t ev = { .type = SP_TWITCH_ES_EV_OPENED, .sock = s->id,
                                .now_ms = (int64_t)sp_mono_ms() };
    feed(s->m, &ev);
}

static void ws_message(sp_ws_client_t *c, bool binary, const uint8_t *p, size_t len, void *ud)
{
    (void)c;
    sock_t *s = ud;
    if (s->closing || binary)
        return;
    sp_twitch_es_event_t ev = { .type = SP_TWITCH_ES_EV_MESSAGE, .sock = s->id,
                                .now_ms = (int64_t)sp_mono_ms(), .wall_ms = sp_wall_ms(),
                                .data = (const char *)p, .len = len };
    feed(s->m, &ev);
}

static void ws_ended(sock_t *s, int code)
{
    mon_t *m = s->m;
    uint32_t id = s->id;
    bool tracked = !s->closing;
    sock_release(s);
    if (!tracked)
        return;
    sp_twitch_es_event_t ev = { .type = SP_TWITCH_ES_EV_CLOSED, .sock = id,
                                .now_ms = (int64_t)sp_mono_ms(), .close_code = code };
    feed(m, &ev);
}

static void ws_close(sp_ws_client_t *c, int code, const char *reason, void *ud)
{
    (void)c;
    (void)reason;
    ws_ended(ud, code);
}

static void ws_error(sp_ws_client_t *c, int err, void *ud)
{
    (void)c;
    (void)err;
    ws_ended(ud, 1006);
}

static void connect_sock(mon_t *m, const sp_twitch_es_action_t *act)
{
    sock_t *s = NULL;
    for (int i = 0; i < MON_SOCKS && !s; i++) {
        if (!m->socks[i].id)
            s = &m->socks[i];
    }
    if (!s) { /* free the oldest closing one rather than refuse the new session */
        for (int i = 0; i < MON_SOCKS && !s; i++) {
            if (m->socks[i].closing) {
                sock_release(&m->socks[i]);
                s = &m->socks[i];
            }
        }
    }
    if (!s || !act->url) {
        queue_closed(m, act->sock);
        return;
    }
    bool tls = strncmp(act->url, "wss://", 6) == 0;
    if (tls && !g_tls && sp_tls_ctx_create(m->env.ca_file, &g_tls) != 0)
        g_tls = NULL;
    sp_ws_client_opts_t o = {
        .url = act->url,
        .max_message = SP_TWITCH_ES_MAX_MSG,
        .max_queue = 16 * 1024, /* we never send data frames: pongs and the close only */
        .max_header_bytes = 8 * 1024,
        .connect_timeout_ms = SP_TWITCH_ES_CONNECT_TIMEOUT_MS,
        .tls_ctx = tls ? g_tls : NULL,
        .ca_file = m->env.ca_file,
        .cbs = { .on_open = ws_open, .on_message = ws_message, .on_close = ws_close,
                 .on_error = ws_error },
        .ud = s,
    };
    s->m = m;
    s->id = act->sock;
    s->closing = false;
    s->c = NULL;
    if (sp_ws_client_new(m->env.loop, &o, &s->c) != 0) {
        s->id = 0;
        queue_closed(m, act->sock);
    }
}

static void close_sock(mon_t *m, uint32_t id)
{
    sock_t *s = sock_find(m, id);
    if (!s || s->closing)
        return;
    s->closing = true;
    if (sp_ws_client_is_open(s->c))
        sp_ws_client_close(s->c, 1000, "");
    else
        sock_release(s); /* still connecting: abandon it, nothing to say */
}

/* ---- the feed ------------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(mon_t *m, int64_t at_ms)
{
    int64_t now = (int64_t)sp_mono_ms();
    uint64_t delay = at_ms > now ? (uint64_t)(at_ms - now) : 0;
    uv_timer_start(&m->timer, on_timer, delay, 0);
}

static void exec(mon_t *m, const sp_twitch_es_action_t *act)
{
    switch (act->type) {
    case SP_TWITCH_ES_A_CONNECT:
        connect_sock(m, act);
        break;
    case SP_TWITCH_ES_A_CLOSE:
        close_sock(m, act->sock);
        break;
    case SP_TWITCH_ES_A_CREATE_SUBS:
        create_subs(m, act);
        break;
    case SP_TWITCH_ES_A_DELIVER:
        deliver(m, act);
        break;
    case SP_TWITCH_ES_A_REVOKED:
        sp_ulog(SP_LOG_WARN, "twitch", m->a->user_id, "eventsub subscription revoked",
                "type=%s status=%s", act->sub_type ? act->sub_type : "",
                act->reason ? act->reason : "");
        break;
    case SP_TWITCH_ES_A_STATUS:
        report_status(m, act->status, act->reason);
        break;
    case SP_TWITCH_ES_A_ARM_TIMER:
    case SP_TWITCH_ES_A_RECONNECT_LATER:
        arm(m, act->at_ms);
        break;
    case SP_TWITCH_ES_A_CANCEL_TIMER:
        uv_timer_stop(&m->timer);
        break;
    }
}

static void destroy(mon_t *m);

static void apply_once(mon_t *m, const sp_twitch_es_event_t *ev)
{
    sp_twitch_es_result_t r = sp_twitch_es_apply(&m->es, ev);
    for (size_t i = 0; i < r.n && !m->stopped && !m->dead; i++)
        exec(m, &r.a[i]);
    /* the actions are done with the frame they borrowed: do not keep it until the next one */
    json_decref(m->es.held);
    m->es.held = NULL;
}

static void feed(mon_t *m, const sp_twitch_es_event_t *ev)
{
    if (m->stopped || m->dead)
        return;
    m->depth++;
    apply_once(m, ev);
    while (m->npending > 0 && !m->stopped && !m->dead) {
        sp_twitch_es_event_t e = m->pending[0];
        m->npending--;
        memmove(&m->pending[0], &m->pending[1], (size_t)m->npending * sizeof e);
        apply_once(m, &e);
    }
    m->depth--;
    if (m->depth == 0 && m->stopped)
        destroy(m);
}

static void on_timer(uv_timer_t *t)
{
    mon_t *m = t->data;
    sp_twitch_es_event_t ev = { .type = m->started ? SP_TWITCH_ES_EV_TICK
                                                   : SP_TWITCH_ES_EV_START,
                                .now_ms = (int64_t)sp_mono_ms() };
    m->started = true;
    feed(m, &ev);
}

/* ---- lifetime -------------------------------------------------------------------------------- */

static void timer_closed(uv_handle_t *h)
{
    sp_free(h->data);
}

static void destroy(mon_t *m)
{
    for (int i = 0; i < MON_SOCKS; i++) {
        if (m->socks[i].id)
            sock_release(&m->socks[i]);
    }
    if (m->batch)
        m->batch->m = NULL;
    sp_twitch_es_free(&m->es);
    sp_platform_account_t *a = m->a;
    m->a = NULL;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, timer_closed);
    sp_platform_account_unref(a);
}

sp_platform_monitor_t *sp_twitch_monitor_start(const sp_platform_env_t *env,
                                               sp_platform_account_t *a,
                                               const sp_platform_sink_t *sink)
{
    if (!env || !env->loop || !env->cfg || !a || !sink)
        return NULL;
    const char *url = env->cfg->twitch_eventsub_ws_url;
    mon_t *m = sp_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (!url || sp_twitch_es_init(&m->es, url, 0, 0, 0) != 0) {
        sp_free(m);
        return NULL;
    }
    m->env = *env;
    m->a = a;
    m->sink = *sink;
    sp_platform_account_ref(a);
    uv_timer_init(env->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, on_timer, 0, 0); /* START from the loop, not from here */
    return (sp_platform_monitor_t *)m;
}

void sp_twitch_monitor_stop(sp_platform_monitor_t *pm)
{
    mon_t *m = (mon_t *)pm;
    if (!m || m->stopped)
        return;
    m->stopped = true;
    if (m->depth == 0)
        destroy(m);
}

size_t sp_twitch_monitor_size(const sp_platform_monitor_t *pm)
{
    const mon_t *m = (const mon_t *)pm;
    return m ? sizeof *m + (m->batch ? sizeof *m->batch : 0) : 0;
}
