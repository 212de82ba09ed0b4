/*
 * sp_routes_widgets: widget tokens, configs, AlertBox controls, test alerts and chat, the widget
 * pages, and the AlertQueue wiring. Contract: docs/widgets.md. See sp_widgets.h.
 */
#include "web/sp_widgets.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sp_seal.h"
#include "bus/sp_pubsub.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "livestream/sp_livestream.h"
#include "livestream/sp_ls_alerts.h"
#include "livestream/sp_widget_config.h"
#include "net/sp_metrics.h"
#include "net/sp_static.h"
#include "net/sp_ws.h"
#include "platforms/sp_psup.h"
#include "store/sp_store.h"
#include "web/sp_web.h"

#define MOD "widgets"
#define CONFIG_BODY_MAX 16384
#define SEAL_PURPOSE "widget_token"
#define CHAT_TEXT_MAX 500
#define CHAT_NAME_MAX 64
#define PAGE_MAX (1024 * 1024)
#define CLOSE_ROTATED 4001

static const char *const wtypes[] = { "alertbox", "chat" };

/* ---- request context ------------------------------------------------------------------ */

typedef struct {
    sp_app_t *app;
    sp_http_req_t *req;
    char user[64];
    char type[16];
    char token[SP_WIDGET_TOKEN_HEX + 1];
    json_t *body;   /* PUT config patch */
    int step;
} wctx_t;

static wctx_t *ctx_new(sp_app_t *app, sp_http_req_t *req, const char *user, const char *type)
{
    wctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sp_http_respond_error(req, 503, "unavailable", "out of memory");
        return NULL;
    }
    c->app = app;
    c->req = req;
    snprintf(c->user, sizeof(c->user), "%s", user ? user : "");
    snprintf(c->type, sizeof(c->type), "%s", type ? type : "");
    return c;
}

static void ctx_free(wctx_t *c)
{
    json_decref(c->body);
    free(c);
}

static bool store_failed(wctx_t *c, int err)
{
    if (err == 0)
        return false;
    sp_http_respond_error(c->req, 503, "unavailable", sp_strerror(err));
    ctx_free(c);
    return true;
}

static unsigned type_flag(const char *type)
{
    return strcmp(type, "alertbox") == 0 ? SP_WS_WIDGET_ALERTBOX : SP_WS_WIDGET_CHAT;
}

/* ---- tokens ------------------------------------------------------------------------------ */

static void token_hash(const char *token, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static bool token_wellformed(const char *t)
{
    if (strlen(t) != SP_WIDGET_TOKEN_HEX)
        return false;
    for (const char *p = t; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
            return false;
    return true;
}

typedef struct {
    sp_widget_token_cb cb;
    void *ud;
} lookup_t;

static void on_lookup(int err, json_t *rows, int64_t changes, void *ud)
{
    lookup_t *l = ud;
    (void)changes;
    json_t *r = json_array_get(rows, 0);
    const char *user = json_string_value(json_object_get(r, "user_id"));
    const char *type = json_string_value(json_object_get(r, "widget_type"));
    if (err == 0 && (!user || !sp_wcfg_type_ok(type)))
        err = SP_ENOTFOUND;
    l->cb(err, err ? NULL : user, err ? NULL : type, l->ud);
    free(l);
}

void sp_widgets_token_lookup(sp_app_t *app, const char *token, sp_widget_token_cb cb, void *ud)
{
    lookup_t *l = NULL;
    if (!app->store || !token || !token_wellformed(token) ||
        (l = calloc(1, sizeof(*l))) == NULL) {
        cb(app->store && l == NULL && token && token_wellformed(token) ? SP_ENOMEM : SP_ENOTFOUND,
           NULL, NULL, ud);
        return;
    }
    l->cb = cb;
    l->ud = ud;
    char h[65];
    token_hash(token, h);
    sp_store_query(app->store,
                   "SELECT user_id, widget_type FROM widget_tokens WHERE token_hash = $1",
                   json_pack("[s]", h), on_lookup, l);
}

static json_t *widget_entry(const sp_app_t *app, const char *type, const char *token)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/widgets/%s?token=%s", app->cfg->public_url ? app->cfg->public_url
                                                                              : "",
             type, token);
    char cfg_url[64];
    snprintf(cfg_url, sizeof(cfg_url), "/api/widgets/%s/config", type);
    return json_pack("{s:s, s:s, s:s}", "type", type, "url", url, "config_url", cfg_url);
}

