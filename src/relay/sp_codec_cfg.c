/* sp_codec_cfg: H.264 SPS, avcC and AAC AudioSpecificConfig parsers (see header). */
#include "relay/sp_codec_cfg.h"

#include <stdbool.h>
#include <string.h>

#include "core/sp_err.h"

#define SPS_MAX_BYTES 1024 /* real SPS are < 100 bytes; a larger one is refused */

/* MSB-first bit reader over an RBSP; `bad` latches on any read past the end. */
typedef struct {
    const uint8_t *p;
    size_t len, bit;
    bool bad;
} bits_t;

static uint32_t get_bits(bits_t *b, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        if (b->bit >= b->len * 8) {
            b->bad = true;
            return 0;
        }
        v = (v << 1) | ((b->p[b->bit >> 3] >> (7 - (b->bit & 7))) & 1u);
        b->bit++;
    }
    return v;
}

/* ue(v), limited to 31 leading zeros (values up to 2^31 - 2) */
static uint32_t get_ue(bits_t *b)
{
    int zeros = 0;
    while (get_bits(b, 1) == 0) {
        if (b->bad || ++zeros > 31) {
            b->bad = true;
            return 0;
        }
    }
    if (zeros == 0)
        return 0;
    uint32_t rest = get_bits(b, zeros);
    return (uint32_t)(((uint64_t)1 << zeros) - 1 + rest);
}

