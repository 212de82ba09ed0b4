/* Unit tests: configuration parsing, per-environment defaults, errors naming the variable. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_config.h"
#include "core/sp_err.h"
#include "core/sp_log.h"

typedef struct {
    const char *kv[32];
} env_t;

static const char *get(const char *name, void *ud)
{
    env_t *e = ud;
    for (int i = 0; e->kv[i]; i += 2)
        if (strcmp(e->kv[i], name) == 0)
            return e->kv[i + 1];
    return NULL;
}

Test(config, defaults_per_environment)
{
    env_t dev = { { NULL } };
    sp_config_t c;
    char err[256];
    cr_assert_eq(sp_config_load(&c, get, &dev, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c.env_name, "dev");
    cr_assert_str_eq(c.http_listen, "127.0.0.1:4000");
    cr_assert_str_eq(c.public_url, "http://127.0.0.1:4000");
    cr_assert_eq(c.stream_disconnect_timeout, 300000);
    cr_assert_eq(c.presence_cleanup_timeout, 5000);
    cr_assert_str_eq(c.media_backend, "local");
    cr_assert_str_eq(c.cloudflare_api_base_url, "http://127.0.0.1:8788/client/v4");
    cr_assert_not(c.allow_private_destinations);
    cr_assert_eq(c.relay_tick_ms, 200);
    sp_config_cleanup(&c);
    env_t tick = { { "RELAY_TICK_MS", "40ms", NULL } };
    cr_assert_eq(sp_config_load(&c, get, &tick, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.relay_tick_ms, 40);
    sp_config_cleanup(&c);
    env_t test = { { "STREAMPAI_ENV", "test", NULL } };
    cr_assert_eq(sp_config_load(&c, get, &test, err, sizeof(err)), 0);
    cr_assert(c.allow_private_destinations);
    cr_assert(c.test_mode);
    sp_config_cleanup(&c);
    env_t cf = { { "CLOUDFLARE_API_TOKEN", "t0k3n-abcdef", "CLOUDFLARE_ACCOUNT_ID", "acc", NULL } };
    cr_assert_eq(sp_config_load(&c, get, &cf, err, sizeof(err)), 0);
    cr_assert_str_eq(c.media_backend, "cloudflare");
    cr_assert_str_eq(c.cloudflare_api_base_url, "https://api.cloudflare.com/client/v4");
    sp_config_cleanup(&c);
}

Test(config, malformed_values_name_the_variable)
{
    struct {
        const char *name, *value, *expect;
    } cases[] = {
        { "HTTP_LISTEN", "localhost", "HTTP_LISTEN: expected host:port" },
        { "HTTP_LISTEN", "127.0.0.1:70000", "HTTP_LISTEN" },
        { "MAX_CONNECTIONS", "12abc", "MAX_CONNECTIONS: expected an integer" },
        { "MAX_CONNECTIONS", "0", "out of range" },
        { "STREAM_DISCONNECT_TIMEOUT", "5 minutes",
          "STREAM_DISCONNECT_TIMEOUT: expected a duration" },
        { "ALLOW_PRIVATE_DESTINATIONS", "maybe",
          "ALLOW_PRIVATE_DESTINATIONS: expected true or false" },
        { "DATABASE_URL", "mysql://x", "DATABASE_URL: expected a URL" },
        { "PUBLIC_URL", "ftp://x", "PUBLIC_URL" },
        { "LOG_LEVEL", "loud", "LOG_LEVEL" },
        { "MEDIA_BACKEND", "wowza", "MEDIA_BACKEND: expected one of" },
        { "STREAMPAI_ENV", "staging", "STREAMPAI_ENV" },
        { "WS_IDLE_TIMEOUT", "20000", "WS_IDLE_TIMEOUT: must be greater than WS_PING_INTERVAL" },
        { "RELAY_TICK_MS", "5", "RELAY_TICK_MS" },
        { "RELAY_TICK_MS", "2s", "RELAY_TICK_MS" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        env_t e = { { cases[i].name, cases[i].value, NULL } };
        sp_config_t c;
        char err[256] = "";
        cr_assert_eq(sp_config_load(&c, get, &e, err, sizeof(err)), SP_ECONFIG, "%s=%s accepted",
                     cases[i].name, cases[i].value);
        cr_assert_not_null(strstr(err, cases[i].expect), "%s: %s", cases[i].name, err);
    }
}

Test(config, durations_accept_units)
{
    int64_t ms;
    char err[128];
    cr_assert_eq(sp_config_parse_duration("X", "5s", 0, INT64_MAX, &ms, err, sizeof(err)), 0);
    cr_assert_eq(ms, 5000);
    cr_assert_eq(sp_config_parse_duration("X", "2m", 0, INT64_MAX, &ms, err, sizeof(err)), 0);
    cr_assert_eq(ms, 120000);
    cr_assert_eq(sp_config_parse_duration("X", "250ms", 0, INT64_MAX, &ms, err, sizeof(err)), 0);
    cr_assert_eq(ms, 250);
    cr_assert_eq(sp_config_parse_duration("X", "-1", 0, INT64_MAX, &ms, err, sizeof(err)),
                 SP_ECONFIG);
    cr_assert_eq(
        sp_config_parse_duration("X", "99999999999999999999d", 0, INT64_MAX, &ms, err, sizeof(err)),
        SP_ECONFIG);
}

Test(config, check_fails_prod_without_secrets_and_passes_with_them)
{
    env_t bad = { { "STREAMPAI_ENV", "prod", NULL } };
    sp_config_t c;
    char err[256];
    cr_assert_eq(sp_config_load(&c, get, &bad, err, sizeof(err)), 0);
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_gt(sp_config_check(&c, get, &bad, devnull), 0);
    sp_config_cleanup(&c);
    env_t good = { { "STREAMPAI_ENV", "prod", "PUBLIC_URL", "https://streampai.example",
                     "TOKEN_SIGNING_SECRET", "0123456789abcdef0123456789abcdef",
                     "SECRETS_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                     "RELAY_API_TOKEN", "relay-token-123", NULL } };
    cr_assert_eq(sp_config_load(&c, get, &good, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sp_config_check(&c, get, &good, devnull), 0);
    sp_config_cleanup(&c);
    fclose(devnull);
    sp_log_close();
}

Test(config, docs_list_every_variable)
{
    FILE *f = fopen("docs/configuration.md", "r");
    cr_assert_not_null(f, "docs/configuration.md missing (run from the repo root)");
    static char doc[200000];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (size_t i = 0; sp_config_var_name(i); i++) {
        char needle[80];
        snprintf(needle, sizeof(needle), "`%s`", sp_config_var_name(i));
        cr_assert_not_null(strstr(doc, needle), "docs/configuration.md lacks %s",
                           sp_config_var_name(i));
    }
}

/* check-config's "Integrations:" block (issue 13 item 10): one line per integration,
   enabled or disabled from the configuration itself. */
