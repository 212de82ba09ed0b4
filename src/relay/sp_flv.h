/*
 * sp_flv: classification of FLV/RTMP audio and video tag bodies, legacy and
 * Enhanced RTMP (FourCC), and the FLV file tag header. Pure.
 */
#ifndef SP_FLV_H
#define SP_FLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_FLV_TAG_AUDIO 8
#define SP_FLV_TAG_VIDEO 9
#define SP_FLV_TAG_DATA 18

#define SP_FOURCC(a, b, c, d)                                                                  \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

typedef struct {
    uint8_t tag_type;  /* 8, 9, 18 */
    bool keyframe;     /* video frame type 1 (coded frame, not a sequence header) */
    bool seq_header;   /* AVC/HEVC/AV1/VP9 decoder config or AAC AudioSpecificConfig */
    bool seq_end;
    bool ex_header;    /* Enhanced RTMP */
    bool is_frame;     /* carries coded media (not config/metadata/command) */
    uint32_t codec;    /* legacy codec id (video 7 = AVC, audio 10 = AAC) or FourCC */
} sp_flv_info_t;

/**
 * Classifies the body of an audio (8) or video (9) message; other types are
 * classified as data. Returns 0 or SP_EPROTO (empty/truncated body).
 */
int sp_flv_classify(uint8_t tag_type, const uint8_t *p, size_t len, sp_flv_info_t *out);
/** Short codec name for stats ("h264", "hevc", "av1", "vp9", "aac", "mp3", "opus"...). */
const char *sp_flv_codec_name(uint8_t tag_type, uint32_t codec);

typedef struct {
    uint8_t type;
    uint32_t size;      /* body bytes */
    uint32_t timestamp; /* with the extension byte */
    uint32_t stream_id;
} sp_flv_tag_hdr_t;

/** Parses the 9-byte FLV file header; returns bytes to skip (header + offset) or an error. */
int sp_flv_file_header(const uint8_t *p, size_t len);
/** Parses an 11-byte tag header; returns 11, SP_EAGAIN or SP_EPROTO. */
int sp_flv_tag_header(const uint8_t *p, size_t len, sp_flv_tag_hdr_t *out);
/** Writes an 11-byte tag header. */
void sp_flv_put_tag_header(uint8_t out[11], uint8_t type, uint32_t size, uint32_t ts);

#endif
