/* sp_buf: capped growable buffers, slices and refcounted blocks. */
#include "core/sp_buf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

sp_str_t sp_str(const char *cstr)
{
    sp_str_t s = { cstr, cstr ? strlen(cstr) : 0 };
    return s;
}

bool sp_str_eq(sp_str_t a, sp_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool sp_str_eq_cstr(sp_str_t a, const char *b)
{
    return sp_str_eq(a, sp_str(b));
}

bool sp_str_ieq_cstr(sp_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || strncasecmp(a.p, b, n) == 0);
}

void sp_buf_init(sp_buf_t *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX - 1;
}

void sp_buf_cleanup(sp_buf_t *b)
{
    sp_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void sp_buf_reset(sp_buf_t *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

int sp_buf_reserve(sp_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return SP_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap && b->p)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max && need <= b->max)
        ncap = b->max;
    b->p = sp_realloc(b->p, ncap + 1);
    b->cap = ncap;
    b->p[b->len] = '\0';
    return 0;
}

int sp_buf_append(sp_buf_t *b, const void *p, size_t n)
{
    int rc = sp_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int sp_buf_append_str(sp_buf_t *b, const char *s)
{
    return sp_buf_append(b, s, strlen(s));
}

__attribute__((format(printf, 2, 0)))
static int sp_buf_vappendf(sp_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return SP_EINVAL;
    int rc = sp_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sp_buf_appendf(sp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sp_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void sp_buf_consume(sp_buf_t *b, size_t n)
{
    if (n >= b->len) {
        sp_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

char *sp_buf_detach(sp_buf_t *b, size_t *len)
{
    if (b->p == NULL)
        sp_buf_reserve(b, 0);
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

sp_rbuf_t *sp_rbuf_new(const void *p, size_t n)
{
    sp_rbuf_t *r = sp_malloc(sizeof(*r) + n + 1);
    r->refs = 1;
    r->len = n;
    if (p && n)
        memcpy(r->data, p, n);
    r->data[n] = 0;
    return r;
}

sp_rbuf_t *sp_rbuf_ref(sp_rbuf_t *r)
{
    r->refs++;
    return r;
}

void sp_rbuf_unref(sp_rbuf_t *r)
{
    if (r && --r->refs == 0)
        sp_free(r);
}
