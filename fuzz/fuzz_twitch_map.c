/* libFuzzer target: Twitch EventSub notification -> normalised message (WebSocket and webhook
 * forms). Invariants: an error leaves out cleared; every successful mapping encodes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_err.h"
#include "platforms/sp_platform_msg.h"
#include "platforms/twitch/map.h"

static void check(int rc, sp_twitch_mapped_t *m)
{
    json_t *j = NULL;
    if (rc != 0) {
        if (m->kind != SP_TWITCH_IGNORED || m->message_id[0])
            __builtin_trap();
        return;
    }
    if (m->message_id[0] == '\0')
        __builtin_trap();
    switch (m->kind) {
    case SP_TWITCH_CHAT:
        j = sp_chat_msg_to_json(&m->u.chat, SP_PMSG_RAW);
        break;
    case SP_TWITCH_CHAT_DELETED:
        j = sp_chat_deletion_to_json(&m->u.deleted, SP_PMSG_RAW);
        break;
    case SP_TWITCH_ALERT:
        j = sp_alert_to_json(&m->u.alert, 0);
        break;
    default:
        sp_twitch_mapped_clear(m);
        return;
    }
    if (!j)
        __builtin_trap();
    json_decref(j);
    sp_twitch_mapped_clear(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_twitch_mapped_t m;
    /* the whole input as a WebSocket message */
    check(sp_twitch_map_notification((const char *)data, size, &m), &m);
    /* the same bytes as a webhook body, with header values */
    check(sp_twitch_map_webhook((const char *)data, size, "0d5b2e1c-4c3a-4d1e-9b7a-1f2e3d4c5b6a",
                                "2023-07-19T14:56:51.634234626Z", &m),
          &m);
    return 0;
}
