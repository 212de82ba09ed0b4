/* sp_socket: hub + pubsub wiring, dashboard presence. See sp_socket.h. */
#include "web/sp_socket.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sqlite3.h>

#include "auth/sp_auth.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "livestream/sp_livestream.h"
#include "net/sp_metrics.h"
#include "bus/sp_pubsub.h"
#include "bus/sp_pubsub_redis.h"
#include "net/sp_ws.h"
#include "platforms/sp_psup.h"

/* The C heap (glibc): what RSS is made of, to tell a growing structure (in_use) from
 * allocator retention (free: held by malloc, not returned to the system). */
static void heap_metrics(sp_buf_t *out)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    sp_buf_appendf(out,
                   "# TYPE streampai_malloc_bytes gauge\n"
                   "streampai_malloc_bytes{kind=\"in_use\"} %zu\n"
                   "streampai_malloc_bytes{kind=\"free\"} %zu\n"
                   "streampai_malloc_bytes{kind=\"mmapped\"} %zu\n"
                   "streampai_malloc_bytes{kind=\"arena\"} %zu\n",
                   mi.uordblks, mi.fordblks, mi.hblkhd, mi.arena);
#endif
    /* part of in_use: SQLite's page cache and statements (bounded by its cache_size) */
    sp_buf_appendf(out, "# TYPE streampai_sqlite_memory_bytes gauge\n"
                        "streampai_sqlite_memory_bytes %lld\n",
                   (long long)sqlite3_memory_used());
}

/*
 * Heap trimming (glibc): freed memory stays in malloc's arenas, and the pages a burst touched
 * (registrations, a reconnect storm) stay resident while later allocations touch others: in the
 * soak the heap in use was flat (~7 MiB) while RSS crept up ~0.3 MiB a minute towards the
 * arenas' size (~50 MiB). Every TRIM_MS (10 s), malloc_trim returns free pages to the system,
 * on the threadpool (it locks one arena at a time; the loop never waits for the walk).
 */
#if defined(__GLIBC__)
#define TRIM_MS 10000
static uv_timer_t *trim_timer; /* one app per process */

static void trim_work(uv_work_t *w)
{
    (void)w;
    malloc_trim(0);
}

static void trim_done(uv_work_t *w, int status)
{
    (void)status;
    sp_free(w);
}

static void trim_tick(uv_timer_t *t)
{
    uv_work_t *w = sp_malloc(sizeof(*w));
    if (uv_queue_work(t->loop, w, trim_work, trim_done) != 0)
        sp_free(w);
}

static void trim_closed(uv_handle_t *h)
{
    sp_free(h);
}

static void trim_start(uv_loop_t *loop)
{
    if (trim_timer)
        return;
    trim_timer = sp_malloc(sizeof(*trim_timer));
    uv_timer_init(loop, trim_timer);
    uv_timer_start(trim_timer, trim_tick, TRIM_MS, TRIM_MS);
    uv_unref((uv_handle_t *)trim_timer); /* never keeps the loop alive */
}

static void trim_stop(void)
{
    if (trim_timer)
        uv_close((uv_handle_t *)trim_timer, trim_closed);
    trim_timer = NULL;
}
#else
static void trim_start(uv_loop_t *loop) { (void)loop; }
static void trim_stop(void) {}
#endif

static void render_metrics(sp_buf_t *out, void *ud)
{
    sp_app_t *app = ud;
    if (app->ws)
        sp_ws_hub_write_metrics(app->ws, out);
    if (app->pubsub)
        sp_pubsub_write_metrics(app->pubsub, out);
    heap_metrics(out);
}

static void session_revoked(const char *user_id, const char *sid, void *ud)
{
    sp_app_t *app = ud;
    if (app->ws)
        sp_ws_hub_close_cred(app->ws, "sid", sid, user_id, SP_SOCKET_CLOSE_REVOKED,
                             sid ? "session revoked" : "all sessions revoked");
}

static void socket_route(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    if (!app->ws) {
        sp_http_respond_error(req, 503, "unavailable", "websocket hub not running");
        return;
    }
    sp_ws_handle_upgrade(app->ws, req, sp_ws_default_handlers(), app);
}

int sp_socket_init(sp_app_t *app)
{
    const sp_config_t *cfg = app->cfg;
    sp_ws_opts_t o = {
        .max_message = (size_t)cfg->ws_max_message_size,
        .max_queue = (size_t)cfg->ws_max_queue,
        .ping_interval_ms = (uint64_t)cfg->ws_ping_interval,
        .idle_timeout_ms = (uint64_t)cfg->ws_idle_timeout,
        .public_url = cfg->public_url,
        .allowed_origins = cfg->allowed_origins,
        .test_mode = cfg->test_mode,
        .max_per_user = (size_t)cfg->max_sockets_per_user,
    };
    app->ws = sp_ws_hub_new(app->loop, &o);
    app->pubsub = sp_pubsub_new(app->loop, (size_t)cfg->event_history_size);
    sp_pubsub_set_history_bytes(app->pubsub, (size_t)cfg->event_history_bytes);
    sp_pubsub_attach(app->pubsub, app->ws);
    sp_route_opts_t ro = { .body_limit = 0, .flags = SP_ROUTE_PUBLIC };
    if (sp_router_add(app->router, "GET", "/socket", socket_route, app, &ro) != 0)
        return SP_EINVAL;
    sp_metrics_register(render_metrics, app);
    trim_start(app->loop);
    if (app->auth) /* a revoked session's sockets close at once */
        sp_auth_on_revoke(app->auth, session_revoked, app);
    /* multi-node: the same bus over Redis pub/sub (freed with the pubsub) */
    if (cfg->redis_url && *cfg->redis_url)
        return sp_pubsub_redis_attach(app->pubsub, app->loop, cfg->redis_url);
    return 0;
}

void sp_socket_shutdown(sp_app_t *app)
{
    if (app->ws)
        sp_ws_hub_close_all(app->ws, SP_WS_CLOSE_GOING_AWAY);
}

bool sp_socket_drained(const sp_app_t *app)
{
    return !app->ws || sp_ws_hub_count(app->ws) == 0;
}

void sp_socket_free(sp_app_t *app)
{
    sp_metrics_unregister(render_metrics, app);
    trim_stop();
    if (app->auth)
        sp_auth_on_revoke(app->auth, NULL, NULL);
    sp_livestream_set_bus(app->live, NULL); /* nothing publishes on a freed bus */
    if (app->psup) /* platform answers (viewers, chat) may still arrive while the loop drains */
        sp_psup_set_bus(app->psup, NULL);
    sp_pubsub_free(app->pubsub);
    app->pubsub = NULL;
    sp_ws_hub_free(app->ws);
    app->ws = NULL;
}

/* ---- dashboard presence ---------------------------------------------------------------- */

static int ws_opened(const char *user_id, uint64_t conn_id, void *ud)
{
    sp_app_t *app = ud;
    if (app->live == NULL) return 0;
    return sp_livestream_session_join(app->live, user_id, conn_id);
}

static void ws_closed(const char *user_id, uint64_t conn_id, void *ud)
{
    sp_app_t *app = ud;
    if (app->live) sp_livestream_session_leave(app->live, user_id, conn_id);
}

void sp_socket_attach_presence(sp_app_t *app)
{
    if (app->ws == NULL) return;
    sp_ws_observer_t obs = { ws_opened, ws_closed, app };
    sp_ws_hub_set_observer(app->ws, &obs);
}
