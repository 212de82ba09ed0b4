/* The Twitch client (twitch/twitch.c, sp_platform.c) against tests/fakes/twitch.mjs, started
 * per test from C. No .timeout (Criterion 2.4.1 leaks in the runner with it): every wait is
 * bounded by spin()'s deadline. The monitor tests are in test_twitch_monitor.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "fake_twitch.h"
#include "net/sp_curlm.h"
#include "platforms/sp_platform_int.h"
#include "platforms/twitch/twitch.h"
#include "tw_harness.h"

TestSuite(twitch_client, .init = tw_setup, .fini = tw_teardown);

/* ---- results -------------------------------------------------------------------------------- */

typedef struct {
    int calls;
    int err;
    sp_platform_identity_t who;
    char url[512], key[256];
    sp_platform_chat_result_t chat;
    bool live;
    int64_t viewers;
    char json[4096];
    uint64_t at;
} res_t;

static void on_identity(int err, const sp_platform_identity_t *who, void *ud)
{
    res_t *r = ud;
    r->calls++;
    r->err = err;
    if (who)
        r->who = *who;
}

static void on_ingest(int err, const char *url, const char *key, void *ud)
{
    res_t *r = ud;
    r->calls++;
    r->err = err;
    cr_assert_eq(err == 0, url != NULL && key != NULL);
    if (url) {
        snprintf(r->url, sizeof r->url, "%s", url);
        snprintf(r->key, sizeof r->key, "%s", key);
    }
}

static void on_chat(int err, const sp_platform_chat_result_t *c, void *ud)
{
    res_t *r = ud;
    r->calls++;
    r->err = err;
    cr_assert_not_null(c);
    r->chat = *c;
}

static void on_done(int err, void *ud)
{
    res_t *r = ud;
    r->calls++;
    r->err = err;
    r->at = sp_mono_ms();
}

static void on_viewers(int err, bool live, int64_t viewers, void *ud)
{
    res_t *r = ud;
    r->calls++;
    r->err = err;
    r->live = live;
    r->viewers = viewers;
    r->at = sp_mono_ms();
}

