/*
 * Unit tests for sp_psup (the PlatformSupervisor) with two mock platforms written here (their
 * vtables reach the supervisor through the accounts, a->platform), a real SQLite store in a
 * temp dir and a real sp_pubsub whose topics the tests watch.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "../store/store_common.h"
#include "bus/sp_pubsub.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "platforms/sp_psup.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define S1 "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define S2 "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"

/* ---- deferred callbacks (platform calls never answer synchronously) ----------------------- */

typedef enum { D_DONE, D_VIEWERS, D_CHAT, D_ACCOUNT, D_FAILED, D_STATUS } dkind_t;

typedef struct mock_mon_s {
    sp_platform_sink_t sink;
    sp_platform_account_t *a;
    bool stopped;
    struct mock_mon_s *next;
} mock_mon_t;

typedef struct {
    uv_timer_t t;
    dkind_t kind;
    void *cb;
    void *ud;
    int err;
    int64_t n;
    sp_platform_chat_result_t r;
    sp_platform_account_t *a;
    mock_mon_t *mon;
    sp_platform_status_t st;
} dcall_t;

static void on_dclosed(uv_handle_t *h)
{
    sp_free(h->data);
}

static void on_dcall(uv_timer_t *t)
{
    dcall_t *d = t->data;
    switch (d->kind) {
    case D_DONE: ((sp_platform_done_cb)d->cb)(d->err, d->ud); break;
    case D_VIEWERS: ((sp_platform_viewers_cb)d->cb)(d->err, true, d->n, d->ud); break;
    case D_CHAT: ((sp_platform_chat_cb)d->cb)(d->err, d->err ? NULL : &d->r, d->ud); break;
    case D_ACCOUNT: ((sp_accounts_get_cb)d->cb)(d->err, d->a, d->ud); break;
    case D_FAILED:
        if (!d->mon->stopped) d->mon->sink.failed(d->mon->sink.ud, "socket dropped");
        break;
    case D_STATUS:
        if (!d->mon->stopped) d->mon->sink.status(d->mon->sink.ud, d->st, "");
        break;
    }
    uv_close((uv_handle_t *)t, on_dclosed);
}

static uv_loop_t *g_loop;

static dcall_t *defer(dkind_t kind, void *cb, void *ud)
{
    dcall_t *d = sp_calloc(1, sizeof(*d));
    d->kind = kind;
    d->cb = cb;
    d->ud = ud;
    uv_timer_init(g_loop, &d->t);
    d->t.data = d;
    return d;
}

static void go(dcall_t *d)
{
    uv_timer_start(&d->t, on_dcall, 0, 0);
}

/* ---- the mock platforms --------------------------------------------------------------------- */

typedef struct {
    int starts, stops;
    int fail_next;       /* the next N monitors report failed right after starting */
    bool start_null;     /* monitor_start returns NULL */
    mock_mon_t *cur;
    int titles;
    char title[256];
    int sends;
    char last_text[600];
    char last_reply[130];
    bool drop;           /* is_sent false */
    int64_t viewers, viewers_step;
    int viewer_calls;
    int viewers_err; /* answered once, then cleared */
} mock_state_t;

static mock_state_t M[2];
static mock_mon_t *all_mons;

static mock_state_t *st_of(const sp_platform_account_t *a)
{
    return strcmp(a->platform->name, "mock") == 0 ? &M[0] : &M[1];
}

static sp_platform_monitor_t *m_start(const sp_platform_env_t *env, sp_platform_account_t *a,
                                      const sp_platform_sink_t *sink)
{
    (void)env;
    mock_state_t *st = st_of(a);
    st->starts++;
    if (st->start_null) return NULL;
    mock_mon_t *m = sp_calloc(1, sizeof(*m));
    m->sink = *sink;
    m->a = a;
    sp_platform_account_ref(a);
    m->next = all_mons;
    all_mons = m;
    st->cur = m;
    sink->status(sink->ud, SP_PSTATUS_CONNECTING, "");
    dcall_t *d = defer(st->fail_next > 0 ? D_FAILED : D_STATUS, NULL, NULL);
    d->mon = m;
    d->st = SP_PSTATUS_CONNECTED;
    if (st->fail_next > 0) st->fail_next--;
    go(d);
    return (sp_platform_monitor_t *)m;
}

static void m_stop(sp_platform_monitor_t *pm)
{
    mock_mon_t *m = (mock_mon_t *)pm;
    st_of(m->a)->stops++;
    if (st_of(m->a)->cur == m) st_of(m->a)->cur = NULL;
    m->stopped = true;
    sp_platform_account_unref(m->a);
}

