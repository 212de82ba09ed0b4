/*
 * sp_codec_cfg: pure parsers of codec configuration records carried in FLV
 * sequence headers, for the input health (docs/relay.md "Input health"):
 * the H.264 sequence parameter set (picture size, profile, level, the VUI
 * frame rate), the AVCDecoderConfigurationRecord that carries it, and the AAC
 * AudioSpecificConfig (sample rate, channels). Every read is bounds-checked;
 * any malformed input is SP_EPROTO, never a crash.
 */
#ifndef SP_CODEC_CFG_H
#define SP_CODEC_CFG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int profile_idc;
    int level_idc;
    int chroma_format_idc;
    int width, height; /* after cropping, in pixels */
    double fps;        /* from the VUI timing info; 0 when absent */
} sp_h264_sps_t;

/** Parses an SPS NAL unit (with its 1-byte NAL header, type 7, emulation prevention bytes
 *  still in). 0 or SP_EPROTO. */
int sp_h264_sps_parse(const uint8_t *nal, size_t len, sp_h264_sps_t *out);
/** Parses an AVCDecoderConfigurationRecord (the body of an AVC sequence header after the
 *  5-byte FLV video header) and its first SPS. 0 or SP_EPROTO. */
int sp_h264_avcc_parse(const uint8_t *p, size_t len, sp_h264_sps_t *out);

typedef struct {
    int object_type;  /* 2 = AAC LC, 5 = SBR ... */
    int sample_rate;  /* Hz */
    int channels;     /* 0 when the channel configuration is in the PCE (not parsed) */
} sp_aac_asc_t;

/** Parses an AAC AudioSpecificConfig (the body of an AAC sequence header after the 2-byte FLV
 *  audio header). 0 or SP_EPROTO. */
int sp_aac_asc_parse(const uint8_t *p, size_t len, sp_aac_asc_t *out);

#endif
