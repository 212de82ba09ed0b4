/*
 * sp_config: every environment variable in one table.
 *
 * Each row: name, type, where the value lands in sp_config_t, a default per
 * environment (dev, test, prod; NULL = unset), a range, flags (secret,
 * required in prod, shown as a key setting by check-config) and a meaning.
 * sp_config_load() walks the table; sp_config_write_docs() prints it as the
 * markdown of docs/configuration.md (a test keeps the two in step).
 */
#include "core/sp_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"

typedef enum { T_STR, T_INT, T_DUR, T_BOOL, T_LISTEN, T_URL, T_ENUM, T_LOGLEVEL } type_t;

#define F_SECRET 1u     /* never printed */
#define F_REQ_PROD 2u   /* required when STREAMPAI_ENV=prod */
#define F_KEY 4u        /* shown by check-config */

typedef struct {
    const char *name;
    type_t type;
    size_t off;
    const char *def[3]; /* dev, test, prod */
    int64_t min, max;
    const char *choices; /* T_ENUM: "a|b|c"; T_URL: allowed schemes "http|https" */
    unsigned flags;
    const char *help;
} var_t;

#define OFF(field) offsetof(sp_config_t, field)
#define ALL(v) { v, v, v }
#define PER(dev, test, prod) { dev, test, prod }
#define I64MAX INT64_MAX
#define DAY 86400000LL

