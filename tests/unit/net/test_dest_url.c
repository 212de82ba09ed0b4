/* sp_dest_url: strict RTMP(S) URL parsing, address checks, non-blocking resolution. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <uv.h>

#include "net/sp_dest_url.h"
#include "core/sp_err.h"

static int parse(const char *s, sp_dest_url_t *u)
{
    const char *why = NULL;
    int rc = sp_dest_url_parse(s, strlen(s), u, &why);
    if (rc != 0)
        cr_assert_not_null(why, "a reason is given for %s", s);
    return rc;
}

Test(dest_url, parses_common_ingests)
{
    sp_dest_url_t u;
    cr_assert_eq(parse("rtmp://a.rtmp.youtube.com/live2", &u), 0);
    cr_assert(!u.tls);
    cr_assert_str_eq(u.host, "a.rtmp.youtube.com");
    cr_assert_eq(u.port, 1935);
    cr_assert(!u.port_explicit);
    cr_assert_str_eq(u.app, "live2");
    cr_assert_str_eq(u.key, "");

    cr_assert_eq(parse("rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0?s_bl=1&a=b", &u), 0);
    cr_assert(u.tls);
    cr_assert_eq(u.port, 443);
    cr_assert(u.port_explicit);
    cr_assert_str_eq(u.app, "rtmp");
    cr_assert_str_eq(u.key, "FB-123-0?s_bl=1&a=b");

    cr_assert_eq(parse("RTMP://Live.Twitch.TV/app/live_123_abc", &u), 0);
    cr_assert_str_eq(u.host, "live.twitch.tv");
    cr_assert_str_eq(u.app, "app");
    cr_assert_str_eq(u.key, "live_123_abc");

    cr_assert_eq(parse("rtmps://live.cloudflare.com:443/live/", &u), 0);
    cr_assert_str_eq(u.app, "live");
    cr_assert_str_eq(u.key, "");

    cr_assert_eq(parse("rtmp://[2001:4860:4860::8888]:1936/app/k", &u), 0);
    cr_assert(u.host_is_ip);
    cr_assert_str_eq(u.host, "2001:4860:4860::8888");
    cr_assert_eq(u.port, 1936);

    cr_assert_eq(parse("rtmp://8.8.8.8/app", &u), 0);
    cr_assert(u.host_is_ip);
    cr_assert_eq(parse("rtmps://host", &u), 0, "path optional");
    cr_assert_str_eq(u.app, "");
    cr_assert_eq(parse("rtmp://localhost/app", &u), 0, "names are checked after resolution");
    cr_assert_eq(parse("rtmp://h:65535/a", &u), 0);
    cr_assert_eq(u.port, 65535);
    cr_assert_eq(parse("rtmp://h:1/a", &u), 0);
}

Test(dest_url, refuses_bad_urls)
{
    static const char *bad[] = {
        "", "http://example.com/app", "file:///etc/passwd", "rtmpx://h/a", "rtmp:/h/a",
        "rtmp://", "rtmp:///app", "rtmp://:1935/app", "rtmp://user@127.0.0.1/app",
        "rtmp://user:pw@example.com/app", "rtmp://example.com:0/a", "rtmp://example.com:65536/a",
        "rtmp://example.com:99999999/a", "rtmp://example.com:-1/a", "rtmp://example.com:/a",
        "rtmp://example.com:+80/a", "rtmp://example.com:80:81/a", "rtmp://0x7f000001/",
        "rtmp://2130706433/", "rtmp://0177.0.0.1/", "rtmp://127.1/", "rtmp://localhost./",
        "rtmp://exa mple.com/a", "rtmp://example.com/a b", "rtmp://example.com/a\r\nX: y",
        "rtmp://ex%61mple.com/a", "rtmp://[::1/a", "rtmp://[fe80::1%25eth0]/a",
        "rtmp://[::1]x/a", "rtmp://[]/a", "rtmp://-bad.com/a", "rtmp://bad-.com/a",
        "rtmp://a..b/a", "rtmp://example.com/a#frag", "rtmp://example.com/../x",
        "rtmp://example.com\\@evil/a", "rtmp://ex_ample.com/a", "rtmp://1.2.3.4.5/a",
        "rtmp://256.1.1.1/a", "rtmp://example.123/a",
    };
    sp_dest_url_t u;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(parse(bad[i], &u), SP_EINVAL, "accepted: %s", bad[i]);
    char longhost[400];
    memcpy(longhost, "rtmp://", 7);
    memset(longhost + 7, 'a', 300);
    longhost[307] = '\0';
    cr_assert_eq(parse(longhost, &u), SP_EINVAL);
    cr_assert_eq(sp_dest_url_parse(NULL, 0, &u, NULL), SP_EINVAL);
}

static int check(const char *ip, bool allow)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "%s", ip);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1, "%s", ip);
    }
    const char *why = NULL;
    int rc = sp_dest_addr_allowed((struct sockaddr *)&ss, allow, &why);
    if (rc)
        cr_assert_not_null(why);
    return rc;
}

Test(dest_url, address_ranges)
{
    static const char *priv[] = {
        "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1",
        "127.0.0.1", "127.255.255.254", "169.254.169.254", "169.254.0.1", "100.64.0.1",
        "100.127.255.255", "::1", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1",
        "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:192.168.0.1",
        "64:ff9b::7f00:1", "::127.0.0.1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
    };
    static const char *never[] = {
        "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
        "::", "ff02::1", "::ffff:0.0.0.0", "::ffff:224.0.0.1", "2001:db8::1", "192.0.0.8",
        "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "2001:0::1", "fec0::1",
    };
    static const char *pub[] = {
        "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
        "169.253.255.255", "11.0.0.1", "2001:4860:4860::8888", "2606:4700::1111",
        "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808",
    };
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        cr_assert_eq(check(priv[i], false), SP_EFORBIDDEN, "allowed: %s", priv[i]);
        cr_assert_eq(check(priv[i], true), 0, "allow_private should allow %s", priv[i]);
    }
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        cr_assert_eq(check(never[i], false), SP_EFORBIDDEN, "allowed: %s", never[i]);
        cr_assert_eq(check(never[i], true), SP_EFORBIDDEN, "allowed w/ private: %s", never[i]);
    }
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++)
        cr_assert_eq(check(pub[i], false), 0, "refused: %s", pub[i]);
}

typedef struct {
    int calls, err;
    size_t n;
    uint16_t port;
    int family;
} rres_t;

static void on_res(int err, const char *why, const struct sockaddr_storage *a, size_t n, void *ud)
{
    rres_t *r = ud;
    r->calls++;
    r->err = err;
    r->n = n;
    if (err)
        cr_assert_not_null(why);
    if (n) {
        r->family = a[0].ss_family;
        r->port =
            ntohs(a[0].ss_family == AF_INET ? ((const struct sockaddr_in *)&a[0])->sin_port
                                            : ((const struct sockaddr_in6 *)&a[0])->sin6_port);
    }
}

static rres_t resolve(const char *url, bool allow)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_dest_url_t u;
    cr_assert_eq(parse(url, &u), 0, "%s", url);
    rres_t r = { 0 };
    cr_assert_eq(sp_dest_url_resolve(&loop, &u, allow, on_res, &r, NULL), 0);
    cr_assert_eq(r.calls, 0, "never synchronous");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    cr_assert_eq(r.calls, 1);
    return r;
}

Test(dest_url, resolve_checks_every_address)
{
    rres_t r = resolve("rtmp://localhost/app/key", false);
    cr_assert_eq(r.err, SP_EFORBIDDEN, "localhost refused");
    r = resolve("rtmp://127.0.0.1:19350/app", false);
    cr_assert_eq(r.err, SP_EFORBIDDEN);
    r = resolve("rtmp://127.0.0.1:19350/app", true);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.port, 19350);
    cr_assert_eq(r.family, AF_INET);
    r = resolve("rtmps://[::ffff:169.254.169.254]/app", false);
    cr_assert_eq(r.err, SP_EFORBIDDEN, "metadata through v4-mapped v6");
    r = resolve("rtmps://8.8.8.8/app", false);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.port, 443);
    r = resolve("rtmp://no-such-host.invalid/app", false);
    cr_assert(r.err == SP_ENOTFOUND || r.err < 0);
    cr_assert_neq(r.err, 0);
}

static void never_called(int err, const char *why, const struct sockaddr_storage *a, size_t n,
                         void *ud)
{
    (void)err, (void)why, (void)a, (void)n, (void)ud;
    cr_assert_fail("cancelled resolution called back");
}

Test(dest_url, resolve_cancel)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_dest_url_t u;
    cr_assert_eq(parse("rtmp://localhost/app", &u), 0);
    sp_dest_resolve_t *h = NULL;
    cr_assert_eq(sp_dest_url_resolve(&loop, &u, true, never_called, NULL, &h), 0);
    sp_dest_resolve_cancel(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(dest_url, redacted)
{
    sp_dest_url_t u;
    char out[256];
    cr_assert_eq(parse("rtmp://live.twitch.tv/app/live_123_secret", &u), 0);
    sp_dest_url_redacted(&u, out, sizeof out);
    cr_assert_str_eq(out, "rtmp://live.twitch.tv:1935/app/****");
    cr_assert_eq(parse("rtmps://[2001:4860::1]/live", &u), 0);
    sp_dest_url_redacted(&u, out, sizeof out);
    cr_assert_str_eq(out, "rtmps://[2001:4860::1]:443/live");
    cr_assert_eq(sp_dest_url_redacted(&u, out, 8), 7);
    cr_assert_str_eq(out, "rtmps:/");
}

/* issue 12 finding 6: ::ffff:0:a.b.c.d (IPv4-translated) was accepted whatever the IPv4 inside */
Test(dest_url, every_ipv4_embedding_form_is_judged_by_its_ipv4)
{
    static const char *priv[] = {
        "::ffff:0:127.0.0.1", "::ffff:0:10.0.0.1", "::ffff:0:169.254.169.254",
        "::ffff:0:192.168.1.1", "::ffff:0:100.64.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1",
        "::10.0.0.1", "::169.254.169.254", "2002:c0a8:101::1", "2002:a00:1:ffff::1",
    };
    static const char *never[] = {
        "::ffff:0:0.0.0.0", "::ffff:0:224.0.0.1", "::ffff:0:255.255.255.255",
        "64:ff9b:1::a00:1", "64:ff9b:1:ffff::808:808", "64:ff9b:0:1::808:808", "0:0:0:1::1",
        "::1:0:0:1", "2002:e000:1::1",
    };
    static const char *pub[] = {"::ffff:0:8.8.8.8", "64:ff9b::101:101", "2002:101:101::1",
                                "::8.8.8.8"};
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        cr_assert_eq(check(priv[i], false), SP_EFORBIDDEN, "allowed: %s", priv[i]);
        cr_assert_eq(check(priv[i], true), 0, "allow_private should allow %s", priv[i]);
    }
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        cr_assert_eq(check(never[i], false), SP_EFORBIDDEN, "allowed: %s", never[i]);
        cr_assert_eq(check(never[i], true), SP_EFORBIDDEN, "allowed w/ private: %s", never[i]);
    }
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++)
        cr_assert_eq(check(pub[i], false), 0, "refused: %s", pub[i]);
}

