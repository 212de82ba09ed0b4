/*
 * twitch: the Twitch vtable (see twitch.h). Every Helix call goes through sp_platform_http
 * (token, one refresh on 401, rate-limit wait, breaker) with the Client-Id header; answers are
 * parsed by twitch/helix.c. Stream keys and tokens are never logged.
 */
#include "platforms/twitch/twitch.h"

#include <curl/curl.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "core/sp_time.h"
#include "platforms/sp_platform_int.h"
#include "platforms/twitch/helix.h"
#include "platforms/twitch/monitor.h"
#include "platforms/twitch/whmon.h"

#define URL_CAP 2048
#define HDR_CAP 256

/* ---- OAuth descriptor ---------------------------------------------------------------------- */

static char g_authorize_url[URL_CAP];
static char g_token_url[URL_CAP];
static char g_revoke_url[URL_CAP];

static bool tw_oauth(const sp_config_t *cfg, sp_platform_oauth_t *out)
{
    memset(out, 0, sizeof *out);
    if (!cfg || !cfg->twitch_client_id || !cfg->twitch_client_id[0] ||
        !cfg->twitch_client_secret || !cfg->twitch_client_secret[0] || !cfg->twitch_auth_url)
        return false;
    const char *au = cfg->twitch_auth_url;
    if ((size_t)snprintf(g_authorize_url, URL_CAP, "%s/authorize", au) >= URL_CAP ||
        (size_t)snprintf(g_token_url, URL_CAP, "%s/token", au) >= URL_CAP ||
        (size_t)snprintf(g_revoke_url, URL_CAP, "%s/revoke", au) >= URL_CAP)
        return false;
    out->authorize_url = g_authorize_url;
    out->token_url = g_token_url;
    out->revoke_url = g_revoke_url;
    out->client_id = cfg->twitch_client_id;
    out->client_secret = cfg->twitch_client_secret;
    out->redirect_uri = cfg->twitch_redirect_uri;
    out->connect_scopes = "user:read:email user:read:chat user:write:chat user:bot "
                          "channel:read:subscriptions bits:read moderator:read:followers "
                          "channel:manage:broadcast channel:read:stream_key";
    out->login_scopes = "user:read:email";
    out->pkce = false; /* Twitch documents no PKCE for its confidential code flow */
    out->authorize_extra = "force_verify=true";
    return true;
}

int sp_twitch_client_id_header(const sp_config_t *cfg, char *out, size_t cap)
{
    if (!cfg || !cfg->twitch_client_id || !cfg->twitch_client_id[0])
        return SP_EINVAL;
    if ((size_t)snprintf(out, cap, "Client-Id: %s", cfg->twitch_client_id) >= cap)
        return SP_EINVAL;
    return 0;
}

/* ---- one Helix operation -------------------------------------------------------------------- */

typedef enum {
    OP_LOOKUP,
    OP_INGEST,
    OP_CHAT,
    OP_CHANNEL,
    OP_VIEWERS,
    OP_SEARCH,
    OP_REVOKE,
} op_kind_t;

typedef struct {
    op_kind_t kind;
    const sp_platform_env_t *env;
    int err; /* a local failure delivered through sp_platform_defer */
    union {
        sp_platform_identity_cb identity;
        sp_platform_ingest_cb ingest;
        sp_platform_chat_cb chat;
        sp_platform_done_cb done;
        sp_platform_viewers_cb viewers;
        sp_platform_json_cb json;
    } cb;
    void *ud;
    sp_platform_chat_result_t chat; /* OP_CHAT: a local refusal */
} op_t;

static op_t *op_new(op_kind_t kind, const sp_platform_env_t *env, void *ud)
{
    op_t *o = sp_calloc(1, sizeof *o);
    if (o) {
        o->kind = kind;
        o->env = env;
        o->ud = ud;
    }
    return o;
}

static void chat_fail(sp_platform_chat_result_t *r, int err)
{
    memset(r, 0, sizeof *r);
    r->sent = false;
    snprintf(r->reason, sizeof r->reason, "%s", sp_strerror(err));
}

/* Calls the operation's callback with an error and nothing else. */
static void op_fail(op_t *o, int err)
{
    switch (o->kind) {
    case OP_LOOKUP:
        o->cb.identity(err, NULL, o->ud);
        break;
    case OP_INGEST:
        o->cb.ingest(err, NULL, NULL, o->ud);
        break;
    case OP_CHAT: {
        sp_platform_chat_result_t r;
        chat_fail(&r, err);
        o->cb.chat(err, &r, o->ud);
        break;
    }
    case OP_VIEWERS:
        o->cb.viewers(err, false, 0, o->ud);
        break;
    case OP_SEARCH:
        o->cb.json(err, NULL, o->ud);
        break;
    default:
        o->cb.done(err, o->ud);
        break;
    }
}

