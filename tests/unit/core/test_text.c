#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"

Test(text, hex_digit)
{
    cr_assert_eq(sp_hex_digit('0'), 0);
    cr_assert_eq(sp_hex_digit('9'), 9);
    cr_assert_eq(sp_hex_digit('a'), 10);
    cr_assert_eq(sp_hex_digit('F'), 15);
    cr_assert_eq(sp_hex_digit('g'), -1);
    cr_assert_eq(sp_hex_digit('\0'), -1);
}

Test(text, pct_decode_plain_form_and_errors)
{
    char out[16];
    cr_assert_eq(sp_pct_decode("a%20b+c", 7, out, sizeof(out), 0), 5);
    cr_assert_str_eq(out, "a b+c");
    cr_assert_eq(sp_pct_decode("a%20b+c", 7, out, sizeof(out), SP_PCT_FORM), 5);
    cr_assert_str_eq(out, "a b c");
    cr_assert_eq(sp_pct_decode("%4A%4a", 6, out, sizeof(out), 0), 2);
    cr_assert_str_eq(out, "JJ");
    /* truncated or bad escapes */
    cr_assert_eq(sp_pct_decode("%", 1, out, sizeof(out), 0), SP_EINVAL);
    cr_assert_eq(sp_pct_decode("%4", 2, out, sizeof(out), 0), SP_EINVAL);
    cr_assert_eq(sp_pct_decode("%zz", 3, out, sizeof(out), 0), SP_EINVAL);
    /* the range is honoured: "%41" cut after 2 bytes is an error, not a read past n */
    cr_assert_eq(sp_pct_decode("%41", 2, out, sizeof(out), 0), SP_EINVAL);
    /* NUL */
    cr_assert_eq(sp_pct_decode("a%00", 4, out, sizeof(out), SP_PCT_NO_NUL), SP_EINVAL);
    cr_assert_eq(sp_pct_decode("a%00", 4, out, sizeof(out), 0), 2);
    /* capacity: 15 chars fit in 16, 16 do not */
    cr_assert_eq(sp_pct_decode("abcdefghijklmno", 15, out, sizeof(out), 0), 15);
    cr_assert_eq(sp_pct_decode("abcdefghijklmnop", 16, out, sizeof(out), 0), SP_ETOOBIG);
    cr_assert_eq(strlen(out), 15);
    cr_assert_eq(sp_pct_decode("a", 1, out, 0, 0), SP_ETOOBIG);
}

Test(text, id_ok)
{
    cr_assert(sp_id_ok("abc-DEF_123", 11));
    cr_assert_not(sp_id_ok("", 0));
    cr_assert_not(sp_id_ok(NULL, 3));
    cr_assert_not(sp_id_ok("a/b", 3));
    cr_assert_not(sp_id_ok("a b", 3));
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    cr_assert(sp_id_ok(long_id, 64));
    cr_assert_not(sp_id_ok(long_id, 65));
}

Test(text, json_strcpy)
{
    json_t *o = json_pack("{s:s,s:i,s:n,s:s%}", "a", "hello", "n", 3, "z", "nul", "a\0b", (size_t)3);
    char d[6];
    bool present = true;
    cr_assert(sp_json_strcpy(o, "a", d, sizeof(d), 0, &present));
    cr_assert_str_eq(d, "hello");
    cr_assert(present);
    cr_assert_not(sp_json_strcpy(o, "a", d, 5, 0, NULL), "does not fit: refused, not truncated");
    cr_assert_str_eq(d, "");
    cr_assert_not(sp_json_strcpy(o, "n", d, sizeof(d), 0, &present));
    cr_assert(sp_json_strcpy(o, "missing", d, sizeof(d), 0, &present));
    cr_assert_not(present);
    cr_assert_not(sp_json_strcpy(o, "missing", d, sizeof(d), SP_JSON_REQUIRED, NULL));
    cr_assert(sp_json_strcpy(o, "z", d, sizeof(d), 0, &present));
    cr_assert_not(present);
    cr_assert_not(sp_json_strcpy(o, "nul", d, sizeof(d), 0, NULL), "embedded NUL refused");
    cr_assert_str_eq(sp_json_str(o, "a"), "hello");
    cr_assert_null(sp_json_str(o, "n"));
    json_decref(o);
}
