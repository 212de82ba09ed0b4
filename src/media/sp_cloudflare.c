/*
 * sp_cloudflare: Cloudflare Stream v4 client (see sp_cloudflare.h for the policy).
 *
 * A call_t lives from submission until its callback has run and its retry
 * timer (if one was ever initialised) is closed. Attempts go through sp_curlm.
 */
#include "media/sp_cloudflare.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/sp_alloc.h"
#include "core/sp_backoff.h"
#include "core/sp_breaker.h"
#include "net/sp_curlm.h"
#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_log.h"
#include "net/sp_metrics.h"
#include "core/sp_ratelimit.h"
#include "core/sp_time.h"

#define DEFAULT_BASE "https://api.cloudflare.com/client/v4"
#define BUDGET_WINDOW_S 300.0
#define MAX_RESPONSE (1024 * 1024)
#define MAX_OUTPUTS 64
#define MIN_ATTEMPT_MS 50
#define MAX_RETRY_AFTER_MS 300000

typedef enum {
    OP_CREATE_INPUT = 0,
    OP_GET_INPUT,
    OP_DELETE_INPUT,
    OP_LIST_OUTPUTS,
    OP_CREATE_OUTPUT,
    OP_DELETE_OUTPUT,
    OP_SET_OUTPUT_ENABLED,
    OP_UPDATE_INPUT,
    OP_LIST_VIDEOS,
    OP_SET_INPUT_PROTECTION,
    OP__COUNT
} op_t;

static const char *const op_names[OP__COUNT] = {
    "create_input", "get_input", "delete_input", "list_outputs",
    "create_output", "delete_output", "set_output_enabled", "update_input", "list_videos",
    "set_input_protection",
};

typedef enum {
    RES_OK = 0,
    RES_NOT_FOUND,
    RES_AUTH,
    RES_CF_ERROR,
    RES_RATE_LIMITED,
    RES_SERVER_ERROR,
    RES_TIMEOUT,
    RES_TRANSPORT,
    RES_MALFORMED,
    RES_BREAKER_OPEN,
    RES_BUDGET,
    RES_CANCELED,
    RES__COUNT
} res_t;

static const char *const res_names[RES__COUNT] = {
    "ok", "not_found", "auth", "cf_error", "rate_limited", "server_error",
    "timeout", "transport", "malformed", "breaker_open", "budget", "canceled",
};

typedef struct call_s call_t;

typedef union {
    sp_cf_input_cb input;
    sp_cf_output_cb output;
    sp_cf_outputs_cb outputs;
    sp_cf_done_cb done;
} cb_u;

struct sp_cloudflare_s {
    uv_loop_t *loop;
    sp_curlm_t *curlm;
    char *base;         /* without trailing slash */
    char *account;
    char *auth_header;  /* "Authorization: Bearer ..." */
    char *ca_file;
    uint64_t timeout_ms;
    uint32_t max_retries;
    uint64_t backoff_base_ms, backoff_max_ms;
    sp_breaker_t breaker;
    sp_tbucket_t budget;
    double budget_cap;
    uint64_t not_before; /* 429 pause (monotonic ms) */
    call_t *calls;
    unsigned open_timers;
    bool freeing;
    bool in_free; /* inside sp_cloudflare_free: do not release yet */
    bool metrics_registered;
    uint64_t counts[OP__COUNT][RES__COUNT];
    uint64_t attempts_total, retries_total;
    bool rec_auto; json_int_t rec_tmo_s; /* recording {mode, timeoutSeconds} on create */
};

struct call_s {
    call_t *prev, *next;
    sp_cloudflare_t *cf;
    op_t op;
    sp_cf_prio_t prio;
    const char *method;
    char *url;
    char *body;
    size_t body_len;
    bool idempotent;
    uint64_t deadline;
    uint32_t attempts;
    sp_backoff_t backoff;
    uv_timer_t timer;
    bool timer_inited;
    bool in_flight;
    bool probe; /* this attempt is the breaker's half-open probe */
    bool forgotten;
    bool done;
    /* last failure, reported if we give up */
    int last_err;
    long last_status;
    int last_code;
    char last_msg[256];
    res_t last_res;
    cb_u cb;
    void *ud;
};

/* ---- helpers ----------------------------------------------------------------- */

