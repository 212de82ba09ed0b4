/*
 * sp_ws_proto: the socket-free parts of the WebSocket server (RFC 6455).
 *
 *  - handshake validation (pure): method, Upgrade, Connection, version, key,
 *    Origin against an allow-list; computes Sec-WebSocket-Accept;
 *  - allowed-origin list built from PUBLIC_URL plus ALLOWED_ORIGINS;
 *  - UTF-8 validation (wslay does not check text frames);
 *  - the server frame encoder for outbound, unmasked data frames (one
 *    refcounted buffer holding header + payload, fanned out to N sockets);
 *  - sp_ws_proto_t: the wslay_event_context glue. Bytes read from a socket are
 *    fed in; complete, validated messages come out through on_message, and
 *    control frames wslay produces (pong, close, ping) come out through
 *    on_output as whole frames. No sockets, no loop: the fuzzer drives it.
 *
 * Origin policy (documented decision): a request WITHOUT an Origin header is
 * accepted (browsers always send Origin on a WebSocket handshake, so its
 * absence means a non-browser client such as OBS, a CLI or a test; such a
 * client cannot carry a victim's cookies cross-site). A PRESENT Origin must
 * match an allowed origin exactly after normalisation (lower-case scheme and
 * host, default port dropped, no path). "null", "file://..." and anything
 * without a host never match, closing the Phoenix #2770 null-origin trap.
 */
#ifndef SP_WS_PROTO_H
#define SP_WS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"

/* Close codes (RFC 6455 §7.4.1). */
#define SP_WS_CLOSE_NORMAL 1000
#define SP_WS_CLOSE_GOING_AWAY 1001
#define SP_WS_CLOSE_PROTOCOL 1002
#define SP_WS_CLOSE_UNSUPPORTED 1003
#define SP_WS_CLOSE_ABNORMAL 1006 /* never sent: no close frame */
#define SP_WS_CLOSE_BAD_DATA 1007
#define SP_WS_CLOSE_POLICY 1008
#define SP_WS_CLOSE_TOO_BIG 1009
#define SP_WS_CLOSE_INTERNAL 1011

#define SP_WS_OP_TEXT 0x1
#define SP_WS_OP_BINARY 0x2
#define SP_WS_OP_CLOSE 0x8
#define SP_WS_OP_PING 0x9
#define SP_WS_OP_PONG 0xA

/* ---- allowed origins -------------------------------------------------------------- */
#define SP_WS_MAX_ORIGINS 16
#define SP_WS_ORIGIN_MAX 256

typedef struct {
    size_t n;
    char v[SP_WS_MAX_ORIGINS][SP_WS_ORIGIN_MAX]; /* normalised "scheme://host[:port]" */
} sp_ws_origins_t;

/**
 * Normalises an origin or URL ("HTTPS://Example.COM:443/path" ->
 * "https://example.com") into out. Only http/https/ws/wss with a host.
 * Returns 0, or SP_EINVAL ("null", file://, no host, too long).
 */
int sp_ws_origin_normalize(const char *in, size_t len, char *out, size_t cap);
/** Builds the list from public_url (may be NULL) and a comma-separated extra list. */
int sp_ws_origins_init(sp_ws_origins_t *o, const char *public_url, const char *extra);
bool sp_ws_origin_allowed(const sp_ws_origins_t *o, const char *origin);

/* ---- handshake -------------------------------------------------------------------- */
typedef struct {
    const char *method;     /* "GET" */
    const char *upgrade;    /* Upgrade header or NULL */
    const char *connection; /* Connection header or NULL */
    const char *version;    /* Sec-WebSocket-Version or NULL */
    const char *key;        /* Sec-WebSocket-Key or NULL */
    const char *origin;     /* Origin or NULL */
} sp_ws_hs_req_t;

typedef struct {
    int status;           /* 101 = upgrade; else 400, 403, 426 */
    const char *reason;   /* short machine reason: "bad_key", "origin", ... */
    bool send_version;    /* add "Sec-WebSocket-Version: 13" to the error */
    char accept[29];      /* Sec-WebSocket-Accept when status == 101 */
} sp_ws_hs_result_t;

/** Pure. Fills res; returns res->status. origins NULL = no origin check. */
int sp_ws_handshake_check(const sp_ws_hs_req_t *req, const sp_ws_origins_t *origins,
                          sp_ws_hs_result_t *res);
/** Computes the accept value of a key (any string) into out[29]. Returns 0 or SP_ECRYPTO. */
int sp_ws_accept_key(const char *key, char out[29]);
/** True if key is base64 of exactly 16 bytes (24 chars). */
bool sp_ws_key_valid(const char *key);
/** True if the comma-separated header list contains token (ASCII case-insensitive). */
bool sp_ws_header_has_token(const char *value, const char *token);

/* ---- UTF-8 and frames ------------------------------------------------------------- */
/** Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool sp_ws_utf8_valid(const uint8_t *p, size_t len);
/** Writes a server (unmasked, FIN) frame header for opcode/len into out[10]; returns its size. */
size_t sp_ws_frame_header(uint8_t out[10], int opcode, uint64_t len);
/** One refcounted block holding header + payload (refs = 1). */
sp_rbuf_t *sp_ws_frame_encode(int opcode, const void *payload, size_t len);

/* ---- wslay glue ------------------------------------------------------------------- */
typedef struct sp_ws_proto_s sp_ws_proto_t;

typedef struct {
    /** A complete message (text already UTF-8 checked). */
    void (*on_message)(void *ud, int opcode, const uint8_t *p, size_t len);
    /** Whole control frames produced by wslay (pong, ping, close), in order. */
    void (*on_output)(void *ud, const uint8_t *p, size_t len);
} sp_ws_proto_cbs_t;

sp_ws_proto_t *sp_ws_proto_new(size_t max_message, const sp_ws_proto_cbs_t *cbs, void *ud);
void sp_ws_proto_free(sp_ws_proto_t *p);
/**
 * Feeds received bytes. Protocol errors make wslay queue a close (1002 bad
 * frame, 1009 too big) and 1007 is queued for invalid UTF-8; the close frame
 * comes out through on_output. Returns 0, or SP_ECLOSED once no more input is
 * wanted (close received or sent, or a fatal error).
 */
int sp_ws_proto_feed(sp_ws_proto_t *p, const uint8_t *data, size_t len);
/** Queues and emits a close frame (once). */
void sp_ws_proto_close(sp_ws_proto_t *p, uint16_t code, const char *reason);
void sp_ws_proto_ping(sp_ws_proto_t *p);
bool sp_ws_proto_close_sent(const sp_ws_proto_t *p);
bool sp_ws_proto_close_received(const sp_ws_proto_t *p);
/** Close code the peer sent (0 if none / not yet). */
uint16_t sp_ws_proto_peer_code(const sp_ws_proto_t *p);
/** Code of the close frame we sent (0 if none). */
uint16_t sp_ws_proto_sent_code(const sp_ws_proto_t *p);
/** True while a wslay context is held (input in progress); false when idle. */
bool sp_ws_proto_has_ctx(const sp_ws_proto_t *p);
/** Messages delivered through on_message so far. */
uint64_t sp_ws_proto_messages(const sp_ws_proto_t *p);

#endif
