/* sp_oauth: OAuth 2.0 code flow pieces (PKCE, URLs, form bodies, token answers, states).
 * See sp_oauth.h. */
#include "auth/sp_oauth.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_map.h"
#include "core/sp_text.h"

/* ---- PKCE ------------------------------------------------------------------------------ */

static void b64url(const unsigned char *bin, size_t n, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void sp_oauth_pkce_verifier(char out[SP_OAUTH_VERIFIER_LEN + 1])
{
    unsigned char r[48];
    randombytes_buf(r, sizeof(r));
    b64url(r, sizeof(r), out, SP_OAUTH_VERIFIER_LEN + 1);
    sodium_memzero(r, sizeof(r));
}

int sp_oauth_pkce_challenge(const char *verifier, char out[SP_OAUTH_CHALLENGE_LEN + 1])
{
    size_t n = verifier ? strlen(verifier) : 0;
    if (n < 43 || n > 128)
        return SP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = verifier[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok)
            return SP_EINVAL;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)verifier, n);
    b64url(h, sizeof(h), out, SP_OAUTH_CHALLENGE_LEN + 1);
    return 0;
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* Appends name=<percent-encoded value>, with a '&' or sep first when something precedes. */
static int put_param(sp_buf_t *out, char *sep, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    if (!enc)
        return SP_ENOMEM;
    int rc = 0;
    if (*sep)
        rc = sp_buf_append(out, sep, 1);
    if (rc == 0)
        rc = sp_buf_appendf(out, "%s=%s", name, enc);
    curl_free(enc);
    *sep = '&';
    return rc;
}

static bool set(const char *s)
{
    return s && *s;
}

int sp_oauth_authorize_url(const sp_oauth_authorize_t *a, sp_buf_t *out)
{
    if (!a || !set(a->authorize_url) || !set(a->client_id) || !set(a->redirect_uri) ||
        !set(a->state))
        return SP_EINVAL;
    if (strncasecmp(a->authorize_url, "https://", 8) != 0 &&
        strncasecmp(a->authorize_url, "http://", 7) != 0)
        return SP_EINVAL;
    if (strpbrk(a->authorize_url, "#\r\n "))
        return SP_EINVAL;
    int rc = sp_buf_append_str(out, a->authorize_url);
    char sep = strchr(a->authorize_url, '?') ? '&' : '?';
    if (rc == 0)
        rc = put_param(out, &sep, "response_type", "code");
    if (rc == 0)
        rc = put_param(out, &sep, "client_id", a->client_id);
    if (rc == 0)
        rc = put_param(out, &sep, "redirect_uri", a->redirect_uri);
    if (rc == 0 && set(a->scopes))
        rc = put_param(out, &sep, "scope", a->scopes);
    if (rc == 0)
        rc = put_param(out, &sep, "state", a->state);
    if (rc == 0 && set(a->code_challenge)) {
        rc = put_param(out, &sep, "code_challenge", a->code_challenge);
        if (rc == 0)
            rc = put_param(out, &sep, "code_challenge_method", "S256");
    }
    if (rc == 0 && set(a->nonce))
        rc = put_param(out, &sep, "nonce", a->nonce);
    if (rc == 0 && set(a->extra))
        rc = sp_buf_appendf(out, "&%s", a->extra);
    return rc;
}

int sp_oauth_token_form(const sp_oauth_form_t *f, sp_buf_t *out)
{
    if (!f || !set(f->client_id))
        return SP_EINVAL;
    char sep = 0;
    int rc;
    switch (f->grant) {
    case SP_OAUTH_GRANT_CODE:
        if (!set(f->code) || !set(f->redirect_uri))
            return SP_EINVAL;
        rc = put_param(out, &sep, "grant_type", "authorization_code");
        if (rc == 0)
            rc = put_param(out, &sep, "code", f->code);
        if (rc == 0)
            rc = put_param(out, &sep, "redirect_uri", f->redirect_uri);
        if (rc == 0 && set(f->code_verifier))
            rc = put_param(out, &sep, "code_verifier", f->code_verifier);
        break;
    case SP_OAUTH_GRANT_REFRESH:
        if (!set(f->refresh_token))
            return SP_EINVAL;
        rc = put_param(out, &sep, "grant_type", "refresh_token");
        if (rc == 0)
            rc = put_param(out, &sep, "refresh_token", f->refresh_token);
        break;
    case SP_OAUTH_GRANT_CLIENT:
        if (!set(f->client_secret))
            return SP_EINVAL;
        rc = put_param(out, &sep, "grant_type", "client_credentials");
        if (rc == 0 && set(f->scopes))
            rc = put_param(out, &sep, "scope", f->scopes);
        break;
    default:
        return SP_EINVAL;
    }
    if (rc == 0)
        rc = put_param(out, &sep, "client_id", f->client_id);
    if (rc == 0 && set(f->client_secret))
        rc = put_param(out, &sep, "client_secret", f->client_secret);
    return rc;
}

