/*
 * sp_ws_client against a scripted WebSocket server on 127.0.0.1:0 in the same
 * loop. The server is raw uv_tcp: it answers the handshake as the test asks
 * (good, wrong accept, 404, silent), parses the client's frames itself (so it
 * can check the mask bit, see pongs and pings, and choose not to answer), and
 * sends frames built with sp_ws_frame_header(). For wss:// the server speaks
 * TLS through OpenSSL memory BIOs with a self-signed certificate generated
 * here. One test runs against the project's own server (sp_http + sp_ws hub).
 * The pure parts (options, handshake parser, request builder) are tested in
 * test_ws_client_hs.c.
 */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "net/sp_http.h"
#include "net/sp_router.h"
#include "net/sp_ws.h"
#include "net/sp_ws_client.h"
#include "net/sp_ws_proto.h"

enum { HS_OK, HS_BAD_ACCEPT, HS_404, HS_SILENT, HS_NO_UPGRADE };
enum {
    SC_ECHO,     /* echo text back */
    SC_PING,     /* send ping "abc"; on pong send close 1000 */
    SC_BIG,      /* send a 2000-byte text */
    SC_CLOSE,    /* send close 4001 "bye now" */
    SC_DROP,     /* close TCP right after the 101 */
    SC_FRAG,     /* one text in three fragments, then echo */
    SC_TWO,      /* two texts in the same write as the 101 */
    SC_MUTE,     /* never answer anything (pings, close) */
    SC_MASKED,   /* a masked frame from the server: protocol error */
    SC_CTLFRAG,  /* a control frame without FIN: protocol error */
    SC_BADUTF8,  /* a text message that is not UTF-8 */
};

typedef struct {
    uv_loop_t loop;
    uv_tcp_t lis, conn;
    uv_timer_t guard;
    int port;
    int hs, script;
    sp_buf_t in;
    bool upgraded, conn_open;
    char req[4096];
    /* server saw */
    int srv_close_code;
    char srv_close_reason[128];
    char srv_text[256];
    int srv_texts, srv_pongs, srv_pings, srv_unmasked;
    char srv_pong[32];
    /* client */
    sp_ws_client_t *cl;
    sp_ws_client_opts_t o;
    int opened, errors, err, closes, close_code, msgs;
    char close_reason[128];
    char msg[4096];
    size_t msg_len;
    bool msg_binary;
    int free_in; /* 0 none, 1 on_open, 2 first on_message */
    int close_on_open; /* client starts close(close_with ?: 1000, reason ?: "done") in on_open */
    uint16_t close_with;
    const char *close_reason_send;
    const char *send_on_open;
    /* wss: the server's TLS end */
    SSL_CTX *sctx;
    SSL *ssl;
    BIO *rbio, *wbio;
} fx_t;

/* ---- server ------------------------------------------------------------------------ */
static void srv_written(uv_write_t *w, int status)
{
    (void)status;
    sp_free(w);
}

static void srv_raw_write(fx_t *f, const void *p, size_t n)
{
    if (!f->conn_open)
        return;
    uv_write_t *w = sp_malloc(sizeof(*w) + n);
    memcpy(w + 1, p, n);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&f->conn, &b, 1, srv_written) != 0)
        sp_free(w);
}

/* Whatever TLS wants to send goes on the wire. */
static void srv_tls_flush(fx_t *f)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(f->wbio, buf, sizeof(buf))) > 0)
        srv_raw_write(f, buf, (size_t)n);
}

static void srv_write(fx_t *f, const void *p, size_t n)
{
    if (!f->ssl) {
        srv_raw_write(f, p, n);
        return;
    }
    cr_assert_eq(SSL_write(f->ssl, p, (int)n), (int)n);
    srv_tls_flush(f);
}

static void srv_frame(fx_t *f, int fin_op, const void *p, size_t n)
{
    uint8_t h[10];
    size_t hl = sp_ws_frame_header(h, fin_op & 0xF, n);
    if (!(fin_op & 0x100))
        h[0] &= 0x7F; /* not FIN */
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_buf_append(&b, h, hl);
    sp_buf_append(&b, p, n);
    srv_write(f, b.p, b.len);
    sp_buf_cleanup(&b);
}
#define FIN 0x100

static void srv_close_cb(uv_handle_t *h)
{
    (void)h;
}

static void srv_drop(fx_t *f)
{
    if (f->conn_open) {
        f->conn_open = false;
        uv_close((uv_handle_t *)&f->conn, srv_close_cb);
    }
}

