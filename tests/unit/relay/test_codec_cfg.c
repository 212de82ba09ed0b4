/* Unit tests for the codec configuration parsers of the input health (sp_codec_cfg):
 * SPS from real x264 streams (cropping, VUI frame rate, profiles), avcC, AAC ASC, and
 * malformed inputs. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_err.h"
#include "relay/sp_codec_cfg.h"

/* SPS NAL units written by ffmpeg/libx264 (testsrc, -frames:v 1, -f h264) */
static const uint8_t sps_360p30_high[] = { 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f,
                                           0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
                                           0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96 };
static const uint8_t sps_1080p60_high[] = { 0x67, 0x64, 0x00, 0x2a, 0xac, 0xd9, 0x40, 0x78, 0x02,
                                            0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04,
                                            0x00, 0x00, 0x03, 0x01, 0xe0, 0x3c, 0x60, 0xc6, 0x58 };
static const uint8_t sps_480p25_main[] = { 0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x6c, 0x1e,
                                           0xf3, 0x78, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00,
                                           0x80, 0x00, 0x00, 0x19, 0x07, 0x8b, 0x16, 0xcb };
static const uint8_t sps_240p30_base[] = { 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb,
                                           0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
                                           0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80 };

Test(codec_cfg, sps_high_360p30)
{
    sp_h264_sps_t s;
    cr_assert_eq(sp_h264_sps_parse(sps_360p30_high, sizeof(sps_360p30_high), &s), 0);
    cr_assert_eq(s.profile_idc, 100);
    cr_assert_eq(s.level_idc, 30);
    cr_assert_eq(s.chroma_format_idc, 1);
    cr_assert_eq(s.width, 640);
    cr_assert_eq(s.height, 360); /* 23 MB rows = 368, cropped by 8 */
    cr_assert_float_eq(s.fps, 30.0, 1e-9);
}

Test(codec_cfg, sps_high_1080p60_cropped)
{
    sp_h264_sps_t s;
    cr_assert_eq(sp_h264_sps_parse(sps_1080p60_high, sizeof(sps_1080p60_high), &s), 0);
    cr_assert_eq(s.level_idc, 42);
    cr_assert_eq(s.width, 1920);
    cr_assert_eq(s.height, 1080);
    cr_assert_float_eq(s.fps, 60.0, 1e-9);
}

Test(codec_cfg, sps_main_and_baseline)
{
    sp_h264_sps_t s;
    cr_assert_eq(sp_h264_sps_parse(sps_480p25_main, sizeof(sps_480p25_main), &s), 0);
    cr_assert_eq(s.profile_idc, 77);
    cr_assert_eq(s.width, 854);
    cr_assert_eq(s.height, 480);
    cr_assert_float_eq(s.fps, 25.0, 1e-9);
    cr_assert_eq(sp_h264_sps_parse(sps_240p30_base, sizeof(sps_240p30_base), &s), 0);
    cr_assert_eq(s.profile_idc, 66);
    cr_assert_eq(s.width, 320);
    cr_assert_eq(s.height, 240);
    cr_assert_float_eq(s.fps, 30.0, 1e-9);
}

Test(codec_cfg, avcc_record)
{
    uint8_t rec[8 + sizeof(sps_1080p60_high) + 3];
    rec[0] = 1;
    rec[1] = 0x64;
    rec[2] = 0;
    rec[3] = 0x2a;
    rec[4] = 0xff;
    rec[5] = 0xe1;
    rec[6] = 0;
    rec[7] = sizeof(sps_1080p60_high);
    memcpy(rec + 8, sps_1080p60_high, sizeof(sps_1080p60_high));
    rec[sizeof(rec) - 3] = 1; /* numPPS, then a (short) PPS: ignored */
    rec[sizeof(rec) - 2] = 0;
    rec[sizeof(rec) - 1] = 0;
    sp_h264_sps_t s;
    cr_assert_eq(sp_h264_avcc_parse(rec, sizeof(rec), &s), 0);
    cr_assert_eq(s.width, 1920);
    cr_assert_eq(s.height, 1080);
    /* an SPS length past the end, no SPS, wrong version */
    rec[7] = sizeof(sps_1080p60_high) + 4;
    cr_assert_eq(sp_h264_avcc_parse(rec, 8 + sizeof(sps_1080p60_high), &s), SP_EPROTO);
    rec[7] = sizeof(sps_1080p60_high);
    rec[5] = 0xe0;
    cr_assert_eq(sp_h264_avcc_parse(rec, sizeof(rec), &s), SP_EPROTO);
    rec[5] = 0xe1;
    rec[0] = 0;
    cr_assert_eq(sp_h264_avcc_parse(rec, sizeof(rec), &s), SP_EPROTO);
    cr_assert_eq(sp_h264_avcc_parse(NULL, 0, &s), SP_EPROTO);
}

