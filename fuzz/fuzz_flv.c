/* libFuzzer target: FLV file/tag header parsing and tag body classification. */
#include <stddef.h>
#include <stdint.h>

#include "relay/sp_flv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_flv_info_t info;
    if (size > 0) {
        sp_flv_classify(data[0] & 1 ? 8 : 9, data + 1, size - 1, &info);
        (void)sp_flv_codec_name(info.tag_type, info.codec);
    }
    /* walk an FLV file */
    int off = sp_flv_file_header(data, size);
    if (off < 0)
        return 0;
    size_t pos = (size_t)off + 4;
    while (pos < size) {
        sp_flv_tag_hdr_t t;
        if (sp_flv_tag_header(data + pos, size - pos, &t) != 11)
            break;
        pos += 11;
        if (t.size > size - pos)
            break;
        sp_flv_classify(t.type, data + pos, t.size, &info);
        pos += t.size + 4;
    }
    return 0;
}
