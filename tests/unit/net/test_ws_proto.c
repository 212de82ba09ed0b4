/* Unit tests for sp_ws_proto: handshake, accept key, origins, UTF-8, frame encoder, wslay glue. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "net/sp_ws_proto.h"

static const char KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

/* RFC 6455 §1.3: the server answers s3pPLMBiTxaQ9kYGzzhZRbK+xOo= (checked with Python
 * hashlib too). */
Test(ws_proto, accept_key_rfc6455_example)
{
    char out[29];
    cr_assert_eq(sp_ws_accept_key(KEY, out), 0);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws_proto, key_validation)
{
    cr_assert(sp_ws_key_valid(KEY));
    cr_assert_not(sp_ws_key_valid(NULL));
    cr_assert_not(sp_ws_key_valid(""));
    cr_assert_not(sp_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));     /* 22 chars */
    cr_assert_not(sp_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=!"));   /* bad char */
    cr_assert_not(sp_ws_key_valid("dGhlIHNhbXBsZSBub25jZSEh"));   /* 18 bytes */
    cr_assert_not(sp_ws_key_valid("not base64 at all, sorry"));
}

static sp_ws_hs_req_t good_req(void)
{
    sp_ws_hs_req_t r = { .method = "GET",
                         .upgrade = "websocket",
                         .connection = "keep-alive, Upgrade",
                         .version = "13",
                         .key = KEY,
                         .origin = NULL };
    return r;
}

Test(ws_proto, handshake_ok_and_failures)
{
    sp_ws_origins_t o;
    sp_ws_hs_result_t res;
    cr_assert_eq(sp_ws_origins_init(&o, "http://localhost:4000/", "https://app.example.com"), 0);

    sp_ws_hs_req_t r = good_req();
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 101);
    cr_assert_str_eq(res.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    r.origin = "http://localhost:4000";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 101);
    r.origin = "HTTPS://APP.example.com:443";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 101);
    r.origin = "https://evil.example";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 403);
    cr_assert_str_eq(res.reason, "origin");
    r.origin = "null";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 403);
    r.origin = "file://";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 403);
    r.origin = "http://localhost:4001";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 403);
    r.origin = "http://localhost:4000.evil.example";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 403);
    r.origin = "http://user@localhost:4000";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 403);

    r = good_req();
    r.key = "short";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);
    cr_assert_str_eq(res.reason, "bad_key");
    r.key = NULL;
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);

    r = good_req();
    r.version = "8";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 426);
    cr_assert(res.send_version);
    r.version = NULL;
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);
    cr_assert(res.send_version);

    r = good_req();
    r.method = "POST";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);
    r = good_req();
    r.upgrade = "h2c";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);
    r.upgrade = "WebSocket";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 101);
    r.connection = "keep-alive";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);
    r.connection = "upgradeX";
    cr_assert_eq(sp_ws_handshake_check(&r, &o, &res), 400);
}

