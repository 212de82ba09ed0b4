/* sp_ratelimit: token bucket and keyed limiter (bounded table + count-min overflow). */
#include "core/sp_ratelimit.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_map.h"

#define SWEEP_PAUSE_MS 1000

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

static uint64_t wait_for(const sp_tbucket_t *b, double n)
{
    double missing = n - b->tokens;
    if (missing <= 0)
        return 0;
    return b->rate > 0 ? (uint64_t)ceil(missing / b->rate) : UINT64_MAX;
}

bool sp_tbucket_take(sp_tbucket_t *b, double n, uint64_t now_ms, uint64_t *retry_after_ms)
{
    refill(b, now_ms);
    if (b->tokens >= n) {
        b->tokens -= n;
        return true;
    }
    if (retry_after_ms)
        *retry_after_ms = wait_for(b, n);
    return false;
}

void sp_sketch_index(const uint8_t seed[16], const void *key, size_t klen, size_t width,
                     size_t out[SP_RATELIMIT_SKETCH_ROWS])
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, klen, seed);
    for (size_t r = 0; r < SP_RATELIMIT_SKETCH_ROWS; r++)
        out[r] = (((size_t)h[2 * r] << 8) | h[2 * r + 1]) & (width - 1);
}

struct sp_ratelimit_s {
    sp_map_t *buckets;
    double rate_per_sec, burst;
    size_t max_keys;
    uint64_t no_sweep_until; /* a sweep that freed nothing is not retried before this */
    sp_tbucket_t *sketch;    /* NULL until the first overflow; ROWS * width cells */
    size_t width;
    uint8_t seed[16];
};

sp_ratelimit_t *sp_ratelimit_new(double rate_per_sec, double burst, size_t max_keys)
{
    sp_ratelimit_t *rl = sp_calloc(1, sizeof(*rl));
    rl->buckets = sp_map_new(sp_free);
    rl->rate_per_sec = rate_per_sec;
    rl->burst = burst;
    rl->max_keys = max_keys ? max_keys : 100000;
    /* width: a power of two near max_keys / 8, within [1024, 65536] */
    rl->width = 1024;
    while (rl->width < 65536 && rl->width * 8 < rl->max_keys)
        rl->width <<= 1;
    randombytes_buf(rl->seed, sizeof(rl->seed));
    return rl;
}

void sp_ratelimit_free(sp_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    sp_map_free(rl->buckets);
    sp_free(rl->sketch);
    sp_free(rl);
}

/* Drops the buckets that have refilled completely (they carry no information). */
static size_t sweep(sp_ratelimit_t *rl, uint64_t now_ms)
{
    size_t it = 0, n = 0;
    const char *k;
    size_t kl;
    void *v;
    char **victims = sp_calloc(sp_map_count(rl->buckets) + 1, sizeof(char *));
    size_t *vlens = sp_calloc(sp_map_count(rl->buckets) + 1, sizeof(size_t));
    while (sp_map_next(rl->buckets, &it, &k, &kl, &v)) {
        sp_tbucket_t *b = v;
        refill(b, now_ms);
        if (b->tokens >= b->burst) {
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
    return n;
}

/* The sketch's cells of key, refilled; NULL-safe when there is no sketch yet. */
static void sketch_cells(sp_ratelimit_t *rl, const char *key, uint64_t now_ms,
                         sp_tbucket_t *cells[SP_RATELIMIT_SKETCH_ROWS])
{
    size_t idx[SP_RATELIMIT_SKETCH_ROWS];
    sp_sketch_index(rl->seed, key, strlen(key), rl->width, idx);
    for (size_t r = 0; r < SP_RATELIMIT_SKETCH_ROWS; r++) {
        cells[r] = &rl->sketch[r * rl->width + idx[r]];
        refill(cells[r], now_ms);
    }
}

static int sketch_take(sp_ratelimit_t *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms)
{
    if (rl->sketch == NULL) {
        size_t n = SP_RATELIMIT_SKETCH_ROWS * rl->width;
        rl->sketch = sp_calloc(n, sizeof(*rl->sketch));
        for (size_t i = 0; i < n; i++)
            sp_tbucket_init(&rl->sketch[i], rl->rate_per_sec, rl->burst, now_ms);
    }
    sp_tbucket_t *cells[SP_RATELIMIT_SKETCH_ROWS];
    sketch_cells(rl, key, now_ms, cells);
    uint64_t wait = 0;
    for (size_t r = 0; r < SP_RATELIMIT_SKETCH_ROWS; r++) {
        uint64_t w = wait_for(cells[r], 1);
        if (w > wait)
            wait = w;
    }
    if (wait > 0) {
        if (retry_after_ms)
            *retry_after_ms = wait;
        return SP_ERATELIMIT;
    }
    for (size_t r = 0; r < SP_RATELIMIT_SKETCH_ROWS; r++)
        cells[r]->tokens -= 1;
    return 0;
}

int sp_ratelimit_check(sp_ratelimit_t *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms)
{
    sp_tbucket_t *b = sp_map_gets(rl->buckets, key);
    if (b == NULL) {
        if (sp_map_count(rl->buckets) >= rl->max_keys && now_ms >= rl->no_sweep_until &&
            sweep(rl, now_ms) == 0)
            rl->no_sweep_until = now_ms + SWEEP_PAUSE_MS;
        if (sp_map_count(rl->buckets) >= rl->max_keys)
            return sketch_take(rl, key, now_ms, retry_after_ms);
        b = sp_malloc(sizeof(*b));
        sp_tbucket_init(b, rl->rate_per_sec, rl->burst, now_ms);
        if (rl->sketch) {
            sp_tbucket_t *cells[SP_RATELIMIT_SKETCH_ROWS];
            sketch_cells(rl, key, now_ms, cells);
            for (size_t r = 0; r < SP_RATELIMIT_SKETCH_ROWS; r++)
                if (cells[r]->tokens < b->tokens)
                    b->tokens = cells[r]->tokens;
        }
        sp_map_sets(rl->buckets, key, b);
    }
    return sp_tbucket_take(b, 1, now_ms, retry_after_ms) ? 0 : SP_ERATELIMIT;
}

size_t sp_ratelimit_keys(const sp_ratelimit_t *rl)
{
    return sp_map_count(rl->buckets);
}

size_t sp_ratelimit_bytes(const sp_ratelimit_t *rl)
{
    size_t b = sp_map_count(rl->buckets) * (sizeof(sp_tbucket_t) + 64);
    if (rl->sketch)
        b += SP_RATELIMIT_SKETCH_ROWS * rl->width * sizeof(sp_tbucket_t);
    return b;
}
