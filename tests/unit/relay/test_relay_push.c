/*
 * Unit tests for the relay's output connections (sp_rtmp_push): destination URLs
 * are parsed by the shared strict parser (net/sp_dest_url), and every resolved
 * address is checked against the destination policy on every connect and
 * reconnect, before any connect(2). The resolver and the TCP connect are
 * injected: no DNS, no socket leaves the process.
 */
#include <criterion/criterion.h>
#include <netdb.h>
#include <string.h>

#include "core/sp_err.h"
#include "relay/sp_relay_int.h"
#include "relay/sp_rtmp_push.h"

/* ---- the injected resolver: answers from a script, asynchronously (next loop turn) ---- */

typedef struct {
    const char *answers[4][3]; /* per call: up to 3 numeric addresses */
    int calls;
    char node[256];
    uv_timer_t timer;
    uv_getaddrinfo_t *req;
    uv_getaddrinfo_cb cb;
    struct addrinfo *res;
} fake_dns_t;

static fake_dns_t g_dns;

typedef struct {
    int calls;
    char addr[64];
    int port;
} fake_tcp_t;

static fake_tcp_t g_tcp;

static void dns_fire(uv_timer_t *t)
{
    (void)t;
    struct addrinfo *res = g_dns.res;
    g_dns.res = NULL;
    g_dns.cb(g_dns.req, 0, res);
}

static int fake_resolve(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb,
                        const char *node, const char *service, const struct addrinfo *hints)
{
    (void)loop;
    if (g_dns.calls >= 4)
        return UV_EAI_NONAME;
    const char *const *ans = g_dns.answers[g_dns.calls++];
    snprintf(g_dns.node, sizeof(g_dns.node), "%s", node);
    struct addrinfo h = *hints, *head = NULL, **tail = &head;
    h.ai_flags |= AI_NUMERICHOST;
    for (int i = 0; i < 3 && ans[i]; i++) {
        struct addrinfo *one = NULL;
        cr_assert_eq(getaddrinfo(ans[i], service, &h, &one), 0, "%s", ans[i]);
        *tail = one;
        while (*tail)
            tail = &(*tail)->ai_next;
    }
    g_dns.req = req;
    g_dns.cb = cb;
    g_dns.res = head;
    uv_timer_start(&g_dns.timer, dns_fire, 0, 0);
    return 0;
}

/* Records where the relay would connect; the destination "refuses" at once. */
static int fake_connect(uv_connect_t *req, uv_tcp_t *tcp, const struct sockaddr *addr,
                        uv_connect_cb cb)
{
    (void)req;
    (void)tcp;
    (void)cb;
    g_tcp.calls++;
    if (addr->sa_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)addr, g_tcp.addr, sizeof(g_tcp.addr));
        g_tcp.port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
    } else {
        uv_ip6_name((const struct sockaddr_in6 *)addr, g_tcp.addr, sizeof(g_tcp.addr));
        g_tcp.port = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    }
    return UV_ECONNREFUSED;
}

typedef struct {
    uv_loop_t loop;
    sp_relay_t r;
    sp_relay_input_t *in;
} fixture_t;

static void fx_init(fixture_t *f, bool allow_private)
{
    memset(f, 0, sizeof(*f));
    memset(&g_dns, 0, sizeof(g_dns));
    memset(&g_tcp, 0, sizeof(g_tcp));
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &g_dns.timer);
    f->r.loop = &f->loop;
    f->r.allow_private = allow_private;
    f->r.resolve = fake_resolve;
    f->r.connect = fake_connect;
    f->r.out_queue_bytes = 1u << 20;
    f->r.out_queue_ms = 5000;
    cr_assert_eq(sp_tls_ctx_create(NULL, &f->r.tls_ctx), 0);
    f->in = sp_relay_input_create(&f->r, NULL, true);
    f->in->publisher = (sp_ingest_conn_t *)1; /* live: outputs connect and retry */
}

static sp_relay_output_t *fx_output(fixture_t *f, const char *url, const char *key)
{
    return sp_relay_output_add(f->in, url, key, true, NULL);
}

