/* sp_dest_url: strict RTMP(S) URL parsing and address checks (see header). */
#include "net/sp_dest_url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

#define FAIL(w)                                                                                \
    do {                                                                                       \
        if (why)                                                                               \
            *why = (w);                                                                        \
        return SP_EINVAL;                                                                      \
    } while (0)

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* DNS name: labels of [a-z0-9-], 1..63, not starting/ending with '-', total <= 253,
 * no trailing dot, top label not all-numeric (so it cannot be a numeric IPv4 form). */
static bool hostname_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    bool last_all_digits = true;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || h[i] == '.') {
            size_t l = i - start;
            if (l == 0 || l > 63 || h[start] == '-' || h[i - 1] == '-')
                return false;
            last_all_digits = true;
            for (size_t j = start; j < i; j++)
                if (h[j] < '0' || h[j] > '9')
                    last_all_digits = false;
            start = i + 1;
            continue;
        }
        if (!is_alnum(h[i]) && h[i] != '-')
            return false;
    }
    if (last_all_digits)
        return false;
    /* "0x7f000001" style: only refuse if glibc's inet_aton would read it as an address */
    char tmp[256];
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    struct in_addr a;
    if (inet_aton(tmp, &a) != 0)
        return false;
    return true;
}

int sp_dest_url_parse(const char *s, size_t len, sp_dest_url_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (why)
        *why = NULL;
    if (!s || len == 0)
        FAIL("empty URL");
    if (len > SP_DEST_URL_MAX)
        FAIL("URL too long");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            FAIL("URL contains spaces, control or non-ASCII characters");
        if (c == '\\')
            FAIL("URL contains a backslash");
    }
    size_t p;
    if (len >= 8 && strncasecmp(s, "rtmps://", 8) == 0) {
        out->tls = true;
        p = 8;
    } else if (len >= 7 && strncasecmp(s, "rtmp://", 7) == 0) {
        p = 7;
    } else {
        FAIL("scheme must be rtmp:// or rtmps://");
    }
    /* authority ends at '/', '?' or '#' */
    size_t a = p;
    while (p < len && s[p] != '/' && s[p] != '?' && s[p] != '#')
        p++;
    size_t alen = p - a;
    const char *auth = s + a;
    if (memchr(auth, '@', alen))
        FAIL("user info (@) is not allowed");
    if (memchr(auth, '%', alen))
        FAIL("percent-encoding in the host is not allowed");
    if (alen == 0)
        FAIL("host is required");
    const char *host;
    size_t hlen;
    const char *port = NULL;
    size_t plen = 0;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb)
            FAIL("unterminated IPv6 literal");
        host = auth + 1;
        hlen = (size_t)(rb - host);
        size_t rest = alen - (size_t)(rb + 1 - auth);
        if (rest > 0) {
            if (rb[1] != ':')
                FAIL("garbage after IPv6 literal");
            port = rb + 2;
            plen = rest - 1;
            if (plen == 0)
                FAIL("empty port");
        }
        if (hlen == 0 || hlen >= 64)
            FAIL("bad IPv6 literal");
        char tmp[64];
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            FAIL("bad IPv6 literal");
        out->host_is_ip = true;
    } else {
        const char *colon = memchr(auth, ':', alen);
        host = auth;
        hlen = colon ? (size_t)(colon - auth) : alen;
        if (colon) {
            port = colon + 1;
            plen = alen - hlen - 1;
            if (plen == 0)
                FAIL("empty port");
            if (memchr(port, ':', plen))
                FAIL("bad port");
        }
        if (hlen == 0)
            FAIL("host is required");
        if (hlen >= sizeof out->host)
            FAIL("host too long");
        char tmp[256];
        for (size_t i = 0; i < hlen; i++)
            tmp[i] = lower(host[i]);
        tmp[hlen] = '\0';
        struct in_addr a4;
        if (inet_pton(AF_INET, tmp, &a4) == 1) {
            out->host_is_ip = true;
        } else if (!hostname_ok(tmp, hlen)) {
            FAIL("host is not a valid DNS name or dotted-quad IPv4 address");
        }
    }
    for (size_t i = 0; i < hlen; i++)
        out->host[i] = lower(host[i]);
    out->host[hlen] = '\0';
    out->port = out->tls ? 443 : 1935;
    if (port) {
        uint32_t v = 0;
        if (plen > 5)
            FAIL("port out of range");
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9')
                FAIL("port must be a number");
            v = v * 10 + (uint32_t)(port[i] - '0');
        }
        if (v == 0 || v > 65535)
            FAIL("port out of range (1-65535)");
        out->port = (uint16_t)v;
        out->port_explicit = true;
    }
    if (p < len && s[p] == '#')
        FAIL("fragments are not allowed");
    if (memchr(s + p, '#', len - p))
        FAIL("fragments are not allowed");
    /* path: /app[/key...][?query] */
    if (p < len && s[p] == '/') {
        p++;
        size_t as = p;
        while (p < len && s[p] != '/' && s[p] != '?')
            p++;
        size_t applen = p - as;
        if (applen >= sizeof out->app)
            FAIL("app name too long");
        memcpy(out->app, s + as, applen);
        out->app[applen] = '\0';
        if (p < len && s[p] == '/')
            p++;
    }
    if (p < len) {
        size_t klen = len - p;
        if (klen >= sizeof out->key)
            FAIL("stream key too long");
        memcpy(out->key, s + p, klen);
        out->key[klen] = '\0';
    }
    if (strstr(out->app, "..") || strstr(out->key, ".."))
        FAIL("dot segments are not allowed");
    return 0;
}

