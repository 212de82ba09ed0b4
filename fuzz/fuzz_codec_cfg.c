/* libFuzzer target: H.264 SPS / avcC and AAC AudioSpecificConfig parsers (input health). */
#include <stddef.h>
#include <stdint.h>

#include "relay/sp_codec_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_h264_sps_t s;
    sp_aac_asc_t a;
    if (sp_h264_sps_parse(data, size, &s) == 0 &&
        (s.width <= 0 || s.height <= 0 || s.width > 16384 || s.height > 16384))
        __builtin_trap();
    if (sp_h264_avcc_parse(data, size, &s) == 0 && (s.width <= 0 || s.height <= 0))
        __builtin_trap();
    if (sp_aac_asc_parse(data, size, &a) == 0 && (a.sample_rate <= 0 || a.channels < 0))
        __builtin_trap();
    return 0;
}