static bool key_in(const char *url)
{
    sp_dest_url_t u;
    cr_assert_eq(sp_dest_url_parse(url, strlen(url), &u, NULL), 0, "%s", url);
    return sp_dest_url_key_in_url(&u);
}

/* issue 12 finding 6: a stream key written inside the URL was stored and shown in clear */
Test(dest_url, a_key_like_last_segment_is_detected)
{
    static const char *keyed[] = {
        "rtmp://live.twitch.tv/app/live_123456789_AbCdEfGhIjKlMnOpQrStUvWx",
        "rtmp://a.rtmp.youtube.com/live2/abcd-1234-efgh-5678-ijkl",
        "rtmps://live-api-s.facebook.com:443/rtmp/FB-1234567890123456-0-AbCdEfGh",
        "rtmps://x.global-contribute.live-video.net/app/sk_us-west-2_AbCdEf123456",
        "rtmp://ingest.example.com/live/sub/k3y5ecret0000000/",
        "rtmp://ingest.example.com/live_99887766554433",
        "rtmp://ingest.example.com/live?key=a1b2c3d4e5f6g7h8i9",
        "rtmp://ingest.example.com/live/x?region=eu&streamkey=live_a1b2c3d4e5f6",
    };
    static const char *plain[] = {
        "rtmp://a.rtmp.youtube.com/live2", "rtmps://live-api-s.facebook.com:443/rtmp/",
        "rtmp://127.0.0.1:1935/live", "rtmp://ingest.example.com/live/sub",
        "rtmp://ingest.example.com/my-streaming-application",
        "rtmp://ingest.example.com/live?region=eu-west-1", "rtmp://ingest.example.com",
        "rtmp://[2606:4700::1]:1940/app//",
    };
    for (size_t i = 0; i < sizeof keyed / sizeof keyed[0]; i++)
        cr_assert(key_in(keyed[i]), "missed: %s", keyed[i]);
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        cr_assert_not(key_in(plain[i]), "false positive: %s", plain[i]);
}
