/*
 * sp_platform: the platform registry, account references and the one authorized HTTP call every
 * platform client uses (token, 401 refresh-and-retry-once, per-platform rate-limit wait and
 * breaker). See sp_platform.h.
 *
 * A call is a small heap object with its own uv_timer: every step after the first runs from the
 * timer (or from the HTTP completion), so callbacks are never synchronous and a token callback
 * never finishes a call inside sp_token_get / sp_token_refreshed (which may free the account).
 */
#include "platforms/sp_platform.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_breaker.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "core/sp_map.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"
#include "platforms/sp_platform_int.h"
#include "platforms/twitch/helix.h"
#include "platforms/twitch/twitch.h"

/* ---- registry ------------------------------------------------------------------------------ */

static const sp_platform_t *const g_all[] = {
    &sp_platform_twitch,
    NULL,
};

const sp_platform_t *const *sp_platform_all(void)
{
    return g_all;
}

const sp_platform_t *sp_platform_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; g_all[i]; i++) {
        if (strcmp(g_all[i]->name, name) == 0)
            return g_all[i];
    }
    return NULL;
}

/* ---- accounts ------------------------------------------------------------------------------ */

static sp_platform_account_free_fn g_free_hook;

void sp_platform_account_set_free_hook(sp_platform_account_free_fn fn)
{
    g_free_hook = fn;
}

void sp_platform_account_ref(sp_platform_account_t *a)
{
    if (a)
        a->refs++;
}

void sp_platform_account_unref(sp_platform_account_t *a)
{
    if (!a || --a->refs > 0)
        return;
    if (g_free_hook) {
        g_free_hook(a);
        return;
    }
    /* no owner installed (tests): the account and its token were allocated with sp_* */
    sp_token_free(a->token);
    sp_free(a);
}

/* ---- gate: one breaker and one rate-limit wait per platform ------------------------------- */

/* Twitch's (and most platforms') rate-limit buckets are per client id + user: a wait asked for
 * by an answer to an account's call holds back that account's calls only; a wait asked for by
 * an answer to a call without an account (app token, lookup) holds back the whole platform. */
#define GATE_WAITS_MAX 65536

typedef struct {
    char name[SP_PMSG_PLATFORM_CAP];
    sp_breaker_t br;
    uint64_t wait_until; /* monotonic ms; every call of the platform waits until then */
    sp_map_t *waits;     /* account user id -> uint64_t wait_until (only while waiting) */
} gate_t;

static gate_t g_gates[SP_PLATFORM_MAX];

static gate_t *gate_for(const char *name)
{
    gate_t *free_slot = NULL;
    for (size_t i = 0; i < SP_PLATFORM_MAX; i++) {
        if (g_gates[i].name[0] && strcmp(g_gates[i].name, name) == 0)
            return &g_gates[i];
        if (!g_gates[i].name[0] && !free_slot)
            free_slot = &g_gates[i];
    }
    if (!free_slot || strlen(name) >= sizeof free_slot->name)
        return NULL;
    snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
    sp_breaker_init(&free_slot->br, SP_PLATFORM_BREAKER_THRESHOLD, SP_PLATFORM_BREAKER_OPEN_MS);
    free_slot->wait_until = 0;
    return free_slot;
}

/* The wait of account a (0 when none); an expired entry is forgotten. */
static uint64_t account_wait(gate_t *g, const sp_platform_account_t *a, uint64_t now)
{
    if (!a || !g->waits)
        return 0;
    uint64_t *w = sp_map_gets(g->waits, a->user_id);
    if (!w)
        return 0;
    if (*w > now)
        return *w;
    sp_map_dels(g->waits, a->user_id, NULL);
    return 0;
}

static void set_wait(gate_t *g, const sp_platform_account_t *a, uint64_t until, uint64_t now)
{
    if (a) {
        if (!g->waits)
            g->waits = sp_map_new(sp_free);
        uint64_t *w = g->waits ? sp_map_gets(g->waits, a->user_id) : NULL;
        if (w) {
            if (until > *w)
                *w = until;
            return;
        }
        if (g->waits && sp_map_count(g->waits) >= GATE_WAITS_MAX) {
            const char *k;
            size_t kl, it = 0;
            void *v;
            char key[SP_UUID_STRLEN + 1];
            /* forget one expired wait; if none, the platform as a whole waits */
            while (sp_map_next(g->waits, &it, &k, &kl, &v)) {
                if (*(uint64_t *)v <= now && kl < sizeof key) {
                    memcpy(key, k, kl);
                    sp_map_del(g->waits, key, kl, NULL);
                    break;
                }
            }
        }
        w = g->waits && sp_map_count(g->waits) < GATE_WAITS_MAX ? sp_malloc(sizeof *w) : NULL;
        if (w) {
            *w = until;
            sp_map_sets(g->waits, a->user_id, w);
            return;
        }
    }
    if (until > g->wait_until)
        g->wait_until = until;
}