static void m_send(const sp_platform_env_t *env, sp_platform_account_t *a, const char *text,
                   const char *reply_to, sp_platform_chat_cb cb, void *ud)
{
    (void)env;
    mock_state_t *st = st_of(a);
    st->sends++;
    snprintf(st->last_text, sizeof(st->last_text), "%s", text);
    snprintf(st->last_reply, sizeof(st->last_reply), "%s", reply_to ? reply_to : "");
    dcall_t *d = defer(D_CHAT, (void *)cb, ud);
    d->r.sent = !st->drop;
    if (st->drop)
        snprintf(d->r.reason, sizeof(d->r.reason), "msg_duplicate");
    else
        snprintf(d->r.message_id, sizeof(d->r.message_id), "sent-%d", st->sends);
    go(d);
}

static void m_update(const sp_platform_env_t *env, sp_platform_account_t *a, const char *title,
                     const char *category_id, sp_platform_done_cb cb, void *ud)
{
    (void)env;
    (void)category_id;
    mock_state_t *st = st_of(a);
    st->titles++;
    snprintf(st->title, sizeof(st->title), "%s", title ? title : "");
    go(defer(D_DONE, (void *)cb, ud));
}

static void m_viewers(const sp_platform_env_t *env, sp_platform_account_t *a,
                      sp_platform_viewers_cb cb, void *ud)
{
    (void)env;
    mock_state_t *st = st_of(a);
    st->viewer_calls++;
    dcall_t *d = defer(D_VIEWERS, (void *)cb, ud);
    d->err = st->viewers_err;
    st->viewers_err = 0;
    d->n = st->viewers;
    st->viewers += st->viewers_step;
    go(d);
}

static const sp_platform_t MOCK = { .name = "mock", .display_name = "Mock",
                                    .monitor_start = m_start, .monitor_stop = m_stop,
                                    .send_chat = m_send, .update_channel = m_update,
                                    .viewers = m_viewers };
static const sp_platform_t MOCK2 = { .name = "mock2", .display_name = "Mock 2",
                                     .monitor_start = m_start, .monitor_stop = m_stop,
                                     .send_chat = m_send, .update_channel = m_update,
                                     .viewers = m_viewers };

/* accounts [user][platform], each holding the test's own reference */
static sp_platform_account_t ACC[2][2];
static bool connected[2][2];

static void acc_init(void)
{
    const char *users[2] = { U1, U2 };
    for (int u = 0; u < 2; u++)
        for (int p = 0; p < 2; p++) {
            sp_platform_account_t *a = &ACC[u][p];
            memset(a, 0, sizeof(*a));
            a->refs = 1;
            snprintf(a->user_id, sizeof(a->user_id), "%s", users[u]);
            a->platform = p == 0 ? &MOCK : &MOCK2;
            snprintf(a->who.id, sizeof(a->who.id), "%d%d", u + 1, p + 1);
            connected[u][p] = true;
        }
}

static void source(void *ud, const char *user_id, const char *platform, sp_accounts_get_cb cb,
                   void *cb_ud)
{
    (void)ud;
    int u = strcmp(user_id, U1) == 0 ? 0 : strcmp(user_id, U2) == 0 ? 1 : -1;
    int p = strcmp(platform, "mock") == 0 ? 0 : strcmp(platform, "mock2") == 0 ? 1 : -1;
    dcall_t *d = defer(D_ACCOUNT, (void *)cb, cb_ud);
    if (u < 0 || p < 0 || !connected[u][p]) {
        d->err = SP_ENOTFOUND;
    } else {
        d->a = &ACC[u][p];
        sp_platform_account_ref(d->a);
    }
    go(d);
}

/* ---- topic recorder ------------------------------------------------------------------------- */

typedef struct {
    json_t *items; /* [{event, payload}] */
    sp_pubsub_sub_t *sub;
} rec_t;

static void on_pub(const char *topic, const char *event, json_t *payload, uint64_t seq, void *ud)
{
    (void)topic;
    (void)seq;
    rec_t *r = ud;
    json_array_append_new(r->items, json_pack("{s:s, s:O}", "event", event, "payload",
                                              payload ? payload : json_null()));
}

/* ---- fixture -------------------------------------------------------------------------------- */

static tenv_t E;
static sp_pubsub_t *PS;
static sp_psup_t *S;
static uv_timer_t tick;
static sp_platform_env_t ENV;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void rec_on(rec_t *r, const char *topic)
{
    r->items = json_array();
    r->sub = sp_pubsub_subscribe(PS, topic, on_pub, r);
    cr_assert_not_null(r->sub);
}

static void rec_off(rec_t *r)
{
    sp_pubsub_unsubscribe(PS, r->sub);
    json_decref(r->items);
}

static size_t count_event(rec_t *r, const char *event, const char *status)
{
    size_t n = 0, i;
    json_t *it;
    json_array_foreach(r->items, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "event")), event) != 0) continue;
        const char *sv = sp_json_str(json_object_get(it, "payload"), "status");
        if (status && (sv == NULL || strcmp(sv, status) != 0)) continue;
        n++;
    }
    return n;
}