static const var_t vars[] = {
    { "HTTP_LISTEN", T_LISTEN, OFF(http_listen), ALL("127.0.0.1:4000"), 0, 0, NULL, F_KEY,
      "Address of the HTTP/WebSocket server (host:port; port 0 picks a free one)." },
    { "PUBLIC_URL", T_URL, OFF(public_url), PER(NULL, NULL, NULL), 0, 0, "http|https",
      F_REQ_PROD | F_KEY,
      "External base URL of the dashboard (origin checks, cookies' Secure flag, OAuth and webhook "
      "URLs). Default http://HTTP_LISTEN." },
    { "ALLOWED_ORIGINS", T_STR, OFF(allowed_origins), ALL(NULL), 0, 0, NULL, 0,
      "Extra origins (comma-separated, e.g. https://obs.example) allowed for WebSocket and CSRF "
      "checks besides PUBLIC_URL's." },
    { "DATA_DIR", T_STR, OFF(data_dir), ALL("./var"), 0, 0, NULL, F_KEY,
      "Directory for the SQLite database, generated dev keys and relay state." },
    { "WEB_DIR", T_STR, OFF(web_dir), ALL("./web"), 0, 0, NULL, 0,
      "Directory of the static dashboard and widget files." },
    { "LOG_LEVEL", T_LOGLEVEL, OFF(log_level), PER("debug", "info", "info"), 0, 0, NULL, F_KEY,
      "debug | info | warn | error." },
    { "LOG_FILE", T_STR, OFF(log_file), ALL(NULL), 0, 0, NULL, 0,
      "Append logs to this file instead of stderr (reopened on SIGHUP, for logrotate)." },
    { "MAX_CONNECTIONS", T_INT, OFF(max_connections), ALL("10000"), 1, 1000000, NULL, 0,
      "Maximum simultaneous connections, HTTP and WebSocket alike; more are answered 503 and "
      "closed. Lowered at start to fit RLIMIT_NOFILE minus a reserve (1/16, at least 64)." },
    { "MAX_BODY_SIZE", T_INT, OFF(max_body_size), ALL("1048576"), 1024, 1073741824, NULL, 0,
      "Default request body limit in bytes (routes may set their own); over it: 413." },
    { "HTTP_HEADER_TIMEOUT", T_DUR, OFF(http_header_timeout), ALL("10000"), 100, 600000, NULL, 0,
      "Milliseconds a client has to send a complete request head (slowloris protection)." },
    { "HTTP_IDLE_TIMEOUT", T_DUR, OFF(http_idle_timeout), ALL("60000"), 100, 3600000, NULL, 0,
      "Milliseconds an idle keep-alive connection is kept." },
    { "WS_MAX_MESSAGE_SIZE", T_INT, OFF(ws_max_message_size), ALL("65536"), 125, 16777216, NULL, 0,
      "Largest WebSocket message accepted from a client; larger: close 1009." },
    { "WS_MAX_QUEUE", T_INT, OFF(ws_max_queue), ALL("1048576"), 4096, 268435456, NULL, 0,
      "Outbound bytes queued per WebSocket before a slow reader is closed with 1008." },
    { "WS_PING_INTERVAL", T_DUR, OFF(ws_ping_interval), ALL("30000"), 10, 3600000, NULL, 0,
      "Milliseconds between server pings on each WebSocket." },
    { "WS_IDLE_TIMEOUT", T_DUR, OFF(ws_idle_timeout), ALL("60000"), 10, 3600000, NULL, 0,
      "A WebSocket peer silent for this many milliseconds is closed." },
    { "MAX_SOCKETS_PER_USER", T_INT, OFF(max_sockets_per_user), ALL("50"), 1, 100000, NULL, 0,
      "Open WebSockets per account on this node (dashboard tabs + widgets); one more is "
      "answered 503 too_many_sockets before the upgrade. Sockets also count in "
      "MAX_CONNECTIONS." },
    { "SHUTDOWN_TIMEOUT", T_DUR, OFF(shutdown_timeout), ALL("5000"), 100, 60000, NULL, 0,
      "On SIGTERM/SIGINT, in-flight work gets this long before the process exits anyway." },
    { "TEST_MODE", T_BOOL, OFF(test_mode), PER("false", "true", "false"), 0, 0, NULL, 0,
      "Enables test-only hooks (diagnostic flood messages, fake-friendly timings). Never in "
      "prod." },
    { "DATABASE_URL", T_URL, OFF(database_url), ALL(NULL), 0, 0, "postgres|postgresql|sqlite",
      F_KEY,
      "postgres://user:pass@host:port/db for PostgreSQL; unset or sqlite:PATH for SQLite in "
      "DATA_DIR." },
    { "DB_POOL_SIZE", T_INT, OFF(db_pool_size), ALL("4"), 1, 64, NULL, 0,
      "PostgreSQL connections kept open." },
    { "TOKEN_SIGNING_SECRET", T_STR, OFF(token_signing_secret), ALL(NULL), 0, 0, NULL,
      F_SECRET | F_REQ_PROD | F_KEY,
      "HS256 key for session JWTs, at least 32 bytes. Dev/test generate one into DATA_DIR." },
    { "SECRETS_KEY", T_STR, OFF(secrets_key), ALL(NULL), 0, 0, NULL, F_SECRET | F_REQ_PROD | F_KEY,
      "32 bytes, base64: seals OAuth tokens and stream keys at rest. Dev/test generate one into "
      "DATA_DIR." },
    { "SESSION_TTL", T_DUR, OFF(session_ttl), ALL("30d"), 60000, 365 * DAY, NULL, 0,
      "Lifetime of a login session (e.g. 30d, 12h)." },
    { "SOCKET_TOKEN_TTL", T_DUR, OFF(socket_token_ttl), ALL("12h"), 60000, 365 * DAY, NULL, 0,
      "Lifetime of a token from POST /api/auth/token (bearer / ?token= for sockets and "
      "scripts); revocable in GET/DELETE /api/sessions. Capped by SESSION_TTL." },
    { "REDIS_URL", T_URL, OFF(redis_url), ALL(NULL), 0, 0, "redis", 0,
      "redis://[[user]:pass@]host[:port][/db] for the multi-node WebSocket bus (pub/sub with one "
      "seq order per topic across nodes); unset = single node. Presence stays per node." },
    { "ADMIN_TOKEN", T_STR, OFF(admin_token), ALL(NULL), 0, 0, NULL, F_SECRET,
      "Bearer token (at least 16 bytes) for the admin/debug endpoint (streampai debug ...); "
      "required on every admin request, also from loopback (a same-host proxy makes every "
      "request loopback); unset disables the endpoint." },
    { "MEDIA_BACKEND", T_ENUM, OFF(media_backend), ALL(NULL), 0, 0, "local|cloudflare", F_KEY,
      "local (built-in relay) or cloudflare. Default: cloudflare when CLOUDFLARE_API_TOKEN and "
      "CLOUDFLARE_ACCOUNT_ID are set, else local." },
    { "CLOUDFLARE_API_TOKEN", T_STR, OFF(cloudflare_api_token), ALL(NULL), 0, 0, NULL, F_SECRET,
      "Cloudflare API token with Stream edit rights (required with MEDIA_BACKEND=cloudflare)." },
    { "CLOUDFLARE_ACCOUNT_ID", T_STR, OFF(cloudflare_account_id), ALL(NULL), 0, 0, NULL, 0,
      "Cloudflare account id (required with MEDIA_BACKEND=cloudflare)." },
    { "CLOUDFLARE_API_BASE_URL", T_URL, OFF(cloudflare_api_base_url), ALL(NULL), 0, 0, "http|https",
      0,
      "Stream API base. Default https://api.cloudflare.com/client/v4, or the built-in relay's API "
      "with MEDIA_BACKEND=local." },
    { "CLOUDFLARE_WEBHOOK_SECRET", T_STR, OFF(cloudflare_webhook_secret), ALL(NULL), 0, 0, NULL,
      F_SECRET, "Shared secret expected in the cf-webhook-auth header of live-input webhooks." },
    { "CLOUDFLARE_INPUT_POLL_INTERVAL", T_DUR, OFF(cloudflare_input_poll_interval), ALL("15000"),
      100, 3600000, NULL, 0,
      "Milliseconds between live-input reconciliation polls (webhooks are the primary signal)." },
    { "CLOUDFLARE_CALL_BUDGET", T_INT, OFF(cloudflare_call_budget), ALL("1100"), 1, 100000, NULL, 0,
      "Stream API calls allowed per 5 minutes per account (Cloudflare's limit is 1200)." },
    { "API_CALL_TIMEOUT", T_DUR, OFF(api_call_timeout), ALL("10000"), 100, 120000, NULL, 0,
      "Timeout of one outbound API call in milliseconds." },
    { "MAX_CONCURRENT_USERS", T_INT, OFF(max_concurrent_users), PER("100", "100", "10000"), 1,
      1000000, NULL, 0, "Maximum users with a running manager; more get a clear error." },
    { "MAX_PLATFORMS_PER_USER", T_INT, OFF(max_platforms_per_user), ALL("10"), 1, 100, NULL, 0,
      "Maximum destinations (platform accounts and custom RTMP) per user." },
    { "EVENT_HISTORY_SIZE", T_INT, OFF(event_history_size), ALL("100"), 1, 100000, NULL, 0,
      "Messages kept per topic so a reconnecting client can resume." },
    { "EVENT_HISTORY_BYTES", T_INT, OFF(event_history_bytes), ALL("65536"), 0, 67108864, NULL, 0,
      "Byte cap of each topic's resume history (0 = count only): big messages (stream status "
      "snapshots) keep fewer than EVENT_HISTORY_SIZE, so memory is bounded per topic." },
    { "ALERT_QUEUE_SIZE", T_INT, OFF(alert_queue_size), ALL("50"), 1, 4096, NULL, 0,
      "Pending alerts kept per user (the AlertQueue; lowest priority oldest dropped first)." },
    { "ALERT_PROCESSING_INTERVAL", T_DUR, OFF(alert_processing_interval),
      PER("500", "10", "1000"), 1, 60000, NULL, 0,
      "Milliseconds between AlertQueue ticks (when the next alert may show)." },
    { "UPLOAD_MAX_BYTES", T_INT, OFF(upload_max_bytes), ALL("5242880"), 1024, 104857600, NULL,
      0, "Largest widget upload (image or sound, POST /api/widgets/uploads) in bytes." },
    { "STREAM_DISCONNECT_TIMEOUT", T_DUR, OFF(stream_disconnect_timeout), ALL("300000"), 100, DAY,
      NULL, 0, "Grace window after the input disconnects while streaming before the stream ends." },
    { "PRESENCE_CLEANUP_TIMEOUT", T_DUR, OFF(presence_cleanup_timeout), ALL("5000"), 10, DAY, NULL,
      0, "After the last dashboard tab closes, an offline user's manager stops after this delay." },
    { "PLATFORM_VIEWERS_INTERVAL", T_DUR, OFF(platform_viewers_interval), ALL("30000"), 100,
      3600000, NULL, 0, "Milliseconds between viewer-count samples of each platform while live." },
    { "ALLOW_PRIVATE_DESTINATIONS", T_BOOL, OFF(allow_private_destinations),
      PER("false", "true", "false"), 0, 0, NULL, 0,
      "Allow RTMP destinations on private, loopback and link-local addresses (SSRF guard off)." },
    { "TWITCH_CLIENT_ID", T_STR, OFF(twitch_client_id), ALL(NULL), 0, 0, NULL, F_KEY,
      "Twitch application client id (Twitch integration disabled when unset)." },
    { "TWITCH_CLIENT_SECRET", T_STR, OFF(twitch_client_secret), ALL(NULL), 0, 0, NULL, F_SECRET,
      "Twitch application client secret." },
    { "TWITCH_REDIRECT_URI", T_URL, OFF(twitch_redirect_uri), ALL(NULL), 0, 0, "http|https", 0,
      "OAuth redirect URI registered with Twitch (default PUBLIC_URL/auth/twitch/callback)." },
    { "TWITCH_AUTH_URL", T_URL, OFF(twitch_auth_url), ALL("https://id.twitch.tv/oauth2"), 0, 0,
      "http|https", 0, "Twitch OAuth base URL (authorize, token, revoke, validate)." },
    { "TWITCH_API_URL", T_URL, OFF(twitch_api_url), ALL("https://api.twitch.tv/helix"), 0, 0,
      "http|https", 0, "Twitch Helix API base URL." },
    { "TWITCH_EVENTSUB_WS_URL", T_URL, OFF(twitch_eventsub_ws_url),
      ALL("wss://eventsub.wss.twitch.tv/ws"), 0, 0, "ws|wss", 0,
      "Twitch EventSub WebSocket URL (chat and events while streaming)." },
    { "TWITCH_EVENTSUB_KEEPALIVE", T_INT, OFF(twitch_eventsub_keepalive), ALL("30"), 10, 600,
      NULL, 0,
      "Seconds Twitch may stay silent on an EventSub WebSocket (keepalive_timeout_seconds): "
      "fewer keepalives per monitor; a dead socket is noticed after this + 5 s." },
    { "TWITCH_INGEST_URL", T_URL, OFF(twitch_ingest_url), ALL("rtmp://live.twitch.tv/app"), 0, 0,
      "rtmp|rtmps", 0, "Twitch RTMP ingest used for a connected Twitch account's output." },
    { "TWITCH_WEBHOOK_SECRET", T_STR, OFF(twitch_webhook_secret), ALL(NULL), 0, 0, NULL, F_SECRET,
      "EventSub webhook secret (10-100 characters); with an https PUBLIC_URL, events come by "
      "webhook instead of the WebSocket." },
    { "TWITCH_EVENTSUB_TRANSPORT", T_ENUM, OFF(twitch_eventsub_transport), ALL("auto"), 0, 0,
      "auto|websocket|webhook", 0,
      "How Twitch EventSub events arrive: auto (webhook when TWITCH_WEBHOOK_SECRET is set and "
      "PUBLIC_URL is https, else websocket), websocket, or webhook (to PUBLIC_URL/webhooks/twitch "
      "with an app access token; plain http only outside prod)." },
    { "GOOGLE_CLIENT_ID", T_STR, OFF(google_client_id), ALL(NULL), 0, 0, NULL, F_KEY,
      "Google OAuth client id for YouTube (YouTube integration disabled when unset)." },
    { "GOOGLE_CLIENT_SECRET", T_STR, OFF(google_client_secret), ALL(NULL), 0, 0, NULL, F_SECRET,
      "Google OAuth client secret." },
    { "GOOGLE_REDIRECT_URI", T_URL, OFF(google_redirect_uri), ALL(NULL), 0, 0, "http|https", 0,
      "OAuth redirect URI registered with Google (default PUBLIC_URL/auth/google/callback)." },
    { "GOOGLE_AUTH_URL", T_URL, OFF(google_auth_url),
      ALL("https://accounts.google.com/o/oauth2/v2/auth"), 0, 0, "http|https", 0,
      "Google OAuth authorize endpoint." },
    { "GOOGLE_TOKEN_URL", T_URL, OFF(google_token_url), ALL("https://oauth2.googleapis.com/token"),
      0, 0, "http|https", 0, "Google OAuth token endpoint." },
    { "GOOGLE_JWKS_URL", T_URL, OFF(google_jwks_url),
      ALL("https://www.googleapis.com/oauth2/v3/certs"), 0, 0, "http|https", 0,
      "Google's signing keys (JWKS) for id_token verification (Sign in with Google)." },
    { "GOOGLE_ISSUER", T_STR, OFF(google_issuer), ALL("https://accounts.google.com"), 0, 0, NULL,
      0, "Expected id_token issuer (iss); accounts.google.com without scheme is accepted too." },
    { "RELAY_RTMP_LISTEN", T_LISTEN, OFF(relay_rtmp_listen), ALL("127.0.0.1:1935"), 0, 0, NULL,
      F_KEY, "Built-in relay RTMP ingest address (use 0.0.0.0:1935 to accept OBS from the LAN)." },
    { "RELAY_API_LISTEN", T_LISTEN, OFF(relay_api_listen), ALL("127.0.0.1:8788"), 0, 0, NULL, 0,
      "Built-in relay's Cloudflare-compatible API address." },
    { "RELAY_API_TOKEN", T_STR, OFF(relay_api_token), ALL(NULL), 0, 0, NULL, F_SECRET,
      "Bearer token of the relay API (make run generates one; required in prod with "
      "MEDIA_BACKEND=local)." },
    { "RELAY_CA_FILE", T_STR, OFF(relay_ca_file), ALL(NULL), 0, 0, NULL, 0,
      "PEM CA bundle the relay trusts for rtmps:// destinations (default: the system store)." },
    { "RELAY_WEBHOOK_URL", T_URL, OFF(relay_webhook_url), ALL(NULL), 0, 0, "http|https", 0,
      "Where the relay posts live-input webhooks (default PUBLIC_URL/webhooks/cloudflare)." },
    { "RELAY_PUBLIC_RTMP_URL", T_URL, OFF(relay_public_rtmp_url), ALL(NULL), 0, 0, "rtmp|rtmps", 0,
      "Ingest URL shown to streamers (default rtmp://RELAY_RTMP_LISTEN/live)." },
    { "RELAY_MAX_INPUTS", T_INT, OFF(relay_max_inputs), ALL("1000"), 1, 1000000, NULL, 0,
      "Live inputs the relay accepts." },
    { "RELAY_OUTPUT_QUEUE_BYTES", T_INT, OFF(relay_output_queue_bytes), ALL("8388608"), 65536,
      1073741824, NULL, 0,
      "Per-output queue cap in bytes; a slower destination drops whole GOPs." },
    { "RELAY_OUTPUT_QUEUE_MS", T_DUR, OFF(relay_output_queue_ms), ALL("5000"), 100, 600000, NULL, 0,
      "Per-output queue cap in media milliseconds." },
    { "RELAY_TICK_MS", T_DUR, OFF(relay_tick_ms), ALL("200"), 10, 1000, NULL, 0,
      "Media tick of the relay: publishers are read and every output written once per tick "
      "(merged read/write, like SRS's mw_latency). Lower adds less latency, costs more CPU." },
    { "RECORDING_MODE", T_ENUM, OFF(recording_mode), PER("automatic", "off", "automatic"), 0, 0,
      "off|automatic", 0,
      "Record each stream (built-in relay: DATA_DIR/recordings; Cloudflare: the input's "
      "recording mode). A user's own setting (PUT /api/stream/recording) overrides it." },
    { "RECORDING_TIMEOUT_SECONDS", T_INT, OFF(recording_timeout_seconds), ALL("3600"), 0, 86400,
      NULL, 0, "A reconnect within this many seconds continues the same recording (0: end it at "
      "once)." },
    { "RECORDING_RETENTION_DAYS", T_INT, OFF(recording_retention_days), ALL("30"), 0, 3650, NULL,
      0, "Recordings older than this many days are deleted (checked hourly; 0 keeps them)." },
    { "RELAY_SLATE_DIR", T_STR, OFF(relay_slate_dir), ALL("assets/slates"), 0, 0, NULL, 0,
      "Directory of the relay's \"be right back\" slates (scripts/gen_slates.sh), looped to "
      "destinations while the encoder is away (disconnect protection)." },
};

