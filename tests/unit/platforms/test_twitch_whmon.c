/* The Twitch webhook-mode EventSub monitor and the app access token (twitch/whmon.c) against
 * tests/fakes/twitch.mjs. The callback is the fake's own base URL (its verification POST gets a
 * 404 there: the route that answers challenges is the server's, tested by integration). Every
 * wait is bounded by a deadline; teardown fails on a handle left open, ASan/LSan on a leak. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/sp_err.h"
#include "core/sp_time.h"
#include "fake_twitch.h"
#include "platforms/twitch/eventsub.h"
#include "platforms/twitch/twitch.h"
#include "platforms/twitch/whmon.h"
#include "tw_harness.h"

#define SECRET "whsecret-0123456789"

static char g_public[160];

static void wh_setup(void)
{
    tw_setup();
    sp_twitch_app_token_reset();
    snprintf(g_public, sizeof g_public, "%s", tw.fake.base);
    tw.cfg.public_url = g_public;
    tw.cfg.twitch_webhook_secret = SECRET;
    tw.cfg.twitch_eventsub_transport = "webhook";
}

static void wh_teardown(void)
{
    uint64_t end = sp_mono_ms() + 10000;
    while (sp_twitch_whmon_calls_pending() > 0 && sp_mono_ms() < end)
        tw_run_for(20);
    cr_assert_eq(sp_twitch_whmon_calls_pending(), 0, "a subscription call never ended");
    tw_teardown();
    sp_twitch_app_token_reset();
}

TestSuite(twitch_whmon, .init = wh_setup, .fini = wh_teardown);

/* ---- the app access token ----------------------------------------------------------------- */

typedef struct {
    int n, errs;
    char first[128];
    bool differ;
} tokrec_t;

static void on_tok(int err, const char *token, void *ud)
{
    tokrec_t *r = ud;
    r->n++;
    if (err) {
        r->errs++;
        return;
    }
    if (!r->first[0])
        snprintf(r->first, sizeof r->first, "%s", token);
    else if (strcmp(r->first, token) != 0)
        r->differ = true;
}

static int grants(void)
{
    return fake_tw_count(&tw.fake, "calls", "grant_type=client_credentials");
}

Test(twitch_whmon, app_token_one_grant_for_20_concurrent_callers)
{
    tokrec_t r = { 0 };
    for (int i = 0; i < 20; i++)
        cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &r), 0);
    cr_assert_eq(r.n, 0, "nobody answered before the grant");
    tw_spin(&r.n, 20, 10000);
    cr_assert_eq(r.n, 20);
    cr_assert_eq(r.errs, 0);
    cr_assert_not(r.differ, "every caller got the same token");
    cr_assert_eq(grants(), 1);
    sp_token_stats_t st;
    sp_twitch_app_token_stats(&st);
    cr_assert_eq(st.refreshes, 1);
    cr_assert_eq(st.waited, 20);
    /* cached: a later caller is answered at once, no new grant */
    tokrec_t r2 = { 0 };
    cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &r2), 0);
    cr_assert_eq(r2.n, 1);
    cr_assert_str_eq(r2.first, r.first);
    cr_assert_eq(grants(), 1);
    /* the grant's body carried the client credentials, never a user token */
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "client_id=" FAKE_TW_CLIENT_ID), 1);
}

Test(twitch_whmon, app_token_expiry_means_a_new_grant)
{
    tokrec_t r = { 0 };
    cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &r), 0);
    tw_spin(&r.n, 1, 10000);
    cr_assert_eq(r.errs, 0);
    cr_assert_eq(grants(), 1);
    /* the fake's app tokens live 5011271 s: four minutes before the end it is renewed */
    int64_t late = sp_wall_ms() + (5011271LL - 240) * 1000;
    tokrec_t r2 = { 0 };
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sp_twitch_app_token(&tw.env, late, NULL, on_tok, &r2), 0);
    tw_spin(&r2.n, 5, 10000);
    cr_assert_eq(r2.n, 5);
    cr_assert_eq(r2.errs, 0);
    cr_assert_not(r2.differ);
    cr_assert_str_neq(r2.first, r.first, "a new token after expiry");
    cr_assert_eq(grants(), 2, "one grant for the five callers");
}

