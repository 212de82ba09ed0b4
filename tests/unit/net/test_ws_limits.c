/*
 * sp_ws limits and credential-tagged closing over a real sp_http server on 127.0.0.1:0:
 *   - max_per_user: one socket more for a user is 503 too_many_sockets before the upgrade;
 *   - upgraded sockets stay in the HTTP server's max_connections (a plain request is 503);
 *   - sp_ws_hub_close_cred closes exactly the sockets opened with that credential (4001),
 *     sp_ws_hub_close_if the ones a predicate picks; the others stay open;
 *   - a socket whose credential expires (sp_ws_auth_set_expiry) is closed 4001.
 * The client runs in a thread with blocking sockets; the loop runs here.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/sp_time.h"
#include "net/sp_http.h"
#include "net/sp_router.h"
#include "net/sp_ws.h"

typedef struct {
    uv_loop_t loop;
    sp_router_t *router;
    sp_http_server_t *http;
    sp_ws_hub_t *hub;
    uv_async_t step, done;
    int port;
    /* client results */
    int status[5];
    char body[5][256];
    int close_s1, close_b, close_s2;
    /* loop results */
    size_t count_a, closed_cred, closed_if, closed_none;
    char cred_seen[64];
    int close_expiring, close_lasting;
    long expiry_ms; /* how long after the open the expiring socket was closed */
} fx_t;

static bool on_text(sp_ws_conn_t *c, const char *msg, size_t len, void *ud)
{
    (void)c, (void)msg, (void)len, (void)ud;
    return true;
}

static const sp_ws_handlers_t H = {.on_text = on_text};

static void route(sp_http_req_t *req, void *ud)
{
    fx_t *f = ud;
    sp_ws_handle_upgrade(f->hub, req, &H, f);
}

/* ?u=USER&s=SESSION: accepted at once as USER, tagged sid:SESSION */
static void auth(sp_http_req_t *req, sp_ws_auth_t *a, void *ud)
{
    char u[32], s[32], e[16];
    (void)ud;
    if (!sp_http_req_query_param(req, "u", u, sizeof(u)) ||
        !sp_http_req_query_param(req, "s", s, sizeof(s))) {
        sp_ws_auth_done(a, 401, NULL, 0);
        return;
    }
    sp_ws_auth_set_cred(a, "sid", s);
    if (sp_http_req_query_param(req, "e", e, sizeof(e))) /* expires e ms from now */
        sp_ws_auth_set_expiry(a, sp_wall_ms() + strtol(e, NULL, 10));
    sp_ws_auth_done(a, 0, u, 0);
}

static bool is_user_b(const sp_ws_conn_t *c, void *ud)
{
    fx_t *f = ud;
    const char *cred = sp_ws_conn_cred(c);
    if (cred && strcmp(cred, "sid:s9") == 0)
        snprintf(f->cred_seen, sizeof(f->cred_seen), "%s", cred);
    return sp_ws_conn_user(c) && strcmp(sp_ws_conn_user(c), "B") == 0;
}

static void step_cb(uv_async_t *as)
{
    fx_t *f = as->data;
    f->count_a = sp_ws_hub_user_count(f->hub, "A");
    f->closed_none = sp_ws_hub_close_cred(f->hub, "sid", "nope", NULL, 4001, "revoked");
    f->closed_cred = sp_ws_hub_close_cred(f->hub, "sid", "s1", NULL, 4001, "session revoked");
    f->closed_if = sp_ws_hub_close_if(f->hub, is_user_b, f, 4002, "picked");
}

static void done_cb(uv_async_t *as)
{
    fx_t *f = as->data;
    sp_ws_hub_free(f->hub);
    sp_http_server_free(f->http);
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->step, NULL);
}

static ssize_t read_some(int fd, char *buf, size_t cap)
{
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return recv(fd, buf, cap, 0);
}