#define N_VARS (sizeof(vars) / sizeof(vars[0]))

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SP_ECONFIG;
}

int sp_config_parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out,
                        char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    while (s && isspace((unsigned char)*s))
        s++;
    long long v = s && *s ? strtoll(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || errno || end == s || *end != '\0')
        return fail(err, errlen,
                    "%s: expected an integer between %" PRId64 " and %" PRId64 ", got '%.40s'",
                    name, min, max, s ? s : "");
    if (v < min || v > max)
        return fail(err, errlen, "%s: %lld is out of range (expected %" PRId64 "..%" PRId64 ")",
                    name, v, min, max);
    *out = v;
    return 0;
}

int sp_config_parse_duration(const char *name, const char *s, int64_t min, int64_t max,
                             int64_t *out_ms, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long long v = s && *s ? strtoll(s, &end, 10) : 0;
    int64_t mult = 1;
    if (s == NULL || *s == '\0' || errno || end == s || v < 0)
        goto bad;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = DAY;
    else
        goto bad;
    if (v > INT64_MAX / mult)
        goto bad;
    v *= mult;
    if (v < min || v > max)
        return fail(err, errlen,
                    "%s: %lld ms is out of range (expected %" PRId64 "..%" PRId64 " ms)", name, v,
                    min, max);
    *out_ms = v;
    return 0;
bad:
    return fail(err, errlen,
                "%s: expected a duration in milliseconds (e.g. 5000, 5s, 2m, 1h, 30d), got '%.40s'",
                name, s ? s : "");
}

