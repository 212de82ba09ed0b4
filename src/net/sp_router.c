/*
 * sp_router: a flat list of routes, each a method and a pattern split into
 * segments. Matching walks the routes once (routes are few; a trie would not
 * pay for itself), preferring the route with the most literal segments so
 * "/api/streams/active" beats "/api/streams/{id}".
 */
#include "net/sp_router.h"

#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

struct sp_route_s {
    char method[12];
    char *pattern;
    size_t n_segs;
    char *segs[SP_ROUTE_MAX_SEGMENTS]; /* literal, or "{name}" */
    bool is_param[SP_ROUTE_MAX_SEGMENTS];
    bool wildcard_tail; /* pattern ends with "/{*name}": matches the rest */
    sp_http_handler_cb cb;
    void *ud;
    sp_route_opts_t opts;
    struct sp_route_s *next;
};

struct sp_router_s {
    sp_route_t *head, *tail;
    sp_route_guard_cb guard;
    void *guard_ud;
};

sp_router_t *sp_router_new(void)
{
    return sp_calloc(1, sizeof(sp_router_t));
}

void sp_router_free(sp_router_t *r)
{
    if (r == NULL)
        return;
    sp_route_t *rt = r->head;
    while (rt) {
        sp_route_t *next = rt->next;
        for (size_t i = 0; i < rt->n_segs; i++)
            sp_free(rt->segs[i]);
        sp_free(rt->pattern);
        sp_free(rt);
        rt = next;
    }
    sp_free(r);
}

/* Splits path into segments (no empty ones except a lone "/"), returns count or -1. */
static int split(const char *p, size_t len, sp_str_t *out, size_t max)
{
    size_t n = 0, i = 0;
    if (len == 0 || p[0] != '/')
        return -1;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        if (i >= len)
            break;
        size_t s = i;
        while (i < len && p[i] != '/')
            i++;
        if (n >= max)
            return -1;
        out[n].p = p + s;
        out[n].len = i - s;
        n++;
    }
    return (int)n;
}

int sp_router_add(sp_router_t *r, const char *method, const char *pattern, sp_http_handler_cb cb,
                  void *ud, const sp_route_opts_t *opts)
{
    sp_str_t segs[SP_ROUTE_MAX_SEGMENTS];
    int n = split(pattern, strlen(pattern), segs, SP_ROUTE_MAX_SEGMENTS);
    if (n < 0 || strlen(method) >= sizeof(((sp_route_t *)0)->method) || cb == NULL)
        return SP_EINVAL;
    for (sp_route_t *x = r->head; x; x = x->next)
        if (strcasecmp(x->method, method) == 0 && strcmp(x->pattern, pattern) == 0)
            return SP_EEXISTS;
    sp_route_t *rt = sp_calloc(1, sizeof(*rt));
    size_t n_params = 0;
    for (int i = 0; i < n; i++) {
        rt->segs[i] = sp_strndup(segs[i].p, segs[i].len);
        rt->is_param[i] =
            segs[i].len > 2 && segs[i].p[0] == '{' && segs[i].p[segs[i].len - 1] == '}';
        if (rt->is_param[i]) {
            n_params++;
            if (segs[i].p[1] == '*') {
                if (i != n - 1)
                    goto bad;
                rt->wildcard_tail = true;
            }
        }
    }
    rt->n_segs = (size_t)n;
    if (n_params > SP_ROUTE_MAX_PARAMS)
        goto bad;
    for (size_t i = 0; method[i]; i++)
        rt->method[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32 : method[i]);
    rt->pattern = sp_strdup(pattern);
    rt->cb = cb;
    rt->ud = ud;
    if (opts)
        rt->opts = *opts;
    if (r->tail)
        r->tail->next = rt;
    else
        r->head = rt;
    r->tail = rt;
    return 0;
bad:
    for (size_t i = 0; i < (size_t)n; i++)
        sp_free(rt->segs[i]);
    sp_free(rt);
    return SP_EINVAL;
}

void sp_router_set_guard(sp_router_t *r, sp_route_guard_cb guard, void *ud)
{
    r->guard = guard;
    r->guard_ud = ud;
}

/* Returns the number of literal segments matched (>= 0), or -1 for no match. */
static int match_route(const sp_route_t *rt, const sp_str_t *segs, size_t n, sp_route_match_t *m)
{
    if (rt->wildcard_tail ? n < rt->n_segs : n != rt->n_segs)
        return -1;
    int literals = 0;
    size_t np = 0;
    for (size_t i = 0; i < rt->n_segs; i++) {
        if (rt->is_param[i]) {
            if (m) {
                m->params[np].name = rt->segs[i];
                m->params[np].value = segs[i];
                if (rt->wildcard_tail && i == rt->n_segs - 1)
                    m->params[np].value.len = (size_t)(segs[n - 1].p + segs[n - 1].len - segs[i].p);
            }
            np++;
        } else if (!sp_str_eq_cstr(segs[i], rt->segs[i])) {
            return -1;
        } else {
            literals++;
        }
    }
    if (m)
        m->n_params = np;
    return literals;
}

static bool method_matches(const char *route_method, const char *method)
{
    if (strcasecmp(route_method, method) == 0)
        return true;
    return strcasecmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

int sp_router_match(const sp_router_t *r, const char *method, const char *path, size_t path_len,
                    sp_route_match_t *m)
{
    sp_str_t segs[SP_ROUTE_MAX_SEGMENTS + 1];
    memset(m, 0, sizeof(*m));
    int n = split(path, path_len, segs, SP_ROUTE_MAX_SEGMENTS);
    if (n < 0)
        return 404;
    const sp_route_t *best = NULL;
    int best_lit = -1;
    bool path_known = false;
    for (const sp_route_t *rt = r->head; rt; rt = rt->next) {
        int lit = match_route(rt, segs, (size_t)n, NULL);
        if (lit < 0)
            continue;
        path_known = true;
        if (method_matches(rt->method, method) && lit > best_lit) {
            best = rt;
            best_lit = lit;
        }
    }
    if (best) {
        match_route(best, segs, (size_t)n, m);
        m->route = best;
        return 0;
    }
    if (!path_known)
        return 404;
    /* 405: collect the methods of every route matching this path. */
    size_t al = 0;
    bool has_get = false;
    for (const sp_route_t *rt = r->head; rt; rt = rt->next) {
        if (match_route(rt, segs, (size_t)n, NULL) < 0)
            continue;
        if (strstr(m->allow, rt->method))
            continue;
        size_t ml = strlen(rt->method);
        if (al + ml + 3 >= sizeof(m->allow))
            break;
        if (al) {
            memcpy(m->allow + al, ", ", 2);
            al += 2;
        }
        memcpy(m->allow + al, rt->method, ml);
        al += ml;
        m->allow[al] = '\0';
        if (strcmp(rt->method, "GET") == 0)
            has_get = true;
    }
    if (has_get && al + 7 < sizeof(m->allow)) {
        memcpy(m->allow + al, ", HEAD", 7);
    }
    return 405;
}

const char *sp_route_pattern(const sp_route_t *rt)
{
    return rt->pattern;
}

sp_http_handler_cb sp_route_handler(const sp_route_t *rt)
{
    return rt->cb;
}

void *sp_route_ud(const sp_route_t *rt)
{
    return rt->ud;
}

const sp_route_opts_t *sp_route_opts(const sp_route_t *rt)
{
    return &rt->opts;
}

sp_route_guard_cb sp_router_guard(const sp_router_t *r, void **ud)
{
    if (ud)
        *ud = r->guard_ud;
    return r->guard;
}