void sp_platform_gate_info(const char *platform, const sp_platform_account_t *a,
                           sp_platform_gate_info_t *out)
{
    memset(out, 0, sizeof *out);
    gate_t *g = platform ? gate_for(platform) : NULL;
    if (!g)
        return;
    uint64_t now = sp_mono_ms();
    out->breaker = (int)sp_breaker_state(&g->br, now);
    out->failures = g->br.failures;
    uint64_t until = account_wait(g, a, now);
    if (g->wait_until > until)
        until = g->wait_until;
    out->wait_ms = until > now ? until - now : 0;
}

void sp_platform_gate_reset(void)
{
    for (size_t i = 0; i < SP_PLATFORM_MAX; i++)
        sp_map_free(g_gates[i].waits);
    memset(g_gates, 0, sizeof g_gates);
}

/* ---- deferred calls ------------------------------------------------------------------------ */

typedef struct {
    uv_timer_t t;
    void (*fn)(void *ud);
    void *ud;
} defer_t;

static void defer_closed(uv_handle_t *h)
{
    sp_free(h->data);
}

static void defer_fire(uv_timer_t *t)
{
    defer_t *d = t->data;
    d->fn(d->ud);
    uv_close((uv_handle_t *)&d->t, defer_closed);
}

int sp_platform_defer(uv_loop_t *loop, void (*fn)(void *ud), void *ud)
{
    defer_t *d = sp_calloc(1, sizeof *d);
    if (!d)
        return SP_ENOMEM;
    d->fn = fn;
    d->ud = ud;
    uv_timer_init(loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, defer_fire, 0, 0);
    return 0;
}

/* ---- the call -------------------------------------------------------------------------------- */

enum { PH_STEP, PH_SEND, PH_FAIL };
enum { W_TIMER, W_TOKEN, W_HTTP }; /* what a call waits for */

typedef struct call_s call_t;

struct call_s {
    uv_timer_t timer;
    call_t *prev, *next;      /* g_calls */
    int where;
    sp_platform_env_t env;
    gate_t *gate;
    sp_platform_account_t *a; /* referenced; NULL for sp_platform_http_as */
    bool fixed;               /* sp_platform_http_as: token fixed (maybe none) */
    char *token;              /* the token the last attempt used (heap, wiped) */
    char *next_token;         /* from sp_token_get, for the next send */
    char method[16];
    char *url;
    char **headers;           /* NULL-terminated copies */
    char *body;
    size_t body_len;
    char *ctype;
    uint64_t deadline;        /* monotonic ms */
    bool auth_retried;
    int rl_retries;
    int phase;
    int err;                  /* PH_FAIL / PH_SEND: the error to deliver */
    sp_platform_http_cb cb;
    void *ud;
};

static call_t *g_calls; /* every call not finished yet */

static void wipe_free(char *s)
{
    if (s) {
        for (volatile char *p = s; *p; p++)
            *p = 0;
        sp_free(s);
    }
}

static void call_closed(uv_handle_t *h)
{
    call_t *c = h->data;
    wipe_free(c->token);
    wipe_free(c->next_token);
    sp_free(c->url);
    if (c->headers) {
        for (char **p = c->headers; *p; p++)
            sp_free(*p);
        sp_free(c->headers);
    }
    sp_free(c->body);
    sp_free(c->ctype);
    sp_free(c);
}