/* A new token: the INSERT (hash + sealed) params; token filled. NULL when sealing fails. */
static json_t *new_token_params(const char *user, const char *type, char token[65])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, 65, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    char h[65];
    token_hash(token, h);
    char *sealed = sp_seal(user, SEAL_PURPOSE, token, strlen(token));
    if (sealed == NULL)
        return NULL;
    json_t *p = json_pack("[s, s, s, s, I]", h, user, type, sealed, (json_int_t)sp_wall_ms());
    free(sealed);
    return p;
}

/* GET /api/widgets: select; create missing tokens (step 1); select again (step 2). */
static void list_step(wctx_t *c);

static void on_list_rows(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)changes;
    if (store_failed(c, err))
        return;
    json_t *out = json_array();
    bool missing = false;
    for (size_t t = 0; t < 2; t++) {
        const char *tok = NULL;
        sp_buf_t plain;
        sp_buf_init(&plain, 256);
        for (size_t i = 0; i < json_array_size(rows) && !tok; i++) {
            json_t *r = json_array_get(rows, i);
            const char *sealed = json_string_value(json_object_get(r, "token_sealed"));
            if (strcmp(json_string_value(json_object_get(r, "widget_type")) ?: "", wtypes[t]) ||
                !sealed)
                continue;
            sp_buf_reset(&plain);
            if (sp_unseal(c->user, SEAL_PURPOSE, sealed, &plain) == 0 &&
                token_wellformed(plain.p))
                tok = plain.p;
        }
        if (tok)
            json_array_append_new(out, widget_entry(c->app, wtypes[t], tok));
        else
            missing = true;
        sp_buf_cleanup(&plain);
    }
    if (missing && c->step == 0) {
        json_decref(out);
        c->step = 1;
        list_step(c);
        return;
    }
    if (missing) {
        json_decref(out);
        sp_http_respond_error(c->req, 503, "unavailable", "widget tokens unavailable");
        ctx_free(c);
        return;
    }
    sp_http_respond_json(c->req, 200, out);
    ctx_free(c);
}

static void on_created(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)rows;
    (void)changes;
    if (store_failed(c, err))
        return;
    c->step = 2;
    list_step(c);
}

static void list_step(wctx_t *c)
{
    if (c->step != 1) {
        sp_store_query(c->app->store,
                       "SELECT widget_type, token_sealed FROM widget_tokens WHERE user_id = $1",
                       json_pack("[s]", c->user), on_list_rows, c);
        return;
    }
    /* a type without a usable token gets one (an unsealable old row is replaced) */
    const char *sqls[4];
    json_t *params[4];
    size_t n = 0;
    for (size_t t = 0; t < 2; t++) {
        char tok[65];
        json_t *p = new_token_params(c->user, wtypes[t], tok);
        sodium_memzero(tok, sizeof(tok));
        if (p == NULL) {
            for (size_t i = 0; i < n; i++)
                json_decref(params[i]);
            sp_http_respond_error(c->req, 503, "unavailable", "cannot seal widget token");
            ctx_free(c);
            return;
        }
        sqls[n] = "DELETE FROM widget_tokens WHERE user_id = $1 AND widget_type = $2 AND "
                  "token_sealed IS NULL";
        params[n++] = json_pack("[s, s]", c->user, wtypes[t]);
        sqls[n] = "INSERT INTO widget_tokens (token_hash, user_id, widget_type, token_sealed, "
                  "created_at) SELECT $1, $2, $3, $4, CAST($5 AS BIGINT) WHERE NOT EXISTS "
                  "(SELECT 1 FROM widget_tokens WHERE user_id = $2 AND widget_type = $3)";
        params[n++] = p;
    }
    sp_store_tx(c->app->store, n, sqls, params, on_created, c);
}

