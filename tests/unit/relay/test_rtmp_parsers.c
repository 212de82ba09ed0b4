/* Unit tests for the relay's pure parsers: handshake, chunk stream, AMF0, FLV. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "relay/sp_amf0.h"
#include "core/sp_err.h"
#include "relay/sp_flv.h"
#include "relay/sp_rtmp_chunk.h"
#include "relay/sp_rtmp_handshake.h"

/* ---- handshake ---- */
Test(rtmp_hs, server_and_client_complete)
{
    uint8_t r1[1528], r2[1528];
    memset(r1, 0xAA, sizeof(r1));
    memset(r2, 0x55, sizeof(r2));
    sp_rtmp_hs_t *srv = sp_malloc(sizeof(*srv)), *cli = sp_malloc(sizeof(*cli));
    sp_rtmp_hs_server_init(srv, r1);
    sp_rtmp_hs_client_init(cli, r2);
    cr_assert_eq(cli->out_len, 1537);
    cr_assert_eq(cli->out[0], 3);
    /* deliver C0+C1 one byte at a time */
    for (size_t i = 0; i < cli->out_len; i++)
        cr_assert_eq(sp_rtmp_hs_feed(srv, cli->out + i, 1), 1);
    cli->out_len = 0;
    cr_assert_eq(srv->out_len, 3073);
    cr_assert_eq(srv->out[0], 3);
    cr_assert_eq(memcmp(srv->out + 1 + 8, r1, 1528), 0, "S1 random");
    cr_assert_eq(srv->out[1 + 4], 0, "S1 version 0 (no digest)");
    cr_assert_eq(memcmp(srv->out + 1 + 1536 + 8, r2, 1528), 0, "S2 echoes C1");
    cr_assert_eq(sp_rtmp_hs_feed(cli, srv->out, srv->out_len), 3073);
    cr_assert(cli->done);
    cr_assert_eq(cli->out_len, 1536);
    cr_assert_eq(memcmp(cli->out, srv->out + 1, 1536), 0, "C2 echoes S1");
    srv->out_len = 0;
    /* C2 plus 5 bytes of chunk stream: only 1536 consumed */
    uint8_t buf[1541];
    memcpy(buf, cli->out, 1536);
    memset(buf + 1536, 7, 5);
    cr_assert_eq(sp_rtmp_hs_feed(srv, buf, sizeof(buf)), 1536);
    cr_assert(srv->done);
    sp_free(srv);
    sp_free(cli);
}

Test(rtmp_hs, wrong_version_rejected)
{
    sp_rtmp_hs_t hs;
    sp_rtmp_hs_server_init(&hs, NULL);
    uint8_t b[4] = { 'G', 'E', 'T', ' ' };
    cr_assert_eq(sp_rtmp_hs_feed(&hs, b, 4), SP_EPROTO);
}

/* ---- chunk stream ---- */
static int feed_all(sp_rtmp_reader_t *r, const uint8_t *p, size_t len, sp_rtmp_msg_t *msgs,
                    size_t max, size_t *n)
{
    size_t pos = 0;
    *n = 0;
    while (pos < len) {
        bool have;
        int rc = sp_rtmp_reader_feed(r, p + pos, len - pos, &msgs[*n], &have);
        if (rc < 0)
            return rc;
        pos += (size_t)rc;
        if (have && *n < max)
            (*n)++;
    }
    return 0;
}

