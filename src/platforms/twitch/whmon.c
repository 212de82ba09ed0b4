/*
 * twitch/whmon: see whmon.h. Two small pieces: the process's app access token (an sp_token
 * whose refresher does the client_credentials grant) and the webhook monitor, which is only a
 * set of subscription calls: one creation per type at start, one deletion per created id at
 * stop.
 *
 * Lifetime: a creation call points at its monitor, so a stopped monitor's memory stays until
 * its last creation ends (a subscription created after the stop is deleted at once); deletions
 * carry what they need (env, url, user id) and point at nothing. The account reference is
 * released at stop.
 */
#include "platforms/twitch/whmon.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sp_oauth.h"
#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"
#include "platforms/sp_platform_int.h"
#include "platforms/twitch/eventsub.h"
#include "platforms/twitch/twitch.h"

#define URL_CAP 2048
#define SUB_ID_CAP 64
#define GRANT_TIMEOUT_MS 10000
#define MAX_ANSWER (64 * 1024)

/* ---- the app access token ------------------------------------------------------------------ */

static struct {
    sp_token_t *tok;
    sp_platform_env_t env; /* the last caller's (every env outlives its calls) */
    uint64_t gen;          /* bumped by reset: a grant answered after it is dropped */
} g_app;

typedef struct {
    uint64_t gen;
} grant_t;

static void on_grant(const sp_curlm_response_t *res, void *ud)
{
    grant_t *g = ud;
    uint64_t gen = g->gen;
    sp_free(g);
    sp_token_t *t = g_app.tok;
    if (!t || gen != g_app.gen)
        return; /* reset meanwhile: its waiters were answered SP_ECANCELED */
    if (res->err) {
        sp_warn("twitch", "app access token grant failed", "err=%s", sp_err_name(res->err));
        sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
        return;
    }
    sp_oauth_token_t tok;
    memset(&tok, 0, sizeof tok);
    sp_oauth_result_t pr = sp_oauth_parse_token((int)res->status, res->body, res->body_len, &tok);
    if (pr == SP_OAUTH_OK) {
        int64_t exp = tok.expires_in_s > 0 ? sp_wall_ms() + tok.expires_in_s * 1000 : 0;
        sp_debug("twitch", "app access token granted", "expires_in_s=%lld",
                 (long long)tok.expires_in_s);
        sp_token_refreshed(t, SP_TOKEN_REFRESH_OK, tok.access_token, NULL, exp);
    } else {
        /* a refused client (400/401) is a configuration problem, not a lost grant: the next
         * caller tries again rather than every later call failing for good */
        sp_warn("twitch", "app access token grant failed", "status=%ld reason=\"%s\"",
                res->status, tok.error);
        sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
    }
    sp_oauth_token_clear(&tok);
}

static void app_refresher(sp_token_t *t, const char *refresh_token, void *ud)
{
    (void)refresh_token; /* a marker: the client_credentials grant needs none */
    (void)ud;
    const sp_config_t *cfg = g_app.env.cfg;
    char url[URL_CAP];
    int rc = cfg && g_app.env.http &&
                     (size_t)snprintf(url, sizeof url, "%s/token", cfg->twitch_auth_url) <
                         sizeof url
                 ? 0
                 : SP_ECONFIG;
    sp_buf_t form;
    sp_buf_init(&form, 8 * 1024);
    if (!rc) {
        sp_oauth_form_t f = { .grant = SP_OAUTH_GRANT_CLIENT, .client_id = cfg->twitch_client_id,
                              .client_secret = cfg->twitch_client_secret };
        rc = sp_oauth_token_form(&f, &form);
    }
    grant_t *g = NULL;
    if (!rc) {
        g = sp_calloc(1, sizeof *g);
        rc = g ? 0 : SP_ENOMEM;
    }
    if (!rc) {
        g->gen = g_app.gen;
        static const char *const headers[] = {
            "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL
        };
        sp_curlm_request_t req = { .method = "POST", .url = url, .headers = headers,
                                   .body = form.p, .body_len = form.len,
                                   .timeout_ms = GRANT_TIMEOUT_MS,
                                   .max_response_bytes = SP_OAUTH_MAX_BODY,
                                   .ca_file = g_app.env.ca_file };
        rc = sp_curlm_request(g_app.env.http, &req, on_grant, g);
        if (rc)
            sp_free(g);
    }
    if (form.p)
        sodium_memzero(form.p, form.len);
    sp_buf_cleanup(&form);
    if (rc) {
        sp_warn("twitch", "cannot ask for an app access token", "err=%s", sp_err_name(rc));
        sp_token_refreshed(t, SP_TOKEN_REFRESH_RETRY, NULL, NULL, 0);
    }
}

