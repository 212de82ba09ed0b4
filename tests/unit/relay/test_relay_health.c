/* Unit tests for the relay's input health (sp_relay_health.c): size from the SPS, AAC format,
 * 5 s windowed bitrates and frame rate, keyframe interval, late frames, null when not live. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "relay/sp_relay_int.h"

static const uint8_t sps_360p30[] = { 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f,
                                      0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
                                      0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96 };

static void feed(sp_relay_input_t *in, uint8_t type, uint32_t ts, const uint8_t *p, size_t n)
{
    sp_relay_input_media(in, type, ts, sp_rbuf_new(p, n));
}

Test(relay_health, measures_the_stream)
{
    sp_relay_t r;
    memset(&r, 0, sizeof(r));
    sp_relay_input_t *in = sp_relay_input_create(&r, NULL, true);
    json_t *none = sp_relay_health_json(in, 1000);
    cr_assert(json_is_null(none), "null before a publisher");
    json_decref(none);
    sp_relay_input_live(in, (sp_ingest_conn_t *)1);
    uint64_t t0 = in->st.connected_at_ms;

    /* AVC sequence header: FLV video header + avcC with the 640x360 SPS */
    uint8_t sh[5 + 8 + sizeof(sps_360p30)] = { 0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff, 0xe1, 0,
                                               sizeof(sps_360p30) };
    memcpy(sh + 13, sps_360p30, sizeof(sps_360p30));
    feed(in, 9, 0, sh, sizeof(sh));
    const uint8_t aac_sh[] = { 0xAF, 0, 0x11, 0x88 }; /* 48 kHz mono */
    feed(in, 8, 0, aac_sh, sizeof(aac_sh));

    sp_relay_health_tick(in, t0); /* opens the window */
    uint8_t key[1000] = { 0x17, 1 }, inter[500] = { 0x27, 1 }, aac[250] = { 0xAF, 1 };
    /* 6 s at 30 fps, keyframe every 3 s, audio every ~21 ms -> 47 per second */
    for (uint32_t f = 0; f < 180; f++) {
        uint32_t ts = f * 1000 / 30;
        if (f % 90 == 0)
            feed(in, 9, ts, key, sizeof(key));
        else
            feed(in, 9, ts, inter, sizeof(inter));
    }
    for (uint32_t a = 0; a < 6 * 47; a++)
        feed(in, 8, a * 1000 / 47, aac, sizeof(aac));
    feed(in, 8, 100, aac, sizeof(aac)); /* one late audio frame */
    sp_relay_health_tick(in, t0 + 4000);
    cr_assert_eq(in->st.have_window, false, "no value before 5 s");
    sp_relay_health_tick(in, t0 + 6000);

    json_t *h = sp_relay_health_json(in, t0 + 6000);
    json_t *v = json_object_get(h, "video"), *a = json_object_get(h, "audio");
    cr_assert_str_eq(json_string_value(json_object_get(v, "codec")), "h264");
    cr_assert_eq(json_integer_value(json_object_get(v, "width")), 640);
    cr_assert_eq(json_integer_value(json_object_get(v, "height")), 360);
    cr_assert_eq(json_integer_value(json_object_get(v, "profile")), 100);
    cr_assert_eq(json_integer_value(json_object_get(v, "keyframeIntervalMs")), 3000);
    double fps = json_real_value(json_object_get(v, "fps"));
    cr_assert(fps > 29.9 && fps < 30.1, "fps %f", fps);
    /* video bytes: header + 2 keyframes + 178 inter frames over 6 s */
    double vk = json_real_value(json_object_get(v, "bitrateKbps"));
    double want = (double)(sizeof(sh) + 2 * 1000 + 178 * 500) * 8 / 6000;
    cr_assert(vk > want - 0.2 && vk < want + 0.2, "video %f want %f", vk, want);
    cr_assert_str_eq(json_string_value(json_object_get(a, "codec")), "aac");
    cr_assert_eq(json_integer_value(json_object_get(a, "sampleRate")), 48000);
    cr_assert_eq(json_integer_value(json_object_get(a, "channels")), 1);
    cr_assert(json_real_value(json_object_get(a, "bitrateKbps")) > 90);
    cr_assert_eq(json_integer_value(json_object_get(h, "lateFrames")), 1);
    cr_assert_eq(json_integer_value(json_object_get(h, "uptimeMs")), 6000);
    cr_assert(json_is_null(json_object_get(h, "droppedFrames")));
    json_decref(h);

    /* disconnect: null again, and a new publisher starts from nothing */
    sp_relay_input_gone(in, "test");
    h = sp_relay_health_json(in, t0 + 7000);
    cr_assert(json_is_null(h));
    json_decref(h);
    sp_relay_input_live(in, (sp_ingest_conn_t *)1);
    feed(in, 9, 0, key, sizeof(key));
    h = sp_relay_health_json(in, in->st.connected_at_ms);
    v = json_object_get(h, "video");
    cr_assert(json_is_null(json_object_get(v, "width")));
    cr_assert(json_is_null(json_object_get(v, "keyframeIntervalMs")));
    cr_assert(json_is_null(json_object_get(h, "audio")));
    cr_assert(json_is_null(json_object_get(h, "bitrateKbps")));
    json_decref(h);
    in->publisher = NULL;
    sp_relay_input_delete(&r, in);
}