int sp_config_parse_bool(const char *name, const char *s, bool *out, char *err, size_t errlen)
{
    static const char *yes[] = { "1", "true", "yes", "on" }, *no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; s && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return fail(err, errlen, "%s: expected true or false, got '%.40s'", name, s ? s : "");
}

int sp_config_parse_listen(const char *name, const char *s, char *host, size_t hostcap, int *port,
                           char *err, size_t errlen)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (colon == NULL || colon == s)
        goto bad;
    size_t hl = (size_t)(colon - s);
    const char *h = s;
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            goto bad;
        h = s + 1;
        hl -= 2;
    }
    if (hl + 1 > hostcap || hl == 0)
        goto bad;
    for (size_t i = 0; i < hl; i++)
        if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-' || h[i] == ':'))
            goto bad;
    int64_t p;
    char dummy[8];
    if (sp_config_parse_int(name, colon + 1, 0, 65535, &p, dummy, 0) < 0)
        goto bad;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
bad:
    return fail(err, errlen,
                "%s: expected host:port with port 0-65535 (e.g. 127.0.0.1:4000), got '%.60s'", name,
                s ? s : "");
}

int sp_config_parse_url(const char *name, const char *s, const char *const *schemes, char *err,
                        size_t errlen)
{
    const char *sep = s ? strstr(s, "://") : NULL;
    const char *colon = s ? strchr(s, ':') : NULL;
    bool ok_scheme = false;
    if (s == NULL || colon == NULL)
        goto bad;
    size_t sl = (size_t)(colon - s);
    for (size_t i = 0; schemes && schemes[i]; i++)
        if (strlen(schemes[i]) == sl && strncasecmp(s, schemes[i], sl) == 0)
            ok_scheme = true;
    if (!ok_scheme)
        goto bad;
    if (sl == 6 && strncasecmp(s, "sqlite", 6) == 0)
        return s[7] ? 0 : fail(err, errlen, "%s: sqlite:PATH needs a path", name);
    if (sep == NULL || sep != colon)
        goto bad;
    const char *host = sep + 3;
    const char *at = strpbrk(host, "@/?#");
    if (at && *at == '@')
        host = at + 1;
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?')
        goto bad;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            goto bad;
    return 0;
bad:;
    char list[128] = "";
    for (size_t i = 0; schemes && schemes[i]; i++) {
        strncat(list, i ? " or " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, schemes[i], sizeof(list) - strlen(list) - 1);
        strncat(list, "://", sizeof(list) - strlen(list) - 1);
    }
    return fail(err, errlen, "%s: expected a URL starting with %s and a host", name, list);
}

