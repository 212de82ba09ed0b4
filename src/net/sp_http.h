/*
 * sp_http: the HTTP/1.1 server (http-parser glue, keep-alive, pipelining,
 * chunked bodies, limits) and the request/response API handlers use.
 *
 * Lifecycle of a request: the server parses headers, matches the route (so the
 * route's body limit applies while the body streams in), reads the body, runs
 * the guard and then the handler. The handler answers with exactly one
 * sp_http_respond*() call, synchronously or later (after a DB or HTTP call).
 * Pipelined requests are answered in order: the next request is not parsed
 * until the current one has been answered. If the client goes away while a
 * handler is pending, the req stays valid until the handler responds (the
 * response is then dropped); sp_http_req_aborted() tells.
 *
 * All functions run on the loop thread.
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "net/sp_router.h"

typedef struct sp_http_server_s sp_http_server_t;

typedef struct {
    const char *listen;          /* "host:port"; port 0 = kernel-chosen */
    size_t max_connections;      /* HTTP + upgraded; beyond: 503 and close (fitted to the fd
                                    limit at listen, see sp_http.c) */
    size_t max_header_bytes;     /* request line + headers; over -> 431 */
    size_t default_body_limit;   /* over -> 413 */
    uint64_t header_timeout_ms;  /* headers of a request must arrive within */
    uint64_t idle_timeout_ms;    /* keep-alive idle */
    const char *web_dir;         /* static files root; NULL = none */
    const char *server_name;     /* for logs */
} sp_http_opts_t;

sp_http_server_t *sp_http_server_new(uv_loop_t *loop, const sp_http_opts_t *opts,
                                     sp_router_t *router);
/** Binds and listens. Returns 0 or a negative code; the error names the address in the log. */
int sp_http_server_listen(sp_http_server_t *s);
/** The bound port (useful with port 0). */
int sp_http_server_port(const sp_http_server_t *s);
/** Stop accepting; close idle keep-alive connections; let in-flight requests finish. */
void sp_http_server_stop_accepting(sp_http_server_t *s);
/** Connections with a request in flight. */
size_t sp_http_server_busy(const sp_http_server_t *s);
/** Closes everything still open; memory is released once handles are closed. */
void sp_http_server_free(sp_http_server_t *s);

/* ---- request --------------------------------------------------------------------- */
const char *sp_http_req_method(const sp_http_req_t *req); /* "GET" */
const char *sp_http_req_path(const sp_http_req_t *req);  /* raw path, no query */
/** Decoded value of a query parameter into out; false if absent or too long. */
bool sp_http_req_query_param(const sp_http_req_t *req, const char *name, char *out, size_t cap);
/** Case-insensitive header lookup; NULL if absent. */
const char *sp_http_req_header(const sp_http_req_t *req, const char *name);
/** Value of cookie name into out; false if absent. */
bool sp_http_req_cookie(const sp_http_req_t *req, const char *name, char *out, size_t cap);
/** Route path parameter (percent-decoded, NUL-terminated); NULL if absent. */
const char *sp_http_req_param(const sp_http_req_t *req, const char *name);
const sp_buf_t *sp_http_req_body(const sp_http_req_t *req);
/**
 * Parses the body as a JSON object. On failure responds itself and returns NULL: 415 when
 * Content-Type is not application/json (absent included), 400 when the body is empty or not
 * a JSON object. Every JSON route goes through here; webhooks check their own bodies.
 */
json_t *sp_http_req_json_or_400(sp_http_req_t *req);
/** True when ct is the media type application/json, with or without parameters. */
bool sp_http_is_json_type(const char *ct);
const char *sp_http_req_remote_ip(const sp_http_req_t *req);
const char *sp_http_req_route_pattern(const sp_http_req_t *req);
bool sp_http_req_aborted(const sp_http_req_t *req);
/** Per-request slot for the guard/handler (e.g. the authenticated user). Not freed by the server.
 */
void sp_http_req_set_data(sp_http_req_t *req, void *data);
void *sp_http_req_get_data(const sp_http_req_t *req);
/** Function that frees the data slot when the request is freed (answered or aborted). */
void sp_http_req_set_data_free(sp_http_req_t *req, void (*fn)(void *));
/** User id shown in the access log line (copied). */
void sp_http_req_set_user(sp_http_req_t *req, const char *user_id);
/** After an asynchronous guard: run the route handler now. */
void sp_http_req_continue(sp_http_req_t *req);
uv_loop_t *sp_http_req_loop(const sp_http_req_t *req);

/* ---- response -------------------------------------------------------------------- */
/** Adds a response header (copied). Call before responding. */
void sp_http_res_header(sp_http_req_t *req, const char *name, const char *value);
/** Sends the response; req is invalid afterwards. body may be NULL. HEAD drops the body. */
void sp_http_respond(sp_http_req_t *req, int status, const char *content_type, const void *body,
                     size_t len);
/** Sends json (the reference is stolen) as application/json. */
void sp_http_respond_json(sp_http_req_t *req, int status, json_t *json);
/** {"error":{"code":code,"message":message}} */
void sp_http_respond_error(sp_http_req_t *req, int status, const char *code, const char *message);

/* ---- protocol upgrade (WebSocket) --------------------------------------------------- */
/**
 * Detaches the TCP connection from the HTTP server after a handler decides to
 * upgrade. The caller owns the returned handle from then on (its data pointer
 * is free for the caller; it must uv_close it and sp_free it in the close cb).
 * Bytes already received after the request are appended to leftover. Reading
 * is stopped; the caller starts it with its own callbacks. req is invalid after.
 * Returns NULL (req still valid: answer it) if the client is gone or an earlier
 * pipelined answer is still being written.
 */
uv_tcp_t *sp_http_req_upgrade(sp_http_req_t *req, sp_buf_t *leftover);
/** The server req arrived on (for sp_http_server_upgraded_closed). */
sp_http_server_t *sp_http_req_server(const sp_http_req_t *req);
/**
 * An upgraded connection keeps counting in max_connections (and keeps the server's memory,
 * even after sp_http_server_free) until its owner calls this once, from the handle's close
 * callback. NULL-safe.
 */
void sp_http_server_upgraded_closed(sp_http_server_t *s);

/**
 * Memory mode, for unit tests and fuzzing: runs the parser glue, the router
 * and synchronous handlers over `in` as if it arrived on one connection, and
 * appends every byte the server would have written to `out`. Returns 0, or
 * SP_EAGAIN if a handler was left pending (asynchronous handlers need a loop).
 */
int sp_http_feed(sp_router_t *router, const sp_http_opts_t *opts, const void *in, size_t len,
                 sp_buf_t *out);

#endif
