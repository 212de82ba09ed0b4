/* The Twitch EventSub monitor (twitch/monitor.c) against tests/fakes/twitch.mjs's EventSub
 * WebSocket, started per test from C. No .timeout (Criterion 2.4.1 leaks with it): every wait
 * is bounded by tw_spin's deadline. Teardown closes the loop and fails on a handle left open;
 * ASan/LSan catch anything the monitor leaks. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/sp_err.h"
#include "core/sp_time.h"
#include "fake_twitch.h"
#include "platforms/twitch/monitor.h"
#include "platforms/twitch/twitch.h"
#include "tw_harness.h"

/* ASan's allocator statistics (gcc ships no header for it); mallinfo2 without ASan. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t heap_in_use(void)
{
    if (__sanitizer_get_current_allocated_bytes)
        return __sanitizer_get_current_allocated_bytes();
    return mallinfo2().uordblks;
}

TestSuite(twitch_monitor, .init = tw_setup, .fini = tw_teardown);

#define IDS_MAX 64

typedef struct {
    int nchat, ndeleted, nalert, nstatus, nfailed;
    int connected, needs_reauth, degraded;
    int alerts_by_type[SP_ALERT_TYPE_COUNT];
    char ids[IDS_MAX][SP_PMSG_ID_CAP];
    int nids;
    char texts[IDS_MAX][64];
    sp_platform_status_t last_status;
    char last_error[SP_PMSG_ERROR_CAP];
    bool dup;
    sp_platform_monitor_t *stop_me; /* stopped from inside the sink on the first chat */
} rec_t;

static void remember(rec_t *r, const char *id)
{
    for (int i = 0; i < r->nids; i++) {
        if (strcmp(r->ids[i], id) == 0)
            r->dup = true;
    }
    if (r->nids < IDS_MAX)
        snprintf(r->ids[r->nids++], SP_PMSG_ID_CAP, "%s", id);
}

static void s_chat(void *ud, const sp_chat_msg_t *m)
{
    rec_t *r = ud;
    cr_assert_str_eq(m->platform, "twitch");
    if (r->nchat < IDS_MAX)
        snprintf(r->texts[r->nchat], sizeof r->texts[0], "%.63s", m->text);
    r->nchat++;
    remember(r, m->id);
    if (r->stop_me) {
        sp_platform_monitor_t *m2 = r->stop_me;
        r->stop_me = NULL;
        sp_platform_twitch.monitor_stop(m2);
    }
}

static void s_deleted(void *ud, const sp_chat_deletion_t *d)
{
    rec_t *r = ud;
    r->ndeleted++;
    remember(r, d->id);
}

static void s_alert(void *ud, const sp_alert_t *a)
{
    rec_t *r = ud;
    cr_assert_str_eq(a->platform, "twitch");
    r->nalert++;
    if (a->type < SP_ALERT_TYPE_COUNT)
        r->alerts_by_type[a->type]++;
    remember(r, a->id);
}

static void s_status(void *ud, sp_platform_status_t st, const char *error)
{
    rec_t *r = ud;
    r->nstatus++;
    r->last_status = st;
    snprintf(r->last_error, sizeof r->last_error, "%s", error ? error : "");
    r->connected += st == SP_PSTATUS_CONNECTED;
    r->needs_reauth += st == SP_PSTATUS_NEEDS_REAUTH;
    r->degraded += st == SP_PSTATUS_DEGRADED;
}

static void s_failed(void *ud, const char *why)
{
    (void)why;
    ((rec_t *)ud)->nfailed++;
}

static sp_platform_monitor_t *start(rec_t *r)
{
    sp_platform_sink_t sink = { .chat = s_chat, .chat_deleted = s_deleted, .alert = s_alert,
                                .status = s_status, .failed = s_failed, .ud = r };
    sp_platform_monitor_t *m = sp_platform_twitch.monitor_start(&tw.env, tw.acct, &sink);
    cr_assert_not_null(m);
    cr_assert_eq(r->nstatus, 0, "nothing reported from inside monitor_start");
    return m;
}

static int enabled_subs(void)
{
    return fake_tw_count(&tw.fake, "subscriptions", "\"status\":\"enabled\"");
}