static void srv_close_frame(fx_t *f, uint16_t code, const char *reason)
{
    uint8_t p[128] = { (uint8_t)(code >> 8), (uint8_t)code };
    size_t rl = strlen(reason);
    memcpy(p + 2, reason, rl);
    srv_frame(f, FIN | SP_WS_OP_CLOSE, p, 2 + rl);
}

static void srv_on_upgrade(fx_t *f)
{
    static char big[2000];
    switch (f->script) {
    case SC_PING:
        srv_frame(f, FIN | SP_WS_OP_PING, "abc", 3);
        break;
    case SC_BIG:
        memset(big, 'x', sizeof(big));
        srv_frame(f, FIN | SP_WS_OP_TEXT, big, sizeof(big));
        break;
    case SC_CLOSE:
        srv_close_frame(f, 4001, "bye now");
        break;
    case SC_DROP:
        srv_drop(f);
        break;
    case SC_MASKED: {
        const uint8_t fr[] = { 0x81, 0x82, 0, 0, 0, 0, 'h', 'i' };
        srv_write(f, fr, sizeof(fr));
        break;
    }
    case SC_CTLFRAG:
        srv_frame(f, SP_WS_OP_PING, "p", 1);
        break;
    case SC_BADUTF8:
        srv_frame(f, FIN | SP_WS_OP_TEXT, "a\xff", 2);
        break;
    case SC_FRAG:
        srv_frame(f, SP_WS_OP_TEXT, "hel", 3);
        srv_frame(f, FIN | SP_WS_OP_PING, "p", 1); /* a control frame between fragments */
        srv_frame(f, 0, "lo ", 3);
        srv_frame(f, FIN | 0, "world", 5);
        break;
    default:
        break;
    }
}

/* One client frame at the start of p (client frames are masked). Returns its size or 0. */
static size_t srv_parse_frame(fx_t *f, const uint8_t *p, size_t len)
{
    if (len < 2)
        return 0;
    int op = p[0] & 0xF;
    bool masked = p[1] & 0x80;
    uint64_t pl = p[1] & 0x7F;
    size_t off = 2;
    if (pl == 126) {
        if (len < 4)
            return 0;
        pl = ((uint64_t)p[2] << 8) | p[3];
        off = 4;
    } else if (pl == 127) {
        if (len < 10)
            return 0;
        pl = 0;
        for (int i = 0; i < 8; i++)
            pl = (pl << 8) | p[2 + i];
        off = 10;
    }
    const uint8_t *mask = p + off;
    if (masked)
        off += 4;
    if (len < off + pl)
        return 0;
    if (!masked)
        f->srv_unmasked++;
    uint8_t *d = sp_malloc(pl + 1);
    for (uint64_t i = 0; i < pl; i++)
        d[i] = p[off + i] ^ (masked ? mask[i & 3] : 0);
    d[pl] = 0;
    if (op == SP_WS_OP_BINARY && f->script == SC_ECHO) {
        srv_frame(f, FIN | SP_WS_OP_BINARY, d, pl);
    } else if (op == SP_WS_OP_TEXT) {
        f->srv_texts++;
        snprintf(f->srv_text, sizeof(f->srv_text), "%s", (char *)d);
        if (f->script == SC_ECHO || f->script == SC_FRAG)
            srv_frame(f, FIN | SP_WS_OP_TEXT, d, pl);
    } else if (op == SP_WS_OP_PONG) {
        f->srv_pongs++;
        snprintf(f->srv_pong, sizeof(f->srv_pong), "%s", (char *)d);
        if (f->script == SC_PING)
            srv_close_frame(f, 1000, "");
    } else if (op == SP_WS_OP_PING) {
        f->srv_pings++;
    } else if (op == SP_WS_OP_CLOSE) {
        f->srv_close_code = pl >= 2 ? (d[0] << 8) | d[1] : 1005;
        snprintf(f->srv_close_reason, sizeof(f->srv_close_reason), "%s",
                 pl > 2 ? (char *)d + 2 : "");
        if (f->script != SC_MUTE && f->script != SC_CLOSE)
            srv_close_frame(f, (uint16_t)f->srv_close_code, "");
    }
    sp_free(d);
    return off + pl;
}

