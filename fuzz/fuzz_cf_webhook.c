/* libFuzzer target: Cloudflare webhook payload parser and auth check. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/sp_cf_webhook.h"
#include "core/sp_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_cf_webhook_event_t e;
    if (sp_cf_webhook_parse(data, size, &e) == 0) {
        if (e.type != SP_CF_EVT_OTHER && (e.input_id[0] == '\0' || strlen(e.input_id) > 64))
            __builtin_trap();
        (void)sp_cf_event_type_name(e.type);
    }
    (void)sp_cf_webhook_classify(&e, 1764007931658LL, SP_CF_EVT_CONNECTED);
    (void)sp_cf_webhook_auth_ok((const char *)data, size, "fuzz-secret-value");
    int64_t ms;
    (void)sp_time_parse_rfc3339((const char *)data, size, &ms);
    return 0;
}