#define WAIT_UNTIL(cond, ms)                                                                      \
    do {                                                                                          \
        uint64_t t0_ = sp_mono_ms();                                                              \
        while (!(cond) && sp_mono_ms() - t0_ < (uint64_t)(ms)) uv_run(&E.loop, UV_RUN_ONCE);       \
    } while (0)

static void setup_on(bool pg)
{
    memset(M, 0, sizeof(M));
    acc_init();
    tenv_setup(&E, pg); /* pg: skips without SP_TEST_PG_URL (run by platforms_live.test.mjs) */
    E.cfg.platform_viewers_interval = 0;
    char err[256];
    cr_assert_eq(tenv_open(&E, err, sizeof(err)), 0, "%s", err);
    g_loop = &E.loop;
    uv_timer_init(&E.loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    const char *users[2] = { U1, U2 };
    for (int i = 0; i < 2; i++) {
        char email[64];
        snprintf(email, sizeof(email), "u%d@example.com", i);
        tres_t r = tq(&E,
                      "INSERT INTO users (id, email, password_hash, created_at, updated_at) "
                      "VALUES ($1, $2, 'x', 0, 0)",
                      json_pack("[s, s]", users[i], email));
        cr_assert_eq(r.err, 0);
        tres_free(&r);
    }
    PS = sp_pubsub_new(&E.loop, 64);
    ENV = (sp_platform_env_t){ .loop = &E.loop, .cfg = &E.cfg };
}

static void setup(void)
{
    setup_on(false);
}

static void setup_pg(void)
{
    setup_on(true);
}

static void start_psup(void)
{
    S = sp_psup_new(&ENV, E.s, PS, NULL);
    cr_assert_not_null(S);
    sp_psup_set_account_source(S, source, NULL);
    sp_psup_set_backoff(S, 10, 80);
}

static void teardown(void)
{
    sp_psup_free(S);
    S = NULL;
    uv_run(&E.loop, UV_RUN_NOWAIT);
    /* every reference handed out came back */
    for (int u = 0; u < 2; u++)
        for (int p = 0; p < 2; p++) cr_expect_eq(ACC[u][p].refs, 1, "account %d/%d refs", u, p);
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    for (int i = 0; i < 20; i++) uv_run(&E.loop, UV_RUN_NOWAIT);
    sp_pubsub_free(PS);
    while (all_mons) {
        mock_mon_t *m = all_mons;
        all_mons = m->next;
        sp_free(m);
    }
    tenv_teardown(&E);
}

static int64_t db_count(const char *sql)
{
    return tcount(&E, sql);
}

static void chat(sp_chat_msg_t *m, const char *platform, const char *id, const char *text)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->platform, sizeof(m->platform), "%s", platform);
    snprintf(m->author.id, sizeof(m->author.id), "42");
    snprintf(m->author.name, sizeof(m->author.name), "viewer");
    snprintf(m->author.display_name, sizeof(m->author.display_name), "Viewer");
    snprintf(m->text, sizeof(m->text), "%s", text);
    cr_assert_eq(sp_chat_msg_add_fragment(m, SP_FRAG_TEXT, text, strlen(text), NULL), 0);
    m->ts = 1700000000000;
    m->raw = json_pack("{s:s}", "secret_platform_field", id);
}

static void alert(sp_alert_t *a, const char *platform, const char *id)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->type = SP_ALERT_FOLLOW;
    snprintf(a->platform, sizeof(a->platform), "%s", platform);
    snprintf(a->name, sizeof(a->name), "Follower");
    a->ts = 1700000000000;
    a->raw = json_pack("{s:s}", "user_id", "999");
}

TestSuite(psup, .init = setup, .fini = teardown, .timeout = 30);

/* ---- tests ---------------------------------------------------------------------------------- */

