#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_widget_config.h"

static char field[SP_WCFG_FIELD_CAP];
static const char *why;

/* apply(type, patch JSON text) over the defaults; *out kept in `last` */
static json_t *last;
static int apply(const char *type, const char *patch)
{
    json_error_t e;
    json_t *p = json_loads(patch, JSON_DECODE_ANY, &e);
    cr_assert_not_null(p, "bad test JSON: %s", patch);
    json_decref(last);
    last = NULL;
    int rc = sp_wcfg_apply(type, NULL, p, &last, field, sizeof(field), &why);
    json_decref(p);
    if (rc == 0)
        cr_assert_not_null(last);
    else
        cr_assert_null(last);
    return rc;
}

static void fini(void)
{
    json_decref(last);
    last = NULL;
}

TestSuite(widget_config, .fini = fini);

Test(widget_config, defaults_shape)
{
    json_t *a = sp_wcfg_defaults("alertbox"), *c = sp_wcfg_defaults("chat");
    cr_assert_not_null(a);
    cr_assert_not_null(c);
    cr_assert_null(sp_wcfg_defaults("obs"));
    cr_assert_null(sp_wcfg_defaults(NULL));
    json_t *types = json_object_get(a, "types");
    cr_assert_eq(json_object_size(types), 8);
    json_t *f = json_object_get(types, "follow");
    cr_assert_str_eq(json_string_value(json_object_get(f, "template")), "{name} just followed!");
    cr_assert_eq(json_integer_value(json_object_get(f, "duration_ms")), 5000);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(a, "priorities"),
                                                    "donation")), 50);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(a, "priorities"),
                                                    "follow")), 10);
    cr_assert_str_eq(json_string_value(json_object_get(a, "layout")), "above");
    cr_assert_eq(json_integer_value(json_object_get(c, "max_messages")), 10);
    cr_assert_eq(json_array_size(json_object_get(c, "bots")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(c, "background")), "transparent");
    /* the defaults validate against themselves */
    json_t *out = NULL;
    cr_assert_eq(sp_wcfg_apply("alertbox", NULL, a, &out, NULL, 0, NULL), 0);
    cr_assert(json_equal(out, a));
    json_decref(out);
    cr_assert_eq(sp_wcfg_apply("chat", NULL, c, &out, NULL, 0, NULL), 0);
    cr_assert(json_equal(out, c));
    json_decref(out);
    json_decref(a);
    json_decref(c);
}

Test(widget_config, partial_patch_merges)
{
    cr_assert_eq(apply("alertbox", "{\"types\":{\"cheer\":{\"duration_ms\":8000,"
                                   "\"template\":\"{name}: {amount}\"}},\"layout\":\"beside\","
                                   "\"filter\":{\"words\":[\"bad\",\"worse\"]}}"), 0);
    json_t *ch = json_object_get(json_object_get(last, "types"), "cheer");
    cr_assert_eq(json_integer_value(json_object_get(ch, "duration_ms")), 8000);
    cr_assert_str_eq(json_string_value(json_object_get(ch, "template")), "{name}: {amount}");
    cr_assert_eq(json_integer_value(json_object_get(ch, "volume")), 50); /* untouched */
    cr_assert_str_eq(json_string_value(json_object_get(last, "layout")), "beside");
    cr_assert_eq(json_array_size(json_object_get(json_object_get(last, "filter"), "words")), 2);
    cr_assert(json_is_true(json_object_get(json_object_get(last, "filter"), "links")));
    cr_assert_eq(apply("alertbox", "{}"), 0);
}

Test(widget_config, merges_over_base)
{
    json_t *base = NULL, *out = NULL, *p1 = json_pack("{s:i}", "gap_ms", 0),
           *p2 = json_pack("{s:i}", "font_size", 50);
    cr_assert_eq(sp_wcfg_apply("alertbox", NULL, p1, &base, NULL, 0, NULL), 0);
    cr_assert_eq(sp_wcfg_apply("alertbox", base, p2, &out, NULL, 0, NULL), 0);
    cr_assert_eq(json_integer_value(json_object_get(out, "gap_ms")), 0);
    cr_assert_eq(json_integer_value(json_object_get(out, "font_size")), 50);
    json_decref(base);
    json_decref(out);
    json_decref(p1);
    json_decref(p2);
}