static bool id_ok(const char *s)
{
    return s && sp_id_ok(s, strlen(s));
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Retry-After: delta-seconds (HTTP-dates are rare from Cloudflare: treated as 1 s). */
static uint64_t parse_retry_after(const char *v)
{
    if (!v || !*v)
        return 1000;
    uint64_t s = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++) {
        s = s * 10 + (uint64_t)(*p - '0');
        if (s > MAX_RETRY_AFTER_MS / 1000)
            return MAX_RETRY_AFTER_MS;
    }
    if (p == v || *p != '\0')
        return 1000;
    return s * 1000;
}

/* ---- call lifetime ------------------------------------------------------------- */

static void call_unlink(call_t *c)
{
    sp_cloudflare_t *cf = c->cf;
    if (c->prev)
        c->prev->next = c->next;
    else if (cf->calls == c)
        cf->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void maybe_release(sp_cloudflare_t *cf)
{
    if (cf->freeing && !cf->in_free && cf->open_timers == 0 && cf->calls == NULL) {
        sp_free(cf->base);
        sp_free(cf->account);
        if (cf->auth_header)
            sodium_memzero(cf->auth_header, strlen(cf->auth_header));
        sp_free(cf->auth_header);
        sp_free(cf->ca_file);
        sp_free(cf);
    }
}

static void on_timer_close(uv_handle_t *h)
{
    call_t *c = h->data;
    sp_cloudflare_t *cf = c->cf;
    cf->open_timers--;
    sp_free(c->url);
    sp_free(c->body);
    sp_free(c);
    maybe_release(cf);
}

static void call_destroy(call_t *c)
{
    sp_cloudflare_t *cf = c->cf;
    call_unlink(c);
    if (c->timer_inited) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_timer_close);
        return;
    }
    sp_free(c->url);
    sp_free(c->body);
    sp_free(c);
    maybe_release(cf);
}

/* Delivers the final result (typed) and destroys the call. */
static void finish(call_t *c, int err, res_t res, long status, int code, const char *msg,
                   json_t *result, uint64_t retry_after_ms)
{
    sp_cloudflare_t *cf = c->cf;
    c->done = true;
    cf->counts[c->op][res]++;
    sp_cf_result_t r = { .err = err, .http_status = status, .cf_code = code,
                         .cf_message = msg ? msg : (err ? sp_strerror(err) : "ok"),
                         .retry_after_ms = retry_after_ms, .attempts = c->attempts,
                         .result = result };
    if (err && err != SP_ECANCELED)
        sp_warn("cloudflare", "call failed", "op=%s err=%s http=%ld cf_code=%d cf_message=\"%s\" "
                "attempts=%u", op_names[c->op], sp_err_name(err), status, code, r.cf_message,
                c->attempts);
    if (!c->forgotten) {
        switch (c->op) {
        case OP_CREATE_INPUT: case OP_UPDATE_INPUT:
        case OP_GET_INPUT: {
            sp_cf_input_t in;
            if (err == 0 && sp_cloudflare_parse_input(result, &in) != 0) {
                cf->counts[c->op][res]--;
                cf->counts[c->op][RES_MALFORMED]++;
                r.err = SP_EPROTO;
                r.cf_message = "malformed live input in Cloudflare response";
            }
            c->cb.input(&r, r.err == 0 ? &in : NULL, c->ud);
            break;
        }
        case OP_CREATE_OUTPUT:
        case OP_SET_OUTPUT_ENABLED: {
            sp_cf_output_t out;
            if (err == 0 && sp_cloudflare_parse_output(result, &out) != 0) {
                cf->counts[c->op][res]--;
                cf->counts[c->op][RES_MALFORMED]++;
                r.err = SP_EPROTO;
                r.cf_message = "malformed output in Cloudflare response";
            }
            c->cb.output(&r, r.err == 0 ? &out : NULL, c->ud);
            break;
        }
        case OP_LIST_OUTPUTS: {
            sp_cf_output_t *outs = NULL;
            size_t n = 0, alloc = 0;
            if (err == 0) {
                if (!json_is_array(result) || json_array_size(result) > MAX_OUTPUTS) {
                    r.err = SP_EPROTO;
                } else {
                    n = json_array_size(result);
                    alloc = n ? n : 1;
                    outs = sp_calloc(alloc, sizeof *outs);
                    for (size_t i = 0; i < n && r.err == 0; i++)
                        if (sp_cloudflare_parse_output(json_array_get(result, i), &outs[i]) != 0)
                            r.err = SP_EPROTO;
                }
                if (r.err) {
                    cf->counts[c->op][res]--;
                    cf->counts[c->op][RES_MALFORMED]++;
                    r.cf_message = "malformed output list in Cloudflare response";
                    n = 0;
                }
            }
            c->cb.outputs(&r, r.err == 0 ? outs : NULL, n, c->ud);
            if (outs) {
                sodium_memzero(outs, alloc * sizeof *outs);
                sp_free(outs);
            }
            break;
        }
        default:
            c->cb.done(&r, c->ud);
            break;
        }
    }
    call_destroy(c);
}

