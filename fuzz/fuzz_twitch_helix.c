/* libFuzzer: every Twitch Helix answer parser on the same bytes (the first byte picks the
 * status), and the rate-limit header parser on a split of them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "platforms/twitch/helix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int statuses[] = { 200, 204, 400, 401, 403, 404, 429, 500 };
    int st = statuses[data[0] % 8];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    sp_helix_user_t u;
    sp_helix_stream_t s;
    sp_helix_chat_sent_t c;
    char key[128];
    (void)sp_helix_parse_user(st, body, len, &u);
    if (sp_helix_parse_stream(st, body, len, &s) == 0 &&
        (s.viewer_count < 0 || s.viewer_count > SP_HELIX_MAX_VIEWERS))
        __builtin_trap();
    (void)sp_helix_parse_stream_key(st, body, len, key, sizeof(key));
    (void)sp_helix_parse_chat_sent(st, body, len, &c);
    char h[3][32];
    for (int i = 0; i < 3; i++) {
        size_t n = len > i * 8 ? (len - i * 8 < 31 ? len - i * 8 : 31) : 0;
        memcpy(h[i], body + (n ? i * 8 : 0), n);
        h[i][n] = '\0';
    }
    int64_t w = sp_helix_wait_ms(st, h[0], h[1], h[2], 1700000000000LL);
    if (w < 0 || w > SP_HELIX_MAX_WAIT_MS)
        __builtin_trap();
    return 0;
}
