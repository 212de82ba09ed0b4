/*
 * Fuzz target: the WebSocket client's handshake answer parser
 * (sp_ws_client_parse_handshake, http-parser underneath). The first byte picks
 * the header cap; the rest is the server's answer.
 *
 * Checks: a success returns a header length inside the input and the cap; the
 * answer's prefixes never succeed with a different length (the parser is
 * deterministic and stops at the end of the header block); a success is
 * reproduced when the input is cut right after the header block.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/sp_err.h"
#include "net/sp_ws_client.h"

/* Sec-WebSocket-Accept of the RFC 6455 §1.3 example key */
#define ACC "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t caps[] = { 16384, 64, 128, 256, 1024, 4096 };
    size_t cap = caps[data[0] % (sizeof(caps) / sizeof(caps[0]))];
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    sp_ws_client_hs_t r;
    int rc = sp_ws_client_parse_handshake(p, len, cap, ACC, &r);
    if (rc > 0) {
        if ((size_t)rc > len || (size_t)rc > cap || r.status != 101 || r.reason)
            abort();
        sp_ws_client_hs_t r2;
        if (sp_ws_client_parse_handshake(p, (size_t)rc, cap, ACC, &r2) != rc)
            abort();
        if (rc > 1 && sp_ws_client_parse_handshake(p, (size_t)rc - 1, cap, ACC, &r2) > 0)
            abort(); /* a shorter prefix cannot hold the whole header block */
    } else if (rc != SP_EAGAIN && rc != SP_ETOOBIG && rc != SP_EUPSTREAM && rc != SP_EPROTO) {
        abort();
    } else if (rc != SP_EAGAIN && rc != SP_ETOOBIG && !r.reason) {
        abort();
    }
    return 0;
}