static void split_choices(const char *choices, char buf[][16], const char **out, size_t max)
{
    size_t n = 0;
    const char *p = choices;
    while (p && *p && n + 1 < max) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l >= 16)
            l = 15;
        memcpy(buf[n], p, l);
        buf[n][l] = '\0';
        out[n] = buf[n];
        n++;
        p = bar ? bar + 1 : NULL;
    }
    out[n] = NULL;
}

static int parse_env_name(const char *s, sp_env_t *env)
{
    if (s == NULL || *s == '\0' || strcmp(s, "dev") == 0 || strcmp(s, "development") == 0)
        *env = SP_ENV_DEV;
    else if (strcmp(s, "test") == 0)
        *env = SP_ENV_TEST;
    else if (strcmp(s, "prod") == 0 || strcmp(s, "production") == 0)
        *env = SP_ENV_PROD;
    else
        return -1;
    return 0;
}

static const char *env_names[] = { "dev", "test", "prod" };

int sp_config_load(sp_config_t *c, sp_getenv_cb get, void *ud, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    const char *envs = get("STREAMPAI_ENV", ud);
    if (parse_env_name(envs, &c->env) < 0)
        return fail(err, errlen, "STREAMPAI_ENV: expected dev, test or prod, got '%.20s'", envs);
    c->env_name = env_names[c->env];
    for (size_t i = 0; i < N_VARS; i++) {
        const var_t *v = &vars[i];
        const char *val = get(v->name, ud);
        if (val && *val == '\0')
            val = NULL;
        if (val == NULL)
            val = v->def[c->env];
        if (val == NULL)
            continue;
        void *field = (char *)c + v->off;
        int rc = 0;
        switch (v->type) {
        case T_STR:
            *(char **)field = sp_strdup(val);
            break;
        case T_INT:
            rc = sp_config_parse_int(v->name, val, v->min, v->max, (int64_t *)field, err, errlen);
            break;
        case T_DUR:
            rc = sp_config_parse_duration(v->name, val, v->min, v->max, (int64_t *)field, err,
                                          errlen);
            break;
        case T_BOOL:
            rc = sp_config_parse_bool(v->name, val, (bool *)field, err, errlen);
            break;
        case T_LISTEN: {
            char host[256];
            int port;
            rc = sp_config_parse_listen(v->name, val, host, sizeof(host), &port, err, errlen);
            if (rc == 0)
                *(char **)field = sp_strdup(val);
            break;
        }
        case T_URL: {
            char cb[8][16];
            const char *schemes[8];
            split_choices(v->choices, cb, schemes, 8);
            rc = sp_config_parse_url(v->name, val, schemes, err, errlen);
            if (rc == 0)
                *(char **)field = sp_strdup(val);
            break;
        }
        case T_ENUM: {
            char cb[8][16];
            const char *ch[8];
            split_choices(v->choices, cb, ch, 8);
            bool ok = false;
            for (size_t k = 0; ch[k]; k++)
                ok = ok || strcmp(ch[k], val) == 0;
            if (!ok)
                rc = fail(err, errlen, "%s: expected one of %s, got '%.40s'", v->name, v->choices,
                          val);
            else
                *(char **)field = sp_strdup(val);
            break;
        }
        case T_LOGLEVEL: {
            int lvl = sp_log_level_parse(val);
            if (lvl < 0)
                rc = fail(err, errlen, "%s: expected debug, info, warn or error, got '%.40s'",
                          v->name, val);
            else
                *(int *)field = lvl;
            break;
        }
        }
        if (rc < 0) {
            sp_config_cleanup(c);
            return rc;
        }
    }
    /* Cross-variable checks. */
    if (c->ws_idle_timeout <= c->ws_ping_interval) {
        int64_t idle = c->ws_idle_timeout, ping = c->ws_ping_interval;
        sp_config_cleanup(c);
        return fail(err, errlen,
                    "WS_IDLE_TIMEOUT: must be greater than WS_PING_INTERVAL (%" PRId64
                    " <= %" PRId64 " ms would close silent peers before the first ping)",
                    idle, ping);
    }
    /* Derived defaults. */
    if (c->public_url == NULL) {
        char buf[300];
        snprintf(buf, sizeof(buf), "http://%s", c->http_listen);
        c->public_url = sp_strdup(buf);
    }
    size_t pl = strlen(c->public_url);
    while (pl > 0 && c->public_url[pl - 1] == '/')
        c->public_url[--pl] = '\0';
    if (c->media_backend == NULL)
        c->media_backend =
            sp_strdup(c->cloudflare_api_token && c->cloudflare_account_id ? "cloudflare" : "local");
    if (c->cloudflare_api_base_url == NULL) {
        char buf[300];
        if (strcmp(c->media_backend, "local") == 0)
            snprintf(buf, sizeof(buf), "http://%s/client/v4", c->relay_api_listen);
        else
            snprintf(buf, sizeof(buf), "https://api.cloudflare.com/client/v4");
        c->cloudflare_api_base_url = sp_strdup(buf);
    }
    if (strcmp(c->media_backend, "local") == 0) {
        if (c->cloudflare_account_id == NULL)
            c->cloudflare_account_id = sp_strdup("local");
        if (c->cloudflare_api_token == NULL && c->relay_api_token)
            c->cloudflare_api_token = sp_strdup(c->relay_api_token);
    }
    if (c->relay_webhook_url == NULL) {
        char buf[400];
        snprintf(buf, sizeof(buf), "%s/webhooks/cloudflare", c->public_url);
        c->relay_webhook_url = sp_strdup(buf);
    }
    if (c->relay_public_rtmp_url == NULL) {
        char buf[300];
        snprintf(buf, sizeof(buf), "rtmp://%s/live", c->relay_rtmp_listen);
        c->relay_public_rtmp_url = sp_strdup(buf);
    }
    if (c->google_redirect_uri == NULL) {
        char buf[400];
        snprintf(buf, sizeof(buf), "%s/auth/google/callback", c->public_url);
        c->google_redirect_uri = sp_strdup(buf);
    }
    if (c->twitch_redirect_uri == NULL) {
        char buf[400];
        snprintf(buf, sizeof(buf), "%s/auth/twitch/callback", c->public_url);
        c->twitch_redirect_uri = sp_strdup(buf);
    }
    /* Secrets given in the environment must never reach a log line. */
    for (size_t i = 0; i < N_VARS; i++)
        if ((vars[i].flags & F_SECRET) && vars[i].type == T_STR)
            sp_log_add_secret(*(char **)((char *)c + vars[i].off));
    return 0;
}