static void h_list(sp_http_req_t *req, void *ud)
{
    wctx_t *c = ctx_new(ud, req, sp_web_user(req), NULL);
    if (c)
        list_step(c);
}

/* POST /api/widgets/{type}/token */
static void on_rotated(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)rows;
    (void)changes;
    if (store_failed(c, err))
        return;
    size_t closed = 0;
    if (c->app->ws)
        closed = sp_ws_hub_close_user(c->app->ws, c->user, type_flag(c->type), CLOSE_ROTATED,
                                      "token rotated");
    sp_ulog(SP_LOG_INFO, MOD, c->user, "widget token rotated", "type=%s sockets_closed=%zu",
            c->type, closed);
    sp_http_respond_json(c->req, 200, widget_entry(c->app, c->type, c->token));
    sodium_memzero(c->token, sizeof(c->token));
    ctx_free(c);
}

static void rotate(wctx_t *c)
{
    json_t *p = new_token_params(c->user, c->type, c->token);
    if (p == NULL) {
        sp_http_respond_error(c->req, 503, "unavailable", "cannot seal widget token");
        ctx_free(c);
        return;
    }
    const char *sqls[2] = {
        "DELETE FROM widget_tokens WHERE user_id = $1 AND widget_type = $2",
        "INSERT INTO widget_tokens (token_hash, user_id, widget_type, token_sealed, created_at) "
        "VALUES ($1, $2, $3, $4, $5)",
    };
    json_t *params[2] = { json_pack("[s, s]", c->user, c->type), p };
    sp_store_tx(c->app->store, 2, sqls, params, on_rotated, c);
}

/* ---- config -------------------------------------------------------------------------------- */

static json_t *stored_config(json_t *rows, const char *type)
{
    const char *text = json_string_value(json_object_get(json_array_get(rows, 0), "config"));
    json_t *stored = text ? json_loads(text, 0, NULL) : NULL;
    json_t *cfg = sp_wcfg_load(type, stored);
    json_decref(stored);
    return cfg;
}

static void select_config(wctx_t *c, sp_store_cb cb)
{
    sp_store_query(c->app->store,
                   "SELECT config FROM widget_configs WHERE user_id = $1 AND widget_type = $2",
                   json_pack("[s, s]", c->user, c->type), cb, c);
}

static void on_get_config(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)changes;
    if (store_failed(c, err))
        return;
    sp_http_respond_json(c->req, 200,
                         json_pack("{s:s, s:o, s:o}", "type", c->type, "config",
                                   stored_config(rows, c->type), "defaults",
                                   sp_wcfg_defaults(c->type)));
    ctx_free(c);
}

static void publish_config(sp_app_t *app, const char *user, const char *type, json_t *cfg)
{
    if (app->pubsub) {
        char topic[SP_TOPIC_MAX];
        snprintf(topic, sizeof(topic), "widget_config:%s:%s", type, user);
        sp_pubsub_publish(app->pubsub, topic, "config", cfg);
    }
    if (app->alerts && strcmp(type, "alertbox") == 0)
        sp_alerts_set_config(app->alerts, user, cfg);
}

static void on_saved(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)rows;
    (void)changes;
    if (store_failed(c, err))
        return;
    publish_config(c->app, c->user, c->type, c->body);
    sp_http_respond_json(c->req, 200, json_pack("{s:s, s:O}", "type", c->type, "config", c->body));
    ctx_free(c);
}

static void on_put_current(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)changes;
    if (store_failed(c, err))
        return;
    json_t *base = stored_config(rows, c->type), *out = NULL;
    char field[SP_WCFG_FIELD_CAP];
    const char *why = NULL;
    int rc = sp_wcfg_apply(c->type, base, c->body, &out, field, sizeof(field), &why);
    json_decref(base);
    if (rc != 0) {
        sp_http_respond_json(c->req, rc == SP_EINVAL ? 422 : 503,
                             json_pack("{s:s, s:s, s:s}", "error", "invalid", "field", field,
                                       "message", why ? why : sp_strerror(rc)));
        ctx_free(c);
        return;
    }
    json_decref(c->body);
    c->body = out;
    sp_store_query(c->app->store,
                   "INSERT INTO widget_configs (user_id, widget_type, config, updated_at) "
                   "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, widget_type) DO UPDATE SET "
                   "config = excluded.config, updated_at = excluded.updated_at",
                   json_pack("[s, s, O, I]", c->user, c->type, out, (json_int_t)sp_wall_ms()),
                   on_saved, c);
}

