/* sp_amf0: AMF0 decoder and encoder (see header). */
#include "relay/sp_amf0.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
    sp_amf0_limits_t lim;
    size_t total;
} dec_t;

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static double bedouble(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static int need(dec_t *d, size_t n)
{
    return d->len - d->pos >= n ? 0 : SP_EAGAIN;
}

static int read_str(dec_t *d, bool is_long, sp_str_t *out)
{
    size_t n;
    int rc = need(d, is_long ? 4 : 2);
    if (rc)
        return rc;
    n = is_long ? be32(d->p + d->pos) : be16(d->p + d->pos);
    d->pos += is_long ? 4 : 2;
    if (n > d->lim.max_string)
        return SP_ETOOBIG;
    if ((rc = need(d, n)))
        return rc;
    out->p = (const char *)d->p + d->pos;
    out->len = n;
    d->pos += n;
    return 0;
}

static int decode_val(dec_t *d, unsigned depth, sp_amf0_val_t **out);

static void add_child(sp_amf0_val_t *v, size_t *cap, sp_str_t key, sp_amf0_val_t *child,
                      bool keyed)
{
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->vals = sp_realloc(v->vals, *cap * sizeof(*v->vals));
        if (keyed)
            v->keys = sp_realloc(v->keys, *cap * sizeof(*v->keys));
    }
    if (keyed)
        v->keys[v->n] = key;
    v->vals[v->n++] = child;
}

static int decode_props(dec_t *d, unsigned depth, sp_amf0_val_t *v)
{
    size_t cap = 0;
    for (;;) {
        sp_str_t key;
        int rc = read_str(d, false, &key);
        if (rc)
            return rc;
        if (key.len == 0) {
            if ((rc = need(d, 1)))
                return rc;
            if (d->p[d->pos] == 0x09) {
                d->pos++;
                return 0;
            }
        }
        if (v->n >= d->lim.max_elems)
            return SP_ETOOBIG;
        sp_amf0_val_t *child = NULL;
        if ((rc = decode_val(d, depth + 1, &child))) {
            sp_amf0_free(child);
            return rc;
        }
        add_child(v, &cap, key, child, true);
    }
}

static int decode_val(dec_t *d, unsigned depth, sp_amf0_val_t **out)
{
    int rc = need(d, 1);
    if (rc)
        return rc;
    if (depth > d->lim.max_depth)
        return SP_ETOOBIG;
    if (++d->total > d->lim.max_total)
        return SP_ETOOBIG;
    uint8_t marker = d->p[d->pos++];
    sp_amf0_val_t *v = sp_calloc(1, sizeof(*v));
    v->type = (sp_amf0_type_t)marker;
    *out = v;
    switch (marker) {
    case SP_AMF0_NUMBER:
        if ((rc = need(d, 8)))
            return rc;
        v->num = bedouble(d->p + d->pos);
        d->pos += 8;
        return 0;
    case SP_AMF0_BOOLEAN:
        if ((rc = need(d, 1)))
            return rc;
        v->b = d->p[d->pos++] != 0;
        return 0;
    case SP_AMF0_STRING:
        return read_str(d, false, &v->str);
    case SP_AMF0_LONG_STRING:
        return read_str(d, true, &v->str);
    case SP_AMF0_NULL:
    case SP_AMF0_UNDEFINED:
        return 0;
    case SP_AMF0_DATE:
        if ((rc = need(d, 10)))
            return rc;
        v->num = bedouble(d->p + d->pos);
        d->pos += 10;
        return 0;
    case SP_AMF0_OBJECT:
        return decode_props(d, depth, v);
    case SP_AMF0_ECMA_ARRAY:
        if ((rc = need(d, 4)))
            return rc;
        d->pos += 4; /* the count is advisory; the end marker terminates */
        return decode_props(d, depth, v);
    case SP_AMF0_STRICT_ARRAY: {
        if ((rc = need(d, 4)))
            return rc;
        uint32_t cnt = be32(d->p + d->pos);
        d->pos += 4;
        if (cnt > d->lim.max_elems)
            return SP_ETOOBIG;
        size_t cap = 0;
        for (uint32_t i = 0; i < cnt; i++) {
            sp_amf0_val_t *child = NULL;
            if ((rc = decode_val(d, depth + 1, &child))) {
                sp_amf0_free(child);
                return rc;
            }
            add_child(v, &cap, (sp_str_t){ 0 }, child, false);
        }
        return 0;
    }
    default:
        return SP_EPROTO;
    }
}

