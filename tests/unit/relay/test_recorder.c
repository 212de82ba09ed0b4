/* sp_recorder: the pure helpers (FLV tag header, mode names, user directory). The file
 * writing, pause/resume and failures are covered by tests/media/recordings.test.mjs. */
#include <criterion/criterion.h>
#include <string.h>

#include "relay/sp_recorder.h"

Test(recorder, flv_tag_header)
{
    uint8_t h[11];
    sp_rec_flv_tag_header(h, 9, 0x123456, 0x89abcdef);
    const uint8_t want[11] = { 9, 0x12, 0x34, 0x56, 0xab, 0xcd, 0xef, 0x89, 0, 0, 0 };
    cr_assert_arr_eq(h, want, 11, "timestamp: lower 24 bits, then the extension byte");
}

Test(recorder, modes)
{
    cr_assert_eq(sp_rec_mode_parse("off"), 0);
    cr_assert_eq(sp_rec_mode_parse("automatic"), 1);
    cr_assert_eq(sp_rec_mode_parse("Automatic"), -1);
    cr_assert_eq(sp_rec_mode_parse(NULL), -1);
    cr_assert_str_eq(sp_rec_mode_name(1), "automatic");
    cr_assert_str_eq(sp_rec_mode_name(0), "off");
}

Test(recorder, user_dir)
{
    json_t *m = json_pack("{s:s}", "user_id", "0b7c-4d_e");
    cr_assert_str_eq(sp_rec_user_dir(m), "0b7c-4d_e");
    json_decref(m);
    const char *bad[] = { "", "../x", "a/b", "a b", "." };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = json_pack("{s:s}", "user_id", bad[i]);
        cr_assert_str_eq(sp_rec_user_dir(m), "_", "%s", bad[i]);
        json_decref(m);
    }
    m = json_pack("{s:i}", "user_id", 5);
    cr_assert_str_eq(sp_rec_user_dir(m), "_");
    json_decref(m);
    cr_assert_str_eq(sp_rec_user_dir(NULL), "_");
}