/* ---- AlertBox controls, tests ------------------------------------------------------------- */

static void respond_alerts_err(sp_http_req_t *req, int rc)
{
    switch (rc) {
    case SP_EINVAL: sp_http_respond_error(req, 422, "invalid", "unknown alert type"); return;
    case SP_ENOTFOUND:
        sp_http_respond_error(req, 409, "nothing_showing", "no alert is on screen");
        return;
    case SP_ELIMIT:
        sp_http_respond_error(req, 409, "queue_full", "the queue is full of higher priorities");
        return;
    case SP_EBUSY: sp_http_respond_error(req, 503, "starting", "alert queues are loading"); return;
    default: sp_http_respond_error(req, 503, "unavailable", sp_strerror(rc)); return;
    }
}

static void on_replay_event(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)changes;
    if (store_failed(c, err))
        return;
    const char *text = json_string_value(json_object_get(json_array_get(rows, 0), "payload"));
    json_t *payload = text ? json_loads(text, 0, NULL) : NULL;
    sp_aq_alert_t *al = malloc(sizeof(*al));
    uint64_t key = 0;
    int rc = SP_ENOTFOUND;
    if (payload && al && sp_alerts_from_json(payload, al) == 0)
        rc = sp_alerts_replay(c->app->alerts, c->user, al, &key);
    json_decref(payload);
    free(al);
    if (rc == SP_ENOTFOUND)
        sp_http_respond_error(c->req, 404, "not_found", "no such alert event");
    else if (rc != 0)
        respond_alerts_err(c->req, rc);
    else
        sp_http_respond_json(c->req, 200, json_pack("{s:I}", "key", (json_int_t)key));
    ctx_free(c);
}

static void chat_test(sp_app_t *app, sp_http_req_t *req, const char *user, json_t *body)
{
    static const char *const plats[] = { "twitch", "youtube", "kick", "facebook" };
    const char *platform = json_string_value(json_object_get(body, "platform"));
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *text = json_string_value(json_object_get(body, "text"));
    bool ok = true;
    if (json_object_get(body, "platform")) {
        ok = false;
        for (size_t i = 0; platform && i < 4; i++)
            ok = ok || strcmp(platform, plats[i]) == 0;
    }
    if (!ok) {
        sp_http_respond_json(req, 422, json_pack("{s:s, s:s, s:s}", "error", "invalid", "field",
                                                 "platform", "message", "unknown platform"));
        return;
    }
    size_t nl = name ? strlen(name) : 0, tl = text ? strlen(text) : 0;
    if ((json_object_get(body, "name") && (!name || nl < 1 || nl > CHAT_NAME_MAX)) ||
        (json_object_get(body, "text") && (!text || tl < 1 || tl > CHAT_TEXT_MAX * 4))) {
        bool bad_name = json_object_get(body, "name") && (!name || nl < 1 || nl > CHAT_NAME_MAX);
        sp_http_respond_json(req, 422,
                             json_pack("{s:s, s:s, s:s}", "error", "invalid", "field",
                                       bad_name ? "name" : "text", "message",
                                       bad_name ? "name: 1..64 bytes" : "text: 1..500 chars"));
        return;
    }
    char id[SP_UUID_STRLEN + 8], uuid[SP_UUID_STRLEN], login[CHAT_NAME_MAX + 1];
    sp_uuid_v4(uuid);
    snprintf(id, sizeof(id), "test-%s", uuid);
    if (!name)
        name = "TestUser";
    if (!text)
        text = "Hello from the test chat!";
    size_t i = 0;
    for (; name[i] && i < CHAT_NAME_MAX; i++)
        login[i] = (char)tolower((unsigned char)name[i]);
    login[i] = 0;
    json_t *msg = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:[]}, s:s, s:[{s:s, s:s}], s:I, "
                            "s:b}",
                            "id", id, "platform", platform ? platform : "twitch", "author", "id",
                            "test-user", "name", login, "display_name", name, "color", "#9146FF",
                            "badges", "text", text, "fragments", "type", "text", "text", text,
                            "ts", (json_int_t)sp_wall_ms(), "test", 1);
    if (msg == NULL) {
        sp_http_respond_json(req, 422, json_pack("{s:s, s:s, s:s}", "error", "invalid", "field",
                                                 "text", "message", "invalid UTF-8"));
        return;
    }
    if (app->pubsub) {
        char topic[SP_TOPIC_MAX];
        snprintf(topic, sizeof(topic), "chat:%s", user);
        if (app->cfg->test_mode) /* bench/widgets: publish -> arrival */
            json_object_set_new(msg, "published_at_ns", json_integer(sp_alerts_wall_ns()));
        sp_pubsub_publish(app->pubsub, topic, "message", msg);
    }
    sp_http_respond_json(req, 200, json_pack("{s:o}", "message", msg));
}

