/*
 * sp_ws_client's pure and synchronous parts: option and URL validation
 * (sp_ws_client_new refusing bad input without any callback), the handshake
 * answer parser and the Upgrade request builder. The loop tests are in
 * test_ws_client.c.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "net/sp_ws_client.h"
#include "net/sp_ws_proto.h"

/* ---- options and pure parts ------------------------------------------------------- */
static int try_new(const char *url, const char *hdr)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_ws_client_t *c = (sp_ws_client_t *)&loop;
    const char *h[] = { hdr };
    sp_ws_client_opts_t o = { .url = url, .headers = h, .n_headers = hdr ? 1 : 0 };
    int rc = sp_ws_client_new(&loop, &o, &c);
    if (rc == 0)
        sp_ws_client_free(c);
    else
        cr_assert_null(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    return rc;
}

Test(ws_client, options_validated)
{
    cr_assert_eq(try_new("ws://127.0.0.1:1/x", NULL), 0);
    cr_assert_eq(try_new("ws://[::1]:1/x", NULL), 0);
    cr_assert_eq(try_new("http://example.com/", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/#frag", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://user:pw@example.com/", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://:80/", NULL), SP_EINVAL);
    cr_assert_eq(try_new("not a url", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", "X-A: 1\r\nX-B: 2"), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", "no colon"), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", ": empty name"), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", "Bad Name: x"), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", "host: evil"), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", "Sec-WebSocket-Protocol: x"), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com/", "Client-Id: abc"), 0);
    cr_assert_eq(try_new("ws://example.com/a\r\nX-Injected: 1", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://exa mple.com/", NULL), SP_EINVAL);
    cr_assert_eq(try_new("ws://example.com:0/", NULL), SP_EINVAL);
    cr_assert_eq(try_new("WSS://Example.com/", NULL), 0, "scheme is case-insensitive");
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACC "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define OK_RESP                                                                               \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, "     \
    "Upgrade\r\nSec-WebSocket-Accept: " ACC "\r\n\r\n"

static int parse(const char *s, sp_ws_client_hs_t *r)
{
    return sp_ws_client_parse_handshake((const uint8_t *)s, strlen(s), 16384, ACC, r);
}

Test(ws_client, parse_ok_returns_header_length)
{
    sp_ws_client_hs_t r;
    char key_acc[29];
    sp_ws_accept_key(KEY, key_acc);
    cr_assert_str_eq(key_acc, ACC, "RFC 6455 §1.3 example");
    cr_assert_eq(parse(OK_RESP, &r), (int)strlen(OK_RESP));
    cr_assert_eq(r.status, 101);
    cr_assert_null(r.reason);
    /* frame bytes after the header block are not consumed */
    cr_assert_eq(parse(OK_RESP "\x81\x02hi", &r), (int)strlen(OK_RESP));
}

Test(ws_client, parse_incremental_is_eagain_until_complete)
{
    sp_ws_client_hs_t r;
    size_t n = strlen(OK_RESP);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(sp_ws_client_parse_handshake((const uint8_t *)OK_RESP, i, 16384, ACC, &r),
                     SP_EAGAIN, "prefix %zu", i);
    cr_assert_eq(sp_ws_client_parse_handshake((const uint8_t *)OK_RESP, n, 16384, ACC, &r),
                 (int)n);
}

Test(ws_client, parse_rejections)
{
    sp_ws_client_hs_t r;
    cr_assert_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &r), SP_EUPSTREAM);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nConnection: upgrade\r\nSec-WebSocket-Accept: " ACC
                       "\r\n\r\n",
                       &r),
                 SP_EPROTO);
    cr_assert_str_eq(r.reason, "upgrade");
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " ACC
                       "\r\n\r\n",
                       &r),
                 SP_EPROTO);
    cr_assert_str_eq(r.reason, "connection");
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                       "Sec-WebSocket-Accept: AAAAPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                       &r),
                 SP_EPROTO);
    cr_assert_str_eq(r.reason, "accept");
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", &r),
                 SP_EPROTO);
    cr_assert_str_eq(r.reason, "accept");
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                       "Sec-WebSocket-Accept: " ACC "\r\nSec-WebSocket-Accept: " ACC "\r\n\r\n",
                       &r),
                 SP_EPROTO, "duplicate accept");
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                       "Sec-WebSocket-Accept: " ACC "\r\nSec-WebSocket-Extensions: x\r\n\r\n",
                       &r),
                 SP_EPROTO);
    cr_assert_str_eq(r.reason, "extensions");
    cr_assert_eq(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                       "Sec-WebSocket-Accept: " ACC "\r\nSec-WebSocket-Protocol: x\r\n\r\n",
                       &r),
                 SP_EPROTO);
    cr_assert_str_eq(r.reason, "protocol");
    cr_assert_eq(parse("HTTP/1.0 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                       "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
                       &r),
                 SP_EPROTO);
    cr_assert_eq(parse("GARBAGE\r\n\r\n", &r), SP_EPROTO);
    cr_assert_str_eq(r.reason, "malformed");
}

Test(ws_client, parse_header_cap)
{
    sp_ws_client_hs_t r;
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 101 X\r\nX: ", 19);
    cr_assert_eq(sp_ws_client_parse_handshake((const uint8_t *)big, sizeof(big), 512, ACC, &r),
                 SP_ETOOBIG);
    cr_assert_eq(sp_ws_client_parse_handshake((const uint8_t *)big, 511, 512, ACC, &r),
                 SP_EAGAIN);
    size_t n = strlen(OK_RESP);
    cr_assert_eq(sp_ws_client_parse_handshake((const uint8_t *)OK_RESP, n, n, ACC, &r), (int)n,
                 "exactly at the cap is fine");
    cr_assert_eq(sp_ws_client_parse_handshake((const uint8_t *)OK_RESP, n, n - 1, ACC, &r),
                 SP_ETOOBIG);
}

Test(ws_client, build_request)
{
    sp_buf_t b;
    const char *h[] = { "Authorization: Bearer t" };
    sp_buf_init(&b, 512);
    cr_assert_eq(sp_ws_client_build_request(&b, "example.com:8080", "/a?b=c", KEY, h, 1), 0);
    cr_assert_eq(b.len, strlen(b.p));
    cr_assert_str_eq(b.p, "GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                          "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer t\r\n\r\n");
    sp_buf_cleanup(&b);
    sp_buf_init(&b, 150);
    cr_assert_eq(sp_ws_client_build_request(&b, "example.com", "/", KEY, h, 1), SP_ETOOBIG);
    cr_assert_eq(b.len, 0, "all or nothing");
    sp_buf_cleanup(&b);
}
