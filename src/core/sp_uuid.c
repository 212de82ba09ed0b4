/* sp_uuid: UUIDv4 generation and validation. */
#include "core/sp_uuid.h"

#include <ctype.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

void sp_uuid_v4(char out[SP_UUID_STRLEN])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

bool sp_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}
