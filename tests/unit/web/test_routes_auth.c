/* sp_routes_auth in memory mode (sp_http_feed): the synchronous answers of the account routes
 * and the guard, and the TEST_MODE probe route that exists only with SP_TEST_HOOKS. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sp_auth.h"
#include "core/sp_buf.h"
#include "web/sp_routes_auth.h"

typedef struct {
    uv_loop_t loop;
    sp_config_t cfg;
    sp_app_t app;
    char dir[64];
} fx_t;

static void fx_init(fx_t *f, bool test_mode)
{
    memset(f, 0, sizeof(*f));
    cr_assert(uv_loop_init(&f->loop) == 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sp-routes-auth-XXXXXX");
    cr_assert(mkdtemp(f->dir) != NULL);
    f->cfg.env = SP_ENV_TEST;
    f->cfg.data_dir = f->dir;
    f->cfg.test_mode = test_mode;
    f->app.loop = &f->loop;
    f->app.cfg = &f->cfg;
    f->app.router = sp_router_new();
    /* no store: only the answers given before any database call are exercised here */
    cr_assert(sp_auth_new(&f->loop, &f->cfg, NULL, &f->app.auth) == 0);
    sp_routes_auth_register(&f->app);
}

static void fx_free(fx_t *f)
{
    sp_auth_free(f->app.auth);
    sp_router_free(f->app.router);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert(uv_loop_close(&f->loop) == 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    cr_expect(system(cmd) == 0);
}

/* One request; returns the status and copies the response into out. */
static int feed(fx_t *f, const char *method, const char *path, const char *headers,
                const char *body, char *out, size_t cap)
{
    char in[2048];
    size_t blen = body ? strlen(body) : 0;
    snprintf(in, sizeof(in), "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s",
             method, path, headers ? headers : "", blen, body ? body : "");
    sp_http_opts_t o = {.max_header_bytes = 16384, .default_body_limit = 65536,
                        .server_name = "t"};
    sp_buf_t res;
    sp_buf_init(&res, 0);
    cr_assert(sp_http_feed(f->app.router, &o, in, strlen(in), &res) == 0, "left pending");
    int status = 0;
    snprintf(out, cap, "%.*s", (int)res.len, res.p ? res.p : "");
    sscanf(out, "HTTP/1.1 %d", &status);
    sp_buf_cleanup(&res);
    return status;
}

Test(routes_auth, synchronous_answers)
{
    fx_t f;
    char r[4096];
    fx_init(&f, false);
    cr_assert_eq(feed(&f, "GET", "/api/me", NULL, NULL, r, sizeof(r)), 401);
    cr_assert(strstr(r, "\"unauthenticated\""), "%s", r);
    cr_assert_eq(feed(&f, "GET", "/api/me", "Cookie: sp_session=a.b.c\r\n", NULL, r, sizeof(r)),
                 401);
    cr_assert_eq(feed(&f, "POST", "/api/auth/logout", "Authorization: Bearer x.y.z\r\n", NULL, r,
                      sizeof(r)),
                 401);
    cr_assert_eq(feed(&f, "POST", "/api/auth/login", "Content-Type: application/json\r\n",
                      "{\"email\":\"a@example.com\"}", r, sizeof(r)),
                 422);
    cr_assert(strstr(r, "\"field\":\"password\""), "%s", r);
    cr_assert_eq(feed(&f, "POST", "/api/auth/register", "Content-Type: application/json\r\n",
                      "{\"email\":\"nope\",\"password\":\"long enough pw\"}", r, sizeof(r)),
                 422);
    cr_assert(strstr(r, "\"invalid_email\""), "%s", r);
    cr_assert_eq(feed(&f, "POST", "/api/auth/register", "Content-Type: application/json\r\n",
                      "{\"email\":\"a@example.com\",\"password\":\"short\"}", r, sizeof(r)),
                 422);
    cr_assert(strstr(r, "at least 8 characters"), "%s", r);
    fx_free(&f);
}

Test(routes_auth, ws_probe_only_with_test_mode)
{
    fx_t f;
    char r[4096];
    fx_init(&f, false);
    cr_assert_eq(feed(&f, "GET", "/api/_test/ws_auth", NULL, NULL, r, sizeof(r)), 404);
    fx_free(&f);
    fx_init(&f, true);
#ifdef SP_TEST_HOOKS
    /* present, and a request without a credential is refused */
    cr_assert_eq(feed(&f, "GET", "/api/_test/ws_auth", NULL, NULL, r, sizeof(r)), 401);
    cr_assert_eq(feed(&f, "GET", "/api/_test/ws_auth?token=a.b.c", NULL, NULL, r, sizeof(r)),
                 401);
#else
    cr_assert_eq(feed(&f, "GET", "/api/_test/ws_auth", NULL, NULL, r, sizeof(r)), 404);
#endif
    fx_free(&f);
}
