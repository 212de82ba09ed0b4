/* Fuzz target: bytes of one connection through the HTTP glue (parser, limits, router, responses).
 */
#include <stdint.h>
#include <string.h>

#include "net/sp_http.h"
#include "core/sp_log.h"

static void echo(sp_http_req_t *req, void *ud)
{
    (void)ud;
    const sp_buf_t *b = sp_http_req_body(req);
    char q[64], ck[64];
    sp_http_req_query_param(req, "q", q, sizeof(q));
    sp_http_req_cookie(req, "sp_session", ck, sizeof(ck));
    (void)sp_http_req_header(req, "host");
    (void)sp_http_req_param(req, "id");
    if (b->len && b->p[0] == '{') {
        json_t *j = sp_http_req_json_or_400(req);
        if (!j)
            return;
        sp_http_respond_json(req, 200, j);
        return;
    }
    sp_http_respond(req, 200, "text/plain", b->p, b->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sp_router_t *r;
    if (!r) {
        sp_log_set_level(SP_LOG_ERROR);
        r = sp_router_new();
        sp_route_opts_t small = { .body_limit = 64 };
        sp_router_add(r, "GET", "/", echo, NULL, NULL);
        sp_router_add(r, "POST", "/echo", echo, NULL, NULL);
        sp_router_add(r, "POST", "/small", echo, NULL, &small);
        sp_router_add(r, "GET", "/items/{id}", echo, NULL, NULL);
        sp_router_add(r, "PUT", "/items/{id}", echo, NULL, NULL);
        sp_router_add(r, "GET", "/{*path}", echo, NULL, NULL);
    }
    sp_http_opts_t o = { .max_header_bytes = 2048, .default_body_limit = 4096 };
    sp_buf_t out;
    sp_buf_init(&out, 0);
    sp_http_feed(r, &o, data, size, &out);
    sp_buf_cleanup(&out);
    return 0;
}
