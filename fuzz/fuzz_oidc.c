/* libFuzzer: sp_oidc. First byte 'K': the rest is a JWKS document (sp_oidc_jwks_parse); else the
 * rest is an id_token checked against a fixed key (kid "fz1"). A token is never accepted: the
 * private key is not here, and the one signed seed (fuzz/corpus/oidc) has expired by NOW. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/sp_oidc.h"

#define NOW 1800000000LL

static const char *N =
    "vR862cx7Ju0QPvH64rVgY8cSlA1xnNfLXMkC844ihay1z5swfIwmKyDRbAQWpjXgxjN4J-Rf0TkM1qi1"
    "F8SGvSDgJKSKsuw8Df93JN_j0WVCq0_VaRXRbQfejXYIALWGr-ipBQXF3Zjvwm67N_J_AIEeB_DkogrI"
    "D3M1Y0CsWXAv1gDNgQX-R24D-p5yWKEjUCWCzfS4CT5JmHdd1fkUN_K58tGHjOnsr8GO2zZgDgLOSrLm"
    "KhURO5lq6mnnz_6by0iyHoLKUEBZ0X3ANdfpZREWQrVLNq7I-jegt4b7oEUnQL1-VOmVhctgUVHkKQ5h"
    "kuXEx8vFbmmlZYW07_38Uw";

static sp_oidc_jwks_t *g_keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!g_keys) {
        char doc[1024];
        snprintf(doc, sizeof(doc),
                 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"fz1\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", N);
        if (sp_oidc_jwks_parse(doc, strlen(doc), &g_keys) != 0 || sp_oidc_jwks_count(g_keys) != 1)
            __builtin_trap();
    }
    if (data[0] == 'K') {
        sp_oidc_jwks_t *k = NULL;
        if (sp_oidc_jwks_parse((const char *)data + 1, size - 1, &k) == 0 &&
            sp_oidc_jwks_count(k) > SP_OIDC_MAX_KEYS)
            __builtin_trap();
        sp_oidc_jwks_free(k);
        return 0;
    }
    sp_oidc_expect_t e = {.issuer = "https://accounts.google.com", .audience = "fuzz-client",
                          .nonce = "fuzz-nonce", .now_s = NOW};
    sp_oidc_claims_t c;
    char kid[64];
    (void)sp_oidc_peek_kid((const char *)data + 1, size - 1, kid, sizeof(kid));
    if (sp_oidc_verify(g_keys, (const char *)data + 1, size - 1, &e, &c) == SP_OIDC_OK)
        __builtin_trap();
    return 0;
}