bool sp_config_twitch_webhook(const sp_config_t *c)
{
    const char *tr = c ? c->twitch_eventsub_transport : NULL;
    if (tr && strcmp(tr, "webhook") == 0)
        return true;
    if (tr && strcmp(tr, "websocket") == 0)
        return false;
    return c && c->twitch_webhook_secret && c->twitch_webhook_secret[0] && c->public_url &&
           strncasecmp(c->public_url, "https://", 8) == 0;
}

static const char *env_get(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

int sp_config_load_env(sp_config_t *c, char *err, size_t errlen)
{
    return sp_config_load(c, env_get, NULL, err, errlen);
}

void sp_config_cleanup(sp_config_t *c)
{
    for (size_t i = 0; i < N_VARS; i++) {
        type_t t = vars[i].type;
        if (t == T_STR || t == T_LISTEN || t == T_URL || t == T_ENUM) {
            char **f = (char **)((char *)c + vars[i].off);
            sp_free(*f);
            *f = NULL;
        }
    }
}

const char *sp_config_var_name(size_t i)
{
    return i < N_VARS ? vars[i].name : NULL;
}

static void line(FILE *out, bool ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void line(FILE *out, bool ok, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "%s %-28s ", ok ? "\xe2\x9c\x85" : "\xe2\x9d\x8c", name);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
}

static size_t b64_decoded_len(const char *s)
{
    size_t n = strlen(s), pad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/' || s[i] == '=' ||
              s[i] == '-' || s[i] == '_'))
            return 0;
    while (n > 0 && s[n - 1] == '=') {
        n--;
        pad++;
    }
    return n * 3 / 4;
}