static void set_limits(sp_amf0_limits_t *dst, const sp_amf0_limits_t *lim)
{
    dst->max_string = lim && lim->max_string ? lim->max_string : 65535;
    dst->max_depth = lim && lim->max_depth ? lim->max_depth : 16;
    dst->max_elems = lim && lim->max_elems ? lim->max_elems : 1024;
    dst->max_total = lim && lim->max_total ? lim->max_total : 4096;
}

int sp_amf0_decode(const uint8_t *p, size_t len, const sp_amf0_limits_t *lim,
                   sp_amf0_val_t **out)
{
    dec_t d = { .p = p, .len = len };
    set_limits(&d.lim, lim);
    *out = NULL;
    int rc = decode_val(&d, 0, out);
    if (rc) {
        sp_amf0_free(*out);
        *out = NULL;
        return rc;
    }
    return (int)d.pos;
}

int sp_amf0_decode_all(const uint8_t *p, size_t len, const sp_amf0_limits_t *lim,
                       sp_amf0_val_t ***out, size_t *n, size_t max_values)
{
    dec_t d = { .p = p, .len = len };
    set_limits(&d.lim, lim);
    sp_amf0_val_t **vals = NULL;
    size_t cnt = 0;
    *out = NULL;
    *n = 0;
    while (d.pos < len) {
        if (cnt >= max_values) {
            sp_amf0_free_all(vals, cnt);
            return SP_ETOOBIG;
        }
        sp_amf0_val_t *v = NULL;
        int rc = decode_val(&d, 0, &v);
        if (rc) {
            sp_amf0_free(v);
            sp_amf0_free_all(vals, cnt);
            return rc;
        }
        vals = sp_realloc(vals, (cnt + 1) * sizeof(*vals));
        vals[cnt++] = v;
    }
    *out = vals;
    *n = cnt;
    return 0;
}

void sp_amf0_free(sp_amf0_val_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        sp_amf0_free(v->vals[i]);
    sp_free(v->vals);
    sp_free(v->keys);
    sp_free(v);
}

void sp_amf0_free_all(sp_amf0_val_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sp_amf0_free(v[i]);
    sp_free(v);
}

const sp_amf0_val_t *sp_amf0_get(const sp_amf0_val_t *v, const char *key)
{
    if (!v || !v->keys)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (sp_str_eq_cstr(v->keys[i], key))
            return v->vals[i];
    return NULL;
}

bool sp_amf0_as_str(const sp_amf0_val_t *v, sp_str_t *out)
{
    if (!v || (v->type != SP_AMF0_STRING && v->type != SP_AMF0_LONG_STRING))
        return false;
    *out = v->str;
    return true;
}

bool sp_amf0_as_num(const sp_amf0_val_t *v, double *out)
{
    if (!v || v->type != SP_AMF0_NUMBER)
        return false;
    *out = v->num;
    return true;
}

/* ---- encoder ------------------------------------------------------------------------- */

static int put_u8(sp_buf_t *b, uint8_t v)
{
    return sp_buf_append(b, &v, 1);
}