Test(twitch_whmon, app_token_unconfigured_or_refused)
{
    tokrec_t r = { 0 };
    tw.cfg.twitch_client_secret = NULL;
    cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &r), SP_ECONFIG);
    cr_assert_eq(r.n, 0);
    tw.cfg.twitch_client_secret = "wrong-secret-0123456789";
    cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &r), 0);
    tw_spin(&r.n, 1, 10000);
    cr_assert_eq(r.errs, 1, "a refused client is an error for the caller");
    /* not sticky: the next caller asks again, and gets one once the config is right */
    tw.cfg.twitch_client_secret = tw.client_secret;
    tokrec_t r2 = { 0 };
    cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &r2), 0);
    tw_spin(&r2.n, 1, 10000);
    cr_assert_eq(r2.errs, 0);
    cr_assert_eq(grants(), 2);
}

/* ---- the monitor ----------------------------------------------------------------------------- */

typedef struct {
    int nstatus, nfailed, connected, connecting, degraded, needs_reauth, nchat;
    sp_platform_status_t last;
    char last_error[SP_PMSG_ERROR_CAP];
} rec_t;

static void s_status(void *ud, sp_platform_status_t st, const char *error)
{
    rec_t *r = ud;
    r->nstatus++;
    r->last = st;
    snprintf(r->last_error, sizeof r->last_error, "%s", error ? error : "");
    r->connected += st == SP_PSTATUS_CONNECTED;
    r->connecting += st == SP_PSTATUS_CONNECTING;
    r->degraded += st == SP_PSTATUS_DEGRADED;
    r->needs_reauth += st == SP_PSTATUS_NEEDS_REAUTH;
}

static void s_failed(void *ud, const char *why)
{
    (void)why;
    ((rec_t *)ud)->nfailed++;
}

static void s_chat(void *ud, const sp_chat_msg_t *m)
{
    (void)m;
    ((rec_t *)ud)->nchat++;
}

static sp_platform_monitor_t *start(rec_t *r)
{
    sp_platform_sink_t sink = { .chat = s_chat, .status = s_status, .failed = s_failed,
                                .ud = r };
    sp_platform_monitor_t *m = sp_platform_twitch.monitor_start(&tw.env, tw.acct, &sink);
    cr_assert_not_null(m);
    cr_assert(sp_twitch_whmon_owns(m), "webhook transport: the webhook monitor");
    cr_assert_eq(r->nstatus, 0, "nothing reported from inside monitor_start");
    return m;
}

static int webhook_subs(void)
{
    return fake_tw_count(&tw.fake, "subscriptions", "\"method\":\"webhook\"");
}

static int ended(const rec_t *r)
{
    return r->connected + r->degraded + r->needs_reauth + r->nfailed;
}

static void wait_ended(rec_t *r)
{
    uint64_t end = sp_mono_ms() + 10000;
    while (ended(r) == 0 && sp_mono_ms() < end)
        tw_run_for(20);
    cr_assert_eq(ended(r), 1, "one outcome (last status %d %s)", r->last, r->last_error);
}

static void stop_and_drain(sp_platform_monitor_t *m)
{
    sp_platform_twitch.monitor_stop(m);
    uint64_t end = sp_mono_ms() + 10000;
    while (sp_twitch_whmon_calls_pending() > 0 && sp_mono_ms() < end)
        tw_run_for(20);
    cr_assert_eq(sp_twitch_whmon_calls_pending(), 0);
}

