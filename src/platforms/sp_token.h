/*
 * sp_token: the access-token lifecycle of one connected platform account, single-flight.
 *
 * Every platform call asks for a token with sp_token_get(). The answer is immediate while the
 * token is more than SP_TOKEN_REFRESH_AHEAD_MS from expiry; otherwise (or when the caller saw a
 * 401 with the token it was given) ONE refresh runs through the account's refresher and every
 * caller that arrives meanwhile waits for it: two callers never refresh twice.
 *
 *   valid --(near expiry | 401 with the current token)--> refreshing --ok--> valid
 *                                                               |--reauth--> needs_reauth
 *                                                               '--retry---> valid/expired
 *   needs_reauth: every get answers SP_EAUTH at once, no refresh is tried again until
 *                 sp_token_set() installs a new grant (the user reconnected).
 *
 * Durability: the refresher receives the refresh token and must persist the new tokens (a
 * rotated refresh token replaces the old one) BEFORE it calls sp_token_refreshed(); the
 * waiters get the new access token only after that, so a crash can never lose the only valid
 * refresh token. A 401 reported with an access token older than the current one is not a
 * reason to refresh again: the caller simply gets the current token.
 *
 * Callbacks run synchronously from sp_token_get (immediate answers) or from
 * sp_token_refreshed (waiters, in arrival order); a callback may call sp_token_get again.
 * sp_token_free answers pending waiters with SP_ECANCELED. Tokens are wiped when replaced.
 * Pure: no I/O, no clock of its own (now_ms is passed in).
 */
#ifndef SP_TOKEN_H
#define SP_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#define SP_TOKEN_REFRESH_AHEAD_MS (5 * 60 * 1000)
#define SP_TOKEN_MAX_WAITERS 1024 /* more callers waiting at once: SP_ELIMIT */

typedef struct sp_token_s sp_token_t;

/** err 0: access_token is valid for this call (borrowed: copy it if kept past the callback). */
typedef void (*sp_token_cb)(int err, const char *access_token, void *ud);

typedef enum {
    SP_TOKEN_REFRESH_OK = 0, /* new tokens persisted */
    SP_TOKEN_REFRESH_REAUTH, /* the grant is gone (400/401/invalid_grant) */
    SP_TOKEN_REFRESH_RETRY,  /* temporary failure (network, 5xx, 429) */
} sp_token_refresh_result_t;

/**
 * Starts one refresh with refresh_token (borrowed for the call). It must end, now or later,
 * with exactly one sp_token_refreshed(t, ...).
 */
typedef void (*sp_token_refresher_fn)(sp_token_t *t, const char *refresh_token, void *ud);

typedef struct {
    uint64_t gets, immediate, waited, refreshes, refresh_failures, reauth;
} sp_token_stats_t;

/** A token holder for one account; refresh_token may be NULL (the grant cannot be refreshed). */
sp_token_t *sp_token_new(sp_token_refresher_fn refresher, void *ud);
void sp_token_free(sp_token_t *t);
/** Installs a grant (connect, reconnect): clears needs_reauth. expires_at_ms 0 = unknown. */
void sp_token_set(sp_token_t *t, const char *access_token, const char *refresh_token,
                  int64_t expires_at_ms);
/**
 * Asks for a token at now_ms. failed_token: the access token a call just got a 401 with, or
 * NULL. Returns 0 (cb has run or will run once) or SP_ELIMIT / SP_EINVAL (cb not called).
 */
int sp_token_get(sp_token_t *t, int64_t now_ms, const char *failed_token, sp_token_cb cb,
                 void *ud);
/**
 * Ends the refresh in flight. On SP_TOKEN_REFRESH_OK, access_token / refresh_token (NULL: keep
 * the old refresh token, as Google does) / expires_at_ms are the new grant, already persisted.
 * Waiters are answered: the token, SP_EAUTH (reauth) or SP_EUNAVAIL (retry).
 */
void sp_token_refreshed(sp_token_t *t, sp_token_refresh_result_t res, const char *access_token,
                        const char *refresh_token, int64_t expires_at_ms);
bool sp_token_needs_reauth(const sp_token_t *t);
bool sp_token_refreshing(const sp_token_t *t);
int64_t sp_token_expires_at(const sp_token_t *t);
void sp_token_stats(const sp_token_t *t, sp_token_stats_t *out);

#endif
