/*
 * sp_ws: the WebSocket server (RFC 6455) on top of sp_http's upgrade and wslay.
 *
 * A hub owns every upgraded connection. GET /socket is validated by the pure
 * sp_ws_handshake_check() (400 bad key/upgrade, 426 bad version, 403 foreign
 * Origin), then the auth hook decides asynchronously (401; no hook: 401, fail closed), then the
 * hub writes "101 Switching Protocols" on the detached uv_tcp_t and runs wslay.
 *
 * Reading: libuv -> one hub-wide read buffer -> sp_ws_proto (wslay) ->
 * complete messages. wslay handles ping/pong/close and framing errors (1002),
 * enforces max_message (1009); text is UTF-8 checked here (1007).
 *
 * Writing: every connection has ONE ordered outbound queue of refcounted
 * frames (sp_rbuf_t). Data frames never pass through wslay: a broadcast
 * encodes its frame once (sp_ws_frame_encode: header + payload in one rbuf)
 * and the same rbuf is referenced from N queues and handed to uv_write as is
 * (no per-connection copy). Control frames wslay produces (pong, ping, close)
 * are copied once into a small rbuf and appended to the same queue, so order
 * is kept. At most one uv_write is in flight per connection (up to 16 frames);
 * the rest waits in the queue, where it can still be dropped.
 *
 * Slow readers: queued + in-flight bytes are capped (max_queue). Sending past
 * the cap drops the frames not yet handed to libuv, queues close 1008 and logs
 * one line; the connection is then closed when the close frame is written and
 * answered, or after a close timeout. No other connection is affected.
 *
 * Liveness: one hub timer pings each connection every ping_interval and closes
 * (1001 "idle timeout", then TCP) a peer silent for idle_timeout.
 *
 * Limits: an upgraded socket stays in the HTTP server's MAX_CONNECTIONS budget until its
 * descriptor is closed (sp_http_server_upgraded_closed). max_per_user caps the open sockets
 * of one user id (dashboard tabs + widgets): one more is answered 503 `too_many_sockets`
 * with Retry-After BEFORE the upgrade, counted in streampai_ws_refused_total.
 *
 * Credentials: the auth hook may tag a socket with the credential that opened it
 * (sp_ws_auth_set_cred: "sid" + session id, "widget" + widget token id, ...); when that
 * credential is revoked, sp_ws_hub_close_cred closes its sockets at once.
 *
 * Threading: everything runs on the loop thread.
 */
#ifndef SP_WS_H
#define SP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "net/sp_http.h"
#include "net/sp_ws_proto.h"

typedef struct sp_ws_hub_s sp_ws_hub_t;
typedef struct sp_ws_conn_s sp_ws_conn_t;
typedef struct sp_ws_auth_s sp_ws_auth_t;

typedef struct {
    size_t max_message;        /* bytes; over -> close 1009 (default 64 KiB) */
    size_t max_queue;          /* outbound bytes per connection; over -> 1008 (default 1 MiB) */
    uint64_t ping_interval_ms; /* default 30000 */
    uint64_t idle_timeout_ms;  /* default 60000 */
    uint64_t close_timeout_ms; /* wait for the peer's close reply (default 2000) */
    const char *public_url;    /* origin derived from it */
    const char *allowed_origins; /* extra origins, comma-separated */
    bool test_mode; /* SP_TEST_HOOKS builds only: enables the diag "flood"/"publish" helpers */
    size_t max_per_user; /* open sockets per user id; 0 = no limit */
} sp_ws_opts_t;

/* Connection flags set by the auth hook. */
#define SP_WS_READONLY 1u /* widget socket: any client message -> close 1008 */
/* OBS widget sockets (GET /socket?widget_token=): not dashboard presence; the bus lets them
 * join only their widget's topics (sp_pubsub_default_authorize). */
#define SP_WS_WIDGET_ALERTBOX 2u
#define SP_WS_WIDGET_CHAT 4u
#define SP_WS_WIDGET (SP_WS_WIDGET_ALERTBOX | SP_WS_WIDGET_CHAT)

