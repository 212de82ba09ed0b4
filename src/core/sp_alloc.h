/*
 * sp_alloc: the only allocation entry points. They abort with the requested
 * size when memory runs out (redis/h2o policy). Growth a peer can drive is
 * never OOM: it is capped by the caller and answered with SP_ETOOBIG.
 */
#ifndef SP_ALLOC_H
#define SP_ALLOC_H

#include <stddef.h>

void *sp_malloc(size_t n);
void *sp_calloc(size_t count, size_t n);
void *sp_realloc(void *p, size_t n);
char *sp_strdup(const char *s);
char *sp_strndup(const char *s, size_t n);
void sp_free(void *p);

/** Recover the owning struct from a pointer to one of its members. */
#define sp_container_of(ptr, type, member)                                     \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#define SP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
