/*
 * sp_ratelimit: token buckets.
 *
 * sp_tbucket_t is one bucket (embed it). sp_ratelimit_t keeps one bucket per
 * key (an IP, an email, a user id) with a hard cap on the number of keys:
 * when full, idle-full buckets are swept, and if still full the oldest-looking
 * half is dropped, so a flood of distinct keys cannot grow memory.
 */
#ifndef SP_RATELIMIT_H
#define SP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double tokens;
    double rate;  /* tokens per millisecond */
    double burst; /* capacity */
    uint64_t last_ms;
} sp_tbucket_t;

/** rate_per_sec tokens refill per second, up to burst; starts full. */
void sp_tbucket_init(sp_tbucket_t *b, double rate_per_sec, double burst, uint64_t now_ms);
/** Takes n tokens if available. Otherwise false and *retry_after_ms (if not NULL) says when. */
bool sp_tbucket_take(sp_tbucket_t *b, double n, uint64_t now_ms, uint64_t *retry_after_ms);

typedef struct sp_ratelimit_s sp_ratelimit_t;

sp_ratelimit_t *sp_ratelimit_new(double rate_per_sec, double burst, size_t max_keys);
void sp_ratelimit_free(sp_ratelimit_t *rl);
/** 0 if allowed, SP_ERATELIMIT with *retry_after_ms set otherwise. */
int sp_ratelimit_check(sp_ratelimit_t *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms);
size_t sp_ratelimit_keys(const sp_ratelimit_t *rl);

#endif