static int put_be16(sp_buf_t *b, uint16_t v)
{
    uint8_t o[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    return sp_buf_append(b, o, 2);
}

static int put_be32(sp_buf_t *b, uint32_t v)
{
    uint8_t o[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return sp_buf_append(b, o, 4);
}

int sp_amf0_put_number(sp_buf_t *b, double v)
{
    uint64_t u;
    uint8_t o[9];
    memcpy(&u, &v, sizeof(u));
    o[0] = SP_AMF0_NUMBER;
    for (int i = 0; i < 8; i++)
        o[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    return sp_buf_append(b, o, 9);
}

int sp_amf0_put_bool(sp_buf_t *b, bool v)
{
    uint8_t o[2] = { SP_AMF0_BOOLEAN, v ? 1 : 0 };
    return sp_buf_append(b, o, 2);
}

int sp_amf0_put_string(sp_buf_t *b, const char *s, size_t len)
{
    int rc;
    if (len > 0xFFFFFFFFu)
        return SP_ETOOBIG;
    if (len > 0xFFFF) {
        if ((rc = put_u8(b, SP_AMF0_LONG_STRING)) || (rc = put_be32(b, (uint32_t)len)))
            return rc;
    } else if ((rc = put_u8(b, SP_AMF0_STRING)) || (rc = put_be16(b, (uint16_t)len))) {
        return rc;
    }
    return sp_buf_append(b, s, len);
}

int sp_amf0_put_cstr(sp_buf_t *b, const char *s)
{
    return sp_amf0_put_string(b, s, strlen(s));
}

int sp_amf0_put_null(sp_buf_t *b)
{
    return put_u8(b, SP_AMF0_NULL);
}

int sp_amf0_put_object_begin(sp_buf_t *b)
{
    return put_u8(b, SP_AMF0_OBJECT);
}

int sp_amf0_put_ecma_begin(sp_buf_t *b, uint32_t count)
{
    int rc = put_u8(b, SP_AMF0_ECMA_ARRAY);
    return rc ? rc : put_be32(b, count);
}

static int put_key_n(sp_buf_t *b, const char *key, size_t len)
{
    if (len > 0xFFFF)
        return SP_ETOOBIG;
    int rc = put_be16(b, (uint16_t)len);
    return rc ? rc : sp_buf_append(b, key, len);
}

int sp_amf0_put_key(sp_buf_t *b, const char *key)
{
    return put_key_n(b, key, strlen(key));
}

int sp_amf0_put_object_end(sp_buf_t *b)
{
    static const uint8_t end[3] = { 0, 0, 0x09 };
    return sp_buf_append(b, end, 3);
}

int sp_amf0_put_value(sp_buf_t *b, const sp_amf0_val_t *v)
{
    int rc = 0;
    switch (v->type) {
    case SP_AMF0_NUMBER:
        return sp_amf0_put_number(b, v->num);
    case SP_AMF0_BOOLEAN:
        return sp_amf0_put_bool(b, v->b);
    case SP_AMF0_STRING:
    case SP_AMF0_LONG_STRING:
        return sp_amf0_put_string(b, v->str.p, v->str.len);
    case SP_AMF0_NULL:
        return sp_amf0_put_null(b);
    case SP_AMF0_UNDEFINED:
        return put_u8(b, SP_AMF0_UNDEFINED);
    case SP_AMF0_DATE: {
        if ((rc = sp_amf0_put_number(b, v->num)))
            return rc;
        b->p[b->len - 9] = SP_AMF0_DATE;
        return put_be16(b, 0);
    }
    case SP_AMF0_OBJECT:
    case SP_AMF0_ECMA_ARRAY:
        rc = v->type == SP_AMF0_OBJECT ? sp_amf0_put_object_begin(b)
                                       : sp_amf0_put_ecma_begin(b, (uint32_t)v->n);
        for (size_t i = 0; !rc && i < v->n; i++) {
            rc = put_key_n(b, v->keys[i].p, v->keys[i].len);
            if (!rc)
                rc = sp_amf0_put_value(b, v->vals[i]);
        }
        return rc ? rc : sp_amf0_put_object_end(b);
    case SP_AMF0_STRICT_ARRAY:
        if ((rc = put_u8(b, SP_AMF0_STRICT_ARRAY)) || (rc = put_be32(b, (uint32_t)v->n)))
            return rc;
        for (size_t i = 0; !rc && i < v->n; i++)
            rc = sp_amf0_put_value(b, v->vals[i]);
        return rc;
    }
    return SP_EINVAL;
}