/* A path segment or query value that looks like a stream key: 16+ characters from the
 * key alphabet with 2+ digits, or 12+ with a platform key prefix (live_, sk_, fb-). */
static bool key_like(const char *s, size_t n)
{
    if (n < 12)
        return false;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    if (strncasecmp(s, "live_", 5) == 0 || strncasecmp(s, "sk_", 3) == 0 ||
        strncasecmp(s, "fb-", 3) == 0)
        return true;
    return n >= 16 && digits >= 2;
}

bool sp_dest_url_key_in_url(const sp_dest_url_t *u)
{
    /* the path is app "/" key up to '?'; the query is the rest of key */
    const char *q = strchr(u->key, '?');
    size_t plen = q ? (size_t)(q - u->key) : strlen(u->key);
    const char *last = u->app;
    size_t llen = strlen(u->app);
    for (size_t i = 0; i < plen;) {
        size_t j = i;
        while (j < plen && u->key[j] != '/')
            j++;
        if (j > i) {
            last = u->key + i;
            llen = j - i;
        }
        i = j + 1;
    }
    if (key_like(last, llen))
        return true;
    for (const char *p = q; p && *p;) {
        p++; /* past '?' or '&' */
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq && key_like(eq + 1, n - (size_t)(eq + 1 - p)))
            return true;
        p = end;
    }
    return false;
}

size_t sp_dest_url_redacted(const sp_dest_url_t *u, char *out, size_t cap)
{
    if (!cap)
        return 0;
    bool v6 = strchr(u->host, ':') != NULL;
    int n = snprintf(out, cap, "%s://%s%s%s:%u/%s%s", u->tls ? "rtmps" : "rtmp", v6 ? "[" : "",
                     u->host, v6 ? "]" : "", (unsigned)u->port, u->app, u->key[0] ? "/****" : "");
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* ---- addresses ------------------------------------------------------------------- */

#define DENY(w)                                                                                \
    do {                                                                                       \
        if (why)                                                                               \
            *why = (w);                                                                        \
        return SP_EFORBIDDEN;                                                                  \
    } while (0)

static bool in4(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == (net & mask);
}

static int check4(uint32_t a, bool allow_private, const char **why)
{
    /* always refused */
    if (in4(a, 0x00000000, 8))
        DENY("unspecified (0.0.0.0/8)");
    if (in4(a, 0xe0000000, 4))
        DENY("multicast");
    if (in4(a, 0xf0000000, 4))
        DENY("reserved or broadcast");
    if (in4(a, 0xc0000000, 24))
        DENY("IETF protocol assignments (192.0.0.0/24)");
    if (in4(a, 0xc0000200, 24) || in4(a, 0xc6336400, 24) || in4(a, 0xcb007100, 24))
        DENY("documentation range");
    if (in4(a, 0xc6120000, 15))
        DENY("benchmarking range (198.18.0.0/15)");
    if (allow_private)
        return 0;
    if (in4(a, 0x7f000000, 8))
        DENY("loopback");
    if (in4(a, 0x0a000000, 8) || in4(a, 0xac100000, 12) || in4(a, 0xc0a80000, 16))
        DENY("private");
    if (in4(a, 0xa9fe0000, 16))
        DENY("link-local or cloud metadata (169.254.0.0/16)");
    if (in4(a, 0x64400000, 10))
        DENY("carrier-grade NAT (100.64.0.0/10)");
    return 0;
}

int sp_dest_addr_allowed(const struct sockaddr *sa, bool allow_private, const char **why)
{
    if (why)
        *why = NULL;
    if (!sa)
        DENY("no address");
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return check4(ntohl(s4->sin_addr.s_addr), allow_private, why);
    }
    if (sa->sa_family != AF_INET6)
        DENY("unsupported address family");
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t zero[16] = { 0 };
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t translated[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0 };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
    uint32_t v4;
    if (memcmp(b, zero, 16) == 0)
        DENY("unspecified (::)");
    if (memcmp(b, zero, 15) == 0 && b[15] == 1) {
        if (allow_private)
            return 0;
        DENY("loopback");
    }
    /* Every form that carries an IPv4 address is judged by that address: IPv4-mapped
     * (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d, RFC 2765), the NAT64 well-known
     * prefix (64:ff9b::/96), deprecated IPv4-compatible (::a.b.c.d), 6to4 (2002:AABB:CCDD::/48). */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, translated, 12) == 0 ||
        memcmp(b, nat64, 12) == 0 || memcmp(b, zero, 12) == 0) {
        memcpy(&v4, b + 12, 4);
        return check4(ntohl(v4), allow_private, why);
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        memcpy(&v4, b + 2, 4);
        return check4(ntohl(v4), allow_private, why);
    }
    /* The rest of ::/8 is reserved. It includes 64:ff9b:1::/48 (local-use NAT64, RFC 8215),
     * whose IPv4 sits at an operator-chosen place we cannot know. */
    if (b[0] == 0)
        DENY("reserved or NAT64 (::/8)");
    if (b[0] == 0xff)
        DENY("multicast");
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        DENY("documentation range (2001:db8::/32)");
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
        DENY("Teredo (2001::/32)");
    if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0)
        DENY("discard prefix (100::/64)");
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        DENY("site-local (fec0::/10)");
    if (allow_private)
        return 0;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        DENY("link-local (fe80::/10)");
    if ((b[0] & 0xfe) == 0xfc)
        DENY("unique-local (fc00::/7)");
    return 0;
}