static void on_json(int err, json_t *cats, void *ud)
{
    res_t *r = ud;
    r->calls++;
    r->err = err;
    if (cats) {
        char *s = json_dumps(cats, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(r->json, sizeof r->json, "%s", s ? s : "");
        free(s);
    }
}

/* ---- registry and OAuth descriptor ---------------------------------------------------------- */

Test(twitch_client, registry_finds_twitch)
{
    const sp_platform_t *const *all = sp_platform_all();
    cr_assert_eq(all[0], &sp_platform_twitch);
    cr_assert_null(all[1]);
    cr_assert_eq(sp_platform_find("twitch"), &sp_platform_twitch);
    cr_assert_null(sp_platform_find("myspace"));
    cr_assert_null(sp_platform_find(NULL));
    cr_assert_str_eq(sp_platform_twitch.display_name, "Twitch");
}

Test(twitch_client, oauth_descriptor)
{
    sp_platform_oauth_t o;
    cr_assert(sp_platform_twitch.oauth(&tw.cfg, &o));
    char want[256];
    snprintf(want, sizeof want, "%s/authorize", tw.fake.auth);
    cr_assert_str_eq(o.authorize_url, want);
    snprintf(want, sizeof want, "%s/token", tw.fake.auth);
    cr_assert_str_eq(o.token_url, want);
    snprintf(want, sizeof want, "%s/revoke", tw.fake.auth);
    cr_assert_str_eq(o.revoke_url, want);
    cr_assert_str_eq(o.client_id, FAKE_TW_CLIENT_ID);
    cr_assert_str_eq(o.client_secret, FAKE_TW_CLIENT_SECRET);
    cr_assert_str_eq(o.redirect_uri, "http://localhost:8080/auth/twitch/callback");
    cr_assert_not_null(strstr(o.connect_scopes, "channel:read:stream_key"));
    cr_assert_not_null(strstr(o.connect_scopes, "user:write:chat"));
    cr_assert_not_null(strstr(o.connect_scopes, "moderator:read:followers"));
    cr_assert_str_eq(o.login_scopes, "user:read:email");
    cr_assert_not(o.pkce);
    cr_assert_str_eq(o.authorize_extra, "force_verify=true");
    char *saved = tw.cfg.twitch_client_secret;
    tw.cfg.twitch_client_secret = "";
    cr_assert_not(sp_platform_twitch.oauth(&tw.cfg, &o));
    tw.cfg.twitch_client_secret = saved;
    char h[128];
    cr_assert_eq(sp_twitch_client_id_header(&tw.cfg, h, sizeof h), 0);
    cr_assert_str_eq(h, "Client-Id: " FAKE_TW_CLIENT_ID);
}

static int g_freed;

static void free_hook(sp_platform_account_t *a)
{
    g_freed++;
    sp_token_free(a->token);
    sp_free(a);
}

Test(twitch_client, account_ref_held_while_in_flight)
{
    sp_platform_account_set_free_hook(free_hook);
    sp_platform_account_t *a = tw.acct;
    tw.acct = NULL;
    res_t r = { 0 };
    sp_platform_twitch.viewers(&tw.env, a, on_viewers, &r);
    sp_platform_account_ref(a);
    cr_assert_eq(a->refs, 3);
    sp_platform_account_unref(a);
    sp_platform_account_unref(a); /* the caller's: the call in flight still holds one */
    cr_assert_eq(g_freed, 0);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(g_freed, 1, "the last reference (the call's) freed it through the hook");
    sp_platform_account_set_free_hook(NULL);
}

/* ---- Helix calls ---------------------------------------------------------------------------- */

Test(twitch_client, lookup_reads_the_user)
{
    res_t r = { 0 };
    sp_platform_twitch.lookup(&tw.env, tw.access, on_identity, &r);
    cr_assert_eq(r.calls, 0, "never synchronous");
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0, "%s", sp_strerror(r.err));
    cr_assert_str_eq(r.who.id, FAKE_TW_USER);
    cr_assert_str_eq(r.who.login, "twitchdev");
    cr_assert_str_eq(r.who.display_name, "TwitchDev");
    cr_assert_str_eq(r.who.email, "twitchdev@example.test");
    cr_assert(r.who.email_verified);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"client-id\":\"" FAKE_TW_CLIENT_ID "\""), 1);

    res_t bad = { 0 };
    sp_platform_twitch.lookup(&tw.env, "notavalidtoken0000000000000000", on_identity, &bad);
    tw_spin(&bad.calls, 1, 10000);
    cr_assert_eq(bad.err, SP_EAUTH);
}

Test(twitch_client, ingest_url_and_key_never_logged)
{
    char logpath[] = "/tmp/sp_tw_log_XXXXXX";
    int fd = mkstemp(logpath);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(sp_log_open(SP_LOG_DEBUG, logpath), 0);
    res_t r = { 0 };
    sp_platform_twitch.ingest(&tw.env, tw.acct, on_ingest, &r);
    tw_spin(&r.calls, 1, 10000);
    sp_log_close();
    cr_assert_eq(r.err, 0, "%s", sp_strerror(r.err));
    cr_assert_str_eq(r.url, "rtmp://live.twitch.tv/app");
    char *users = NULL;
    cr_assert_eq(fake_tw_get(&tw.fake, "users", &users), 200);
    cr_assert_not_null(strstr(r.key, "live_" FAKE_TW_USER "_"));
    free(users);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "broadcaster_id\":\"" FAKE_TW_USER), 1);
    FILE *lf = fopen(logpath, "r");
    cr_assert_not_null(lf);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, lf);
    buf[n] = '\0';
    fclose(lf);
    unlink(logpath);
    cr_assert_null(strstr(buf, r.key), "the stream key reached the log");
    cr_assert_null(strstr(buf, tw.access), "the token reached the log");
}

Test(twitch_client, send_chat_sent_and_dropped)
{
    res_t r = { 0 };
    sp_platform_twitch.send_chat(&tw.env, tw.acct, "hello chat", NULL, on_chat, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0, "%s", sp_strerror(r.err));
    cr_assert(r.chat.sent);
    cr_assert_neq(r.chat.message_id[0], '\0');

    cr_assert_eq(fake_tw_call(&tw.fake, "dropNextChat", "[1]", NULL), 200);
    res_t d = { 0 };
    sp_platform_twitch.send_chat(&tw.env, tw.acct, "held message", NULL, on_chat, &d);
    tw_spin(&d.calls, 1, 10000);
    cr_assert_eq(d.err, 0);
    cr_assert_not(d.chat.sent);
    cr_assert_str_eq(d.chat.reason,
                     "Your message is being checked by mods and has not been sent.");
    cr_assert_eq(fake_tw_count(&tw.fake, "chat", "\"sender_id\":\"" FAKE_TW_USER "\""), 2);
}