Test(ws_proto, origin_normalize)
{
    char out[SP_WS_ORIGIN_MAX];
    cr_assert_eq(sp_ws_origin_normalize("HTTP://Host.Example:80/x/y", 26, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "http://host.example");
    cr_assert_eq(sp_ws_origin_normalize("https://h:8443", 14, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://h:8443");
    cr_assert_eq(sp_ws_origin_normalize("wss://h", 7, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://h");
    cr_assert_eq(sp_ws_origin_normalize("null", 4, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_ws_origin_normalize("ftp://h", 7, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_ws_origin_normalize("http://", 7, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_ws_origin_normalize("http://h:99999999", 17, out, sizeof(out)), SP_EINVAL);
    cr_assert_eq(sp_ws_origin_normalize("http://h:", 9, out, sizeof(out)), SP_EINVAL);

    sp_ws_origins_t o;
    cr_assert_eq(sp_ws_origins_init(&o, NULL, " http://a.test , ,https://b.test:8443"), 0);
    cr_assert_eq(o.n, 2);
    cr_assert(sp_ws_origin_allowed(&o, "https://b.test:8443"));
    cr_assert_not(sp_ws_origin_allowed(&o, "https://b.test"));
    cr_assert_not(sp_ws_origin_allowed(&o, "http://a.test/path"));
    cr_assert_not(sp_ws_origin_allowed(&o, NULL));
    cr_assert_eq(sp_ws_origins_init(&o, NULL, "null"), SP_EINVAL);
}

Test(ws_proto, header_tokens)
{
    cr_assert(sp_ws_header_has_token("keep-alive, Upgrade", "upgrade"));
    cr_assert(sp_ws_header_has_token("Upgrade", "upgrade"));
    cr_assert(sp_ws_header_has_token(" upgrade ,x", "upgrade"));
    cr_assert_not(sp_ws_header_has_token("upgrades", "upgrade"));
    cr_assert_not(sp_ws_header_has_token("", "upgrade"));
    cr_assert_not(sp_ws_header_has_token(NULL, "upgrade"));
}

Test(ws_proto, utf8)
{
#define U(s) sp_ws_utf8_valid((const uint8_t *)(s), sizeof(s) - 1)
    cr_assert(U(""));
    cr_assert(U("hello"));
    cr_assert(U("h\xc3\xa9llo"));         /* é */
    cr_assert(U("\xe2\x82\xac"));         /* € */
    cr_assert(U("\xf0\x9f\x98\x80"));     /* emoji */
    cr_assert(U("\xf4\x8f\xbf\xbf"));     /* U+10FFFF */
    cr_assert(U("\xed\x9f\xbf"));         /* U+D7FF */
    cr_assert_not(U("\xc3"));             /* truncated */
    cr_assert_not(U("\xc0\xaf"));         /* overlong / */
    cr_assert_not(U("\xe0\x80\xaf"));     /* overlong 3 bytes */
    cr_assert_not(U("\xf0\x80\x80\xaf")); /* overlong 4 bytes */
    cr_assert_not(U("\xed\xa0\x80"));     /* surrogate D800 */
    cr_assert_not(U("\xf4\x90\x80\x80")); /* > U+10FFFF */
    cr_assert_not(U("\xff"));
    cr_assert_not(U("\x80"));
    cr_assert_not(U("\xe2\x28\xa1"));
#undef U
}

Test(ws_proto, frame_encoder)
{
    uint8_t h[10];
    cr_assert_eq(sp_ws_frame_header(h, SP_WS_OP_TEXT, 5), 2);
    cr_assert_eq(h[0], 0x81);
    cr_assert_eq(h[1], 5);
    cr_assert_eq(sp_ws_frame_header(h, SP_WS_OP_TEXT, 125), 2);
    cr_assert_eq(h[1], 125);
    cr_assert_eq(sp_ws_frame_header(h, SP_WS_OP_BINARY, 126), 4);
    cr_assert_eq(h[0], 0x82);
    cr_assert_eq(h[1], 126);
    cr_assert_eq(h[2], 0);
    cr_assert_eq(h[3], 126);
    cr_assert_eq(sp_ws_frame_header(h, SP_WS_OP_TEXT, 65535), 4);
    cr_assert_eq(h[2], 0xff);
    cr_assert_eq(h[3], 0xff);
    cr_assert_eq(sp_ws_frame_header(h, SP_WS_OP_TEXT, 65536), 10);
    cr_assert_eq(h[1], 127);
    cr_assert_eq(h[7], 1);
    cr_assert_eq(h[8], 0);
    cr_assert_eq(h[9], 0);

    sp_rbuf_t *r = sp_ws_frame_encode(SP_WS_OP_TEXT, "Hello", 5);
    cr_assert_eq(r->len, 7);
    cr_assert_eq(memcmp(r->data, "\x81\x05Hello", 7), 0); /* RFC 6455 §5.7 example */
    cr_assert_eq(r->refs, 1);
    sp_rbuf_unref(r);
}

/* ---- wslay glue ---- */

typedef struct {
    int n_msgs;
    int last_op;
    char last[256];
    size_t last_len;
    sp_buf_t out;
} sink_t;

static void on_msg(void *ud, int op, const uint8_t *p, size_t len)
{
    sink_t *s = ud;
    s->n_msgs++;
    s->last_op = op;
    s->last_len = len < sizeof(s->last) ? len : sizeof(s->last);
    memcpy(s->last, p, s->last_len);
}

static void on_out(void *ud, const uint8_t *p, size_t len)
{
    sink_t *s = ud;
    sp_buf_append(&s->out, p, len);
}

/* A masked client frame (mask key 0x37fa213d as in RFC 6455 §5.7). */
static size_t client_frame(uint8_t *out, int fin, int op, const void *payload, size_t len)
{
    static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
    size_t o = 0;
    out[o++] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (len < 126) {
        out[o++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        out[o++] = 0x80 | 126;
        out[o++] = (uint8_t)(len >> 8);
        out[o++] = (uint8_t)len;
    } else {
        out[o++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[o++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(out + o, mask, 4);
    o += 4;
    for (size_t i = 0; i < len; i++)
        out[o + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
    return o + len;
}

static sp_ws_proto_t *mk(sink_t *s, size_t max)
{
    static const sp_ws_proto_cbs_t cbs = { .on_message = on_msg, .on_output = on_out };
    memset(s, 0, sizeof(*s));
    sp_buf_init(&s->out, 0);
    return sp_ws_proto_new(max, &cbs, s);
}

static int close_code_of(const sink_t *s)
{
    /* the last frame in out must be a close frame: 0x88 len code(2) */
    const uint8_t *p = (const uint8_t *)s->out.p;
    for (size_t i = 0; i + 4 <= s->out.len;) {
        size_t l = p[i + 1] & 0x7f;
        if (p[i] == 0x88 && l >= 2)
            return (p[i + 2] << 8) | p[i + 3];
        i += 2 + l;
    }
    return 0;
}

Test(ws_glue, text_message_split_across_feeds)
{
    sink_t s;
    uint8_t f[64];
    sp_ws_proto_t *p = mk(&s, 1024);
    size_t n = client_frame(f, 1, SP_WS_OP_TEXT, "Hello", 5);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(sp_ws_proto_feed(p, f + i, 1), 0);
    cr_assert_eq(s.n_msgs, 1);
    cr_assert_eq(s.last_len, 5);
    cr_assert_eq(memcmp(s.last, "Hello", 5), 0);
    cr_assert_eq(sp_ws_proto_messages(p), 1);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, fragmented_message_reassembled)
{
    sink_t s;
    uint8_t f[64];
    sp_ws_proto_t *p = mk(&s, 1024);
    size_t n = client_frame(f, 0, SP_WS_OP_TEXT, "Hel", 3);
    n += client_frame(f + n, 1, 0, "lo", 2);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert_eq(s.n_msgs, 1);
    cr_assert_eq(memcmp(s.last, "Hello", 5), 0);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, ping_gets_pong)
{
    sink_t s;
    uint8_t f[64];
    sp_ws_proto_t *p = mk(&s, 1024);
    size_t n = client_frame(f, 1, SP_WS_OP_PING, "abc", 3);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert_eq(s.out.len, 5);
    cr_assert_eq(memcmp(s.out.p, "\x8a\x03" "abc", 5), 0);
    cr_assert_eq(s.n_msgs, 0);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, invalid_utf8_closes_1007)
{
    sink_t s;
    uint8_t f[64];
    sp_ws_proto_t *p = mk(&s, 1024);
    size_t n = client_frame(f, 1, SP_WS_OP_TEXT, "\xc3\x28", 2);
    sp_ws_proto_feed(p, f, n);
    cr_assert_eq(s.n_msgs, 0);
    cr_assert_eq(close_code_of(&s), 1007);
    cr_assert(sp_ws_proto_close_sent(p));
    cr_assert_eq(sp_ws_proto_sent_code(p), 1007);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, oversize_closes_1009)
{
    sink_t s;
    static uint8_t f[4096], big[2000];
    memset(big, 'a', sizeof(big));
    sp_ws_proto_t *p = mk(&s, 1000);
    size_t n = client_frame(f, 1, SP_WS_OP_TEXT, big, sizeof(big));
    sp_ws_proto_feed(p, f, n);
    cr_assert_eq(s.n_msgs, 0);
    cr_assert_eq(close_code_of(&s), 1009);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, unmasked_frame_is_protocol_error)
{
    sink_t s;
    sp_ws_proto_t *p = mk(&s, 1000);
    sp_ws_proto_feed(p, (const uint8_t *)"\x81\x05Hello", 7);
    cr_assert_eq(s.n_msgs, 0);
    cr_assert_eq(close_code_of(&s), 1002);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, peer_close_is_answered)
{
    sink_t s;
    uint8_t f[64];
    sp_ws_proto_t *p = mk(&s, 1000);
    size_t n = client_frame(f, 1, SP_WS_OP_CLOSE, "\x03\xe8", 2);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), SP_ECLOSED);
    cr_assert(sp_ws_proto_close_received(p));
    cr_assert(sp_ws_proto_close_sent(p));
    cr_assert_eq(sp_ws_proto_peer_code(p), 1000);
    cr_assert_eq(close_code_of(&s), 1000);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, server_close_and_ping)
{
    sink_t s;
    sp_ws_proto_t *p = mk(&s, 1000);
    sp_ws_proto_ping(p);
    cr_assert_eq(s.out.len, 2);
    cr_assert_eq((uint8_t)s.out.p[0], 0x89);
    sp_ws_proto_close(p, 1001, "going away");
    cr_assert_eq(close_code_of(&s), 1001);
    cr_assert(sp_ws_proto_close_sent(p));
    size_t before = s.out.len;
    sp_ws_proto_close(p, 1000, NULL); /* only once */
    cr_assert_eq(s.out.len, before);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, context_released_at_message_boundaries_only)
{
    sink_t s;
    uint8_t f[256];
    sp_ws_proto_t *p = mk(&s, 1024);
    cr_assert_not(sp_ws_proto_has_ctx(p)); /* idle socket: no wslay memory */

    size_t n = client_frame(f, 1, SP_WS_OP_TEXT, "Hello", 5);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert_not(sp_ws_proto_has_ctx(p));

    /* partial header (1 byte) keeps it */
    n = client_frame(f, 1, SP_WS_OP_TEXT, "abc", 3);
    cr_assert_eq(sp_ws_proto_feed(p, f, 1), 0);
    cr_assert(sp_ws_proto_has_ctx(p));
    /* partial payload keeps it */
    cr_assert_eq(sp_ws_proto_feed(p, f + 1, n - 2), 0);
    cr_assert(sp_ws_proto_has_ctx(p));
    cr_assert_eq(sp_ws_proto_feed(p, f + n - 1, 1), 0);
    cr_assert_not(sp_ws_proto_has_ctx(p));
    cr_assert_eq(s.n_msgs, 2);
    cr_assert_eq(memcmp(s.last, "abc", 3), 0);

    /* an open fragmented message keeps it, even between whole frames */
    n = client_frame(f, 0, SP_WS_OP_TEXT, "Hel", 3);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert(sp_ws_proto_has_ctx(p));
    n = client_frame(f, 1, SP_WS_OP_PING, "p", 1); /* control frame inside the message */
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert(sp_ws_proto_has_ctx(p));
    n = client_frame(f, 1, 0, "lo", 2);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert_not(sp_ws_proto_has_ctx(p));
    cr_assert_eq(s.n_msgs, 3);
    cr_assert_eq(memcmp(s.last, "Hello", 5), 0);
    cr_assert_eq(memcmp(s.out.p, "\x8a\x01p", 3), 0); /* the pong */

    /* a 16-bit-length frame split anywhere */
    static uint8_t big[300];
    memset(big, 'z', sizeof(big));
    n = client_frame(f, 1, SP_WS_OP_TEXT, big, 200);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(sp_ws_proto_feed(p, f + i, 1), 0);
        cr_assert_eq(sp_ws_proto_has_ctx(p), i + 1 < n);
    }
    cr_assert_eq(s.n_msgs, 4);
    cr_assert_eq(s.last_len, 200);
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}

Test(ws_glue, two_messages_in_one_chunk)
{
    sink_t s;
    uint8_t f[64];
    sp_ws_proto_t *p = mk(&s, 1024);
    size_t n = client_frame(f, 1, SP_WS_OP_TEXT, "one", 3);
    n += client_frame(f + n, 1, SP_WS_OP_TEXT, "two", 3);
    cr_assert_eq(sp_ws_proto_feed(p, f, n), 0);
    cr_assert_eq(s.n_msgs, 2);
    cr_assert_eq(memcmp(s.last, "two", 3), 0);
    cr_assert_not(sp_ws_proto_has_ctx(p));
    sp_ws_proto_free(p);
    sp_buf_cleanup(&s.out);
}
