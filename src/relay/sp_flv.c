/* sp_flv: FLV tag classification (see header). */
#include "relay/sp_flv.h"

#include <string.h>

#include "core/sp_err.h"

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int sp_flv_classify(uint8_t tag_type, const uint8_t *p, size_t len, sp_flv_info_t *o)
{
    memset(o, 0, sizeof(*o));
    o->tag_type = tag_type;
    if (tag_type != SP_FLV_TAG_AUDIO && tag_type != SP_FLV_TAG_VIDEO)
        return 0;
    if (len < 1)
        return SP_EPROTO;
    uint8_t b0 = p[0];
    if (tag_type == SP_FLV_TAG_VIDEO) {
        if (b0 & 0x80) { /* Enhanced RTMP */
            uint8_t ftype = (b0 >> 4) & 7, ptype = b0 & 0x0f;
            o->ex_header = true;
            if (len < 5)
                return SP_EPROTO;
            o->codec = be32(p + 1);
            switch (ptype) {
            case 0: /* SequenceStart */
            case 5: /* MPEG2TSSequenceStart */
                o->seq_header = true;
                break;
            case 1: /* CodedFrames */
            case 3: /* CodedFramesX */
                o->is_frame = true;
                o->keyframe = ftype == 1;
                break;
            case 2:
                o->seq_end = true;
                break;
            default: /* 4 Metadata, 6 Multitrack, 7 ModEx: passthrough */
                break;
            }
            return 0;
        }
        uint8_t ftype = b0 >> 4, codec = b0 & 0x0f;
        o->codec = codec;
        if (ftype == 5) /* video info / command frame */
            return 0;
        if (codec == 7 || codec == 12 || codec == 13) { /* AVC, (non-standard) HEVC, AV1 */
            if (len < 2)
                return SP_EPROTO;
            if (p[1] == 0)
                o->seq_header = true;
            else if (p[1] == 2)
                o->seq_end = true;
            else {
                o->is_frame = true;
                o->keyframe = ftype == 1;
            }
            return 0;
        }
        o->is_frame = true;
        o->keyframe = ftype == 1;
        return 0;
    }
    /* audio */
    uint8_t fmt = b0 >> 4;
    if (fmt == 9) { /* Enhanced audio: ExHeader */
        uint8_t ptype = b0 & 0x0f;
        o->ex_header = true;
        if (len < 5)
            return SP_EPROTO;
        o->codec = be32(p + 1);
        if (ptype == 0)
            o->seq_header = true;
        else if (ptype == 1)
            o->is_frame = true;
        else if (ptype == 2)
            o->seq_end = true;
        return 0;
    }
    o->codec = fmt;
    if (fmt == 10) {
        if (len < 2)
            return SP_EPROTO;
        if (p[1] == 0)
            o->seq_header = true;
        else
            o->is_frame = true;
        return 0;
    }
    o->is_frame = true;
    return 0;
}

const char *sp_flv_codec_name(uint8_t tag_type, uint32_t codec)
{
    if (tag_type == SP_FLV_TAG_VIDEO) {
        switch (codec) {
        case 2: return "h263";
        case 4: return "vp6";
        case 7: return "h264";
        case 12: return "hevc";
        case 13: return "av1";
        case SP_FOURCC('a', 'v', 'c', '1'): return "h264";
        case SP_FOURCC('h', 'v', 'c', '1'): return "hevc";
        case SP_FOURCC('a', 'v', '0', '1'): return "av1";
        case SP_FOURCC('v', 'p', '0', '9'): return "vp9";
        case SP_FOURCC('v', 'p', '0', '8'): return "vp8";
        case SP_FOURCC('v', 'v', 'c', '1'): return "vvc";
        default: return "unknown";
        }
    }
    switch (codec) {
    case 2: return "mp3";
    case 10: return "aac";
    case 11: return "speex";
    case SP_FOURCC('m', 'p', '4', 'a'): return "aac";
    case SP_FOURCC('O', 'p', 'u', 's'): return "opus";
    case SP_FOURCC('.', 'm', 'p', '3'): return "mp3";
    case SP_FOURCC('f', 'L', 'a', 'C'): return "flac";
    case SP_FOURCC('a', 'c', '-', '3'): return "ac3";
    case SP_FOURCC('e', 'c', '-', '3'): return "eac3";
    default: return "unknown";
    }
}

int sp_flv_file_header(const uint8_t *p, size_t len)
{
    if (len < 9)
        return SP_EAGAIN;
    if (p[0] != 'F' || p[1] != 'L' || p[2] != 'V' || p[3] != 1)
        return SP_EPROTO;
    uint32_t off = be32(p + 5);
    if (off < 9 || off > 1024)
        return SP_EPROTO;
    return (int)off;
}

int sp_flv_tag_header(const uint8_t *p, size_t len, sp_flv_tag_hdr_t *o)
{
    if (len < 11)
        return SP_EAGAIN;
    if ((p[0] & 0x1f) != SP_FLV_TAG_AUDIO && (p[0] & 0x1f) != SP_FLV_TAG_VIDEO &&
        (p[0] & 0x1f) != SP_FLV_TAG_DATA)
        return SP_EPROTO;
    if (p[0] & 0x20) /* filter/encrypted */
        return SP_EPROTO;
    o->type = p[0] & 0x1f;
    o->size = ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    o->timestamp = ((uint32_t)p[7] << 24) | ((uint32_t)p[4] << 16) | ((uint32_t)p[5] << 8) | p[6];
    o->stream_id = ((uint32_t)p[8] << 16) | ((uint32_t)p[9] << 8) | p[10];
    return 11;
}

void sp_flv_put_tag_header(uint8_t out[11], uint8_t type, uint32_t size, uint32_t ts)
{
    out[0] = type;
    out[1] = (uint8_t)(size >> 16);
    out[2] = (uint8_t)(size >> 8);
    out[3] = (uint8_t)size;
    out[4] = (uint8_t)(ts >> 16);
    out[5] = (uint8_t)(ts >> 8);
    out[6] = (uint8_t)ts;
    out[7] = (uint8_t)(ts >> 24);
    out[8] = out[9] = out[10] = 0;
}
