/*
 * sp_ws_client: an outbound WebSocket client (RFC 6455) on libuv + wslay, for
 * ws:// and wss:// (the Twitch EventSub monitor uses it).
 *
 * Lifecycle: sp_ws_client_new() parses the URL (libcurl's URL API), then
 * resolves the host (uv_getaddrinfo), connects, runs TLS for wss:// (peer
 * certificate and host name verified, SNI sent), sends the HTTP/1.1 Upgrade
 * request with a random Sec-WebSocket-Key and validates the 101 answer
 * (Upgrade, Connection, Sec-WebSocket-Accept; no extension or subprotocol we
 * did not ask for). Everything up to the 101 must finish within
 * connect_timeout_ms. Frames we send are masked (wslay client mode); server
 * pings are answered with pongs, fragmented messages are reassembled, a
 * message over max_message is answered with close 1009.
 *
 * Callbacks (all on the loop thread, never from inside an sp_ws_client_*()
 * call):
 *  - on_open: once, when the 101 has been validated.
 *  - on_message: zero or more times after on_open and before any
 *    sp_ws_client_close(), one complete message each (text is valid UTF-8).
 *    The bytes are valid during the call only.
 *  - on_error: once, INSTEAD of on_open, if the connection never opened (DNS,
 *    connect, TLS, timeout, a non-101 answer (SP_EUPSTREAM; the status is
 *    sp_ws_client_http_status()), a bad handshake (SP_EPROTO), or
 *    sp_ws_client_close() before open (SP_ECANCELED)). Nothing fires after it.
 *  - on_close: once, after on_open, when the connection is over. code is the
 *    peer's close code if its close frame arrived (1005 if it had none), else
 *    the code we sent when we failed the connection (1002 protocol error,
 *    1007 bad UTF-8, 1009 too big), else 1006 (the socket dropped, the close
 *    reply did not come within close_timeout_ms, the ping went unanswered).
 *    reason is the peer's reason (or a short local one for 1006), NUL-
 *    terminated, valid during the call only. Nothing fires after it.
 * So exactly one of on_error / on_close ends every client, unless it is freed
 * first: after sp_ws_client_free() no callback fires at all.
 *
 * Validity: the object stays valid after on_error / on_close (sends then return
 * SP_ECLOSED) until the owner calls sp_ws_client_free(), which it must do
 * exactly once. sp_ws_client_free() may be called at any time, inside any of
 * the callbacks included; the pointer is invalid as soon as it returns; the
 * memory is released later, from libuv close callbacks (uv_run the loop until
 * it has no handles to finish). free does not send a close frame: call
 * sp_ws_client_close() and free in on_close for a graceful end.
 *
 * Limits: handshake response headers <= max_header_bytes; one received message
 * <= max_message; bytes queued for sending (not yet written to the socket)
 * <= max_queue (over: send returns SP_ETOOBIG; a peer that makes us queue
 * past it, e.g. by pinging while never reading, is dropped with 1006).
 *
 * Resolution: the first IPv4 address of the host is used, else the first one.
 */
#ifndef SP_WS_CLIENT_H
#define SP_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "net/sp_tls.h"

typedef struct sp_ws_client_s sp_ws_client_t;

typedef struct {
    void (*on_open)(sp_ws_client_t *c, void *ud);
    void (*on_message)(sp_ws_client_t *c, bool binary, const uint8_t *p, size_t len, void *ud);
    void (*on_close)(sp_ws_client_t *c, int code, const char *reason, void *ud);
    void (*on_error)(sp_ws_client_t *c, int err, void *ud);
} sp_ws_client_cbs_t;

