/*
 * sp_map: a hash map from byte-string keys to void* values. Keys are copied.
 * Hashing is SipHash (libsodium crypto_shorthash) with a per-process random
 * key, so peers cannot aim collisions at it. Open addressing with linear
 * probing and tombstones; grows at 70% load. Not thread-safe.
 */
#ifndef SP_MAP_H
#define SP_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sp_map_s sp_map_t;
typedef void (*sp_map_free_cb)(void *value);

/** free_val (may be NULL) is called for values removed or left at sp_map_free. */
sp_map_t *sp_map_new(sp_map_free_cb free_val);
void sp_map_free(sp_map_t *m);
size_t sp_map_count(const sp_map_t *m);
void *sp_map_get(const sp_map_t *m, const void *key, size_t klen);
void *sp_map_gets(const sp_map_t *m, const char *key);
/** Inserts or replaces (the old value goes to free_val). */
void sp_map_set(sp_map_t *m, const void *key, size_t klen, void *value);
void sp_map_sets(sp_map_t *m, const char *key, void *value);
/** Removes; returns true if present. free_val is called unless take != NULL, which receives the
 * value. */
bool sp_map_del(sp_map_t *m, const void *key, size_t klen, void **take);
bool sp_map_dels(sp_map_t *m, const char *key, void **take);

/** Iteration: for (size_t it = 0; sp_map_next(m, &it, &k, &kl, &v);) ...; do not modify meanwhile.
 */
bool sp_map_next(const sp_map_t *m, size_t *it, const char **key, size_t *klen, void **value);

#endif
