/*
 * sp_curlm: asynchronous HTTP(S) client requests on the libuv loop, over
 * libcurl's multi_socket interface (one CURLM per sp_curlm_t, one uv_poll per
 * socket curl asks for, one uv_timer for curl's timeout).
 *
 * POST and PATCH always use a fresh connection (curl would otherwise re-send
 * them silently when a pooled connection turns out to be dead).
 * Responses are buffered in memory with a hard cap. Redirects are never
 * followed and only http/https are allowed (no SSRF through redirects).
 * Everything runs on the loop thread; nothing blocks.
 */
#ifndef SP_CURLM_H
#define SP_CURLM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sp_curlm_s sp_curlm_t;

typedef struct {
    const char *method;          /* "GET" (default when NULL), "POST", "PUT", "DELETE", ... */
    const char *url;
    const char *const *headers;  /* NULL-terminated "Name: value" */
    const void *body;
    size_t body_len;
    uint64_t timeout_ms;         /* 0 = 10000 */
    size_t max_response_bytes;   /* 0 = 4 MiB */
    const char *ca_file;         /* NULL = system store */
} sp_curlm_request_t;

typedef struct {
    int err;             /* 0, SP_ETIMEDOUT, SP_EIO (connect/transport), SP_ETOOBIG, SP_ECANCELED */
    long status;         /* HTTP status or 0 */
    const char *errmsg;  /* never NULL */
    const char *body;    /* NUL-terminated; valid only during the callback */
    size_t body_len;
    const char *retry_after; /* Retry-After header value or NULL */
    const char *rl_remaining; /* Ratelimit-Remaining header value or NULL */
    const char *rl_reset;    /* Ratelimit-Reset header value (epoch seconds) or NULL */
    int request_sent;    /* 0 = no byte of the request left (e.g. connect failed): safe to
                          * retry even a non-idempotent call; 1 = it may have reached the server */
} sp_curlm_response_t;

typedef void (*sp_curlm_cb)(const sp_curlm_response_t *res, void *ud);

sp_curlm_t *sp_curlm_new(uv_loop_t *loop);
/* Copies everything it needs; cb is called exactly once, never synchronously.
 * Returns 0 or an error (then no cb). */
int sp_curlm_request(sp_curlm_t *m, const sp_curlm_request_t *req, sp_curlm_cb cb, void *ud);
/* Pending requests complete with SP_ECANCELED (their callbacks run inside this
 * call); handles are closed; memory freed when they are (loop must run).
 * Safe to call from inside a completion callback. free(NULL) is a no-op. */
void sp_curlm_free(sp_curlm_t *m);
/* Requests in flight (for metrics and tests). */
size_t sp_curlm_pending(const sp_curlm_t *m);

#endif
