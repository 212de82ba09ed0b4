/*
 * main: the streampai command line.
 *
 *   streampai [serve]        the control plane (HTTP, WebSocket, managers)
 *   streampai relay          the built-in RTMP relay (media backend)
 *   streampai check-config   validate the environment (the seed's ConfigValidator)
 *   streampai migrate        apply database migrations and exit
 *   streampai debug WHAT     presence | managers | users | counts (admin endpoint)
 *   streampai version
 *
 * Exit codes: 0 ok, 2 usage or configuration error, 1 runtime failure.
 * `serve` owns one libuv loop. SIGINT/SIGTERM: stop accepting, close
 * WebSockets with 1001, let in-flight responses finish, flush storage, exit 0
 * (forced after SHUTDOWN_TIMEOUT). SIGHUP reopens LOG_FILE.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sp_alloc.h"
#include "core/sp_jarena.h"
#include "web/sp_app.h"
#include "auth/sp_auth.h"
#include "media/sp_cloudflare.h"
#include "web/sp_debug_cli.h"
#include "web/sp_routes_auth.h"
#include "web/sp_web.h"
#include "web/sp_routes_sessions.h"
#include "web/sp_socket.h"
#include "web/sp_socket_auth.h"
#include "auth/sp_seal.h"
#include "store/sp_store.h"
#include "core/sp_config.h"
#include "core/sp_err.h"
#include "core/sp_job.h"
#include "core/sp_log.h"
#include "net/sp_metrics.h"
#include "relay/sp_relay.h"
#include "core/sp_time.h"

#ifndef SP_VERSION
#define SP_VERSION "dev"
#endif

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

typedef struct {
    sp_app_t app;
    sp_config_t cfg;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_timer_t lag_timer, shutdown_timer;
    uint64_t lag_expected_ms;
    uint64_t shutdown_started_ms;
    int exit_code;
} server_t;

static const char *usage_main =
    "usage: streampai [COMMAND] [--help]\n"
    "\n"
    "commands:\n"
    "  serve          run the control plane (default)\n"
    "  relay          run the built-in RTMP relay (media backend)\n"
    "  check-config   check the environment's configuration; non-zero exit on errors\n"
    "  migrate        apply database migrations and exit\n"
    "  debug WHAT     show live state from a running server: presence|managers|users|counts\n"
    "  version        print the version\n"
    "\n"
    "Configuration comes from environment variables (see docs/configuration.md);\n"
    "STREAMPAI_ENV=dev|test|prod selects the defaults.\n";

static const char *usage_cmd(const char *cmd)
{
    if (strcmp(cmd, "serve") == 0)
        return "usage: streampai serve\n\nRuns the HTTP/WebSocket control plane on HTTP_LISTEN "
               "(default 127.0.0.1:4000).\n"
               "Stops gracefully on SIGINT/SIGTERM; SIGHUP reopens LOG_FILE.\n";
    if (strcmp(cmd, "relay") == 0)
        return "usage: streampai relay\n\nRuns the built-in RTMP relay: ingest on "
               "RELAY_RTMP_LISTEN, a Cloudflare Stream\n"
               "compatible API on RELAY_API_LISTEN (Bearer RELAY_API_TOKEN).\n";
    if (strcmp(cmd, "check-config") == 0)
        return "usage: streampai check-config\n\nPrints one line per required variable and key "
               "setting (✅ ok / ❌ problem).\n"
               "Exit 0 when the selected STREAMPAI_ENV's requirements are met, 2 otherwise.\n"
               "  --markdown   print the table of every variable (docs/configuration.md)\n";
    if (strcmp(cmd, "migrate") == 0)
        return "usage: streampai migrate\n\nApplies pending migrations to DATABASE_URL (or SQLite "
               "in DATA_DIR) and exits.\n";
    if (strcmp(cmd, "debug") == 0)
        return "usage: streampai debug presence|managers|users|counts\n\nQueries the running "
               "server's admin endpoint "
               "(loopback, Bearer ADMIN_TOKEN).\n";
    if (strcmp(cmd, "version") == 0)
        return "usage: streampai version\n\nPrints the version.\n";
    return NULL;
}

static int load_config(sp_config_t *cfg)
{
    char err[512];
    if (sp_config_load_env(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "streampai: configuration error: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

static const char *env_get(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

/*
 * The production rules of `check-config`, enforced by every long-running command: in prod a
 * configuration that check-config rejects (TEST_MODE=true, ALLOW_PRIVATE_DESTINATIONS=true, a
 * missing required variable, the relay API without a token) refuses to start with exit 2 and
 * the variables named on stderr. Outside prod the defaults stand and nothing is refused here.
 */