static void srv_handshake(fx_t *f)
{
    char *e = strstr(f->in.p, "\r\n\r\n");
    if (!e)
        return;
    size_t hl = (size_t)(e + 4 - f->in.p);
    snprintf(f->req, sizeof(f->req), "%.*s", (int)hl, f->in.p);
    char key[64] = "", acc[29] = "";
    const char *k = strcasestr(f->req, "\r\nSec-WebSocket-Key: ");
    if (k)
        sscanf(k + 21, "%63[^\r]", key);
    sp_ws_accept_key(key, acc);
    if (f->hs == HS_BAD_ACCEPT)
        acc[0] = acc[0] == 'A' ? 'B' : 'A';
    sp_buf_consume(&f->in, hl);
    char resp[512];
    int n = 0;
    if (f->hs == HS_SILENT)
        return;
    if (f->hs == HS_404)
        n = snprintf(resp, sizeof(resp), "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!");
    else
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\n%sConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     f->hs == HS_NO_UPGRADE ? "" : "Upgrade: websocket\r\n", acc);
    if (f->script == SC_TWO && f->hs == HS_OK) {
        /* frames in the same packet as the 101 */
        uint8_t fr[] = { 0x81, 3, 'o', 'n', 'e', 0x81, 3, 't', 'w', 'o' };
        memcpy(resp + n, fr, sizeof(fr));
        n += (int)sizeof(fr);
    }
    srv_write(f, resp, (size_t)n);
    f->upgraded = true;
    srv_on_upgrade(f);
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char buf[65536];
    (void)h, (void)hint;
    *b = uv_buf_init(buf, sizeof(buf));
}

static void srv_plain(fx_t *f, const char *p, size_t n)
{
    sp_buf_append(&f->in, p, n);
    if (!f->upgraded)
        srv_handshake(f);
    size_t used;
    while (f->upgraded && f->conn_open && f->in.len &&
           (used = srv_parse_frame(f, (const uint8_t *)f->in.p, f->in.len)) > 0)
        sp_buf_consume(&f->in, used);
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fx_t *f = s->data;
    if (n < 0) {
        srv_drop(f);
        return;
    }
    if (!f->ssl) {
        srv_plain(f, b->base, (size_t)n);
        return;
    }
    BIO_write(f->rbio, b->base, (int)n);
    if (!SSL_is_init_finished(f->ssl)) {
        ERR_clear_error();
        if (SSL_do_handshake(f->ssl) != 1) {
            srv_tls_flush(f); /* an alert, or the next flight */
            ERR_clear_error();
            return;
        }
    }
    char buf[16384];
    int r;
    while (f->conn_open && (r = SSL_read(f->ssl, buf, sizeof(buf))) > 0)
        srv_plain(f, buf, (size_t)r);
    srv_tls_flush(f);
    ERR_clear_error();
}

static void srv_accept(uv_stream_t *s, int status)
{
    fx_t *f = s->data;
    cr_assert_eq(status, 0);
    cr_assert(!f->conn_open, "one connection per test");
    uv_tcp_init(&f->loop, &f->conn);
    f->conn.data = f;
    cr_assert_eq(uv_accept(s, (uv_stream_t *)&f->conn), 0);
    f->conn_open = true;
    if (f->sctx) {
        f->ssl = SSL_new(f->sctx);
        f->rbio = BIO_new(BIO_s_mem());
        f->wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(f->ssl, f->rbio, f->wbio);
        SSL_set_accept_state(f->ssl);
    }
    uv_read_start((uv_stream_t *)&f->conn, srv_alloc, srv_read);
}

/* ---- client callbacks ------------------------------------------------------------- */
static void done(fx_t *f, bool free_client)
{
    if (free_client && f->cl) {
        sp_ws_client_free(f->cl);
        f->cl = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&f->lis))
        uv_close((uv_handle_t *)&f->lis, NULL);
    if (!uv_is_closing((uv_handle_t *)&f->guard))
        uv_close((uv_handle_t *)&f->guard, NULL);
}

static void cl_open(sp_ws_client_t *c, void *ud)
{
    fx_t *f = ud;
    cr_assert_eq(c, f->cl);
    f->opened++;
    if (f->free_in == 1) {
        done(f, true);
        return;
    }
    if (f->send_on_open)
        cr_assert_eq(sp_ws_client_send_text(c, f->send_on_open, strlen(f->send_on_open)), 0);
    if (f->close_on_open)
        sp_ws_client_close(c, f->close_with ? f->close_with : 1000,
                           f->close_reason_send ? f->close_reason_send : "done");
}