/* "Integrations:": which optional services this configuration turns on, one line each
   (enabled / disabled and what enables it). Kick, Facebook and SMTP have no client in this
   build: they are listed as not available rather than left out. */
static void integrations(FILE *out, const sp_config_t *c)
{
    bool twitch = c->twitch_client_id && c->twitch_client_secret;
    bool google = c->google_client_id && c->google_client_secret;
    bool cf = strcmp(c->media_backend, "cloudflare") == 0;
    bool pg = c->database_url && strncmp(c->database_url, "postgres", 8) == 0;
    fprintf(out, "Integrations:\n");
    fprintf(out, "  %-12s %s\n", "Twitch",
            twitch ? "enabled" : "disabled (set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET)");
    fprintf(out, "  %-12s %s\n", "YouTube",
            google ? "enabled (Google client)"
                   : "disabled (set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)");
    fprintf(out, "  %-12s %s\n", "Kick", "not available (no Kick client in this build)");
    fprintf(out, "  %-12s %s\n", "Facebook", "not available (no Facebook client in this build)");
    fprintf(out, "  %-12s %s\n", "Cloudflare",
            cf ? "enabled (media on Cloudflare Stream)"
               : "disabled (media on the built-in relay; media backend cloudflare enables it)");
    fprintf(out, "  %-12s %s\n", "SMTP", "not available (this build sends no e-mail)");
    fprintf(out, "  %-12s %s\n", "Redis",
            c->redis_url ? "enabled (multi-node pub/sub)"
                         : "disabled (single node; set REDIS_URL)");
    fprintf(out, "  %-12s %s\n", "PostgreSQL",
            pg ? "enabled" : "disabled (SQLite in DATA_DIR; set DATABASE_URL=postgres://...)");
}