typedef struct {
    const char *url;             /* ws://host[:port]/path?query or wss://... */
    const char *const *headers;  /* extra request headers, "Name: value" each; not Host,
                                    Upgrade, Connection or Sec-WebSocket-* */
    size_t n_headers;
    size_t max_message;          /* bytes; over -> close 1009 (default 1 MiB) */
    size_t max_queue;            /* outbound bytes not yet written (default 4 MiB) */
    size_t max_header_bytes;     /* handshake response headers (default 16 KiB) */
    uint64_t connect_timeout_ms; /* DNS + TCP + TLS + 101 (default 10000) */
    uint64_t ping_interval_ms;   /* 0 = no pings; else ping every interval and drop
                                    (1006) a peer silent for an interval after a ping */
    uint64_t close_timeout_ms;   /* wait for the close reply (default 2000) */
    sp_tls_ctx_t *tls_ctx;       /* wss: shared context (net/sp_tls.h; not owned, must
                                    outlive the client); made at start-up, no CA file is
                                    read on the loop. NULL: one per connection from: */
    const char *ca_file;         /* wss: PEM CA bundle to trust; NULL = system store */
    sp_ws_client_cbs_t cbs;
    void *ud;
} sp_ws_client_opts_t;

/**
 * Validates opts and starts connecting. Returns 0 and *out, or SP_EINVAL (bad
 * URL or scheme, port 0, a header with CR/LF, no colon or a handshake header's
 * name, missing url) with *out NULL and no callback.
 */
int sp_ws_client_new(uv_loop_t *loop, const sp_ws_client_opts_t *opts, sp_ws_client_t **out);
/** See the top comment. NULL is a no-op. */
void sp_ws_client_free(sp_ws_client_t *c);
/**
 * Queues one text message (masked). Returns 0, SP_EAGAIN before on_open,
 * SP_ECLOSED once closing or closed, SP_ETOOBIG if the bytes queued would pass
 * max_queue, SP_EUTF8 if text is not valid UTF-8.
 */
int sp_ws_client_send_text(sp_ws_client_t *c, const char *text, size_t len);
/** Same for a binary message. */
int sp_ws_client_send_binary(sp_ws_client_t *c, const void *p, size_t len);
/**
 * Starts the close handshake: sends close(code, reason) (reason <= 123 bytes,
 * cut on a UTF-8 boundary otherwise; a code that may not be sent, such as
 * 1005 or 1006, becomes 1000) and waits close_timeout_ms for the reply;
 * on_close follows.
 * Before on_open it abandons the attempt (on_error(SP_ECANCELED) follows).
 * A no-op once closing or closed.
 */
void sp_ws_client_close(sp_ws_client_t *c, uint16_t code, const char *reason);
bool sp_ws_client_is_open(const sp_ws_client_t *c);
/** HTTP status of the handshake answer (0 before it arrived). */
int sp_ws_client_http_status(const sp_ws_client_t *c);

/* ---- pure parts (unit-tested, fuzzed) ----------------------------------------------- */
typedef struct {
    int status;          /* HTTP status, 0 until the status line is parsed */
    const char *reason;  /* on failure: "malformed", "status", "upgrade", "connection",
                            "accept", "extensions", "protocol", "too_big" */
} sp_ws_client_hs_t;

/**
 * Parses and validates the server's handshake answer at the start of p[len]
 * (http-parser). accept is the expected Sec-WebSocket-Accept. Returns the size
 * of the header block (> 0; frame bytes may follow it) for a valid 101,
 * SP_EAGAIN if the header block is not complete yet, SP_ETOOBIG if it is
 * longer than max_header, SP_EUPSTREAM if the status is not 101 (out->status),
 * or SP_EPROTO (malformed HTTP, or Upgrade/Connection/Accept wrong, or an
 * extension/subprotocol we did not offer; out->reason says which).
 */
int sp_ws_client_parse_handshake(const uint8_t *p, size_t len, size_t max_header,
                                 const char *accept, sp_ws_client_hs_t *out);

/**
 * Appends the Upgrade request to out (its max is the cap). Returns 0, or
 * SP_ETOOBIG with out unchanged.
 */
int sp_ws_client_build_request(sp_buf_t *out, const char *host_header, const char *path,
                               const char *key, const char *const *headers, size_t n_headers);

#endif