static void op_deferred(void *ud)
{
    op_t *o = ud;
    if (o->kind == OP_CHAT && o->err == 0)
        o->cb.chat(0, &o->chat, o->ud); /* a local refusal (sent=false) */
    else
        op_fail(o, o->err);
    sp_free(o);
}

/* Ends o with err from the loop (never synchronously); if even that fails, leaks nothing. */
static void op_defer(op_t *o, int err)
{
    o->err = err;
    if (sp_platform_defer(o->env->loop, op_deferred, o) != 0) {
        /* out of memory for a timer: nothing else to do but fail now */
        op_fail(o, err ? err : SP_ENOMEM);
        sp_free(o);
    }
}

static int status_err(const sp_platform_resp_t *r)
{
    return r ? sp_helix_status((int)r->status) : SP_EIO;
}

static void on_http(int err, const sp_platform_resp_t *r, void *ud)
{
    op_t *o = ud;
    const char *body = r ? r->body : NULL;
    size_t len = r ? r->body_len : 0;
    int st = r ? (int)r->status : 0;
    if (err) {
        op_fail(o, err);
        sp_free(o);
        return;
    }
    switch (o->kind) {
    case OP_LOOKUP: {
        sp_helix_user_t u;
        int rc = sp_helix_parse_user(st, body, len, &u);
        if (rc) {
            o->cb.identity(rc, NULL, o->ud);
            break;
        }
        sp_platform_identity_t who;
        memset(&who, 0, sizeof who);
        snprintf(who.id, sizeof who.id, "%s", u.id);
        snprintf(who.login, sizeof who.login, "%s", u.login);
        snprintf(who.display_name, sizeof who.display_name, "%s", u.display_name);
        snprintf(who.email, sizeof who.email, "%s", u.email);
        /* Twitch returns `email` only for a verified address (user:read:email) */
        who.email_verified = u.email[0] != '\0';
        o->cb.identity(0, &who, o->ud);
        break;
    }
    case OP_INGEST: {
        char key[SP_PLATFORM_INGEST_KEY_CAP];
        int rc = sp_helix_parse_stream_key(st, body, len, key, sizeof key);
        const char *url = o->env->cfg->twitch_ingest_url;
        if (!rc && (!url || !url[0]))
            rc = SP_ECONFIG;
        if (rc)
            o->cb.ingest(rc, NULL, NULL, o->ud);
        else
            o->cb.ingest(0, url, key, o->ud);
        memset(key, 0, sizeof key);
        break;
    }
    case OP_CHAT: {
        sp_helix_chat_sent_t s;
        sp_platform_chat_result_t res;
        int rc = sp_helix_parse_chat_sent(st, body, len, &s);
        if (rc) {
            chat_fail(&res, rc);
            o->cb.chat(rc, &res, o->ud);
            break;
        }
        memset(&res, 0, sizeof res);
        res.sent = s.is_sent;
        snprintf(res.message_id, sizeof res.message_id, "%s", s.message_id);
        if (!s.is_sent)
            snprintf(res.reason, sizeof res.reason, "%s",
                     s.drop_message[0] ? s.drop_message : s.drop_code[0] ? s.drop_code
                                                                        : "not_sent");
        o->cb.chat(0, &res, o->ud);
        break;
    }
    case OP_VIEWERS: {
        sp_helix_stream_t s;
        int rc = sp_helix_parse_stream(st, body, len, &s);
        if (rc)
            o->cb.viewers(rc, false, 0, o->ud);
        else
            o->cb.viewers(0, s.live, s.live ? s.viewer_count : 0, o->ud);
        break;
    }
    case OP_SEARCH: {
        int rc = status_err(r);
        json_t *root = NULL, *out = NULL;
        if (!rc && len > SP_HELIX_MAX_BODY)
            rc = SP_ETOOBIG;
        if (!rc) {
            root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
            json_t *data = json_object_get(root, "data");
            out = json_array();
            if (!json_is_array(data) || !out)
                rc = out ? SP_EPROTO : SP_ENOMEM;
            size_t i;
            json_t *g;
            json_array_foreach(data, i, g) {
                if (rc || i >= 100)
                    break;
                const char *id = json_string_value(json_object_get(g, "id"));
                const char *name = json_string_value(json_object_get(g, "name"));
                const char *art = json_string_value(json_object_get(g, "box_art_url"));
                if (!id || !name || strlen(id) > 32 || strlen(name) > 256)
                    continue;
                json_t *e = json_pack("{s:s, s:s}", "id", id, "name", name);
                if (e && art && strlen(art) < SP_PMSG_URL_CAP)
                    json_object_set_new(e, "box_art_url", json_string(art));
                if (!e || json_array_append_new(out, e) != 0)
                    rc = SP_ENOMEM;
            }
        }
        o->cb.json(rc, rc ? NULL : out, o->ud);
        json_decref(out);
        json_decref(root);
        break;
    }
    case OP_REVOKE: {
        /* 400 "Invalid token": already unusable, which is what a revoke wants */
        int rc = (st >= 200 && st < 300) || st == 400 ? 0 : status_err(r);
        o->cb.done(rc, o->ud);
        break;
    }
    default: /* OP_CHANNEL */
        o->cb.done(status_err(r), o->ud);
        break;
    }
    sp_free(o);
}

