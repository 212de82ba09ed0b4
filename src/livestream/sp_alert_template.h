/*
 * sp_alert_template: the AlertBox message templates (docs/alerts.md), pure and allocation-free.
 *
 *   "{name} just followed!"   "{name} gifted {count} subs!"   "{amount} {currency} from {name}"
 *
 * Variables: name, amount (whole amounts without decimals, else 2 decimals), currency, count,
 * tier, message, platform, type; an absent optional field renders as "". "{{" and "}}" are
 * literal braces. An unknown variable or an unbalanced brace is an error for
 * sp_atpl_validate (with the offending byte offset) and renders verbatim in sp_atpl_render.
 * The output is plain text (the widget inserts it as text, never as HTML), at most
 * SP_ATPL_OUT_MAX bytes, cut at a UTF-8 boundary.
 */
#ifndef SP_ALERT_TEMPLATE_H
#define SP_ALERT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "livestream/sp_alertq.h"

#define SP_ATPL_OUT_MAX 1024
#define SP_ATPL_TEMPLATE_MAX 1024  /* longer templates fail validation */

/**
 * 0 when tpl (len bytes) is a valid template; SP_EINVAL with *err_pos at the offending brace
 * (unknown variable, unclosed "{", lone "}"), or SP_ETOOBIG with *err_pos = SP_ATPL_TEMPLATE_MAX.
 * err_pos may be NULL.
 */
int sp_atpl_validate(const char *tpl, size_t len, size_t *err_pos);

/**
 * Renders tpl against a into out (cap bytes, NUL-terminated, at most SP_ATPL_OUT_MAX bytes of
 * text). Returns the length written (>= 0) or SP_EINVAL (NULL arguments, cap 0). *truncated
 * (may be NULL) says whether the output was cut.
 */
int sp_atpl_render(const char *tpl, size_t len, const sp_aq_alert_t *a, char *out, size_t cap,
                   bool *truncated);

#endif