Test(twitch_whmon, creates_every_type_by_webhook_then_deletes_them)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_ended(&r);
    cr_assert_eq(r.connecting, 1);
    cr_assert_eq(r.connected, 1, "%s", r.last_error);
    cr_assert_eq(r.last, SP_PSTATUS_CONNECTED);
    cr_assert_eq(sp_twitch_whmon_created(m), SP_TWITCH_SUB_COUNT);
    cr_assert_eq(webhook_subs(), SP_TWITCH_SUB_COUNT);
    char needle[256];
    snprintf(needle, sizeof needle, "\"callback\":\"%s/webhooks/twitch\"", g_public);
    cr_assert_eq(fake_tw_count(&tw.fake, "subscriptions", needle), SP_TWITCH_SUB_COUNT);
    for (unsigned i = 0; i < SP_TWITCH_SUB_COUNT; i++) {
        snprintf(needle, sizeof needle, "\"type\":\"%s\"", sp_twitch_sub_type(i));
        cr_assert_eq(fake_tw_count(&tw.fake, "subscriptions", needle), 1, "%s",
                     sp_twitch_sub_type(i));
    }
    /* the fake refuses a webhook transport with a user token: these went with the app token,
     * and Client-Id on each */
    cr_assert_eq(grants(), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"client-id\":\"" FAKE_TW_CLIENT_ID "\""),
                 SP_TWITCH_SUB_COUNT);
    cr_assert_eq(fake_tw_count(&tw.fake, "sessions", "\"id\""), 0, "no EventSub WebSocket");
    stop_and_drain(m);
    cr_assert_eq(webhook_subs(), 0, "stop deleted every subscription it created");
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"method\":\"DELETE\""),
                 SP_TWITCH_SUB_COUNT);
    cr_assert_eq(r.nstatus, 2, "nothing reported after the stop");
    cr_assert_eq(r.nfailed, 0);
}

Test(twitch_whmon, a_401_renews_the_app_token_once_and_retries)
{
    tokrec_t t = { 0 };
    cr_assert_eq(sp_twitch_app_token(&tw.env, 0, NULL, on_tok, &t), 0);
    tw_spin(&t.n, 1, 10000);
    cr_assert_eq(t.errs, 0);
    char args[256];
    snprintf(args, sizeof args, "[\"%s\"]", t.first);
    cr_assert_eq(fake_tw_call(&tw.fake, "expireToken", args, NULL), 200);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_ended(&r);
    cr_assert_eq(r.connected, 1, "%s", r.last_error);
    cr_assert_eq(webhook_subs(), SP_TWITCH_SUB_COUNT);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"status\":401"), SP_TWITCH_SUB_COUNT);
    cr_assert_eq(grants(), 2, "ten 401s with the same token: one new grant");
    stop_and_drain(m);
    cr_assert_eq(webhook_subs(), 0);
}

static void fault(int status, int count)
{
    char args[256];
    snprintf(args, sizeof args,
             "[{\"kind\":\"5xx\",\"status\":%d,\"count\":%d,\"method\":\"POST\","
             "\"pathIncludes\":\"/eventsub/subscriptions\"}]", status, count);
    cr_assert_eq(fake_tw_call(&tw.fake, "injectFault", args, NULL), 200);
}

Test(twitch_whmon, existing_subscriptions_count_as_created)
{
    fault(409, SP_TWITCH_SUB_COUNT); /* Twitch's answer when the same one exists already */
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_ended(&r);
    cr_assert_eq(r.connected, 1, "409 is ok (%s)", r.last_error);
    cr_assert_eq(sp_twitch_whmon_created(m), 0, "none of its own to delete");
    stop_and_drain(m);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"method\":\"DELETE\""), 0);
}

Test(twitch_whmon, every_type_refused_is_needs_reauth)
{
    fault(403, SP_TWITCH_SUB_COUNT);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_ended(&r);
    cr_assert_eq(r.needs_reauth, 1);
    cr_assert_str_eq(r.last_error, "subscriptions_unauthorized");
    cr_assert_eq(r.nfailed, 0);
    cr_assert_eq(webhook_subs(), 0);
    stop_and_drain(m);
}

Test(twitch_whmon, some_types_refused_is_degraded)
{
    fault(403, 1);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_ended(&r);
    cr_assert_eq(r.degraded, 1);
    cr_assert(strncmp(r.last_error, "subscription_failed:", 20) == 0, "%s", r.last_error);
    cr_assert_eq(sp_twitch_whmon_created(m), SP_TWITCH_SUB_COUNT - 1);
    stop_and_drain(m);
    cr_assert_eq(webhook_subs(), 0);
}