static void bad(const char *type, const char *patch, const char *want_field)
{
    cr_assert_eq(apply(type, patch), SP_EINVAL, "accepted %s", patch);
    cr_assert_str_eq(field, want_field, "%s: field %s, want %s", patch, field, want_field);
    cr_assert_not_null(why);
}

Test(widget_config, refusals_name_the_field)
{
    bad("alertbox", "{\"types\":{\"follow\":{\"duration_ms\":999}}}", "types.follow.duration_ms");
    bad("alertbox", "{\"types\":{\"follow\":{\"duration_ms\":60001}}}",
        "types.follow.duration_ms");
    bad("alertbox", "{\"types\":{\"follow\":{\"duration_ms\":1500.5}}}",
        "types.follow.duration_ms");
    bad("alertbox", "{\"types\":{\"follow\":{\"duration_ms\":\"5000\"}}}",
        "types.follow.duration_ms");
    bad("alertbox", "{\"types\":{\"follow\":{\"template\":\"{nme} followed\"}}}",
        "types.follow.template");
    bad("alertbox", "{\"types\":{\"follow\":{\"template\":\"{name\"}}}", "types.follow.template");
    bad("alertbox", "{\"types\":{\"bogus\":{}}}", "types.bogus");
    bad("alertbox", "{\"types\":{\"raid\":{\"volume\":101}}}", "types.raid.volume");
    bad("alertbox", "{\"types\":{\"raid\":{\"animation_in\":\"spin\"}}}",
        "types.raid.animation_in");
    bad("alertbox", "{\"types\":{\"raid\":{\"image_url\":\"http://evil/x.png\"}}}",
        "types.raid.image_url");
    bad("alertbox", "{\"types\":{\"raid\":{\"image_url\":\"/uploads/../../etc/passwd\"}}}",
        "types.raid.image_url");
    bad("alertbox", "{\"types\":{\"raid\":{\"min_amount\":-1}}}", "types.raid.min_amount");
    bad("alertbox", "{\"types\":{\"raid\":{\"enabled\":1}}}", "types.raid.enabled");
    bad("alertbox", "{\"types\":5}", "types");
    bad("alertbox", "{\"text_color\":\"red\"}", "text_color");
    bad("alertbox", "{\"text_color\":\"#12345g\"}", "text_color");
    bad("alertbox", "{\"font\":\"<script>\"}", "font");
    bad("alertbox", "{\"font\":\"\"}", "font");
    bad("alertbox", "{\"layout\":\"below\"}", "layout");
    bad("alertbox", "{\"font_size\":201}", "font_size");
    bad("alertbox", "{\"priorities\":{\"follow\":1001}}", "priorities.follow");
    bad("alertbox", "{\"priorities\":{\"hug\":1}}", "priorities.hug");
    bad("alertbox", "{\"filter\":{\"words\":[\"\"]}}", "filter.words");
    bad("alertbox", "{\"filter\":{\"words\":\"bad\"}}", "filter.words");
    bad("alertbox", "{\"extra\":true}", "extra");
    bad("chat", "{\"max_messages\":0}", "max_messages");
    bad("chat", "{\"max_messages\":101}", "max_messages");
    bad("chat", "{\"lifetime_ms\":-1}", "lifetime_ms");
    bad("chat", "{\"platforms\":[\"myspace\"]}", "platforms");
    bad("chat", "{\"platforms\":[\"twitch\",\"twitch\"]}", "platforms");
    bad("chat", "{\"background\":\"#1234\"}", "background");
    bad("chat", "{\"font_size\":121}", "font_size");
    bad("chat", "{\"filter\":{\"links\":\"yes\"}}", "filter.links");
    bad("chat", "{\"layout\":\"above\"}", "layout"); /* alertbox-only field */
    bad("chat", "[]", "");
}

