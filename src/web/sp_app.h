/*
 * sp_app: the control plane's wiring. One sp_app_t per `streampai serve`
 * process, owned by the loop thread; known to main.c and src/web/ only. The route
 * groups of src/web/ register on app->router and call the subsystems' C APIs;
 * subsystems get what they need explicitly (e.g. sp_livestream_opts_t), not the app.
 * main.c creates subsystems in dependency order and shuts them down in reverse.
 */
#ifndef SP_APP_H
#define SP_APP_H

#include <stdbool.h>
#include <uv.h>

#include "core/sp_config.h"
#include "net/sp_http.h"
#include "net/sp_router.h"

struct sp_store_s;      /* src/store/sp_store.h */
struct sp_auth_s;       /* src/auth/sp_auth.h */
struct sp_ws_hub_s;     /* src/net/sp_ws.h */
struct sp_pubsub_s;     /* src/bus/sp_pubsub.h */
struct sp_livestream_s; /* src/livestream/sp_livestream.h */
struct sp_curlm_s;      /* src/net/sp_curlm.h */
struct sp_cloudflare_s; /* src/media/sp_cloudflare.h */
struct sp_platform_env_s;  /* src/platforms/sp_platform.h */
struct sp_accounts_s;      /* src/platforms/sp_accounts.h */
struct sp_psup_s;          /* src/platforms/sp_psup.h */
struct sp_oauth_states_s;  /* src/auth/sp_oauth.h */
struct sp_alerts_s;        /* src/livestream/sp_ls_alerts.h */

typedef struct sp_app_s {
    uv_loop_t *loop;
    const sp_config_t *cfg;
    sp_router_t *router;
    sp_http_server_t *http;
    struct sp_store_s *store;
    struct sp_auth_s *auth;
    struct sp_ws_hub_s *ws;
    struct sp_pubsub_s *pubsub;
    struct sp_livestream_s *live;
    struct sp_curlm_s *curlm;
    struct sp_cloudflare_s *cloudflare;
    /* platforms (sp_web_platforms.c): env for platform code, connected accounts, the
     * PlatformSupervisor, and the pending OAuth flows (connect and sign-in) */
    struct sp_platform_env_s *penv;
    struct sp_accounts_s *accounts;
    struct sp_psup_s *psup;
    struct sp_oauth_states_s *oauth_states;
    struct sp_alerts_s *alerts; /* every user's AlertQueue (web/sp_routes_widgets.c) */
    bool shutting_down;
    uint64_t started_mono_ms;
    struct sp_ready_check_s *ready_checks;
} sp_app_t;

/**
 * A readiness check for GET /readyz: returns NULL when ready, or a short
 * reason ("database unreachable") when not. Registered checks are freed by
 * sp_app_cleanup.
 */
typedef const char *(*sp_ready_check_cb)(sp_app_t *app, void *ud);
void sp_app_add_ready_check(sp_app_t *app, const char *name, sp_ready_check_cb cb, void *ud);
/** Runs every check; fills obj (name -> "ok" | reason) and returns true when all pass. */
bool sp_app_ready(sp_app_t *app, json_t *obj);
void sp_app_cleanup(sp_app_t *app);

/** GET /healthz, GET /readyz, GET /metrics, and static files from WEB_DIR. */
void sp_core_register_routes(sp_app_t *app);
void sp_core_free(void);
/** Diagnostic routes for the test suites; only when TEST_MODE is on. */
void sp_test_register_routes(sp_app_t *app);

#endif