static int enforce_prod_rules(const sp_config_t *cfg, const char *cmd)
{
    if (cfg->env != SP_ENV_PROD)
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        fprintf(stderr, "streampai %s: cannot check the configuration\n", cmd);
        return EXIT_USAGE;
    }
    int failed = sp_config_check(cfg, env_get, NULL, mem);
    /* the relay serves its API in prod only with a token, whatever MEDIA_BACKEND says */
    bool relay_open =
        strcmp(cmd, "relay") == 0 && (!cfg->relay_api_token || !*cfg->relay_api_token);
    fclose(mem);
    if (relay_open && !strstr(text ? text : "", "\xe2\x9d\x8c RELAY_API_TOKEN")) {
        fprintf(stderr, "streampai %s: refusing to start in prod: RELAY_API_TOKEN missing "
                        "(the relay API must not be open)\n", cmd);
        failed++;
    }
    if (failed && text) {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            if (strncmp(line, "\xe2\x9d\x8c ", 4) == 0)
                fprintf(stderr, "streampai %s: refusing to start in prod: %s\n", cmd, line + 4);
    }
    free(text);
    return failed ? EXIT_USAGE : 0;
}

static int ensure_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    /* the data dir itself holds the database, uploads and keys: owner only */
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- serve --------------------------------------------------------------------------- */