static void cl_message(sp_ws_client_t *c, bool binary, const uint8_t *p, size_t len, void *ud)
{
    fx_t *f = ud;
    f->msgs++;
    f->msg_binary = binary;
    f->msg_len = len < sizeof(f->msg) - 1 ? len : sizeof(f->msg) - 1;
    memcpy(f->msg, p, f->msg_len);
    f->msg[f->msg_len] = '\0';
    if (f->free_in == 2) {
        done(f, true);
        return;
    }
    if (f->script == SC_ECHO || f->script == SC_FRAG)
        sp_ws_client_close(c, 1000, "done");
}

static void cl_close(sp_ws_client_t *c, int code, const char *reason, void *ud)
{
    fx_t *f = ud;
    (void)c;
    f->closes++;
    f->close_code = code;
    snprintf(f->close_reason, sizeof(f->close_reason), "%s", reason);
    cr_assert_eq(sp_ws_client_send_text(c, "x", 1), SP_ECLOSED);
    done(f, true); /* freed inside the callback */
}

static void cl_error(sp_ws_client_t *c, int err, void *ud)
{
    fx_t *f = ud;
    (void)c;
    f->errors++;
    f->err = err;
    done(f, true);
}

static void guard_cb(uv_timer_t *t)
{
    (void)t;
    cr_assert_fail("test timed out");
}

static void setup(fx_t *f)
{
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    sp_buf_init(&f->in, 1 << 20);
    uv_tcp_init(&f->loop, &f->lis);
    f->lis.data = f;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    cr_assert_eq(uv_tcp_bind(&f->lis, (struct sockaddr *)&sa, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&f->lis, 8, srv_accept), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uv_tcp_getsockname(&f->lis, (struct sockaddr *)&ss, &sl);
    f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_start(&f->guard, guard_cb, 5000, 0);
    f->o.cbs = (sp_ws_client_cbs_t){ cl_open, cl_message, cl_close, cl_error };
    f->o.ud = f;
    f->o.close_timeout_ms = 300;
    f->o.connect_timeout_ms = 10000; /* TLS under ASan on a loaded 2-cpu machine can take 2 s+ */
}

static void run_url(fx_t *f, const char *url)
{
    f->o.url = url;
    cr_assert_eq(sp_ws_client_new(&f->loop, &f->o, &f->cl), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&f->loop), 0, "every handle closed, client memory released");
    sp_buf_cleanup(&f->in);
    SSL_free(f->ssl);
    SSL_CTX_free(f->sctx);
    ERR_clear_error();
    cr_assert_eq(f->errors + f->closes <= 1, 1, "at most one terminal callback");
}

static void run(fx_t *f, const char *path)
{
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d%s", f->port, path ? path : "/ws");
    run_url(f, url);
}

/* ---- loop tests ------------------------------------------------------------------- */
Test(ws_client, handshake_ok_and_echo_both_ways)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO, .send_on_open = "hello" };
    const char *hdrs[] = { "X-Test: 1", "Authorization: Bearer abc" };
    setup(&f);
    f.o.headers = hdrs;
    f.o.n_headers = 2;
    run(&f, "/ws?x=1");
    cr_assert_eq(f.opened, 1);
    cr_assert_eq(f.errors, 0);
    cr_assert(strstr(f.req, "GET /ws?x=1 HTTP/1.1\r\n") == f.req, "%s", f.req);
    cr_assert(strstr(f.req, "\r\nX-Test: 1\r\n"));
    cr_assert(strstr(f.req, "\r\nSec-WebSocket-Version: 13\r\n"));
    cr_assert(strstr(f.req, "\r\nUpgrade: websocket\r\n"));
    cr_assert_str_eq(f.srv_text, "hello", "client -> server");
    cr_assert_eq(f.srv_unmasked, 0, "client frames are masked");
    cr_assert_eq(f.msgs, 1);
    cr_assert_str_eq(f.msg, "hello", "server -> client");
    cr_assert(!f.msg_binary);
    cr_assert_eq(f.srv_close_code, 1000, "client close handshake");
    cr_assert_str_eq(f.srv_close_reason, "done");
    cr_assert_eq(f.closes, 1);
    cr_assert_eq(f.close_code, 1000);
}

