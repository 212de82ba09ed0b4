/*
 * sp_ratelimit: token buckets.
 *
 * sp_tbucket_t is one bucket (embed it). sp_ratelimit_t keeps one bucket per
 * key (an IP, an email, a user id) in memory bounded by max_keys, and never
 * forgets a bucket that is still limiting:
 *  - when the table is full, buckets that have refilled completely are swept
 *    (a full bucket says nothing a new one would not say); a sweep that frees
 *    nothing is not retried for a second, so a key flood costs O(1) per key;
 *  - a key that finds the table full of partly drained buckets is judged by a
 *    count-min sketch of token buckets (SP_RATELIMIT_SKETCH_ROWS rows of fixed
 *    width, allocated on the first overflow): the key takes from one cell per
 *    row and passes only when every cell has a token. Collisions can only
 *    drain cells faster, so the sketch errs towards limiting, never towards
 *    forgetting;
 *  - a bucket created later for a key is seeded from the sketch (the fewest
 *    tokens among its cells), so moving from the sketch into the table does
 *    not hand out a fresh burst.
 * Keys that were never drained cost nothing beyond the sweep.
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

#define SP_RATELIMIT_SKETCH_ROWS 4

/**
 * The SP_RATELIMIT_SKETCH_ROWS cell indexes (each < width, a power of two up
 * to 65536) of key in a count-min sketch keyed by seed (16 random bytes).
 */
void sp_sketch_index(const uint8_t seed[16], const void *key, size_t klen, size_t width,
                     size_t out[SP_RATELIMIT_SKETCH_ROWS]);

typedef struct sp_ratelimit_s sp_ratelimit_t;

/** max_keys 0 = 100000. */
sp_ratelimit_t *sp_ratelimit_new(double rate_per_sec, double burst, size_t max_keys);
void sp_ratelimit_free(sp_ratelimit_t *rl);
/** 0 if allowed, SP_ERATELIMIT with *retry_after_ms set otherwise. */
int sp_ratelimit_check(sp_ratelimit_t *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms);
/** Keys held exactly in the table (at most max_keys). */
size_t sp_ratelimit_keys(const sp_ratelimit_t *rl);
/** Bytes held by the table's buckets and the sketch (an estimate, for tests and metrics). */
size_t sp_ratelimit_bytes(const sp_ratelimit_t *rl);

#endif
