/*
 * libFuzzer target: RTMP(S) destination URL parser and the address policy. Properties checked
 * on the policy (sp_dest_addr_allowed), independent of its code: a public-only answer never
 * allows what allow_private refuses (monotonic); an IPv4 address and its IPv4-mapped IPv6 form
 * get the same answer; the ranges no public destination may use (this network, RFC 1918,
 * CGNAT, loopback, link-local, multicast, reserved/broadcast) are refused without
 * allow_private, and unspecified/multicast/broadcast even with it.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/sp_dest_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_dest_url_t u;
    const char *why = NULL;
    if (sp_dest_url_parse((const char *)data, size, &u, &why) == 0) {
        if (u.host[0] == '\0' || u.port == 0 || strchr(u.host, '@') || strchr(u.host, '/'))
            __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    if (size >= 16) {
        struct sockaddr_in6 s6;
        memset(&s6, 0, sizeof s6);
        s6.sin6_family = AF_INET6;
        memcpy(&s6.sin6_addr, data, 16);
        (void)sp_dest_addr_allowed((struct sockaddr *)&s6, false, &why);
        (void)sp_dest_addr_allowed((struct sockaddr *)&s6, true, &why);
    }
    if (size >= 4) {
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof s4);
        s4.sin_family = AF_INET;
        memcpy(&s4.sin_addr, data, 4);
        struct sockaddr_in6 m6;
        memset(&m6, 0, sizeof m6);
        m6.sin6_family = AF_INET6;
        m6.sin6_addr.s6_addr[10] = 0xff;
        m6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&m6.sin6_addr.s6_addr[12], data, 4);
        const uint8_t *a = data;
        bool non_public = a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
                          (a[0] == 100 && (a[1] & 0xc0) == 64) || (a[0] == 169 && a[1] == 254) ||
                          (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168);
        bool never = a[0] == 0 || (a[0] >= 224 && a[0] < 240) ||
                     (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
        for (int allow = 0; allow <= 1; allow++) {
            int r4 = sp_dest_addr_allowed((struct sockaddr *)&s4, allow, &why);
            int r6 = sp_dest_addr_allowed((struct sockaddr *)&m6, allow, &why);
            if ((r4 == 0) != (r6 == 0))
                __builtin_trap(); /* mapped form answered differently */
            if (r4 != 0 && !why)
                __builtin_trap(); /* a refusal says why */
            if (r4 == 0 && ((!allow && non_public) || never))
                __builtin_trap(); /* a range the policy must refuse was allowed */
        }
        if (sp_dest_addr_allowed((struct sockaddr *)&s4, false, &why) == 0 &&
            sp_dest_addr_allowed((struct sockaddr *)&s4, true, &why) != 0)
            __builtin_trap(); /* not monotonic */
    }
    return 0;
}