static void open_send_rules(sp_ws_client_t *c, void *ud)
{
    fx_t *f = ud;
    char big[100];
    memset(big, 'a', sizeof(big));
    f->opened++;
    cr_assert(sp_ws_client_is_open(c));
    cr_assert_eq(sp_ws_client_send_text(c, "\xff", 1), SP_EUTF8);
    cr_assert_eq(sp_ws_client_send_text(c, big, sizeof(big)), SP_ETOOBIG, "over max_queue");
    cr_assert_eq(sp_ws_client_send_binary(c, "bi\0nary", 7), 0);
}

Test(ws_client, send_rules_and_binary_echo)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO };
    char url[64];
    setup(&f);
    f.o.max_queue = 64;
    f.o.cbs.on_open = open_send_rules;
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", f.port);
    f.o.url = url;
    cr_assert_eq(sp_ws_client_new(&f.loop, &f.o, &f.cl), 0);
    cr_assert_eq(sp_ws_client_send_text(f.cl, "early", 5), SP_EAGAIN, "before on_open");
    cr_assert(!sp_ws_client_is_open(f.cl));
    uv_run(&f.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&f.loop), 0);
    sp_buf_cleanup(&f.in);
    cr_assert_eq(f.opened, 1);
    cr_assert_eq(f.msgs, 1);
    cr_assert(f.msg_binary);
    cr_assert_eq(f.msg_len, 7);
    cr_assert_eq(memcmp(f.msg, "bi\0nary", 7), 0);
    cr_assert_eq(f.srv_unmasked, 0);
    cr_assert_eq(f.close_code, 1000);
}

Test(ws_client, bad_accept_rejected)
{
    fx_t f = { .hs = HS_BAD_ACCEPT, .script = SC_ECHO };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.opened, 0);
    cr_assert_eq(f.errors, 1);
    cr_assert_eq(f.err, SP_EPROTO);
}

Test(ws_client, missing_upgrade_rejected)
{
    fx_t f = { .hs = HS_NO_UPGRADE, .script = SC_ECHO };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.opened, 0);
    cr_assert_eq(f.err, SP_EPROTO);
}

static int g_status;
static void err_keep_status(sp_ws_client_t *c, int err, void *ud)
{
    g_status = sp_ws_client_http_status(c);
    cl_error(c, err, ud);
}

Test(ws_client, non_101_rejected)
{
    fx_t f = { .hs = HS_404, .script = SC_ECHO };
    setup(&f);
    f.o.cbs.on_error = err_keep_status;
    run(&f, NULL);
    cr_assert_eq(f.opened, 0);
    cr_assert_eq(f.err, SP_EUPSTREAM);
    cr_assert_eq(g_status, 404);
}

Test(ws_client, handshake_timeout)
{
    fx_t f = { .hs = HS_SILENT, .script = SC_MUTE };
    setup(&f);
    f.o.connect_timeout_ms = 150;
    run(&f, NULL);
    cr_assert_eq(f.opened, 0);
    cr_assert_eq(f.err, SP_ETIMEDOUT);
}

Test(ws_client, connection_refused)
{
    fx_t f = { 0 };
    setup(&f);
    uv_close((uv_handle_t *)&f.lis, NULL); /* nobody listens on the port any more */
    uv_run(&f.loop, UV_RUN_NOWAIT);
    run(&f, NULL);
    cr_assert_eq(f.errors, 1);
    cr_assert_eq(f.err, UV_ECONNREFUSED);
}

Test(ws_client, close_before_open_is_canceled)
{
    fx_t f = { .hs = HS_SILENT, .script = SC_MUTE };
    setup(&f);
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", f.port);
    f.o.url = url;
    cr_assert_eq(sp_ws_client_new(&f.loop, &f.o, &f.cl), 0);
    sp_ws_client_close(f.cl, 1000, NULL);
    cr_assert_eq(f.errors, 0, "never from inside the call");
    uv_run(&f.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&f.loop), 0);
    sp_buf_cleanup(&f.in);
    cr_assert_eq(f.errors, 1);
    cr_assert_eq(f.err, SP_ECANCELED);
}

Test(ws_client, frames_in_same_packet_as_101)
{
    fx_t f = { .hs = HS_OK, .script = SC_TWO, .free_in = 2 };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.opened, 1);
    cr_assert_eq(f.msgs, 1, "freed inside the first on_message: nothing after it");
    cr_assert_str_eq(f.msg, "one");
    cr_assert_eq(f.closes, 0);
}

