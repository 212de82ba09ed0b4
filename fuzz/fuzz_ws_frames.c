/*
 * Fuzz target: WebSocket frames through the wslay glue (sp_ws_proto), the
 * same path a socket's bytes take. The input is split into chunks at varying
 * sizes (first byte) to exercise partial frames. Also runs the handshake
 * header checks on the input as a string.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sp_alloc.h"
#include "sp_ws_proto.h"

static size_t total_out;

static void on_msg(void *ud, int op, const uint8_t *p, size_t len)
{
    (void)ud;
    /* text delivered must be valid UTF-8 */
    if (op == SP_WS_OP_TEXT && !sp_ws_utf8_valid(p, len))
        __builtin_trap();
    if (len > 4096)
        __builtin_trap(); /* max_message */
}

static void on_out(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    (void)p;
    total_out += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sp_ws_proto_cbs_t cbs = { .on_message = on_msg, .on_output = on_out };
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] % 64) + 1;
    sp_ws_proto_t *p = sp_ws_proto_new(4096, &cbs, NULL);
    for (size_t i = 1; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        if (sp_ws_proto_feed(p, data + i, n) != 0)
            break;
    }
    if (data[0] & 0x80)
        sp_ws_proto_ping(p);
    sp_ws_proto_close(p, 1001, "bye");
    sp_ws_proto_free(p);

    /* the pure string checks on the same bytes */
    char *s = sp_malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char out[SP_WS_ORIGIN_MAX];
    sp_ws_origin_normalize(s, strlen(s), out, sizeof(out));
    sp_ws_key_valid(s);
    sp_ws_header_has_token(s, "upgrade");
    sp_ws_utf8_valid(data, size);
    sp_free(s);
    return 0;
}
