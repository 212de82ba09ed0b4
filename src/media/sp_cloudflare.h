/*
 * sp_cloudflare: THE media API client (Cloudflare Stream v4 live inputs and
 * outputs), used against real Cloudflare, tests/fakes/cloudflare.mjs and the
 * built-in relay (CLOUDFLARE_API_BASE_URL). Asynchronous over sp_curlm;
 * callbacks run on the loop, never synchronously.
 *
 * Reliability policy (one place, so callers need not think about it):
 *  - Deadline: every call has one overall deadline, timeout_ms (API_CALL_TIMEOUT,
 *    10 s) from submission; each attempt gets the time that remains, so a caller
 *    always hears back within the deadline (plus loop latency).
 *  - Retries (sp_backoff, exponential + full jitter, at most max_retries):
 *      GET, PUT (enable/disable) and DELETE are idempotent: retried on transport
 *      errors, timeouts with time left, and 5xx.
 *      POST (create input, create output) is NOT retried once the request may have
 *      reached the server (5xx, timeout, a reset after sending): a retried POST could
 *      create a duplicate output. The error is returned instead; the livestream layer
 *      records intent first and reconciles by listing outputs. POST is retried only
 *      when nothing was sent (connect failed) or on 429 (Cloudflare refused it).
 *  - 429: Retry-After (seconds) pauses ALL calls of this client until it has passed;
 *      the call is retried after it if the deadline allows, else SP_ERATELIMIT with
 *      retry_after_ms set.
 *  - Circuit breaker (sp_breaker): opens after breaker_threshold (5) consecutive
 *      failures (transport, timeout, 5xx, malformed body), stays open breaker_open_ms / 16
 *      (doubling per failed probe up to breaker_open_ms), then lets one half-open probe
 *      through. While open, calls fail at once with
 *      SP_EOPEN (returned synchronously). 4xx answers are not failures (the API is up).
 *  - Budget: a token bucket of call_budget calls per 5 minutes minus a 10 % safety
 *      margin (Cloudflare: 1200 / 5 min / account, dashboard included); no extra margin
 *      with budget_exact (CLOUDFLARE_CALL_BUDGET, default 1100, already has it). Every attempt
 *      costs one token. Priorities keep a reserve: POLL calls are refused while less
 *      than 25 % remains, NORMAL while less than 5 %, INTERACTIVE (start/stop) may use
 *      everything. Refusal is SP_ERATELIMIT, returned synchronously.
 *  - Envelope errors {success:false, errors:[{code,message}]} are surfaced with
 *      Cloudflare's code and message (cf_code, cf_message).
 * Error codes in sp_cf_result_t.err: 0, SP_ENOTFOUND (404), SP_EAUTH (400 6003, 401,
 * 403), SP_ERATELIMIT (429), SP_EUNAVAIL (5xx), SP_EUPSTREAM (other envelope
 * errors), SP_ETIMEDOUT, SP_EIO (transport), SP_EPROTO (malformed body), SP_EOPEN,
 * SP_ECANCELED (client freed).
 */
#ifndef SP_CLOUDFLARE_H
#define SP_CLOUDFLARE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "core/sp_config.h"

typedef struct sp_cloudflare_s sp_cloudflare_t;

typedef enum {
    SP_CF_PRIO_INTERACTIVE = 0, /* user-initiated start/stop */
    SP_CF_PRIO_NORMAL,          /* reconciliation, cleanup */
    SP_CF_PRIO_POLL,            /* background state polling: first to be refused */
} sp_cf_prio_t;

typedef struct {
    const char *base_url;      /* default https://api.cloudflare.com/client/v4 */
    const char *account_id;
    const char *api_token;
    const char *ca_file;       /* NULL = system store */
    uint64_t timeout_ms;       /* overall deadline per call; 0 = 10000 */
    int64_t call_budget;       /* calls per 5 minutes; 0 = 1200 */
    bool budget_exact;         /* true: call_budget already has the safety margin (config) */
    bool register_metrics;     /* true: sp_metrics_register() this client for GET /metrics */
    uint32_t max_retries;      /* 0 = default 3; use SP_CF_NO_RETRY for none */
    uint64_t backoff_base_ms;  /* 0 = 250 */
    uint64_t backoff_max_ms;   /* 0 = 4000 */
    uint32_t breaker_threshold; /* 0 = 5 */
    uint64_t breaker_open_ms;  /* 0 = 30000 */
    const char *recording_mode; /* sent on create: "automatic", else "off" */
    int64_t recording_timeout_s; /* recording.timeoutSeconds sent on create */
} sp_cloudflare_opts_t;

