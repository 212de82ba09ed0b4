/* libFuzzer target: RTMP chunk stream reader (with caps) and writer round trip. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_err.h"
#include "relay/sp_rtmp_chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_rtmp_reader_t r;
    sp_rtmp_reader_init(&r, 1 << 20, 16);
    size_t pos = 0;
    while (pos < size) {
        sp_rtmp_msg_t m;
        bool have = false;
        int rc = sp_rtmp_reader_feed(&r, data + pos, size - pos, &m, &have);
        if (rc <= 0)
            break;
        pos += (size_t)rc;
        if (have) {
            /* re-chunk it and read it back: must give the same message */
            sp_buf_t out;
            sp_buf_init(&out, 0);
            if (sp_rtmp_write_msg(&out, 128, m.csid < 2 ? 3 : m.csid, m.type, m.timestamp,
                                  m.stream_id, m.payload->data, (uint32_t)m.payload->len) == 0 &&
                m.type != SP_RTMP_MSG_SET_CHUNK_SIZE && m.type != SP_RTMP_MSG_ABORT) {
                sp_rtmp_reader_t r2;
                sp_rtmp_reader_init(&r2, 1 << 20, 16);
                size_t p2 = 0;
                bool h2 = false;
                sp_rtmp_msg_t m2;
                while (p2 < out.len && !h2) {
                    int rc2 =
                        sp_rtmp_reader_feed(&r2, (uint8_t *)out.p + p2, out.len - p2, &m2, &h2);
                    if (rc2 <= 0)
                        __builtin_trap();
                    p2 += (size_t)rc2;
                }
                if (!h2 || m2.payload->len != m.payload->len || m2.timestamp != m.timestamp ||
                    memcmp(m2.payload->data, m.payload->data, m.payload->len) != 0)
                    __builtin_trap();
                sp_rbuf_unref(m2.payload);
                sp_rtmp_reader_cleanup(&r2);
            }
            sp_buf_cleanup(&out);
            sp_rbuf_unref(m.payload);
        }
    }
    sp_rtmp_reader_cleanup(&r);
    return 0;
}
