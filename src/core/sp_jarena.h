/*
 * sp_jarena: bump-allocated JSON parse trees for the hot inbound paths (EventSub frames).
 *
 * jansson allocates every object, hashtable and string of a parsed document with its own
 * malloc and frees each on json_decref: for a 1.5 KB EventSub notification that is ~60 malloc
 * + free pairs, and the freed small chunks then make glibc consolidate its fast bins on the next
 * larger request (the benchmark's profile: malloc first, docs/platforms-performance.md).
 *
 * sp_jarena_install() (once, in main, before any jansson call) routes jansson's allocations
 * through this module. Outside a parse window they go to malloc/free unchanged. Between
 * sp_jarena_begin() and sp_jarena_end() on the calling thread they are bumped out of one of a
 * few fixed blocks (falling back to malloc when the block is full). Safety does not depend on
 * the caller's scoping: each block counts its live allocations (atomically: a tree may be freed
 * on any thread) and is rewound only when that count is back to 0; a block still referenced
 * (e.g. a subtree someone kept with json_incref) is simply not reused until it is released.
 * Freeing an arena pointer is a counter decrement; the tree's memory is reclaimed in one go.
 */
#ifndef SP_JARENA_H
#define SP_JARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_JARENA_BLOCK 65536 /* bytes per block: a 16 KiB frame parses into ~40 KiB */
#define SP_JARENA_BLOCKS 4

/* Routes jansson's allocations through this module. Idempotent; call before any json_* use. */
void sp_jarena_install(void);

/* Opens a parse window on this thread: jansson allocations come from a free block until
   sp_jarena_end. Returns false (and allocations keep going to malloc) when not installed, a
   window is already open on this thread, or every block is still in use. */
bool sp_jarena_begin(void);
void sp_jarena_end(void);

typedef struct {
    uint64_t windows;   /* begins that got a block */
    uint64_t busy;      /* begins refused because every block was still referenced */
    uint64_t bumped;    /* allocations served from a block */
    uint64_t overflow;  /* allocations in a window that went to malloc (block full) */
} sp_jarena_stats_t;
void sp_jarena_stats(sp_jarena_stats_t *out);

/* Live allocations in all blocks (0 when every tree is released): for tests. */
int64_t sp_jarena_live(void);

#endif