Test(twitch_whmon, none_created_is_a_failure_to_restart)
{
    fault(400, SP_TWITCH_SUB_COUNT);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    wait_ended(&r);
    cr_assert_eq(r.nfailed, 1);
    cr_assert_eq(r.connected + r.needs_reauth + r.degraded, 0);
    stop_and_drain(m);
}

Test(twitch_whmon, stopped_while_creating_deletes_what_arrives_later)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "setDelay", "[300]", NULL), 200);
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    uint64_t end = sp_mono_ms() + 10000;
    /* the grant (delayed) then the POSTs (delayed): stop once the POSTs are out */
    while (fake_tw_count(&tw.fake, "calls", "/eventsub/subscriptions") < SP_TWITCH_SUB_COUNT &&
           sp_mono_ms() < end)
        tw_run_for(10);
    cr_assert_eq(webhook_subs(), 0, "no answer yet");
    sp_platform_twitch.monitor_stop(m);
    cr_assert_gt(sp_twitch_whmon_calls_pending(), 0, "creations still in flight");
    end = sp_mono_ms() + 10000;
    while ((sp_twitch_whmon_calls_pending() > 0 ||
            fake_tw_count(&tw.fake, "calls", "\"method\":\"DELETE\"") < SP_TWITCH_SUB_COUNT) &&
           sp_mono_ms() < end)
        tw_run_for(20);
    cr_assert_eq(sp_twitch_whmon_calls_pending(), 0);
    cr_assert_eq(webhook_subs(), 0, "each late creation was deleted");
    cr_assert_eq(r.nstatus, 1, "connecting only: nothing after the stop");
    cr_assert_eq(r.nfailed, 0);
}

Test(twitch_whmon, stop_before_start_sends_nothing)
{
    rec_t r = { 0 };
    sp_platform_monitor_t *m = start(&r);
    sp_platform_twitch.monitor_stop(m);
    tw_run_for(100);
    cr_assert_eq(r.nstatus, 0);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "/eventsub/subscriptions"), 0);
    cr_assert_eq(grants(), 0);
}

Test(twitch_whmon, transport_choice)
{
    sp_config_t c;
    memset(&c, 0, sizeof c);
    c.public_url = "https://sp.example";
    cr_assert_not(sp_config_twitch_webhook(&c), "auto without a secret: websocket");
    c.twitch_webhook_secret = SECRET;
    cr_assert(sp_config_twitch_webhook(&c), "auto, secret and https: webhook");
    c.twitch_eventsub_transport = "auto";
    cr_assert(sp_config_twitch_webhook(&c));
    c.public_url = "http://sp.example";
    cr_assert_not(sp_config_twitch_webhook(&c), "auto with plain http: websocket");
    c.twitch_eventsub_transport = "webhook";
    cr_assert(sp_config_twitch_webhook(&c), "forced");
    c.public_url = "https://sp.example";
    c.twitch_eventsub_transport = "websocket";
    cr_assert_not(sp_config_twitch_webhook(&c), "forced");
    /* the vtable follows it: websocket here is the EventSub WebSocket monitor */
    tw.cfg.twitch_eventsub_transport = "websocket";
    rec_t r = { 0 };
    sp_platform_sink_t sink = { .status = s_status, .failed = s_failed, .ud = &r };
    sp_platform_monitor_t *m = sp_platform_twitch.monitor_start(&tw.env, tw.acct, &sink);
    cr_assert_not_null(m);
    cr_assert_not(sp_twitch_whmon_owns(m));
    sp_platform_twitch.monitor_stop(m);
    tw_run_for(50);
    /* webhook without a secret cannot start */
    tw.cfg.twitch_eventsub_transport = "webhook";
    tw.cfg.twitch_webhook_secret = NULL;
    cr_assert_null(sp_platform_twitch.monitor_start(&tw.env, tw.acct, &sink));
}
