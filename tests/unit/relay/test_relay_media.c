/* Unit tests for the relay's media cache: sequence headers, metadata and GOP
 * cache for legacy and Enhanced RTMP video, and the per-input stats. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "relay/sp_amf0.h"
#include "relay/sp_flv.h"
#include "relay/sp_relay_int.h"

static sp_rbuf_t *bytes(const uint8_t *p, size_t n)
{
    return sp_rbuf_new(p, n);
}

Test(relay_media, legacy_avc_aac_gop_cache)
{
    sp_relay_t r;
    memset(&r, 0, sizeof(r));
    sp_relay_input_t *in = sp_relay_input_create(&r, NULL, true);
    sp_relay_input_live(in, (sp_ingest_conn_t *)1);
    const uint8_t avc_sh[] = { 0x17, 0, 0, 0, 0, 1, 0x42 };
    const uint8_t aac_sh[] = { 0xAF, 0, 0x12, 0x10 };
    const uint8_t key[] = { 0x17, 1, 0, 0, 0, 9, 9 };
    const uint8_t inter[] = { 0x27, 1, 0, 0, 0, 8 };
    const uint8_t aac[] = { 0xAF, 1, 0x21 };
    sp_relay_input_media(in, 9, 0, bytes(avc_sh, sizeof(avc_sh)));
    sp_relay_input_media(in, 8, 0, bytes(aac_sh, sizeof(aac_sh)));
    cr_assert_not_null(in->vseq.data);
    cr_assert_not_null(in->aseq.data);
    cr_assert_not(in->gop_valid, "no keyframe yet");
    sp_relay_input_media(in, 9, 0, bytes(key, sizeof(key)));
    sp_relay_input_media(in, 8, 10, bytes(aac, sizeof(aac)));
    sp_relay_input_media(in, 9, 33, bytes(inter, sizeof(inter)));
    cr_assert(in->gop_valid);
    cr_assert_eq(in->gop.n, 3);
    cr_assert(sp_tagq_at(&in->gop, 0)->flags & SP_TAG_KEY, "GOP starts on the keyframe");
    /* the next keyframe restarts the GOP */
    sp_relay_input_media(in, 9, 1000, bytes(key, sizeof(key)));
    cr_assert_eq(in->gop.n, 1);
    cr_assert_eq(in->st.keyframes, 2);
    cr_assert_eq(in->st.key_interval_ms, 1000);
    cr_assert_str_eq(in->st.vcodec, "h264");
    cr_assert_str_eq(in->st.acodec, "aac");
    cr_assert_eq(in->st.video_frames, 3);
    /* a sequence header replaces the cached one; refcounts stay balanced (LSan) */
    sp_relay_input_media(in, 9, 1001, bytes(avc_sh, sizeof(avc_sh)));
    sp_relay_input_gone(in, "client_disconnect");
    cr_assert_null(in->vseq.data);
    cr_assert_eq(in->gop.n, 0);
    cr_assert_eq(in->state, 2);
    sp_relay_input_delete(&r, in);
}

Test(relay_media, enhanced_rtmp_hevc_av1)
{
    sp_relay_t r;
    memset(&r, 0, sizeof(r));
    sp_relay_input_t *in = sp_relay_input_create(&r, NULL, true);
    sp_relay_input_live(in, (sp_ingest_conn_t *)1);
    const uint8_t hevc_sh[] = { 0x90, 'h', 'v', 'c', '1', 1, 2, 3 };
    const uint8_t hevc_key[] = { 0x91, 'h', 'v', 'c', '1', 0, 0, 0, 7 };
    const uint8_t hevc_inter[] = { 0xA3, 'h', 'v', 'c', '1', 7 };
    sp_relay_input_media(in, 9, 0, bytes(hevc_sh, sizeof(hevc_sh)));
    cr_assert_not_null(in->vseq.data);
    cr_assert_eq(in->vseq.data->data[0], 0x90);
    sp_relay_input_media(in, 9, 0, bytes(hevc_key, sizeof(hevc_key)));
    sp_relay_input_media(in, 9, 40, bytes(hevc_inter, sizeof(hevc_inter)));
    cr_assert(in->gop_valid);
    cr_assert_eq(in->gop.n, 2);
    cr_assert_str_eq(in->st.vcodec, "hevc");
    const uint8_t av1_sh[] = { 0x80, 'a', 'v', '0', '1', 0x81 };
    sp_relay_input_media(in, 9, 80, bytes(av1_sh, sizeof(av1_sh)));
    cr_assert_str_eq(in->st.vcodec, "av1");
    cr_assert_eq(in->vseq.data->data[1], 'a');
    sp_relay_input_gone(in, "client_disconnect");
    sp_relay_input_delete(&r, in);
}