Test(twitch_client, send_chat_reply_body)
{
    res_t r = { 0 };
    sp_platform_twitch.send_chat(&tw.env, tw.acct, "a reply", "parent-msg-123", on_chat, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0);
    cr_assert(r.chat.sent);
    cr_assert_eq(fake_tw_count(&tw.fake, "chat",
                               "\"reply_parent_message_id\":\"parent-msg-123\""), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "chat",
                               "\"broadcaster_id\":\"" FAKE_TW_USER "\""), 1);
}

Test(twitch_client, chat_local_limit_20_per_30s)
{
    res_t r[22];
    memset(r, 0, sizeof r);
    int done = 0;
    for (int i = 0; i < 22; i++) {
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        sp_platform_twitch.send_chat(&tw.env, tw.acct, text, NULL, on_chat, &r[i]);
    }
    for (int i = 0; i < 22; i++) {
        tw_spin(&r[i].calls, 1, 15000);
        done += r[i].calls;
    }
    cr_assert_eq(done, 22);
    int sent = 0, limited = 0;
    for (int i = 0; i < 22; i++) {
        cr_assert_eq(r[i].err, 0);
        sent += r[i].chat.sent;
        limited += !r[i].chat.sent && strcmp(r[i].chat.reason, "rate limited") == 0;
    }
    cr_assert_eq(sent, 20);
    cr_assert_eq(limited, 2);
    cr_assert_eq(fake_tw_count(&tw.fake, "chat", "\"sender_id\""), 20, "only 20 reached Twitch");
}

Test(twitch_client, update_channel_body_seen)
{
    res_t r = { 0 };
    sp_platform_twitch.update_channel(&tw.env, tw.acct, "New title from C", "33214", on_done,
                                      &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0, "%s", sp_strerror(r.err));
    cr_assert_eq(fake_tw_count(&tw.fake, "users", "\"title\":\"New title from C\""), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "users", "\"game_name\":\"Fortnite\""), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"method\":\"PATCH\""), 1);

    res_t t = { 0 };
    sp_platform_twitch.update_channel(&tw.env, tw.acct, "Only the title", NULL, on_done, &t);
    tw_spin(&t.calls, 1, 10000);
    cr_assert_eq(t.err, 0);
    cr_assert_eq(fake_tw_count(&tw.fake, "users", "\"game_name\":\"Fortnite\""), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "users", "\"title\":\"Only the title\""), 1);
}

Test(twitch_client, viewers_live_and_offline)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "setLive", "[\"" FAKE_TW_USER "\",{\"viewer_count\":42}]",
                              NULL), 200);
    res_t r = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0);
    cr_assert(r.live);
    cr_assert_eq(r.viewers, 42);
    cr_assert_eq(fake_tw_call(&tw.fake, "setOffline", "[\"" FAKE_TW_USER "\"]", NULL), 200);
    res_t o = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &o);
    tw_spin(&o.calls, 1, 10000);
    cr_assert_eq(o.err, 0);
    cr_assert_not(o.live);
    cr_assert_eq(o.viewers, 0);
}

Test(twitch_client, search_categories)
{
    res_t r = { 0 };
    sp_platform_twitch.search_categories(&tw.env, tw.acct, "fort nite&x", on_json, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0);
    cr_assert_str_eq(r.json, "[]", "the query is encoded, not split: %s", r.json);
    res_t f = { 0 };
    sp_platform_twitch.search_categories(&tw.env, tw.acct, "fort", on_json, &f);
    tw_spin(&f.calls, 1, 10000);
    cr_assert_eq(f.err, 0);
    cr_assert_str_eq(f.json, "[{\"box_art_url\":\"https://static-cdn.jtvnw.net/ttv-boxart/"
                             "33214-{width}x{height}.jpg\",\"id\":\"33214\","
                             "\"name\":\"Fortnite\"}]");
}

Test(twitch_client, revoke_token)
{
    res_t r = { 0 };
    sp_platform_twitch.revoke(&tw.env, tw.access, on_done, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"revoked\":1"), 1);
    res_t l = { 0 };
    sp_platform_twitch.lookup(&tw.env, tw.access, on_identity, &l);
    tw_spin(&l.calls, 1, 10000);
    cr_assert_eq(l.err, SP_EAUTH, "the revoked token no longer works");
}

