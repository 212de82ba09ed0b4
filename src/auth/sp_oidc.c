/* sp_oidc: id_token verification and the JWKS key cache. See sp_oidc.h. */
#include "auth/sp_oidc.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"

#define KID_CAP 129
#define MIN_RSA_BITS 2048
#define MAX_RSA_BITS 8192
#define REFETCH_MIN_MS (60 * 1000)
#define KEYS_MAX_AGE_MS (3600 * 1000)
#define MAX_WAITERS 1024

typedef struct {
    char kid[KID_CAP];
    EVP_PKEY *pkey;
} jwk_t;

struct sp_oidc_jwks_s {
    size_t n;
    jwk_t keys[SP_OIDC_MAX_KEYS];
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* base64url without padding into a new buffer (sp_free). NULL on bad input or over max. */
static unsigned char *b64url_dec(const char *s, size_t n, size_t max, size_t *outlen)
{
    if (n == 0 || n > (max * 4) / 3 + 4)
        return NULL;
    size_t cap = (n * 3) / 4 + 3;
    unsigned char *out = sp_malloc(cap);
    const char *end = NULL;
    if (sodium_base642bin(out, cap, s, n, NULL, outlen, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != s + n || *outlen > max) {
        sp_free(out);
        return NULL;
    }
    return out;
}

static json_t *b64url_json(const char *s, size_t n)
{
    size_t len = 0;
    unsigned char *raw = b64url_dec(s, n, SP_OIDC_MAX_TOKEN, &len);
    if (!raw)
        return NULL;
    json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    sp_free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
            return false;
    return n > 0 && n <= max;
}

/* ---- JWKS ------------------------------------------------------------------------------- */

static EVP_PKEY *rsa_from_jwk(const char *n64, const char *e64)
{
    size_t nlen = 0, elen = 0;
    unsigned char *nb = b64url_dec(n64, strlen(n64), MAX_RSA_BITS / 8 + 1, &nlen);
    unsigned char *eb = b64url_dec(e64, strlen(e64), 8, &elen);
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (!nb || !eb)
        goto out;
    bn = BN_bin2bn(nb, (int)nlen, NULL);
    be = BN_bin2bn(eb, (int)elen, NULL);
    if (!bn || !be || BN_num_bits(bn) < MIN_RSA_BITS || BN_num_bits(bn) > MAX_RSA_BITS ||
        !BN_is_odd(be) || BN_num_bits(be) < 2 || BN_num_bits(be) > 33)
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    sp_free(nb);
    sp_free(eb);
    return pkey;
}

int sp_oidc_jwks_parse(const char *json, size_t len, sp_oidc_jwks_t **out)
{
    *out = NULL;
    if (!json || len > SP_OIDC_MAX_JWKS)
        return json ? SP_ETOOBIG : SP_EPROTO;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        json_decref(root);
        return SP_EPROTO;
    }
    sp_oidc_jwks_t *k = sp_calloc(1, sizeof(*k));
    size_t i;
    json_t *jk;
    json_array_foreach(keys, i, jk)
    {
        if (k->n >= SP_OIDC_MAX_KEYS)
            break;
        const char *kty = json_string_value(json_object_get(jk, "kty"));
        const char *kid = json_string_value(json_object_get(jk, "kid"));
        const char *use = json_string_value(json_object_get(jk, "use"));
        const char *alg = json_string_value(json_object_get(jk, "alg"));
        const char *n = json_string_value(json_object_get(jk, "n"));
        const char *e = json_string_value(json_object_get(jk, "e"));
        if (!kty || strcmp(kty, "RSA") != 0 || !kid || !printable(kid, KID_CAP - 1) || !n ||
            !e || (use && strcmp(use, "sig") != 0) || (alg && strcmp(alg, "RS256") != 0) ||
            sp_oidc_jwks_has(k, kid))
            continue;
        EVP_PKEY *pk = rsa_from_jwk(n, e);
        if (!pk)
            continue;
        snprintf(k->keys[k->n].kid, KID_CAP, "%s", kid);
        k->keys[k->n++].pkey = pk;
    }
    json_decref(root);
    *out = k;
    return 0;
}

void sp_oidc_jwks_free(sp_oidc_jwks_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    sp_free(k);
}

size_t sp_oidc_jwks_count(const sp_oidc_jwks_t *k)
{
    return k ? k->n : 0;
}

static EVP_PKEY *find_key(const sp_oidc_jwks_t *k, const char *kid)
{
    for (size_t i = 0; k && i < k->n; i++)
        if (strcmp(k->keys[i].kid, kid) == 0)
            return k->keys[i].pkey;
    return NULL;
}

bool sp_oidc_jwks_has(const sp_oidc_jwks_t *k, const char *kid)
{
    return kid && find_key(k, kid) != NULL;
}

/* ---- verification ----------------------------------------------------------------------- */

const char *sp_oidc_result_name(sp_oidc_result_t r)
{
    static const char *names[] = {"ok",       "malformed", "header",   "unknown_key",
                                  "signature", "issuer",   "audience", "expired",
                                  "nonce",    "subject"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

typedef struct {
    const char *h, *p, *s; /* segments */
    size_t hl, pl, sl;
} parts_t;

static bool split(const char *jwt, size_t len, parts_t *o)
{
    if (!jwt || len == 0 || len > SP_OIDC_MAX_TOKEN || memchr(jwt, '\0', len))
        return false;
    const char *d1 = memchr(jwt, '.', len);
    if (!d1)
        return false;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)))
        return false;
    o->h = jwt;
    o->hl = (size_t)(d1 - jwt);
    o->p = d1 + 1;
    o->pl = (size_t)(d2 - o->p);
    o->s = d2 + 1;
    o->sl = len - (size_t)(o->s - jwt);
    return o->hl && o->pl && o->sl;
}