/* ---- attempts ------------------------------------------------------------------- */

static void attempt(call_t *c);

static void on_retry_timer(uv_timer_t *t)
{
    call_t *c = t->data;
    attempt(c);
}

/* Schedules the next attempt after delay_ms; false if the deadline or retry count forbids it. */
static bool schedule_retry(call_t *c, uint64_t delay_ms)
{
    sp_cloudflare_t *cf = c->cf;
    uint64_t now = sp_mono_ms();
    if (cf->freeing || c->attempts > cf->max_retries)
        return false;
    if (now + delay_ms + MIN_ATTEMPT_MS >= c->deadline)
        return false;
    if (!c->timer_inited) {
        uv_timer_init(cf->loop, &c->timer);
        c->timer.data = c;
        c->timer_inited = true;
        cf->open_timers++;
    }
    cf->retries_total++;
    uv_timer_start(&c->timer, on_retry_timer, delay_ms ? delay_ms : 1, 0);
    return true;
}

static void remember(call_t *c, int err, res_t res, long status, int code, const char *msg)
{
    c->last_err = err;
    c->last_res = res;
    c->last_status = status;
    c->last_code = code;
    copy_str(c->last_msg, sizeof c->last_msg, msg);
}

static void give_up(call_t *c)
{
    finish(c, c->last_err, c->last_res, c->last_status, c->last_code, c->last_msg, NULL, 0);
}

/* Parses the envelope of a non-429, non-5xx answer and finishes the call. */
static void handle_answer(call_t *c, const sp_curlm_response_t *res)
{
    sp_cloudflare_t *cf = c->cf;
    sp_cf_envelope_t env;
    bool empty_ok = c->op == OP_DELETE_INPUT || c->op == OP_DELETE_OUTPUT;
    int rc = sp_cloudflare_parse_envelope(res->body, res->body_len, res->status, empty_ok, &env);
    if (rc == SP_EPROTO) {
        sp_breaker_failure(&cf->breaker, sp_mono_ms());
        finish(c, rc, RES_MALFORMED, res->status, 0, env.cf_message, NULL, 0);
        return;
    }
    sp_breaker_success(&cf->breaker); /* the API answered: it is up */
    if (rc == 0) {
        finish(c, 0, RES_OK, res->status, 0, NULL, env.result, 0);
        json_decref(env.root);
        return;
    }
    res_t r = rc == SP_ENOTFOUND ? RES_NOT_FOUND : rc == SP_EAUTH ? RES_AUTH : RES_CF_ERROR;
    finish(c, rc, r, res->status, env.cf_code, env.cf_message, NULL, 0);
}