Test(psup, start_stop_status_and_title)
{
    start_psup();
    rec_t st;
    rec_on(&st, "platform:mock:" U1);
    const char *plats[] = { "mock" };
    sp_psup_stream_started(S, U1, S1, "My title", NULL, plats, 1);
    sp_psup_stream_started(S, U1, S1, "My title", NULL, plats, 1); /* idempotent */
    WAIT_UNTIL(count_event(&st, "status", "connected") == 1, 2000);
    cr_assert_eq(M[0].starts, 1);
    cr_assert_eq(count_event(&st, "status", "connecting"), 1);
    cr_assert_eq(count_event(&st, "status", "connected"), 1);
    WAIT_UNTIL(M[0].titles == 1, 2000);
    cr_assert_str_eq(M[0].title, "My title");
    json_t *d = sp_psup_debug(S);
    cr_assert_eq(json_integer_value(json_object_get(d, "monitors")), 1);
    json_decref(d);

    sp_psup_metadata(S, U1, "New title", NULL);
    WAIT_UNTIL(M[0].titles == 2, 2000);
    cr_assert_str_eq(M[0].title, "New title");

    size_t before = json_array_size(st.items);
    sp_psup_set_bus(S, NULL); /* nothing published without a bus */
    M[0].cur->sink.status(M[0].cur->sink.ud, SP_PSTATUS_DEGRADED, "quiet");
    cr_assert_eq(json_array_size(st.items), before);
    sp_psup_set_bus(S, PS);
    M[0].cur->sink.status(M[0].cur->sink.ud, SP_PSTATUS_CONNECTED, "");
    cr_assert_eq(json_array_size(st.items), before + 1);
    before++;

    sp_psup_stream_ended(S, U1, S2); /* another stream: ignored */
    cr_assert_eq(M[0].stops, 0);
    sp_psup_stream_ended(S, U1, S1);
    cr_assert_eq(M[0].stops, 1);
    cr_assert_eq(count_event(&st, "status", "stopped"), 1);
    cr_assert_eq(json_array_size(st.items), before + 1);
    d = sp_psup_debug(S);
    cr_assert_eq(json_integer_value(json_object_get(d, "users")), 0);
    json_decref(d);
    sp_psup_metadata(S, U1, "After", NULL); /* not streaming: nothing */
    WAIT_UNTIL(false, 30);
    cr_assert_eq(M[0].titles, 2);
    rec_off(&st);
}

Test(psup, not_connected_platform_is_skipped)
{
    start_psup();
    connected[0][1] = false;
    const char *plats[] = { "mock2", "mock" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 2);
    WAIT_UNTIL(M[0].starts == 1, 2000);
    WAIT_UNTIL(false, 30);
    cr_assert_eq(M[1].starts, 0);
    cr_assert_eq(M[0].titles, 0, "no title: nothing pushed");
    sp_psup_stream_ended(S, U1, S1);
}

Test(psup, exactly_once_with_duplicates)
{
    start_psup();
    rec_t ch, al;
    rec_on(&ch, "chat:" U1);
    rec_on(&al, "alertbox:" U1);
    const char *plats[] = { "mock" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 1);
    WAIT_UNTIL(M[0].cur != NULL, 2000);
    mock_mon_t *m = M[0].cur;
    sp_chat_msg_t c;
    chat(&c, "mock", "c1", "hello");
    m->sink.chat(m->sink.ud, &c);
    m->sink.chat(m->sink.ud, &c);                 /* redelivered on the socket */
    sp_psup_inject_chat(S, "mock", "11", &c);     /* and by webhook */
    sp_psup_inject_chat(S, "mock", "nobody", &c); /* unknown account: dropped */
    sp_chat_msg_clear(&c);
    sp_alert_t a;
    alert(&a, "mock", "a1");
    m->sink.alert(m->sink.ud, &a);
    sp_psup_inject_alert(S, "mock", "11", &a);
    sp_alert_clear(&a);
    sp_chat_deletion_t del = { .ts = 1700000000001 };
    snprintf(del.id, sizeof(del.id), "c1");
    snprintf(del.platform, sizeof(del.platform), "mock");
    m->sink.chat_deleted(m->sink.ud, &del);
    m->sink.chat_deleted(m->sink.ud, &del);

    cr_assert_eq(count_event(&ch, "message", NULL), 1);
    cr_assert_eq(count_event(&ch, "deleted", NULL), 1);
    cr_assert_eq(count_event(&al, "alert", NULL), 1);
    json_t *pub = json_object_get(json_array_get(ch.items, 0), "payload");
    cr_assert_str_eq(json_string_value(json_object_get(pub, "text")), "hello");
    cr_assert_null(json_object_get(pub, "raw"), "raw is never published");
    json_t *d = sp_psup_debug(S);
    cr_assert_eq(json_integer_value(json_object_get(d, "events")), 3);
    cr_assert_eq(json_integer_value(json_object_get(d, "duplicates")), 4);
    json_decref(d);

    WAIT_UNTIL(db_count("SELECT COUNT(*) AS n FROM events") == 3, 3000);
    cr_assert_eq(db_count("SELECT COUNT(*) AS n FROM events"), 3);
    cr_assert_eq(db_count("SELECT COUNT(*) AS n FROM events WHERE user_id = '" U1
                          "' AND stream_id = '" S1 "' AND platform = 'mock' AND "
                          "platform_event_id = 'c1' AND type = 'chat_message' AND "
                          "payload LIKE '%secret_platform_field%' AND seq > 0"),
                 1, "the persisted payload keeps raw");
    cr_assert_eq(db_count("SELECT COUNT(*) AS n FROM events WHERE type = 'alert' AND "
                          "platform_event_id = 'a1'"), 1);

    /* after a restart of the supervisor (memory gone), the unique key still holds */
    sp_psup_stream_ended(S, U1, S1);
    sp_psup_free(S);
    start_psup();
    sp_psup_stream_started(S, U1, S2, NULL, NULL, plats, 1);
    WAIT_UNTIL(M[0].cur != NULL && M[0].starts == 2, 2000);
    m = M[0].cur;
    chat(&c, "mock", "c1", "hello");
    m->sink.chat(m->sink.ud, &c);
    sp_chat_msg_clear(&c);
    WAIT_UNTIL(false, 100);
    cr_assert_eq(db_count("SELECT COUNT(*) AS n FROM events WHERE platform_event_id = 'c1'"), 1);
    sp_psup_stream_ended(S, U1, S2);
    rec_off(&ch);
    rec_off(&al);
}