#define SP_CF_NO_RETRY UINT32_MAX

typedef struct {
    int err;                /* see above */
    long http_status;       /* last HTTP status, 0 if none */
    int cf_code;            /* Cloudflare errors[0].code, 0 if none */
    const char *cf_message; /* Cloudflare errors[0].message or our description; never NULL */
    uint64_t retry_after_ms; /* with SP_ERATELIMIT: when to try again */
    uint32_t attempts;
    json_t *result; /* borrowed envelope "result" (may be NULL); valid during the callback */
} sp_cf_result_t;

typedef struct {
    char uid[65];
    char rtmps_url[512];
    char stream_key[256];    /* secret: never log */
    char state[32];          /* "connected" | "disconnected" | "errored" | other opaque value */
    bool ever_connected;     /* false when status was null (never connected) */
    char status_entered_at[48];
    bool enabled;
    /* the built-in relay's "health" extension object (borrowed from the response, valid
       during the callback); NULL from Cloudflare, which has no such field */
    const json_t *health;
    /* the input's "recording" object (borrowed like health): {mode, ...}; the built-in relay
       adds "current" {state, bytes, duration_ms, error?}. NULL when absent */
    const json_t *recording;
} sp_cf_input_t;

typedef struct {
    char uid[65];
    char url[1024];
    char stream_key[512];    /* secret: never log */
    bool enabled;
    /* Optional health fields (the built-in relay has them, Cloudflare does not):
       has_health is true when "status" was a known string; the others are kept
       when present and well-formed (bytes/reconnects -1 when absent). */
    bool has_health;
    char status[16];         /* idle | connecting | forwarding | error */
    char last_error[256];    /* "" when none (truncated if longer) */
    int64_t bytes;
    int64_t reconnects;
} sp_cf_output_t;

typedef void (*sp_cf_input_cb)(const sp_cf_result_t *r, const sp_cf_input_t *in, void *ud);
typedef void (*sp_cf_output_cb)(const sp_cf_result_t *r, const sp_cf_output_t *out, void *ud);
typedef void (*sp_cf_outputs_cb)(const sp_cf_result_t *r, const sp_cf_output_t *outs, size_t n,
                                 void *ud);
typedef void (*sp_cf_done_cb)(const sp_cf_result_t *r, void *ud);

/** Options from the configuration (CLOUDFLARE_*, API_CALL_TIMEOUT); sets budget_exact and
 *  register_metrics. */
void sp_cloudflare_opts_from_config(const sp_config_t *cfg, sp_cloudflare_opts_t *out);
/** NULL on invalid options (missing account/token, bad base URL). Strings are copied. */
sp_cloudflare_t *sp_cloudflare_new(uv_loop_t *loop, const sp_cloudflare_opts_t *opts);
/** Pending calls complete with SP_ECANCELED (inside this call); memory is released once the
 *  loop has closed the handles. */
void sp_cloudflare_free(sp_cloudflare_t *cf);
/** The callbacks of pending calls with this ud will not run (the owner is going away). */
size_t sp_cloudflare_forget(sp_cloudflare_t *cf, void *ud);

/* Operations: 0 = submitted (cb will run exactly once, later), or an error (no cb):
 * SP_EINVAL, SP_EOPEN (breaker open), SP_ERATELIMIT (budget or 429 pause), SP_ECLOSED. */
int sp_cloudflare_create_input(sp_cloudflare_t *cf, const char *name, const char *user_id,
                               sp_cf_prio_t prio, sp_cf_input_cb cb, void *ud);
