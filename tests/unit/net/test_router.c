/* Unit tests: router matching, params, 404 vs 405 with Allow. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_err.h"
#include "net/sp_router.h"

static void h(sp_http_req_t *req, void *ud)
{
    (void)req;
    (void)ud;
}

static sp_router_t *mk(void)
{
    sp_router_t *r = sp_router_new();
    cr_assert_eq(sp_router_add(r, "GET", "/api/destinations", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "POST", "/api/destinations", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "PATCH", "/api/destinations/{id}", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "DELETE", "/api/destinations/{id}", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "GET", "/api/streams/{id}", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "GET", "/api/streams/active", h, (void *)1, NULL), 0);
    cr_assert_eq(sp_router_add(r, "GET", "/api/widgets/{type}/config", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "GET", "/{*path}", h, (void *)2, NULL), 0);
    return r;
}

Test(router, params_are_extracted)
{
    sp_router_t *r = mk();
    sp_route_match_t m;
    const char *p = "/api/widgets/alertbox/config";
    cr_assert_eq(sp_router_match(r, "GET", p, strlen(p), &m), 0);
    cr_assert_eq(m.n_params, 1);
    cr_assert(sp_str_eq_cstr(m.params[0].value, "alertbox"));
    cr_assert_str_eq(sp_route_pattern(m.route), "/api/widgets/{type}/config");
    sp_router_free(r);
}

Test(router, literal_beats_parameter)
{
    sp_router_t *r = mk();
    sp_route_match_t m;
    cr_assert_eq(sp_router_match(r, "GET", "/api/streams/active", 19, &m), 0);
    cr_assert_eq(sp_route_ud(m.route), (void *)1);
    cr_assert_eq(sp_router_match(r, "GET", "/api/streams/abc", 16, &m), 0);
    cr_assert_str_eq(sp_route_pattern(m.route), "/api/streams/{id}");
    sp_router_free(r);
}

Test(router, method_mismatch_is_405_with_allow)
{
    sp_router_t *r = sp_router_new();
    sp_router_add(r, "PATCH", "/api/destinations/{id}", h, NULL, NULL);
    sp_router_add(r, "DELETE", "/api/destinations/{id}", h, NULL, NULL);
    sp_route_match_t m;
    cr_assert_eq(sp_router_match(r, "GET", "/api/destinations/7", 19, &m), 405);
    cr_assert_str_eq(m.allow, "PATCH, DELETE");
    cr_assert_eq(sp_router_match(r, "GET", "/nope", 5, &m), 404);
    sp_router_free(r);
}

Test(router, head_matches_get_and_wildcard_catches_rest)
{
    sp_router_t *r = mk();
    sp_route_match_t m;
    cr_assert_eq(sp_router_match(r, "HEAD", "/api/destinations", 17, &m), 0);
    const char *p = "/js/app/main.js";
    cr_assert_eq(sp_router_match(r, "GET", p, strlen(p), &m), 0);
    cr_assert_eq(sp_route_ud(m.route), (void *)2);
    cr_assert(sp_str_eq_cstr(m.params[0].value, "js/app/main.js"));
    /* POST to a path only the GET wildcard knows is a 405. */
    cr_assert_eq(sp_router_match(r, "POST", "/x", 2, &m), 405);
    sp_router_free(r);
}

Test(router, rejects_bad_patterns_and_duplicates)
{
    sp_router_t *r = sp_router_new();
    cr_assert_eq(sp_router_add(r, "GET", "no-slash", h, NULL, NULL), SP_EINVAL);
    cr_assert_eq(sp_router_add(r, "GET", "/{*a}/b", h, NULL, NULL), SP_EINVAL);
    cr_assert_eq(sp_router_add(r, "GET", "/a", h, NULL, NULL), 0);
    cr_assert_eq(sp_router_add(r, "GET", "/a", h, NULL, NULL), SP_EEXISTS);
    sp_router_free(r);
}
