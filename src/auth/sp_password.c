/* sp_password: argon2id hashing on the thread pool. See sp_password.h. */
#include "auth/sp_password.h"

#include <sodium.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_job.h"

static unsigned long long g_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
static size_t g_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
static unsigned g_max_inflight = 4;
static unsigned g_inflight;
static char g_dummy[SP_PASSWORD_HASH_MAX];
static bool g_dummy_ready;

int sp_password_init(unsigned long long opslimit, size_t memlimit, unsigned max_inflight)
{
    if (sodium_init() < 0)
        return SP_ECRYPTO;
    if (opslimit < SP_PASSWORD_OWASP_OPSLIMIT)
        opslimit = SP_PASSWORD_OWASP_OPSLIMIT;
    if (memlimit < SP_PASSWORD_OWASP_MEMLIMIT)
        memlimit = SP_PASSWORD_OWASP_MEMLIMIT;
    g_ops = opslimit;
    g_mem = memlimit;
    g_max_inflight = max_inflight ? max_inflight : 4;
    /* The dummy hash: a random password nobody knows, same parameters. */
    unsigned char rnd[32];
    randombytes_buf(rnd, sizeof(rnd));
    if (crypto_pwhash_str(g_dummy, (const char *)rnd, sizeof(rnd), g_ops, g_mem) != 0)
        return SP_ENOMEM;
    sodium_memzero(rnd, sizeof(rnd));
    g_dummy_ready = true;
    return 0;
}

void sp_password_cleanup(void)
{
    g_dummy_ready = false;
}

int sp_password_check_policy(const char *pw, size_t len)
{
    if (len > SP_PASSWORD_MAX_BYTES)
        return SP_ETOOBIG;
    size_t cps = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)pw[i];
        size_t n;
        if (c == 0)
            return SP_EUTF8;
        if (c < 0x80)
            n = 1;
        else if ((c & 0xE0) == 0xC0 && c >= 0xC2)
            n = 2;
        else if ((c & 0xF0) == 0xE0)
            n = 3;
        else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
            n = 4;
        else
            return SP_EUTF8;
        if (i + n > len)
            return SP_EUTF8;
        for (size_t k = 1; k < n; k++)
            if (((unsigned char)pw[i + k] & 0xC0) != 0x80)
                return SP_EUTF8;
        i += n;
        cps++;
    }
    return cps < SP_PASSWORD_MIN_CHARS ? SP_EINVAL : 0;
}

int sp_password_hash_sync(const char *pw, size_t len, char out[SP_PASSWORD_HASH_MAX])
{
    if (crypto_pwhash_str(out, pw, len, g_ops, g_mem) != 0)
        return SP_ENOMEM;
    return 0;
}

int sp_password_verify_sync(const char *hash, const char *pw, size_t len)
{
    const char *h = hash ? hash : g_dummy;
    if (!hash && !g_dummy_ready)
        return SP_EAUTH;
    if (strnlen(h, SP_PASSWORD_HASH_MAX) >= SP_PASSWORD_HASH_MAX)
        return SP_EAUTH;
    int ok = crypto_pwhash_str_verify(h, pw, len) == 0;
    return (ok && hash) ? 0 : SP_EAUTH;
}

bool sp_password_needs_rehash(const char *hash)
{
    if (!hash || strnlen(hash, SP_PASSWORD_HASH_MAX) >= SP_PASSWORD_HASH_MAX)
        return false;
    return crypto_pwhash_str_needs_rehash(hash, g_ops, g_mem) == 1; /* -1: not ours */
}

/* ---- async -------------------------------------------------------------------------- */

typedef struct pw_job_s {
    struct pw_job_s *next; /* wait queue */
    uv_loop_t *loop;
    bool verify;
    char *pw;
    size_t len;
    char hash[SP_PASSWORD_HASH_MAX];
    bool has_hash;
    int rc;
    sp_password_hash_cb hcb;
    sp_password_verify_cb vcb;
    void *ud;
} pw_job_t;