/* The reconnect, now rather than after the backoff (what the retry timer does). */
static void fx_reconnect(sp_relay_output_t *o)
{
    cr_assert_null(o->conn);
    cr_assert_not_null(o->retry, "a retry was scheduled");
    cr_assert(uv_is_active((uv_handle_t *)o->retry));
    sp_push_start(o);
}

/* Runs the loop until cond holds (or 5 s pass). */
#define RUN_UNTIL(f, cond)                                                                     \
    do {                                                                                       \
        uint64_t end_ = uv_now(&(f)->loop) + 5000;                                             \
        while (!(cond) && uv_now(&(f)->loop) < end_)                                           \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                   \
        cr_assert(cond, "timed out waiting for " #cond);                                       \
    } while (0)

static void fx_free(fixture_t *f)
{
    for (sp_relay_output_t *o = f->in->outputs; o; o = o->next)
        sp_push_stop(o, "test over");
    f->in->publisher = NULL;
    sp_relay_input_delete(&f->r, f->in);
    sp_tls_ctx_free(f->r.tls_ctx);
    uv_close((uv_handle_t *)&g_dns.timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (g_dns.res)
        freeaddrinfo(g_dns.res);
    cr_assert_eq(uv_loop_close(&f->loop), 0, "every handle closed");
}

Test(relay_push, reconnect_to_a_name_now_on_loopback_is_refused_before_connect)
{
    fixture_t f;
    fx_init(&f, false);
    g_dns.answers[0][0] = "1.1.1.1";   /* public: the first connect goes there */
    g_dns.answers[1][0] = "127.0.0.1"; /* the name is rebound to loopback */
    sp_relay_output_t *o = fx_output(&f, "rtmp://ingest.example.com:1936/live", "KEY");
    cr_assert_eq(o->state, SP_RELAY_OUT_CONNECTING);

    RUN_UNTIL(&f, g_tcp.calls == 1 && o->state == SP_RELAY_OUT_ERROR);
    cr_assert_str_eq(g_dns.node, "ingest.example.com");
    cr_assert_str_eq(g_tcp.addr, "1.1.1.1");
    cr_assert_eq(g_tcp.port, 1936);
    cr_assert(strstr(o->last_error, "connect to ingest.example.com:1936 failed"), "%s",
              o->last_error);

    fx_reconnect(o);
    cr_assert_eq(g_dns.calls, 2);
    cr_assert_eq(o->state, SP_RELAY_OUT_CONNECTING);
    RUN_UNTIL(&f, o->state == SP_RELAY_OUT_ERROR);
    cr_assert_str_eq(o->last_error, "destination address 127.0.0.1 is not allowed (loopback)");
    cr_assert_eq(g_tcp.calls, 1, "no connect to the refused address");
    cr_assert_eq(o->reconnects, 1);
    cr_assert_null(o->conn);
    fx_free(&f);
}

Test(relay_push, every_address_is_checked_metadata_and_mixed_answers)
{
    fixture_t f;
    fx_init(&f, false);
    g_dns.answers[0][0] = "169.254.169.254";
    g_dns.answers[1][0] = "1.1.1.1"; /* public first, a private one after it */
    g_dns.answers[1][1] = "10.0.0.7";
    g_dns.answers[2][0] = "::1";
    sp_relay_output_t *o = fx_output(&f, "rtmps://live.example.net/app", "KEY");
    RUN_UNTIL(&f, o->state == SP_RELAY_OUT_ERROR);
    cr_assert_eq(g_dns.calls, 1);
    cr_assert_str_eq(o->last_error, "destination address 169.254.169.254 is not allowed "
                                    "(link-local or cloud metadata (169.254.0.0/16))");
    fx_reconnect(o);
    RUN_UNTIL(&f, o->state == SP_RELAY_OUT_ERROR);
    cr_assert_str_eq(o->last_error, "destination address 10.0.0.7 is not allowed (private)");
    fx_reconnect(o);
    RUN_UNTIL(&f, o->state == SP_RELAY_OUT_ERROR);
    cr_assert_str_eq(o->last_error, "destination address ::1 is not allowed (loopback)");
    cr_assert_eq(g_tcp.calls, 0, "never connected");
    fx_free(&f);
}

Test(relay_push, allow_private_destinations_lifts_loopback_only)
{
    fixture_t f;
    fx_init(&f, true);
    g_dns.answers[0][0] = "127.0.0.1";
    g_dns.answers[1][0] = "0.0.0.0"; /* unspecified: refused even so */
    sp_relay_output_t *o = fx_output(&f, "rtmp://127.0.0.1/live", "KEY");
    RUN_UNTIL(&f, g_tcp.calls == 1 && o->state == SP_RELAY_OUT_ERROR);
    cr_assert_str_eq(g_tcp.addr, "127.0.0.1");
    cr_assert_eq(g_tcp.port, 1935);
    fx_reconnect(o);
    RUN_UNTIL(&f, o->state == SP_RELAY_OUT_ERROR);
    cr_assert_eq(g_dns.calls, 2);
    cr_assert_str_eq(o->last_error,
                     "destination address 0.0.0.0 is not allowed (unspecified (0.0.0.0/8))");
    cr_assert_eq(g_tcp.calls, 1);
    fx_free(&f);
}

Test(relay_push, malformed_urls_are_refused_without_resolving)
{
    static const struct {
        const char *url, *key, *why;
    } bad[] = {
        { "rtmp://host:80abc/live", "K", "port must be a number" },
        { "rtmp://host:0/live", "K", "port out of range" },
        { "rtmp://host:65536/live", "K", "port out of range" },
        { "rtmp://user:pw@host/live", "K", "user info" },
        { "rtmp://0x7f000001/live", "K", "not a valid DNS name" },
        { "rtmp://2130706433/live", "K", "not a valid DNS name" },
        { "rtmp://host./live", "K", "not a valid DNS name" },
        { "rtmp://[fe80::1%25eth0]/live", "K", "percent-encoding" },
        { "rtmp://ho%73t/live", "K", "percent-encoding" },
        { "rtmp://host/li ve", "K", "spaces" },
        { "http://host/live", "K", "scheme" },
        { "rtmp:///live", "K", "host is required" },
        { "rtmp://host/live#x", "K", "fragments" },
        { "rtmp://host", "K", "no app" },
        { "rtmp://host/live", "", "no app and stream key" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture_t f;
        fx_init(&f, true);
        sp_relay_output_t *o = fx_output(&f, bad[i].url, bad[i].key);
        cr_assert_eq(o->state, SP_RELAY_OUT_ERROR, "%s", bad[i].url);
        cr_assert(strncmp(o->last_error, "invalid destination URL", 23) == 0, "%s: %s",
                  bad[i].url, o->last_error);
        cr_assert(strstr(o->last_error, bad[i].why), "%s: %s", bad[i].url, o->last_error);
        cr_assert_null(o->conn);
        cr_assert_eq(g_dns.calls, 0, "%s: never resolved", bad[i].url);
        fx_free(&f);
    }
}

Test(relay_push, url_forms_that_connect)
{
    static const struct {
        const char *url, *key, *host;
        int port;
    } good[] = {
        { "rtmp://a.example.com/live", "K", "a.example.com", 1935 },
        { "RTMP://A.Example.COM:1937/live/sub", "K", "a.example.com", 1937 },
        { "rtmps://a.example.com/live", "K", "a.example.com", 443 },
        { "rtmp://a.example.com/live/KEYINURL", "", "a.example.com", 1935 },
        { "rtmp://[2606:4700::1]:1940/live", "K", "2606:4700::1", 1940 },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        fixture_t f;
        fx_init(&f, false);
        g_dns.answers[0][0] = "1.1.1.1";
        sp_relay_output_t *o = fx_output(&f, good[i].url, good[i].key);
        RUN_UNTIL(&f, g_tcp.calls == 1);
        cr_assert_str_eq(g_dns.node, good[i].host, "%s", good[i].url);
        cr_assert_eq(g_tcp.port, good[i].port, "%s", good[i].url);
        (void)o;
        fx_free(&f);
    }
}