Test(psup, restart_budget_degraded_and_recovery)
{
    start_psup();
    rec_t st;
    rec_on(&st, "platform:mock:" U1);
    M[0].fail_next = SP_PSUP_MAX_RESTARTS + 1; /* six failures in a row, then healthy */
    const char *plats[] = { "mock" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 1);
    WAIT_UNTIL(count_event(&st, "status", "degraded") >= 1, 5000);
    cr_assert_eq(count_event(&st, "status", "degraded"), 1);
    cr_assert_eq(M[0].starts, SP_PSUP_MAX_RESTARTS + 1);
    cr_assert_eq(count_event(&st, "status", "connected"), 0);
    json_t *d = sp_psup_debug(S);
    cr_assert_eq(json_integer_value(json_object_get(d, "degraded")), 1);
    cr_assert_eq(json_integer_value(json_object_get(d, "restarts")), SP_PSUP_MAX_RESTARTS + 1);
    json_decref(d);
    /* retried at the ceiling; the next monitor is healthy and clears degraded */
    WAIT_UNTIL(count_event(&st, "status", "connected") == 1, 5000);
    cr_assert_eq(M[0].starts, SP_PSUP_MAX_RESTARTS + 2);
    cr_assert_eq(M[0].stops, SP_PSUP_MAX_RESTARTS + 1, "every failed monitor was stopped");
    d = sp_psup_debug(S);
    cr_assert_eq(json_integer_value(json_object_get(d, "degraded")), 0);
    json_decref(d);
    /* the last status published is connected */
    size_t n = json_array_size(st.items);
    json_t *last = json_object_get(json_array_get(st.items, n - 1), "payload");
    cr_assert_str_eq(json_string_value(json_object_get(last, "status")), "connected");
    sp_psup_stream_ended(S, U1, S1);
    rec_off(&st);
}

Test(psup, failing_platform_does_not_touch_others)
{
    start_psup();
    rec_t ch, st2;
    rec_on(&ch, "chat:" U2);
    rec_on(&st2, "platform:mock2:" U1);
    M[0].start_null = true; /* mock never starts, for anyone */
    const char *plats[] = { "mock", "mock2" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 2);
    sp_psup_stream_started(S, U2, S2, NULL, NULL, plats + 1, 1);
    WAIT_UNTIL(M[1].starts == 2 && M[0].starts >= 3, 3000);
    WAIT_UNTIL(count_event(&st2, "status", "connected") == 1, 2000);
    cr_assert_eq(count_event(&st2, "status", "connected"), 1);
    /* U2's monitor delivers while U1's mock keeps failing */
    mock_mon_t *m2 = NULL;
    for (mock_mon_t *m = all_mons; m; m = m->next)
        if (!m->stopped && m->a == &ACC[1][1]) m2 = m;
    cr_assert_not_null(m2);
    sp_chat_msg_t c;
    chat(&c, "mock2", "x1", "hi from u2");
    m2->sink.chat(m2->sink.ud, &c);
    sp_chat_msg_clear(&c);
    cr_assert_eq(count_event(&ch, "message", NULL), 1);
    cr_assert_eq(M[1].stops, 0);
    sp_psup_stream_ended(S, U1, S1);
    sp_psup_stream_ended(S, U2, S2);
    rec_off(&ch);
    rec_off(&st2);
}

