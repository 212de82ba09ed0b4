/* libFuzzer target: RTMP(S) destination URL parser and address checks. */
#include <netinet/in.h>
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
        (void)sp_dest_addr_allowed((struct sockaddr *)&s4, false, &why);
    }
    return 0;
}