/* Sends one Helix call for account a (bearer: NULL = the account's token). */
static void helix(op_t *o, sp_platform_account_t *a, const char *bearer, const char *method,
                  const char *url, const char *body, size_t body_len)
{
    char cid[HDR_CAP];
    int rc = sp_twitch_client_id_header(o->env->cfg, cid, sizeof cid);
    if (rc) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    const char *hdrs[] = { cid, NULL };
    sp_platform_req_t req = { .method = method, .url = url, .headers = hdrs, .body = body,
                              .body_len = body_len };
    rc = a ? sp_platform_http(o->env, a, &req, on_http, o)
           : sp_platform_http_as(o->env, &sp_platform_twitch, bearer, &req, on_http, o);
    if (rc)
        op_defer(o, rc);
}

/* {api}{path}{arg} into url; false when it does not fit or the API url is unset. */
static bool api_url(const sp_platform_env_t *env, char *url, const char *path, const char *arg)
{
    const char *api = env->cfg->twitch_api_url;
    if (!api || !api[0])
        return false;
    int n = snprintf(url, URL_CAP, "%s%s%s", api, path, arg ? arg : "");
    return n >= 0 && (size_t)n < URL_CAP;
}

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (id[i] < '0' || id[i] > '9')
            return false;
    }
    return true;
}

/* ---- vtable entries ------------------------------------------------------------------------- */

static void tw_lookup(const sp_platform_env_t *env, const char *access_token,
                      sp_platform_identity_cb cb, void *ud)
{
    op_t *o = op_new(OP_LOOKUP, env, ud);
    if (!o)
        return;
    o->cb.identity = cb;
    char url[URL_CAP];
    if (!access_token || !access_token[0]) {
        op_defer(o, SP_EINVAL);
        return;
    }
    if (!api_url(env, url, "/users", NULL)) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    helix(o, NULL, access_token, "GET", url, NULL, 0);
}

static void tw_ingest(const sp_platform_env_t *env, sp_platform_account_t *a,
                      sp_platform_ingest_cb cb, void *ud)
{
    op_t *o = op_new(OP_INGEST, env, ud);
    if (!o)
        return;
    o->cb.ingest = cb;
    char url[URL_CAP];
    if (!a || !id_ok(a->who.id)) {
        op_defer(o, SP_EINVAL);
        return;
    }
    if (!api_url(env, url, "/streams/key?broadcaster_id=", a->who.id)) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    helix(o, a, NULL, "GET", url, NULL, 0);
}

/* ---- local chat limit: the send times of the last SP_TWITCH_CHAT_LIMIT messages per account */

typedef struct {
    uint64_t at[SP_TWITCH_CHAT_LIMIT]; /* ring of monotonic ms */
    unsigned pos;
} chat_hist_t;

static sp_map_t *g_chat;

void sp_twitch_chat_limit_reset(void)
{
    sp_map_free(g_chat);
    g_chat = NULL;
}