Test(widget_config, accepted_edges)
{
    cr_assert_eq(apply("alertbox", "{\"types\":{\"donation\":{\"duration_ms\":1000,"
                                   "\"volume\":0,\"min_amount\":1.5,\"image_url\":\"/uploads/"
                                   "u-1/0123456789abcdef0123456789abcdef0123456789abcdef012345678"
                                   "9abcdef.gif\"}},\"text_color\":\"#ABCdef\","
                                   "\"font\":\"Comic Sans MS, 'x'\"}"), 0);
    cr_assert_eq(apply("chat", "{\"platforms\":[\"twitch\",\"kick\"],\"background\":\"#00000080\","
                               "\"lifetime_ms\":0,\"bots\":[]}"), 0);
    cr_assert_eq(apply("chat", "{\"platforms\":[]}"), 0);
    json_t *w = json_array(), *p = NULL, *o = NULL;
    for (int i = 0; i < 101; i++)
        json_array_append_new(w, json_string("w"));
    p = json_pack("{s:{s:o}}", "filter", "words", w);
    cr_assert_eq(sp_wcfg_apply("chat", NULL, p, &o, field, sizeof(field), &why), SP_EINVAL);
    cr_assert_str_eq(field, "filter.words");
    json_array_remove(json_object_get(json_object_get(p, "filter"), "words"), 0);
    cr_assert_eq(sp_wcfg_apply("chat", NULL, p, &o, field, sizeof(field), &why), 0);
    json_decref(o);
    json_decref(p);
    cr_assert_eq(sp_wcfg_apply("obs", NULL, NULL, &last, field, sizeof(field), &why), SP_EINVAL);
}

Test(widget_config, load_keeps_valid_fields)
{
    json_t *stored = json_pack("{s:i, s:s, s:i}", "gap_ms", 250, "layout", "diagonal",
                               "removed_field", 1);
    json_t *c = sp_wcfg_load("alertbox", stored);
    cr_assert_eq(json_integer_value(json_object_get(c, "gap_ms")), 250);
    cr_assert_str_eq(json_string_value(json_object_get(c, "layout")), "above");
    cr_assert_null(json_object_get(c, "removed_field"));
    json_decref(c);
    c = sp_wcfg_load("chat", NULL);
    cr_assert_eq(json_integer_value(json_object_get(c, "max_messages")), 10);
    json_decref(c);
    cr_assert_null(sp_wcfg_load("nope", stored));
    json_decref(stored);
}

static const char *mask(const char *in, bool links, const char *words_json)
{
    static char out[256];
    json_t *w = json_loads(words_json, 0, NULL);
    size_t n = sp_wcfg_mask_text(in, strlen(in), links, w, out, sizeof(out));
    cr_assert_eq(n, strlen(out));
    json_decref(w);
    return out;
}

Test(widget_config, mask_links_and_words)
{
    cr_assert_str_eq(mask("hi see https://x.y/z now", true, "[]"), "hi see *** now");
    cr_assert_str_eq(mask("go to www.spam.biz!", true, "[]"), "go to ***");
    cr_assert_str_eq(mask("visit evil.com/x, or Twitch.TV.", true, "[]"),
                     "visit *** or ***");
    cr_assert_str_eq(mask("visit evil.com", false, "[]"), "visit evil.com");
    cr_assert_str_eq(mask("well... ok. 4.50 dollars", true, "[]"), "well... ok. 4.50 dollars");
    cr_assert_str_eq(mask("you are a DARN fool", false, "[\"darn\",\"fool\"]"),
                     "you are a *** ***");
    cr_assert_str_eq(mask("  spaces\tkept  ", true, "[\"x\"]"), "  spaces\tkept  ");
    char out[8];
    size_t n = sp_wcfg_mask_text("abc \xc3\xa9\xc3\xa9\xc3\xa9", 10, false, NULL, out, sizeof(out));
    cr_assert_eq(n, 6); /* "abc " + one é: the second would be cut */
    cr_assert_str_eq(out, "abc \xc3\xa9");
}
