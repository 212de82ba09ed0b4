/*
 * sp_err: the one error-code table of streampai.
 *
 * Functions return int: 0 (or a count) on success, a negative code on failure.
 * libuv's UV_E* codes pass through unchanged; our own codes sit below -5000 so
 * the two never collide. The table is an X-macro, like libuv's UV_ERRNO_MAP.
 */
#ifndef SP_ERR_H
#define SP_ERR_H

#define SP_ERR_MAP(XX)                                                          \
    XX(AGAIN, -5001, "need more input")                                         \
    XX(NOMEM, -5002, "out of memory")                                           \
    XX(INVAL, -5003, "invalid argument")                                        \
    XX(TOOBIG, -5004, "size limit exceeded")                                    \
    XX(NOTFOUND, -5005, "not found")                                            \
    XX(EXISTS, -5006, "already exists")                                         \
    XX(CONFLICT, -5007, "conflicting state")                                    \
    XX(PROTO, -5008, "protocol error")                                          \
    XX(IO, -5009, "input/output error")                                         \
    XX(TIMEDOUT, -5010, "timed out")                                            \
    XX(UNAVAIL, -5011, "service unavailable")                                   \
    XX(AUTH, -5012, "authentication failed")                                    \
    XX(FORBIDDEN, -5013, "forbidden")                                           \
    XX(RATELIMIT, -5014, "rate limited")                                        \
    XX(CLOSED, -5015, "closed")                                                 \
    XX(BUSY, -5016, "busy")                                                     \
    XX(CRYPTO, -5017, "cryptographic failure")                                  \
    XX(DB, -5018, "database error")                                             \
    XX(UTF8, -5019, "invalid UTF-8")                                            \
    XX(CANCELED, -5020, "canceled")                                             \
    XX(OPEN, -5021, "circuit breaker open")                                     \
    XX(CONFIG, -5022, "configuration error")                                    \
    XX(UPSTREAM, -5023, "upstream error")                                       \
    XX(DISKFULL, -5024, "disk full")                                            \
    XX(CORRUPT, -5025, "data corrupt")                                          \
    XX(SCHEMA, -5026, "schema newer than this binary")                          \
    XX(LIMIT, -5027, "capacity limit reached")

typedef enum {
#define SP_ERR_ENUM(name, code, msg) SP_E##name = (code),
    SP_ERR_MAP(SP_ERR_ENUM)
#undef SP_ERR_ENUM
} sp_err_t;

/** Short symbolic name ("SP_ENOTFOUND", "UV_ECONNREFUSED"); never NULL. */
const char *sp_err_name(int err);
/** Human-readable message; never NULL. Thread-safe (static strings only). */
const char *sp_strerror(int err);

#endif
