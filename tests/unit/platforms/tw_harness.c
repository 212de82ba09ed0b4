/* tw_harness: see tw_harness.h. */
#include "tw_harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"
#include "platforms/sp_platform_int.h"
#include "platforms/twitch/twitch.h"

tw_fixture_t tw;

static void refreshed(const sp_curlm_response_t *res, void *ud)
{
    sp_token_t *t = ud;
    json_t *root = res->err ? NULL : json_loadb(res->body, res->body_len, 0, NULL);
    const char *a = json_string_value(json_object_get(root, "access_token"));
    const char *r = json_string_value(json_object_get(root, "refresh_token"));
    json_int_t exp = json_integer_value(json_object_get(root, "expires_in"));
    if (res->status == 200 && a && r) {
        snprintf(tw.access, sizeof tw.access, "%s", a);
        snprintf(tw.refresh, sizeof tw.refresh, "%s", r); /* "persisted" before use */
        sp_token_refreshed(t, SP_TOKEN_REFRESH_OK, a, r, sp_wall_ms() + (int64_t)exp * 1000);
    } else if (res->status == 400 || res->status == 401) {
        sp_token_refreshed(t, SP_TOKEN_REFRESH_REAUTH, NULL, NULL, 0);
    } else {
        sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
    }
    json_decref(root);
}

static void refresher(sp_token_t *t, const char *refresh_token, void *ud)
{
    (void)ud;
    tw.refreshes++;
    static char url[256];
    snprintf(url, sizeof url, "%s/token", tw.auth_url);
    char *rt = curl_easy_escape(NULL, refresh_token, 0);
    static char body[1024];
    snprintf(body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s"
             "&client_secret=%s", rt, tw.client_id, tw.client_secret);
    curl_free(rt);
    const char *hdrs[] = { "Content-Type: application/x-www-form-urlencoded", NULL };
    sp_curlm_request_t req = { .method = "POST", .url = url, .headers = hdrs, .body = body,
                               .body_len = strlen(body) };
    if (sp_curlm_request(tw.http, &req, refreshed, t) != 0)
        sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
}

void tw_setup(void)
{
    memset(&tw, 0, sizeof tw);
    sp_platform_gate_reset();
    sp_twitch_chat_limit_reset();
    cr_assert_eq(fake_tw_start(&tw.fake), 0, "node and tests/fakes/twitch.mjs are needed");
    cr_assert_eq(uv_loop_init(&tw.loop), 0);
    tw.http = sp_curlm_new(&tw.loop);
    cr_assert_not_null(tw.http);
    snprintf(tw.auth_url, sizeof tw.auth_url, "%s", tw.fake.auth);
    snprintf(tw.api_url, sizeof tw.api_url, "%s", tw.fake.api);
    snprintf(tw.ws_url, sizeof tw.ws_url, "%s", tw.fake.ws);
    snprintf(tw.client_id, sizeof tw.client_id, "%s", FAKE_TW_CLIENT_ID);
    snprintf(tw.client_secret, sizeof tw.client_secret, "%s", FAKE_TW_CLIENT_SECRET);
    tw.cfg.twitch_client_id = tw.client_id;
    tw.cfg.twitch_client_secret = tw.client_secret;
    tw.cfg.twitch_auth_url = tw.auth_url;
    tw.cfg.twitch_api_url = tw.api_url;
    tw.cfg.twitch_eventsub_ws_url = tw.ws_url;
    tw.cfg.twitch_ingest_url = "rtmp://live.twitch.tv/app";
    tw.cfg.twitch_redirect_uri = "http://localhost:8080/auth/twitch/callback";
    tw.env = (sp_platform_env_t){ .loop = &tw.loop, .cfg = &tw.cfg, .http = tw.http };
    cr_assert_eq(fake_tw_token(&tw.fake, 14000, tw.access, sizeof tw.access, tw.refresh,
                               sizeof tw.refresh), 0);
    sp_platform_account_t *a = sp_calloc(1, sizeof *a);
    cr_assert_not_null(a);
    a->refs = 1;
    a->platform = &sp_platform_twitch;
    snprintf(a->user_id, sizeof a->user_id, "%s", "00000000-0000-4000-8000-000000000001");
    snprintf(a->who.id, sizeof a->who.id, "%s", FAKE_TW_USER);
    snprintf(a->who.login, sizeof a->who.login, "%s", "twitchdev");
    a->token = sp_token_new(refresher, NULL);
    cr_assert_not_null(a->token);
    sp_token_set(a->token, tw.access, tw.refresh, sp_wall_ms() + 14000 * 1000LL);
    tw.acct = a;
}

static void walk_close(uv_handle_t *h, void *ud)
{
    (void)ud;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void tw_teardown(void)
{
    sp_platform_cancel_all();
    sp_platform_account_unref(tw.acct);
    sp_curlm_free(tw.http);
    for (int i = 0; i < 200 && uv_run(&tw.loop, UV_RUN_NOWAIT); i++)
        ;
    uv_walk(&tw.loop, walk_close, NULL);
    uv_run(&tw.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&tw.loop), 0, "handles left on the loop");
    cr_assert_eq(sp_platform_calls_pending(), 0, "a platform call never ended");
    fake_tw_stop(&tw.fake);
    sp_twitch_chat_limit_reset();
}

static void wake(uv_timer_t *t)
{
    (void)t;
}

void tw_spin(const int *counter, int target, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&tw.loop, &t);
    uv_timer_start(&t, wake, 5, 5);
    uint64_t end = sp_mono_ms() + ms;
    while ((!counter || *counter < target) && sp_mono_ms() < end)
        uv_run(&tw.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&tw.loop, UV_RUN_NOWAIT);
}

void tw_run_for(uint64_t ms)
{
    tw_spin(NULL, 0, ms);
}