static void chat_sweep(uint64_t now)
{
    const char *k;
    size_t kl, it = 0;
    void *v;
    char key[SP_UUID_STRLEN + SP_PMSG_ID_CAP + 2];
    /* drop one idle account per pass until under the cap (amortised: this runs rarely) */
    while (sp_map_count(g_chat) >= SP_TWITCH_CHAT_ACCOUNTS_MAX) {
        bool dropped = false;
        for (it = 0; sp_map_next(g_chat, &it, &k, &kl, &v);) {
            chat_hist_t *h = v;
            unsigned last = (h->pos + SP_TWITCH_CHAT_LIMIT - 1) % SP_TWITCH_CHAT_LIMIT;
            bool idle = h->at[last] == UINT64_MAX || now - h->at[last] >= SP_TWITCH_CHAT_WINDOW_MS;
            if (idle && kl < sizeof key) {
                memcpy(key, k, kl);
                sp_map_del(g_chat, key, kl, NULL);
                dropped = true;
                break;
            }
        }
        if (!dropped)
            break;
    }
}

/* true when the account may send one more message now (and records it). */
static bool chat_take(const sp_platform_account_t *a, uint64_t now, bool *oom)
{
    char key[SP_UUID_STRLEN + SP_PMSG_ID_CAP + 2];
    int n = snprintf(key, sizeof key, "%s/%s", a->user_id, a->who.id);
    *oom = false;
    if (!g_chat) {
        g_chat = sp_map_new(sp_free);
        if (!g_chat) {
            *oom = true;
            return false;
        }
    }
    chat_hist_t *h = sp_map_get(g_chat, key, (size_t)n);
    if (!h) {
        chat_sweep(now);
        if (sp_map_count(g_chat) >= SP_TWITCH_CHAT_ACCOUNTS_MAX) {
            *oom = true;
            return false;
        }
        h = sp_calloc(1, sizeof *h);
        if (!h) {
            *oom = true;
            return false;
        }
        for (unsigned i = 0; i < SP_TWITCH_CHAT_LIMIT; i++)
            h->at[i] = UINT64_MAX; /* never sent */
        sp_map_set(g_chat, key, (size_t)n, h);
    }
    /* the oldest of the last 20 sends must be at least 30 s ago */
    uint64_t oldest = h->at[h->pos];
    if (oldest != UINT64_MAX && now - oldest < SP_TWITCH_CHAT_WINDOW_MS)
        return false;
    h->at[h->pos] = now;
    h->pos = (h->pos + 1) % SP_TWITCH_CHAT_LIMIT;
    return true;
}

static void tw_send_chat(const sp_platform_env_t *env, sp_platform_account_t *a, const char *text,
                         const char *reply_to, sp_platform_chat_cb cb, void *ud)
{
    op_t *o = op_new(OP_CHAT, env, ud);
    if (!o)
        return;
    o->cb.chat = cb;
    char url[URL_CAP];
    if (!a || !id_ok(a->who.id) || !text) {
        op_defer(o, SP_EINVAL);
        return;
    }
    if (!api_url(env, url, "/chat/messages", NULL)) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    sp_buf_t body;
    sp_buf_init(&body, 16 * 1024);
    int rc = sp_helix_chat_body(a->who.id, a->who.id, text,
                                reply_to && reply_to[0] ? reply_to : NULL, &body);
    if (rc) {
        sp_buf_cleanup(&body);
        op_defer(o, rc);
        return;
    }
    bool oom;
    if (!chat_take(a, sp_mono_ms(), &oom)) {
        sp_buf_cleanup(&body);
        if (oom) {
            op_defer(o, SP_ENOMEM);
            return;
        }
        memset(&o->chat, 0, sizeof o->chat);
        snprintf(o->chat.reason, sizeof o->chat.reason, "rate limited");
        op_defer(o, 0);
        return;
    }
    helix(o, a, NULL, "POST", url, body.p, body.len);
    sp_buf_cleanup(&body);
}

static void tw_update_channel(const sp_platform_env_t *env, sp_platform_account_t *a,
                              const char *title, const char *category_id, sp_platform_done_cb cb,
                              void *ud)
{
    op_t *o = op_new(OP_CHANNEL, env, ud);
    if (!o)
        return;
    o->cb.done = cb;
    char url[URL_CAP];
    if (!a || !id_ok(a->who.id)) {
        op_defer(o, SP_EINVAL);
        return;
    }
    if (!api_url(env, url, "/channels?broadcaster_id=", a->who.id)) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    sp_buf_t body;
    sp_buf_init(&body, 8 * 1024);
    int rc = sp_helix_channel_body(title, category_id, &body);
    if (rc) {
        sp_buf_cleanup(&body);
        op_defer(o, rc);
        return;
    }
    helix(o, a, NULL, "PATCH", url, body.p, body.len);
    sp_buf_cleanup(&body);
}