/* ---- token refresh, rate limit, breaker ---------------------------------------------------- */

Test(twitch_client, expired_token_refreshed_once_then_success)
{
    char args[256];
    snprintf(args, sizeof args, "[\"%s\"]", tw.access);
    cr_assert_eq(fake_tw_call(&tw.fake, "expireToken", args, NULL), 200);
    res_t r = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0, "%s", sp_strerror(r.err));
    cr_assert_eq(tw.refreshes, 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"grant_refresh_token\":1"), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"status\":401"), 1);
}

Test(twitch_client, twenty_concurrent_calls_during_expiry_one_refresh)
{
    char args[256];
    snprintf(args, sizeof args, "[\"%s\"]", tw.access);
    cr_assert_eq(fake_tw_call(&tw.fake, "expireToken", args, NULL), 200);
    res_t r[20];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 20; i++)
        sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r[i]);
    for (int i = 0; i < 20; i++) {
        tw_spin(&r[i].calls, 1, 15000);
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].err, 0, "call %d: %s", i, sp_strerror(r[i].err));
    }
    cr_assert_eq(tw.refreshes, 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "counters", "\"grant_refresh_token\":1"), 1);
}

Test(twitch_client, refresh_refused_needs_reauth)
{
    char args[256];
    snprintf(args, sizeof args, "[\"%s\"]", tw.access);
    cr_assert_eq(fake_tw_call(&tw.fake, "failNextRefresh", "[1]", NULL), 200);
    cr_assert_eq(fake_tw_call(&tw.fake, "expireToken", args, NULL), 200);
    res_t r = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, SP_EAUTH);
    cr_assert(sp_token_needs_reauth(tw.acct->token));
}

Test(twitch_client, rate_limit_429_waits_for_reset)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "injectFault",
                              "[{\"kind\":\"429\",\"resetSec\":2,\"pathIncludes\":\"/streams\"}]",
                              NULL), 200);
    int64_t t0 = sp_wall_ms();
    res_t r = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, 0, "%s", sp_strerror(r.err));
    /* Ratelimit-Reset is ceil(now) + 2 s, in whole epoch seconds: the retry waited past it */
    int64_t reset_ms = ((t0 + 999) / 1000 + 2) * 1000;
    cr_assert_geq(sp_wall_ms() + 50, reset_ms, "retried before Ratelimit-Reset");
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"status\":429"), 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"path\":\"/helix/streams\""), 2);
}

Test(twitch_client, rate_limit_wait_longer_than_deadline_fails_fast)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "injectFault",
                              "[{\"kind\":\"429\",\"resetSec\":60,\"pathIncludes\":\"/streams\"}]",
                              NULL), 200);
    res_t r = { 0 };
    uint64_t t0 = sp_mono_ms();
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, SP_ERATELIMIT);
    cr_assert_lt(r.at - t0, 5000);
    /* later calls of the platform wait too: this one fails at once, nothing sent */
    res_t s = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &s);
    tw_spin(&s.calls, 1, 10000);
    cr_assert_eq(s.err, SP_ERATELIMIT);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"path\":\"/helix/streams\""), 1);
    sp_platform_gate_info_t gi;
    sp_platform_gate_info("twitch", tw.acct, &gi);
    cr_assert_gt(gi.wait_ms, 50000);
    /* Twitch's bucket is per client id + user: another account's calls are not held back */
    sp_platform_account_t *b = sp_calloc(1, sizeof *b);
    cr_assert_not_null(b);
    *b = *tw.acct;
    b->refs = 1;
    snprintf(b->user_id, sizeof b->user_id, "%s", "00000000-0000-4000-8000-000000000002");
    b->token = sp_token_new(NULL, NULL);
    sp_token_set(b->token, tw.access, NULL, sp_wall_ms() + 3600 * 1000LL);
    sp_platform_gate_info("twitch", b, &gi);
    cr_assert_eq(gi.wait_ms, 0);
    res_t o = { 0 };
    sp_platform_twitch.viewers(&tw.env, b, on_viewers, &o);
    tw_spin(&o.calls, 1, 10000);
    cr_assert_eq(o.err, 0, "%s", sp_strerror(o.err));
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"path\":\"/helix/streams\""), 2);
    sp_platform_account_unref(b);
}