int sp_twitch_app_token(const sp_platform_env_t *env, int64_t now_ms, const char *failed,
                        sp_token_cb cb, void *ud)
{
    if (!env || !env->cfg || !env->http || !cb)
        return SP_EINVAL;
    const sp_config_t *cfg = env->cfg;
    if (!cfg->twitch_client_id || !cfg->twitch_client_id[0] || !cfg->twitch_client_secret ||
        !cfg->twitch_client_secret[0] || !cfg->twitch_auth_url || !cfg->twitch_auth_url[0])
        return SP_ECONFIG;
    if (!g_app.tok) {
        g_app.tok = sp_token_new(app_refresher, NULL);
        if (!g_app.tok)
            return SP_ENOMEM;
        /* no access token yet: the first get runs the grant; the refresh token is a marker */
        sp_token_set(g_app.tok, NULL, "client_credentials", 0);
    }
    if (!sp_token_refreshing(g_app.tok))
        g_app.env = *env;
    return sp_token_get(g_app.tok, now_ms > 0 ? now_ms : sp_wall_ms(), failed, cb, ud);
}

void sp_twitch_app_token_reset(void)
{
    sp_token_t *t = g_app.tok;
    g_app.tok = NULL;
    g_app.gen++;
    sp_token_free(t);
    memset(&g_app.env, 0, sizeof g_app.env);
}

void sp_twitch_app_token_stats(sp_token_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (g_app.tok)
        sp_token_stats(g_app.tok, out);
}

/* ---- the monitor ----------------------------------------------------------------------------- */

typedef struct wh_s wh_t;

struct wh_s {
    wh_t *prev, *next;         /* live monitors (sp_twitch_whmon_owns) */
    sp_platform_env_t env;
    sp_platform_account_t *a;  /* NULL once stopped */
    sp_platform_sink_t sink;
    uv_timer_t timer;          /* the start, from the loop */
    bool stopped, timer_closed, reported;
    int left;                  /* creations in flight (+1 while they are issued) */
    unsigned ok, refused, failed; /* by sp_twitch_sub_t bit */
    char user_id[SP_UUID_STRLEN];
    char ids[SP_TWITCH_SUB_COUNT][SUB_ID_CAP]; /* created subscription ids, "" = none */
};

typedef enum { CALL_CREATE, CALL_DELETE } call_kind_t;

typedef struct {
    call_kind_t kind;
    wh_t *m;                   /* CREATE only */
    sp_platform_env_t env;
    unsigned sub;
    bool retried;              /* one new token after a 401 */
    char *body;                /* CREATE */
    char *bearer;              /* the app token sent (wiped) */
    char user_id[SP_UUID_STRLEN];
    char url[URL_CAP];
} call_t;

static wh_t *g_live;
static size_t g_calls;

static void wipe_free(char **p)
{
    if (*p) {
        sodium_memzero(*p, strlen(*p));
        sp_free(*p);
        *p = NULL;
    }
}

static void call_free(call_t *c)
{
    wipe_free(&c->bearer);
    free(c->body); /* jansson's (sp_twitch_es_sub_body) */
    sp_free(c);
    g_calls--;
}