Test(ws_client, free_inside_on_open)
{
    fx_t f = { .hs = HS_OK, .script = SC_TWO, .free_in = 1 };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.opened, 1);
    cr_assert_eq(f.msgs, 0);
    cr_assert_eq(f.closes + f.errors, 0);
}

Test(ws_client, message_over_cap_closes_1009)
{
    fx_t f = { .hs = HS_OK, .script = SC_BIG };
    setup(&f);
    f.o.max_message = 1024;
    run(&f, NULL);
    cr_assert_eq(f.opened, 1);
    cr_assert_eq(f.msgs, 0);
    cr_assert_eq(f.closes, 1);
    cr_assert_eq(f.close_code, 1009);
    cr_assert_eq(f.srv_close_code, 1009, "the server was told");
}

Test(ws_client, server_ping_gets_pong)
{
    fx_t f = { .hs = HS_OK, .script = SC_PING };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.srv_pongs, 1);
    cr_assert_str_eq(f.srv_pong, "abc", "pong echoes the ping payload");
    cr_assert_eq(f.srv_unmasked, 0);
    cr_assert_eq(f.close_code, 1000);
}

Test(ws_client, server_close_reports_code_and_reason)
{
    fx_t f = { .hs = HS_OK, .script = SC_CLOSE };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.closes, 1);
    cr_assert_eq(f.close_code, 4001);
    cr_assert_str_eq(f.close_reason, "bye now");
    cr_assert_eq(f.srv_close_code, 4001, "close echoed to the server");
}

Test(ws_client, protocol_errors_close_1002)
{
    int scripts[] = { SC_MASKED, SC_CTLFRAG };
    for (size_t i = 0; i < 2; i++) {
        fx_t f = { .hs = HS_OK, .script = scripts[i] };
        setup(&f);
        run(&f, NULL);
        cr_assert_eq(f.opened, 1);
        cr_assert_eq(f.msgs, 0);
        cr_assert_eq(f.closes, 1);
        cr_assert_eq(f.close_code, 1002, "script %d", scripts[i]);
        cr_assert_neq(f.srv_close_code, 0, "a close frame was sent");
    }
}

Test(ws_client, invalid_utf8_text_closes_1007)
{
    fx_t f = { .hs = HS_OK, .script = SC_BADUTF8 };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.msgs, 0);
    cr_assert_eq(f.close_code, 1007);
    cr_assert_eq(f.srv_close_code, 1007);
}

Test(ws_client, close_code_and_reason_sanitized)
{
    char reason[200];
    memset(reason, 'r', sizeof(reason));
    reason[sizeof(reason) - 1] = '\0';
    memcpy(reason + 122, "\xc3\xa9", 2); /* a 2-byte character across the 123-byte limit */
    fx_t f = { .hs = HS_OK, .script = SC_ECHO, .close_on_open = 1, .close_with = 4000,
               .close_reason_send = reason };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.srv_close_code, 4000);
    cr_assert_eq(strlen(f.srv_close_reason), 122, "cut before the split character");
    fx_t g = { .hs = HS_OK, .script = SC_ECHO, .close_on_open = 1, .close_with = 1006 };
    setup(&g);
    run(&g, NULL);
    cr_assert_eq(g.srv_close_code, 1000, "1006 never goes on the wire");
    cr_assert_eq(g.close_code, 1000);
}

Test(ws_client, server_drop_is_1006)
{
    fx_t f = { .hs = HS_OK, .script = SC_DROP };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.opened, 1);
    cr_assert_eq(f.closes, 1);
    cr_assert_eq(f.close_code, 1006);
}

Test(ws_client, client_close_without_reply_times_out_1006)
{
    fx_t f = { .hs = HS_OK, .script = SC_MUTE, .close_on_open = 1 };
    setup(&f);
    f.o.close_timeout_ms = 100;
    run(&f, NULL);
    cr_assert_eq(f.srv_close_code, 1000);
    cr_assert_str_eq(f.srv_close_reason, "done");
    cr_assert_eq(f.close_code, 1006);
    cr_assert_str_eq(f.close_reason, "close timeout");
}

Test(ws_client, client_close_handshake)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO, .close_on_open = 1 };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.srv_close_code, 1000);
    cr_assert_eq(f.closes, 1);
    cr_assert_eq(f.close_code, 1000);
}