/* Sends a request; returns the fd and fills status and the text after the head. */
static int request(fx_t *f, const char *path, bool upgrade, int *status, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return fd;
    char req[512];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path,
             upgrade ? "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     : "");
    send(fd, req, strlen(req), 0);
    char buf[2048];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof(buf) - 1 && (n = read_some(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
        have += (size_t)n;
        buf[have] = '\0';
        char *e = strstr(buf, "\r\n\r\n");
        if (!e)
            continue;
        sscanf(buf, "HTTP/1.1 %d", status);
        if (*status != 101 && !strstr(e, "}"))
            continue; /* the JSON error body is on its way */
        snprintf(body, cap, "%s", e + 4);
        break;
    }
    return fd;
}

/* The close code of the next close frame on fd (0 if none within 3 s). */
static int read_close(int fd)
{
    unsigned char buf[256];
    ssize_t n = read_some(fd, (char *)buf, sizeof(buf));
    if (n >= 4 && buf[0] == 0x88)
        return (buf[2] << 8) | buf[3];
    return 0;
}

static void *client(void *arg)
{
    fx_t *f = arg;
    int s1 = request(f, "/socket?u=A&s=s1", true, &f->status[0], f->body[0], sizeof(f->body[0]));
    int s2 = request(f, "/socket?u=A&s=s2", true, &f->status[1], f->body[1], sizeof(f->body[1]));
    int s3 = request(f, "/socket?u=A&s=s3", true, &f->status[2], f->body[2], sizeof(f->body[2]));
    close(s3); /* a refused upgrade is an HTTP connection: gone before B connects */
    usleep(200 * 1000);
    int b = request(f, "/socket?u=B&s=s9", true, &f->status[3], f->body[3], sizeof(f->body[3]));
    /* 3 sockets are open and max_connections is 3: a plain request is refused */
    int h = request(f, "/other", false, &f->status[4], f->body[4], sizeof(f->body[4]));
    uv_async_send(&f->step);
    f->close_s1 = read_close(s1);
    f->close_b = read_close(b);
    /* s2 stays open: nothing arrives (a 1 s wait is enough to see no close frame) */
    struct timeval tv = {1, 0};
    setsockopt(s2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    unsigned char c;
    f->close_s2 = recv(s2, &c, 1, 0) > 0 ? c : 0;
    close(s1);
    close(s2);
    close(b);
    close(h);
    uv_async_send(&f->done);
    return NULL;
}

static void *client_expiry(void *arg)
{
    fx_t *f = arg;
    int64_t t0 = sp_wall_ms();
    int s1 = request(f, "/socket?u=C&s=s5&e=300", true, &f->status[0], f->body[0],
                     sizeof(f->body[0]));
    int s2 = request(f, "/socket?u=C&s=s6", true, &f->status[1], f->body[1], sizeof(f->body[1]));
    f->close_expiring = read_close(s1);
    f->expiry_ms = (long)(sp_wall_ms() - t0);
    struct timeval tv = {1, 0};
    setsockopt(s2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    unsigned char c;
    f->close_lasting = recv(s2, &c, 1, 0) > 0 ? c : 0;
    close(s1);
    close(s2);
    uv_async_send(&f->done);
    return NULL;
}

static void run(fx_t *f, void *(*fn)(void *))
{
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    f->router = sp_router_new();
    sp_route_opts_t ro = {0};
    sp_router_add(f->router, "GET", "/socket", route, f, &ro);
    sp_http_opts_t ho = {.listen = "127.0.0.1:0", .max_connections = 3,
                         .max_header_bytes = 16384, .default_body_limit = 65536,
                         .header_timeout_ms = 5000, .idle_timeout_ms = 5000, .server_name = "t"};
    f->http = sp_http_server_new(&f->loop, &ho, f->router);
    cr_assert_eq(sp_http_server_listen(f->http), 0);
    f->port = sp_http_server_port(f->http);
    sp_ws_opts_t wo = {.public_url = "http://localhost:1", .max_per_user = 2};
    f->hub = sp_ws_hub_new(&f->loop, &wo);
    sp_ws_hub_set_auth(f->hub, auth, f);
    uv_async_init(&f->loop, &f->step, step_cb);
    uv_async_init(&f->loop, &f->done, done_cb);
    f->step.data = f->done.data = f;
    pthread_t th;
    pthread_create(&th, NULL, fn, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&f->loop), 0);
    sp_router_free(f->router);
}

Test(ws_limits, expired_credential_closes_4001)
{
    fx_t f;
    memset(&f, 0, sizeof(f));
    run(&f, client_expiry);
    cr_assert_eq(f.status[0], 101);
    cr_assert_eq(f.status[1], 101);
    cr_assert_eq(f.close_expiring, 4001);
    cr_assert(f.expiry_ms >= 250 && f.expiry_ms < 2900, "closed after %ld ms", f.expiry_ms);
    cr_assert_eq(f.close_lasting, 0, "a socket without an end stays open");
}

Test(ws_limits, per_user_limit_budget_and_close_by_credential)
{
    fx_t f;
    memset(&f, 0, sizeof(f));
    run(&f, client);

    cr_assert_eq(f.status[0], 101);
    cr_assert_eq(f.status[1], 101);
    cr_assert_eq(f.status[2], 503, "third socket of A: %d", f.status[2]);
    cr_assert(strstr(f.body[2], "too_many_sockets"), "body: %s", f.body[2]);
    cr_assert_eq(f.status[3], 101, "another user is not limited by A's sockets");
    cr_assert_eq(f.status[4], 503, "upgraded sockets count in max_connections: %d", f.status[4]);
    cr_assert(strstr(f.body[4], "too_many_connections"), "body: %s", f.body[4]);
    cr_assert_eq(f.count_a, 2);
    cr_assert_eq(f.closed_none, 0);
    cr_assert_eq(f.closed_cred, 1);
    cr_assert_eq(f.closed_if, 1);
    cr_assert_str_eq(f.cred_seen, "sid:s9");
    cr_assert_eq(f.close_s1, 4001);
    cr_assert_eq(f.close_b, 4002);
    cr_assert_eq(f.close_s2, 0, "a socket of another credential stays open");
}
