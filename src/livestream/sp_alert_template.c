#include "livestream/sp_alert_template.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"

#define VAR_MAX 16 /* longest variable name looked for */

typedef enum {
    V_NAME, V_AMOUNT, V_CURRENCY, V_COUNT, V_TIER, V_MESSAGE, V_PLATFORM, V_TYPE, V_COUNT_ALL
} var_t;

static const char *const var_names[V_COUNT_ALL] = {
    "name", "amount", "currency", "count", "tier", "message", "platform", "type",
};

static int var_lookup(const char *s, size_t n)
{
    for (int i = 0; i < V_COUNT_ALL; i++)
        if (strlen(var_names[i]) == n && memcmp(var_names[i], s, n) == 0)
            return i;
    return -1;
}

/*
 * Scans the token at tpl[i]. Returns its kind: 0 literal byte, 1 literal brace pair ("{{" or
 * "}}", 2 bytes), 2 variable (*var, *tlen bytes), -1 error (unknown or unbalanced).
 */
static int token(const char *tpl, size_t len, size_t i, int *var, size_t *tlen)
{
    char c = tpl[i];
    *tlen = 1;
    if (c != '{' && c != '}')
        return 0;
    if (i + 1 < len && tpl[i + 1] == c) {
        *tlen = 2;
        return 1;
    }
    if (c == '}')
        return -1;
    size_t j = i + 1;
    while (j < len && j - i - 1 <= VAR_MAX && tpl[j] != '}' && tpl[j] != '{')
        j++;
    if (j >= len || tpl[j] != '}')
        return -1;
    *var = var_lookup(tpl + i + 1, j - i - 1);
    if (*var < 0)
        return -1;
    *tlen = j - i + 1;
    return 2;
}

int sp_atpl_validate(const char *tpl, size_t len, size_t *err_pos)
{
    if (tpl == NULL && len > 0)
        return SP_EINVAL;
    if (len > SP_ATPL_TEMPLATE_MAX) {
        if (err_pos != NULL)
            *err_pos = SP_ATPL_TEMPLATE_MAX;
        return SP_ETOOBIG;
    }
    for (size_t i = 0; i < len;) {
        int var = -1;
        size_t tl;
        if (token(tpl, len, i, &var, &tl) < 0) {
            if (err_pos != NULL)
                *err_pos = i;
            return SP_EINVAL;
        }
        i += tl;
    }
    return 0;
}

typedef struct {
    char *out;
    size_t lim;  /* max text bytes */
    size_t n;
    bool cut;
} outbuf_t;

static void put(outbuf_t *o, const char *s, size_t n)
{
    if (o->cut)
        return;
    size_t room = o->lim - o->n;
    if (n > room) {
        /* cut at a UTF-8 boundary: drop continuation bytes that would start the remainder */
        size_t k = room;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        memcpy(o->out + o->n, s, k);
        o->n += k;
        o->cut = true;
        return;
    }
    memcpy(o->out + o->n, s, n);
    o->n += n;
}

static void put_var(outbuf_t *o, int v, const sp_aq_alert_t *a)
{
    char num[64];
    int k = 0;
    switch (v) {
    case V_NAME:
        put(o, a->name, strnlen(a->name, sizeof(a->name)));
        return;
    case V_CURRENCY:
        put(o, a->currency, strnlen(a->currency, sizeof(a->currency)));
        return;
    case V_MESSAGE:
        if (a->has_message)
            put(o, a->message, strnlen(a->message, sizeof(a->message)));
        return;
    case V_PLATFORM:
        put(o, a->platform, strnlen(a->platform, sizeof(a->platform)));
        return;
    case V_TYPE: {
        const char *t = sp_aq_type_name(a->type);
        if (t != NULL)
            put(o, t, strlen(t));
        return;
    }
    case V_AMOUNT:
        if (!a->has_amount || !isfinite(a->amount) || fabs(a->amount) > SP_AQ_AMOUNT_MAX)
            return;
        if (a->amount == floor(a->amount))
            k = snprintf(num, sizeof(num), "%.0f", a->amount);
        else
            k = snprintf(num, sizeof(num), "%.2f", a->amount);
        break;
    case V_COUNT:
        if (!a->has_count)
            return;
        k = snprintf(num, sizeof(num), "%" PRId64, a->count);
        break;
    case V_TIER:
        if (a->tier <= 0)
            return;
        k = snprintf(num, sizeof(num), "%d", a->tier);
        break;
    default:
        return;
    }
    if (k > 0 && (size_t)k < sizeof(num))
        put(o, num, (size_t)k);
}

int sp_atpl_render(const char *tpl, size_t len, const sp_aq_alert_t *a, char *out, size_t cap,
                   bool *truncated)
{
    if ((tpl == NULL && len > 0) || a == NULL || out == NULL || cap == 0)
        return SP_EINVAL;
    outbuf_t o = { .out = out, .lim = cap - 1 < SP_ATPL_OUT_MAX ? cap - 1 : SP_ATPL_OUT_MAX };
    for (size_t i = 0; i < len && !o.cut;) {
        int var = -1;
        size_t tl;
        int kind = token(tpl, len, i, &var, &tl);
        if (kind == 2)
            put_var(&o, var, a);
        else if (kind == 1)
            put(&o, tpl + i, 1); /* "{{" -> "{" */
        else if (kind == 0) { /* a whole literal run, so a cut lands on a UTF-8 boundary */
            while (i + tl < len && tpl[i + tl] != '{' && tpl[i + tl] != '}')
                tl++;
            put(&o, tpl + i, tl);
        } else {
            put(&o, tpl + i, tl); /* an erroneous brace, verbatim */
        }
        i += tl;
    }
    out[o.n] = '\0';
    if (truncated != NULL)
        *truncated = o.cut;
    return (int)o.n;
}