Test(ws_client, fragmented_message_reassembled)
{
    fx_t f = { .hs = HS_OK, .script = SC_FRAG };
    setup(&f);
    run(&f, NULL);
    cr_assert_eq(f.msgs, 1);
    cr_assert_str_eq(f.msg, "hello world");
    cr_assert_eq(f.close_code, 1000);
}

Test(ws_client, unanswered_pings_drop_1006)
{
    fx_t f = { .hs = HS_OK, .script = SC_MUTE };
    setup(&f);
    f.o.ping_interval_ms = 40;
    run(&f, NULL);
    cr_assert_geq(f.srv_pings, 1, "client pinged");
    cr_assert_eq(f.close_code, 1006);
    cr_assert_str_eq(f.close_reason, "ping timeout");
}

/* ---- against the project's own server (sp_http + sp_ws hub, wslay in server mode) ---- */
typedef struct {
    uv_loop_t loop;
    uv_timer_t guard;
    sp_router_t *router;
    sp_http_server_t *http;
    sp_ws_hub_t *hub;
    sp_ws_client_t *cl;
    int srv_close, srv_texts, opened, closes, close_code, ends;
    char msg[64];
} hx_t;

static void hx_end(hx_t *h)
{
    if (++h->ends < 2) /* both the hub's on_close and the client's */
        return;
    sp_ws_client_free(h->cl);
    sp_ws_hub_free(h->hub);
    sp_http_server_free(h->http);
    uv_close((uv_handle_t *)&h->guard, NULL);
}

static bool hub_text(sp_ws_conn_t *c, const char *msg, size_t len, void *ud)
{
    hx_t *h = ud;
    h->srv_texts++;
    cr_assert_eq(sp_ws_conn_send_text(c, msg, len), 0);
    return true;
}

static void hub_close(sp_ws_conn_t *c, int code, void *ud)
{
    hx_t *h = ud;
    (void)c;
    h->srv_close = code;
    hx_end(h);
}

static const sp_ws_handlers_t HUB_H = { .on_text = hub_text, .on_close = hub_close };

static void hub_route(sp_http_req_t *req, void *ud)
{
    hx_t *h = ud;
    sp_ws_handle_upgrade(h->hub, req, &HUB_H, h);
}

static void hub_auth(sp_http_req_t *req, sp_ws_auth_t *a, void *ud)
{
    (void)req, (void)ud;
    sp_ws_auth_done(a, 0, "u1", 0);
}

static void hx_open(sp_ws_client_t *c, void *ud)
{
    hx_t *h = ud;
    h->opened++;
    cr_assert_eq(sp_ws_client_send_text(c, "{\"type\":\"hi\"}", 13), 0);
}

static void hx_message(sp_ws_client_t *c, bool binary, const uint8_t *p, size_t len, void *ud)
{
    hx_t *h = ud;
    cr_assert(!binary);
    snprintf(h->msg, sizeof(h->msg), "%.*s", (int)len, (const char *)p);
    sp_ws_client_close(c, 1000, "bye");
}

static void hx_close(sp_ws_client_t *c, int code, const char *reason, void *ud)
{
    hx_t *h = ud;
    (void)c, (void)reason;
    h->closes++;
    h->close_code = code;
    hx_end(h);
}

static void hx_error(sp_ws_client_t *c, int err, void *ud)
{
    (void)c, (void)ud;
    cr_assert_fail("client error %d", err);
}

Test(ws_client, interop_with_own_server_hub)
{
    hx_t h = { 0 };
    cr_assert_eq(uv_loop_init(&h.loop), 0);
    uv_timer_init(&h.loop, &h.guard);
    uv_timer_start(&h.guard, guard_cb, 5000, 0);
    h.router = sp_router_new();
    sp_route_opts_t ro = { 0 };
    sp_router_add(h.router, "GET", "/socket", hub_route, &h, &ro);
    sp_http_opts_t ho = { .listen = "127.0.0.1:0", .max_connections = 4, .max_header_bytes = 16384,
                          .default_body_limit = 65536, .header_timeout_ms = 5000,
                          .idle_timeout_ms = 5000, .server_name = "t" };
    h.http = sp_http_server_new(&h.loop, &ho, h.router);
    cr_assert_eq(sp_http_server_listen(h.http), 0);
    sp_ws_opts_t wo = { .public_url = "http://localhost:1" };
    h.hub = sp_ws_hub_new(&h.loop, &wo);
    sp_ws_hub_set_auth(h.hub, hub_auth, &h);
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/socket", sp_http_server_port(h.http));
    sp_ws_client_opts_t o = { .url = url, .cbs = { hx_open, hx_message, hx_close, hx_error },
                              .ud = &h };
    cr_assert_eq(sp_ws_client_new(&h.loop, &o, &h.cl), 0);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&h.loop), 0);
    sp_router_free(h.router);
    cr_assert_eq(h.opened, 1);
    cr_assert_eq(h.srv_texts, 1, "the server's wslay accepted our masked frame");
    cr_assert_str_eq(h.msg, "{\"type\":\"hi\"}");
    cr_assert_eq(h.srv_close, 1000);
    cr_assert_eq(h.closes, 1);
    cr_assert_eq(h.close_code, 1000);
}

