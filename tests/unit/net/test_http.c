/*
 * Unit tests: the HTTP glue in memory mode (no sockets): keep-alive and
 * pipelining, chunked bodies, limits (431, 413), smuggling (400), 404/405,
 * HEAD, JSON helpers and parameter decoding.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "net/sp_http.h"

static void echo(sp_http_req_t *req, void *ud)
{
    (void)ud;
    const sp_buf_t *b = sp_http_req_body(req);
    char out[256];
    const char *id = sp_http_req_param(req, "id");
    char q[64] = "";
    sp_http_req_query_param(req, "q", q, sizeof(q));
    snprintf(out, sizeof(out), "len=%zu id=%s q=%s first=%.*s", b->len, id ? id : "-", q,
             b->len > 8 ? 8 : (int)b->len, b->p ? b->p : "");
    sp_http_respond(req, 200, "text/plain", out, strlen(out));
}

static void json_route(sp_http_req_t *req, void *ud)
{
    (void)ud;
    json_t *j = sp_http_req_json_or_400(req);
    if (!j)
        return;
    sp_http_respond_json(req, 201, j);
}

static sp_router_t *router(void)
{
    sp_router_t *r = sp_router_new();
    sp_route_opts_t small = { .body_limit = 16 };
    sp_router_add(r, "POST", "/echo", echo, NULL, NULL);
    sp_router_add(r, "GET", "/echo", echo, NULL, NULL);
    sp_router_add(r, "POST", "/small", echo, NULL, &small);
    sp_router_add(r, "GET", "/items/{id}", echo, NULL, NULL);
    sp_router_add(r, "POST", "/json", json_route, NULL, NULL);
    return r;
}

static sp_http_opts_t opts = { .max_header_bytes = 16384, .default_body_limit = 1024 };

static char *run(const char *in, size_t len)
{
    static sp_buf_t out;
    sp_buf_cleanup(&out);
    sp_buf_init(&out, 0);
    sp_router_t *r = router();
    cr_assert_eq(sp_http_feed(r, &opts, in, len, &out), 0);
    sp_router_free(r);
    return out.p ? out.p : "";
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(http, pipelined_requests_answered_in_order)
{
    const char *in = "GET /echo?q=one HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     "GET /items/a%20b HTTP/1.1\r\nHost: x\r\n\r\n";
    char *out = run(in, strlen(in));
    cr_assert_eq(count(out, "HTTP/1.1 200 OK"), 3, "%s", out);
    char *a = strstr(out, "q=one"), *b = strstr(out, "first=hello"), *c = strstr(out, "id=a b");
    cr_assert(a && b && c && a < b && b < c, "%s", out);
    cr_assert_eq(count(out, "Connection: keep-alive"), 3);
}

Test(http, chunked_body_is_reassembled)
{
    const char *in = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    char *out = run(in, strlen(in));
    cr_assert_not_null(strstr(out, "len=11"), "%s", out);
}

Test(http, oversized_head_is_431_and_closes)
{
    static char in[40000];
    int n = snprintf(in, sizeof(in), "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(in + n, 'a', 20000);
    memcpy(in + n + 20000, "\r\n\r\n", 5);
    char *out = run(in, strlen(in));
    cr_assert_not_null(strstr(out, "HTTP/1.1 431"), "%.200s", out);
    cr_assert_not_null(strstr(out, "Connection: close"));
    cr_assert_not_null(strstr(out, "\"headers_too_large\""));
}

Test(http, body_over_route_limit_is_413)
{
    const char *in =
        "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n12345678901234567";
    char *out = run(in, strlen(in));
    cr_assert_not_null(strstr(out, "HTTP/1.1 413"), "%s", out);
    const char *chunked = "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
    out = run(chunked, strlen(chunked));
    cr_assert_not_null(strstr(out, "HTTP/1.1 413"), "%s", out);
    cr_assert_eq(count(out, "HTTP/1.1"), 1);
}

Test(http, smuggling_attempts_are_400)
{
    const char *both =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\nGET /echo HTTP/1.1\r\n\r\n";
    char *out = run(both, strlen(both));
    cr_assert_not_null(strstr(out, "HTTP/1.1 400"), "%s", out);
    cr_assert_eq(count(out, "HTTP/1.1 "), 1, "smuggled request was answered: %s", out);
    const char *dup =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    out = run(dup, strlen(dup));
    cr_assert_not_null(strstr(out, "HTTP/1.1 400"), "%s", out);
    const char *te =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
    out = run(te, strlen(te));
    cr_assert_not_null(strstr(out, "HTTP/1.1 400"), "%s", out);
}

Test(http, not_found_and_method_not_allowed)
{
    const char *in =
        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\nDELETE /items/1 HTTP/1.1\r\nHost: x\r\n\r\n";
    char *out = run(in, strlen(in));
    cr_assert_not_null(strstr(out, "HTTP/1.1 404"), "%s", out);
    cr_assert_not_null(strstr(out, "HTTP/1.1 405"), "%s", out);
    cr_assert_not_null(strstr(out, "Allow: GET, HEAD"), "%s", out);
    cr_assert_not_null(strstr(out, "{\"error\":{\"code\":\"not_found\""), "%s", out);
}

Test(http, head_has_length_but_no_body)
{
    const char *in = "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    char *out = run(in, strlen(in));
    cr_assert_not_null(strstr(out, "HTTP/1.1 200"), "%s", out);
    cr_assert_not_null(strstr(out, "Content-Length: "), "%s", out);
    cr_assert_null(strstr(out, "len=0"), "HEAD carried a body: %s", out);
}

Test(http, json_helpers_and_errors)
{
    const char *ok = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}";
    char *out = run(ok, strlen(ok));
    cr_assert_not_null(strstr(out, "HTTP/1.1 201"), "%s", out);
    cr_assert_not_null(strstr(out, "{\"a\":[1]}"), "%s", out);
    const char *bad = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/json\r\nContent-Length: 4\r\n\r\n{bad";
    out = run(bad, strlen(bad));
    cr_assert_not_null(strstr(out, "HTTP/1.1 400"), "%s", out);
    cr_assert_not_null(strstr(out, "invalid_json"), "%s", out);
    const char *ct =
        "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}";
    out = run(ct, strlen(ct));
    cr_assert_not_null(strstr(out, "HTTP/1.1 415"), "%s", out);
}

/* issue 12 finding 6: a JSON route took a body with no Content-Type (or application/jsonp) */
Test(http, json_routes_need_the_json_media_type)
{
    const char *none = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}";
    char *out = run(none, strlen(none));
    cr_assert_not_null(strstr(out, "HTTP/1.1 415"), "%s", out);
    cr_assert_not_null(strstr(out, "{\"error\":{\"code\":\"unsupported_media_type\""), "%s", out);
    const char *jsonp = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/jsonp\r\n"
                        "Content-Length: 9\r\n\r\n{\"a\":[1]}";
    out = run(jsonp, strlen(jsonp));
    cr_assert_not_null(strstr(out, "HTTP/1.1 415"), "%s", out);
    const char *cs = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: Application/JSON; "
                     "charset=utf-8\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}";
    out = run(cs, strlen(cs));
    cr_assert_not_null(strstr(out, "HTTP/1.1 201"), "%s", out);
    cr_assert(sp_http_is_json_type("application/json"));
    cr_assert(sp_http_is_json_type(" application/json ;charset=utf-8"));
    cr_assert_not(sp_http_is_json_type(NULL));
    cr_assert_not(sp_http_is_json_type(""));
    cr_assert_not(sp_http_is_json_type("application/json-patch+json"));
    cr_assert_not(sp_http_is_json_type("text/plain"));
    cr_assert_not(sp_http_is_json_type("application/x-www-form-urlencoded"));
}

Test(http, http10_closes_and_garbage_is_400)
{
    const char *in = "GET /echo HTTP/1.0\r\n\r\nGET /echo HTTP/1.1\r\n\r\n";
    char *out = run(in, strlen(in));
    cr_assert_eq(count(out, "HTTP/1.1 200"), 1, "%s", out);
    cr_assert_not_null(strstr(out, "Connection: close"));
    const char *junk = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    out = run(junk, strlen(junk));
    cr_assert(strstr(out, "HTTP/1.1 400") || strstr(out, "HTTP/1.1 501"), "%s", out);
}
