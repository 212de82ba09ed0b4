/*
 * sp_router: method + path routing with path parameters.
 *
 * Patterns are literal segments and "{name}" parameters, e.g.
 * "/api/destinations/{id}". Matching is a pure function (unit-tested): a path
 * that matches some pattern with another method gives 405 and the Allow list,
 * no pattern at all gives 404. HEAD matches GET routes. Literal segments win
 * over parameters at the same position.
 */
#ifndef SP_ROUTER_H
#define SP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/sp_buf.h"

typedef struct sp_http_req_s sp_http_req_t;
typedef struct sp_router_s sp_router_t;
typedef struct sp_route_s sp_route_t;

/** A route handler. It must eventually call one sp_http_respond*() on req. */
typedef void (*sp_http_handler_cb)(sp_http_req_t *req, void *ud);

/* Route flags, interpreted by the guard (see sp_router_set_guard). */
#define SP_ROUTE_PUBLIC 0u      /* no authentication */
#define SP_ROUTE_AUTH 1u        /* requires a logged-in user */
#define SP_ROUTE_NO_CSRF 2u     /* state-changing but exempt from CSRF (webhooks) */
#define SP_ROUTE_NO_ACCESSLOG 4u

typedef struct {
    size_t body_limit; /* bytes; 0 = the server default (MAX_BODY_SIZE) */
    unsigned flags;    /* SP_ROUTE_* */
} sp_route_opts_t;

/**
 * The guard runs before every handler with the route's flags. It returns true
 * to let the handler run, or false after it has responded itself (401, 403...).
 * It may also be asynchronous: return false, and later call
 * sp_http_req_continue(req) to run the handler, or respond.
 */
typedef bool (*sp_route_guard_cb)(sp_http_req_t *req, unsigned flags, void *ud);

#define SP_ROUTE_MAX_PARAMS 8
#define SP_ROUTE_MAX_SEGMENTS 16

typedef struct {
    const char *name; /* parameter name from the pattern */
    sp_str_t value;   /* slice of the matched path (not decoded) */
} sp_route_param_t;

typedef struct {
    const sp_route_t *route;
    size_t n_params;
    sp_route_param_t params[SP_ROUTE_MAX_PARAMS];
    char allow[128]; /* for 405: "GET, HEAD, POST" */
} sp_route_match_t;

sp_router_t *sp_router_new(void);
void sp_router_free(sp_router_t *r);
/** Returns 0 or SP_EINVAL (bad pattern, too many params) / SP_EEXISTS (same method+pattern). */
int sp_router_add(sp_router_t *r, const char *method, const char *pattern, sp_http_handler_cb cb,
                  void *ud, const sp_route_opts_t *opts);
void sp_router_set_guard(sp_router_t *r, sp_route_guard_cb guard, void *ud);
/** Pure matching: 0 = found (m->route set), 404, or 405 (m->allow set). */
int sp_router_match(const sp_router_t *r, const char *method, const char *path, size_t path_len,
                    sp_route_match_t *m);

/* Accessors used by the HTTP server. */
const char *sp_route_pattern(const sp_route_t *rt);
sp_http_handler_cb sp_route_handler(const sp_route_t *rt);
void *sp_route_ud(const sp_route_t *rt);
const sp_route_opts_t *sp_route_opts(const sp_route_t *rt);
sp_route_guard_cb sp_router_guard(const sp_router_t *r, void **ud);

#endif