static void on_response(const sp_curlm_response_t *res, void *ud)
{
    call_t *c = ud;
    sp_cloudflare_t *cf = c->cf;
    uint64_t now = sp_mono_ms();
    bool probe = c->probe;
    c->in_flight = false;
    c->probe = false;

    if (res->err == SP_ECANCELED) {
        if (probe)
            cf->breaker.probe_in_flight = false;
        finish(c, SP_ECANCELED, RES_CANCELED, 0, 0, "canceled", NULL, 0);
        return;
    }
    if (res->err) {
        sp_breaker_failure(&cf->breaker, now);
        res_t r = res->err == SP_ETIMEDOUT ? RES_TIMEOUT : RES_TRANSPORT;
        remember(c, res->err, r, 0, 0, res->errmsg);
        /* A POST is retried only if nothing was sent. A timeout consumed the deadline. */
        bool retryable = res->err != SP_ETOOBIG && (c->idempotent || !res->request_sent);
        if (!retryable || !schedule_retry(c, sp_backoff_next(&c->backoff)))
            give_up(c);
        return;
    }
    if (res->status == 429) {
        if (probe)
            cf->breaker.probe_in_flight = false;
        uint64_t ra = parse_retry_after(res->retry_after);
        if (now + ra > cf->not_before)
            cf->not_before = now + ra;
        sp_warn("cloudflare", "rate limited by Cloudflare", "op=%s retry_after_ms=%llu",
                op_names[c->op], (unsigned long long)ra);
        remember(c, SP_ERATELIMIT, RES_RATE_LIMITED, 429, 0, "rate limited by Cloudflare");
        /* Cloudflare refused the request: nothing was created, any op may retry. */
        if (!schedule_retry(c, ra)) {
            finish(c, SP_ERATELIMIT, RES_RATE_LIMITED, 429, 0, "rate limited by Cloudflare", NULL,
                   cf->not_before > now ? cf->not_before - now : ra);
        }
        return;
    }
    if (res->status >= 500) {
        sp_breaker_failure(&cf->breaker, now);
        char m[128];
        snprintf(m, sizeof m, "Cloudflare server error HTTP %ld", res->status);
        remember(c, SP_EUNAVAIL, RES_SERVER_ERROR, res->status, 0, m);
        if (!c->idempotent || !schedule_retry(c, sp_backoff_next(&c->backoff)))
            give_up(c);
        return;
    }
    handle_answer(c, res);
}

/* Budget + breaker + 429 pause gate for one attempt. 0 or SP_ERATELIMIT / SP_EOPEN. */
static int gate(call_t *c, uint64_t now, uint64_t *wait_ms)
{
    sp_cloudflare_t *cf = c->cf;
    *wait_ms = 0;
    if (cf->not_before > now) {
        *wait_ms = cf->not_before - now;
        return SP_ERATELIMIT;
    }
    double reserve = c->prio == SP_CF_PRIO_POLL     ? 0.25 * cf->budget_cap
                     : c->prio == SP_CF_PRIO_NORMAL ? 0.05 * cf->budget_cap
                                                    : 0.0;
    sp_tbucket_t *b = &cf->budget;
    uint64_t ra = 0;
    /* refill, then check the reserve before taking */
    if (!sp_tbucket_take(b, 0, now, &ra) || b->tokens - 1.0 < reserve) {
        double need = reserve + 1.0 - b->tokens;
        *wait_ms = b->rate > 0 ? (uint64_t)(need / b->rate) + 1 : UINT64_MAX;
        return SP_ERATELIMIT;
    }
    if (!sp_breaker_allow(&cf->breaker, now))
        return SP_EOPEN;
    sp_tbucket_take(b, 1.0, now, NULL);
    c->probe = cf->breaker.state == SP_BREAKER_HALF_OPEN;
    return 0;
}

/* Starts one attempt; returns 0 or an error (then the call was not sent). */
static int send_attempt(call_t *c)
{
    sp_cloudflare_t *cf = c->cf;
    uint64_t now = sp_mono_ms();
    uint64_t wait = 0;
    int rc = gate(c, now, &wait);
    if (rc != 0)
        return rc;
    const char *hdrs[] = { cf->auth_header, "Content-Type: application/json",
                           "Accept: application/json", NULL };
    uint64_t left = c->deadline > now ? c->deadline - now : 1;
    sp_curlm_request_t rq = { .method = c->method, .url = c->url, .headers = hdrs,
                              .body = c->body, .body_len = c->body_len, .timeout_ms = left,
                              .max_response_bytes = MAX_RESPONSE, .ca_file = cf->ca_file };
    c->attempts++;
    cf->attempts_total++;
    rc = sp_curlm_request(cf->curlm, &rq, on_response, c);
    if (rc != 0) {
        if (c->probe)
            cf->breaker.probe_in_flight = false;
        c->probe = false;
        return rc;
    }
    c->in_flight = true;
    return 0;
}

