/* sp_routes_core: liveness, readiness, metrics (and the subsystems' series) and static files. */
#include <string.h>

#include "core/sp_alloc.h"
#include "livestream/sp_livestream.h"
#include "media/sp_cloudflare.h"
#include "web/sp_app.h"
#include "web/sp_web.h"
#include "net/sp_metrics.h"
#include "net/sp_static.h"
#include "core/sp_time.h"

static sp_static_t *static_files;

static void healthz(sp_http_req_t *req, void *ud)
{
    (void)ud;
    sp_http_respond(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void readyz(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    json_t *checks = json_object();
    bool ok = sp_app_ready(app, checks);
    json_int_t uptime = (json_int_t)(sp_mono_ms() - app->started_mono_ms);
    json_t *body = json_pack("{s:s,s:o,s:I}", "status", ok ? "ready" : "not_ready", "checks",
                             checks, "uptime_ms", uptime);
    sp_http_respond_json(req, ok ? 200 : 503, body);
}

static void metrics(sp_http_req_t *req, void *ud)
{
    (void)ud;
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_metrics_render(&out);
    sp_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.p, out.len);
    sp_buf_cleanup(&out);
}

/* the livestream subsystem's series (the media client registers its own: rendering them here
   too printed every streampai_cloudflare_* series twice, which a Prometheus scrape refuses) */
static void render_live_metrics(sp_buf_t *out, void *ud)
{
    sp_app_t *app = ud;
    sp_livestream_metrics(app->live, out);
}

void sp_routes_metrics_attach(sp_app_t *app)
{
    sp_metrics_register(render_live_metrics, app);
}

void sp_routes_metrics_detach(sp_app_t *app)
{
    sp_metrics_unregister(render_live_metrics, app);
}

void sp_core_register_routes(sp_app_t *app)
{
    sp_route_opts_t quiet = { .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_ACCESSLOG };
    sp_route_opts_t pub = { .flags = SP_ROUTE_PUBLIC };
    sp_router_add(app->router, "GET", "/healthz", healthz, app, &quiet);
    sp_router_add(app->router, "GET", "/readyz", readyz, app, &quiet);
    sp_router_add(app->router, "GET", "/metrics", metrics, app, &quiet);
    if (app->cfg->web_dir) {
        static_files = sp_static_new(app->loop, app->cfg->web_dir);
        sp_router_add(app->router, "GET", "/", sp_static_handle, static_files, &pub);
        sp_router_add(app->router, "GET", "/{*path}", sp_static_handle, static_files, &pub);
    }
}

void sp_core_free(void)
{
    sp_static_free(static_files);
    static_files = NULL;
}
