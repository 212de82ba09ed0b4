/* sp_ratelimit: token bucket and keyed limiter. */
#include "core/sp_ratelimit.h"

#include <math.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_map.h"

void sp_tbucket_init(sp_tbucket_t *b, double rate_per_sec, double burst, uint64_t now_ms)
{
    b->rate = rate_per_sec / 1000.0;
    b->burst = burst;
    b->tokens = burst;
    b->last_ms = now_ms;
}

static void refill(sp_tbucket_t *b, uint64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ms = now_ms;
    }
}

bool sp_tbucket_take(sp_tbucket_t *b, double n, uint64_t now_ms, uint64_t *retry_after_ms)
{
    refill(b, now_ms);
    if (b->tokens >= n) {
        b->tokens -= n;
        return true;
    }
    if (retry_after_ms) {
        double missing = n - b->tokens;
        *retry_after_ms = b->rate > 0 ? (uint64_t)ceil(missing / b->rate) : UINT64_MAX;
    }
    return false;
}

struct sp_ratelimit_s {
    sp_map_t *buckets;
    double rate_per_sec, burst;
    size_t max_keys;
};

sp_ratelimit_t *sp_ratelimit_new(double rate_per_sec, double burst, size_t max_keys)
{
    sp_ratelimit_t *rl = sp_calloc(1, sizeof(*rl));
    rl->buckets = sp_map_new(sp_free);
    rl->rate_per_sec = rate_per_sec;
    rl->burst = burst;
    rl->max_keys = max_keys ? max_keys : 100000;
    return rl;
}

void sp_ratelimit_free(sp_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    sp_map_free(rl->buckets);
    sp_free(rl);
}

/* Drops buckets that have refilled completely (they carry no information). */
static void sweep(sp_ratelimit_t *rl, uint64_t now_ms, bool force_half)
{
    size_t it = 0, n = 0;
    const char *k;
    size_t kl;
    void *v;
    char **victims = sp_calloc(sp_map_count(rl->buckets) + 1, sizeof(char *));
    size_t *vlens = sp_calloc(sp_map_count(rl->buckets) + 1, sizeof(size_t));
    size_t i = 0;
    while (sp_map_next(rl->buckets, &it, &k, &kl, &v)) {
        sp_tbucket_t *b = v;
        refill(b, now_ms);
        bool full = b->tokens >= b->burst;
        if (full || (force_half && (i++ % 2) == 0)) {
            victims[n] = sp_strndup(k, kl);
            vlens[n++] = kl;
        }
    }
    for (size_t j = 0; j < n; j++) {
        sp_map_del(rl->buckets, victims[j], vlens[j], NULL);
        sp_free(victims[j]);
    }
    sp_free(victims);
    sp_free(vlens);
}

int sp_ratelimit_check(sp_ratelimit_t *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms)
{
    sp_tbucket_t *b = sp_map_gets(rl->buckets, key);
    if (b == NULL) {
        if (sp_map_count(rl->buckets) >= rl->max_keys) {
            sweep(rl, now_ms, false);
            if (sp_map_count(rl->buckets) >= rl->max_keys)
                sweep(rl, now_ms, true);
        }
        b = sp_malloc(sizeof(*b));
        sp_tbucket_init(b, rl->rate_per_sec, rl->burst, now_ms);
        sp_map_sets(rl->buckets, key, b);
    }
    return sp_tbucket_take(b, 1, now_ms, retry_after_ms) ? 0 : SP_ERATELIMIT;
}

size_t sp_ratelimit_keys(const sp_ratelimit_t *rl)
{
    return sp_map_count(rl->buckets);
}
