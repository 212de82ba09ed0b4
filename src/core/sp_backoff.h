/*
 * sp_backoff: exponential backoff with full jitter (AWS "full jitter"):
 * the n-th delay is uniform in [base/2, min(max, base * 2^n)] so retries of
 * many clients spread out, and never below half the base.
 */
#ifndef SP_BACKOFF_H
#define SP_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint64_t base_ms;
    uint64_t max_ms;
    uint32_t attempt;
} sp_backoff_t;

void sp_backoff_init(sp_backoff_t *b, uint64_t base_ms, uint64_t max_ms);
/** The delay before the next attempt; advances the attempt count. */
uint64_t sp_backoff_next(sp_backoff_t *b);
/** The ceiling (without jitter) for the current attempt. */
uint64_t sp_backoff_ceiling(const sp_backoff_t *b);
void sp_backoff_reset(sp_backoff_t *b);

#endif