Test(rtmp_chunk, roundtrip_multi_chunk_and_interleave)
{
    sp_buf_t out;
    sp_buf_init(&out, 0);
    uint8_t big[1000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    cr_assert_eq(sp_rtmp_write_msg(&out, 128, 6, 9, 1234, 1, big, sizeof(big)), 0);
    cr_assert_eq(sp_rtmp_write_msg(&out, 128, 4, 8, 0x1000000, 1, big, 10), 0); /* ext ts */
    sp_rtmp_reader_t r;
    sp_rtmp_reader_init(&r, 0, 0);
    sp_rtmp_msg_t m[4];
    size_t n;
    /* byte-by-byte must be EAGAIN until whole chunks arrive: feed with growing windows */
    size_t pos = 0, got = 0;
    for (size_t end = 1; end <= out.len && got < 2; end++) {
        bool have;
        int rc = sp_rtmp_reader_feed(&r, (uint8_t *)out.p + pos, end - pos, &m[got], &have);
        if (rc == SP_EAGAIN)
            continue;
        cr_assert_gt(rc, 0);
        pos += (size_t)rc;
        if (have)
            got++;
    }
    cr_assert_eq(got, 2);
    cr_assert_eq(m[0].type, 9);
    cr_assert_eq(m[0].timestamp, 1234);
    cr_assert_eq(m[0].stream_id, 1);
    cr_assert_eq(m[0].payload->len, 1000);
    cr_assert_eq(memcmp(m[0].payload->data, big, 1000), 0);
    cr_assert_eq(m[1].timestamp, 0x1000000);
    cr_assert_eq(m[1].payload->len, 10);
    sp_rbuf_unref(m[0].payload);
    sp_rbuf_unref(m[1].payload);
    (void)n;
    sp_rtmp_reader_cleanup(&r);
    sp_buf_cleanup(&out);
}

Test(rtmp_chunk, fmt1_fmt2_fmt3_deltas)
{
    /* fmt0 ts=100 len=2 type 8 msid 1, then fmt1 delta 20 len 3, then fmt2 delta 5, fmt3 */
    uint8_t s[] = {
        0x04, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, 'a', 'b',
        0x44, 0, 0, 20, 0, 0, 3, 8, 'c', 'd', 'e',
        0x84, 0, 0, 5, 'f', 'g', 'h',
        0xC4, 'i', 'j', 'k',
    };
    sp_rtmp_reader_t r;
    sp_rtmp_reader_init(&r, 0, 0);
    sp_rtmp_msg_t m[4];
    size_t n;
    cr_assert_eq(feed_all(&r, s, sizeof(s), m, 4, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(m[0].timestamp, 100);
    cr_assert_eq(m[1].timestamp, 120);
    cr_assert_eq(m[2].timestamp, 125);
    cr_assert_eq(m[3].timestamp, 130);
    cr_assert_eq(m[3].payload->len, 3);
    cr_assert_eq(memcmp(m[3].payload->data, "ijk", 3), 0);
    for (size_t i = 0; i < n; i++)
        sp_rbuf_unref(m[i].payload);
    sp_rtmp_reader_cleanup(&r);
}

Test(rtmp_chunk, set_chunk_size_applied_and_capped)
{
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_rtmp_write_u32_ctrl(&out, SP_RTMP_MSG_SET_CHUNK_SIZE, 4096);
    uint8_t big[3000];
    memset(big, 1, sizeof(big));
    sp_rtmp_write_msg(&out, 4096, 6, 9, 0, 1, big, sizeof(big));
    sp_rtmp_reader_t r;
    sp_rtmp_reader_init(&r, 0, 0);
    sp_rtmp_msg_t m[4];
    size_t n;
    cr_assert_eq(feed_all(&r, (uint8_t *)out.p, out.len, m, 4, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(r.chunk_size, 4096);
    cr_assert_eq(m[1].payload->len, 3000);
    sp_rbuf_unref(m[0].payload);
    sp_rbuf_unref(m[1].payload);
    sp_buf_reset(&out);
    sp_rtmp_write_u32_ctrl(&out, SP_RTMP_MSG_SET_CHUNK_SIZE, 2147483647u);
    cr_assert_eq(feed_all(&r, (uint8_t *)out.p, out.len, m, 4, &n), SP_ETOOBIG);
    cr_assert_eq(r.chunk_size, 4096, "refused value not applied");
    sp_rtmp_reader_cleanup(&r);
    sp_buf_cleanup(&out);
}

Test(rtmp_chunk, caps_message_length_and_csids)
{
    sp_rtmp_reader_t r;
    sp_rtmp_reader_init(&r, 1000, 3);
    uint8_t huge[] = { 0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0 };
    sp_rtmp_msg_t m;
    bool have;
    cr_assert_eq(sp_rtmp_reader_feed(&r, huge, sizeof(huge), &m, &have), SP_ETOOBIG);
    /* 3 chunk streams each with an open message, the 4th is refused */
    for (uint8_t cs = 3; cs < 6; cs++) {
        uint8_t c[12 + 128] = { cs, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0 };
        cr_assert_eq(sp_rtmp_reader_feed(&r, c, sizeof(c), &m, &have), (int)sizeof(c));
        cr_assert_not(have);
    }
    uint8_t c4[] = { 7, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 'x' };
    cr_assert_eq(sp_rtmp_reader_feed(&r, c4, sizeof(c4), &m, &have), SP_ETOOBIG);
    /* fmt 3 without a previous header is a protocol error */
    uint8_t f3[] = { 0xC9, 'x' };
    cr_assert_eq(sp_rtmp_reader_feed(&r, f3, sizeof(f3), &m, &have), SP_EPROTO);
    sp_rtmp_reader_cleanup(&r);
}

Test(rtmp_chunk, abort_discards_partial)
{
    sp_rtmp_reader_t r;
    sp_rtmp_reader_init(&r, 0, 0);
    sp_rtmp_msg_t m;
    bool have;
    uint8_t part[] = { 0x05, 0, 0, 0, 0, 0x01, 0, 9, 1, 0, 0, 0 };
    uint8_t chunk[128 + sizeof(part)];
    memcpy(chunk, part, sizeof(part));
    memset(chunk + sizeof(part), 'z', 128);
    cr_assert_eq(sp_rtmp_reader_feed(&r, chunk, sizeof(chunk), &m, &have), (int)sizeof(chunk));
    cr_assert_not(have);
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_rtmp_write_u32_ctrl(&out, SP_RTMP_MSG_ABORT, 5);
    cr_assert_gt(sp_rtmp_reader_feed(&r, (uint8_t *)out.p, out.len, &m, &have), 0);
    cr_assert(have);
    sp_rbuf_unref(m.payload);
    /* a fresh fmt 0 message on csid 5 is accepted again */
    uint8_t fresh[] = { 0x05, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 'q' };
    cr_assert_eq(sp_rtmp_reader_feed(&r, fresh, sizeof(fresh), &m, &have), (int)sizeof(fresh));
    cr_assert(have);
    cr_assert_eq(m.payload->data[0], 'q');
    sp_rbuf_unref(m.payload);
    sp_buf_cleanup(&out);
    sp_rtmp_reader_cleanup(&r);
}

/* ---- AMF0 ---- */
Test(amf0, connect_command_roundtrip)
{
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "connect");
    sp_amf0_put_number(&b, 1);
    sp_amf0_put_object_begin(&b);
    sp_amf0_put_key(&b, "app");
    sp_amf0_put_cstr(&b, "live");
    sp_amf0_put_key(&b, "fpad");
    sp_amf0_put_bool(&b, false);
    sp_amf0_put_object_end(&b);
    sp_amf0_put_null(&b);
    sp_amf0_val_t **v;
    size_t n;
    cr_assert_eq(sp_amf0_decode_all((uint8_t *)b.p, b.len, NULL, &v, &n, 16), 0);
    cr_assert_eq(n, 4);
    sp_str_t s;
    cr_assert(sp_amf0_as_str(v[0], &s) && sp_str_eq_cstr(s, "connect"));
    double d;
    cr_assert(sp_amf0_as_num(v[1], &d) && d == 1.0);
    cr_assert(sp_amf0_as_str(sp_amf0_get(v[2], "app"), &s) && sp_str_eq_cstr(s, "live"));
    cr_assert_eq(sp_amf0_get(v[2], "fpad")->type, SP_AMF0_BOOLEAN);
    cr_assert_eq(v[3]->type, SP_AMF0_NULL);
    /* re-encoding gives the same bytes */
    sp_buf_t b2;
    sp_buf_init(&b2, 0);
    for (size_t i = 0; i < n; i++)
        sp_amf0_put_value(&b2, v[i]);
    cr_assert_eq(b2.len, b.len);
    cr_assert_eq(memcmp(b2.p, b.p, b.len), 0);
    sp_amf0_free_all(v, n);
    sp_buf_cleanup(&b);
    sp_buf_cleanup(&b2);
}

Test(amf0, ecma_strict_long_string)
{
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_ecma_begin(&b, 2);
    sp_amf0_put_key(&b, "width");
    sp_amf0_put_number(&b, 640);
    sp_amf0_put_key(&b, "list");
    uint8_t sa[] = { 0x0A, 0, 0, 0, 2, 0x05, 0x06 };
    sp_buf_append(&b, sa, sizeof(sa));
    sp_amf0_put_object_end(&b);
    char *ls = sp_malloc(70000);
    memset(ls, 'x', 70000);
    sp_amf0_put_string(&b, ls, 70000);
    sp_free(ls);
    cr_assert_eq(((uint8_t *)b.p)[b.len - 70000 - 5], SP_AMF0_LONG_STRING);
    sp_amf0_val_t *v;
    int rc = sp_amf0_decode((uint8_t *)b.p, b.len, NULL, &v);
    cr_assert_gt(rc, 0);
    double w;
    cr_assert(sp_amf0_as_num(sp_amf0_get(v, "width"), &w) && w == 640);
    const sp_amf0_val_t *l = sp_amf0_get(v, "list");
    cr_assert_eq(l->type, SP_AMF0_STRICT_ARRAY);
    cr_assert_eq(l->n, 2);
    sp_amf0_free(v);
    /* the long string exceeds the default 65535 cap */
    sp_amf0_val_t *s;
    cr_assert_eq(sp_amf0_decode((uint8_t *)b.p + rc, b.len - rc, NULL, &s), SP_ETOOBIG);
    sp_amf0_limits_t lim = { .max_string = 100000 };
    cr_assert_eq(sp_amf0_decode((uint8_t *)b.p + rc, b.len - rc, &lim, &s), 70005);
    cr_assert_eq(s->str.len, 70000);
    sp_amf0_free(s);
    sp_buf_cleanup(&b);
}

Test(amf0, depth_elements_truncation_limits)
{
    uint8_t deep[200];
    size_t k = 0;
    for (int i = 0; i < 40; i++) {
        deep[k++] = 0x03; /* object */
        deep[k++] = 0;
        deep[k++] = 1;
        deep[k++] = 'a';
    }
    deep[k++] = 0x05;
    sp_amf0_val_t *v;
    cr_assert_eq(sp_amf0_decode(deep, k, NULL, &v), SP_ETOOBIG);
    uint8_t many[5 + 2000] = { 0x0A, 0, 0, 0x03, 0xE8 }; /* strict array of 1000 */
    memset(many + 5, 0x05, 1000);
    sp_amf0_limits_t lim = { .max_elems = 999 };
    cr_assert_eq(sp_amf0_decode(many, 1005, &lim, &v), SP_ETOOBIG);
    cr_assert_eq(sp_amf0_decode(many, 1005, NULL, &v), 1005);
    sp_amf0_free(v);
    cr_assert_eq(sp_amf0_decode(many, 500, NULL, &v), SP_EAGAIN);
    uint8_t ref[] = { 0x07, 0, 1 };
    cr_assert_eq(sp_amf0_decode(ref, 3, NULL, &v), SP_EPROTO);
    uint8_t str[] = { 0x02, 0, 10, 'a' };
    cr_assert_eq(sp_amf0_decode(str, 4, NULL, &v), SP_EAGAIN);
}

/* ---- FLV ---- */
Test(flv, legacy_avc_aac)
{
    sp_flv_info_t i;
    uint8_t avc_sh[] = { 0x17, 0, 0, 0, 0, 1 };
    cr_assert_eq(sp_flv_classify(9, avc_sh, sizeof(avc_sh), &i), 0);
    cr_assert(i.seq_header && !i.keyframe && !i.is_frame);
    cr_assert_str_eq(sp_flv_codec_name(9, i.codec), "h264");
    uint8_t key[] = { 0x17, 1, 0, 0, 0 };
    sp_flv_classify(9, key, sizeof(key), &i);
    cr_assert(i.keyframe && i.is_frame && !i.seq_header);
    uint8_t inter[] = { 0x27, 1, 0, 0, 0 };
    sp_flv_classify(9, inter, sizeof(inter), &i);
    cr_assert(!i.keyframe && i.is_frame);
    uint8_t aac_sh[] = { 0xAF, 0, 0x12, 0x10 };
    sp_flv_classify(8, aac_sh, sizeof(aac_sh), &i);
    cr_assert(i.seq_header);
    cr_assert_str_eq(sp_flv_codec_name(8, i.codec), "aac");
    uint8_t aac[] = { 0xAF, 1, 0x21 };
    sp_flv_classify(8, aac, sizeof(aac), &i);
    cr_assert(i.is_frame && !i.seq_header);
    uint8_t trunc[] = { 0x17 };
    cr_assert_eq(sp_flv_classify(9, trunc, 1, &i), SP_EPROTO);
    cr_assert_eq(sp_flv_classify(9, trunc, 0, &i), SP_EPROTO);
}

Test(flv, enhanced_rtmp_fourcc)
{
    sp_flv_info_t i;
    uint8_t hevc_sh[] = { 0x90, 'h', 'v', 'c', '1', 1, 2, 3 }; /* ex, key, SequenceStart */
    cr_assert_eq(sp_flv_classify(9, hevc_sh, sizeof(hevc_sh), &i), 0);
    cr_assert(i.ex_header && i.seq_header && !i.keyframe);
    cr_assert_str_eq(sp_flv_codec_name(9, i.codec), "hevc");
    uint8_t av1_key[] = { 0x93, 'a', 'v', '0', '1', 9 }; /* key, CodedFramesX */
    sp_flv_classify(9, av1_key, sizeof(av1_key), &i);
    cr_assert(i.keyframe && i.is_frame);
    cr_assert_str_eq(sp_flv_codec_name(9, i.codec), "av1");
    uint8_t av1_inter[] = { 0xA1, 'a', 'v', '0', '1', 9 }; /* inter, CodedFrames */
    sp_flv_classify(9, av1_inter, sizeof(av1_inter), &i);
    cr_assert(!i.keyframe && i.is_frame);
    uint8_t meta[] = { 0x94, 'a', 'v', '0', '1' };
    sp_flv_classify(9, meta, sizeof(meta), &i);
    cr_assert(!i.keyframe && !i.is_frame && !i.seq_header);
    uint8_t opus_sh[] = { 0x90, 'O', 'p', 'u', 's' };
    sp_flv_classify(8, opus_sh, sizeof(opus_sh), &i);
    cr_assert(i.seq_header && i.ex_header);
    cr_assert_str_eq(sp_flv_codec_name(8, i.codec), "opus");
    uint8_t short_ex[] = { 0x90, 'h', 'v' };
    cr_assert_eq(sp_flv_classify(9, short_ex, sizeof(short_ex), &i), SP_EPROTO);
}

Test(flv, tag_header)
{
    uint8_t h[11];
    sp_flv_put_tag_header(h, 9, 300, 0x01020304);
    sp_flv_tag_hdr_t t;
    cr_assert_eq(sp_flv_tag_header(h, 11, &t), 11);
    cr_assert_eq(t.type, 9);
    cr_assert_eq(t.size, 300);
    cr_assert_eq(t.timestamp, 0x01020304);
    cr_assert_eq(sp_flv_tag_header(h, 10, &t), SP_EAGAIN);
    uint8_t fh[] = { 'F', 'L', 'V', 1, 5, 0, 0, 0, 9 };
    cr_assert_eq(sp_flv_file_header(fh, 9), 9);
    fh[0] = 'X';
    cr_assert_eq(sp_flv_file_header(fh, 9), SP_EPROTO);
}
