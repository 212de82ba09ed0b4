/*
 * sp_curlm: libcurl multi_socket glue on libuv (see sp_curlm.h).
 *
 * The glue (docs/internals/media-client.md, "sp_curlm"):
 *  - CURLMOPT_SOCKETFUNCTION -> one uv_poll per socket (sock_t, assigned to
 *    the socket with curl_multi_assign), closed on CURL_POLL_REMOVE;
 *  - CURLMOPT_TIMERFUNCTION -> one uv_timer;
 *  - after every curl_multi_socket_action, curl_multi_info_read is drained and
 *    finished transfers are completed.
 * We never call back into curl from inside a curl callback: the socket and
 * timer callbacks only touch libuv handles. User callbacks run from our own
 * dispatch loop, outside any curl call, so they may start new requests or free
 * the whole client (then the free is deferred to the end of the dispatch).
 * Socket callbacks can arrive during curl_multi_cleanup; they are handled.
 */
#include "net/sp_curlm.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"

#ifndef SP_VERSION
#define SP_VERSION "dev"
#endif

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE (4u * 1024 * 1024)
#define RETRY_AFTER_MAX 64

typedef struct req_s req_t;
typedef struct sock_s sock_t;

struct req_s {
    req_t *prev, *next;
    sp_curlm_t *m;
    CURL *easy;
    struct curl_slist *hdrs;
    sp_buf_t resp;
    bool toobig;
    bool has_retry_after;
    char retry_after[RETRY_AFTER_MAX + 1];
    bool has_rl_remaining, has_rl_reset;
    char rl_remaining[RETRY_AFTER_MAX + 1];
    char rl_reset[RETRY_AFTER_MAX + 1];
    char errbuf[CURL_ERROR_SIZE];
    sp_curlm_cb cb;
    void *ud;
};

struct sock_s {
    uv_poll_t poll;
    sock_t *prev, *next;
    sp_curlm_t *m;
    curl_socket_t fd;
    bool closing;
};

struct sp_curlm_s {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    bool timer_closing;
    req_t *reqs;       /* in flight */
    size_t npending;
    sock_t *socks;     /* open poll handles */
    unsigned handles;  /* libuv handles not yet closed (timer + polls) */
    int depth;         /* > 0 while dispatching completions */
    bool free_requested;
    bool freeing;
    bool in_timer;     /* inside on_timer's curl_multi_socket_action */
};

static bool g_curl_init;

/* ---- lists ------------------------------------------------------------------ */

static void req_link(sp_curlm_t *m, req_t *r)
{
    r->prev = NULL;
    r->next = m->reqs;
    if (m->reqs)
        m->reqs->prev = r;
    m->reqs = r;
    m->npending++;
}

static void req_unlink(sp_curlm_t *m, req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        m->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    m->npending--;
}

static void req_destroy(req_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    sp_buf_cleanup(&r->resp);
    sp_free(r);
}

/* ---- handle lifetime ---------------------------------------------------------- */

static void maybe_release(sp_curlm_t *m)
{
    if (m->freeing && m->handles == 0)
        sp_free(m);
}

static void on_timer_close(uv_handle_t *h)
{
    sp_curlm_t *m = h->data;
    m->handles--;
    maybe_release(m);
}

static void on_sock_close(uv_handle_t *h)
{
    sock_t *s = (sock_t *)h;
    sp_curlm_t *m = s->m;
    sp_free(s);
    m->handles--;
    maybe_release(m);
}

static void sock_close(sock_t *s)
{
    sp_curlm_t *m = s->m;
    if (s->closing)
        return;
    s->closing = true;
    if (s->prev)
        s->prev->next = s->next;
    else
        m->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_close);
}

/* ---- completion ------------------------------------------------------------ */

