#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_alert_template.h"

static sp_aq_alert_t alert(void)
{
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "ev1");
    a.type = SP_AQ_DONATION;
    snprintf(a.platform, sizeof(a.platform), "twitch");
    snprintf(a.name, sizeof(a.name), "Alice");
    a.has_amount = true;
    a.amount = 5;
    snprintf(a.currency, sizeof(a.currency), "USD");
    a.has_count = true;
    a.count = 12;
    a.tier = 2;
    a.has_message = true;
    snprintf(a.message, sizeof(a.message), "hi there");
    return a;
}

static const char *render(const char *tpl, const sp_aq_alert_t *a)
{
    static char out[SP_ATPL_OUT_MAX + 1];
    int n = sp_atpl_render(tpl, strlen(tpl), a, out, sizeof(out), NULL);
    cr_assert_geq(n, 0);
    cr_assert_eq((size_t)n, strlen(out));
    return out;
}

static int validate(const char *tpl, size_t *pos)
{
    return sp_atpl_validate(tpl, strlen(tpl), pos);
}

Test(alert_template, variables)
{
    sp_aq_alert_t a = alert();
    cr_assert_str_eq(render("{name} just followed!", &a), "Alice just followed!");
    cr_assert_str_eq(render("{name} gifted {count} subs!", &a), "Alice gifted 12 subs!");
    cr_assert_str_eq(render("{amount} {currency} from {name}: {message}", &a),
                     "5 USD from Alice: hi there");
    cr_assert_str_eq(render("{type}/{platform}/tier {tier}", &a), "donation/twitch/tier 2");
    a.amount = 4.5;
    cr_assert_str_eq(render("{amount}", &a), "4.50");
    a.amount = 1234567.891;
    cr_assert_str_eq(render("{amount}", &a), "1234567.89");
    a.amount = 1e12;
    cr_assert_str_eq(render("{amount}", &a), "1000000000000");
    a.type = SP_AQ_GIFT_SUBSCRIPTION;
    cr_assert_str_eq(render("{type}", &a), "gift_subscription");
}

Test(alert_template, absent_fields_render_empty)
{
    sp_aq_alert_t a = alert();
    a.has_amount = false;
    a.has_count = false;
    a.has_message = false;
    a.tier = 0;
    cr_assert_str_eq(render("[{amount}][{count}][{message}][{tier}]", &a), "[][][][]");
}

Test(alert_template, braces_escape)
{
    sp_aq_alert_t a = alert();
    cr_assert_str_eq(render("{{name}} is {name}", &a), "{name} is Alice");
    cr_assert_str_eq(render("}}{{", &a), "}{");
    cr_assert_eq(validate("{{name}} {{", NULL), 0);
    /* a value with braces is not re-expanded */
    snprintf(a.name, sizeof(a.name), "{message}");
    cr_assert_str_eq(render("{name}", &a), "{message}");
}

Test(alert_template, validate_errors_with_position)
{
    size_t pos = 99;
    cr_assert_eq(validate("hello {nme}!", &pos), SP_EINVAL);
    cr_assert_eq(pos, 6);
    cr_assert_eq(validate("ok {name", &pos), SP_EINVAL);
    cr_assert_eq(pos, 3);
    cr_assert_eq(validate("a } b", &pos), SP_EINVAL);
    cr_assert_eq(pos, 2);
    cr_assert_eq(validate("{na{me}", &pos), SP_EINVAL);
    cr_assert_eq(pos, 0);
    cr_assert_eq(validate("{}", &pos), SP_EINVAL);
    cr_assert_eq(pos, 0);
    cr_assert_eq(validate("{{{name}", &pos), 0); /* "{{" then {name} */
    cr_assert_eq(validate("{name}}", &pos), SP_EINVAL);
    cr_assert_eq(pos, 6);
    cr_assert_eq(validate("", NULL), 0);
    cr_assert_eq(validate("{Name}", &pos), SP_EINVAL); /* case-sensitive */
    char big[SP_ATPL_TEMPLATE_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(validate(big, &pos), SP_ETOOBIG);
    cr_assert_eq(pos, SP_ATPL_TEMPLATE_MAX);
    big[SP_ATPL_TEMPLATE_MAX] = '\0';
    cr_assert_eq(validate(big, &pos), 0);
}

Test(alert_template, invalid_renders_verbatim)
{
    sp_aq_alert_t a = alert();
    cr_assert_str_eq(render("hi {nme} {name}", &a), "hi {nme} Alice");
    cr_assert_str_eq(render("{name", &a), "{name");
    cr_assert_str_eq(render("a } b", &a), "a } b");
    cr_assert_str_eq(render("{verylongvariablenamethatisnotknown}", &a),
                     "{verylongvariablenamethatisnotknown}");
}

Test(alert_template, output_capped_at_utf8_boundary)
{
    sp_aq_alert_t a = alert();
    /* 3-byte characters: 2048 bytes of message, 1024 is not a multiple of 3 */
    size_t n = 0;
    while (n + 3 < sizeof(a.message)) {
        memcpy(a.message + n, "\xe2\x82\xac", 3);
        n += 3;
    }
    a.message[n] = '\0';
    char out[2048];
    bool cut = false;
    int len = sp_atpl_render("{message}", 9, &a, out, sizeof(out), &cut);
    cr_assert(cut);
    cr_assert_eq(len, 1023); /* 341 whole euro signs */
    cr_assert_eq(strlen(out), 1023);
    cr_assert_eq(memcmp(out + 1020, "\xe2\x82\xac", 3), 0);
    /* a smaller caller buffer caps lower; a literal run is cut at a boundary too */
    char small[5];
    len = sp_atpl_render("ab\xe2\x82\xac", 5, &a, small, sizeof(small), &cut);
    cr_assert(cut);
    cr_assert_eq(len, 2);
    cr_assert_str_eq(small, "ab");
    len = sp_atpl_render("ab", 2, &a, small, sizeof(small), &cut);
    cr_assert_not(cut);
    cr_assert_eq(len, 2);
    cr_assert_eq(sp_atpl_render("x", 1, &a, small, 0, NULL), SP_EINVAL);
    cr_assert_eq(sp_atpl_render("x", 1, NULL, small, sizeof(small), NULL), SP_EINVAL);
}