/* ---- wss:// ------------------------------------------------------------------------ */
/* A self-signed CA certificate for "localhost" only (no IP name), written to ca_path. */
static void make_cert(EVP_PKEY **key, X509 **cert, char *ca_path, size_t cap)
{
    *key = EVP_EC_gen("P-256");
    cr_assert_not_null(*key);
    X509 *x = *cert = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, *key);
    const char *ext[][2] = { { "basicConstraints", "critical,CA:TRUE" },
                             { "subjectAltName", "DNS:localhost" } };
    for (size_t i = 0; i < 2; i++) {
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, ext[i][0], ext[i][1]);
        cr_assert_not_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    cr_assert(X509_sign(x, *key, EVP_sha256()) > 0);
    snprintf(ca_path, cap, "/tmp/sp_test_wsc_XXXXXX");
    int fd = mkstemp(ca_path);
    cr_assert(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    cr_assert(PEM_write_X509(fp, x) == 1);
    fclose(fp);
}

/* Runs one wss:// client against the TLS server: trust 0 system store, 1 CA file, 2 shared ctx. */
static void run_wss(fx_t *f, const char *host, int trust)
{
    sp_tls_ctx_t *shared = NULL;
    EVP_PKEY *key;
    X509 *cert;
    char ca[64], url[128];
    make_cert(&key, &cert, ca, sizeof(ca));
    f->sctx = SSL_CTX_new(TLS_server_method());
    cr_assert(SSL_CTX_use_certificate(f->sctx, cert) == 1);
    cr_assert(SSL_CTX_use_PrivateKey(f->sctx, key) == 1);
    f->o.ca_file = trust == 1 ? ca : NULL;
    if (trust == 2)
        cr_assert_eq(sp_tls_ctx_create(ca, &shared), 0);
    f->o.tls_ctx = shared;
    snprintf(url, sizeof(url), "wss://%s:%d/ws", host, f->port);
    run_url(f, url);
    sp_tls_ctx_free(shared);
    unlink(ca);
    X509_free(cert);
    EVP_PKEY_free(key);
}

Test(ws_client, wss_echo_with_ca_file)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO, .send_on_open = "over tls" };
    setup(&f);
    run_wss(&f, "localhost", 1);
    cr_assert_eq(f.errors, 0, "err %d", f.err);
    cr_assert_eq(f.opened, 1);
    cr_assert(strstr(f.req, "\r\nHost: localhost:"), "%s", f.req);
    cr_assert_str_eq(f.srv_text, "over tls");
    cr_assert_str_eq(f.msg, "over tls");
    cr_assert_eq(f.srv_close_code, 1000);
    cr_assert_eq(f.close_code, 1000);
}

Test(ws_client, wss_with_shared_tls_context)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO, .send_on_open = "shared" };
    setup(&f);
    run_wss(&f, "localhost", 2);
    cr_assert_eq(f.errors, 0, "err %d", f.err);
    cr_assert_str_eq(f.msg, "shared");
    cr_assert_eq(f.close_code, 1000);
}

Test(ws_client, wss_untrusted_certificate_rejected)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO };
    setup(&f);
    run_wss(&f, "localhost", 0);
    cr_assert_eq(f.opened, 0);
    cr_assert_eq(f.errors, 1);
    cr_assert_eq(f.err, SP_ECRYPTO);
}

Test(ws_client, wss_host_name_mismatch_rejected)
{
    fx_t f = { .hs = HS_OK, .script = SC_ECHO };
    setup(&f);
    run_wss(&f, "127.0.0.1", 1); /* trusted, but the certificate names only localhost */
    cr_assert_eq(f.opened, 0);
    cr_assert_eq(f.errors, 1);
    cr_assert_eq(f.err, SP_ECRYPTO);
}