/* A retry attempt (from the timer). Refusals finish the call. */
static void attempt(call_t *c)
{
    sp_cloudflare_t *cf = c->cf;
    uint64_t now = sp_mono_ms();
    uint64_t wait = 0;
    if (cf->not_before > now) { /* another call saw a 429 meanwhile */
        wait = cf->not_before - now;
        if (!schedule_retry(c, wait))
            finish(c, SP_ERATELIMIT, RES_RATE_LIMITED, c->last_status, 0,
                   "rate limited by Cloudflare", NULL, wait);
        return;
    }
    int rc = send_attempt(c);
    if (rc == 0)
        return;
    if (rc == SP_EOPEN)
        finish(c, SP_EOPEN, RES_BREAKER_OPEN, c->last_status, c->last_code,
               "Cloudflare circuit breaker open", NULL, 0);
    else if (rc == SP_ERATELIMIT)
        finish(c, SP_ERATELIMIT, RES_BUDGET, c->last_status, 0, "Cloudflare call budget exhausted",
               NULL, wait);
    else
        finish(c, rc, RES_TRANSPORT, 0, 0, sp_strerror(rc), NULL, 0);
}

/* ---- submission -------------------------------------------------------------------- */

static int submit(sp_cloudflare_t *cf, op_t op, sp_cf_prio_t prio, const char *method,
                  char *url, json_t *body, cb_u cb, void *ud)
{
    if (cf->freeing) {
        sp_free(url);
        json_decref(body);
        return SP_ECLOSED;
    }
    call_t *c = sp_calloc(1, sizeof *c);
    c->cf = cf;
    c->op = op;
    c->prio = prio;
    c->method = method;
    c->url = url;
    if (body) {
        char *js = json_dumps(body, JSON_COMPACT); /* jansson's malloc: free() */
        json_decref(body);
        if (!js) {
            sp_free(url);
            sp_free(c);
            return SP_EINVAL;
        }
        c->body_len = strlen(js);
        c->body = sp_strndup(js, c->body_len);
        sodium_memzero(js, c->body_len);
        free(js);
    }
    c->idempotent = strcmp(method, "POST") != 0;
    c->deadline = sp_mono_ms() + cf->timeout_ms;
    sp_backoff_init(&c->backoff, cf->backoff_base_ms, cf->backoff_max_ms);
    c->cb = cb;
    c->ud = ud;
    int rc = send_attempt(c);
    if (rc != 0) {
        cf->counts[op][rc == SP_EOPEN ? RES_BREAKER_OPEN
                       : rc == SP_ERATELIMIT ? RES_BUDGET
                                             : RES_TRANSPORT]++;
        if (c->body)
            sodium_memzero(c->body, c->body_len);
        sp_free(c->body);
        sp_free(c->url);
        sp_free(c);
        return rc;
    }
    c->next = cf->calls;
    if (cf->calls)
        cf->calls->prev = c;
    cf->calls = c;
    return 0;
}

static char *make_url(sp_cloudflare_t *cf, const char *a, const char *b, const char *d)
{
    sp_buf_t u;
    sp_buf_init(&u, 4096);
    sp_buf_appendf(&u, "%s/accounts/%s/stream/live_inputs", cf->base, cf->account);
    if (a)
        sp_buf_appendf(&u, "/%s", a);
    if (b) /* "": outputs */
        sp_buf_appendf(&u, "/%s", b[0] ? b : "outputs");
    if (d)
        sp_buf_appendf(&u, "/%s", d);
    size_t n;
    return sp_buf_detach(&u, &n);
}

/* POST live_inputs: a new input, or (built-in relay extension) one restored with the given
 * uid and stream key. meta: the name and the user id; recording: RECORDING_MODE and timeout. */
static int post_input(sp_cloudflare_t *cf, const char *name, const char *user_id,
                      const char *input_uid, const char *stream_key, sp_cf_prio_t prio,
                      sp_cf_input_cb cb, void *ud)
{
    json_t *meta = json_object();
    json_object_set_new(meta, "name", json_string(name));
    if (user_id)
        json_object_set_new(meta, "user_id", json_string(user_id));
    if (!json_string_value(json_object_get(meta, "name")) ||
        (user_id && !json_object_get(meta, "user_id"))) {
        json_decref(meta);
        return SP_EINVAL; /* not UTF-8 */
    }
    json_t *body = json_pack("{s:o, s:{s:s, s:I}}", "meta", meta, "recording", "mode",
                             cf->rec_auto ? "automatic" : "off", "timeoutSeconds", cf->rec_tmo_s);
    if (!body)
        return SP_EINVAL;
    if (input_uid) {
        json_object_set_new(body, "uid", json_string(input_uid));
        json_object_set_new(body, "streamKey", json_string(stream_key));
    }
    return submit(cf, OP_CREATE_INPUT, prio, "POST", make_url(cf, NULL, NULL, NULL), body,
                  (cb_u){ .input = cb }, ud);
}