static void finish(call_t *c, int err, const sp_curlm_response_t *res)
{
    sp_platform_resp_t r;
    const sp_platform_resp_t *rp = NULL;
    if (res && res->status > 0) {
        r = (sp_platform_resp_t){ .status = res->status, .body = res->body,
                                  .body_len = res->body_len, .retry_after = res->retry_after,
                                  .rl_remaining = res->rl_remaining, .rl_reset = res->rl_reset };
        rp = &r;
    }
    uv_timer_stop(&c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        g_calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->cb(err, rp, c->ud);
    sp_platform_account_t *a = c->a;
    c->a = NULL;
    uv_close((uv_handle_t *)&c->timer, call_closed);
    sp_platform_account_unref(a);
}

static void on_timer(uv_timer_t *t);

static void schedule(call_t *c, int phase, uint64_t delay_ms)
{
    c->phase = phase;
    c->where = W_TIMER;
    uv_timer_start(&c->timer, on_timer, delay_ms, 0);
}

static void on_token(int err, const char *access_token, void *ud)
{
    call_t *c = ud;
    c->err = err;
    if (!err) {
        wipe_free(c->next_token);
        c->next_token = sp_strdup(access_token ? access_token : "");
        if (!c->next_token)
            c->err = SP_ENOMEM;
    }
    schedule(c, PH_SEND, 0); /* never continue inside sp_token_get / sp_token_refreshed */
}

static void step(call_t *c)
{
    uint64_t now = sp_mono_ms();
    if (c->a && c->a->disconnected) {
        finish(c, SP_ECANCELED, NULL);
        return;
    }
    if (sp_breaker_state(&c->gate->br, now) == SP_BREAKER_OPEN) {
        finish(c, SP_EOPEN, NULL);
        return;
    }
    uint64_t until = account_wait(c->gate, c->a, now);
    if (c->gate->wait_until > until)
        until = c->gate->wait_until;
    if (until > now) {
        uint64_t w = until - now;
        if (now + w > c->deadline) {
            finish(c, SP_ERATELIMIT, NULL);
            return;
        }
        schedule(c, PH_STEP, w);
        return;
    }
    if (c->fixed) {
        c->err = 0;
        schedule(c, PH_SEND, 0);
        return;
    }
    if (!c->a->token) {
        finish(c, SP_EAUTH, NULL);
        return;
    }
    const char *failed = c->auth_retried ? c->token : NULL;
    c->where = W_TOKEN; /* on_token (now or later) schedules the next step */
    int rc = sp_token_get(c->a->token, sp_wall_ms(), failed, on_token, c);
    if (rc < 0)
        finish(c, rc, NULL);
}

static void on_resp(const sp_curlm_response_t *res, void *ud);

static void send_now(call_t *c)
{
    if (c->err) {
        finish(c, c->err, NULL);
        return;
    }
    if (!c->fixed) {
        wipe_free(c->token);
        c->token = c->next_token;
        c->next_token = NULL;
    }
    uint64_t now = sp_mono_ms();
    if (now >= c->deadline) {
        finish(c, SP_ETIMEDOUT, NULL);
        return;
    }
    if (!sp_breaker_allow(&c->gate->br, now)) {
        finish(c, SP_EOPEN, NULL);
        return;
    }
    size_t n = 0;
    while (c->headers && c->headers[n])
        n++;
    const char **h = sp_calloc(n + 3, sizeof *h);
    sp_buf_t auth, ct;
    sp_buf_init(&auth, 0);
    sp_buf_init(&ct, 0);
    int rc = h ? 0 : SP_ENOMEM;
    size_t k = 0;
    if (!rc && c->token) {
        rc = sp_buf_appendf(&auth, "Authorization: Bearer %s", c->token);
        h[k++] = auth.p;
    }
    if (!rc && c->ctype) {
        rc = sp_buf_appendf(&ct, "Content-Type: %s", c->ctype);
        h[k++] = ct.p;
    }
    for (size_t i = 0; !rc && i < n; i++)
        h[k++] = c->headers[i];
    if (!rc) {
        sp_curlm_request_t r = {
            .method = c->method, .url = c->url, .headers = h, .body = c->body,
            .body_len = c->body_len, .timeout_ms = c->deadline - now,
            .ca_file = c->env.ca_file,
        };
        rc = sp_curlm_request(c->env.http, &r, on_resp, c);
        if (!rc)
            c->where = W_HTTP;
    }
    if (auth.p)
        memset(auth.p, 0, auth.len);
    sp_buf_cleanup(&auth);
    sp_buf_cleanup(&ct);
    sp_free(h);
    if (rc) {
        sp_breaker_failure(&c->gate->br, now); /* releases a half-open probe slot */
        finish(c, rc, NULL);
    }
}

static void on_timer(uv_timer_t *t)
{
    call_t *c = t->data;
    switch (c->phase) {
    case PH_STEP:
        step(c);
        break;
    case PH_SEND:
        send_now(c);
        break;
    default:
        finish(c, c->err, NULL);
        break;
    }
}

static void on_resp(const sp_curlm_response_t *res, void *ud)
{
    call_t *c = ud;
    uint64_t now = sp_mono_ms();
    if (res->err == SP_ECANCELED) {
        finish(c, SP_ECANCELED, NULL);
        return;
    }
    if (res->err) {
        if (res->err == SP_ETOOBIG)
            sp_breaker_success(&c->gate->br);
        else
            sp_breaker_failure(&c->gate->br, now);
        finish(c, res->err, NULL);
        return;
    }
    int64_t w = sp_helix_wait_ms((int)res->status, res->rl_remaining, res->rl_reset,
                                 res->retry_after, sp_wall_ms());
    if (w > 0)
        set_wait(c->gate, c->a, now + (uint64_t)w, now);
    if (res->status >= 500) {
        sp_breaker_failure(&c->gate->br, now);
        finish(c, 0, res);
        return;
    }
    sp_breaker_success(&c->gate->br);
    if (res->status == 401 && !c->fixed) {
        /* Twitch answers a scope the grant lacks with 401 "Missing scope: x": a refresh keeps
         * the same scopes, so it cannot help (and must not run on every such call) */
        if (res->body && memmem(res->body, res->body_len, "Missing scope", 13)) {
            finish(c, SP_EFORBIDDEN, res);
            return;
        }
        if (c->auth_retried) {
            finish(c, SP_EAUTH, res);
            return;
        }
        c->auth_retried = true;
        schedule(c, PH_STEP, 0);
        return;
    }
    if (res->status == 429) {
        if (c->rl_retries >= SP_PLATFORM_RL_RETRIES) {
            finish(c, SP_ERATELIMIT, res);
            return;
        }
        c->rl_retries++;
        schedule(c, PH_STEP, 0); /* step waits for the gate or fails SP_ERATELIMIT */
        return;
    }
    finish(c, 0, res);
}

static int start(const sp_platform_env_t *env, const sp_platform_t *p, sp_platform_account_t *a,
                 bool fixed, const char *bearer, const sp_platform_req_t *req,
                 sp_platform_http_cb cb, void *ud)
{
    if (!env || !env->loop || !env->http || !p || !req || !req->url || !cb || (!fixed && !a))
        return SP_EINVAL;
    const char *method = req->method ? req->method : "GET";
    if (strlen(method) >= sizeof ((call_t *)0)->method)
        return SP_EINVAL;
    gate_t *g = gate_for(p->name);
    if (!g)
        return SP_ELIMIT;
    call_t *c = sp_calloc(1, sizeof *c);
    if (!c)
        return SP_ENOMEM;
    c->env = *env;
    c->gate = g;
    c->fixed = fixed;
    c->cb = cb;
    c->ud = ud;
    snprintf(c->method, sizeof c->method, "%s", method);
    c->url = sp_strdup(req->url);
    bool oom = !c->url;
    if (fixed && bearer) {
        c->token = sp_strdup(bearer);
        oom = oom || !c->token;
    }
    size_t n = 0;
    while (req->headers && req->headers[n])
        n++;
    if (n) {
        c->headers = sp_calloc(n + 1, sizeof *c->headers);
        oom = oom || !c->headers;
        for (size_t i = 0; !oom && i < n; i++) {
            c->headers[i] = sp_strdup(req->headers[i]);
            oom = !c->headers[i];
        }
    }
    if (req->body) {
        c->body = sp_malloc(req->body_len + 1);
        oom = oom || !c->body;
        if (c->body) {
            memcpy(c->body, req->body, req->body_len);
            c->body[req->body_len] = '\0';
            c->body_len = req->body_len;
        }
    }
    const char *ctype = req->content_type;
    if (!ctype && req->body)
        ctype = "application/json";
    if (ctype) {
        c->ctype = sp_strdup(ctype);
        oom = oom || !c->ctype;
    }
    if (oom) {
        c->timer.data = c;
        call_closed((uv_handle_t *)&c->timer);
        return SP_ENOMEM;
    }
    c->deadline = sp_mono_ms() + (req->timeout_ms ? req->timeout_ms : 10000);
    uv_timer_init(env->loop, &c->timer);
    c->timer.data = c;
    c->a = a;
    sp_platform_account_ref(a);
    c->next = g_calls;
    if (g_calls)
        g_calls->prev = c;
    g_calls = c;
    schedule(c, PH_STEP, 0);
    return 0;
}

void sp_platform_cancel_all(void)
{
    call_t *nx;
    for (call_t *c = g_calls; c; c = nx) {
        nx = c->next;
        if (c->where == W_TIMER)
            finish(c, SP_ECANCELED, NULL);
    }
}

size_t sp_platform_calls_pending(void)
{
    size_t n = 0;
    for (const call_t *c = g_calls; c; c = c->next)
        n++;
    return n;
}

int sp_platform_http(const sp_platform_env_t *env, sp_platform_account_t *a,
                     const sp_platform_req_t *req, sp_platform_http_cb cb, void *ud)
{
    if (!a || !a->platform)
        return SP_EINVAL;
    return start(env, a->platform, a, false, NULL, req, cb, ud);
}

int sp_platform_http_as(const sp_platform_env_t *env, const sp_platform_t *p, const char *bearer,
                        const sp_platform_req_t *req, sp_platform_http_cb cb, void *ud)
{
    return start(env, p, NULL, true, bearer, req, cb, ud);
}