typedef struct {
    /** After the 101 went out. */
    void (*on_open)(sp_ws_conn_t *c, void *ud);
    /** A complete text message (UTF-8 valid). Return false if not understood. */
    bool (*on_text)(sp_ws_conn_t *c, const char *msg, size_t len, void *ud);
    /** Once, when the connection is gone (code: what we sent or received, 1006 if none). */
    void (*on_close)(sp_ws_conn_t *c, int code, void *ud);
} sp_ws_handlers_t;

/**
 * Auth hook: runs after handshake validation and BEFORE the upgrade. It must
 * eventually call sp_ws_auth_done(a, ...) exactly once (synchronously or later).
 */
typedef void (*sp_ws_auth_cb)(sp_http_req_t *req, sp_ws_auth_t *a, void *ud);
/** status 0 = accept (user_id may be NULL, flags SP_WS_*), else an HTTP status (401, 403). */
void sp_ws_auth_done(sp_ws_auth_t *a, int status, const char *user_id, unsigned flags);
/**
 * Tags the socket about to open with its credential, "kind:id" (kind 1..63 bytes without
 * ':', id 1..127 bytes; else no tag), for sp_ws_hub_close_cred. Call before
 * sp_ws_auth_done(a, 0, ...). Kinds in use: "sid" (session id: cookie, bearer, ?token=),
 * "widget" (widget token id).
 */
void sp_ws_auth_set_cred(sp_ws_auth_t *a, const char *kind, const char *id);
/**
 * The credential's end (wall-clock ms, 0 = none): the socket is closed with 4001 "session
 * expired" then (checked by the hub timer, within a second). Call before sp_ws_auth_done.
 */
void sp_ws_auth_set_expiry(sp_ws_auth_t *a, int64_t wall_ms);

/**
 * Extension hook (pubsub plugs in here): sees every text message first as
 * parsed JSON ("type" field) and every close. on_message returns true if it
 * handled the message.
 */
typedef struct {
    bool (*on_message)(sp_ws_conn_t *c, const char *type, void *json_obj, void *ud);
    void (*on_close)(sp_ws_conn_t *c, void *ud);
    void *ud;
} sp_ws_ext_t;

/**
 * Session observer (presence): opened() when an authenticated, non-read-only
 * socket is open (a non-zero return closes it with 1013 "try again later",
 * e.g. MAX_CONCURRENT_USERS), closed() once when such a socket is gone.
 */
typedef struct {
    int (*opened)(const char *user_id, uint64_t conn_id, void *ud);
    void (*closed)(const char *user_id, uint64_t conn_id, void *ud);
    void *ud;
} sp_ws_observer_t;

typedef struct {
    uint64_t open;         /* open sockets now */
    uint64_t accepted;     /* upgrades done */
    uint64_t rejected;     /* handshakes refused (4xx) */
    uint64_t msgs_in;
    uint64_t msgs_out;     /* data frames queued */
    uint64_t bytes_out;
    uint64_t slow_closed;  /* cut for queue overflow */
    uint64_t refused_user_limit; /* upgrades refused 503 by max_per_user */
    uint64_t closes[16];   /* by code 1000..1015 (index code-1000) */
    uint64_t closes_other;
} sp_ws_stats_t;

sp_ws_hub_t *sp_ws_hub_new(uv_loop_t *loop, const sp_ws_opts_t *opts);
/** Closes every socket at once (no close handshake); memory goes when handles are closed. */
void sp_ws_hub_free(sp_ws_hub_t *hub);
void sp_ws_hub_set_auth(sp_ws_hub_t *hub, sp_ws_auth_cb cb, void *ud);
void sp_ws_hub_set_ext(sp_ws_hub_t *hub, const sp_ws_ext_t *ext);
void sp_ws_hub_set_observer(sp_ws_hub_t *hub, const sp_ws_observer_t *obs);
/** Graceful: every socket gets close(code, "going away"); then closed on reply or timeout. */
void sp_ws_hub_close_all(sp_ws_hub_t *hub, uint16_t code);
size_t sp_ws_hub_count(const sp_ws_hub_t *hub);
/** Open sockets of user_id (what max_per_user counts). */
size_t sp_ws_hub_user_count(const sp_ws_hub_t *hub, const char *user_id);