int sp_cloudflare_create_input(sp_cloudflare_t *cf, const char *name, const char *user_id,
                               sp_cf_prio_t prio, sp_cf_input_cb cb, void *ud)
{
    if (!cf || !cb || !name)
        return SP_EINVAL;
    return post_input(cf, name, user_id, NULL, NULL, prio, cb, ud);
}

int sp_cloudflare_restore_input(sp_cloudflare_t *cf, const char *name, const char *user_id,
                                const char *input_uid, const char *stream_key, sp_cf_prio_t prio,
                                sp_cf_input_cb cb, void *ud)
{
    if (!cf || !cb || !name || !id_ok(input_uid) || !stream_key || !stream_key[0])
        return SP_EINVAL;
    return post_input(cf, name, user_id, input_uid, stream_key, prio, cb, ud);
}

int sp_cloudflare_get_input(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                            sp_cf_input_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid))
        return SP_EINVAL;
    return submit(cf, OP_GET_INPUT, prio, "GET", make_url(cf, input_uid, NULL, NULL), NULL,
                  (cb_u){ .input = cb }, ud);
}

int sp_cloudflare_delete_input(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                               sp_cf_done_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid))
        return SP_EINVAL;
    return submit(cf, OP_DELETE_INPUT, prio, "DELETE", make_url(cf, input_uid, NULL, NULL), NULL,
                  (cb_u){ .done = cb }, ud);
}

int sp_cloudflare_list_outputs(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                               sp_cf_outputs_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid))
        return SP_EINVAL;
    return submit(cf, OP_LIST_OUTPUTS, prio, "GET", make_url(cf, input_uid, "", NULL), NULL,
                  (cb_u){ .outputs = cb }, ud);
}

int sp_cloudflare_create_output(sp_cloudflare_t *cf, const char *input_uid, const char *url,
                                const char *stream_key, bool enabled, sp_cf_prio_t prio,
                                sp_cf_output_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid) || !url || !stream_key)
        return SP_EINVAL;
    json_t *body = json_object();
    json_object_set_new(body, "url", json_string(url));
    json_object_set_new(body, "streamKey", json_string(stream_key));
    json_object_set_new(body, "enabled", json_boolean(enabled));
    if (!json_object_get(body, "url") || !json_object_get(body, "streamKey")) {
        json_decref(body);
        return SP_EINVAL;
    }
    return submit(cf, OP_CREATE_OUTPUT, prio, "POST", make_url(cf, input_uid, "", NULL), body,
                  (cb_u){ .output = cb }, ud);
}

int sp_cloudflare_delete_output(sp_cloudflare_t *cf, const char *input_uid,
                                const char *output_uid, sp_cf_prio_t prio, sp_cf_done_cb cb,
                                void *ud)
{
    if (!cf || !cb || !id_ok(input_uid) || !id_ok(output_uid))
        return SP_EINVAL;
    return submit(cf, OP_DELETE_OUTPUT, prio, "DELETE", make_url(cf, input_uid, "", output_uid),
                  NULL, (cb_u){ .done = cb }, ud);
}

int sp_cloudflare_set_output_enabled(sp_cloudflare_t *cf, const char *input_uid,
                                     const char *output_uid, bool enabled, sp_cf_prio_t prio,
                                     sp_cf_output_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid) || !id_ok(output_uid))
        return SP_EINVAL;
    json_t *body = json_pack("{s:b}", "enabled", enabled);
    return submit(cf, OP_SET_OUTPUT_ENABLED, prio, "PUT",
                  make_url(cf, input_uid, "", output_uid), body, (cb_u){ .output = cb }, ud);
}

