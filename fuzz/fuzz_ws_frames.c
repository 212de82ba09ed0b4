/*
 * Fuzz target: WebSocket frames through the wslay glue (sp_ws_proto), the
 * same path a socket's bytes take. The input is split into chunks at varying
 * sizes (first byte) to exercise partial frames. Also runs the handshake
 * header checks on the input as a string.
 *
 * Differential check: the same bytes fed in one piece and in small chunks
 * must deliver exactly the same messages (the glue frees and
 * recreates the wslay context at message boundaries, so this guards that).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "net/sp_ws_proto.h"

typedef struct {
    uint64_t n;
    uint64_t sum;
} seen_t;

static void on_msg(void *ud, int op, const uint8_t *p, size_t len)
{
    seen_t *s = ud;
    s->n++;
    s->sum = s->sum * 31 + (uint64_t)op + len;
    for (size_t i = 0; i < len; i++)
        s->sum = s->sum * 131 + p[i];
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
    (void)len;
}

static uint16_t run(const uint8_t *data, size_t size, size_t chunk, seen_t *seen)
{
    static const sp_ws_proto_cbs_t cbs = { .on_message = on_msg, .on_output = on_out };
    sp_ws_proto_t *p = sp_ws_proto_new(4096, &cbs, seen);
    for (size_t i = 0; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        if (sp_ws_proto_feed(p, data + i, n) != 0)
            break;
    }
    uint16_t code = sp_ws_proto_sent_code(p);
    sp_ws_proto_ping(p);
    sp_ws_proto_close(p, 1001, "bye");
    sp_ws_proto_free(p);
    return code;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] % 64) + 1;
    seen_t whole = { 0, 0 }, parts = { 0, 0 };
    uint16_t c1 = run(data + 1, size - 1, size, &whole);
    uint16_t c2 = run(data + 1, size - 1, chunk, &parts);
    /* Close codes are not compared: wslay itself may react differently to the
     * same bad or truncated control frame when it arrives in pieces (e.g. 1007
     * for a bad close reason seen early vs 1002 for the bad code later). */
    (void)c1;
    (void)c2;
    if (whole.n != parts.n || whole.sum != parts.sum)
        __builtin_trap();

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
