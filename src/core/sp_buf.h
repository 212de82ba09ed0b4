/*
 * sp_buf: the two string types of streampai.
 *
 *  - sp_str_t: a non-owning slice (pointer + length), what parsers produce.
 *  - sp_buf_t: an owned, growable byte buffer with a hard cap (max). It is kept
 *    NUL-terminated for convenience. Appending past the cap returns SP_ETOOBIG
 *    and leaves the buffer unchanged.
 *  - sp_rbuf_t: an immutable refcounted byte block, shared by many writers
 *    (one encoded WebSocket frame fanned out to N sockets, one FLV tag to N
 *    outputs). Not thread-safe: the loop thread owns refcounts.
 */
#ifndef SP_BUF_H
#define SP_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p;
    size_t len;
} sp_str_t;

#define SP_STR_LIT(s) ((sp_str_t){ (s), sizeof(s) - 1 })
sp_str_t sp_str(const char *cstr);
bool sp_str_eq(sp_str_t a, sp_str_t b);
bool sp_str_eq_cstr(sp_str_t a, const char *b);

typedef struct {
    char *p;    /* data, NUL-terminated when cap > 0 */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated (excluding the NUL) */
    size_t max; /* hard cap on len; 0 = SIZE_MAX */
} sp_buf_t;

void sp_buf_init(sp_buf_t *b, size_t max);
void sp_buf_cleanup(sp_buf_t *b);
void sp_buf_reset(sp_buf_t *b);
int sp_buf_reserve(sp_buf_t *b, size_t extra);
int sp_buf_append(sp_buf_t *b, const void *p, size_t n);
int sp_buf_append_str(sp_buf_t *b, const char *s);
int sp_buf_appendf(sp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Drops n bytes from the front. */
void sp_buf_consume(sp_buf_t *b, size_t n);
/** Hands the storage to the caller (sp_free it); the buffer becomes empty. */
char *sp_buf_detach(sp_buf_t *b, size_t *len);

typedef struct sp_rbuf_s {
    uint32_t refs;
    size_t len;
    uint8_t data[];
} sp_rbuf_t;

/** New refcounted block with refs=1, copying n bytes from p (p may be NULL). */
sp_rbuf_t *sp_rbuf_new(const void *p, size_t n);
sp_rbuf_t *sp_rbuf_ref(sp_rbuf_t *r);
void sp_rbuf_unref(sp_rbuf_t *r);

#endif