/* Runs the loop until the fake shows n enabled subscriptions (the monitor is live). */
static void wait_live(rec_t *r, int connected, int subs)
{
    uint64_t end = sp_mono_ms() + 15000;
    while (sp_mono_ms() < end && (r->connected < connected || enabled_subs() < subs))
        tw_run_for(50);
    cr_assert_geq(r->connected, connected, "never connected (last status %d %s)",
                  r->last_status, r->last_error);
    cr_assert_eq(enabled_subs(), subs);
}

static void emit(const char *type, const char *overrides, int duplicates)
{
    char args[1024];
    snprintf(args, sizeof args, "[\"%s\",%s,{\"duplicates\":%d}]", type,
             overrides ? overrides : "{}", duplicates);
    cr_assert_eq(fake_tw_call(&tw.fake, "emit", args, NULL), 200);
}

static int session_welcomes(void)
{
    char *out = NULL;
    int n = -1;
    if (fake_tw_get(&tw.fake, "sessions", &out) == 200 && out) {
        json_t *root = json_loads(out, 0, NULL);
        size_t i;
        json_t *s;
        n = 0;
        json_array_foreach(root, i, s) {
            if (strcmp(json_string_value(json_object_get(s, "status")), "closed") != 0)
                n += (int)json_integer_value(json_object_get(s, "welcomes"));
        }
        json_decref(root);
    }
    free(out);
    return n;
}

static int open_sessions(void)
{
    return fake_tw_count(&tw.fake, "sessions", "\"status\":\"connected\"") +
           fake_tw_count(&tw.fake, "sessions", "\"status\":\"reconnecting\"");
}

Test(twitch_monitor, connects_subscribes_every_type)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    const char *types[] = { "channel.chat.message", "channel.follow", "channel.subscribe",
                            "channel.subscription.gift", "channel.subscription.message",
                            "channel.cheer", "channel.raid", "stream.online",
                            "stream.offline" };
    char needle[128];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        snprintf(needle, sizeof needle, "\"type\":\"%s\"", types[i]);
        cr_assert_eq(fake_tw_count(&tw.fake, "subscriptions", needle), 1, "%s", types[i]);
    }
    cr_assert_eq(fake_tw_count(&tw.fake, "subscriptions",
                               "\"to_broadcaster_user_id\":\"" FAKE_TW_USER "\""), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "subscriptions",
                               "\"moderator_user_id\":\"" FAKE_TW_USER "\""), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"client-id\":\"" FAKE_TW_CLIENT_ID "\""), 10);
    cr_assert_eq(r.last_status, SP_PSTATUS_CONNECTED);
    size_t sz = sp_twitch_monitor_size(m);
    cr_assert_lt(sz, 8 * 1024, "monitor struct %zu bytes", sz);
    sp_platform_twitch.monitor_stop(m);
    tw_run_for(100);
    cr_assert_eq(r.nfailed, 0);
}

