/*
 * sp_web_psup: the PlatformSupervisor's wiring into the app (platforms/sp_psup.h).
 *   - the livestream's platform hooks (sp_ls_platform_hooks_t) on top of sp_psup and the
 *     platform vtables: streaming -> monitors + title, ending -> stop + peak/avg viewers,
 *     metadata -> title sync, resolve_ingest -> the platform's ingest URL and key at Start;
 *   - POST /api/chat {text, platforms?: [name], reply_to?}        -> 200 {results:[...]}
 *   - GET  /api/platforms/{platform}/categories?query=            -> 200 {categories:[...]}
 *   - POST /webhooks/twitch (EventSub webhook transport: signature, replay window,
 *     challenge, revocation; notifications handed to the supervisor like the socket's).
 * The handlers check input and turn results into answers; sp_psup does the work.
 */
#include "web/sp_web.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "platforms/sp_accounts.h"
#include "platforms/sp_psup.h"
#include "platforms/twitch/map.h"
#include "platforms/twitch/webhook.h"
#include "web/sp_widgets.h"

#define CHAT_MAX_CHARS 500
#define QUERY_MAX 100

/* ---- livestream hooks ------------------------------------------------------------------- */

static void hook_streaming(void *ud, const char *user_id, const char *stream_id,
                           const char *title, json_t *categories, const char *const *platforms,
                           size_t n)
{
    sp_app_t *app = ud;
    if (app->psup)
        sp_psup_stream_started(app->psup, user_id, stream_id, title, categories, platforms, n);
}

static void hook_ending(void *ud, const char *user_id, const char *stream_id)
{
    sp_app_t *app = ud;
    if (app->psup) sp_psup_stream_ended(app->psup, user_id, stream_id);
}

static json_t *hook_stats(void *ud, const char *user_id)
{
    sp_app_t *app = ud;
    return app->psup ? sp_psup_stats(app->psup, user_id) : NULL;
}

static void hook_metadata(void *ud, const char *user_id, const char *title, json_t *categories)
{
    sp_app_t *app = ud;
    if (app->psup) sp_psup_metadata(app->psup, user_id, title, categories);
}

typedef struct {
    sp_ls_ingest_cb cb;
    void *ud2;
    sp_app_t *app;
    sp_platform_account_t *a;
    char user[64];
    char platform[SP_PMSG_PLATFORM_CAP];
} ingest_ctx_t;

static void on_ingest(int err, const char *url, const char *key, void *ud)
{
    ingest_ctx_t *c = ud;
    if (err != 0)
        sp_ulog(SP_LOG_WARN, "platforms", c->user, "platform ingest unavailable",
                "platform=%s err=%s", c->platform, sp_err_name(err));
    c->cb(err, err ? NULL : url, err ? NULL : key, c->ud2);
    sp_platform_account_unref(c->a);
    sp_free(c);
}

static void on_ingest_account(int err, sp_platform_account_t *a, void *ud)
{
    ingest_ctx_t *c = ud;
    if (err == 0 && (a == NULL || a->platform == NULL || a->platform->ingest == NULL))
        err = SP_ENOTFOUND;
    if (err != 0 || c->app->penv == NULL) {
        if (a) sp_platform_account_unref(a);
        c->cb(err ? err : SP_ECANCELED, NULL, NULL, c->ud2);
        sp_free(c);
        return;
    }
    c->a = a;
    a->platform->ingest(c->app->penv, a, on_ingest, c);
}

static void hook_resolve_ingest(void *ud, const char *user_id, const char *platform,
                                sp_ls_ingest_cb cb, void *ud2)
{
    sp_app_t *app = ud;
    if (app->accounts == NULL) {
        cb(SP_ENOTFOUND, NULL, NULL, ud2);
        return;
    }
    ingest_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->cb = cb;
    c->ud2 = ud2;
    c->app = app;
    snprintf(c->user, sizeof(c->user), "%s", user_id);
    snprintf(c->platform, sizeof(c->platform), "%s", platform);
    sp_accounts_get(app->accounts, user_id, platform, on_ingest_account, c);
}

