/* sp_alloc: malloc wrappers that abort on exhaustion. */
#include "core/sp_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "streampai: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sp_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *sp_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        oom(count * n);
    return p;
}

void *sp_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *sp_strndup(const char *s, size_t n)
{
    char *p = sp_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sp_strdup(const char *s)
{
    return s ? sp_strndup(s, strlen(s)) : NULL;
}

void sp_free(void *p)
{
    free(p);
}
