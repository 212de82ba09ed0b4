/*
 * libFuzzer target: the alert template validator and renderer (sp_alert_template). The input is
 * a template followed (after a 0xFF byte, if any) by the alert's name. Checks: the output is
 * NUL-terminated within the cap and never longer than SP_ATPL_OUT_MAX; a valid template
 * renders without "{" or "}" that are not literal; an invalid one reports a position inside
 * it; a valid UTF-8 template and values never produce a cut inside a UTF-8 sequence.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_alert_template.h"

static bool utf8_complete_end(const char *s, size_t n)
{
    /* the last sequence is complete: find its lead byte and check the length */
    size_t i = n;
    size_t back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return back == 0;
    unsigned char c = (unsigned char)s[i - 1];
    size_t want = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    return want == back;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (k == 9 || i + k >= n + (k == 0))
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const uint8_t *sep = memchr(d, 0xFF, n);
    size_t tlen = sep ? (size_t)(sep - d) : n;
    const char *tpl = (const char *)d;
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "x");
    a.type = (sp_aq_type_t)(n % SP_AQ_TYPE_COUNT);
    snprintf(a.platform, sizeof(a.platform), "twitch");
    size_t nlen = 0;
    if (sep != NULL) {
        const char *nm = (const char *)sep + 1;
        size_t avail = n - tlen - 1;
        const char *z = memchr(nm, '\0', avail);
        nlen = sp_aq_copy_utf8(a.name, sizeof(a.name), nm, z ? (size_t)(z - nm) : avail);
    }
    a.has_amount = true;
    a.amount = (double)n / 3.0;
    a.has_count = true;
    a.count = (int64_t)n * 1000;
    a.tier = (int)(n % 4);
    a.has_message = true;
    memset(a.message, 'm', 1500);

    size_t pos = (size_t)-1;
    int v = sp_atpl_validate(tpl, tlen, &pos);
    if (v != 0 && v != SP_EINVAL && v != SP_ETOOBIG)
        __builtin_trap();
    if (v == SP_EINVAL && pos >= tlen)
        __builtin_trap();
    if (v == SP_ETOOBIG && (tlen <= SP_ATPL_TEMPLATE_MAX || pos != SP_ATPL_TEMPLATE_MAX))
        __builtin_trap();

    static char out[SP_ATPL_OUT_MAX + 64];
    size_t cap = 1 + (n * 37) % sizeof(out);
    bool cut = false;
    memset(out, 'Z', sizeof(out));
    int r = sp_atpl_render(tpl, tlen, &a, out, cap, &cut);
    if (r < 0 || (size_t)r >= cap || (size_t)r > SP_ATPL_OUT_MAX || out[r] != '\0')
        __builtin_trap();
    if (!cut && memchr(out, '\0', (size_t)r) != NULL && memchr(tpl, '\0', tlen) == NULL &&
        memchr(a.name, '\0', nlen) == NULL)
        __builtin_trap(); /* no stray NUL from the renderer itself */
    if (utf8_valid(d, tlen) && utf8_valid((const uint8_t *)a.name, nlen) &&
        !utf8_complete_end(out, (size_t)r))
        __builtin_trap();
    /* a valid template whose values have no braces renders no braces unless escaped */
    if (v == 0 && memchr(a.name, '{', nlen) == NULL && memchr(a.name, '}', nlen) == NULL &&
        memchr(tpl, '{', tlen) == NULL && memchr(tpl, '}', tlen) == NULL &&
        (memchr(out, '{', (size_t)r) != NULL || memchr(out, '}', (size_t)r) != NULL))
        __builtin_trap();
    return 0;
}
