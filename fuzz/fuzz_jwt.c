/* libFuzzer target: sp_jwt_verify never crashes and never accepts a token it did not sign. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "auth/sp_jwt.h"

static const uint8_t KEY[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_jwt_claims_t c;
    int rc = sp_jwt_verify(KEY, sizeof(KEY), (const char *)data, size, 1800000000, &c);
    if (rc == 0) {
        /* Accepted: it must carry a valid HS256 MAC under KEY, which random input cannot
         * produce. Re-signing the claims must give a token that verifies too. */
        char *tok = NULL;
        if (sp_jwt_sign(KEY, sizeof(KEY), c.sub, c.sid, c.iat, c.exp, &tok) != 0)
            abort();
        if (sp_jwt_verify(KEY, sizeof(KEY), tok, strlen(tok), 1800000000, NULL) != 0)
            abort();
        sp_free(tok);
    }
    return 0;
}