/* ---- token response ------------------------------------------------------------------------ */

/* A token: 1..SP_OAUTH_MAX_TOKEN printable ASCII bytes (no spaces, no control characters). */
static char *token_dup(json_t *o, const char *key, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || n == 0 || n > SP_OAUTH_MAX_TOKEN) {
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f) {
            *bad = true;
            return NULL;
        }
    }
    return sp_strndup(s, n);
}

/* A scope: printable ASCII without spaces or quotes (RFC 6749 §3.3). */
static bool scope_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool scopes_copy(json_t *v, char *out, size_t cap)
{
    out[0] = '\0';
    if (!v || json_is_null(v))
        return true;
    size_t o = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n >= cap || memchr(s, '\0', n))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"')
                return false;
        memcpy(out, s, n + 1);
        return true;
    }
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        size_t n = s ? json_string_length(e) : 0;
        if (!s || !scope_ok(s, n) || o + n + 2 > cap)
            return false;
        if (o)
            out[o++] = ' ';
        memcpy(out + o, s, n);
        o += n;
        out[o] = '\0';
    }
    return true;
}

/* The provider's reason, printable ASCII only, bounded: safe to log and to show. */
static void reason(sp_oauth_token_t *out, json_t *root, int status)
{
    const char *keys[] = { "error_description", "message", "error" };
    const char *r = NULL;
    for (size_t i = 0; i < 3 && !r; i++)
        r = json_is_object(root) ? sp_json_str(root, keys[i]) : NULL;
    char tmp[96];
    size_t o = 0;
    for (; r && *r && o + 1 < sizeof(tmp); r++)
        tmp[o++] = ((unsigned char)*r >= 0x20 && (unsigned char)*r < 0x7f) ? *r : '?';
    tmp[o] = '\0';
    if (o)
        snprintf(out->error, sizeof(out->error), "HTTP %d: %s", status, tmp);
    else
        snprintf(out->error, sizeof(out->error), "HTTP %d", status);
}

sp_oauth_result_t sp_oauth_parse_token(int http_status, const char *body, size_t len,
                                       sp_oauth_token_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = NULL;
    sp_oauth_result_t res = SP_OAUTH_BAD;
    if (body && len > 0 && len <= SP_OAUTH_MAX_BODY)
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (http_status < 200 || http_status > 299) {
        reason(out, root, http_status);
        const char *err = json_is_object(root) ? sp_json_str(root, "error") : NULL;
        if (http_status == 429 || http_status == 408 || (http_status >= 500 && http_status <= 599))
            res = SP_OAUTH_RETRY;
        else if (http_status == 400 || http_status == 401 ||
                 (err && strcmp(err, "invalid_grant") == 0))
            res = SP_OAUTH_REAUTH;
        goto done;
    }
    if (!json_is_object(root)) {
        snprintf(out->error, sizeof(out->error), "token response is not a JSON object");
        goto done;
    }
    bool bad = false;
    out->access_token = token_dup(root, "access_token", &bad);
    out->refresh_token = token_dup(root, "refresh_token", &bad);
    out->id_token = token_dup(root, "id_token", &bad);
    json_t *exp = json_object_get(root, "expires_in");
    if (json_is_integer(exp)) {
        json_int_t e = json_integer_value(exp);
        out->expires_in_s = e < 0 ? 0 : (e > SP_OAUTH_MAX_EXPIRES_S ? SP_OAUTH_MAX_EXPIRES_S : e);
    } else if (exp && !json_is_null(exp)) {
        bad = true;
    }
    json_t *sc = json_object_get(root, "scope");
    if (!sc)
        sc = json_object_get(root, "scopes");
    if (!scopes_copy(sc, out->scopes, sizeof(out->scopes)))
        bad = true;
    const char *tt = sp_json_str(root, "token_type");
    if (tt && strcasecmp(tt, "bearer") != 0)
        bad = true;
    if (bad || !out->access_token) {
        sp_oauth_token_clear(out);
        snprintf(out->error, sizeof(out->error), "token response malformed");
        goto done;
    }
    res = SP_OAUTH_OK;
done:
    json_decref(root);
    return res;
}

static void wipe(char **p)
{
    if (*p) {
        sodium_memzero(*p, strlen(*p));
        sp_free(*p);
        *p = NULL;
    }
}

void sp_oauth_token_clear(sp_oauth_token_t *t)
{
    if (!t)
        return;
    wipe(&t->access_token);
    wipe(&t->refresh_token);
    wipe(&t->id_token);
    char err[sizeof(t->error)];
    memcpy(err, t->error, sizeof(err));
    memset(t, 0, sizeof(*t));
    memcpy(t->error, err, sizeof(err)); /* the reason stays readable after a clear */
}

