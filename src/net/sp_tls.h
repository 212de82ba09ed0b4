/*
 * sp_tls: a client TLS session over memory BIOs, independent of any transport.
 *
 * OpenSSL never touches a socket here: the caller moves bytes. Ciphertext read
 * from the transport is fed in (sp_tls_feed), plaintext comes out (sp_tls_read);
 * plaintext to send goes in (sp_tls_write) and the records to put on the wire
 * are taken out (sp_tls_out_pending + sp_tls_out_take). So the same session
 * runs on a libuv TCP stream (the relay's rtmps:// pushes), under a WebSocket
 * client (wss://) or an HTTPS stream, and in a unit test with no socket at all.
 * Nothing blocks; every call returns at once.
 *
 * Verification: peer certificate against the system CA store or one CA file
 * (sp_tls_ctx_create), TLS 1.2 minimum. The host given to sp_tls_create is sent
 * as SNI and checked against the certificate's names; an IP literal is checked
 * against the certificate's IP addresses (no SNI for IPs, per RFC 6066).
 *
 * Callbacks: there are none. No function of this module calls back into the
 * caller, so nothing re-enters the caller's state machine: every outcome is a
 * return value. After ANY call that may produce records (sp_tls_handshake,
 * sp_tls_read, sp_tls_write, sp_tls_shutdown) the caller sends what
 * sp_tls_out_pending reports; a handshake makes progress only that way.
 *
 * Lifecycle (client):
 *   sp_tls_ctx_create            once per process/subsystem (holds the CA store)
 *   sp_tls_create(ctx, host)     per connection, once the transport is connected
 *   sp_tls_handshake             sends the ClientHello (SP_EAGAIN); then after each
 *                                sp_tls_feed until it returns 0 (established) or < 0
 *   sp_tls_read / sp_tls_write   application data (sp_tls_read also finishes the
 *                                handshake if it was not driven explicitly)
 *   sp_tls_shutdown              queues close_notify (take it out and send it)
 *   sp_tls_free                  any time; no I/O is done by it
 *
 * Errors: negative codes of core/sp_err.h. SP_EAGAIN: needs more ciphertext from
 * the peer (not an error). SP_ECLOSED: the peer sent close_notify. SP_ECRYPTO:
 * handshake, verification or record failure; sp_tls_error() then holds a
 * readable reason ("TLS certificate verification failed: certificate has
 * expired", "TLS error: ..."). After SP_ECRYPTO or SP_ECLOSED the session is
 * dead: later calls return the same code. The OpenSSL error queue of the
 * thread is cleared before and after every call, so one failed session never
 * leaks an error into the next.
 *
 * Close: the caller owns the transport. On the transport's EOF during the
 * handshake, sp_tls_error() explains the failure (verification result if the
 * peer rejected or was rejected, otherwise the last OpenSSL error or
 * "handshake failed"). sp_tls_free never sends anything; for a graceful close
 * call sp_tls_shutdown first and send the close_notify it produced.
 *
 * Ownership: the session keeps its own reference on the context's SSL_CTX, so
 * a context may be freed while sessions made from it live. Buffers passed in
 * are copied (or consumed) before the call returns. Not thread-safe: one
 * session belongs to one thread (the loop thread).
 */
#ifndef SP_TLS_H
#define SP_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sp_tls_ctx_s sp_tls_ctx_t;
typedef struct sp_tls_s sp_tls_t;

/**
 * Client context: peer verification on, TLS 1.2 minimum. ca_file NULL or ""
 * uses the system store; otherwise only the certificates of that PEM file are
 * trusted. 0, SP_ECONFIG (ca_file cannot be loaded) or SP_ECRYPTO.
 */
int sp_tls_ctx_create(const char *ca_file, sp_tls_ctx_t **out);
void sp_tls_ctx_free(sp_tls_ctx_t *ctx);

/**
 * A client session for host (DNS name or IP literal, IPv6 without brackets):
 * SNI and certificate name check. Sends nothing yet. 0, SP_EINVAL (no host)
 * or SP_ECRYPTO.
 */
int sp_tls_create(sp_tls_ctx_t *ctx, const char *host, sp_tls_t **out);
void sp_tls_free(sp_tls_t *t);

/** Ciphertext from the transport. 0, or the session's error if it is dead. */
int sp_tls_feed(sp_tls_t *t, const void *p, size_t len);

/**
 * Drives the handshake with what was fed: 0 established (also on later calls),
 * SP_EAGAIN waiting for the peer (send sp_tls_out_pending bytes), SP_ECRYPTO.
 */
int sp_tls_handshake(sp_tls_t *t);
bool sp_tls_established(const sp_tls_t *t);

/**
 * Plaintext into buf: > 0 bytes, SP_EAGAIN when everything fed is consumed,
 * SP_ECLOSED (close_notify), SP_ECRYPTO. Call in a loop until SP_EAGAIN.
 */
int sp_tls_read(sp_tls_t *t, void *buf, size_t cap);

/**
 * Encrypts all of p (one or more records, any size up to INT_MAX). 0,
 * SP_EAGAIN before the handshake is complete (nothing is written), SP_ECRYPTO,
 * SP_ECLOSED.
 */
int sp_tls_write(sp_tls_t *t, const void *p, size_t len);

/** Queues close_notify. 0 or the session's error. */
int sp_tls_shutdown(sp_tls_t *t);

/** Ciphertext waiting to be sent, in bytes. */
size_t sp_tls_out_pending(const sp_tls_t *t);
/** Moves up to cap bytes of it into buf; returns how many. */
size_t sp_tls_out_take(sp_tls_t *t, void *buf, size_t cap);

/**
 * Why the session failed (see Errors above). Asked before the handshake has
 * completed (the transport closed mid-handshake), the reason it did not
 * ("TLS error: handshake failed" if OpenSSL has none); "" otherwise. Never NULL.
 */
const char *sp_tls_error(sp_tls_t *t);
/** Negotiated protocol ("TLSv1.3"), "" before the handshake. */
const char *sp_tls_version(const sp_tls_t *t);

#endif
