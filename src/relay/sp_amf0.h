/*
 * sp_amf0: AMF0 decoder (into a small value tree) and encoder. Pure.
 *
 * Decoded strings are slices of the input (the input must outlive the tree).
 * Limits a peer cannot exceed: string length, nesting depth, elements per
 * container and values in total; over a limit is SP_ETOOBIG. References
 * (0x07), AMF3 switch and unknown markers are SP_EPROTO.
 */
#ifndef SP_AMF0_H
#define SP_AMF0_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"

typedef enum {
    SP_AMF0_NUMBER = 0x00,
    SP_AMF0_BOOLEAN = 0x01,
    SP_AMF0_STRING = 0x02,
    SP_AMF0_OBJECT = 0x03,
    SP_AMF0_NULL = 0x05,
    SP_AMF0_UNDEFINED = 0x06,
    SP_AMF0_ECMA_ARRAY = 0x08,
    SP_AMF0_STRICT_ARRAY = 0x0A,
    SP_AMF0_DATE = 0x0B,
    SP_AMF0_LONG_STRING = 0x0C,
} sp_amf0_type_t;

typedef struct sp_amf0_val_s sp_amf0_val_t;
struct sp_amf0_val_s {
    sp_amf0_type_t type;
    double num;      /* NUMBER, DATE */
    bool b;          /* BOOLEAN */
    sp_str_t str;    /* STRING, LONG_STRING */
    size_t n;        /* children (OBJECT, ECMA_ARRAY, STRICT_ARRAY) */
    sp_str_t *keys;  /* n keys (NULL for STRICT_ARRAY) */
    sp_amf0_val_t **vals;
};

typedef struct {
    size_t max_string; /* bytes; default 65535 */
    unsigned max_depth;  /* default 16 */
    size_t max_elems;  /* per container; default 1024 */
    size_t max_total;  /* values in one decode; default 4096 */
} sp_amf0_limits_t;

/**
 * Decodes one value from p. Returns bytes consumed (> 0) and *out (free with
 * sp_amf0_free), or SP_EAGAIN (truncated), SP_ETOOBIG or SP_EPROTO.
 * lim may be NULL for the defaults.
 */
int sp_amf0_decode(const uint8_t *p, size_t len, const sp_amf0_limits_t *lim,
                   sp_amf0_val_t **out);
/** Decodes a sequence of values (a command or data message); *n values in *out. */
int sp_amf0_decode_all(const uint8_t *p, size_t len, const sp_amf0_limits_t *lim,
                       sp_amf0_val_t ***out, size_t *n, size_t max_values);
void sp_amf0_free(sp_amf0_val_t *v);
void sp_amf0_free_all(sp_amf0_val_t **v, size_t n);

/** Property of an OBJECT / ECMA_ARRAY by key; NULL if absent or v is not one. */
const sp_amf0_val_t *sp_amf0_get(const sp_amf0_val_t *v, const char *key);
/** Convenience accessors: return false if v is NULL or of another type. */
bool sp_amf0_as_str(const sp_amf0_val_t *v, sp_str_t *out);
bool sp_amf0_as_num(const sp_amf0_val_t *v, double *out);

/* ---- encoder (append to a capped sp_buf_t; 0 or SP_ETOOBIG) ------------------------ */
int sp_amf0_put_number(sp_buf_t *b, double v);
int sp_amf0_put_bool(sp_buf_t *b, bool v);
int sp_amf0_put_string(sp_buf_t *b, const char *s, size_t len); /* long string if > 65535 */
int sp_amf0_put_cstr(sp_buf_t *b, const char *s);
int sp_amf0_put_null(sp_buf_t *b);
int sp_amf0_put_object_begin(sp_buf_t *b);
int sp_amf0_put_ecma_begin(sp_buf_t *b, uint32_t count);
int sp_amf0_put_key(sp_buf_t *b, const char *key);
int sp_amf0_put_object_end(sp_buf_t *b);
/** Re-encodes any decoded value (used to forward metadata). */
int sp_amf0_put_value(sp_buf_t *b, const sp_amf0_val_t *v);

#endif
