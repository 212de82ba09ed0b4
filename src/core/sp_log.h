/*
 * sp_log: one line per event in logfmt:
 *   time=2026-11-21T10:17:53.123Z level=info module=http user=<id> msg="..." k=v ...
 * to stderr or LOG_FILE (reopened on SIGHUP). Every line passes through
 * sp_redact() before it is written, so secrets cannot reach the log even if a
 * caller formats one by mistake. Control characters are escaped (no log
 * injection). Thread-safe: one write(2) per line under a mutex.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { SP_LOG_DEBUG = 0, SP_LOG_INFO, SP_LOG_WARN, SP_LOG_ERROR } sp_log_level_t;

/** path NULL or "" = stderr. Returns 0 or a negative errno. */
int sp_log_open(sp_log_level_t level, const char *path);
int sp_log_reopen(void);
void sp_log_close(void);
void sp_log_set_level(sp_log_level_t level);
bool sp_log_enabled(sp_log_level_t level);
/** Parses debug|info|warn|error; -1 if unknown. */
int sp_log_level_parse(const char *s);
/** Registers a secret value that must never appear in a log line (copied; >= 6 bytes). */
void sp_log_add_secret(const char *secret);

/** fields is a printf format producing "k=v k2=v2" (may be ""). */
void sp_log_write(sp_log_level_t level, const char *module, const char *user, const char *msg,
                  const char *fields, ...) __attribute__((format(printf, 5, 6)));

#define sp_debug(mod, msg, ...) sp_log_write(SP_LOG_DEBUG, mod, NULL, msg, __VA_ARGS__)
#define sp_info(mod, msg, ...) sp_log_write(SP_LOG_INFO, mod, NULL, msg, __VA_ARGS__)
#define sp_warn(mod, msg, ...) sp_log_write(SP_LOG_WARN, mod, NULL, msg, __VA_ARGS__)
#define sp_error(mod, msg, ...) sp_log_write(SP_LOG_ERROR, mod, NULL, msg, __VA_ARGS__)
#define sp_ulog(lvl, mod, user, msg, ...) sp_log_write(lvl, mod, user, msg, __VA_ARGS__)

/*
 * Redaction (pure; unit-tested with canary secrets). Replaces with [REDACTED]:
 *  - the value after a sensitive key in k=v, k="v", "k":"v", "k": v and header
 *    "Name: value" forms (keys containing password, secret, token, key,
 *    authorization, cookie, session, signature, credential);
 *  - the credential after "Bearer " / "Basic ";
 *  - the stream-key path segment of rtmp:// and rtmps:// URLs;
 *  - any value registered with sp_log_add_secret().
 * Writes at most cap-1 bytes plus NUL to out; returns the length written.
 */
size_t sp_redact(const char *in, size_t len, char *out, size_t cap);

#endif