typedef bool (*sp_ws_match_cb)(const sp_ws_conn_t *c, void *ud);
/**
 * Sends close(code, reason) to every open socket match() accepts (queued frames dropped);
 * each is then closed on the peer's reply or after close_timeout. Returns how many.
 * match must not close sockets itself.
 */
size_t sp_ws_hub_close_if(sp_ws_hub_t *hub, sp_ws_match_cb match, void *ud, uint16_t code,
                          const char *reason);
/**
 * sp_ws_hub_close_if for the sockets tagged kind:id (sp_ws_auth_set_cred). id NULL: any id
 * of that kind, then user_id is required; user_id non-NULL: only that user's sockets.
 * Returns how many were closed (0 when both id and user_id are NULL).
 */
size_t sp_ws_hub_close_cred(sp_ws_hub_t *hub, const char *kind, const char *id,
                            const char *user_id, uint16_t code, const char *reason);
/** Closes (code, reason) every open socket of user_id with any of flags (a rotated widget
 *  token's sockets); returns how many. */
size_t sp_ws_hub_close_user(sp_ws_hub_t *hub, const char *user_id, unsigned flags, uint16_t code,
                            const char *reason);
/** Appends Prometheus text lines (streampai_ws_*) to out. */
void sp_ws_hub_write_metrics(const sp_ws_hub_t *hub, sp_buf_t *out);
/** Queues the same frame on every open connection. */
void sp_ws_hub_broadcast(sp_ws_hub_t *hub, sp_rbuf_t *frame);
const sp_ws_opts_t *sp_ws_hub_opts(const sp_ws_hub_t *hub);

/** Handshake + auth + upgrade for a GET route; responds with the error itself. */
void sp_ws_handle_upgrade(sp_ws_hub_t *hub, sp_http_req_t *req, const sp_ws_handlers_t *h,
                          void *conn_ud);

/**
 * Queues a frame (a new reference is taken). Returns 0, SP_ECLOSED if the
 * connection is closing, or SP_ETOOBIG after cutting a slow reader (1008).
 */
int sp_ws_conn_send_frame(sp_ws_conn_t *c, sp_rbuf_t *frame);
/**
 * sp_ws_conn_send_frame without the write: frames queued this way go out in ONE write at the
 * next sp_ws_conn_flush (a fan-out with several pending messages for a socket coalesces them).
 * Same returns; after SP_ETOOBIG the connection is closing.
 */
int sp_ws_conn_queue_frame(sp_ws_conn_t *c, sp_rbuf_t *frame);
/** Hands what is queued to libuv (no-op while a write is in flight: it follows that write). */
void sp_ws_conn_flush(sp_ws_conn_t *c);
/** Encodes and queues one text message. */
int sp_ws_conn_send_text(sp_ws_conn_t *c, const char *text, size_t len);
/** Authenticated user id or NULL. */
const char *sp_ws_conn_user(const sp_ws_conn_t *c);
unsigned sp_ws_conn_flags(const sp_ws_conn_t *c);
/** "kind:id" given by sp_ws_auth_set_cred, or NULL. */
const char *sp_ws_conn_cred(const sp_ws_conn_t *c);
sp_ws_hub_t *sp_ws_conn_hub(const sp_ws_conn_t *c);
/** A slot for the extension (pubsub keeps its subscription list here). */
void sp_ws_conn_set_ext(sp_ws_conn_t *c, void *p);
void *sp_ws_conn_get_ext(const sp_ws_conn_t *c);

/**
 * The handlers of the diagnostic topic, for the GET /socket route (web/sp_socket.c):
 *   {"type":"echo","payload":X} -> {"topic":"diag","event":"echo","payload":X,"seq":n}
 *   {"type":"ping"}             -> {"topic":"diag","event":"pong","payload":{},"seq":n}
 *   test hooks build (SP_TEST_HOOKS) with test_mode only: {"type":"flood","count":N,"size":S}
 *   broadcasts N diag "flood" messages of S payload bytes to every socket, paced by a timer.
 * Unknown types get {"topic":"diag","event":"error","payload":{"message":..}}.
 * Other types (subscribe, resume...) go to the extension hook first.
 */
const sp_ws_handlers_t *sp_ws_default_handlers(void);

#endif