Test(psup, viewers_sampled_peak_and_avg)
{
    E.cfg.platform_viewers_interval = 40;
    start_psup();
    tres_t r = tq(&E,
                  "INSERT INTO streams (id, user_id, state, started_at) VALUES ($1, $2, "
                  "'streaming', 0)",
                  json_pack("[s, s]", S1, U1));
    cr_assert_eq(r.err, 0);
    tres_free(&r);
    rec_t vs;
    rec_on(&vs, "user_stream:" U1 ":statistics");
    M[0].viewers = 10;
    M[0].viewers_step = 10; /* 10, 20, 30, ... */
    M[1].viewers = 5;
    const char *plats[] = { "mock", "mock2" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 2);
    WAIT_UNTIL(json_array_size(vs.items) >= 3, 5000);
    sp_psup_stream_ended(S, U1, S1);
    size_t n = json_array_size(vs.items);
    cr_assert_geq(n, 3);
    int64_t peak = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object_get(json_array_get(vs.items, i), "payload");
        int64_t total = json_integer_value(json_object_get(p, "total"));
        json_t *per = json_object_get(p, "platforms");
        cr_assert_eq(json_integer_value(json_object_get(per, "mock2")), 5);
        cr_assert_eq(json_integer_value(json_object_get(per, "mock")), 10 * (int64_t)(i + 1));
        cr_assert_eq(total, 10 * (int64_t)(i + 1) + 5);
        if (total > peak) peak = total;
        sum += total;
    }
    int64_t avg = (sum * 2 + (int64_t)n) / (2 * (int64_t)n); /* rounded */
    WAIT_UNTIL(db_count("SELECT peak_viewers FROM streams WHERE id = '" S1 "'") == peak, 3000);
    cr_assert_eq(db_count("SELECT peak_viewers FROM streams WHERE id = '" S1 "'"), peak);
    cr_assert_eq(db_count("SELECT avg_viewers FROM streams WHERE id = '" S1 "'"), avg);
    cr_assert_eq(db_count("SELECT COUNT(*) FROM viewer_samples WHERE stream_id = '" S1 "'"),
                 (int64_t)(2 * n));
    int calls = M[0].viewer_calls;
    WAIT_UNTIL(false, 120);
    cr_assert_eq(M[0].viewer_calls, calls, "no sampling after the end");
    rec_off(&vs);
}

typedef struct {
    int done;
    int err;
    json_t *res;
} chat_res_t;

static void on_chat(int err, json_t *result, void *ud)
{
    chat_res_t *c = ud;
    c->done++;
    c->err = err;
    c->res = json_incref(result);
}

static json_t *result_for(json_t *res, const char *platform)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(res, "results"), i, it)
    if (strcmp(json_string_value(json_object_get(it, "platform")), platform) == 0) return it;
    return NULL;
}

Test(psup, send_chat_fan_out_and_reply_routing)
{
    start_psup();
    M[1].drop = true;
    const char *plats[] = { "mock", "mock2" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 2);
    WAIT_UNTIL(M[0].cur && M[1].cur, 2000);

    chat_res_t c = { 0 };
    sp_psup_send_chat(S, U1, "hello all", NULL, 0, NULL, on_chat, &c);
    WAIT_UNTIL(c.done, 2000);
    cr_assert_eq(c.done, 1);
    cr_assert_eq(c.err, 0);
    cr_assert_eq(json_array_size(json_object_get(c.res, "results")), 2);
    json_t *r0 = result_for(c.res, "mock"), *r1 = result_for(c.res, "mock2");
    cr_assert(json_is_true(json_object_get(r0, "sent")));
    cr_assert_str_eq(json_string_value(json_object_get(r0, "message_id")), "sent-1");
    cr_assert(json_is_false(json_object_get(r1, "sent")));
    cr_assert_str_eq(json_string_value(json_object_get(r1, "reason")), "msg_duplicate");
    cr_assert_str_eq(M[0].last_text, "hello all");
    cr_assert_str_eq(M[0].last_reply, "");
    json_decref(c.res);

    /* one platform named */
    memset(&c, 0, sizeof(c));
    const char *only[] = { "mock2" };
    sp_psup_send_chat(S, U1, "just two", only, 1, NULL, on_chat, &c);
    WAIT_UNTIL(c.done, 2000);
    cr_assert_eq(json_array_size(json_object_get(c.res, "results")), 1);
    cr_assert_eq(M[0].sends, 1);
    cr_assert_eq(M[1].sends, 2);
    json_decref(c.res);

    /* a reply goes to the parent's platform only, as a reply */
    sp_chat_msg_t m;
    chat(&m, "mock2", "parent-7", "question?");
    M[1].cur->sink.chat(M[1].cur->sink.ud, &m);
    sp_chat_msg_clear(&m);
    memset(&c, 0, sizeof(c));
    sp_psup_send_chat(S, U1, "answer", NULL, 0, "parent-7", on_chat, &c);
    WAIT_UNTIL(c.done, 2000);
    cr_assert_eq(c.err, 0);
    cr_assert_eq(json_array_size(json_object_get(c.res, "results")), 1);
    cr_assert_not_null(result_for(c.res, "mock2"));
    cr_assert_eq(M[0].sends, 1);
    cr_assert_str_eq(M[1].last_reply, "parent-7");
    cr_assert_str_eq(M[1].last_text, "answer");
    json_decref(c.res);

    /* unknown parent: not found */
    memset(&c, 0, sizeof(c));
    sp_psup_send_chat(S, U1, "answer", NULL, 0, "nope", on_chat, &c);
    WAIT_UNTIL(c.done, 2000);
    cr_assert_eq(c.err, SP_ENOTFOUND);
    cr_assert_null(c.res);

    /* after the stream: the parent is found in the events table */
    sp_psup_stream_ended(S, U1, S1);
    WAIT_UNTIL(db_count("SELECT COUNT(*) FROM events WHERE platform_event_id = 'parent-7'") == 1,
               3000);
    memset(&c, 0, sizeof(c));
    sp_psup_send_chat(S, U1, "late answer", NULL, 0, "parent-7", on_chat, &c);
    WAIT_UNTIL(c.done, 2000);
    cr_assert_eq(c.err, 0);
    cr_assert_not_null(result_for(c.res, "mock2"));
    cr_assert_str_eq(M[1].last_text, "late answer");
    cr_assert_str_eq(M[1].last_reply, "parent-7");
    json_decref(c.res);

    /* a named platform that is not connected */
    connected[0][0] = false;
    memset(&c, 0, sizeof(c));
    const char *one[] = { "mock" };
    sp_psup_send_chat(S, U1, "x", one, 1, NULL, on_chat, &c);
    WAIT_UNTIL(c.done, 2000);
    cr_assert_eq(c.err, 0);
    r0 = result_for(c.res, "mock");
    cr_assert(json_is_false(json_object_get(r0, "sent")));
    cr_assert_str_eq(json_string_value(json_object_get(r0, "reason")), "not_connected");
    json_decref(c.res);
}