/* POST /api/widgets/{type}/{action} */
static void h_action(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *type = sp_http_req_param(req, "type");
    const char *action = sp_http_req_param(req, "action");
    const char *user = sp_web_user(req);
    if (!sp_wcfg_type_ok(type)) {
        sp_http_respond_error(req, 404, "not_found", "unknown widget type");
        return;
    }
    if (strcmp(action, "token") == 0) {
        wctx_t *c = ctx_new(app, req, user, type);
        if (c)
            rotate(c);
        return;
    }
    bool alertbox = strcmp(type, "alertbox") == 0;
    static const char *const ctl_names[] = { "pause", "resume", "skip", "clear" };
    for (int i = 0; alertbox && i < 4; i++)
        if (strcmp(action, ctl_names[i]) == 0) {
            json_t *state = NULL;
            int rc = app->alerts ? sp_alerts_control(app->alerts, user, (sp_alerts_ctl_t)i,
                                                     &state)
                                 : SP_EUNAVAIL;
            if (rc)
                respond_alerts_err(req, rc);
            else
                sp_http_respond_json(req, 200, state);
            return;
        }
    bool test = strcmp(action, "test") == 0, replay = alertbox && strcmp(action, "replay") == 0;
    if (!test && !replay) {
        sp_http_respond_error(req, 404, "not_found", "unknown widget action");
        return;
    }
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL)
        return;
    if (test && !alertbox) {
        chat_test(app, req, user, body);
    } else if (test) {
        uint64_t key = 0;
        int rc = app->alerts ? sp_alerts_test(app->alerts, user,
                                              json_string_value(json_object_get(body, "type")),
                                              &key)
                             : SP_EUNAVAIL;
        if (rc)
            respond_alerts_err(req, rc);
        else
            sp_http_respond_json(req, 200, json_pack("{s:I}", "key", (json_int_t)key));
    } else {
        const char *ev = json_string_value(json_object_get(body, "event_id"));
        wctx_t *c = NULL;
        if (!ev || !*ev || strlen(ev) > 64) {
            sp_http_respond_json(req, 422, json_pack("{s:s, s:s, s:s}", "error", "invalid",
                                                     "field", "event_id", "message",
                                                     "event_id required"));
        } else if (!app->alerts) {
            respond_alerts_err(req, SP_EUNAVAIL);
        } else if ((c = ctx_new(app, req, user, type)) != NULL) {
            sp_store_query(app->store,
                           "SELECT payload FROM events WHERE id = $1 AND user_id = $2 AND "
                           "type = 'alert'",
                           json_pack("[s, s]", ev, user), on_replay_event, c);
        }
    }
    json_decref(body);
}

/* GET|PUT /api/widgets/{type}/config, GET /api/widgets/alertbox/state */
static void h_get(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *type = sp_http_req_param(req, "type");
    const char *action = sp_http_req_param(req, "action");
    const char *user = sp_web_user(req);
    if (!sp_wcfg_type_ok(type)) {
        sp_http_respond_error(req, 404, "not_found", "unknown widget type");
        return;
    }
    if (strcmp(type, "alertbox") == 0 && strcmp(action, "state") == 0) {
        sp_http_respond_json(req, 200, sp_alerts_state(app->alerts, user));
        return;
    }
    if (strcmp(action, "config") != 0) {
        sp_http_respond_error(req, 404, "not_found", "unknown widget resource");
        return;
    }
    wctx_t *c = ctx_new(app, req, user, type);
    if (c)
        select_config(c, on_get_config);
}