Test(codec_cfg, sps_malformed)
{
    sp_h264_sps_t s;
    /* not an SPS NAL (PPS type 8) */
    uint8_t pps[sizeof(sps_360p30_high)];
    memcpy(pps, sps_360p30_high, sizeof(pps));
    pps[0] = 0x68;
    cr_assert_eq(sp_h264_sps_parse(pps, sizeof(pps), &s), SP_EPROTO);
    /* every truncation before the picture size is refused, none crashes */
    for (size_t n = 0; n < 8; n++)
        cr_assert_eq(sp_h264_sps_parse(sps_360p30_high, n, &s), SP_EPROTO, "len %zu", n);
    /* a truncated VUI keeps the size but not a frame rate */
    cr_assert_eq(sp_h264_sps_parse(sps_360p30_high, 12, &s), 0);
    cr_assert_eq(s.width, 640);
    cr_assert_float_eq(s.fps, 0.0, 1e-9);
    /* all ones: chroma_format_idc / ue values out of range */
    uint8_t ones[32];
    memset(ones, 0xff, sizeof(ones));
    ones[0] = 0x67;
    ones[1] = 100;
    cr_assert_eq(sp_h264_sps_parse(ones, sizeof(ones), &s), SP_EPROTO);
    /* all zeros after the header: ue with more than 31 leading zeros */
    uint8_t zeros[40] = { 0x67, 100, 0, 30 };
    cr_assert_eq(sp_h264_sps_parse(zeros, sizeof(zeros), &s), SP_EPROTO);
    /* found by fuzz_codec_cfg: a field-coded picture 2 x 1024 MB rows (32768 px) high */
    const uint8_t too_tall[] = { 0x67, 0x42, 0x31, 0xc0, 0x0d, 0xd9, 0x2c, 0x01, 0x41,
                                 0xa0, 0x05, 0x00, 0x70, 0x11, 0x00, 0x00, 0x07, 0x00,
                                 0x01, 0x00, 0x0f, 0xc0, 0xf1, 0x42, 0xa4, 0xd9, 0x80 };
    cr_assert_eq(sp_h264_sps_parse(too_tall, sizeof(too_tall), &s), SP_EPROTO);
    /* too large */
    static uint8_t big[2048] = { 0x67 };
    cr_assert_eq(sp_h264_sps_parse(big, sizeof(big), &s), SP_EPROTO);
}

Test(codec_cfg, aac_asc)
{
    sp_aac_asc_t a;
    const uint8_t lc_44k_stereo[] = { 0x12, 0x10 };
    cr_assert_eq(sp_aac_asc_parse(lc_44k_stereo, 2, &a), 0);
    cr_assert_eq(a.object_type, 2);
    cr_assert_eq(a.sample_rate, 44100);
    cr_assert_eq(a.channels, 2);
    const uint8_t lc_48k_mono[] = { 0x11, 0x88 };
    cr_assert_eq(sp_aac_asc_parse(lc_48k_mono, 2, &a), 0);
    cr_assert_eq(a.sample_rate, 48000);
    cr_assert_eq(a.channels, 1);
    /* explicit rate (index 15): 22050 Hz, 5.1 */
    const uint8_t explicit_rate[] = { 0x17, 0x80, 0x2b, 0x11, 0x30 };
    cr_assert_eq(sp_aac_asc_parse(explicit_rate, sizeof(explicit_rate), &a), 0);
    cr_assert_eq(a.sample_rate, 22050);
    cr_assert_eq(a.channels, 6);
    const uint8_t bad_index[] = { 0x16, 0x90 }; /* index 13: reserved */
    cr_assert_eq(sp_aac_asc_parse(bad_index, 2, &a), SP_EPROTO);
    const uint8_t aot0[] = { 0x02, 0x10 };
    cr_assert_eq(sp_aac_asc_parse(aot0, 2, &a), SP_EPROTO);
    cr_assert_eq(sp_aac_asc_parse(lc_44k_stereo, 1, &a), SP_EPROTO);
}