static void on_lag_timer(uv_timer_t *t)
{
    server_t *s = t->data;
    uint64_t now = uv_now(t->loop);
    double lag = now > s->lag_expected_ms ? (double)(now - s->lag_expected_ms) : 0;
    sp_metrics_loop_lag(lag);
    s->lag_expected_ms = now + 1000;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish_shutdown(server_t *s, const char *why)
{
    sp_app_t *app = &s->app;
    sp_info("main", "shutdown complete", "reason=%s ms=%llu", why,
            (unsigned long long)(sp_mono_ms() - s->shutdown_started_ms));
    uv_timer_stop(&s->shutdown_timer);
    sp_web_live_shutdown(app);
    sp_socket_free(app);
    sp_http_server_free(app->http);
    app->http = NULL;
    sp_core_free();
    uv_stop(app->loop);
}

static void on_shutdown_tick(uv_timer_t *t)
{
    server_t *s = t->data;
    sp_app_t *app = &s->app;
    uint64_t elapsed = sp_mono_ms() - s->shutdown_started_ms;
    bool idle =
        sp_http_server_busy(app->http) == 0 && sp_job_pending() == 0 && sp_socket_drained(app);
    if (idle) {
        finish_shutdown(s, "drained");
        return;
    }
    if (elapsed >= (uint64_t)s->cfg.shutdown_timeout) {
        sp_warn("main", "shutdown timeout: closing remaining connections", "busy=%zu jobs=%u",
                sp_http_server_busy(app->http), sp_job_pending());
        finish_shutdown(s, "timeout");
    }
}

static void begin_shutdown(server_t *s, const char *signame)
{
    sp_app_t *app = &s->app;
    if (app->shutting_down) {
        sp_warn("main", "second signal: exiting now", "signal=%s", signame);
        finish_shutdown(s, "second signal");
        return;
    }
    app->shutting_down = true;
    s->shutdown_started_ms = sp_mono_ms();
    sp_info("main", "shutting down", "signal=%s", signame);
    sp_http_server_stop_accepting(app->http);
    sp_socket_shutdown(app); /* close 1001 "going away" on every WebSocket */
    sp_web_live_shutdown(app); /* stop managers; their pending requests get 503 now */
    uv_timer_start(&s->shutdown_timer, on_shutdown_tick, 0, 20);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *s = h->data;
    if (signum == SIGHUP) {
        int rc = sp_log_reopen();
        sp_info("main", "log file reopened", "rc=%d", rc);
        return;
    }
    begin_shutdown(s, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void store_closed(void *ud)
{
    *(bool *)ud = true;
}

static const char *store_ready(sp_app_t *app, void *ud)
{
    (void)ud;
    return app->store && sp_store_healthy(app->store) ? NULL : "database unreachable";
}

static int cmd_serve(void)
{
    server_t *s = sp_calloc(1, sizeof(*s));
    sp_app_t *app = &s->app;
    int rc = load_config(&s->cfg);
    if (rc) {
        sp_free(s);
        return rc;
    }
    rc = enforce_prod_rules(&s->cfg, "serve");
    if (rc) {
        sp_config_cleanup(&s->cfg);
        sp_free(s);
        return rc;
    }
    if (sp_log_open((sp_log_level_t)s->cfg.log_level, s->cfg.log_file) < 0) {
        fprintf(stderr, "streampai: cannot open LOG_FILE %s\n", s->cfg.log_file);
        rc = EXIT_USAGE;
        goto out;
    }
    if (ensure_dir(s->cfg.data_dir) < 0) {
        sp_error("main", "cannot create DATA_DIR", "path=\"%s\"", s->cfg.data_dir);
        rc = EXIT_RUNTIME;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    app->loop = uv_default_loop();
    app->cfg = &s->cfg;
    app->started_mono_ms = sp_mono_ms();
    app->router = sp_router_new();
    sp_info("main", "starting", "version=%s env=%s pid=%d", SP_VERSION, s->cfg.env_name,
            (int)getpid());

    {
        char serr[512];
        if (sp_seal_init(&s->cfg, serr, sizeof(serr)) < 0) {
            sp_error("main", "cannot load the secrets key", "detail=\"%s\"", serr);
            fprintf(stderr, "streampai: %s\n", serr);
            rc = EXIT_USAGE;
            goto loop_out;
        }
        if (sp_store_open(app->loop, &s->cfg, &app->store, serr, sizeof(serr)) < 0) {
            sp_error("main", "cannot open the database", "detail=\"%s\"", serr);
            rc = EXIT_RUNTIME;
            goto loop_out;
        }
        if (sp_auth_new(app->loop, &s->cfg, app->store, &app->auth) < 0) {
            rc = EXIT_USAGE;
            goto loop_out;
        }
        sp_routes_auth_register(app);
        sp_routes_sessions_register(app); /* GET/DELETE /api/sessions (h12b) */
        sp_app_add_ready_check(app, "store", store_ready, NULL);
    }
    sp_core_register_routes(app);
    if (sp_socket_init(app) < 0) {
        sp_error("main", "cannot start the WebSocket bus", "hint=%s", "check REDIS_URL");
        rc = EXIT_USAGE;
        goto loop_out;
    }
    if (sp_socket_auth_attach(app) != 0) { /* GET /socket: session cookie or ?token=JWT */
        sp_error("main", "cannot authenticate WebSockets", "");
        rc = EXIT_RUNTIME;
        goto loop_out;
    }
    /* The one media client: Cloudflare Stream, or the built-in relay's compatible API. */
    {
        bool cf = strcmp(s->cfg.media_backend, "cloudflare") == 0;
        sp_cloudflare_opts_t co;
        sp_cloudflare_opts_from_config(&s->cfg, &co);
        app->cloudflare = s->cfg.cloudflare_api_token ? sp_cloudflare_new(app->loop, &co) : NULL;
        if (app->cloudflare == NULL && cf) {
            sp_error("main", "cannot create the Cloudflare client", "hint=%s",
                     "check CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN, CLOUDFLARE_API_BASE_URL");
            rc = EXIT_USAGE;
            goto loop_out;
        }
        if (app->cloudflare == NULL)
            sp_warn("main", "built-in relay not configured: streaming disabled", "hint=%s",
                    "set RELAY_API_TOKEN (make run does) and start `streampai relay`");
        else
            sp_info("main", "media backend", "backend=%s api=%s", s->cfg.media_backend,
                    s->cfg.cloudflare_api_base_url);
    }
    if (sp_web_platforms_init(app) != 0) { rc = EXIT_RUNTIME; goto loop_out; } /* OAuth flows */
    if (sp_web_live_init(app) != 0) {
        rc = EXIT_USAGE;
        goto loop_out;
    }
    sp_web_live_routes(app);
    if ((rc = sp_web_psup_init(app) ? EXIT_RUNTIME : 0) != 0) /* platforms: monitors, chat */
        goto loop_out;
    sp_web_live_attach_ws(app); /* presence observer on dashboard sockets */
#ifdef SP_TEST_HOOKS
    if (s->cfg.test_mode)
        sp_test_register_routes(app);
#endif

    sp_http_opts_t ho = {
        .listen = s->cfg.http_listen,
        .max_connections = (size_t)s->cfg.max_connections,
        .max_header_bytes = 16384,
        .default_body_limit = (size_t)s->cfg.max_body_size,
        .header_timeout_ms = (uint64_t)s->cfg.http_header_timeout,
        .idle_timeout_ms = (uint64_t)s->cfg.http_idle_timeout,
        .web_dir = s->cfg.web_dir,
        .server_name = "streampai",
    };
    app->http = sp_http_server_new(app->loop, &ho, app->router);
    if (sp_http_server_listen(app->http) < 0) {
        rc = EXIT_RUNTIME;
        sp_http_server_free(app->http);
        app->http = NULL;
        goto loop_out;
    }
    uv_signal_init(app->loop, &s->sig_int);
    uv_signal_init(app->loop, &s->sig_term);
    uv_signal_init(app->loop, &s->sig_hup);
    s->sig_int.data = s->sig_term.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
    uv_timer_init(app->loop, &s->lag_timer);
    uv_timer_init(app->loop, &s->shutdown_timer);
    s->lag_timer.data = s->shutdown_timer.data = s;
    s->lag_expected_ms = uv_now(app->loop) + 1000;
    uv_timer_start(&s->lag_timer, on_lag_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&s->lag_timer);

    uv_run(app->loop, UV_RUN_DEFAULT);
    rc = 0;
loop_out:
    sp_web_live_shutdown(app);
    sp_web_psup_free(app);
    if (app->cloudflare) {
        sp_cloudflare_free(app->cloudflare);
        app->cloudflare = NULL;
        uv_run(app->loop, UV_RUN_NOWAIT);
    }
    sp_web_platforms_free(app); /* before the store closes: pending flows answer now */
    if (app->ws || app->pubsub)
        sp_socket_free(app);
    if (app->store) {
        /* Flush and close storage before the handle sweep (auth-branch wiring). */
        bool closed = false;
        sp_store_close(app->store, store_closed, &closed);
        while (!closed)
            uv_run(app->loop, UV_RUN_ONCE);
        app->store = NULL;
    }
    /* Close every remaining handle and let their callbacks run. */
    uv_walk(app->loop, close_walk, NULL);
    uv_run(app->loop, UV_RUN_DEFAULT);
    sp_web_live_free(app); /* after the media client and the store: nothing can call it now */
    if (uv_loop_close(app->loop) != 0)
        sp_warn("main", "event loop closed with open handles", "");
    sp_core_free();
    sp_auth_free(app->auth);
    app->auth = NULL;
    sp_router_free(app->router);
    sp_app_cleanup(app);
    sp_metrics_reset();
out:
    sp_info("main", "exit", "code=%d", rc);
    sp_config_cleanup(&s->cfg);
    sp_log_close();
    sp_free(s);
    return rc;
}

/* ---- other commands -------------------------------------------------------------------- */


static int cmd_migrate(void)
{
    sp_config_t cfg;
    int rc = load_config(&cfg);
    if (rc)
        return rc;
    sp_log_open((sp_log_level_t)cfg.log_level, cfg.log_file);
    char err[512] = "";
    if (ensure_dir(cfg.data_dir) < 0) {
        fprintf(stderr, "streampai migrate: cannot create DATA_DIR %s\n", cfg.data_dir);
        rc = EXIT_RUNTIME;
    } else if (sp_store_migrate_only(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "streampai migrate: %s\n", err);
        rc = EXIT_RUNTIME;
    } else {
        printf("migrations applied\n");
    }
    sp_config_cleanup(&cfg);
    sp_log_close();
    return rc;
}

static int cmd_check_config(int argc, char **argv)
{
    sp_config_t cfg;
    if (argc > 2 && strcmp(argv[2], "--markdown") == 0) {
        sp_config_write_docs(stdout);
        return 0;
    }
    char err[512];
    if (sp_config_load_env(&cfg, err, sizeof(err)) < 0) {
        printf("\xe2\x9d\x8c %s\nconfiguration has errors\n", err);
        return EXIT_USAGE;
    }
    int failed = sp_config_check(&cfg, env_get, NULL, stdout);
    sp_config_cleanup(&cfg);
    sp_log_close();
    return failed ? EXIT_USAGE : 0;
}

int main(int argc, char **argv)
{
    sp_jarena_install(); /* before any jansson allocation (sp_jarena.h) */
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0)
        cmd = "version";
    const char *usage = usage_cmd(cmd);
    if (usage == NULL) {
        fprintf(stderr, "streampai: unknown command '%s'\n\n%s", cmd, usage_main);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
    }
    if (strcmp(cmd, "version") == 0) {
        printf("streampai %s\n", SP_VERSION);
        return 0;
    }
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc, argv);
    if (strcmp(cmd, "relay") == 0) {
        sp_config_t cfg;
        int rc = load_config(&cfg);
        if (rc)
            return rc;
        rc = enforce_prod_rules(&cfg, "relay");
        if (rc == 0) {
            sp_relay_opts_t ro = { .cfg = &cfg,
                                   .allow_private_destinations = cfg.allow_private_destinations };
            rc = sp_relay_main(&ro);
        }
        sp_config_cleanup(&cfg);
        return rc;
    }
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate();
    if (strcmp(cmd, "debug") == 0) {
        sp_config_t cfg;
        int rc = load_config(&cfg);
        if (rc)
            return rc;
        rc = sp_debug_cli_main(argc, argv, &cfg);
        sp_config_cleanup(&cfg);
        return rc;
    }
    if (strcmp(cmd, "serve") == 0) {
        if (argc > 2) {
            fprintf(stderr, "streampai serve: unexpected argument '%s'\n\n%s", argv[2], usage);
            return EXIT_USAGE;
        }
        return cmd_serve();
    }
    fprintf(stderr, "streampai: '%s' is not available in this build yet\n", cmd);
    return EXIT_RUNTIME;
}