static void call_end(call_t *c, int err, const sp_platform_resp_t *r);
static void call_go(call_t *c);

static void on_http(int err, const sp_platform_resp_t *r, void *ud)
{
    call_t *c = ud;
    if (!err && r && r->status == 401 && !c->retried) {
        c->retried = true; /* the app token expired early or was revoked: one new one */
        call_go(c);
        return;
    }
    call_end(c, err, r);
}

static void on_token(int err, const char *token, void *ud)
{
    call_t *c = ud;
    if (err) {
        call_end(c, err, NULL);
        return;
    }
    char cid[256];
    c->bearer = sp_strdup(token);
    int rc = c->bearer ? sp_twitch_client_id_header(c->env.cfg, cid, sizeof cid) : SP_ENOMEM;
    if (!rc) {
        const char *hdrs[] = { cid, NULL };
        sp_platform_req_t req = { .method = c->kind == CALL_CREATE ? "POST" : "DELETE",
                                  .url = c->url, .headers = hdrs, .body = c->body,
                                  .body_len = c->body ? strlen(c->body) : 0 };
        rc = sp_platform_http_as(&c->env, &sp_platform_twitch, c->bearer, &req, on_http, c);
    }
    if (rc)
        call_end(c, rc, NULL);
}

static void call_go(call_t *c)
{
    char *failed = c->bearer; /* after a 401: the token to replace */
    c->bearer = NULL;
    int rc = sp_twitch_app_token(&c->env, 0, failed, on_token, c);
    wipe_free(&failed);
    if (rc)
        call_end(c, rc, NULL);
}

/* A detached DELETE of subscription id (best effort: the outcome is only logged). */
static void delete_sub(const sp_platform_env_t *env, const char *user_id, const char *id)
{
    call_t *c = sp_calloc(1, sizeof *c);
    const char *api = env->cfg->twitch_api_url;
    if (!c || !api ||
        (size_t)snprintf(c->url, sizeof c->url, "%s/eventsub/subscriptions?id=%s", api, id) >=
            sizeof c->url) {
        sp_ulog(SP_LOG_WARN, "twitch", user_id, "eventsub webhook subscription not deleted",
                "id=%s err=%s", id, c ? "config" : "out of memory");
        sp_free(c);
        return;
    }
    g_calls++;
    c->kind = CALL_DELETE;
    c->env = *env;
    snprintf(c->user_id, sizeof c->user_id, "%s", user_id);
    call_go(c);
}

/* A subscription id as Twitch gives it (a UUID): copied when it looks like one. */
static bool parse_created_id(const sp_platform_resp_t *r, char out[SUB_ID_CAP])
{
    out[0] = '\0';
    if (!r->body || r->body_len == 0 || r->body_len > MAX_ANSWER)
        return false;
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *first = json_array_get(json_object_get(root, "data"), 0);
    const char *id = json_string_value(json_object_get(first, "id"));
    size_t n = id ? strlen(id) : 0;
    bool ok = n > 0 && n < SUB_ID_CAP;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = id[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             ch == '-';
    }
    if (ok)
        memcpy(out, id, n + 1);
    json_decref(root);
    return ok;
}

static void maybe_free(wh_t *m)
{
    if (m->stopped && m->left == 0 && m->timer_closed)
        sp_free(m);
}

