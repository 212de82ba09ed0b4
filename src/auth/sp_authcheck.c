/* sp_authcheck: pure auth input checks. See sp_authcheck.h. */
#include "auth/sp_authcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_err.h"

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void trim(const char **p, size_t *len)
{
    while (*len && is_ws(**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len && is_ws((*p)[*len - 1]))
        (*len)--;
}

static bool local_char_ok(char c)
{
    if (c >= 'a' && c <= 'z')
        return true;
    if (c >= '0' && c <= '9')
        return true;
    return strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL && c != '\0';
}

int sp_auth_normalize_email(const char *in, size_t len, char *out, size_t cap)
{
    if (!in || !out || cap < 2)
        return SP_EINVAL;
    trim(&in, &len);
    if (len < 3 || len > SP_EMAIL_MAX || len >= cap)
        return SP_EINVAL;
    size_t at = len;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '@') {
            if (at != len)
                return SP_EINVAL;
            at = i;
        }
        out[i] = c;
    }
    out[len] = '\0';
    if (at == len || at == 0 || at > 64 || at == len - 1)
        return SP_EINVAL;
    /* local part: dot-atom */
    if (out[0] == '.' || out[at - 1] == '.')
        return SP_EINVAL;
    for (size_t i = 0; i < at; i++) {
        if (!local_char_ok(out[i]))
            return SP_EINVAL;
        if (out[i] == '.' && i + 1 < at && out[i + 1] == '.')
            return SP_EINVAL;
    }
    /* domain: labels */
    size_t label = 0, dots = 0;
    for (size_t i = at + 1; i <= len; i++) {
        char c = out[i];
        if (i == len || c == '.') {
            if (label == 0 || label > 63)
                return SP_EINVAL;
            if (out[i - 1] == '-' || out[i - label] == '-')
                return SP_EINVAL;
            if (i < len)
                dots++;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return SP_EINVAL;
        label++;
    }
    if (dots == 0)
        return SP_EINVAL;
    return 0;
}

int sp_auth_check_display_name(const char *in, size_t len, char *out, size_t cap)
{
    if (!in || !out)
        return SP_EINVAL;
    trim(&in, &len);
    if (len == 0)
        return SP_EINVAL;
    if (len >= cap || len > SP_DISPLAY_NAME_MAX * 4)
        return SP_ETOOBIG;
    size_t cps = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)in[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            n = 1;
            cp = c;
        } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return SP_EUTF8;
        }
        if (i + n > len)
            return SP_EUTF8;
        for (size_t k = 1; k < n; k++) {
            unsigned char cc = (unsigned char)in[i + k];
            if ((cc & 0xC0) != 0x80)
                return SP_EUTF8;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return SP_EUTF8;
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0x2028 || cp == 0x2029)
            return SP_EINVAL;
        i += n;
        if (++cps > SP_DISPLAY_NAME_MAX)
            return SP_ETOOBIG;
    }
    memcpy(out, in, len);
    out[len] = '\0';
    return 0;
}

static bool ct_eq(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb || la == 0)
        return false;
    return sodium_memcmp(a, b, la) == 0;
}

int sp_auth_csrf_check(const char *method, const char *origin, const char *sec_fetch_site,
                       const char *header_token, const char *cookie_token, const char *expected,
                       const char *const *origins, size_t n_origins)
{
    if (!method)
        return SP_EFORBIDDEN;
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "OPTIONS"))
        return 0;
    if (sec_fetch_site && !strcasecmp(sec_fetch_site, "cross-site"))
        return SP_EFORBIDDEN;
    if (origin && origin[0]) {
        for (size_t i = 0; i < n_origins; i++)
            if (origins[i] && !strcasecmp(origin, origins[i]))
                return 0;
        return SP_EFORBIDDEN;
    }
    if (ct_eq(header_token, cookie_token) && ct_eq(header_token, expected))
        return 0;
    return SP_EFORBIDDEN;
}

const char *sp_auth_bearer(const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

int sp_auth_url_origin(const char *url, char *out, size_t cap)
{
    if (!url || !out || cap == 0)
        return SP_EINVAL;
    const char *sep = strstr(url, "://");
    if (!sep)
        return SP_EINVAL;
    size_t slen = (size_t)(sep - url);
    bool https = slen == 5 && !strncasecmp(url, "https", 5);
    bool http = slen == 4 && !strncasecmp(url, "http", 4);
    if (!https && !http)
        return SP_EINVAL;
    const char *host = sep + 3;
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0 || memchr(host, '@', hlen))
        return SP_EINVAL;
    /* drop a default port */
    const char *dport = https ? ":443" : ":80";
    size_t dl = strlen(dport);
    if (hlen > dl && !strncmp(host + hlen - dl, dport, dl))
        hlen -= dl;
    int n = snprintf(out, cap, "%s://%.*s", https ? "https" : "http", (int)hlen, host);
    if (n < 0 || (size_t)n >= cap)
        return SP_EINVAL;
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

void sp_auth_ip_key(const char *ip, char *out, size_t cap)
{
    struct in6_addr a6;
    if (cap == 0)
        return;
    if (ip && strchr(ip, ':') && inet_pton(AF_INET6, ip, &a6) == 1) {
        char buf[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            if (inet_ntop(AF_INET, a6.s6_addr + 12, buf, sizeof(buf))) {
                snprintf(out, cap, "%s", buf);
                return;
            }
        }
        memset(a6.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf))) {
            snprintf(out, cap, "%s/64", buf);
            return;
        }
    }
    snprintf(out, cap, "%s", ip ? ip : "-");
}
