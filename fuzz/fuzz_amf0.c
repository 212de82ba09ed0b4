/* libFuzzer target: AMF0 decoder (limits) and re-encode/decode round trip. */
#include <stddef.h>
#include <stdint.h>

#include "relay/sp_amf0.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_amf0_val_t **v = NULL;
    size_t n = 0;
    if (sp_amf0_decode_all(data, size, NULL, &v, &n, 64) == 0) {
        sp_buf_t b;
        sp_buf_init(&b, 0);
        for (size_t i = 0; i < n; i++)
            sp_amf0_put_value(&b, v[i]);
        sp_amf0_val_t **v2 = NULL;
        size_t n2 = 0;
        /* ECMA arrays/long strings re-encode canonically; the result must decode */
        sp_amf0_limits_t lim = { .max_string = 0xFFFFFFFF };
        if (sp_amf0_decode_all((uint8_t *)b.p, b.len, &lim, &v2, &n2, 64) != 0 || n2 != n)
            __builtin_trap();
        sp_amf0_free_all(v2, n2);
        sp_buf_cleanup(&b);
        sp_amf0_free_all(v, n);
    }
    return 0;
}