static void report(wh_t *m)
{
    unsigned want = SP_TWITCH_SUB_ALL;
    const char *uid = m->user_id;
    if (m->ok == want) {
        sp_ulog(SP_LOG_DEBUG, "twitch", uid, "eventsub webhook subscriptions created", "n=%d",
                __builtin_popcount(m->ok));
        if (m->sink.status)
            m->sink.status(m->sink.ud, SP_PSTATUS_CONNECTED, "");
    } else if (m->ok) {
        char why[96];
        snprintf(why, sizeof why, "subscription_failed:%s",
                 sp_twitch_sub_type((sp_twitch_sub_t)__builtin_ctz(want & ~m->ok)));
        sp_ulog(SP_LOG_INFO, "twitch", uid, "eventsub webhook subscriptions partly created",
                "ok=%d reason=%s", __builtin_popcount(m->ok), why);
        if (m->sink.status)
            m->sink.status(m->sink.ud, SP_PSTATUS_DEGRADED, why);
    } else if (m->refused == want) {
        sp_ulog(SP_LOG_WARN, "twitch", uid, "eventsub webhook subscriptions unauthorized", "%s",
                "");
        if (m->sink.status)
            m->sink.status(m->sink.ud, SP_PSTATUS_NEEDS_REAUTH, "subscriptions_unauthorized");
    } else {
        sp_ulog(SP_LOG_WARN, "twitch", uid, "eventsub webhook monitor gave up",
                "why=subscriptions_failed");
        if (m->sink.failed)
            m->sink.failed(m->sink.ud, "subscriptions_failed");
    }
}

/* After a creation ended (or all were issued): reports once every creation has ended. */
static void settle(wh_t *m)
{
    if (m->left > 0)
        return;
    if (!m->stopped && !m->reported) {
        m->reported = true;
        report(m); /* may stop m: its memory stays until the timer's close callback */
    }
    maybe_free(m);
}

static void call_end(call_t *c, int err, const sp_platform_resp_t *r)
{
    long st = !err && r ? r->status : 0;
    if (c->kind == CALL_DELETE) {
        bool gone = st == 204 || st == 404 || (st >= 200 && st < 300);
        sp_ulog(gone ? SP_LOG_DEBUG : SP_LOG_WARN, "twitch", c->user_id,
                gone ? "eventsub webhook subscription deleted"
                     : "eventsub webhook subscription not deleted",
                "http=%ld err=%s", st, err ? sp_err_name(err) : "none");
        call_free(c);
        return;
    }
    wh_t *m = c->m;
    unsigned bit = 1u << c->sub;
    const char *type = sp_twitch_sub_type((sp_twitch_sub_t)c->sub);
    if (st >= 200 && st < 300) {
        char id[SUB_ID_CAP];
        if (!parse_created_id(r, id))
            sp_ulog(SP_LOG_WARN, "twitch", m->user_id, "eventsub webhook subscription id unknown",
                    "type=%s", type);
        else if (m->stopped)
            delete_sub(&m->env, m->user_id, id); /* created after the stop: undo it */
        else
            memcpy(m->ids[c->sub], id, sizeof id);
        m->ok |= bit;
    } else if (st == 409) {
        m->ok |= bit; /* exists already (same type, condition and callback) */
    } else if (st == 403) {
        m->refused |= bit;
        sp_ulog(SP_LOG_WARN, "twitch", m->user_id, "eventsub webhook subscription unauthorized",
                "type=%s http=403", type);
    } else {
        m->failed |= bit;
        sp_ulog(SP_LOG_WARN, "twitch", m->user_id, "eventsub webhook subscription failed",
                "type=%s http=%ld err=%s", type, st, err ? sp_err_name(err) : "none");
    }
    call_free(c);
    m->left--;
    settle(m);
}

