/*
 * sp_platform_int: runtime pieces shared by platform code under src/platforms/ only (not part
 * of the interface the rest of the program sees).
 */
#ifndef SP_PLATFORM_INT_H
#define SP_PLATFORM_INT_H

#include "platforms/sp_platform.h"

/**
 * sp_platform_http without an account: bearer is the token to send (NULL: no Authorization
 * header, e.g. an OAuth revoke form). No refresh on 401 (the answer is delivered as it came).
 * Same breaker as sp_platform_http for platform p; a rate-limit wait it is asked for holds
 * back every call of the platform (an account's wait holds back that account's calls only).
 */
int sp_platform_http_as(const sp_platform_env_t *env, const sp_platform_t *p, const char *bearer,
                        const sp_platform_req_t *req, sp_platform_http_cb cb, void *ud);

/**
 * Shutdown: ends with SP_ECANCELED every call that is waiting on its own timer (a rate-limit
 * wait, the next step). Calls in an HTTP request end when the sp_curlm is freed, calls waiting
 * for a token refresh when the refresh ends (its request canceled the same way). Call it after
 * stopping the monitors, before freeing the sp_curlm and the accounts.
 */
void sp_platform_cancel_all(void);
/** Calls started and not finished (tests, metrics). */
size_t sp_platform_calls_pending(void);

/** Runs fn(ud) from the loop soon (never synchronously). 0 or SP_ENOMEM (fn not called). */
int sp_platform_defer(uv_loop_t *loop, void (*fn)(void *ud), void *ud);

/** The per-platform gate's state (tests, metrics): breaker state and the rate-limit wait left
 *  for account a's calls (NULL: for calls without an account). */
typedef struct {
    int breaker;          /* sp_breaker_state_t */
    uint32_t failures;    /* consecutive */
    uint64_t wait_ms;     /* 0 when calls may go out now */
} sp_platform_gate_info_t;
void sp_platform_gate_info(const char *platform, const sp_platform_account_t *a,
                           sp_platform_gate_info_t *out);
/** Forgets every platform's breaker and wait (tests). */
void sp_platform_gate_reset(void);

#define SP_PLATFORM_BREAKER_THRESHOLD 5   /* 5xx / transport failures in a row */
#define SP_PLATFORM_BREAKER_OPEN_MS 30000 /* then calls fail SP_EOPEN for this long */
#define SP_PLATFORM_RL_RETRIES 3          /* a call answered 429 is retried after the wait */

#endif
