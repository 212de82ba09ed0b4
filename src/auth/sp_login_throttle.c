/* sp_login_throttle: per-account login backoff. See sp_login_throttle.h. */
#include "auth/sp_login_throttle.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_map.h"
#include "core/sp_ratelimit.h"

#define ROWS SP_RATELIMIT_SKETCH_ROWS
#define WIDTH 8192
#define KEY_MAX 512
#define SWEEP_PAUSE_MS 1000

typedef struct {
    uint32_t fails;
    uint64_t last_ms; /* last charge */
    uint64_t gate_ms; /* no attempt before this once fails >= SP_LOGIN_ACCOUNT_FREE */
} cell_t;

typedef struct {
    uint32_t fails;
    uint64_t last_ms;
} pair_t;

struct sp_login_throttle_s {
    cell_t *cells; /* ROWS * WIDTH */
    uint8_t seed[16];
    sp_map_t *pairs;
    size_t max_pairs;
    uint64_t no_sweep_until;
};

sp_login_throttle_t *sp_login_throttle_new(size_t max_pairs)
{
    sp_login_throttle_t *t = sp_calloc(1, sizeof(*t));
    t->cells = sp_calloc((size_t)ROWS * WIDTH, sizeof(cell_t));
    randombytes_buf(t->seed, sizeof(t->seed));
    t->pairs = sp_map_new(sp_free);
    t->max_pairs = max_pairs ? max_pairs : 65536;
    return t;
}

void sp_login_throttle_free(sp_login_throttle_t *t)
{
    if (!t)
        return;
    sp_map_free(t->pairs);
    sp_free(t->cells);
    sp_free(t);
}

/* The account's cells, each reset first when it has been quiet long enough. */
static void cells_of(sp_login_throttle_t *t, const char *account, uint64_t now_ms,
                     cell_t *out[ROWS])
{
    size_t idx[ROWS];
    sp_sketch_index(t->seed, account, strlen(account), WIDTH, idx);
    for (size_t r = 0; r < ROWS; r++) {
        cell_t *c = &t->cells[r * WIDTH + idx[r]];
        if (c->last_ms + SP_LOGIN_QUIET_MS <= now_ms)
            memset(c, 0, sizeof(*c));
        out[r] = c;
    }
}

/* "addr\x1f account"; false when too long (such keys are never stored). */
static bool pair_key(const char *account, const char *addr, char out[KEY_MAX])
{
    int n = snprintf(out, KEY_MAX, "%s\x1f%s", addr, account);
    return n > 0 && n < KEY_MAX;
}

static void sweep_pairs(sp_login_throttle_t *t, uint64_t now_ms)
{
    size_t it = 0, n = 0, cap = sp_map_count(t->pairs) + 1;
    const char *k;
    size_t kl;
    void *v;
    char **victims = sp_calloc(cap, sizeof(char *));
    size_t *vlens = sp_calloc(cap, sizeof(size_t));
    while (sp_map_next(t->pairs, &it, &k, &kl, &v)) {
        pair_t *p = v;
        if (p->last_ms + SP_LOGIN_QUIET_MS <= now_ms) {
            victims[n] = sp_strndup(k, kl);
            vlens[n++] = kl;
        }
    }
    for (size_t j = 0; j < n; j++) {
        sp_map_del(t->pairs, victims[j], vlens[j], NULL);
        sp_free(victims[j]);
    }
    sp_free(victims);
    sp_free(vlens);
    if (n == 0)
        t->no_sweep_until = now_ms + SWEEP_PAUSE_MS;
}

static uint64_t pair_backoff_ms(uint32_t fails)
{
    if (fails < SP_LOGIN_PAIR_FREE)
        return 0;
    uint32_t shift = fails - SP_LOGIN_PAIR_FREE;
    if (shift >= 20)
        return SP_LOGIN_BACKOFF_CAP_MS;
    uint64_t ms = 1000ULL << shift;
    return ms < SP_LOGIN_BACKOFF_CAP_MS ? ms : SP_LOGIN_BACKOFF_CAP_MS;
}

int sp_login_throttle_check(sp_login_throttle_t *t, const char *account, const char *addr,
                            uint64_t now_ms, uint64_t *retry_ms)
{
    char key[KEY_MAX];
    bool keyed = pair_key(account, addr, key);
    pair_t *p = keyed ? sp_map_gets(t->pairs, key) : NULL;
    if (p && p->last_ms + SP_LOGIN_QUIET_MS <= now_ms) {
        sp_map_dels(t->pairs, key, NULL);
        p = NULL;
    }
    uint64_t backoff = p ? pair_backoff_ms(p->fails) : 0;
    if (backoff > 0) {
        uint64_t until = p->last_ms + backoff;
        if (now_ms < until) {
            if (retry_ms)
                *retry_ms = until - now_ms;
            return SP_ERATELIMIT;
        }
    }
    cell_t *c[ROWS];
    cells_of(t, account, now_ms, c);
    uint32_t fails = UINT32_MAX;
    uint64_t gate = UINT64_MAX;
    for (size_t r = 0; r < ROWS; r++) {
        if (c[r]->fails < fails)
            fails = c[r]->fails;
        if (c[r]->gate_ms < gate)
            gate = c[r]->gate_ms;
    }
    if (fails >= SP_LOGIN_ACCOUNT_FREE) {
        if (now_ms < gate) {
            if (retry_ms)
                *retry_ms = gate - now_ms;
            return SP_ERATELIMIT;
        }
        for (size_t r = 0; r < ROWS; r++)
            if (c[r]->gate_ms < now_ms + SP_LOGIN_GATE_MS)
                c[r]->gate_ms = now_ms + SP_LOGIN_GATE_MS;
    }
    /* charge */
    for (size_t r = 0; r < ROWS; r++) {
        if (c[r]->fails < UINT32_MAX)
            c[r]->fails++;
        if (c[r]->last_ms < now_ms)
            c[r]->last_ms = now_ms;
    }
    if (!p && keyed) {
        if (sp_map_count(t->pairs) >= t->max_pairs && now_ms >= t->no_sweep_until)
            sweep_pairs(t, now_ms);
        if (sp_map_count(t->pairs) < t->max_pairs) {
            p = sp_calloc(1, sizeof(*p));
            sp_map_sets(t->pairs, key, p);
        }
    }
    if (p) {
        if (p->fails < UINT32_MAX)
            p->fails++;
        p->last_ms = now_ms;
    }
    return 0;
}

void sp_login_throttle_done(sp_login_throttle_t *t, const char *account, const char *addr,
                            sp_login_outcome_t outcome, uint64_t now_ms)
{
    char key[KEY_MAX];
    if (!pair_key(account, addr, key))
        return;
    pair_t *p = sp_map_gets(t->pairs, key);
    if (!p || p->fails == 0)
        return; /* not charged (or already forgotten): nothing to settle */
    if (outcome == SP_LOGIN_FAILED) {
        if (p->last_ms < now_ms)
            p->last_ms = now_ms;
        return;
    }
    if (outcome == SP_LOGIN_OK || p->fails == 1)
        sp_map_dels(t->pairs, key, NULL);
    else
        p->fails--;
    size_t idx[ROWS];
    sp_sketch_index(t->seed, account, strlen(account), WIDTH, idx);
    for (size_t r = 0; r < ROWS; r++) {
        cell_t *c = &t->cells[r * WIDTH + idx[r]];
        if (c->fails > 0)
            c->fails--;
    }
}

size_t sp_login_throttle_pairs(const sp_login_throttle_t *t)
{
    return sp_map_count(t->pairs);
}
