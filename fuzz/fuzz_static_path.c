/*
 * libFuzzer target: the static file path resolver (sp_static_resolve), the only thing between a
 * URL path and a file under WEB_DIR. Input: [cap byte][raw URL path]. On success the result must
 * be a relative path whose every segment is non-empty and does not start with '.', with no
 * backslash, no NUL and no leading '/', that fits the buffer; resolving it again (when it holds
 * no '%' and "/" + it fits the resolver's 1 KiB decode buffer: "index.html" may be appended, so
 * the result can be longer than the input) gives the same path; the MIME lookup answers for it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/sp_static.h"

static void check(const char *out, size_t cap)
{
    size_t n = strnlen(out, cap);
    if (n == 0 || n >= cap || out[0] == '/')
        __builtin_trap();
    const char *p = out;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t sl = e ? (size_t)(e - p) : strlen(p);
        if (sl == 0 || p[0] == '.' || memchr(p, '\\', sl))
            __builtin_trap();
        if (!e)
            break;
        p = e + 1;
    }
    if (sp_static_mime(out) == NULL)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = 1 + data[0] % 64u;
    if (data[0] >= 128)
        cap = 4096;
    const char *path = (const char *)data + 1;
    size_t len = size - 1;
    char out[4096];
    memset(out, 'Z', sizeof out);
    if (sp_static_resolve(path, len, out, cap) != 0)
        return 0;
    check(out, cap);
    if (!strchr(out, '%') && strlen(out) + 2 < 1024) {
        char again[4096], out2[4096];
        size_t n = strlen(out);
        again[0] = '/';
        memcpy(again + 1, out, n);
        if (sp_static_resolve(again, n + 1, out2, sizeof out2) != 0 || strcmp(out, out2) != 0)
            __builtin_trap();
    }
    return 0;
}