int sp_cloudflare_set_recording(sp_cloudflare_t *cf, const char *input_uid, const char *mode,
                                int64_t timeout_s, sp_cf_prio_t prio, sp_cf_input_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid) || !mode || timeout_s < 0 || strlen(mode) > 16)
        return SP_EINVAL;
    return submit(cf, OP_UPDATE_INPUT, prio, "PUT", make_url(cf, input_uid, NULL, NULL),
                  json_pack("{s:{s:s, s:I}}", "recording", "mode", mode, "timeoutSeconds",
                            (json_int_t)timeout_s), (cb_u){ .input = cb }, ud);
}

int sp_cloudflare_list_videos(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                              sp_cf_done_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid))
        return SP_EINVAL;
    return submit(cf, OP_LIST_VIDEOS, prio, "GET", make_url(cf, input_uid, "videos", NULL), NULL,
                  (cb_u){ .done = cb }, ud);
}

int sp_cloudflare_set_input_protection(sp_cloudflare_t *cf, const char *input_uid, bool on,
                                       sp_cf_done_cb cb, void *ud)
{
    if (!cf || !cb || !id_ok(input_uid))
        return SP_EINVAL;
    return submit(cf, OP_SET_INPUT_PROTECTION, SP_CF_PRIO_NORMAL, "PUT",
                  make_url(cf, input_uid, NULL, NULL), json_pack("{s:b}", "disconnectProtection",
                  on), (cb_u){ .done = cb }, ud);
}

/* ---- lifecycle -------------------------------------------------------------------- */

void sp_cloudflare_opts_from_config(const sp_config_t *cfg, sp_cloudflare_opts_t *out)
{
    memset(out, 0, sizeof *out);
    out->base_url = cfg->cloudflare_api_base_url;
    out->account_id = cfg->cloudflare_account_id;
    out->api_token = cfg->cloudflare_api_token;
    out->timeout_ms = cfg->api_call_timeout > 0 ? (uint64_t)cfg->api_call_timeout : 0;
    out->call_budget = cfg->cloudflare_call_budget;
    out->budget_exact = true;
    out->register_metrics = true;
    out->recording_mode = cfg->recording_mode;
    out->recording_timeout_s = cfg->recording_timeout_seconds;
}

static void render_metrics(sp_buf_t *out, void *ud)
{
    sp_cloudflare_metrics(ud, out);
}