static void complete(req_t *r, CURLcode cc)
{
    sp_curlm_response_t res;
    memset(&res, 0, sizeof res);
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    res.status = status;
    if (cc == CURLE_OK) {
        res.err = 0;
        res.errmsg = "ok";
    } else if (r->toobig || cc == CURLE_FILESIZE_EXCEEDED) {
        res.err = SP_ETOOBIG;
        res.errmsg = "response too large";
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        res.err = SP_ETIMEDOUT;
        res.errmsg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
    } else {
        res.err = SP_EIO;
        res.errmsg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
    }
    if (res.err == 0) {
        res.body = r->resp.p ? r->resp.p : "";
        res.body_len = r->resp.len;
    } else {
        res.body = "";
        res.body_len = 0;
    }
    res.retry_after = r->has_retry_after ? r->retry_after : NULL;
    res.rl_remaining = r->has_rl_remaining ? r->rl_remaining : NULL;
    res.rl_reset = r->has_rl_reset ? r->rl_reset : NULL;
    long sent = 0;
    curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
    res.request_sent = (sent > 0 || status > 0) ? 1 : 0;
    r->cb(&res, r->ud);
}

static void do_free(sp_curlm_t *m);

/* Drains curl's message queue; called after every socket_action. */
static void check_done(sp_curlm_t *m)
{
    CURLMsg *msg;
    int left;
    m->depth++;
    while (!m->free_requested && m->multi && (msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode cc = msg->data.result;
        req_t *r = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(m->multi, easy);
        req_unlink(m, r);
        complete(r, cc);
        req_destroy(r);
    }
    m->depth--;
    if (m->depth == 0 && m->free_requested && !m->freeing)
        do_free(m);
}

/* ---- libuv -> curl ------------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_t *s = (sock_t *)h;
    sp_curlm_t *m = s->m;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    if (!m->multi)
        return;
    /* s may be closed by the socket callback below: do not touch it after. */
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static void on_timer(uv_timer_t *t)
{
    sp_curlm_t *m = t->data;
    int running = 0;
    if (!m->multi)
        return;
    m->in_timer = true;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    m->in_timer = false;
    check_done(m);
}

/* ---- curl -> libuv (never call curl from here) ------------------------------ */

static int timer_fn(CURLM *multi, long ms, void *ud)
{
    (void)multi;
    sp_curlm_t *m = ud;
    if (m->timer_closing)
        return 0;
    if (ms < 0)
        uv_timer_stop(&m->timer);
    else
        /* "0: act now" is a 0 ms timer (next loop turn), except from inside on_timer, where
           libuv (< 1.45) would run a due timer again in the same uv__run_timers pass: there
           1 ms. A 1 ms floor everywhere cost ~1 ms per kick of every API call. */
        uv_timer_start(&m->timer, on_timer, ms == 0 ? (m->in_timer ? 1 : 0) : (uint64_t)ms, 0);
    return 0;
}

static int socket_fn(CURL *easy, curl_socket_t fd, int action, void *ud, void *sockp)
{
    (void)easy;
    sp_curlm_t *m = ud;
    sock_t *s = sockp;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            if (m->multi)
                curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        if (m->freeing)
            return -1;
        s = sp_calloc(1, sizeof *s);
        s->m = m;
        s->fd = fd;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            sp_free(s);
            return -1;
        }
        m->handles++;
        s->next = m->socks;
        if (m->socks)
            m->socks->prev = s;
        m->socks = s;
        curl_multi_assign(m->multi, fd, s);
    }
    int ev = 0;
    if (action & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (action & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* ---- easy-handle callbacks -------------------------------------------------- */

static size_t write_fn(char *p, size_t size, size_t n, void *ud)
{
    req_t *r = ud;
    size_t len = size * n;
    if (sp_buf_append(&r->resp, p, len) != 0) {
        r->toobig = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return len;
}

/* Copies a header's value (trimmed, cut at RETRY_AFTER_MAX) when p is "name: value". */
static bool header_value(const char *p, size_t len, const char *name, size_t nlen, char *out)
{
    if (len <= nlen || strncasecmp(p, name, nlen) != 0)
        return false;
    const char *v = p + nlen, *e = p + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t vl = (size_t)(e - v);
    if (vl > RETRY_AFTER_MAX)
        vl = RETRY_AFTER_MAX;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

static size_t header_fn(char *p, size_t size, size_t n, void *ud)
{
    req_t *r = ud;
    size_t len = size * n;
    static const char ra[] = "retry-after:";
    static const char rem[] = "ratelimit-remaining:";
    static const char rst[] = "ratelimit-reset:";
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (after 100-continue) */
        r->has_retry_after = r->has_rl_remaining = r->has_rl_reset = false;
    } else if (header_value(p, len, ra, sizeof ra - 1, r->retry_after)) {
        r->has_retry_after = true;
    } else if (header_value(p, len, rem, sizeof rem - 1, r->rl_remaining)) {
        r->has_rl_remaining = true;
    } else if (header_value(p, len, rst, sizeof rst - 1, r->rl_reset)) {
        r->has_rl_reset = true;
    }
    return len;
}

/* ---- API ------------------------------------------------------------------------ */

sp_curlm_t *sp_curlm_new(uv_loop_t *loop)
{
    if (!g_curl_init) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        g_curl_init = true;
    }
    sp_curlm_t *m = sp_calloc(1, sizeof *m);
    m->loop = loop;
    m->multi = curl_multi_init();
    if (!m->multi) {
        sp_free(m);
        return NULL;
    }
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->handles = 1;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
    return m;
}

static bool method_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < 'A' || s[n] > 'Z')
            return false;
    return n > 0 && n <= 16;
}

