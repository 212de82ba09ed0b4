/*
 * sp_password: argon2id password hashing (libsodium crypto_pwhash_str).
 *
 * Parameters never go below the OWASP minimum (19 MiB, t=2, p=1); production
 * uses libsodium's INTERACTIVE preset (64 MiB, t=2). Hashing and verification
 * run on the thread pool (sp_job) and report back on the loop. Verification of
 * an unknown account runs against a dummy hash with the same parameters, so
 * "no such email" and "wrong password" take the same time. The number of hash
 * computations running at once is capped (each takes memlimit bytes); more
 * requests wait in a FIFO of SP_PASSWORD_MAX_WAITING, beyond which SP_EBUSY.
 */
#ifndef SP_PASSWORD_H
#define SP_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define SP_PASSWORD_MIN_CHARS 8    /* code points */
#define SP_PASSWORD_MAX_BYTES 1024
#define SP_PASSWORD_HASH_MAX 128   /* crypto_pwhash_STRBYTES */
#define SP_PASSWORD_OWASP_MEMLIMIT (19u * 1024u * 1024u)
#define SP_PASSWORD_OWASP_OPSLIMIT 2u
#define SP_PASSWORD_MAX_WAITING 64 /* queued beyond the running ones; then SP_EBUSY */

/** Sets the cost (clamped up to the OWASP minimum) and computes the dummy hash (blocking, once). */
int sp_password_init(unsigned long long opslimit, size_t memlimit, unsigned max_inflight);
void sp_password_cleanup(void);

/** Pure check: 0 ok, SP_EINVAL too short (< 8 code points), SP_ETOOBIG > 1024 bytes, SP_EUTF8. */
int sp_password_check_policy(const char *pw, size_t len);

/* Blocking primitives (worker thread, tests). */
int sp_password_hash_sync(const char *pw, size_t len, char out[SP_PASSWORD_HASH_MAX]);
/** 0 match, SP_EAUTH mismatch or malformed hash. hash NULL = dummy (always SP_EAUTH). */
int sp_password_verify_sync(const char *hash, const char *pw, size_t len);

/** True when hash was made with other parameters than the current ones (upgrade it at login). */
bool sp_password_needs_rehash(const char *hash);

/** hash is valid only during the callback. err 0, SP_EBUSY, SP_ENOMEM. */
typedef void (*sp_password_hash_cb)(int err, const char *hash, void *ud);
/** err 0 = match, SP_EAUTH = mismatch, SP_EBUSY = too many in flight (never called then). */
typedef void (*sp_password_verify_cb)(int err, void *ud);

/** Returns 0 (cb later on the loop) or SP_EBUSY / a uv error (cb never called). */
int sp_password_hash(uv_loop_t *loop, const char *pw, size_t len, sp_password_hash_cb cb, void *ud);
/** hash NULL verifies against the dummy hash (always a mismatch, same cost). */
int sp_password_verify(uv_loop_t *loop, const char *hash, const char *pw, size_t len,
                       sp_password_verify_cb cb, void *ud);
/** Hash computations running or waiting. */
unsigned sp_password_inflight(void);

#endif