Test(twitch_monitor, every_event_type_reaches_the_sink_once)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    emit("channel.chat.message", NULL, 0);
    emit("channel.follow", NULL, 1); /* sent twice with one id */
    emit("channel.subscribe", NULL, 0);
    emit("channel.subscription.gift", NULL, 2);
    emit("channel.subscription.message", NULL, 0);
    emit("channel.cheer", NULL, 0);
    emit("channel.raid", NULL, 0);
    emit("stream.online", NULL, 0);
    emit("stream.offline", NULL, 0);
    cr_assert_eq(fake_tw_call(&tw.fake, "duplicateNext", "[1]", NULL), 200);
    emit("channel.chat.message", "{\"message\":{\"text\":\"second\",\"fragments\":[]}}", 0);
    uint64_t end = sp_mono_ms() + 10000;
    while (sp_mono_ms() < end && (r.nchat < 2 || r.nalert < 6))
        tw_run_for(20);
    tw_run_for(300); /* a duplicate would have arrived by now */
    cr_assert_eq(r.nchat, 2);
    cr_assert_eq(r.nalert, 6);
    cr_assert_eq(r.alerts_by_type[SP_ALERT_FOLLOW], 1);
    cr_assert_eq(r.alerts_by_type[SP_ALERT_SUBSCRIPTION], 2);
    cr_assert_eq(r.alerts_by_type[SP_ALERT_GIFT_SUBSCRIPTION], 1);
    cr_assert_eq(r.alerts_by_type[SP_ALERT_CHEER], 1);
    cr_assert_eq(r.alerts_by_type[SP_ALERT_RAID], 1);
    cr_assert_not(r.dup, "an id reached the sink twice");
    cr_assert_str_eq(r.texts[0], "Hi chat Kappa @streamer");
    cr_assert_str_eq(r.texts[1], "second");
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"notify_channel.follow\":1"), 1);
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, session_reconnect_no_loss_no_dup)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    emit("channel.chat.message", "{\"message\":{\"text\":\"before\",\"fragments\":[]}}", 0);
    cr_assert_eq(fake_tw_call(&tw.fake, "sendReconnect", "[]", NULL), 200);
    /* sent while the migration may still be under way: on the old or the new socket */
    emit("channel.chat.message", "{\"message\":{\"text\":\"during\",\"fragments\":[]}}", 1);
    uint64_t end = sp_mono_ms() + 10000;
    while (sp_mono_ms() < end && session_welcomes() < 2)
        tw_run_for(20);
    cr_assert_eq(session_welcomes(), 2, "the monitor never reached the reconnect url");
    tw_run_for(200);
    emit("channel.chat.message", "{\"message\":{\"text\":\"after\",\"fragments\":[]}}", 0);
    end = sp_mono_ms() + 10000;
    while (sp_mono_ms() < end && r.nchat < 3)
        tw_run_for(20);
    tw_run_for(300);
    cr_assert_eq(r.nchat, 3);
    cr_assert_not(r.dup);
    cr_assert_str_eq(r.texts[0], "before");
    cr_assert_str_eq(r.texts[1], "during");
    cr_assert_str_eq(r.texts[2], "after");
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"subscriptions_created\":10"), 1,
                 "subscriptions carried over, none re-created");
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"ws_reconnects\":1"), 1);
    cr_assert_eq(open_sessions(), 1);
    cr_assert_eq(r.nfailed, 0);
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, dropped_socket_fresh_session_resubscribes)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    cr_assert_eq(fake_tw_call(&tw.fake, "dropSocket", "[]", NULL), 200);
    wait_live(&r, 2, 10); /* backoff (base 1 s, jitter) then a fresh session */
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"subscriptions_created\":20"), 1);
    emit("channel.raid", NULL, 0);
    uint64_t end = sp_mono_ms() + 5000;
    while (sp_mono_ms() < end && r.nalert < 1)
        tw_run_for(20);
    cr_assert_eq(r.nalert, 1);
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, silent_socket_reconnects)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    cr_assert_eq(fake_tw_call(&tw.fake, "setSilent", "[null,true]", NULL), 200);
    /* keepalive_timeout_seconds 10 (the minimum) + 5 s margin, then backoff */
    uint64_t t0 = sp_mono_ms();
    uint64_t end = t0 + 30000;
    while (sp_mono_ms() < end && r.connected < 2)
        tw_run_for(100);
    cr_assert_eq(r.connected, 2, "no reconnect after the keepalive timeout");
    cr_assert_geq(sp_mono_ms() - t0, 9000, "reconnected before the keepalive timeout");
    wait_live(&r, 2, 10);
    emit("channel.follow", NULL, 0);
    end = sp_mono_ms() + 5000;
    while (sp_mono_ms() < end && r.nalert < 1)
        tw_run_for(20);
    cr_assert_eq(r.nalert, 1);
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, authorization_revoked_needs_reauth)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    char *out = NULL;
    cr_assert_eq(fake_tw_get(&tw.fake, "subscriptions", &out), 200);
    json_t *subs = json_loads(out, 0, NULL);
    free(out);
    const char *id = json_string_value(json_object_get(json_array_get(subs, 0), "id"));
    cr_assert_not_null(id);
    char args[256];
    snprintf(args, sizeof args, "[\"%s\",\"authorization_revoked\"]", id);
    json_decref(subs);
    cr_assert_eq(fake_tw_call(&tw.fake, "revoke", args, NULL), 200);
    uint64_t end = sp_mono_ms() + 5000;
    while (sp_mono_ms() < end && r.needs_reauth < 1)
        tw_run_for(20);
    cr_assert_eq(r.needs_reauth, 1);
    cr_assert_eq(r.last_status, SP_PSTATUS_NEEDS_REAUTH);
    tw_run_for(1500);
    cr_assert_eq(open_sessions(), 0, "the monitor closed its socket");
    cr_assert_eq(r.connected, 1, "and does not reconnect on its own");
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, token_needs_reauth_at_subscribe)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "failNextRefresh", "[1]", NULL), 200);
    char args[256];
    snprintf(args, sizeof args, "[\"%s\"]", tw.access);
    cr_assert_eq(fake_tw_call(&tw.fake, "expireToken", args, NULL), 200);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    uint64_t end = sp_mono_ms() + 10000;
    while (sp_mono_ms() < end && r.needs_reauth < 1)
        tw_run_for(20);
    cr_assert_eq(r.needs_reauth, 1);
    cr_assert_eq(enabled_subs(), 0);
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, stop_while_connecting_and_from_the_sink)
{
    rec_t a = { 0 };
    sp_platform_monitor_t *m1 = start(&a);
    sp_platform_twitch.monitor_stop(m1); /* before START ran */
    rec_t b = { 0 };
    sp_platform_monitor_t *m2 = start(&b);
    tw_run_for(5); /* connecting */
    sp_platform_twitch.monitor_stop(m2);
    rec_t c = { 0 };
    sp_platform_monitor_t *m3 = start(&c);
    wait_live(&c, 1, 10);
    c.stop_me = m3;
    emit("channel.chat.message", NULL, 0);
    emit("channel.chat.message", NULL, 0);
    uint64_t end = sp_mono_ms() + 5000;
    while (sp_mono_ms() < end && c.nchat < 1)
        tw_run_for(20);
    tw_run_for(500);
    cr_assert_eq(c.nchat, 1, "nothing reported after the stop");
    cr_assert_eq(a.nstatus + a.nchat, 0);
    cr_assert_eq(open_sessions(), 0);
    /* teardown: uv_loop_close fails on a handle left behind; LSan on a leak */
}