/* The header's kid when the header is acceptable; SP_OIDC_OK or the reason. */
static sp_oidc_result_t check_header(const parts_t *pt, char *kid, size_t cap)
{
    json_t *h = b64url_json(pt->h, pt->hl);
    if (!h)
        return SP_OIDC_MALFORMED;
    sp_oidc_result_t r = SP_OIDC_HEADER;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *k = json_string_value(json_object_get(h, "kid"));
    json_t *typ = json_object_get(h, "typ");
    static const char *forbidden[] = {"jku", "jwk", "x5u", "x5c", "crit"};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
        if (json_object_get(h, forbidden[i]))
            goto out;
    if (!alg || strcmp(alg, "RS256") != 0 || !k || !printable(k, cap - 1) ||
        (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0)))
        goto out;
    snprintf(kid, cap, "%s", k);
    r = SP_OIDC_OK;
out:
    json_decref(h);
    return r;
}

int sp_oidc_peek_kid(const char *jwt, size_t len, char *kid, size_t cap)
{
    parts_t pt;
    if (!kid || cap < 2 || !split(jwt, len, &pt) || check_header(&pt, kid, cap) != SP_OIDC_OK)
        return SP_EPROTO;
    return 0;
}

static bool rs256_ok(EVP_PKEY *pk, const parts_t *pt)
{
    size_t siglen = 0;
    unsigned char *sig = b64url_dec(pt->s, pt->sl, MAX_RSA_BITS / 8, &siglen);
    if (!sig)
        return false;
    bool ok = false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && (int)siglen == EVP_PKEY_get_size(pk) &&
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)pt->h, pt->hl + 1 + pt->pl) == 1)
        ok = true;
    EVP_MD_CTX_free(md);
    sp_free(sig);
    return ok;
}

static bool issuer_ok(const char *iss, const char *want)
{
    if (!iss || !want || !want[0])
        return false;
    if (strcmp(iss, want) == 0)
        return true;
    /* Google issues both "https://accounts.google.com" and "accounts.google.com" */
    return strncmp(want, "https://", 8) == 0 && strcmp(iss, want + 8) == 0;
}

