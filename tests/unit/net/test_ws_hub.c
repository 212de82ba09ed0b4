/*
 * sp_ws hub over a real sp_http server on 127.0.0.1:0: the auth hook (async
 * accept with a user id, reject with 401), read-only sockets, and the
 * broadcast path sharing one rbuf. The client runs in a thread with blocking
 * sockets; the loop runs here.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "net/sp_http.h"
#include "net/sp_router.h"
#include "net/sp_ws.h"

typedef struct {
    uv_loop_t loop;
    sp_router_t *router;
    sp_http_server_t *http;
    sp_ws_hub_t *hub;
    uv_async_t done;
    int port;
    /* what the client saw */
    int status;
    int close_code;
    char text[256];
    /* what the server saw */
    char user[64];
    int opened;
    int auth_calls;
    /* auth behaviour */
    int auth_mode; /* 0 accept async with "u1", 1 reject 401, 2 accept read-only, 3 no hook */
    uv_timer_t auth_timer;
    sp_ws_auth_t *pending;
    /* client script */
    int send_frame;
} fx_t;

static fx_t *FX;

static void on_open(sp_ws_conn_t *c, void *ud)
{
    fx_t *f = ud;
    const char *u = sp_ws_conn_user(c);
    snprintf(f->user, sizeof(f->user), "%s", u ? u : "");
    f->opened++;
    /* one broadcast frame shared by every socket */
    sp_rbuf_t *r = sp_ws_frame_encode(SP_WS_OP_TEXT, "hello", 5);
    sp_ws_hub_broadcast(f->hub, r);
    cr_assert_eq(r->refs, 2, "queued by reference, not copied");
    sp_rbuf_unref(r);
}

static bool on_text(sp_ws_conn_t *c, const char *msg, size_t len, void *ud)
{
    (void)c, (void)msg, (void)len, (void)ud;
    return true;
}

static const sp_ws_handlers_t H = { .on_open = on_open, .on_text = on_text };

static void route(sp_http_req_t *req, void *ud)
{
    fx_t *f = ud;
    sp_ws_handle_upgrade(f->hub, req, &H, f);
}

static void auth_later(uv_timer_t *t)
{
    fx_t *f = t->data;
    if (f->auth_mode == 1)
        sp_ws_auth_done(f->pending, 401, NULL, 0);
    else
        sp_ws_auth_done(f->pending, 0, "u1", f->auth_mode == 2 ? SP_WS_READONLY : 0);
}

static void auth(sp_http_req_t *req, sp_ws_auth_t *a, void *ud)
{
    fx_t *f = ud;
    (void)req;
    f->auth_calls++;
    f->pending = a;
    uv_timer_start(&f->auth_timer, auth_later, 10, 0); /* decided asynchronously */
}

static void stop_cb(uv_async_t *a)
{
    fx_t *f = a->data;
    sp_ws_hub_free(f->hub);
    sp_http_server_free(f->http);
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->auth_timer, NULL);
}

static ssize_t read_some(int fd, char *buf, size_t cap)
{
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return recv(fd, buf, cap, 0);
}

static void *client(void *arg)
{
    fx_t *f = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)f->port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        char req[512];
        snprintf(req, sizeof(req),
                 "GET /socket%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                 f->auth_mode == 3 ? "?test_user=u1" : "");
        send(fd, req, strlen(req), 0);
        char buf[4096];
        size_t have = 0;
        ssize_t n;
        while (have < sizeof(buf) - 1 && (n = read_some(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
            have += (size_t)n;
            buf[have] = '\0';
            char *e = strstr(buf, "\r\n\r\n");
            if (!e)
                continue;
            sscanf(buf, "HTTP/1.1 %d", &f->status);
            if (f->status != 101)
                break;
            size_t off = (size_t)(e + 4 - buf);
            /* the broadcast frame: 0x81 0x05 hello */
            while (have < off + 7 && (n = read_some(fd, buf + have, sizeof(buf) - 1 - have)) > 0)
                have += (size_t)n;
            if (have >= off + 7 && (uint8_t)buf[off] == 0x81 && buf[off + 1] == 5)
                memcpy(f->text, buf + off + 2, 5);
            if (f->send_frame) {
                /* masked text "hi" (mask 0) */
                const char fr[] = { (char)0x81, (char)0x82, 0, 0, 0, 0, 'h', 'i' };
                send(fd, fr, sizeof(fr), 0);
                n = read_some(fd, buf, sizeof(buf));
                if (n >= 4 && (uint8_t)buf[0] == 0x88)
                    f->close_code = ((uint8_t)buf[2] << 8) | (uint8_t)buf[3];
            }
            break;
        }
    }
    close(fd);
    uv_async_send(&f->done);
    return NULL;
}

static void run(fx_t *f)
{
    FX = f;
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    f->router = sp_router_new();
    sp_route_opts_t ro = { 0 };
    sp_router_add(f->router, "GET", "/socket", route, f, &ro);
    sp_http_opts_t ho = { .listen = "127.0.0.1:0", .max_connections = 16, .max_header_bytes = 16384,
                          .default_body_limit = 65536, .header_timeout_ms = 5000,
                          .idle_timeout_ms = 5000, .server_name = "t" };
    f->http = sp_http_server_new(&f->loop, &ho, f->router);
    cr_assert_eq(sp_http_server_listen(f->http), 0);
    f->port = sp_http_server_port(f->http);
    sp_ws_opts_t wo = { .public_url = "http://localhost:1", .test_mode = f->auth_mode == 3 };
    f->hub = sp_ws_hub_new(&f->loop, &wo);
    if (f->auth_mode != 3)
        sp_ws_hub_set_auth(f->hub, auth, f);
    uv_timer_init(&f->loop, &f->auth_timer);
    f->auth_timer.data = f;
    uv_async_init(&f->loop, &f->done, stop_cb);
    f->done.data = f;
    pthread_t th;
    pthread_create(&th, NULL, client, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&f->loop), 0);
    sp_router_free(f->router);
}

Test(ws_hub, auth_async_accept_sets_user)
{
    fx_t f = { .auth_mode = 0 };
    run(&f);
    cr_assert_eq(f.auth_calls, 1);
    cr_assert_eq(f.status, 101);
    cr_assert_eq(f.opened, 1);
    cr_assert_str_eq(f.user, "u1");
    cr_assert_str_eq(f.text, "hello");
}

Test(ws_hub, auth_reject_is_401_without_upgrade)
{
    fx_t f = { .auth_mode = 1 };
    run(&f);
    cr_assert_eq(f.auth_calls, 1);
    cr_assert_eq(f.status, 401);
    cr_assert_eq(f.opened, 0);
}

Test(ws_hub, readonly_socket_message_closes_1008)
{
    fx_t f = { .auth_mode = 2, .send_frame = 1 };
    run(&f);
    cr_assert_eq(f.status, 101);
    cr_assert_eq(f.close_code, 1008);
}

Test(ws_hub, no_auth_hook_fails_closed)
{
    /* no hook: 401 before the upgrade, even in test mode with ?test_user= */
    fx_t f = { .auth_mode = 3 };
    run(&f);
    cr_assert_eq(f.auth_calls, 0);
    cr_assert_eq(f.status, 401);
    cr_assert_eq(f.opened, 0);
}
