/* libFuzzer: the token endpoint answer parser (status from the first byte, body the rest). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/sp_oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int statuses[] = { 200, 201, 204, 400, 401, 403, 408, 429, 500, 503 };
    int status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    sp_oauth_token_t t;
    sp_oauth_result_t r = sp_oauth_parse_token(status, (const char *)data + 1, size - 1, &t);
    if (r == SP_OAUTH_OK && (!t.access_token || strlen(t.access_token) > SP_OAUTH_MAX_TOKEN))
        __builtin_trap();
    sp_oauth_token_clear(&t);
    return 0;
}
