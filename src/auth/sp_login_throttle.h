/*
 * sp_login_throttle: per-account login backoff that never hard-locks an account.
 *
 * Pure (times are passed in), bounded memory, used by sp_auth_throttle after
 * the per-IP bucket has let a login through (a request refused per IP never
 * reaches this module, so it cannot spend anyone's allowance).
 *
 * Two records, both counting attempts that were not followed by a correct
 * password (an attempt is charged when it is let through and refunded when
 * the password turns out right, or when it was never judged: busy, store
 * error), both forgotten SP_LOGIN_QUIET_MS after their last charge:
 *  - per (account, client address) "pair", exact, in a table of at most
 *    max_pairs entries: the first SP_LOGIN_PAIR_FREE failures are free, then
 *    that address waits 1 s, 2 s, 4 s ... up to SP_LOGIN_BACKOFF_CAP_MS after
 *    its last failure. A correct password from the address clears its pair.
 *  - per account, in a count-min sketch (fixed memory, never forgets; a
 *    collision can only make an account look more attacked): once the account
 *    has SP_LOGIN_ACCOUNT_FREE failures from anywhere, it takes at most one
 *    attempt per SP_LOGIN_GATE_MS from all addresses together.
 * So the owner, typing the right password from an address that never failed
 * for the account, waits at most SP_LOGIN_GATE_MS whatever others do; an
 * address that keeps failing backs off exponentially; a crowd of addresses
 * gets one guess per SP_LOGIN_GATE_MS between them. When the pair table is
 * full of live entries a new pair is not recorded: that address is then held
 * by the account gate alone.
 */
#ifndef SP_LOGIN_THROTTLE_H
#define SP_LOGIN_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_LOGIN_PAIR_FREE 5
#define SP_LOGIN_ACCOUNT_FREE 5
#define SP_LOGIN_GATE_MS 1000
#define SP_LOGIN_BACKOFF_CAP_MS (15 * 60 * 1000)
#define SP_LOGIN_QUIET_MS (30 * 60 * 1000)

typedef struct sp_login_throttle_s sp_login_throttle_t;

/** max_pairs 0 = 65536. */
sp_login_throttle_t *sp_login_throttle_new(size_t max_pairs);
void sp_login_throttle_free(sp_login_throttle_t *t);

/**
 * May `addr` (an address key, sp_auth_ip_key) try a password for `account`
 * now? 0: yes, and the attempt is charged; SP_ERATELIMIT with *retry_ms (if
 * not NULL) the wait. Refused attempts change nothing.
 */
int sp_login_throttle_check(sp_login_throttle_t *t, const char *account, const char *addr,
                            uint64_t now_ms, uint64_t *retry_ms);

typedef enum {
    SP_LOGIN_FAILED,  /* wrong password or unknown account: the charge stays */
    SP_LOGIN_OK,      /* right password: the pair is cleared, the charge refunded */
    SP_LOGIN_UNJUDGED /* busy or store error: the charge is refunded */
} sp_login_outcome_t;

/**
 * The outcome of an attempt that sp_login_throttle_check let through, at now_ms (a failure
 * restarts the address's wait from now: hashing a password may take a while).
 */
void sp_login_throttle_done(sp_login_throttle_t *t, const char *account, const char *addr,
                            sp_login_outcome_t outcome, uint64_t now_ms);

/** Pairs held (at most max_pairs). */
size_t sp_login_throttle_pairs(const sp_login_throttle_t *t);

#endif