static void tw_viewers(const sp_platform_env_t *env, sp_platform_account_t *a,
                       sp_platform_viewers_cb cb, void *ud)
{
    op_t *o = op_new(OP_VIEWERS, env, ud);
    if (!o)
        return;
    o->cb.viewers = cb;
    char url[URL_CAP];
    if (!a || !id_ok(a->who.id)) {
        op_defer(o, SP_EINVAL);
        return;
    }
    if (!api_url(env, url, "/streams?user_id=", a->who.id)) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    helix(o, a, NULL, "GET", url, NULL, 0);
}

static void tw_search_categories(const sp_platform_env_t *env, sp_platform_account_t *a,
                                 const char *query, sp_platform_json_cb cb, void *ud)
{
    op_t *o = op_new(OP_SEARCH, env, ud);
    if (!o)
        return;
    o->cb.json = cb;
    char url[URL_CAP];
    size_t ql = query ? strlen(query) : 0;
    if (!a || ql == 0 || ql > 256) {
        op_defer(o, SP_EINVAL);
        return;
    }
    char *q = curl_easy_escape(NULL, query, (int)ql);
    if (!q) {
        op_defer(o, SP_ENOMEM);
        return;
    }
    bool ok = api_url(env, url, "/search/categories?first=20&query=", q);
    curl_free(q);
    if (!ok) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    helix(o, a, NULL, "GET", url, NULL, 0);
}

static void tw_revoke(const sp_platform_env_t *env, const char *token, sp_platform_done_cb cb,
                      void *ud)
{
    op_t *o = op_new(OP_REVOKE, env, ud);
    if (!o)
        return;
    o->cb.done = cb;
    const sp_config_t *cfg = env->cfg;
    if (!token || !token[0] || !cfg->twitch_client_id || !cfg->twitch_client_id[0] ||
        !cfg->twitch_auth_url) {
        op_defer(o, SP_EINVAL);
        return;
    }
    char url[URL_CAP];
    if ((size_t)snprintf(url, sizeof url, "%s/revoke", cfg->twitch_auth_url) >= sizeof url) {
        op_defer(o, SP_ECONFIG);
        return;
    }
    char *cid = curl_easy_escape(NULL, cfg->twitch_client_id, 0);
    char *tok = curl_easy_escape(NULL, token, 0);
    sp_buf_t body;
    sp_buf_init(&body, 8 * 1024);
    int rc = cid && tok ? sp_buf_appendf(&body, "client_id=%s&token=%s", cid, tok) : SP_ENOMEM;
    if (tok) {
        memset(tok, 0, strlen(tok));
        curl_free(tok);
    }
    curl_free(cid);
    if (rc) {
        sp_buf_cleanup(&body);
        op_defer(o, rc);
        return;
    }
    sp_platform_req_t req = { .method = "POST", .url = url, .body = body.p,
                              .body_len = body.len,
                              .content_type = "application/x-www-form-urlencoded" };
    rc = sp_platform_http_as(env, &sp_platform_twitch, NULL, &req, on_http, o);
    memset(body.p, 0, body.len);
    sp_buf_cleanup(&body);
    if (rc)
        op_defer(o, rc);
}

static sp_platform_monitor_t *tw_monitor_start(const sp_platform_env_t *env,
                                               sp_platform_account_t *a,
                                               const sp_platform_sink_t *sink)
{
    /* TWITCH_EVENTSUB_TRANSPORT: webhook (subscriptions only; events come by POST
     * /webhooks/twitch) or the EventSub WebSocket */
    if (env && sp_config_twitch_webhook(env->cfg))
        return sp_twitch_whmon_start(env, a, sink);
    return sp_twitch_monitor_start(env, a, sink);
}

static void tw_monitor_stop(sp_platform_monitor_t *m)
{
    if (sp_twitch_whmon_owns(m))
        sp_twitch_whmon_stop(m);
    else
        sp_twitch_monitor_stop(m);
}

const sp_platform_t sp_platform_twitch = {
    .name = "twitch",
    .display_name = "Twitch",
    .oauth = tw_oauth,
    .lookup = tw_lookup,
    .ingest = tw_ingest,
    .monitor_start = tw_monitor_start,
    .monitor_stop = tw_monitor_stop,
    .send_chat = tw_send_chat,
    .update_channel = tw_update_channel,
    .viewers = tw_viewers,
    .search_categories = tw_search_categories,
    .revoke = tw_revoke,
};