static bool audience_ok(json_t *pl, const char *client_id)
{
    json_t *aud = json_object_get(pl, "aud");
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), client_id) == 0;
    if (!json_is_array(aud) || json_array_size(aud) == 0)
        return false;
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return false;
        if (strcmp(json_string_value(v), client_id) == 0)
            found = true;
    }
    /* several audiences: the token must have been issued to us (azp) */
    const char *azp = json_string_value(json_object_get(pl, "azp"));
    return found && (json_array_size(aud) == 1 || (azp && strcmp(azp, client_id) == 0));
}

static bool nonce_ok(const char *got, const char *want)
{
    size_t n = got ? strlen(got) : 0;
    return want && want[0] && n == strlen(want) && sodium_memcmp(got, want, n) == 0;
}

static bool time_ok(json_t *v)
{
    json_int_t t = json_integer_value(v);
    return t >= 0 && t <= SP_TIME_MAX_S;
}

static sp_oidc_result_t check_claims(json_t *pl, const sp_oidc_expect_t *e, sp_oidc_claims_t *o)
{
    int64_t skew = e->skew_s > 0 ? e->skew_s : SP_OIDC_SKEW_S;
    if (!issuer_ok(json_string_value(json_object_get(pl, "iss")), e->issuer))
        return SP_OIDC_ISSUER;
    if (!e->audience || !audience_ok(pl, e->audience))
        return SP_OIDC_AUDIENCE;
    json_t *exp = json_object_get(pl, "exp"), *iat = json_object_get(pl, "iat");
    json_t *nbf = json_object_get(pl, "nbf");
    if (!json_is_integer(exp) || !json_is_integer(iat) || (nbf && !json_is_integer(nbf)))
        return SP_OIDC_EXPIRED;
    /* times from outside: in [0, SP_TIME_MAX_S] before any arithmetic (exp + skew overflowed
     * for exp = INT64_MAX) */
    if (!time_ok(exp) || !time_ok(iat) || (nbf && !time_ok(nbf)) || e->now_s < 0 ||
        e->now_s > SP_TIME_MAX_S || skew > 86400)
        return SP_OIDC_EXPIRED;
    if (json_integer_value(exp) + skew <= e->now_s || json_integer_value(iat) > e->now_s + skew ||
        (nbf && json_integer_value(nbf) > e->now_s + skew))
        return SP_OIDC_EXPIRED;
    if (!nonce_ok(json_string_value(json_object_get(pl, "nonce")), e->nonce))
        return SP_OIDC_NONCE;
    const char *sub = json_string_value(json_object_get(pl, "sub"));
    if (!sub || !printable(sub, SP_OIDC_SUB_CAP - 1))
        return SP_OIDC_SUBJECT;
    if (!o)
        return SP_OIDC_OK;
    memset(o, 0, sizeof(*o));
    snprintf(o->sub, sizeof(o->sub), "%s", sub);
    o->exp = json_integer_value(exp);
    const char *email = json_string_value(json_object_get(pl, "email"));
    if (email && printable(email, SP_OIDC_EMAIL_CAP - 1)) {
        snprintf(o->email, sizeof(o->email), "%s", email);
        json_t *ev = json_object_get(pl, "email_verified");
        o->email_verified = json_is_true(ev) ||
                            (json_is_string(ev) && strcmp(json_string_value(ev), "true") == 0);
    }
    const char *name = json_string_value(json_object_get(pl, "name"));
    if (name && strlen(name) < sizeof(o->name))
        snprintf(o->name, sizeof(o->name), "%s", name);
    return SP_OIDC_OK;
}

sp_oidc_result_t sp_oidc_verify(const sp_oidc_jwks_t *keys, const char *jwt, size_t len,
                                const sp_oidc_expect_t *e, sp_oidc_claims_t *out)
{
    parts_t pt;
    char kid[KID_CAP];
    if (out)
        memset(out, 0, sizeof(*out));
    if (!e || !split(jwt, len, &pt))
        return SP_OIDC_MALFORMED;
    sp_oidc_result_t r = check_header(&pt, kid, sizeof(kid));
    if (r != SP_OIDC_OK)
        return r;
    EVP_PKEY *pk = find_key(keys, kid);
    if (!pk)
        return SP_OIDC_UNKNOWN_KEY;
    if (!rs256_ok(pk, &pt))
        return SP_OIDC_SIGNATURE;
    json_t *pl = b64url_json(pt.p, pt.pl);
    if (!pl)
        return SP_OIDC_MALFORMED;
    r = check_claims(pl, e, out);
    json_decref(pl);
    if (r != SP_OIDC_OK && out)
        memset(out, 0, sizeof(*out));
    return r;
}