int sp_config_check(const sp_config_t *c, sp_getenv_cb get, void *ud, void *out_file)
{
    FILE *out = out_file;
    int failed = 0;
    bool prod = c->env == SP_ENV_PROD;
    fprintf(out, "streampai configuration check (STREAMPAI_ENV=%s)\n", c->env_name);
    line(out, true, "STREAMPAI_ENV", "%s", c->env_name);
    line(out, true, "HTTP_LISTEN", "%s", c->http_listen);
    bool has_public = get("PUBLIC_URL", ud) && *get("PUBLIC_URL", ud);
    bool https = strncasecmp(c->public_url, "https://", 8) == 0;
    if (prod && (!has_public || !https)) {
        line(out, false, "PUBLIC_URL", "%s (required in prod, must be https://)",
             has_public ? c->public_url : "missing");
        failed++;
    } else {
        line(out, true, "PUBLIC_URL", "%s%s", c->public_url,
             has_public ? "" : " (derived from HTTP_LISTEN)");
    }
    line(out, true, "DATA_DIR", "%s", c->data_dir);
    line(out, true, "DATABASE_URL", "%s",
         c->database_url ? (strncmp(c->database_url, "sqlite", 6) == 0 ? "SQLite" : "PostgreSQL")
                         : "SQLite in DATA_DIR");
    if (c->token_signing_secret && strlen(c->token_signing_secret) < 32) {
        line(out, false, "TOKEN_SIGNING_SECRET", "too short (%zu bytes; at least 32)",
             strlen(c->token_signing_secret));
        failed++;
    } else if (c->token_signing_secret) {
        line(out, true, "TOKEN_SIGNING_SECRET", "set (%zu bytes)", strlen(c->token_signing_secret));
    } else if (prod) {
        line(out, false, "TOKEN_SIGNING_SECRET", "missing (required in prod, at least 32 bytes)");
        failed++;
    } else {
        line(out, true, "TOKEN_SIGNING_SECRET", "not set: generated once into DATA_DIR (%s only)",
             c->env_name);
    }
    if (c->secrets_key && b64_decoded_len(c->secrets_key) != 32) {
        line(out, false, "SECRETS_KEY", "must be 32 bytes, base64-encoded");
        failed++;
    } else if (c->secrets_key) {
        line(out, true, "SECRETS_KEY", "set (32 bytes)");
    } else if (prod) {
        line(out, false, "SECRETS_KEY",
             "missing (required in prod: 32 bytes base64, e.g. openssl rand -base64 32)");
        failed++;
    } else {
        line(out, true, "SECRETS_KEY", "not set: generated once into DATA_DIR (%s only)",
             c->env_name);
    }
    bool cf = strcmp(c->media_backend, "cloudflare") == 0;
    line(out, true, "MEDIA_BACKEND", "%s", c->media_backend);
    if (cf) {
        const char *need[] = { "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID",
                               "CLOUDFLARE_WEBHOOK_SECRET" };
        const char *have[] = { c->cloudflare_api_token, c->cloudflare_account_id,
                               c->cloudflare_webhook_secret };
        for (int i = 0; i < 3; i++) {
            if (have[i])
                line(out, true, need[i], "set");
            else {
                line(out, false, need[i], "missing (required with MEDIA_BACKEND=cloudflare)");
                failed++;
            }
        }
    } else {
        line(out, true, "RELAY_RTMP_LISTEN", "%s", c->relay_rtmp_listen);
        if (c->relay_api_token)
            line(out, true, "RELAY_API_TOKEN", "set");
        else if (prod) {
            line(out, false, "RELAY_API_TOKEN",
                 "missing (required in prod with the built-in relay)");
            failed++;
        } else {
            line(out, true, "RELAY_API_TOKEN", "not set: make run generates one");
        }
    }
    /* A platform is enabled by its client id; then its secret is required (prod refuses a
     * half-configured platform, other profiles report it). */
    const char *pname[] = { "TWITCH", "GOOGLE" };
    const char *pid[] = { c->twitch_client_id, c->google_client_id };
    const char *psec[] = { c->twitch_client_secret, c->google_client_secret };
    const char *poff[] = { "not set (Twitch disabled)",
                           "not set (Sign in with Google and YouTube disabled)" };
    for (int i = 0; i < 2; i++) {
        char var[40];
        snprintf(var, sizeof(var), "%s_CLIENT_ID", pname[i]);
        if (pid[i] && psec[i]) {
            line(out, true, var, "set");
        } else if (pid[i] || psec[i]) {
            snprintf(var, sizeof(var), "%s_CLIENT_%s", pname[i], pid[i] ? "SECRET" : "ID");
            line(out, !prod, var, "missing (the other half of the %s client is set)", pname[i]);
            failed += prod;
        } else {
            line(out, true, var, "%s", poff[i]);
        }
    }
    if (c->twitch_webhook_secret) {
        size_t n = strlen(c->twitch_webhook_secret);
        if (n < 10 || n > 100) {
            line(out, false, "TWITCH_WEBHOOK_SECRET", "must be 10-100 characters (has %zu)", n);
            failed++;
        } else {
            line(out, true, "TWITCH_WEBHOOK_SECRET", "set (EventSub by webhook when PUBLIC_URL "
                                                     "is https)");
        }
    }
    const char *tr = c->twitch_eventsub_transport ? c->twitch_eventsub_transport : "auto";
    bool wh = sp_config_twitch_webhook(c);
    if (wh && (!c->twitch_webhook_secret || !c->twitch_webhook_secret[0])) {
        line(out, false, "TWITCH_EVENTSUB_TRANSPORT", "webhook needs TWITCH_WEBHOOK_SECRET");
        failed++;
    } else if (wh && prod && !https) {
        line(out, false, "TWITCH_EVENTSUB_TRANSPORT",
             "webhook needs an https PUBLIC_URL in prod (Twitch only calls https on 443)");
        failed++;
    } else if (c->twitch_client_id || strcmp(tr, "auto") != 0) {
        line(out, true, "TWITCH_EVENTSUB_TRANSPORT", "%s (%s)", wh ? "webhook" : "websocket",
             strcmp(tr, "auto") == 0 ? "auto" : "forced");
    }
    line(out, true, "REDIS_URL", "%s", c->redis_url ? "set (multi-node)" : "not set (single node)");
    if (prod && c->test_mode) {
        line(out, false, "TEST_MODE", "must be false in prod");
        failed++;
    }
    if (prod && c->allow_private_destinations) {
        line(out, false, "ALLOW_PRIVATE_DESTINATIONS", "must be false in prod (SSRF)");
        failed++;
    }
    integrations(out, c);
    fprintf(out, "%s\n", failed ? "configuration has errors" : "configuration ok");
    return failed;
}

void sp_config_write_docs(void *out_file)
{
    FILE *out = out_file;
    fprintf(out, "| Variable | dev | test | prod | Meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < N_VARS; i++) {
        const var_t *v = &vars[i];
        fprintf(out, "| `%s` |", v->name);
        for (int e = 0; e < 3; e++)
            fprintf(out, " %s%s%s |", v->def[e] ? "`" : "",
                    v->def[e] ? v->def[e]
                              : ((v->flags & F_REQ_PROD) && e == 2 ? "**required**" : "—"),
                    v->def[e] ? "`" : "");
        fprintf(out, " %s%s |\n", v->help, (v->flags & F_SECRET) ? " Secret: never logged." : "");
    }
}