Test(relay_media, metadata_kept_without_setdataframe_and_stats)
{
    sp_relay_t r;
    memset(&r, 0, sizeof(r));
    sp_relay_input_t *in = sp_relay_input_create(&r, NULL, true);
    sp_relay_input_live(in, (sp_ingest_conn_t *)1);
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "onMetaData");
    sp_amf0_put_ecma_begin(&b, 3);
    sp_amf0_put_key(&b, "width");
    sp_amf0_put_number(&b, 1920);
    sp_amf0_put_key(&b, "height");
    sp_amf0_put_number(&b, 1080);
    sp_amf0_put_key(&b, "framerate");
    sp_amf0_put_number(&b, 30);
    sp_amf0_put_object_end(&b);
    sp_relay_input_metadata(in, (uint8_t *)b.p, b.len);
    cr_assert_eq(in->st.width, 1920);
    cr_assert_eq(in->st.height, 1080);
    /* forwarded as @setDataFrame + onMetaData */
    sp_amf0_val_t **v;
    size_t n;
    cr_assert_eq(sp_amf0_decode_all(in->meta_tag.data->data, in->meta_tag.data->len, NULL, &v, &n,
                                    8), 0);
    cr_assert_eq(n, 3);
    sp_str_t s;
    cr_assert(sp_amf0_as_str(v[0], &s) && sp_str_eq_cstr(s, "@setDataFrame"));
    cr_assert(sp_amf0_as_str(v[1], &s) && sp_str_eq_cstr(s, "onMetaData"));
    sp_amf0_free_all(v, n);
    sp_buf_cleanup(&b);
    sp_relay_input_gone(in, "client_disconnect");
    sp_relay_input_delete(&r, in);
}

Test(relay_media, key_lookup_is_exact)
{
    sp_relay_t r;
    memset(&r, 0, sizeof(r));
    sp_relay_input_t *a = sp_relay_input_create(&r, NULL, true);
    sp_relay_input_t *b = sp_relay_input_create(&r, NULL, true);
    cr_assert_eq(strlen(a->key), 65);
    cr_assert_eq(sp_relay_find_by_key(&r, a->key, strlen(a->key)), a);
    cr_assert_eq(sp_relay_find_by_key(&r, b->key, strlen(b->key)), b);
    cr_assert_null(sp_relay_find_by_key(&r, a->key, strlen(a->key) - 1), "prefix is not a match");
    cr_assert_null(sp_relay_find_by_key(&r, "", 0));
    cr_assert_eq(sp_relay_find_input(&r, b->uid), b);
    sp_relay_input_delete(&r, a);
    sp_relay_input_delete(&r, b);
    cr_assert_eq(r.n_inputs, 0);
}

/* The relay's webhook body is what the control plane's Cloudflare webhook parser accepts. */
#include "media/sp_cf_webhook.h"
#include "relay/sp_relay_api.h"

Test(relay_webhook, body_parses_as_cloudflare_notification)
{
    const char *uid = "0123456789abcdef0123456789abcdef";
    const char *events[] = { "live_input.connected", "live_input.disconnected" };
    const sp_cf_event_type_t types[] = { SP_CF_EVT_CONNECTED, SP_CF_EVT_DISCONNECTED };
    for (int i = 0; i < 2; i++) {
        json_t *b = sp_relay_webhook_body(uid, events[i], 1763720000123, NULL, NULL, "h264", "aac");
        char *s = json_dumps(b, JSON_COMPACT);
        sp_cf_webhook_event_t ev;
        cr_assert_eq(sp_cf_webhook_parse((const uint8_t *)s, strlen(s), &ev), 0, "%s", s);
        cr_assert_eq(ev.type, types[i]);
        cr_assert_str_eq(ev.input_id, uid);
        cr_assert_eq(ev.ts, 1763720000);
        cr_assert_eq(ev.updated_ms, 1763720000123);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "data"),
                                                           "notification_name")),
                         "Stream Live Input");
        free(s);
        json_decref(b);
    }
    json_t *e = sp_relay_webhook_body(uid, "live_input.errored", 1763720000123,
                                      "ERR_UNSUPPORTED_VIDEO_CODEC", "bad codec", "vp6", "mp3");
    char *s = json_dumps(e, JSON_COMPACT);
    sp_cf_webhook_event_t ev;
    cr_assert_eq(sp_cf_webhook_parse((const uint8_t *)s, strlen(s), &ev), 0);
    cr_assert_eq(ev.type, SP_CF_EVT_ERRORED);
    cr_assert_str_eq(ev.error_code, "ERR_UNSUPPORTED_VIDEO_CODEC");
    free(s);
    json_decref(e);
}
