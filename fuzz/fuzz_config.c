/* Fuzz target: configuration value parsers (int, duration, bool, listen, URL). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char err[256], host[256];
    int64_t v;
    bool b;
    int port;
    static const char *const http[] = { "http", "https", NULL };
    static const char *const db[] = { "postgres", "postgresql", "sqlite", NULL };
    sp_config_parse_int("X", s, -5, 1000000, &v, err, sizeof(err));
    sp_config_parse_duration("X", s, 0, INT64_MAX, &v, err, sizeof(err));
    sp_config_parse_bool("X", s, &b, err, sizeof(err));
    sp_config_parse_listen("X", s, host, sizeof(host), &port, err, sizeof(err));
    sp_config_parse_url("X", s, http, err, sizeof(err));
    sp_config_parse_url("X", s, db, err, sizeof(err));
    free(s);
    return 0;
}