/* ---- states ------------------------------------------------------------------------------- */

typedef struct {
    unsigned char session_hash[crypto_hash_sha256_BYTES];
    uint64_t expires_at;
    sp_oauth_pending_t p;
} state_t;

struct sp_oauth_states_s {
    sp_map_t *map;
    size_t cap;
};

static void state_free(void *v)
{
    sodium_memzero(v, sizeof(state_t));
    sp_free(v);
}

sp_oauth_states_t *sp_oauth_states_new(size_t cap)
{
    sp_oauth_states_t *st = sp_calloc(1, sizeof(*st));
    st->map = sp_map_new(state_free);
    st->cap = cap ? cap : 1;
    return st;
}

void sp_oauth_states_free(sp_oauth_states_t *st)
{
    if (!st)
        return;
    sp_map_free(st->map);
    sp_free(st);
}

size_t sp_oauth_states_count(const sp_oauth_states_t *st)
{
    return sp_map_count(st->map);
}

/* Drops every expired state: one scan collects them, then they are deleted (O(n), not one
   rescan per victim: the loop thread must not stall on a full store). */
static void purge_expired(sp_oauth_states_t *st, uint64_t now_ms)
{
    size_t n = sp_map_count(st->map), k = 0;
    char(*victims)[SP_OAUTH_STATE_LEN + 1] = sp_calloc(n ? n : 1, sizeof(*victims));
    size_t it = 0;
    const char *key;
    size_t kl;
    void *v;
    while (k < n && sp_map_next(st->map, &it, &key, &kl, &v)) {
        if (((state_t *)v)->expires_at <= now_ms && kl <= SP_OAUTH_STATE_LEN) {
            memcpy(victims[k], key, kl);
            victims[k++][kl] = '\0';
        }
    }
    for (size_t i = 0; i < k; i++)
        sp_map_dels(st->map, victims[i], NULL);
    sp_free(victims);
}

static bool short_field_ok(const char *s, size_t cap)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < cap && sp_id_ok(s, n);
}

int sp_oauth_state_issue(sp_oauth_states_t *st, const char *session_id, const char *platform,
                         const char *purpose, bool with_pkce, bool with_nonce, uint64_t now_ms,
                         char out_state[SP_OAUTH_STATE_LEN + 1], sp_oauth_pending_t *out)
{
    if (!st || !set(session_id) || !short_field_ok(platform, sizeof(out->platform)) ||
        !short_field_ok(purpose, sizeof(out->purpose)) || !out_state)
        return SP_EINVAL;
    if (sp_map_count(st->map) >= st->cap)
        purge_expired(st, now_ms);
    if (sp_map_count(st->map) >= st->cap)
        return SP_ELIMIT; /* never evict a live flow */
    state_t *s = sp_calloc(1, sizeof(*s));
    crypto_hash_sha256(s->session_hash, (const unsigned char *)session_id, strlen(session_id));
    s->expires_at = now_ms + SP_OAUTH_STATE_TTL_MS;
    snprintf(s->p.platform, sizeof(s->p.platform), "%s", platform);
    snprintf(s->p.purpose, sizeof(s->p.purpose), "%s", purpose);
    if (with_pkce)
        sp_oauth_pkce_verifier(s->p.verifier);
    if (with_nonce) {
        unsigned char r[32];
        randombytes_buf(r, sizeof(r));
        b64url(r, sizeof(r), s->p.nonce, sizeof(s->p.nonce));
    }
    unsigned char r[32];
    do {
        randombytes_buf(r, sizeof(r));
        b64url(r, sizeof(r), out_state, SP_OAUTH_STATE_LEN + 1);
    } while (sp_map_gets(st->map, out_state)); /* 2^-256: for form's sake */
    if (out)
        *out = s->p;
    sp_map_sets(st->map, out_state, s);
    return 0;
}

int sp_oauth_state_take(sp_oauth_states_t *st, const char *state, const char *session_id,
                        uint64_t now_ms, sp_oauth_pending_t *out)
{
    size_t n = state ? strlen(state) : 0;
    if (!st || n != SP_OAUTH_STATE_LEN || !set(session_id))
        return SP_ENOTFOUND;
    void *v = NULL;
    if (!sp_map_dels(st->map, state, &v))
        return SP_ENOTFOUND;
    state_t *s = v;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)session_id, strlen(session_id));
    int rc = 0;
    if (s->expires_at <= now_ms)
        rc = SP_ETIMEDOUT;
    else if (sodium_memcmp(h, s->session_hash, sizeof(h)) != 0)
        rc = SP_EFORBIDDEN;
    else if (out)
        *out = s->p;
    state_free(s);
    return rc;
}