static int32_t get_se(bits_t *b)
{
    uint32_t k = get_ue(b);
    return (k & 1) ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

static void skip_scaling_list(bits_t *b, int size)
{
    int last = 8, next = 8;
    for (int j = 0; j < size && !b->bad; j++) {
        if (next != 0) {
            int32_t delta = get_se(b);
            if (delta < -128 || delta > 127) {
                b->bad = true;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

static bool high_profile(int p)
{
    return p == 100 || p == 110 || p == 122 || p == 244 || p == 44 || p == 83 || p == 86 ||
           p == 118 || p == 128 || p == 138 || p == 139 || p == 134 || p == 135;
}

static void parse_vui_fps(bits_t *b, sp_h264_sps_t *out)
{
    if (get_bits(b, 1)) {             /* aspect_ratio_info_present_flag */
        if (get_bits(b, 8) == 255) /* Extended_SAR */
            get_bits(b, 32);
    }
    if (get_bits(b, 1))   /* overscan_info_present_flag */
        get_bits(b, 1);
    if (get_bits(b, 1)) { /* video_signal_type_present_flag */
        get_bits(b, 4);
        if (get_bits(b, 1))
            get_bits(b, 24);
    }
    if (get_bits(b, 1)) { /* chroma_loc_info_present_flag */
        get_ue(b);
        get_ue(b);
    }
    if (get_bits(b, 1) && !b->bad) { /* timing_info_present_flag */
        uint32_t units = get_bits(b, 32);
        uint32_t scale = get_bits(b, 32);
        if (!b->bad && units > 0 && scale > 0) {
            double fps = (double)scale / (2.0 * (double)units);
            if (fps > 0 && fps <= 1000)
                out->fps = fps;
        }
    }
}

int sp_h264_sps_parse(const uint8_t *nal, size_t len, sp_h264_sps_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!nal || len < 4 || len > SPS_MAX_BYTES || (nal[0] & 0x1f) != 7)
        return SP_EPROTO;
    /* RBSP: drop emulation prevention bytes (00 00 03 -> 00 00) */
    uint8_t rbsp[SPS_MAX_BYTES];
    size_t n = 0;
    int zeros = 0;
    for (size_t i = 1; i < len; i++) {
        if (zeros >= 2 && nal[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        rbsp[n++] = nal[i];
    }
    bits_t b = { .p = rbsp, .len = n };
    int profile = (int)get_bits(&b, 8);
    get_bits(&b, 8); /* constraint flags */
    int level = (int)get_bits(&b, 8);
    if (get_ue(&b) > 31) /* seq_parameter_set_id */
        return SP_EPROTO;
    uint32_t chroma = 1;
    bool separate_colour = false;
    if (high_profile(profile)) {
        chroma = get_ue(&b);
        if (chroma > 3)
            return SP_EPROTO;
        if (chroma == 3)
            separate_colour = get_bits(&b, 1) != 0;
        if (get_ue(&b) > 6 || get_ue(&b) > 6) /* bit depths - 8 */
            return SP_EPROTO;
        get_bits(&b, 1); /* qpprime_y_zero_transform_bypass_flag */
        if (get_bits(&b, 1)) { /* seq_scaling_matrix_present_flag */
            int lists = chroma != 3 ? 8 : 12;
            for (int i = 0; i < lists && !b.bad; i++)
                if (get_bits(&b, 1))
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
        }
    }
    if (get_ue(&b) > 12) /* log2_max_frame_num_minus4 */
        return SP_EPROTO;
    uint32_t poc_type = get_ue(&b);
    if (poc_type == 0) {
        if (get_ue(&b) > 12)
            return SP_EPROTO;
    } else if (poc_type == 1) {
        get_bits(&b, 1);
        get_se(&b);
        get_se(&b);
        uint32_t cycle = get_ue(&b);
        if (cycle > 255)
            return SP_EPROTO;
        for (uint32_t i = 0; i < cycle && !b.bad; i++)
            get_se(&b);
    } else if (poc_type != 2) {
        return SP_EPROTO;
    }
    get_ue(&b);      /* max_num_ref_frames */
    get_bits(&b, 1); /* gaps_in_frame_num_value_allowed_flag */
    uint32_t w_mbs = get_ue(&b) + 1;
    uint32_t h_units = get_ue(&b) + 1;
    uint32_t frame_mbs_only = get_bits(&b, 1);
    if (!frame_mbs_only)
        get_bits(&b, 1); /* mb_adaptive_frame_field_flag */
    get_bits(&b, 1);     /* direct_8x8_inference_flag */
    uint32_t crop[4] = { 0, 0, 0, 0 };
    if (get_bits(&b, 1))
        for (int i = 0; i < 4; i++)
            crop[i] = get_ue(&b);
    if (b.bad || w_mbs > 1024 || h_units > 1024)
        return SP_EPROTO;
    uint32_t chroma_type = separate_colour ? 0 : chroma;
    uint32_t sub_w = chroma_type == 1 || chroma_type == 2 ? 2 : 1;
    uint32_t sub_h = chroma_type == 1 ? 2 : 1;
    uint32_t cux = chroma_type == 0 ? 1 : sub_w;
    uint32_t cuy = (chroma_type == 0 ? 1 : sub_h) * (2 - frame_mbs_only);
    uint64_t w = (uint64_t)w_mbs * 16, h = (uint64_t)(2 - frame_mbs_only) * h_units * 16;
    uint64_t cw = (uint64_t)cux * ((uint64_t)crop[0] + crop[1]);
    uint64_t ch = (uint64_t)cuy * ((uint64_t)crop[2] + crop[3]);
    if (cw >= w || ch >= h || w > 16384 || h > 16384)
        return SP_EPROTO;
    out->profile_idc = profile;
    out->level_idc = level;
    out->chroma_format_idc = (int)chroma;
    out->width = (int)(w - cw);
    out->height = (int)(h - ch);
    if (get_bits(&b, 1) && !b.bad) /* vui_parameters_present_flag */
        parse_vui_fps(&b, out);
    if (b.bad)
        out->fps = 0; /* a truncated VUI keeps the size, not a partial frame rate */
    return 0;
}

int sp_h264_avcc_parse(const uint8_t *p, size_t len, sp_h264_sps_t *out)
{
    memset(out, 0, sizeof(*out));
    /* version(1) profile(1) compat(1) level(1) 0xFC|lengthSize-1 (1) 0xE0|numSPS (1) */
    if (!p || len < 8 || p[0] != 1 || (p[5] & 0x1f) == 0)
        return SP_EPROTO;
    size_t sps_len = ((size_t)p[6] << 8) | p[7];
    if (sps_len > len - 8)
        return SP_EPROTO;
    return sp_h264_sps_parse(p + 8, sps_len, out);
}

static const int aac_rates[13] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                   22050, 16000, 12000, 11025, 8000,  7350 };

int sp_aac_asc_parse(const uint8_t *p, size_t len, sp_aac_asc_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!p || len < 2 || len > 64)
        return SP_EPROTO;
    bits_t b = { .p = p, .len = len };
    int aot = (int)get_bits(&b, 5);
    if (aot == 31)
        aot = 32 + (int)get_bits(&b, 6);
    uint32_t idx = get_bits(&b, 4);
    uint32_t rate;
    if (idx == 15)
        rate = get_bits(&b, 24);
    else if (idx < 13)
        rate = (uint32_t)aac_rates[idx];
    else
        return SP_EPROTO;
    uint32_t chan = get_bits(&b, 4);
    if (b.bad || aot == 0 || rate == 0 || rate > 384000 || chan > 15)
        return SP_EPROTO;
    out->object_type = aot;
    out->sample_rate = (int)rate;
    /* channel configurations 1-6 are that many channels, 7 is 7.1 (8), 11-14 as ISO 14496-3 */
    static const int chans[16] = { 0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0 };
    out->channels = chans[chan];
    return 0;
}