Test(psup, needs_reauth_stops_and_reconnect_restarts)
{
    start_psup();
    rec_t st;
    rec_on(&st, "platform:mock:" U1);
    const char *plats[] = { "mock" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 1);
    WAIT_UNTIL(count_event(&st, "status", "connected") == 1, 2000);
    mock_mon_t *m = M[0].cur;
    m->sink.status(m->sink.ud, SP_PSTATUS_NEEDS_REAUTH, "token refused");
    cr_assert_eq(count_event(&st, "status", "needs_reauth"), 1);
    WAIT_UNTIL(M[0].stops == 1, 2000);
    cr_assert_eq(M[0].stops, 1);
    WAIT_UNTIL(false, 60);
    cr_assert_eq(M[0].starts, 1, "no restart while the account needs reauth");
    sp_psup_account_status(S, U1, "mock", SP_PSTATUS_CONNECTED, NULL);
    WAIT_UNTIL(M[0].starts == 2, 2000);
    WAIT_UNTIL(count_event(&st, "status", "connected") == 2, 2000);
    cr_assert_eq(count_event(&st, "status", "connected"), 2);
    sp_psup_account_status(S, U1, "mock", SP_PSTATUS_STOPPED, NULL);
    cr_assert_eq(M[0].stops, 2);
    sp_psup_stream_ended(S, U1, S1);
    rec_off(&st);
}

Test(psup, free_while_calls_are_pending)
{
    start_psup();
    const char *plats[] = { "mock", "mock2" };
    sp_psup_stream_started(S, U1, S1, "t", NULL, plats, 2);
    WAIT_UNTIL(M[0].cur && M[1].cur, 2000);
    chat_res_t c = { 0 };
    sp_psup_send_chat(S, U1, "bye", NULL, 0, NULL, on_chat, &c);
    sp_psup_free(S); /* the sends are still out */
    S = NULL;
    cr_assert_eq(c.done, 1);
    cr_assert_eq(c.err, SP_ECANCELED);
    WAIT_UNTIL(false, 50); /* the late answers find the op orphaned */
    cr_assert_eq(c.done, 1);
    start_psup();
}

Test(psup, refused_token_on_a_call_is_needs_reauth_then_rechecked)
{
    E.cfg.platform_viewers_interval = 40;
    start_psup();
    rec_t st;
    rec_on(&st, "platform:mock:" U1);
    const char *plats[] = { "mock" };
    M[0].viewers_err = SP_EAUTH; /* the first viewers call: the token is refused */
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 1);
    WAIT_UNTIL(count_event(&st, "status", "needs_reauth") == 1, 3000);
    cr_assert_eq(count_event(&st, "status", "needs_reauth"), 1);
    WAIT_UNTIL(M[0].stops == 1, 2000);
    cr_assert_eq(M[0].stops, 1);
    /* re-checked at the sampling pace: the account is fine again, the monitor comes back */
    WAIT_UNTIL(M[0].starts == 2 && count_event(&st, "status", "connected") == 2, 3000);
    cr_assert_eq(M[0].starts, 2);
    cr_assert_eq(count_event(&st, "status", "connected"), 2);
    cr_assert_eq(count_event(&st, "status", "needs_reauth"), 1);
    sp_psup_stream_ended(S, U1, S1);
    rec_off(&st);
}

