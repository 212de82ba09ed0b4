/*
 * libFuzzer target: Twitch EventSub webhook verification (platforms/twitch/webhook).
 *   input: [flags][timestamp]\n[body]   flags bit 0: sign correctly (reach the body parser),
 *   bits 1-2: message type, bit 3: use the raw input as the signature header.
 * Checks that the answer is consistent with the kind and that nothing leaks.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "platforms/twitch/webhook.h"

#define SECRET "fuzz-webhook-secret"
#define NOW 1573899072634LL /* 2019-11-16T10:11:12.634Z */

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const char *const types[] = { "webhook_callback_verification", "notification",
                                         "revocation", "other" };
    if (n == 0) return 0;
    uint8_t flags = d[0];
    const uint8_t *p = d + 1;
    size_t rest = n - 1;
    const uint8_t *nl = memchr(p, '\n', rest);
    size_t tl = nl ? (size_t)(nl - p) : 0;
    char ts[128];
    if (tl >= sizeof ts) tl = sizeof ts - 1;
    memcpy(ts, p, tl);
    ts[tl] = '\0';
    const uint8_t *body = nl ? nl + 1 : p;
    size_t blen = nl ? rest - (size_t)(nl + 1 - p) : rest;
    const char *id = "msg-id-1";

    char sig[80] = "sha256=";
    if (flags & 1) {
        crypto_auth_hmacsha256_state st;
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
        crypto_auth_hmacsha256_update(&st, body, blen);
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_bin2hex(sig + 7, sizeof sig - 7, mac, sizeof mac);
    } else if (flags & 8) {
        snprintf(sig, sizeof sig, "%s", ts);
    }
    sp_twitch_wh_request_t req = { .message_id = id, .timestamp = ts, .signature = sig,
                                   .type = types[(flags >> 1) & 3], .body = body,
                                   .body_len = blen };
    sp_twitch_wh_result_t r;
    int status = sp_twitch_wh_verify(&req, SECRET, NOW + (flags & 0x80 ? 3600000 : 0), &r);
    if (status != r.http_status || r.reason == NULL) __builtin_trap();
    if ((r.kind == SP_TWITCH_WH_REFUSED) != (status >= 400)) __builtin_trap();
    if (r.kind == SP_TWITCH_WH_VERIFICATION && r.challenge[0] == '\0') __builtin_trap();
    if ((r.kind == SP_TWITCH_WH_NOTIFICATION) != (r.event != NULL)) __builtin_trap();
    if (!(flags & 1) && !(flags & 8) && r.kind != SP_TWITCH_WH_REFUSED) __builtin_trap();
    sp_twitch_wh_result_free(&r);
    return 0;
}
