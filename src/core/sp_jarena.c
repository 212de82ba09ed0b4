/* sp_jarena: bump-allocated JSON parse trees (see sp_jarena.h). */
#include "core/sp_jarena.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define JA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JA_ASAN 1
#endif
#endif
#ifdef JA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16
#define MIN_ROOM 4096 /* a block with less room left is not worth a window */

typedef struct {
    atomic_int claimed;   /* 1 while a thread has a window open on it */
    atomic_llong live;    /* allocations not yet freed */
    size_t off;           /* next free byte; touched only by the claiming thread */
} block_t;

static unsigned char *g_base; /* SP_JARENA_BLOCKS * SP_JARENA_BLOCK bytes, never freed */
static block_t g_blocks[SP_JARENA_BLOCKS];
static atomic_int g_installed;
static _Thread_local int t_cur = -1;

static atomic_ullong g_windows, g_busy, g_bumped, g_overflow;

static void *ja_malloc(size_t size)
{
    int b = t_cur;
    if (b >= 0) {
        block_t *blk = &g_blocks[b];
        size_t need = (size + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
        if (need >= size && need <= SP_JARENA_BLOCK - blk->off) {
            void *p = g_base + (size_t)b * SP_JARENA_BLOCK + blk->off;
            blk->off += need;
            UNPOISON(p, size);
            atomic_fetch_add(&blk->live, 1);
            atomic_fetch_add_explicit(&g_bumped, 1, memory_order_relaxed);
            return p;
        }
        atomic_fetch_add_explicit(&g_overflow, 1, memory_order_relaxed);
    }
    return malloc(size);
}

static void ja_free(void *p)
{
    if (p == NULL)
        return;
    unsigned char *c = p;
    if (g_base && c >= g_base && c < g_base + (size_t)SP_JARENA_BLOCKS * SP_JARENA_BLOCK) {
        size_t b = (size_t)(c - g_base) / SP_JARENA_BLOCK;
        atomic_fetch_sub(&g_blocks[b].live, 1);
        return;
    }
    free(p);
}

void sp_jarena_install(void)
{
    if (atomic_load(&g_installed))
        return;
    /* one region so that "is this ours" is one range check */
    g_base = aligned_alloc(ALIGN, (size_t)SP_JARENA_BLOCKS * SP_JARENA_BLOCK);
    if (g_base == NULL)
        return; /* stays on malloc: correct, just slower */
    POISON(g_base, (size_t)SP_JARENA_BLOCKS * SP_JARENA_BLOCK);
    json_set_alloc_funcs(ja_malloc, ja_free);
    atomic_store(&g_installed, 1);
}

bool sp_jarena_begin(void)
{
    if (!atomic_load(&g_installed) || t_cur >= 0)
        return false;
    for (int i = 0; i < SP_JARENA_BLOCKS; i++) {
        block_t *blk = &g_blocks[i];
        int expect = 0;
        if (!atomic_compare_exchange_strong(&blk->claimed, &expect, 1))
            continue;
        /* claimed: nobody else bumps it now; frees may still come from any thread, but
           once live is 0 no pointer into it exists, so it can be rewound */
        if (atomic_load(&blk->live) == 0 && blk->off > 0) {
            blk->off = 0;
            /* under ASan a pointer kept into a rewound block is a reported use-after-free */
            POISON(g_base + (size_t)i * SP_JARENA_BLOCK, SP_JARENA_BLOCK);
        }
        if (SP_JARENA_BLOCK - blk->off < MIN_ROOM) {
            atomic_store(&blk->claimed, 0);
            continue;
        }
        t_cur = i;
        atomic_fetch_add_explicit(&g_windows, 1, memory_order_relaxed);
        return true;
    }
    atomic_fetch_add_explicit(&g_busy, 1, memory_order_relaxed);
    return false;
}

void sp_jarena_end(void)
{
    int b = t_cur;
    if (b < 0)
        return;
    t_cur = -1;
    atomic_store(&g_blocks[b].claimed, 0);
}

void sp_jarena_stats(sp_jarena_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->windows = atomic_load(&g_windows);
    out->busy = atomic_load(&g_busy);
    out->bumped = atomic_load(&g_bumped);
    out->overflow = atomic_load(&g_overflow);
}

int64_t sp_jarena_live(void)
{
    int64_t n = 0;
    for (int i = 0; i < SP_JARENA_BLOCKS; i++)
        n += atomic_load(&g_blocks[i].live);
    return n;
}