Test(twitch_monitor, memory_per_monitor)
{
    /* What N live monitors hold, measured as the heap released by stopping them (the shared
     * HTTP client's connection cache stays, so it is not counted against the monitors). */
    enum { N = 10 };
    rec_t r[N];
    memset(r, 0, sizeof r);
    sp_platform_monitor_t *m[N];
    for (int i = 0; i < N; i++)
        m[i] = start(&r[i]);
    uint64_t end = sp_mono_ms() + 20000;
    int live = 0;
    while (sp_mono_ms() < end && live < N) {
        tw_run_for(50);
        live = 0;
        for (int i = 0; i < N; i++)
            live += r[i].connected > 0;
    }
    cr_assert_eq(live, N);
    while (sp_mono_ms() < end && enabled_subs() < 9 * N)
        tw_run_for(50);
    emit("channel.chat.message", NULL, 0); /* one message through each */
    while (sp_mono_ms() < end && r[N - 1].nchat < 1)
        tw_run_for(20);
    tw_run_for(300);
    size_t with = heap_in_use();
    for (int i = 0; i < N; i++)
        sp_platform_twitch.monitor_stop(m[i]);
    tw_run_for(300);
    size_t without = heap_in_use();
    size_t per = with > without ? (with - without) / N : 0;
    cr_log_info("memory per live Twitch monitor (ws://): %zu bytes", per);
    fprintf(stderr, "twitch monitor: %zu bytes per live monitor (ws://)\n", per);
    cr_assert_gt(per, 4096, "the measure saw the monitors");
    cr_assert_leq(per, 32 * 1024, "%zu bytes per monitor", per);
}


Test(twitch_monitor, expired_token_refreshed_while_subscribing)
{
    char args[256];
    snprintf(args, sizeof args, "[\"%s\"]", tw.access);
    cr_assert_eq(fake_tw_call(&tw.fake, "expireToken", args, NULL), 200);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    cr_assert_eq(tw.refreshes, 1, "ten subscription calls, one refresh");
    cr_assert_eq(r.needs_reauth, 0);
    sp_platform_twitch.monitor_stop(m);
}

Test(twitch_monitor, close_4000_fresh_session)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_live(&r, 1, 10);
    cr_assert_eq(fake_tw_call(&tw.fake, "closeSession", "[null,4000]", NULL), 200);
    wait_live(&r, 2, 10);
    cr_assert_eq(open_sessions(), 1);
    emit("channel.cheer", NULL, 0);
    uint64_t end = sp_mono_ms() + 5000;
    while (sp_mono_ms() < end && r.nalert < 1)
        tw_run_for(20);
    cr_assert_eq(r.nalert, 1);
    cr_assert_eq(r.alerts_by_type[SP_ALERT_CHEER], 1);
    sp_platform_twitch.monitor_stop(m);
}
