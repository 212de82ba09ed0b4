/*
 * sp_debug_cli: `streampai debug presence|managers|users|counts [--url URL]`.
 * Calls GET /api/admin/debug?what=... of the running server (loopback,
 * Authorization: Bearer ADMIN_TOKEN) with a blocking libcurl easy request
 * (a CLI, not the server loop) and prints the JSON answer.
 * Exit codes: 0 ok, 1 server error or unreachable, 2 usage/configuration.
 */
#ifndef SP_DEBUG_CLI_H
#define SP_DEBUG_CLI_H

#include <stddef.h>

#include "core/sp_config.h"

int sp_debug_cli_main(int argc, char **argv, const sp_config_t *cfg);
/** Pure: base URL from HTTP_LISTEN ("0.0.0.0:8080" -> "http://127.0.0.1:8080"). 0 or SP_EINVAL. */
int sp_debug_cli_base_url(const char *listen, char *out, size_t cap);

#endif