static char *check_output(env_t *e)
{
    sp_config_t c;
    char err[256];
    cr_assert_eq(sp_config_load(&c, get, e, err, sizeof(err)), 0, "%s", err);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    sp_config_check(&c, get, e, f);
    fclose(f);
    sp_config_cleanup(&c);
    sp_log_close();
    return buf;
}

static void assert_line(const char *out, const char *name, const char *state)
{
    char want[96];
    snprintf(want, sizeof(want), "  %-12s %s", name, state);
    cr_assert_not_null(strstr(out, want), "no \"%s\" in:\n%s", want, out);
}

Test(config, check_lists_integrations_enabled_and_disabled)
{
    env_t none = { { NULL } };
    char *out = check_output(&none);
    cr_assert_not_null(strstr(out, "Integrations:\n"), "%s", out);
    assert_line(out, "Twitch", "disabled");
    assert_line(out, "YouTube", "disabled");
    assert_line(out, "Kick", "not available");
    assert_line(out, "Facebook", "not available");
    assert_line(out, "Cloudflare", "disabled");
    assert_line(out, "SMTP", "not available");
    assert_line(out, "Redis", "disabled");
    assert_line(out, "PostgreSQL", "disabled");
    free(out);

    env_t all = { { "TWITCH_CLIENT_ID", "tid", "TWITCH_CLIENT_SECRET", "tsecret",
                    "GOOGLE_CLIENT_ID", "gid", "GOOGLE_CLIENT_SECRET", "gsecret",
                    "MEDIA_BACKEND", "cloudflare", "CLOUDFLARE_API_TOKEN", "cft",
                    "CLOUDFLARE_ACCOUNT_ID", "acc", "CLOUDFLARE_WEBHOOK_SECRET", "whs",
                    "REDIS_URL", "redis://127.0.0.1:6379",
                    "DATABASE_URL", "postgres://u@127.0.0.1/db", NULL } };
    out = check_output(&all);
    assert_line(out, "Twitch", "enabled");
    assert_line(out, "YouTube", "enabled");
    assert_line(out, "Cloudflare", "enabled");
    assert_line(out, "Redis", "enabled");
    assert_line(out, "PostgreSQL", "enabled");
    /* half a client is not an enabled integration */
    free(out);
    env_t half = { { "TWITCH_CLIENT_ID", "tid", "DATABASE_URL", "sqlite:///tmp/x.db", NULL } };
    out = check_output(&half);
    assert_line(out, "Twitch", "disabled");
    assert_line(out, "PostgreSQL", "disabled");
    /* run.sh reads the media backend from the one MEDIA_BACKEND line: keep it unique */
    const char *first = strstr(out, "MEDIA_BACKEND");
    cr_assert_not_null(first);
    cr_assert_null(strstr(first + 1, "MEDIA_BACKEND"), "%s", out);
    free(out);
}

/* Config keys that nothing read are gone from the table (issue 13 item 10). */
Test(config, unread_keys_removed)
{
    const char *gone[] = { "MAX_USER_STREAMS", "PLATFORM_EVENT_POLL_INTERVAL",
                           "PLATFORM_MONITOR_TIMEOUT", "STREAM_METRICS_BROADCAST_INTERVAL",
                           "TWITCH_RATE_LIMIT_PER_MINUTE", "YOUTUBE_RATE_LIMIT_PER_MINUTE" };
    size_t n = 0;
    for (const char *v; (v = sp_config_var_name(n)) != NULL; n++)
        for (size_t k = 0; k < sizeof(gone) / sizeof(gone[0]); k++)
            cr_assert_str_neq(v, gone[k]);
    cr_assert_gt(n, 50);
}