sp_cloudflare_t *sp_cloudflare_new(uv_loop_t *loop, const sp_cloudflare_opts_t *o)
{
    const char *base = o->base_url && *o->base_url ? o->base_url : DEFAULT_BASE;
    if (strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0)
        return NULL;
    if (!id_ok(o->account_id) || !o->api_token || !*o->api_token)
        return NULL;
    for (const char *p = o->api_token; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return NULL;
    sp_cloudflare_t *cf = sp_calloc(1, sizeof *cf);
    cf->loop = loop;
    cf->curlm = sp_curlm_new(loop);
    if (!cf->curlm) {
        sp_free(cf);
        return NULL;
    }
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    cf->base = sp_strndup(base, bl);
    cf->account = sp_strdup(o->account_id);
    sp_buf_t h;
    sp_buf_init(&h, 0);
    sp_buf_appendf(&h, "Authorization: Bearer %s", o->api_token);
    size_t hl;
    cf->auth_header = sp_buf_detach(&h, &hl);
    cf->ca_file = o->ca_file ? sp_strdup(o->ca_file) : NULL;
    cf->rec_auto = o->recording_mode && strcmp(o->recording_mode, "automatic") == 0;
    cf->rec_tmo_s = o->recording_timeout_s > 0 ? o->recording_timeout_s : 0;
    sp_log_add_secret(o->api_token);
    cf->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
    cf->max_retries = o->max_retries == SP_CF_NO_RETRY ? 0 : o->max_retries ? o->max_retries : 3;
    cf->backoff_base_ms = o->backoff_base_ms ? o->backoff_base_ms : 250;
    cf->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 4000;
    sp_breaker_init(&cf->breaker, o->breaker_threshold ? o->breaker_threshold : 5,
                    o->breaker_open_ms ? o->breaker_open_ms : 30000);
    double budget = o->call_budget > 0 ? (double)o->call_budget : 1200.0;
    double margin = o->budget_exact ? 0.0 : budget * 0.1 < 1.0 ? 1.0 : budget * 0.1;
    cf->budget_cap = budget - margin < 1.0 ? 1.0 : budget - margin;
    sp_tbucket_init(&cf->budget, cf->budget_cap / BUDGET_WINDOW_S, cf->budget_cap, sp_mono_ms());
    if (o->register_metrics) {
        sp_metrics_register(render_metrics, cf);
        cf->metrics_registered = true;
    }
    return cf;
}

size_t sp_cloudflare_forget(sp_cloudflare_t *cf, void *ud)
{
    size_t n = 0;
    if (!cf)
        return 0;
    for (call_t *c = cf->calls; c; c = c->next)
        if (c->ud == ud && !c->forgotten) {
            c->forgotten = true;
            n++;
        }
    return n;
}

void sp_cloudflare_free(sp_cloudflare_t *cf)
{
    if (!cf || cf->freeing)
        return;
    cf->freeing = true;
    cf->in_free = true;
    if (cf->metrics_registered)
        sp_metrics_unregister(render_metrics, cf);
    /* Calls waiting for a retry timer: cancel now. */
    call_t *c = cf->calls;
    while (c) {
        call_t *next = c->next;
        if (!c->in_flight && !c->done)
            finish(c, SP_ECANCELED, RES_CANCELED, 0, 0, "canceled", NULL, 0);
        c = next;
    }
    /* In-flight ones complete with SP_ECANCELED through on_response. */
    sp_curlm_free(cf->curlm);
    cf->curlm = NULL;
    cf->in_free = false;
    maybe_release(cf);
}

double sp_cloudflare_budget_remaining(sp_cloudflare_t *cf)
{
    sp_tbucket_take(&cf->budget, 0, sp_mono_ms(), NULL);
    return cf->budget.tokens;
}

const char *sp_cloudflare_breaker_state(sp_cloudflare_t *cf)
{
    return sp_breaker_state_name(sp_breaker_state(&cf->breaker, sp_mono_ms()));
}

void sp_cloudflare_metrics(sp_cloudflare_t *cf, sp_buf_t *out)
{
    sp_buf_append_str(out, "# HELP streampai_cloudflare_calls_total Cloudflare API calls by "
                           "operation and final result.\n"
                           "# TYPE streampai_cloudflare_calls_total counter\n");
    for (int o = 0; o < OP__COUNT; o++)
        for (int r = 0; r < RES__COUNT; r++)
            if (cf->counts[o][r] || r == RES_OK)
                sp_buf_appendf(out, "streampai_cloudflare_calls_total{op=\"%s\",result=\"%s\"} "
                               "%llu\n", op_names[o], res_names[r],
                               (unsigned long long)cf->counts[o][r]);
    sp_buf_appendf(out, "# HELP streampai_cloudflare_attempts_total HTTP requests sent.\n"
                        "# TYPE streampai_cloudflare_attempts_total counter\n"
                        "streampai_cloudflare_attempts_total %llu\n"
                        "# HELP streampai_cloudflare_retries_total Retries scheduled.\n"
                        "# TYPE streampai_cloudflare_retries_total counter\n"
                        "streampai_cloudflare_retries_total %llu\n",
                   (unsigned long long)cf->attempts_total, (unsigned long long)cf->retries_total);
    sp_breaker_state_t bs = sp_breaker_state(&cf->breaker, sp_mono_ms());
    sp_buf_appendf(out, "# HELP streampai_cloudflare_breaker_state 0 closed, 1 open, 2 half open.\n"
                        "# TYPE streampai_cloudflare_breaker_state gauge\n"
                        "streampai_cloudflare_breaker_state %d\n",
                   bs == SP_BREAKER_CLOSED ? 0 : bs == SP_BREAKER_OPEN ? 1 : 2);
    sp_buf_appendf(out, "# HELP streampai_cloudflare_budget_remaining Calls left in the budget.\n"
                        "# TYPE streampai_cloudflare_budget_remaining gauge\n"
                        "streampai_cloudflare_budget_remaining %.0f\n"
                        "# HELP streampai_cloudflare_budget_capacity Budget capacity per 5 min.\n"
                        "# TYPE streampai_cloudflare_budget_capacity gauge\n"
                        "streampai_cloudflare_budget_capacity %.0f\n",
                   sp_cloudflare_budget_remaining(cf), cf->budget_cap);
}