/* ---- key cache ------------------------------------------------------------------------ */

typedef struct waiter_s {
    struct waiter_s *next;
    char *jwt, *issuer, *audience, *nonce;
    int64_t now_s, skew_s;
    int err; /* set for an early answer (SP_ELIMIT) */
    sp_oidc_verify_cb cb;
    void *ud;
} waiter_t;

struct sp_oidc_keys_s {
    uv_loop_t *loop;
    sp_curlm_t *http;
    char *url, *ca;
    sp_oidc_jwks_t *keys;
    uint64_t keys_at, tried_at; /* mono ms: keys loaded, last fetch started */
    uint64_t min_refetch_ms;
    bool fetching, tried, freeing, timer_open;
    size_t n_waiters;
    waiter_t *fetch_q, *ready_q; /* waiting for the fetch / for the next tick */
    uv_timer_t tick;
};

static void waiter_free(waiter_t *w)
{
    if (w->jwt) {
        sodium_memzero(w->jwt, strlen(w->jwt));
        sp_free(w->jwt);
    }
    sp_free(w->issuer);
    sp_free(w->audience);
    if (w->nonce) {
        sodium_memzero(w->nonce, strlen(w->nonce));
        sp_free(w->nonce);
    }
    sp_free(w);
}

static void push(waiter_t **q, waiter_t *w)
{
    while (*q)
        q = &(*q)->next;
    w->next = NULL;
    *q = w;
}

static void finish(sp_oidc_keys_t *c, waiter_t *w, int err)
{
    c->n_waiters--;
    if (err) {
        w->cb(err, SP_OIDC_MALFORMED, NULL, w->ud);
    } else if (!c->keys) {
        w->cb(SP_EUPSTREAM, SP_OIDC_UNKNOWN_KEY, NULL, w->ud);
    } else {
        sp_oidc_claims_t cl;
        sp_oidc_expect_t e = {.issuer = w->issuer, .audience = w->audience, .nonce = w->nonce,
                              .now_s = w->now_s, .skew_s = w->skew_s};
        sp_oidc_result_t r = sp_oidc_verify(c->keys, w->jwt, strlen(w->jwt), &e, &cl);
        w->cb(0, r, r == SP_OIDC_OK ? &cl : NULL, w->ud);
        sodium_memzero(&cl, sizeof(cl));
    }
    waiter_free(w);
}

static void drain(sp_oidc_keys_t *c, waiter_t **q, int err)
{
    waiter_t *w = *q;
    *q = NULL;
    while (w) {
        waiter_t *n = w->next;
        finish(c, w, err ? err : w->err);
        w = n;
    }
}

static void release(sp_oidc_keys_t *c)
{
    if (c->fetching || c->timer_open)
        return;
    sp_oidc_jwks_free(c->keys);
    sp_free(c->url);
    sp_free(c->ca);
    sp_free(c);
}

static void on_tick(uv_timer_t *t)
{
    sp_oidc_keys_t *c = t->data;
    drain(c, &c->ready_q, 0);
}

static void on_jwks(const sp_curlm_response_t *res, void *ud)
{
    sp_oidc_keys_t *c = ud;
    c->fetching = false;
    if (c->freeing) {
        release(c);
        return;
    }
    sp_oidc_jwks_t *k = NULL;
    int rc = res->err ? res->err : SP_EUPSTREAM;
    if (res->err == 0 && res->status == 200)
        rc = sp_oidc_jwks_parse(res->body, res->body_len, &k);
    if (rc == 0) {
        sp_oidc_jwks_free(c->keys);
        c->keys = k;
        c->keys_at = sp_mono_ms();
        sp_info("oidc", "signing keys loaded", "keys=%zu", sp_oidc_jwks_count(k));
    } else {
        sp_warn("oidc", "cannot load signing keys", "status=%ld err=%s keeping=%zu",
                res->status, sp_err_name(rc), sp_oidc_jwks_count(c->keys));
    }
    drain(c, &c->fetch_q, 0);
}

