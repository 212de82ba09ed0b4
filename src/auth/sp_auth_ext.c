/*
 * sp_auth_ext: sign-in with an external identity (Twitch, Google), docs/auth.md "Sign in with
 * Twitch and Google". Find-or-create the user in `user_identities` + `users`, then a session
 * through sp_auth_session_new. Declared in sp_auth.h.
 *
 *   1. (provider, subject) known            -> that user (last_login_at updated)
 *   2. else email verified and owned by a user -> link that user (INSERT identity)
 *   3. else                                    -> new user + identity in one transaction
 * A unique violation in 2 or 3 (two first sign-ins racing, an email registered meanwhile)
 * starts again at 1, at most three times.
 */
#include "auth/sp_auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "core/sp_time.h"

#define PROVIDER_CAP 32
#define SUBJECT_CAP 256
#define MAX_TRIES 3

typedef struct {
    sp_auth_t *a;
    sp_store_t *store;
    char provider[PROVIDER_CAP];
    char subject[SUBJECT_CAP];
    char email[SP_EMAIL_MAX + 1]; /* normalised; "" when absent or unusable */
    bool verified;
    char dn[SP_DISPLAY_NAME_BYTES];
    char ua[257], ip[64];
    sp_auth_user_t user;
    int tries;
    int64_t now_ms;
    const char *how; /* "existing" | "linked" | "created", for the log */
    sp_auth_session_cb cb;
    void *ud;
} ext_t;

static void find_identity(ext_t *x);

static void ext_end(ext_t *x, sp_auth_status_t st)
{
    if (st != SP_AUTH_OK)
        x->cb(st, NULL, NULL, x->ud);
    sp_free(x);
}

static void session_made(sp_auth_status_t st, const sp_auth_user_t *u,
                         const sp_auth_session_t *s, void *ud)
{
    ext_t *x = ud;
    if (st == SP_AUTH_OK)
        sp_info("auth", "external sign-in", "user_id=%s provider=%s account=%s", u->id,
                x->provider, x->how);
    x->cb(st, u, s, x->ud);
    sp_free(x);
}

static void new_session(ext_t *x)
{
    sp_auth_client_t cl = {.user_agent = x->ua, .ip = x->ip};
    sp_auth_session_new(x->a, &x->user, &cl, session_made, x);
}

static sp_auth_status_t store_err(int err)
{
    sp_warn("auth", "external sign-in: store error", "err=%s", sp_err_name(err));
    return SP_AUTH_STORE;
}

/* A unique violation: somebody else got there first; look again. */
static void retry_or_fail(ext_t *x, int err)
{
    if (err == SP_EEXISTS && ++x->tries < MAX_TRIES) {
        find_identity(x);
        return;
    }
    ext_end(x, store_err(err));
}

static bool user_from_row(ext_t *x, json_t *rows)
{
    json_t *row = json_array_get(rows, 0);
    const char *id = sp_json_str(row, "id");
    const char *email = sp_json_str(row, "email");
    const char *dn = sp_json_str(row, "display_name");
    if (!row || !id || !email || strlen(id) >= sizeof(x->user.id))
        return false;
    snprintf(x->user.id, sizeof(x->user.id), "%s", id);
    snprintf(x->user.email, sizeof(x->user.email), "%s", email);
    snprintf(x->user.display_name, sizeof(x->user.display_name), "%s", dn ? dn : "");
    return true;
}

static json_t *identity_params(ext_t *x)
{
    return json_pack("[s,s,s,s?,b,I,I]", x->provider, x->subject, x->user.id,
                     x->email[0] ? x->email : NULL, x->verified, (json_int_t)x->now_ms,
                     (json_int_t)x->now_ms);
}

static const char *SQL_INSERT_IDENTITY =
    "INSERT INTO user_identities (provider, subject, user_id, email, email_verified, "
    "created_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/* ---- 3. a new user ---------------------------------------------------------------------- */

static void created(int err, json_t *rows, int64_t changes, void *ud)
{
    ext_t *x = ud;
    (void)rows;
    (void)changes;
    if (err) {
        retry_or_fail(x, err);
        return;
    }
    sp_info("auth", "user created by external sign-in", "user_id=%s provider=%s", x->user.id,
            x->provider);
    x->how = "created";
    new_session(x);
}

/* "<provider>-<subject>@users.invalid", or a hash of the subject when it is not a short id. */
static void placeholder_email(ext_t *x, char *out, size_t cap)
{
    size_t n = strlen(x->subject);
    if (n <= 64 && sp_id_ok(x->subject, n)) {
        snprintf(out, cap, "%.31s-%.64s@users.invalid", x->provider, x->subject);
        return;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof(h) + 1];
    crypto_hash_sha256(h, (const unsigned char *)x->subject, n);
    sodium_bin2hex(hex, sizeof(hex), h, 16);
    snprintf(out, cap, "%.31s-%s@users.invalid", x->provider, hex);
}

static void create_user(ext_t *x, bool use_email)
{
    memset(&x->user, 0, sizeof(x->user));
    sp_uuid_v4(x->user.id);
    if (use_email && x->email[0])
        snprintf(x->user.email, sizeof(x->user.email), "%s", x->email);
    else
        placeholder_email(x, x->user.email, sizeof(x->user.email));
    snprintf(x->user.display_name, sizeof(x->user.display_name), "%s", x->dn);
    x->now_ms = sp_wall_ms();
    const char *s[2] = {
        "INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $5)",
        SQL_INSERT_IDENTITY};
    json_t *p[2];
    p[0] = json_pack("[s,s,s,s,I]", x->user.id, x->user.email, SP_AUTH_EXTERNAL_HASH,
                     x->user.display_name, (json_int_t)x->now_ms);
    p[1] = identity_params(x);
    sp_store_tx(x->store, 2, s, p, created, x);
}