static bool header_ok(const char *h)
{
    for (const char *p = h; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return strchr(h, ':') != NULL;
}

int sp_curlm_request(sp_curlm_t *m, const sp_curlm_request_t *req, sp_curlm_cb cb, void *ud)
{
    if (!m || !req || !req->url || !cb)
        return SP_EINVAL;
    if (m->freeing || m->free_requested)
        return SP_ECLOSED;
    const char *method = req->method ? req->method : "GET";
    if (!method_ok(method))
        return SP_EINVAL;
    if (req->body_len > 0 && !req->body)
        return SP_EINVAL;

    req_t *r = sp_calloc(1, sizeof *r);
    r->m = m;
    r->cb = cb;
    r->ud = ud;
    size_t max = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE;
    sp_buf_init(&r->resp, max);
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    if (req->headers) {
        for (const char *const *h = req->headers; *h; h++) {
            if (!header_ok(*h))
                goto fail_inval;
            struct curl_slist *n = curl_slist_append(r->hdrs, *h);
            if (!n)
                goto fail;
            r->hdrs = n;
        }
    }
    struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
    if (!n)
        goto fail;
    r->hdrs = n;

    CURL *e = r->easy;
    uint64_t timeout = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK)
        goto fail_inval;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_fn);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_fn);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "streampai/" SP_VERSION);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (req->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);

    bool has_body = req->body != NULL || strcmp(method, "POST") == 0 ||
                    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? (const char *)req->body : "");
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        /* Non-idempotent: a fresh connection, so curl never silently re-sends it on a
         * pooled connection that turns out dead (the server may have processed it). */
        if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0)
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    req_link(m, r);
    if (curl_multi_add_handle(m->multi, e) != CURLM_OK) {
        req_unlink(m, r);
        goto fail;
    }
    return 0;

fail_inval:
    req_destroy(r);
    return SP_EINVAL;
fail:
    req_destroy(r);
    return SP_EIO;
}

size_t sp_curlm_pending(const sp_curlm_t *m)
{
    return m ? m->npending : 0;
}

static void do_free(sp_curlm_t *m)
{
    m->freeing = true;
    /* Cancel everything still in flight. Removing handles may call socket_fn
     * (CURL_POLL_REMOVE): it only closes poll handles. */
    while (m->reqs) {
        req_t *r = m->reqs;
        curl_multi_remove_handle(m->multi, r->easy);
        req_unlink(m, r);
        m->depth++;
        sp_curlm_response_t res = { .err = SP_ECANCELED, .status = 0, .errmsg = "canceled",
                                    .body = "", .body_len = 0, .retry_after = NULL,
                                    .request_sent = 1 };
        r->cb(&res, r->ud);
        m->depth--;
        req_destroy(r);
    }
    CURLM *multi = m->multi;
    m->multi = NULL; /* socket_fn must not call curl_multi_assign during cleanup */
    curl_multi_cleanup(multi); /* may still call socket_fn for cached connections */
    while (m->socks)
        sock_close(m->socks);
    m->timer_closing = true;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_timer_close);
}

void sp_curlm_free(sp_curlm_t *m)
{
    if (!m || m->freeing || m->free_requested)
        return;
    m->free_requested = true;
    if (m->depth > 0)
        return; /* inside a completion callback: check_done finishes it */
    do_free(m);
}
