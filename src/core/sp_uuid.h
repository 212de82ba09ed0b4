/* sp_uuid: RFC 4122 version 4 UUIDs from libsodium's CSPRNG. */
#ifndef SP_UUID_H
#define SP_UUID_H

#include <stdbool.h>

#define SP_UUID_STRLEN 37 /* 36 chars + NUL */

void sp_uuid_v4(char out[SP_UUID_STRLEN]);
/** True for a canonical lower- or upper-case 8-4-4-4-12 hex UUID. */
bool sp_uuid_valid(const char *s);

#endif