static void job_work(void *arg)
{
    pw_job_t *j = arg;
    if (j->verify)
        j->rc = sp_password_verify_sync(j->has_hash ? j->hash : NULL, j->pw, j->len);
    else
        j->rc = sp_password_hash_sync(j->pw, j->len, j->hash);
}

static pw_job_t *g_wait_head, *g_wait_tail;
static unsigned g_waiting;
static int start(pw_job_t *j);

static void job_done(void *arg, int status)
{
    pw_job_t *j = arg;
    g_inflight--;
    /* Start the next waiting job before reporting (keeps the pool busy). */
    while (g_wait_head && g_inflight < g_max_inflight) {
        pw_job_t *n = g_wait_head;
        g_wait_head = n->next;
        if (!g_wait_head)
            g_wait_tail = NULL;
        g_waiting--;
        n->next = NULL;
        if (start(n) < 0) {
            /* cannot happen short of a closing loop: report the failure */
            if (n->verify)
                n->vcb(SP_EBUSY, n->ud);
            else
                n->hcb(SP_EBUSY, NULL, n->ud);
            sodium_memzero(n->pw, n->len);
            sp_free(n->pw);
            sp_free(n);
        }
    }
    int rc = status < 0 ? SP_ECANCELED : j->rc;
    if (j->verify)
        j->vcb(rc, j->ud);
    else
        j->hcb(rc, rc == 0 ? j->hash : NULL, j->ud);
    sodium_memzero(j->pw, j->len);
    sp_free(j->pw);
    sodium_memzero(j, sizeof(*j));
    sp_free(j);
}

static int start(pw_job_t *j)
{
    int rc = sp_job_submit(j->loop, job_work, job_done, j);
    if (rc < 0)
        return rc;
    g_inflight++;
    return 0;
}

static int submit(uv_loop_t *loop, pw_job_t *j)
{
    int rc = 0;
    j->loop = loop;
    if (g_inflight < g_max_inflight) {
        rc = start(j);
    } else if (g_waiting < SP_PASSWORD_MAX_WAITING) {
        /* wait for a free slot (FIFO) */
        if (g_wait_tail)
            g_wait_tail->next = j;
        else
            g_wait_head = j;
        g_wait_tail = j;
        g_waiting++;
        return 0;
    } else {
        rc = SP_EBUSY;
    }
    if (rc < 0) {
        sodium_memzero(j->pw, j->len);
        sp_free(j->pw);
        sp_free(j);
    }
    return rc;
}

static pw_job_t *job_new(const char *pw, size_t len)
{
    pw_job_t *j = sp_calloc(1, sizeof(*j));
    j->pw = sp_malloc(len + 1);
    memcpy(j->pw, pw, len);
    j->pw[len] = '\0';
    j->len = len;
    return j;
}

int sp_password_hash(uv_loop_t *loop, const char *pw, size_t len, sp_password_hash_cb cb, void *ud)
{
    if (len > SP_PASSWORD_MAX_BYTES)
        return SP_ETOOBIG;
    pw_job_t *j = job_new(pw, len);
    j->hcb = cb;
    j->ud = ud;
    return submit(loop, j);
}

int sp_password_verify(uv_loop_t *loop, const char *hash, const char *pw, size_t len,
                       sp_password_verify_cb cb, void *ud)
{
    if (len > SP_PASSWORD_MAX_BYTES)
        return SP_ETOOBIG;
    pw_job_t *j = job_new(pw, len);
    j->verify = true;
    if (hash) {
        size_t hl = strnlen(hash, SP_PASSWORD_HASH_MAX);
        if (hl < SP_PASSWORD_HASH_MAX) {
            memcpy(j->hash, hash, hl + 1);
            j->has_hash = true;
        }
        /* A malformed stored hash verifies against the dummy: same time, mismatch. */
    }
    j->vcb = cb;
    j->ud = ud;
    return submit(loop, j);
}

unsigned sp_password_inflight(void)
{
    return g_inflight + g_waiting;
}