static void on_start(uv_timer_t *t)
{
    wh_t *m = t->data;
    if (m->sink.status)
        m->sink.status(m->sink.ud, SP_PSTATUS_CONNECTING, "");
    if (m->stopped)
        return;
    const sp_config_t *cfg = m->env.cfg;
    char callback[URL_CAP], url[URL_CAP];
    bool cfg_ok =
        (size_t)snprintf(callback, sizeof callback, "%s/webhooks/twitch", cfg->public_url) <
            sizeof callback &&
        (size_t)snprintf(url, sizeof url, "%s/eventsub/subscriptions", cfg->twitch_api_url) <
            sizeof url;
    sp_twitch_transport_t tr = { .method = "webhook", .callback = callback,
                                 .secret = cfg->twitch_webhook_secret };
    m->left = 1; /* held until every creation is issued */
    for (unsigned i = 0; i < SP_TWITCH_SUB_COUNT && !m->stopped; i++) {
        char *body = NULL;
        int rc = cfg_ok ? sp_twitch_es_sub_body((sp_twitch_sub_t)i, m->a->who.id, m->a->who.id,
                                                &tr, &body)
                        : SP_ECONFIG;
        call_t *c = rc ? NULL : sp_calloc(1, sizeof *c);
        if (!rc && !c)
            rc = SP_ENOMEM;
        if (rc) {
            free(body);
            m->failed |= 1u << i;
            sp_ulog(SP_LOG_WARN, "twitch", m->user_id, "eventsub webhook subscription failed",
                    "type=%s err=%s", sp_twitch_sub_type((sp_twitch_sub_t)i), sp_err_name(rc));
            continue;
        }
        g_calls++;
        c->kind = CALL_CREATE;
        c->m = m;
        c->env = m->env;
        c->sub = i;
        c->body = body;
        snprintf(c->user_id, sizeof c->user_id, "%s", m->user_id);
        memcpy(c->url, url, sizeof url);
        m->left++;
        call_go(c);
    }
    m->left--;
    settle(m);
}

sp_platform_monitor_t *sp_twitch_whmon_start(const sp_platform_env_t *env,
                                             sp_platform_account_t *a,
                                             const sp_platform_sink_t *sink)
{
    if (!env || !env->loop || !env->cfg || !env->http || !a || !sink)
        return NULL;
    const sp_config_t *cfg = env->cfg;
    if (!cfg->twitch_webhook_secret || !cfg->twitch_webhook_secret[0] || !cfg->public_url ||
        !cfg->public_url[0] || !cfg->twitch_api_url || !cfg->twitch_client_id) {
        sp_ulog(SP_LOG_ERROR, "twitch", a->user_id, "eventsub webhook monitor not configured",
                "%s", "needs TWITCH_WEBHOOK_SECRET, PUBLIC_URL and the Twitch client");
        return NULL;
    }
    wh_t *m = sp_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->env = *env;
    m->a = a;
    m->sink = *sink;
    snprintf(m->user_id, sizeof m->user_id, "%s", a->user_id);
    sp_platform_account_ref(a);
    uv_timer_init(env->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, on_start, 0, 0);
    m->next = g_live;
    if (g_live)
        g_live->prev = m;
    g_live = m;
    return (sp_platform_monitor_t *)m;
}

static void on_timer_closed(uv_handle_t *h)
{
    wh_t *m = h->data;
    m->timer_closed = true;
    maybe_free(m);
}

void sp_twitch_whmon_stop(sp_platform_monitor_t *pm)
{
    wh_t *m = (wh_t *)pm;
    if (!m || m->stopped)
        return;
    m->stopped = true;
    if (m->prev)
        m->prev->next = m->next;
    else if (g_live == m)
        g_live = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
    for (unsigned i = 0; i < SP_TWITCH_SUB_COUNT; i++) {
        if (m->ids[i][0])
            delete_sub(&m->env, m->user_id, m->ids[i]);
        m->ids[i][0] = '\0';
    }
    sp_platform_account_t *a = m->a;
    m->a = NULL;
    sp_platform_account_unref(a);
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

bool sp_twitch_whmon_owns(const sp_platform_monitor_t *pm)
{
    for (const wh_t *m = g_live; m; m = m->next) {
        if ((const sp_platform_monitor_t *)m == pm)
            return true;
    }
    return false;
}

unsigned sp_twitch_whmon_created(const sp_platform_monitor_t *pm)
{
    const wh_t *m = (const wh_t *)pm;
    unsigned n = 0;
    for (unsigned i = 0; m && i < SP_TWITCH_SUB_COUNT; i++)
        n += m->ids[i][0] != '\0';
    return n;
}

size_t sp_twitch_whmon_calls_pending(void)
{
    return g_calls;
}
