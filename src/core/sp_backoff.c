/* sp_backoff: exponential backoff with jitter. */
#include "core/sp_backoff.h"

#include <sodium.h>

void sp_backoff_init(sp_backoff_t *b, uint64_t base_ms, uint64_t max_ms)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
    b->attempt = 0;
}

uint64_t sp_backoff_ceiling(const sp_backoff_t *b)
{
    uint64_t c = b->base_ms;
    for (uint32_t i = 0; i < b->attempt && c < b->max_ms; i++)
        c *= 2;
    return c > b->max_ms ? b->max_ms : c;
}

uint64_t sp_backoff_next(sp_backoff_t *b)
{
    uint64_t ceil = sp_backoff_ceiling(b);
    uint64_t floor = b->base_ms / 2;
    if (b->attempt < 64)
        b->attempt++;
    uint64_t span = ceil - floor;
    if (span == 0)
        return ceil;
    uint32_t r = randombytes_uniform(span > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)span + 1);
    return floor + r;
}

void sp_backoff_reset(sp_backoff_t *b)
{
    b->attempt = 0;
}
