/* libFuzzer target: RTMP handshake state machines (server and client side). */
#include <stddef.h>
#include <stdint.h>

#include "relay/sp_rtmp_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sp_rtmp_hs_t hs;
    for (int side = 0; side < 2; side++) {
        if (side == 0)
            sp_rtmp_hs_server_init(&hs, NULL);
        else
            sp_rtmp_hs_client_init(&hs, NULL);
        size_t pos = 0;
        /* feed in pieces whose sizes come from the data itself */
        while (pos < size && !hs.done) {
            size_t step = 1 + data[pos] * 13u;
            if (step > size - pos)
                step = size - pos;
            int rc = sp_rtmp_hs_feed(&hs, data + pos, step);
            if (rc < 0)
                break;
            if ((size_t)rc > step)
                __builtin_trap();
            pos += (size_t)rc;
            hs.out_len = 0;
            if ((size_t)rc < step && !hs.done)
                __builtin_trap();
        }
    }
    return 0;
}
