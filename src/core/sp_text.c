/* sp_text: shared text helpers. See sp_text.h. */
#include "core/sp_text.h"

#include <string.h>

#include "core/sp_err.h"

int sp_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long sp_pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags)
{
    size_t o = 0;
    long rc = SP_ETOOBIG;
    if (cap == 0)
        return SP_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int h = -1, l = -1;
            if (i + 2 < n) {
                h = sp_hex_digit((unsigned char)s[i + 1]);
                l = sp_hex_digit((unsigned char)s[i + 2]);
            }
            if (h < 0 || l < 0) {
                rc = SP_EINVAL;
                goto fail;
            }
            ch = (char)(h * 16 + l);
            i += 2;
            if (ch == '\0' && (flags & SP_PCT_NO_NUL)) {
                rc = SP_EINVAL;
                goto fail;
            }
        } else if (ch == '+' && (flags & SP_PCT_FORM)) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            goto fail;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (long)o;
fail:
    out[o < cap ? o : cap - 1] = '\0';
    return rc;
}

bool sp_id_ok(const char *s, size_t n)
{
    if (!s || n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool sp_json_strcpy(const json_t *obj, const char *key, char *dst, size_t cap, unsigned flags,
                    bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (cap)
        dst[0] = '\0';
    if (present)
        *present = false;
    if (!v || json_is_null(v))
        return !(flags & SP_JSON_REQUIRED);
    if (!json_is_string(v) || cap == 0)
        return false;
    size_t n = json_string_length(v);
    if (n >= cap || memchr(json_string_value(v), '\0', n))
        return false;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    if (present)
        *present = true;
    return true;
}

const char *sp_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
