/*
 * sp_routes_test: diagnostic routes, compiled only into the test hooks builds (asan, fuzz:
 * -DSP_TEST_HOOKS) and registered there only when TEST_MODE is on (serve refuses TEST_MODE in
 * prod). They let the
 * integration tests exercise server mechanics without product routes:
 *   POST /api/_test/echo          -> {bytes, sha256, content_type} of the body
 *   GET  /api/_test/slow?ms=N     -> answers after N ms (in-flight shutdown tests)
 *   GET  /api/_test/items/{id}    -> {id} (path parameters, 404 vs 405)
 */
#ifdef SP_TEST_HOOKS
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "web/sp_app.h"

static void echo(sp_http_req_t *req, void *ud)
{
    (void)ud;
    const sp_buf_t *b = sp_http_req_body(req);
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256(h, (const unsigned char *)(b->p ? b->p : ""), b->len);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    const char *ct = sp_http_req_header(req, "content-type");
    sp_http_respond_json(req, 200, json_pack("{s:I,s:s,s:s?}", "bytes", (json_int_t)b->len, "sha256", hex,
                                             "content_type", ct));
}

typedef struct {
    uv_timer_t t;
    sp_http_req_t *req;
} slow_t;

static void slow_closed(uv_handle_t *h)
{
    sp_free(h->data);
}

static void slow_fire(uv_timer_t *t)
{
    slow_t *s = t->data;
    sp_http_respond_json(s->req, 200, json_pack("{s:b}", "slow", 1));
    uv_close((uv_handle_t *)&s->t, slow_closed);
}

static void slow(sp_http_req_t *req, void *ud)
{
    (void)ud;
    char v[32];
    long ms = sp_http_req_query_param(req, "ms", v, sizeof(v)) ? strtol(v, NULL, 10) : 100;
    if (ms < 0 || ms > 60000)
        ms = 100;
    slow_t *s = sp_calloc(1, sizeof(*s));
    s->req = req;
    uv_timer_init(sp_http_req_loop(req), &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_fire, (uint64_t)ms, 0);
}

static void item(sp_http_req_t *req, void *ud)
{
    (void)ud;
    sp_http_respond_json(req, 200, json_pack("{s:s}", "id", sp_http_req_param(req, "id")));
}

void sp_test_register_routes(sp_app_t *app)
{
    sp_route_opts_t o = { .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_CSRF };
    sp_route_opts_t small = { .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_CSRF, .body_limit = 1024 };
    sp_router_add(app->router, "POST", "/api/_test/echo", echo, app, &o);
    sp_router_add(app->router, "POST", "/api/_test/echo_small", echo, app, &small);
    sp_router_add(app->router, "GET", "/api/_test/slow", slow, app, &o);
    sp_router_add(app->router, "GET", "/api/_test/items/{id}", item, app, &o);
    sp_router_add(app->router, "DELETE", "/api/_test/items/{id}", item, app, &o);
}
#endif /* SP_TEST_HOOKS */
