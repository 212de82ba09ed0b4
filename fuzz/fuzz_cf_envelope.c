/* libFuzzer target: Cloudflare v4 envelope, LiveInput and Output parsing. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/sp_cloudflare.h"
#include "core/sp_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = { 200, 400, 403, 404 };
    long st = size ? statuses[data[0] & 3] : 200;
    sp_cf_envelope_t env;
    int rc = sp_cloudflare_parse_envelope((const char *)data, size, st, (size & 1) != 0, &env);
    if (rc == 0) {
        sp_cf_input_t in;
        sp_cf_output_t out;
        if (sp_cloudflare_parse_input(env.result, &in) == 0 &&
            (in.uid[0] == '\0' || in.state[0] == '\0'))
            __builtin_trap();
        (void)sp_cloudflare_parse_output(env.result, &out);
        if (json_is_array(env.result))
            for (size_t i = 0; i < json_array_size(env.result) && i < 64; i++)
                (void)sp_cloudflare_parse_output(json_array_get(env.result, i), &out);
        json_decref(env.root);
    } else if (env.root != NULL || env.cf_message[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