/* ---- resolution --------------------------------------------------------------------- */

struct sp_dest_resolve_s {
    uv_getaddrinfo_t req;
    sp_dest_resolve_cb cb;
    void *ud;
    bool allow_private;
    bool cancelled;
    uint16_t port;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sp_dest_resolve_t *r = req->data;
    struct sockaddr_storage addrs[SP_DEST_MAX_ADDRS];
    size_t n = 0;
    int err = 0;
    const char *why = NULL;
    if (status == UV_EAI_NONAME || status == UV_EAI_NODATA || status == UV_EAI_FAIL) {
        err = SP_ENOTFOUND;
        why = "host not found";
    } else if (status == UV_ECANCELED || status == UV_EAI_CANCELED) {
        err = SP_ECANCELED;
        why = "cancelled";
    } else if (status < 0) {
        err = status;
        why = "DNS resolution failed";
    } else {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                continue;
            int rc = sp_dest_addr_allowed(ai->ai_addr, r->allow_private, &why);
            if (rc != 0) {
                err = rc; /* one bad address refuses the whole name */
                n = 0;
                break;
            }
            if (n < SP_DEST_MAX_ADDRS && ai->ai_addrlen <= sizeof addrs[0]) {
                memset(&addrs[n], 0, sizeof addrs[n]);
                memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
                if (ai->ai_family == AF_INET)
                    ((struct sockaddr_in *)&addrs[n])->sin_port = htons(r->port);
                else
                    ((struct sockaddr_in6 *)&addrs[n])->sin6_port = htons(r->port);
                n++;
            }
        }
        if (err == 0 && n == 0) {
            err = SP_ENOTFOUND;
            why = "no usable address";
        }
    }
    if (res)
        uv_freeaddrinfo(res);
    if (!r->cancelled)
        r->cb(err, why, n ? addrs : NULL, n, r->ud);
    sp_free(r);
}

int sp_dest_url_resolve(uv_loop_t *loop, const sp_dest_url_t *u, bool allow_private,
                        sp_dest_resolve_cb cb, void *ud, sp_dest_resolve_t **out)
{
    if (!loop || !u || !cb || !u->host[0])
        return SP_EINVAL;
    sp_dest_resolve_t *r = sp_calloc(1, sizeof *r);
    r->cb = cb;
    r->ud = ud;
    r->allow_private = allow_private;
    r->port = u->port;
    r->req.data = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    if (u->host_is_ip)
        hints.ai_flags = AI_NUMERICHOST;
    int rc = uv_getaddrinfo(loop, &r->req, on_resolved, u->host, NULL, &hints);
    if (rc != 0) {
        sp_free(r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

void sp_dest_resolve_cancel(sp_dest_resolve_t *r)
{
    if (!r)
        return;
    r->cancelled = true;
    uv_cancel((uv_req_t *)&r->req); /* may fail if already running; cb is suppressed anyway */
}