Test(psup, account_disconnected_while_live_stops_its_monitor)
{
    E.cfg.platform_viewers_interval = 30;
    start_psup();
    rec_t st, st2;
    rec_on(&st, "platform:mock:" U1);
    rec_on(&st2, "platform:mock2:" U1);
    const char *plats[] = { "mock", "mock2" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 2);
    WAIT_UNTIL(count_event(&st, "status", "connected") == 1 &&
                   count_event(&st2, "status", "connected") == 1, 2000);
    ACC[0][0].disconnected = true; /* DELETE /api/platforms/mock */
    connected[0][0] = false;
    WAIT_UNTIL(count_event(&st, "status", "stopped") == 1, 2000);
    cr_assert_eq(count_event(&st, "status", "stopped"), 1);
    cr_assert_eq(M[0].stops, 1);
    cr_assert_eq(M[1].stops, 0, "the other platform runs on");
    WAIT_UNTIL(false, 100);
    cr_assert_eq(M[0].starts, 1, "not restarted");
    sp_psup_stream_ended(S, U1, S1);
    cr_assert_eq(count_event(&st, "status", "stopped"), 1, "stopped once");
    cr_assert_eq(count_event(&st2, "status", "stopped"), 1);
    rec_off(&st);
    rec_off(&st2);
}

/* The supervisor's SQL on PostgreSQL: the events upsert (ON CONFLICT DO NOTHING), the samples
   and the peak/avg UPDATE, the reply parent looked up in events. */
Test(psup_pg, persistence_on_postgres, .init = setup_pg, .fini = teardown, .timeout = 60)
{
    E.cfg.platform_viewers_interval = 40;
    start_psup();
    tres_t r = tq(&E,
                  "INSERT INTO streams (id, user_id, state, started_at) VALUES ($1, $2, "
                  "'streaming', 0)",
                  json_pack("[s, s]", S1, U1));
    cr_assert_eq(r.err, 0);
    tres_free(&r);
    rec_t vs;
    rec_on(&vs, "user_stream:" U1 ":statistics");
    M[0].viewers = 3;
    M[0].viewers_step = 4; /* 3, 7, 11, ... */
    const char *plats[] = { "mock" };
    sp_psup_stream_started(S, U1, S1, NULL, NULL, plats, 1);
    WAIT_UNTIL(M[0].cur != NULL, 3000);
    sp_chat_msg_t c;
    chat(&c, "mock", "pg-1", "hello pg");
    M[0].cur->sink.chat(M[0].cur->sink.ud, &c);
    sp_chat_msg_clear(&c);
    sp_alert_t a;
    alert(&a, "mock", "pg-a1");
    M[0].cur->sink.alert(M[0].cur->sink.ud, &a);
    sp_alert_clear(&a);
    WAIT_UNTIL(json_array_size(vs.items) >= 3, 5000);
    sp_psup_stream_ended(S, U1, S1);
    size_t n = json_array_size(vs.items);
    cr_assert_geq(n, 3);
    int64_t peak = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = json_integer_value(
            json_object_get(json_object_get(json_array_get(vs.items, i), "payload"), "total"));
        cr_assert_eq(t, 3 + 4 * (int64_t)i);
        peak = t > peak ? t : peak;
        sum += t;
    }
    int64_t avg = (sum * 2 + (int64_t)n) / (2 * (int64_t)n);
    WAIT_UNTIL(db_count("SELECT peak_viewers FROM streams WHERE id = '" S1 "'") == peak, 5000);
    cr_assert_eq(db_count("SELECT peak_viewers FROM streams WHERE id = '" S1 "'"), peak);
    cr_assert_eq(db_count("SELECT avg_viewers FROM streams WHERE id = '" S1 "'"), avg);
    cr_assert_eq(db_count("SELECT COUNT(*) FROM events WHERE platform = 'mock' AND "
                          "platform_event_id IN ('pg-1', 'pg-a1')"), 2);

    /* a second supervisor (memory gone): the same id again stays one row */
    sp_psup_free(S);
    start_psup();
    sp_psup_stream_started(S, U1, S2, NULL, NULL, plats, 1);
    WAIT_UNTIL(M[0].starts == 2 && M[0].cur != NULL, 3000);
    chat(&c, "mock", "pg-1", "hello pg");
    M[0].cur->sink.chat(M[0].cur->sink.ud, &c);
    sp_chat_msg_clear(&c);
    WAIT_UNTIL(false, 150);
    cr_assert_eq(db_count("SELECT COUNT(*) FROM events WHERE platform_event_id = 'pg-1'"), 1);
    sp_psup_stream_ended(S, U1, S2);

    /* the reply parent, from events */
    chat_res_t cr = { 0 };
    sp_psup_send_chat(S, U1, "pg reply", NULL, 0, "pg-1", on_chat, &cr);
    WAIT_UNTIL(cr.done, 3000);
    cr_assert_eq(cr.err, 0);
    cr_assert_str_eq(M[0].last_reply, "pg-1");
    json_decref(cr.res);
    rec_off(&vs);
}
