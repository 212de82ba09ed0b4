/*
 * sp_config: configuration from the environment.
 *
 * One table (sp_config.c) lists every variable: name, type, default per
 * environment (STREAMPAI_ENV = dev | test | prod), range, meaning, whether it
 * is required in an environment and whether it is a secret. Parsing is pure
 * (a getenv-like callback is passed in), so tests need no process env.
 * A malformed value is an error naming the variable and the expected form.
 * docs/configuration.md is checked against the table by a test.
 */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SP_ENV_DEV = 0, SP_ENV_TEST, SP_ENV_PROD } sp_env_t;

typedef struct {
    sp_env_t env;
    const char *env_name;
    /* server */
    char *http_listen;
    char *public_url;
    char *allowed_origins; /* extra origins, comma-separated */
    char *data_dir;
    char *web_dir;
    int log_level; /* sp_log_level_t */
    char *log_file;
    int64_t max_connections;
    int64_t max_body_size;
    int64_t http_header_timeout;
    int64_t http_idle_timeout;
    int64_t ws_max_message_size;
    int64_t ws_max_queue;
    int64_t ws_ping_interval;
    int64_t ws_idle_timeout;
    int64_t max_sockets_per_user;
    int64_t shutdown_timeout;
    bool test_mode;
    /* storage and secrets */
    char *database_url;
    int64_t db_pool_size;
    char *token_signing_secret;
    char *secrets_key;
    int64_t session_ttl;
    int64_t socket_token_ttl;
    char *redis_url;
    char *admin_token;
    /* media */
    char *media_backend; /* local | cloudflare */
    char *cloudflare_api_token;
    char *cloudflare_account_id;
    char *cloudflare_api_base_url;
    char *cloudflare_webhook_secret;
    int64_t cloudflare_input_poll_interval;
    int64_t cloudflare_call_budget;
    int64_t api_call_timeout;
    /* livestream */
    int64_t max_concurrent_users;
    int64_t max_platforms_per_user;
    int64_t event_history_size;
    int64_t event_history_bytes;
    int64_t alert_queue_size;
    int64_t alert_processing_interval;
    int64_t upload_max_bytes;
    int64_t stream_disconnect_timeout;
    int64_t presence_cleanup_timeout;
    int64_t platform_viewers_interval;
    bool allow_private_destinations;
    /* platforms */
    char *twitch_client_id;
    char *twitch_client_secret;
    char *twitch_redirect_uri;
    char *twitch_auth_url;
    char *twitch_api_url;
    char *twitch_eventsub_ws_url;
    int64_t twitch_eventsub_keepalive; /* seconds, 10..600; 0 (unset in tests): Twitch's 10 */
    char *twitch_ingest_url;
    char *twitch_webhook_secret;
    char *twitch_eventsub_transport; /* auto | websocket | webhook */
    char *google_client_id;
    char *google_client_secret;
    char *google_redirect_uri;
    char *google_auth_url;
    char *google_token_url;
    char *google_jwks_url;
    char *google_issuer;
    /* relay */
    char *relay_rtmp_listen;
    char *relay_api_listen;
    char *relay_api_token;
    char *relay_ca_file;
    char *relay_webhook_url;
    char *relay_public_rtmp_url;
    int64_t relay_max_inputs;
    int64_t relay_output_queue_bytes;
    int64_t relay_output_queue_ms;
    int64_t relay_tick_ms;
    char *recording_mode;
    int64_t recording_timeout_seconds;
    int64_t recording_retention_days;
    char *relay_slate_dir;
} sp_config_t;

typedef const char *(*sp_getenv_cb)(const char *name, void *ud);

/**
 * Loads every variable. On error returns SP_ECONFIG and writes one line
 * ("HTTP_LISTEN: expected host:port with port 0-65535, got 'x'") into err.
 * Requirements of the environment (e.g. TOKEN_SIGNING_SECRET in prod) are NOT
 * checked here; see sp_config_check.
 */
int sp_config_load(sp_config_t *c, sp_getenv_cb get, void *ud, char *err, size_t errlen);
/** Loads from the process environment. */
int sp_config_load_env(sp_config_t *c, char *err, size_t errlen);
void sp_config_cleanup(sp_config_t *c);

/**
 * The ConfigValidator: writes one "✅ NAME ..." / "❌ NAME ..." line per
 * required variable and key setting to out (a FILE*). Returns the number of
 * failed requirements (0 = ok).
 */
int sp_config_check(const sp_config_t *c, sp_getenv_cb get, void *ud, void *out_file);

/** TWITCH_EVENTSUB_TRANSPORT resolved: true for webhook (forced, or auto with
 *  TWITCH_WEBHOOK_SECRET set and an https PUBLIC_URL), false for the WebSocket. */
bool sp_config_twitch_webhook(const sp_config_t *c);

/** Writes the markdown table of every variable (for docs/configuration.md). */
void sp_config_write_docs(void *out_file);
/** Iterates the table: name of the i-th variable, NULL past the end. */
const char *sp_config_var_name(size_t i);

/* Pure value parsers (also fuzzed). Each returns 0 or SP_ECONFIG with a message in err. */
int sp_config_parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out,
                        char *err, size_t errlen);
int sp_config_parse_bool(const char *name, const char *s, bool *out, char *err, size_t errlen);
int sp_config_parse_listen(const char *name, const char *s, char *host, size_t hostcap, int *port,
                           char *err, size_t errlen);
int sp_config_parse_url(const char *name, const char *s, const char *const *schemes, char *err,
                        size_t errlen);
/** Duration like "5000", "5000ms", "5s", "2m" into milliseconds. */
int sp_config_parse_duration(const char *name, const char *s, int64_t min, int64_t max,
                             int64_t *out_ms, char *err, size_t errlen);

#endif