/* ---- POST /api/chat ------------------------------------------------------------------- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static bool name_ok(json_t *v)
{
    if (!json_is_string(v)) return false;
    size_t len = json_string_length(v);
    return len > 0 && len < SP_PMSG_PLATFORM_CAP && strlen(json_string_value(v)) == len;
}

static void on_chat(int err, json_t *result, void *ud)
{
    sp_http_req_t *req = ud;
    switch (err) {
    case 0: sp_http_respond_json(req, 200, json_incref(result)); return;
    case SP_ENOTFOUND:
        sp_http_respond_error(req, 404, "not_found",
                              "no connected platform to send to, or no such message to reply to");
        return;
    case SP_EINVAL: sp_http_respond_error(req, 422, "invalid", "invalid chat message"); return;
    default: sp_http_respond_error(req, 503, "unavailable", sp_strerror(err)); return;
    }
}

static void h_chat(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *user = sp_web_user(req);
    if (user == NULL) {
        sp_http_respond_error(req, 401, "unauthorized", "login required");
        return;
    }
    if (app->psup == NULL) {
        sp_http_respond_error(req, 503, "unavailable", "platforms are not available");
        return;
    }
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    json_t *text = json_object_get(body, "text");
    json_t *plats = json_object_get(body, "platforms");
    json_t *reply = json_object_get(body, "reply_to");
    const char *names[SP_PLATFORM_MAX];
    size_t n = 0;
    const char *why = NULL;
    if (!json_is_string(text) || json_string_length(text) == 0 ||
        strlen(json_string_value(text)) != json_string_length(text))
        why = "text: 1-500 characters";
    else if (utf8_chars(json_string_value(text)) > CHAT_MAX_CHARS)
        why = "text: 1-500 characters";
    else if (plats && !json_is_null(plats) && !json_is_array(plats))
        why = "platforms: an array of platform names";
    else if (reply && !json_is_null(reply) &&
             (!json_is_string(reply) || json_string_length(reply) == 0 ||
              json_string_length(reply) >= SP_PMSG_ID_CAP ||
              strlen(json_string_value(reply)) != json_string_length(reply)))
        why = "reply_to: a chat message id";
    if (why == NULL && json_is_array(plats)) {
        size_t i;
        json_t *v;
        json_array_foreach(plats, i, v)
        {
            if (!name_ok(v) || sp_platform_find(json_string_value(v)) == NULL) {
                why = "platforms: unknown platform";
                break;
            }
            bool dup = false;
            for (size_t k = 0; k < n; k++) dup = dup || strcmp(names[k], json_string_value(v)) == 0;
            if (dup) continue;
            if (n == SP_PLATFORM_MAX) {
                why = "platforms: too many";
                break;
            }
            names[n++] = json_string_value(v);
        }
    }
    if (why) {
        sp_http_respond_error(req, 422, "invalid", why);
        json_decref(body);
        return;
    }
    sp_psup_send_chat(app->psup, user, json_string_value(text), names, n,
                      json_is_string(reply) ? json_string_value(reply) : NULL, on_chat, req);
    json_decref(body);
}

/* ---- GET /api/platforms/{platform}/categories?query= ------------------------------------ */

typedef struct {
    sp_http_req_t *req;
    sp_app_t *app;
    char query[QUERY_MAX * 4 + 1];
    sp_platform_account_t *a;
} cat_ctx_t;

static void on_categories(int err, json_t *categories, void *ud)
{
    cat_ctx_t *c = ud;
    switch (err) {
    case 0:
        sp_http_respond_json(c->req, 200,
                             json_pack("{s:O}", "categories",
                                       json_is_array(categories) ? categories : json_array()));
        break;
    case SP_EAUTH:
        sp_http_respond_error(c->req, 409, "needs_reauth", "reconnect the platform account");
        break;
    case SP_ERATELIMIT:
        sp_http_respond_error(c->req, 429, "rate_limited", "the platform asks to wait");
        break;
    default:
        sp_http_respond_error(c->req, 502, "platform_error", sp_strerror(err));
        break;
    }
    sp_platform_account_unref(c->a);
    sp_free(c);
}

static void on_cat_account(int err, sp_platform_account_t *a, void *ud)
{
    cat_ctx_t *c = ud;
    if (err != 0 || a == NULL || c->app->penv == NULL) {
        if (a) sp_platform_account_unref(a);
        if (err == SP_ENOTFOUND)
            sp_http_respond_error(c->req, 409, "not_connected", "connect the platform first");
        else
            sp_http_respond_error(c->req, 503, "unavailable", sp_strerror(err ? err : SP_EUNAVAIL));
        sp_free(c);
        return;
    }
    c->a = a;
    a->platform->search_categories(c->app->penv, a, c->query, on_categories, c);
}

static void h_categories(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *user = sp_web_user(req);
    const char *name = sp_http_req_param(req, "platform");
    const sp_platform_t *p = name ? sp_platform_find(name) : NULL;
    if (user == NULL) {
        sp_http_respond_error(req, 401, "unauthorized", "login required");
        return;
    }
    if (p == NULL || p->search_categories == NULL) {
        sp_http_respond_error(req, 404, "not_found", "no category search for this platform");
        return;
    }
    if (app->accounts == NULL) {
        sp_http_respond_error(req, 503, "unavailable", "platforms are not available");
        return;
    }
    cat_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->req = req;
    c->app = app;
    if (!sp_http_req_query_param(req, "query", c->query, sizeof(c->query)) || !c->query[0] ||
        utf8_chars(c->query) > QUERY_MAX) {
        sp_free(c);
        sp_http_respond_error(req, 422, "invalid", "query: 1-100 characters");
        return;
    }
    sp_accounts_get(app->accounts, user, p->name, on_cat_account, c);
}

/* ---- POST /webhooks/twitch ------------------------------------------------------------ */

static const char *event_broadcaster(json_t *event)
{
    const char *id = sp_json_str(event, "broadcaster_user_id");
    return id ? id : sp_json_str(event, "to_broadcaster_user_id");
}