Test(twitch_client, breaker_opens_on_5xx_and_fails_fast)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "injectFault",
                              "[{\"kind\":\"5xx\",\"count\":5,\"status\":503}]", NULL), 200);
    for (int i = 0; i < SP_PLATFORM_BREAKER_THRESHOLD; i++) {
        res_t r = { 0 };
        sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
        tw_spin(&r.calls, 1, 10000);
        cr_assert_eq(r.err, SP_EUPSTREAM);
    }
    sp_platform_gate_info_t gi;
    sp_platform_gate_info("twitch", NULL, &gi);
    cr_assert_eq(gi.breaker, 1 /* open */);
    uint64_t t0 = sp_mono_ms();
    res_t f = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &f);
    res_t c = { 0 };
    sp_platform_twitch.send_chat(&tw.env, tw.acct, "during the outage", NULL, on_chat, &c);
    tw_spin(&f.calls, 1, 10000);
    tw_spin(&c.calls, 1, 10000);
    cr_assert_eq(f.err, SP_EOPEN);
    cr_assert_eq(c.err, SP_EOPEN);
    cr_assert_not(c.chat.sent);
    cr_assert_lt(f.at - t0, 1000, "fails fast");
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"path\":\"/helix/"), 5);
}

Test(twitch_client, cancel_all_ends_waiting_calls)
{
    cr_assert_eq(fake_tw_call(&tw.fake, "injectFault",
                              "[{\"kind\":\"429\",\"resetSec\":5,\"pathIncludes\":\"/streams\"}]",
                              NULL), 200);
    res_t r = { 0 };
    sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r);
    uint64_t end = sp_mono_ms() + 5000;
    while (sp_mono_ms() < end && fake_tw_count(&tw.fake, "calls", "\"status\":429") < 1)
        tw_run_for(20);
    tw_run_for(50);
    cr_assert_eq(r.calls, 0, "waiting for Ratelimit-Reset");
    cr_assert_eq(sp_platform_calls_pending(), 1);
    sp_platform_cancel_all();
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.err, SP_ECANCELED);
    cr_assert_eq(sp_platform_calls_pending(), 0);
}

Test(twitch_client, missing_scope_is_forbidden_without_refresh)
{
    char *out = NULL;
    cr_assert_eq(fake_tw_call(&tw.fake, "issueToken",
                              "[{\"userId\":\"" FAKE_TW_USER "\",\"scopes\":[\"user:read:chat\"]}]",
                              &out), 200);
    json_t *root = json_loads(out, 0, NULL);
    free(out);
    json_t *res = json_object_get(root, "result");
    sp_token_set(tw.acct->token, json_string_value(json_object_get(res, "access_token")),
                 json_string_value(json_object_get(res, "refresh_token")),
                 sp_wall_ms() + 3600 * 1000LL);
    json_decref(root);
    res_t r = { 0 };
    sp_platform_twitch.send_chat(&tw.env, tw.acct, "no scope to write", NULL, on_chat, &r);
    tw_spin(&r.calls, 1, 10000);
    cr_assert_eq(r.err, SP_EFORBIDDEN, "%s", sp_strerror(r.err));
    cr_assert_not(r.chat.sent);
    cr_assert_eq(tw.refreshes, 0);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"path\":\"/helix/chat/messages\""), 1);
}

Test(twitch_client, refresh_ahead_of_expiry_no_401)
{
    /* 1 minute left: inside the 5 minute margin, refreshed before the call goes out */
    sp_token_set(tw.acct->token, tw.access, tw.refresh, sp_wall_ms() + 60 * 1000LL);
    res_t r[5];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 5; i++)
        sp_platform_twitch.viewers(&tw.env, tw.acct, on_viewers, &r[i]);
    for (int i = 0; i < 5; i++) {
        tw_spin(&r[i].calls, 1, 10000);
        cr_assert_eq(r[i].err, 0, "%s", sp_strerror(r[i].err));
    }
    cr_assert_eq(tw.refreshes, 1);
    cr_assert_eq(fake_tw_count(&tw.fake, "calls", "\"status\":401"), 0);
    cr_assert_gt(sp_token_expires_at(tw.acct->token), sp_wall_ms() + 3600 * 1000LL);
}
