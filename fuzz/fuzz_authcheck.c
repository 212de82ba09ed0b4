/* libFuzzer target: the pure auth input checks (email, display name, origin, CSRF, IP key). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sp_authcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[SP_DISPLAY_NAME_BYTES + SP_EMAIL_MAX + 64];
    const char *in = (const char *)data;
    if (sp_auth_normalize_email(in, size, out, SP_EMAIL_MAX + 1) == 0) {
        /* idempotent, lower-case, one '@' */
        char again[SP_EMAIL_MAX + 1];
        if (sp_auth_normalize_email(out, strlen(out), again, sizeof(again)) != 0 ||
            strcmp(out, again) != 0)
            abort();
        if (!strchr(out, '@') || strchr(out, '@') != strrchr(out, '@'))
            abort();
    }
    if (sp_auth_check_display_name(in, size, out, SP_DISPLAY_NAME_BYTES) == 0 &&
        strlen(out) > SP_DISPLAY_NAME_MAX * 4)
        abort();
    char *z = malloc(size + 1);
    memcpy(z, data, size);
    z[size] = '\0';
    char o[SP_ORIGIN_MAX];
    (void)sp_auth_url_origin(z, o, sizeof(o));
    sp_auth_ip_key(z, o, sizeof(o));
    (void)sp_auth_bearer(z);
    const char *origins[] = {"https://app.example"};
    /* a token that is not the expected one never passes without an allowed Origin */
    if (sp_auth_csrf_check("POST", NULL, NULL, z, z, "expected-token-value", origins, 1) == 0 &&
        strcmp(z, "expected-token-value") != 0)
        abort();
    free(z);
    return 0;
}
