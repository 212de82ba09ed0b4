/*
 * Unit tests for sp_tls: a client session against an OpenSSL server session,
 * both over memory BIOs and pumped by the test (no sockets). The server's
 * certificate is self-signed, generated here (names: localhost, 127.0.0.1).
 */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sp_err.h"
#include "net/sp_tls.h"

static EVP_PKEY *g_key;
static X509 *g_cert;
static char g_ca_path[64];

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    cr_assert_not_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

static void make_cert(void)
{
    g_key = EVP_EC_gen("P-256");
    cr_assert_not_null(g_key);
    g_cert = X509_new();
    X509_set_version(g_cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(g_cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(g_cert), 3600);
    X509_NAME *name = X509_get_subject_name(g_cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(g_cert, name);
    X509_set_pubkey(g_cert, g_key);
    add_ext(g_cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(g_cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    cr_assert(X509_sign(g_cert, g_key, EVP_sha256()) > 0);
    snprintf(g_ca_path, sizeof(g_ca_path), "/tmp/sp_test_tls_XXXXXX");
    int fd = mkstemp(g_ca_path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert(PEM_write_X509(f, g_cert) == 1);
    fclose(f);
}

static void setup(void)
{
    make_cert();
}

static void teardown(void)
{
    unlink(g_ca_path);
    X509_free(g_cert);
    EVP_PKEY_free(g_key);
}

/* ---- the server end: plain OpenSSL over memory BIOs ---- */

typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
} srv_t;

static void srv_init(srv_t *s)
{
    s->ctx = SSL_CTX_new(TLS_server_method());
    cr_assert(SSL_CTX_use_certificate(s->ctx, g_cert) == 1);
    cr_assert(SSL_CTX_use_PrivateKey(s->ctx, g_key) == 1);
    s->ssl = SSL_new(s->ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_accept_state(s->ssl);
}

static void srv_free(srv_t *s)
{
    SSL_free(s->ssl);
    SSL_CTX_free(s->ctx);
    ERR_clear_error();
}

/* Client records -> server. */
static void to_server(sp_tls_t *t, srv_t *s)
{
    size_t n = sp_tls_out_pending(t);
    if (!n)
        return;
    char *buf = malloc(n);
    cr_assert_eq(sp_tls_out_take(t, buf, n), n);
    cr_assert_eq(BIO_write(s->rbio, buf, (int)n), (int)n);
    free(buf);
}

/* Server records -> client. */
static int to_client(srv_t *s, sp_tls_t *t)
{
    size_t n = BIO_ctrl_pending(s->wbio);
    if (!n)
        return 0;
    char *buf = malloc(n);
    cr_assert_eq(BIO_read(s->wbio, buf, (int)n), (int)n);
    int rc = sp_tls_feed(t, buf, n);
    free(buf);
    return rc;
}

/* Pumps the handshake until both ends are done or one fails; returns the client's result. */
static int handshake(sp_tls_t *t, srv_t *s)
{
    int rc = sp_tls_handshake(t);
    cr_assert_eq(rc, SP_EAGAIN); /* the ClientHello */
    for (int i = 0; i < 20; i++) {
        to_server(t, s);
        ERR_clear_error();
        int sr = SSL_do_handshake(s->ssl);
        (void)sr;
        ERR_clear_error();
        to_client(s, t);
        rc = sp_tls_handshake(t);
        to_server(t, s);
        if (rc != SP_EAGAIN)
            break;
    }
    /* the server completes on the client's Finished */
    ERR_clear_error();
    SSL_do_handshake(s->ssl);
    ERR_clear_error();
    return rc;
}

static sp_tls_ctx_t *ctx_trusting_test_ca(void)
{
    sp_tls_ctx_t *ctx = NULL;
    cr_assert_eq(sp_tls_ctx_create(g_ca_path, &ctx), 0);
    return ctx;
}

TestSuite(tls, .init = setup, .fini = teardown);

Test(tls, handshake_data_both_ways_and_close_notify)
{
    sp_tls_ctx_t *ctx = ctx_trusting_test_ca();
    sp_tls_t *t = NULL;
    srv_t s;
    srv_init(&s);
    cr_assert_eq(sp_tls_create(ctx, "localhost", &t), 0);
    sp_tls_ctx_free(ctx); /* the session keeps its own reference */
    cr_assert_not(sp_tls_established(t));
    cr_assert_str_eq(sp_tls_version(t), "");
    cr_assert_eq(sp_tls_write(t, "x", 1), SP_EAGAIN, "no data before the handshake");
    cr_assert_eq(handshake(t, &s), 0);
    cr_assert(sp_tls_established(t));
    cr_assert(SSL_is_init_finished(s.ssl));
    cr_assert_str_eq(sp_tls_version(t), "TLSv1.3");
    cr_assert_eq(sp_tls_handshake(t), 0, "idempotent once established");

    /* client -> server: 1 MiB in one write (many records) */
    size_t big = 1u << 20;
    unsigned char *msg = malloc(big);
    for (size_t i = 0; i < big; i++)
        msg[i] = (unsigned char)(i * 7);
    cr_assert_eq(sp_tls_write(t, msg, big), 0);
    to_server(t, &s);
    unsigned char *got = malloc(big);
    size_t have = 0;
    for (;;) {
        int r = SSL_read(s.ssl, got + have, (int)(big - have));
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    ERR_clear_error();
    cr_assert_eq(have, big);
    cr_assert_eq(memcmp(got, msg, big), 0);

    /* server -> client */
    cr_assert_eq(SSL_write(s.ssl, "hello client", 12), 12);
    cr_assert_eq(to_client(&s, t), 0);
    char buf[64];
    int r = sp_tls_read(t, buf, sizeof(buf));
    cr_assert_eq(r, 12);
    cr_assert_eq(memcmp(buf, "hello client", 12), 0);
    cr_assert_eq(sp_tls_read(t, buf, sizeof(buf)), SP_EAGAIN);

    /* the client's close_notify reaches the server */
    cr_assert_eq(sp_tls_shutdown(t), 0);
    to_server(t, &s);
    cr_assert_eq(SSL_read(s.ssl, buf, sizeof(buf)), 0);
    cr_assert_eq(SSL_get_error(s.ssl, 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();

    /* the server's close_notify: SP_ECLOSED, and the session stays closed */
    SSL_shutdown(s.ssl);
    cr_assert_eq(to_client(&s, t), 0);
    cr_assert_eq(sp_tls_read(t, buf, sizeof(buf)), SP_ECLOSED);
    cr_assert_eq(sp_tls_write(t, "x", 1), SP_ECLOSED);
    cr_assert_eq(ERR_peek_error(), 0ul, "no OpenSSL error left behind");
    free(msg);
    free(got);
    sp_tls_free(t);
    srv_free(&s);
}

Test(tls, ip_literal_checked_against_ip_names)
{
    sp_tls_ctx_t *ctx = ctx_trusting_test_ca();
    sp_tls_t *t = NULL;
    srv_t s;
    srv_init(&s);
    cr_assert_eq(sp_tls_create(ctx, "127.0.0.1", &t), 0);
    cr_assert_eq(handshake(t, &s), 0);
    sp_tls_free(t);
    srv_free(&s);

    srv_init(&s);
    cr_assert_eq(sp_tls_create(ctx, "127.0.0.2", &t), 0);
    cr_assert_eq(handshake(t, &s), SP_ECRYPTO);
    cr_assert(strstr(sp_tls_error(t), "TLS certificate verification failed: ") ==
                  sp_tls_error(t), "%s", sp_tls_error(t));
    cr_assert(strstr(sp_tls_error(t), "IP address mismatch"), "%s", sp_tls_error(t));
    sp_tls_free(t);
    srv_free(&s);
    sp_tls_ctx_free(ctx);
}

Test(tls, hostname_mismatch_is_a_clear_error)
{
    sp_tls_ctx_t *ctx = ctx_trusting_test_ca();
    sp_tls_t *t = NULL;
    srv_t s;
    srv_init(&s);
    cr_assert_eq(sp_tls_create(ctx, "ingest.example.com", &t), 0);
    cr_assert_eq(handshake(t, &s), SP_ECRYPTO);
    cr_assert_str_eq(sp_tls_error(t), "TLS certificate verification failed: hostname mismatch");
    cr_assert_eq(ERR_peek_error(), 0ul, "the error queue is cleared after a failure");
    /* dead: every later call says so */
    cr_assert_eq(sp_tls_handshake(t), SP_ECRYPTO);
    cr_assert_eq(sp_tls_feed(t, "x", 1), SP_ECRYPTO);
    char buf[8];
    cr_assert_eq(sp_tls_read(t, buf, sizeof(buf)), SP_ECRYPTO);
    sp_tls_free(t);
    srv_free(&s);
    sp_tls_ctx_free(ctx);
}

Test(tls, untrusted_self_signed_refused_by_system_store)
{
    sp_tls_ctx_t *ctx = NULL;
    cr_assert_eq(sp_tls_ctx_create(NULL, &ctx), 0);
    sp_tls_t *t = NULL;
    srv_t s;
    srv_init(&s);
    cr_assert_eq(sp_tls_create(ctx, "localhost", &t), 0);
    cr_assert_eq(handshake(t, &s), SP_ECRYPTO);
    cr_assert(strstr(sp_tls_error(t), "TLS certificate verification failed: self"), "%s",
              sp_tls_error(t));
    sp_tls_free(t);
    srv_free(&s);
    sp_tls_ctx_free(ctx);
}

Test(tls, transport_closed_mid_handshake)
{
    sp_tls_ctx_t *ctx = ctx_trusting_test_ca();
    sp_tls_t *t = NULL;
    cr_assert_eq(sp_tls_create(ctx, "localhost", &t), 0);
    cr_assert_eq(sp_tls_handshake(t), SP_EAGAIN);
    cr_assert_gt(sp_tls_out_pending(t), 0u, "a ClientHello to send");
    /* the peer hangs up: the caller asks why the handshake did not complete */
    cr_assert_str_eq(sp_tls_error(t), "TLS error: handshake failed");
    sp_tls_free(t);
    sp_tls_ctx_free(ctx);
}

Test(tls, garbage_from_the_peer)
{
    sp_tls_ctx_t *ctx = ctx_trusting_test_ca();
    sp_tls_t *t = NULL;
    cr_assert_eq(sp_tls_create(ctx, "localhost", &t), 0);
    cr_assert_eq(sp_tls_handshake(t), SP_EAGAIN);
    const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    cr_assert_eq(sp_tls_feed(t, junk, sizeof(junk) - 1), 0);
    cr_assert_eq(sp_tls_handshake(t), SP_ECRYPTO);
    cr_assert(strncmp(sp_tls_error(t), "TLS error: ", 11) == 0, "%s", sp_tls_error(t));
    cr_assert_eq(ERR_peek_error(), 0ul);
    sp_tls_free(t);
    sp_tls_ctx_free(ctx);
}

Test(tls, bad_arguments_and_ca_file)
{
    sp_tls_ctx_t *ctx = NULL;
    cr_assert_eq(sp_tls_ctx_create("/nonexistent/ca.pem", &ctx), SP_ECONFIG);
    cr_assert_null(ctx);
    cr_assert_eq(ERR_peek_error(), 0ul);
    ctx = ctx_trusting_test_ca();
    sp_tls_t *t = (sp_tls_t *)1;
    cr_assert_eq(sp_tls_create(ctx, "", &t), SP_EINVAL);
    cr_assert_null(t);
    cr_assert_eq(sp_tls_create(ctx, NULL, &t), SP_EINVAL);
    sp_tls_free(NULL);
    sp_tls_ctx_free(ctx);
    sp_tls_ctx_free(NULL);
}