static void h_put_config(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *type = sp_http_req_param(req, "type");
    if (!sp_wcfg_type_ok(type)) {
        sp_http_respond_error(req, 404, "not_found", "unknown widget type");
        return;
    }
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL)
        return;
    wctx_t *c = ctx_new(app, req, sp_web_user(req), type);
    if (c == NULL) {
        json_decref(body);
        return;
    }
    c->body = body;
    select_config(c, on_put_current);
}

/* ---- widget pages (public, by token) ------------------------------------------------------- */

static void on_token_config(int err, json_t *rows, int64_t changes, void *ud)
{
    wctx_t *c = ud;
    (void)changes;
    if (store_failed(c, err))
        return;
    char sock[128];
    snprintf(sock, sizeof(sock), "/socket?widget_token=%s", c->token);
    sp_http_res_header(c->req, "Cache-Control", "no-store");
    sp_http_respond_json(c->req, 200,
                         json_pack("{s:s, s:s, s:o, s:s}", "user_id", c->user, "type", c->type,
                                   "config", stored_config(rows, c->type), "socket_url", sock));
    ctx_free(c);
}

static void on_page_token(int err, const char *user, const char *type, void *ud)
{
    wctx_t *c = ud;
    if (err || !type || strcmp(type, c->type) != 0) {
        sp_http_respond_error(c->req, err && err != SP_ENOTFOUND ? 503 : 404, "not_found",
                              "unknown widget token");
        ctx_free(c);
        return;
    }
    snprintf(c->user, sizeof(c->user), "%s", user);
    if (c->step == 0) { /* the page */
        char path[1024];
        snprintf(path, sizeof(path), "%s/widgets/%s.html", c->app->cfg->web_dir, c->type);
        sp_http_res_header(c->req, "Cache-Control", "no-store");
        sp_http_res_header(c->req, "Referrer-Policy", "no-referrer");
        sp_widgets_send_file(c->req, path, PAGE_MAX, "text/html; charset=utf-8", NULL);
        ctx_free(c);
        return;
    }
    select_config(c, on_token_config);
}

/* GET /widgets/{type}?token=T (the page) and other files under web/widgets/ */
static void h_page(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *type = sp_http_req_param(req, "type");
    if (!sp_wcfg_type_ok(type)) { /* an asset of the pages: /widgets/alertbox.js ... */
        char rel[512], path[1024];
        const char *p = sp_http_req_path(req);
        if (sp_static_resolve(p, strlen(p), rel, sizeof(rel)) != 0) {
            sp_http_respond_error(req, 404, "not_found", "not found");
            return;
        }
        snprintf(path, sizeof(path), "%s/%s", app->cfg->web_dir, rel);
        sp_widgets_send_file(req, path, PAGE_MAX, sp_static_mime(rel), "no-cache");
        return;
    }
    wctx_t *c = ctx_new(app, req, NULL, type);
    if (c == NULL)
        return;
    if (!sp_http_req_query_param(req, "token", c->token, sizeof(c->token)))
        c->token[0] = 0;
    sp_widgets_token_lookup(app, c->token, on_page_token, c);
}

/* GET /widgets/{type}/config?token=T */
static void h_page_config(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *type = sp_http_req_param(req, "type");
    if (!sp_wcfg_type_ok(type)) {
        sp_http_respond_error(req, 404, "not_found", "unknown widget type");
        return;
    }
    wctx_t *c = ctx_new(app, req, NULL, type);
    if (c == NULL)
        return;
    c->step = 1;
    if (!sp_http_req_query_param(req, "token", c->token, sizeof(c->token)))
        c->token[0] = 0;
    sp_widgets_token_lookup(app, c->token, on_page_token, c);
}

/* ---- test hook: alerts as psup would hand them over ------------------------------------- */