/* ---- 2. link by verified email ----------------------------------------------------------- */

static void linked(int err, json_t *rows, int64_t changes, void *ud)
{
    ext_t *x = ud;
    (void)rows;
    (void)changes;
    if (err) {
        retry_or_fail(x, err);
        return;
    }
    sp_info("auth", "external identity linked by verified email", "user_id=%s provider=%s",
            x->user.id, x->provider);
    x->how = "linked";
    new_session(x);
}

static void by_email_loaded(int err, json_t *rows, int64_t changes, void *ud)
{
    ext_t *x = ud;
    (void)changes;
    if (err) {
        ext_end(x, store_err(err));
        return;
    }
    if (!user_from_row(x, rows)) {
        create_user(x, true);
        return;
    }
    x->now_ms = sp_wall_ms();
    sp_store_query(x->store, SQL_INSERT_IDENTITY, identity_params(x), linked, x);
}

/* ---- 1. known identity ------------------------------------------------------------------ */

static void touched(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    (void)ud;
    if (err)
        sp_debug("auth", "identity last_login_at not updated", "err=%s", sp_err_name(err));
}

static void identity_loaded(int err, json_t *rows, int64_t changes, void *ud)
{
    ext_t *x = ud;
    (void)changes;
    if (err) {
        ext_end(x, store_err(err));
        return;
    }
    if (user_from_row(x, rows)) {
        x->how = "existing";
        sp_store_query(x->store,
                       "UPDATE user_identities SET last_login_at = $1, email = $2, "
                       "email_verified = $3 WHERE provider = $4 AND subject = $5",
                       json_pack("[I,s?,b,s,s]", (json_int_t)sp_wall_ms(),
                                 x->email[0] ? x->email : NULL, x->verified, x->provider,
                                 x->subject),
                       touched, NULL);
        new_session(x);
        return;
    }
    if (x->verified && x->email[0]) {
        sp_store_query(x->store, "SELECT id, email, display_name FROM users WHERE email = $1",
                       json_pack("[s]", x->email), by_email_loaded, x);
        return;
    }
    create_user(x, false);
}

static void find_identity(ext_t *x)
{
    sp_store_query(x->store,
                   "SELECT u.id AS id, u.email AS email, u.display_name AS display_name "
                   "FROM user_identities i JOIN users u ON u.id = i.user_id "
                   "WHERE i.provider = $1 AND i.subject = $2",
                   json_pack("[s,s]", x->provider, x->subject), identity_loaded, x);
}

/* ---- entry -------------------------------------------------------------------------------- */

static bool provider_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n >= PROVIDER_CAP)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return false;
    return true;
}

static bool subject_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= SUBJECT_CAP)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static void refused(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)err;
    (void)rows;
    (void)changes;
    ext_end(ud, SP_AUTH_DENIED);
}

/* The provider's name if it is an acceptable display name, else the email's local part (only
 * a verified one), else "<Provider> user". */
static void pick_display_name(ext_t *x, const char *given)
{
    if (given && given[0] &&
        sp_auth_check_display_name(given, strlen(given), x->dn, sizeof(x->dn)) == 0)
        return;
    const char *at = x->verified ? strchr(x->email, '@') : NULL;
    if (at && at > x->email) {
        size_t n = (size_t)(at - x->email);
        snprintf(x->dn, sizeof(x->dn), "%.*s", (int)(n > SP_DISPLAY_NAME_MAX ? 64 : n),
                 x->email);
        return;
    }
    snprintf(x->dn, sizeof(x->dn), "%c%s user", x->provider[0] - 'a' + 'A', x->provider + 1);
}

void sp_auth_external_signin(sp_auth_t *a, sp_store_t *store, const sp_auth_external_t *ext,
                             const sp_auth_client_t *client, sp_auth_session_cb cb, void *ud)
{
    ext_t *x = sp_calloc(1, sizeof(*x));
    x->a = a;
    x->store = store;
    x->cb = cb;
    x->ud = ud;
    if (!ext || !provider_ok(ext->provider) || !subject_ok(ext->subject) ||
        !(ext->provider[0] >= 'a' && ext->provider[0] <= 'z')) {
        /* answered later on the loop, like every other outcome */
        sp_warn("auth", "external sign-in refused: bad identity", "");
        sp_store_query(store, "SELECT 1 AS one", NULL, refused, x);
        return;
    }
    snprintf(x->provider, sizeof(x->provider), "%s", ext->provider);
    snprintf(x->subject, sizeof(x->subject), "%s", ext->subject);
    const char *em = ext->email ? ext->email : "";
    if (!em[0] || sp_auth_normalize_email(em, strlen(em), x->email, sizeof(x->email)) != 0)
        x->email[0] = '\0';
    x->verified = ext->email_verified && x->email[0];
    pick_display_name(x, ext->display_name);
    snprintf(x->ua, sizeof(x->ua), "%s", client && client->user_agent ? client->user_agent : "");
    snprintf(x->ip, sizeof(x->ip), "%s", client && client->ip ? client->ip : "");
    find_identity(x);
}
