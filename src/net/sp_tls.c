/* sp_tls: client TLS over memory BIOs (see sp_tls.h). */
#include "net/sp_tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

struct sp_tls_ctx_s {
    SSL_CTX *ctx;
};

struct sp_tls_s {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool established;
    int dead;         /* 0, SP_ECRYPTO or SP_ECLOSED */
    char err[200];
};

int sp_tls_ctx_create(const char *ca_file, sp_tls_ctx_t **out)
{
    int rc = SP_ECRYPTO;
    sp_tls_ctx_t *c = NULL;
    *out = NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto cleanup;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file && ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            rc = SP_ECONFIG;
            goto cleanup;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto cleanup;
    }
    c = sp_calloc(1, sizeof(*c));
    c->ctx = ctx;
    ctx = NULL;
    *out = c;
    rc = 0;
cleanup:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

void sp_tls_ctx_free(sp_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ctx);
    sp_free(ctx);
}

int sp_tls_create(sp_tls_ctx_t *ctx, const char *host, sp_tls_t **out)
{
    int rc = SP_ECRYPTO;
    sp_tls_t *t = NULL;
    *out = NULL;
    if (!ctx || !host || !host[0])
        return SP_EINVAL;
    ERR_clear_error();
    t = sp_calloc(1, sizeof(*t));
    t->ssl = SSL_new(ctx->ctx);
    if (!t->ssl)
        goto cleanup;
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        goto cleanup;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_connect_state(t->ssl);
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1)
            goto cleanup;
    } else if (SSL_set_tlsext_host_name(t->ssl, host) != 1 || SSL_set1_host(t->ssl, host) != 1) {
        goto cleanup;
    }
    *out = t;
    t = NULL;
    rc = 0;
cleanup:
    sp_tls_free(t);
    ERR_clear_error();
    return rc;
}

void sp_tls_free(sp_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIOs */
    sp_free(t);
}

/* Records why the session failed (verification first: it explains most failures). */
static void set_reason(sp_tls_t *t)
{
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        snprintf(t->err, sizeof(t->err), "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    } else {
        unsigned long e = ERR_get_error();
        char buf[160] = "handshake failed";
        if (e)
            ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(t->err, sizeof(t->err), "TLS error: %s", buf);
    }
    ERR_clear_error(); /* never leave entries behind: they would fail the next session */
}

static int fail(sp_tls_t *t, int code)
{
    if (code == SP_ECLOSED) {
        snprintf(t->err, sizeof(t->err), "TLS connection closed by the peer");
        ERR_clear_error();
    } else {
        set_reason(t);
    }
    t->dead = code;
    return code;
}

int sp_tls_feed(sp_tls_t *t, const void *p, size_t len)
{
    if (t->dead)
        return t->dead;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        ERR_clear_error();
        int w = BIO_write(t->rbio, p, n);
        if (w <= 0)
            return fail(t, SP_ECRYPTO);
        p = (const char *)p + w;
        len -= (size_t)w;
    }
    return 0;
}

int sp_tls_handshake(sp_tls_t *t)
{
    if (t->dead)
        return t->dead;
    if (t->established)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->established = true;
        ERR_clear_error();
        return 0;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return SP_EAGAIN;
    }
    return fail(t, SP_ECRYPTO);
}

bool sp_tls_established(const sp_tls_t *t)
{
    return t->established;
}

int sp_tls_read(sp_tls_t *t, void *buf, size_t cap)
{
    if (t->dead)
        return t->dead;
    if (cap == 0)
        return SP_EINVAL;
    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (r > 0) {
        t->established = true;
        return r;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return SP_EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return fail(t, SP_ECLOSED);
    return fail(t, SP_ECRYPTO);
}

int sp_tls_write(sp_tls_t *t, const void *p, size_t len)
{
    if (t->dead)
        return t->dead;
    if (!t->established)
        return SP_EAGAIN;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        ERR_clear_error();
        int w = SSL_write(t->ssl, p, n);
        if (w <= 0) {
            int e = SSL_get_error(t->ssl, w);
            return fail(t, e == SSL_ERROR_ZERO_RETURN ? SP_ECLOSED : SP_ECRYPTO);
        }
        p = (const char *)p + w;
        len -= (size_t)w;
    }
    return 0;
}

int sp_tls_shutdown(sp_tls_t *t)
{
    if (t->dead)
        return t->dead;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* 0: close_notify queued, the peer's is not awaited */
    ERR_clear_error();
    return 0;
}

size_t sp_tls_out_pending(const sp_tls_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t sp_tls_out_take(sp_tls_t *t, void *buf, size_t cap)
{
    size_t done = 0;
    while (done < cap) {
        size_t want = cap - done;
        int got = BIO_read(t->wbio, (char *)buf + done, want > INT_MAX ? INT_MAX : (int)want);
        if (got <= 0)
            break;
        done += (size_t)got;
    }
    ERR_clear_error();
    return done;
}

const char *sp_tls_error(sp_tls_t *t)
{
    if (!t->err[0] && !t->established)
        set_reason(t); /* the transport ended the handshake: say why it did not complete */
    return t->err;
}

const char *sp_tls_version(const sp_tls_t *t)
{
    return t->established ? SSL_get_version(t->ssl) : "";
}