static bool start_fetch(sp_oidc_keys_t *c)
{
    if (c->fetching)
        return true;
    const char *hdrs[] = {"Accept: application/json", NULL};
    sp_curlm_request_t rq = {.method = "GET", .url = c->url, .headers = hdrs,
                             .timeout_ms = 10000, .max_response_bytes = SP_OIDC_MAX_JWKS,
                             .ca_file = c->ca};
    c->tried = true;
    c->tried_at = sp_mono_ms();
    if (sp_curlm_request(c->http, &rq, on_jwks, c) != 0)
        return false;
    c->fetching = true;
    return true;
}

/* Whether this token's verification must wait for a (new) key set. */
static bool needs_fetch(sp_oidc_keys_t *c, const char *jwt)
{
    uint64_t now = sp_mono_ms();
    bool may = !c->tried || now - c->tried_at >= c->min_refetch_ms;
    if (!c->keys)
        return may || c->fetching;
    char kid[KID_CAP];
    if (sp_oidc_peek_kid(jwt, strlen(jwt), kid, sizeof(kid)) != 0)
        return false; /* malformed: the verdict needs no keys */
    if (!sp_oidc_jwks_has(c->keys, kid))
        return may || c->fetching;
    return now - c->keys_at >= KEYS_MAX_AGE_MS && may;
}

void sp_oidc_keys_verify(sp_oidc_keys_t *c, const char *jwt, const sp_oidc_expect_t *e,
                         sp_oidc_verify_cb cb, void *ud)
{
    waiter_t *w = sp_calloc(1, sizeof(*w));
    w->jwt = sp_strdup(jwt ? jwt : "");
    w->issuer = sp_strdup(e->issuer ? e->issuer : "");
    w->audience = sp_strdup(e->audience ? e->audience : "");
    w->nonce = sp_strdup(e->nonce ? e->nonce : "");
    w->now_s = e->now_s;
    w->skew_s = e->skew_s;
    w->cb = cb;
    w->ud = ud;
    c->n_waiters++;
    if (c->n_waiters > MAX_WAITERS || c->freeing)
        w->err = c->freeing ? SP_ECANCELED : SP_ELIMIT;
    else if (needs_fetch(c, w->jwt) && start_fetch(c)) {
        push(&c->fetch_q, w);
        return;
    }
    push(&c->ready_q, w);
    uv_timer_start(&c->tick, on_tick, 0, 0);
}

sp_oidc_keys_t *sp_oidc_keys_new(uv_loop_t *loop, struct sp_curlm_s *http, const char *jwks_url,
                                 const char *ca_file)
{
    if (!loop || !http || !jwks_url)
        return NULL;
    sp_oidc_keys_t *c = sp_calloc(1, sizeof(*c));
    c->loop = loop;
    c->http = http;
    c->url = sp_strdup(jwks_url);
    c->ca = ca_file ? sp_strdup(ca_file) : NULL;
    c->min_refetch_ms = REFETCH_MIN_MS;
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    c->timer_open = true;
    return c;
}

static void tick_closed(uv_handle_t *h)
{
    sp_oidc_keys_t *c = h->data;
    c->timer_open = false;
    release(c);
}

void sp_oidc_keys_free(sp_oidc_keys_t *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = true;
    drain(c, &c->fetch_q, SP_ECANCELED);
    drain(c, &c->ready_q, SP_ECANCELED);
    uv_close((uv_handle_t *)&c->tick, tick_closed);
}

void sp_oidc_keys_set_min_refetch(sp_oidc_keys_t *c, uint64_t ms)
{
    if (c)
        c->min_refetch_ms = ms;
}