static void h_twitch_webhook(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *secret = app->cfg->twitch_webhook_secret;
    if (secret == NULL || secret[0] == '\0') {
        sp_http_respond_error(req, 404, "not_found", "not found");
        return;
    }
    const sp_buf_t *body = sp_http_req_body(req);
    sp_twitch_wh_request_t r = {
        .message_id = sp_http_req_header(req, "twitch-eventsub-message-id"),
        .timestamp = sp_http_req_header(req, "twitch-eventsub-message-timestamp"),
        .signature = sp_http_req_header(req, "twitch-eventsub-message-signature"),
        .type = sp_http_req_header(req, "twitch-eventsub-message-type"),
        .body = (const uint8_t *)(body && body->p ? body->p : ""),
        .body_len = body ? body->len : 0,
    };
    sp_twitch_wh_result_t out;
    sp_twitch_wh_verify(&r, secret, sp_wall_ms(), &out);
    switch (out.kind) {
    case SP_TWITCH_WH_REFUSED:
        sp_warn("platforms", "twitch webhook refused", "reason=%s ip=%s", out.reason,
                sp_http_req_remote_ip(req));
        sp_http_respond_error(req, out.http_status, out.reason, "webhook refused");
        break;
    case SP_TWITCH_WH_VERIFICATION:
        sp_info("platforms", "twitch webhook verified", "subscription=%s", out.sub_type);
        sp_http_respond(req, 200, "text/plain", out.challenge, strlen(out.challenge));
        break;
    case SP_TWITCH_WH_REVOCATION:
        sp_warn("platforms", "twitch webhook subscription revoked", "subscription=%s status=%s",
                out.sub_type, out.sub_status);
        if (app->psup && (strcmp(out.sub_status, "authorization_revoked") == 0 ||
                          strcmp(out.sub_status, "user_removed") == 0)) {
            /* the body is verified: whose authorization went is in subscription.condition */
            json_t *b = json_loadb(r.body_len ? (const char *)r.body : "", r.body_len,
                                   JSON_REJECT_DUPLICATES, NULL);
            json_t *cond = json_object_get(json_object_get(b, "subscription"), "condition");
            const char *bid = event_broadcaster(cond);
            if (bid) sp_psup_inject_revoked(app->psup, "twitch", bid, out.sub_status);
            json_decref(b);
        }
        sp_http_respond(req, 204, NULL, NULL, 0);
        break;
    case SP_TWITCH_WH_NOTIFICATION: {
        sp_twitch_mapped_t mp;
        memset(&mp, 0, sizeof(mp));
        int rc = sp_twitch_map_webhook(r.body_len ? (const char *)r.body : "", r.body_len,
                                       r.message_id, r.timestamp, &mp);
        const char *bid = event_broadcaster(out.event);
        if (rc != 0) {
            sp_warn("platforms", "twitch webhook notification not mapped", "type=%s err=%s",
                    out.sub_type, sp_err_name(rc));
        } else if (app->psup && bid) {
            if (mp.kind == SP_TWITCH_CHAT)
                sp_psup_inject_chat(app->psup, "twitch", bid, &mp.u.chat);
            else if (mp.kind == SP_TWITCH_ALERT)
                sp_psup_inject_alert(app->psup, "twitch", bid, &mp.u.alert);
            else if (mp.kind == SP_TWITCH_CHAT_DELETED)
                sp_psup_inject_deleted(app->psup, "twitch", bid, &mp.u.deleted);
        }
        if (rc == 0) sp_twitch_mapped_clear(&mp);
        sp_http_respond(req, 204, NULL, NULL, 0);
        break;
    }
    }
    sp_twitch_wh_result_free(&out);
}

/* ---- wiring ------------------------------------------------------------------------------ */

int sp_web_psup_init(sp_app_t *app)
{
    if (app->penv == NULL) return SP_EINVAL; /* sp_web_platforms_init first */
    app->psup = sp_psup_new(app->penv, app->store, app->pubsub, app->accounts);
    if (app->psup == NULL) return SP_ENOMEM;
    sp_ls_platform_hooks_t hooks = {
        .streaming = hook_streaming, .ending = hook_ending, .metadata = hook_metadata,
        .resolve_ingest = hook_resolve_ingest, .stats = hook_stats, .ud = app,
    };
    if (app->live) {
        sp_livestream_set_platform_hooks(app->live, &hooks);
        sp_psup_set_registry(app->psup, sp_livestream_registry(app->live));
    }
    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_router_add(app->router, "POST", "/api/chat", h_chat, app, &auth);
    sp_router_add(app->router, "GET", "/api/platforms/{platform}/categories", h_categories, app,
                  &auth);
    sp_route_opts_t hook = { .body_limit = SP_TWITCH_WH_MAX_BODY,
                             .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_CSRF };
    sp_router_add(app->router, "POST", "/webhooks/twitch", h_twitch_webhook, app, &hook);
    return sp_web_widgets_init(app); /* the AlertQueue (fed by psup's alerts), widget routes */
}

void sp_web_psup_free(sp_app_t *app)
{
    sp_web_widgets_free(app);
    if (app->live) sp_livestream_set_platform_hooks(app->live, NULL);
    sp_psup_free(app->psup);
    app->psup = NULL;
}