#ifdef SP_TEST_HOOKS
/* POST /api/_test/alerts {alerts:[normalised alert...]}: each published as `alert` and pushed
 * into the user's AlertQueue, exactly the psup path (platforms need not exist). */
static void h_test_alerts(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *user = sp_web_user(req);
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL)
        return;
    json_t *list = json_object_get(body, "alerts");
    size_t bad = 0;
    char topic[SP_TOPIC_MAX];
    snprintf(topic, sizeof(topic), "alertbox:%s", user);
    for (size_t i = 0; i < json_array_size(list); i++) {
        sp_aq_alert_t *al = malloc(sizeof(*al));
        json_t *j = json_array_get(list, i);
        if (al && sp_alerts_from_json(j, al) == 0) {
            sp_alerts_push(app->alerts, user, al);
            if (app->pubsub)
                sp_pubsub_publish(app->pubsub, topic, "alert", j);
        } else {
            bad++;
        }
        free(al);
    }
    sp_http_respond_json(req, bad ? 422 : 200,
                         json_pack("{s:I, s:I}", "accepted",
                                   (json_int_t)(json_array_size(list) - bad), "refused",
                                   (json_int_t)bad));
    json_decref(body);
}
#endif

/* ---- wiring -------------------------------------------------------------------------------- */

static void alert_hook(void *ud, const char *user_id, const json_t *alert)
{
    sp_app_t *app = ud;
    sp_aq_alert_t *al = malloc(sizeof(*al));
    if (al && sp_alerts_from_json(alert, al) == 0)
        sp_alerts_push(app->alerts, user_id, al);
    free(al);
}

static void render_metrics(sp_buf_t *out, void *ud)
{
    sp_app_t *app = ud;
    sp_alerts_write_metrics(app->alerts, out);
}

int sp_web_widgets_init(sp_app_t *app)
{
    sp_alerts_opts_t o = {
        .loop = app->loop,
        .store = app->store,
        .bus = app->pubsub,
        .capacity = (size_t)app->cfg->alert_queue_size,
        .interval_ms = app->cfg->alert_processing_interval,
        .reg = app->live ? sp_livestream_registry(app->live) : NULL,
        .stamp_ns = app->cfg->test_mode,
    };
    app->alerts = sp_alerts_new(&o);
    if (app->alerts == NULL)
        return SP_ENOMEM;
    if (app->psup)
        sp_psup_set_alert_hook(app->psup, alert_hook, app);
    sp_metrics_register(render_metrics, app);

    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_route_opts_t cfg = { .body_limit = CONFIG_BODY_MAX, .flags = SP_ROUTE_AUTH };
    sp_route_opts_t pub = { .body_limit = 0, .flags = SP_ROUTE_PUBLIC };
    sp_router_add(app->router, "GET", "/api/widgets", h_list, app, &auth);
    sp_router_add(app->router, "POST", "/api/widgets/{type}/{action}", h_action, app, &auth);
    sp_router_add(app->router, "GET", "/api/widgets/{type}/{action}", h_get, app, &auth);
    sp_router_add(app->router, "PUT", "/api/widgets/{type}/config", h_put_config, app, &cfg);
    sp_router_add(app->router, "GET", "/widgets/{type}", h_page, app, &pub);
    sp_router_add(app->router, "GET", "/widgets/{type}/config", h_page_config, app, &pub);
    sp_routes_uploads_register(app);
#ifdef SP_TEST_HOOKS
    if (app->cfg->test_mode) {
        sp_route_opts_t t = { .body_limit = 1024 * 1024, .flags = SP_ROUTE_AUTH };
        sp_router_add(app->router, "POST", "/api/_test/alerts", h_test_alerts, app, &t);
    }
#endif
    return 0;
}

void sp_web_widgets_shutdown(sp_app_t *app)
{
    sp_alerts_shutdown(app->alerts);
}

void sp_web_widgets_free(sp_app_t *app)
{
    if (app->psup)
        sp_psup_set_alert_hook(app->psup, NULL, NULL);
    if (app->alerts)
        sp_metrics_unregister(render_metrics, app);
    sp_alerts_free(app->alerts);
    app->alerts = NULL;
}