/* Built-in relay only: re-creates a live input the relay lost, with the same uid and stream
   key (body fields uid, streamKey; Cloudflare would ignore them and create a new input). */
int sp_cloudflare_restore_input(sp_cloudflare_t *cf, const char *name, const char *user_id,
                                const char *input_uid, const char *stream_key, sp_cf_prio_t prio,
                                sp_cf_input_cb cb, void *ud);
int sp_cloudflare_get_input(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                            sp_cf_input_cb cb, void *ud);
int sp_cloudflare_delete_input(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                               sp_cf_done_cb cb, void *ud);
int sp_cloudflare_list_outputs(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                               sp_cf_outputs_cb cb, void *ud);
int sp_cloudflare_create_output(sp_cloudflare_t *cf, const char *input_uid, const char *url,
                                const char *stream_key, bool enabled, sp_cf_prio_t prio,
                                sp_cf_output_cb cb, void *ud);
int sp_cloudflare_delete_output(sp_cloudflare_t *cf, const char *input_uid,
                                const char *output_uid, sp_cf_prio_t prio, sp_cf_done_cb cb,
                                void *ud);
int sp_cloudflare_set_output_enabled(sp_cloudflare_t *cf, const char *input_uid,
                                     const char *output_uid, bool enabled, sp_cf_prio_t prio,
                                     sp_cf_output_cb cb, void *ud);
/* Built-in relay only (MEDIA_BACKEND=local; never call it against Cloudflare, which has no
   such field): PUT live_inputs/{uid} {"disconnectProtection": on}, NORMAL priority, retried
   like every PUT. The relay's answer (the input) is not parsed: cb gets r->result. */
int sp_cloudflare_set_input_protection(sp_cloudflare_t *cf, const char *input_uid, bool on,
                                       sp_cf_done_cb cb, void *ud);

/* PUT live_inputs/{uid} {recording: {mode, timeoutSeconds}} (a user's recording setting). */
int sp_cloudflare_set_recording(sp_cloudflare_t *cf, const char *input_uid, const char *mode,
                                int64_t timeout_s, sp_cf_prio_t prio, sp_cf_input_cb cb, void *ud);
/* GET live_inputs/{uid}/videos: the input's recordings; r->result is the array of video
   objects (borrowed, valid during the callback). */
int sp_cloudflare_list_videos(sp_cloudflare_t *cf, const char *input_uid, sp_cf_prio_t prio,
                              sp_cf_done_cb cb, void *ud);

typedef struct {
    int err;              /* as returned */
    int cf_code;          /* errors[0].code or 0 */
    char cf_message[256]; /* errors[0].message or a description */
    json_t *root;         /* on success: the parsed document (json_decref it), else NULL */
    json_t *result;       /* on success: borrowed "result" (may be NULL) */
} sp_cf_envelope_t;

/** Pure: parses a v4 envelope answered with HTTP status (not 429/5xx, handled before).
 *  0 = success:true on 2xx (or an empty 2xx body when empty_ok); SP_EPROTO = malformed;
 *  SP_ENOTFOUND / SP_EAUTH / SP_EUPSTREAM = an error answer (cf_code, cf_message set). */
int sp_cloudflare_parse_envelope(const char *body, size_t len, long status, bool empty_ok,
                                 sp_cf_envelope_t *out);
/** Pure: parses a LiveInput JSON object (the envelope's result) into *out. 0 or SP_EPROTO. */
int sp_cloudflare_parse_input(const json_t *result, sp_cf_input_t *out);
/** Pure: parses an Output object. 0 or SP_EPROTO. */
int sp_cloudflare_parse_output(const json_t *obj, sp_cf_output_t *out);

/** Budget tokens left now (for tests and metrics). */
double sp_cloudflare_budget_remaining(sp_cloudflare_t *cf);
/** Current breaker state name: closed | open | half_open. */
const char *sp_cloudflare_breaker_state(sp_cloudflare_t *cf);
/** Appends Prometheus text (calls by op and result, retries, breaker state, budget). */
void sp_cloudflare_metrics(sp_cloudflare_t *cf, sp_buf_t *out);

#endif
