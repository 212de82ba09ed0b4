/*
 * sp_dest_url: validation of user-supplied RTMP(S) destination URLs (SSRF defence,
 * research reliability-security.md §2.9).
 *
 *  - sp_dest_url_parse: pure, strict parse of rtmp://host[:port]/app[/key...][?query].
 *    Refused: other schemes, userinfo (@), empty host, percent-encoding or odd bytes in
 *    the host, trailing dots, numeric host forms other than canonical dotted-quad
 *    (0x7f000001, 2130706433, 0177.0.0.1, 127.1), IPv6 zone ids, port 0 or > 65535,
 *    fragments, control characters and spaces anywhere.
 *  - sp_dest_addr_allowed: pure check of one resolved address.
 *  - sp_dest_url_resolve: resolves the host with uv_getaddrinfo (libuv thread pool: the
 *    loop never blocks) and checks EVERY address; if any is refused, the whole URL is
 *    refused. The checked addresses are handed back so the caller connects to them
 *    (not to a second lookup: no DNS-rebinding window).
 */
#ifndef SP_DEST_URL_H
#define SP_DEST_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define SP_DEST_URL_MAX 2048
#define SP_DEST_MAX_ADDRS 16

typedef struct {
    bool tls;            /* rtmps */
    char host[256];      /* hostname or IP literal (IPv6 without brackets), lower-cased */
    bool host_is_ip;
    uint16_t port;       /* explicit or default (1935 rtmp, 443 rtmps) */
    bool port_explicit;
    char app[256];       /* first path segment ("" if none) */
    char key[1024];      /* rest of the path and query after the app ("" if none): secret */
} sp_dest_url_t;

/** 0 or SP_EINVAL (with *why set to a short static reason, if why != NULL). */
int sp_dest_url_parse(const char *s, size_t len, sp_dest_url_t *out, const char **why);

/**
 * True when the URL seems to carry a stream key: its last path segment (or a query value) is
 * key-like (16+ characters of [A-Za-z0-9._-] with 2+ digits, or 12+ starting live_, sk_ or
 * fb-, as Twitch, Kick and Facebook keys do). Destinations refuse such a URL with 422
 * stream_key_in_url: the key belongs in stream_key, which is sealed at rest and never shown,
 * while the URL is stored and shown as it is.
 */
bool sp_dest_url_key_in_url(const sp_dest_url_t *u);

/** Writes the URL without its stream key (the key path becomes "/" followed by four asterisks) for
 * logs and API answers; returns the length (truncated to cap-1). */
size_t sp_dest_url_redacted(const sp_dest_url_t *u, char *out, size_t cap);

/** 0 if the address may be used, SP_EFORBIDDEN otherwise (why: "loopback", "private", ...).
 *  allow_private lifts private, loopback, link-local, CGNAT and unique-local ranges;
 *  unspecified, multicast, broadcast and reserved ranges stay refused. */
int sp_dest_addr_allowed(const struct sockaddr *sa, bool allow_private, const char **why);

typedef struct sp_dest_resolve_s sp_dest_resolve_t;
/** err: 0, SP_EFORBIDDEN (an address is refused), SP_ENOTFOUND (no such host), or a UV_E*.
 *  addrs (port set) are valid only during the callback. */
typedef void (*sp_dest_resolve_cb)(int err, const char *why, const struct sockaddr_storage *addrs,
                                   size_t n, void *ud);

/** Starts resolution; cb runs exactly once, later, unless cancelled. *out (optional) receives
 *  a handle for sp_dest_resolve_cancel. */
int sp_dest_url_resolve(uv_loop_t *loop, const sp_dest_url_t *u, bool allow_private,
                        sp_dest_resolve_cb cb, void *ud, sp_dest_resolve_t **out);
/** The callback will not run; memory is released when the lookup finishes. */
void sp_dest_resolve_cancel(sp_dest_resolve_t *r);

#endif
