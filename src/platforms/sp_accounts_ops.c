/*
 * sp_accounts_ops: connect, disconnect and list of the connected accounts (see
 * sp_accounts.h); the cache, loads and refresher are in sp_accounts.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "platforms/sp_accounts_int.h"
#include "store/sp_store.h"

#define DEST_NAME_CAP 300

/* ---- scopes ---------------------------------------------------------------------------------- */

void sp_acc_scopes_join(const json_t *arr, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    if (!json_is_array(arr))
        return;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (!s || !*s)
            continue;
        size_t n = strlen(s);
        if (len + (len ? 1 : 0) + n + 1 > cap)
            break;
        if (len)
            out[len++] = ' ';
        memcpy(out + len, s, n + 1);
        len += n;
    }
}

/* A space-separated scope list as a JSON array (empty items skipped). */
static json_t *scopes_array(const char *s)
{
    json_t *arr = json_array();
    while (s && *s) {
        while (*s == ' ')
            s++;
        const char *e = s;
        while (*e && *e != ' ')
            e++;
        if (e > s)
            json_array_append_new(arr, json_stringn(s, (size_t)(e - s)));
        s = e;
    }
    return arr;
}

static bool bounded(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

/* ---- connect ----------------------------------------------------------------------------- */

typedef struct {
    sp_acc_op_t op;
    sp_platform_done_cb cb;
    void *ud;
    char user[SP_UUID_STRLEN];
    char key[SP_ACC_KEY_CAP];
    const sp_platform_t *p;
    char *access, *refresh; /* plain, for a cached account (wiped) */
    char *sealed_refresh;
    int64_t expires_at;
    json_t *extra;
} connect_t;

static void connect_free(connect_t *c)
{
    sp_acc_wipe_free(&c->access);
    sp_acc_wipe_free(&c->refresh);
    sp_free(c->sealed_refresh);
    json_decref(c->extra);
    sp_free(c);
}

static void connect_cancel(sp_acc_op_t *op)
{
    connect_t *c = (connect_t *)op;
    sp_acc_unlink(op);
    c->cb(SP_ECANCELED, c->ud);
}

static void on_connected(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    connect_t *c = ud;
    sp_accounts_t *acc = c->op.acc;
    if (!acc) {
        connect_free(c);
        return;
    }
    sp_acc_unlink(&c->op);
    if (err) {
        sp_ulog(SP_LOG_ERROR, SP_ACC_MOD, c->user, "cannot store the connected account",
                "platform=%s err=%s", c->p->name, sp_err_name(err));
        c->cb(err, c->ud);
        connect_free(c);
        return;
    }
    sp_acc_mark_stale(acc, c->key);
    sp_map_dels(acc->degraded, c->key, NULL);
    sp_acc_t *w = sp_map_gets(acc->cache, c->key);
    if (w) { /* update in place: holders see the new grant and identity */
        w->gen++;
        sp_acc_fill_extra(w, c->extra);
        sp_free(w->sealed_refresh);
        w->sealed_refresh = c->sealed_refresh;
        c->sealed_refresh = NULL;
        sp_acc_install(w, c->access, c->refresh, c->expires_at);
    }
    sp_ulog(SP_LOG_INFO, SP_ACC_MOD, c->user, "platform account connected", "platform=%s",
            c->p->name);
    sp_acc_status(acc, c->user, c->p->name, SP_PSTATUS_CONNECTED, NULL);
    c->cb(0, c->ud);
    connect_free(c);
}

static const char *const SQL_UPSERT_ACCOUNT =
    "INSERT INTO streaming_account (user_id, platform, access_token, refresh_token, "
    "access_token_expires_at, extra_data, inserted_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (user_id, platform) DO UPDATE SET "
    "access_token = excluded.access_token, refresh_token = excluded.refresh_token, "
    "access_token_expires_at = excluded.access_token_expires_at, "
    "extra_data = excluded.extra_data, updated_at = excluded.updated_at";
static const char *const SQL_UPDATE_DEST =
    "UPDATE destinations SET name = $3, url = $4, stream_key_sealed = NULL, updated_at = $5 "
    "WHERE user_id = $1 AND platform = $2";
static const char *const SQL_INSERT_DEST =
    "INSERT INTO destinations (id, user_id, platform, name, url, stream_key_sealed, enabled, "
    "created_at, updated_at) SELECT $1, $2, $3, $4, $5, NULL, 1, CAST($6 AS BIGINT), "
    "CAST($6 AS BIGINT) WHERE NOT EXISTS "
    "(SELECT 1 FROM destinations WHERE user_id = $2 AND platform = $3)";

void sp_accounts_connect(sp_accounts_t *acc, const char *user_id, const sp_platform_t *p,
                         const sp_oauth_token_t *tok, const sp_platform_identity_t *who,
                         sp_platform_done_cb cb, void *ud)
{
    if (!acc || !cb)
        return;
    if (acc->closing) {
        cb(SP_ECANCELED, ud);
        return;
    }
    if (!p || !p->name || !sp_acc_args_ok(user_id, p->name) || sp_platform_find(p->name) != p ||
        !tok || !tok->access_token || !*tok->access_token || !who ||
        !bounded(who->id, sizeof(who->id)) || !who->id[0] ||
        !bounded(who->login, sizeof(who->login)) ||
        !bounded(who->display_name, sizeof(who->display_name)) ||
        !bounded(who->email, sizeof(who->email)) || !bounded(tok->scopes, sizeof(tok->scopes))) {
        sp_acc_defer_done(acc, SP_EINVAL, cb, ud);
        return;
    }
    char *sealed_access = sp_acc_seal(user_id, p->name, tok->access_token);
    char *sealed_refresh = NULL;
    if (tok->refresh_token && *tok->refresh_token)
        sealed_refresh = sp_acc_seal(user_id, p->name, tok->refresh_token);
    if (!sealed_access || (tok->refresh_token && *tok->refresh_token && !sealed_refresh)) {
        sp_free(sealed_access);
        sp_free(sealed_refresh);
        sp_acc_defer_done(acc, SP_ECRYPTO, cb, ud);
        return;
    }
    connect_t *c = sp_calloc(1, sizeof(*c));
    c->cb = cb;
    c->ud = ud;
    c->p = p;
    snprintf(c->user, sizeof(c->user), "%s", user_id);
    sp_acc_key(c->key, user_id, p->name);
    c->access = sp_strdup(tok->access_token);
    c->refresh = sealed_refresh ? sp_strdup(tok->refresh_token) : NULL;
    c->sealed_refresh = sealed_refresh ? sp_strdup(sealed_refresh) : NULL;
    int64_t now = sp_wall_ms();
    c->expires_at = tok->expires_in_s > 0 ? now + tok->expires_in_s * 1000 : 0;
    c->extra = json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", who->id, "login", who->login,
                         "display_name", who->display_name, "scopes", scopes_array(tok->scopes),
                         "status", "ok");
    if (who->email[0])
        json_object_set_new(c->extra, "email", json_string(who->email));

    char dest_name[DEST_NAME_CAP], dest_url[SP_ACC_PLATFORM_CAP + 16], dest_id[SP_UUID_STRLEN];
    snprintf(dest_name, sizeof(dest_name), "%s (%s)", p->display_name ? p->display_name : p->name,
             who->login[0] ? who->login : who->display_name);
    snprintf(dest_url, sizeof(dest_url), "platform:%s", p->name);
    sp_uuid_v4(dest_id);
    const char *sqls[3] = { SQL_UPSERT_ACCOUNT, SQL_UPDATE_DEST, SQL_INSERT_DEST };
    json_t *params[3] = {
        json_pack("[s, s, s, s?, o, O, I]", user_id, p->name, sealed_access, sealed_refresh,
                  c->expires_at > 0 ? json_integer(c->expires_at) : json_null(), c->extra,
                  (json_int_t)now),
        json_pack("[s, s, s, s, I]", user_id, p->name, dest_name, dest_url, (json_int_t)now),
        json_pack("[s, s, s, s, s, I]", dest_id, user_id, p->name, dest_name, dest_url,
                  (json_int_t)now),
    };
    sp_free(sealed_access);
    sp_free(sealed_refresh);
    sp_acc_link(acc, &c->op, connect_cancel);
    sp_store_tx(acc->store, 3, sqls, params, on_connected, c);
}

/* ---- disconnect ---------------------------------------------------------------------------- */

typedef struct {
    sp_acc_op_t op;
    sp_platform_done_cb cb;
    void *ud;
    char user[SP_UUID_STRLEN];
    char key[SP_ACC_KEY_CAP];
    const sp_platform_t *p;
} disconnect_t;

static void disconnect_cancel(sp_acc_op_t *op)
{
    disconnect_t *d = (disconnect_t *)op;
    sp_acc_unlink(op);
    d->cb(SP_ECANCELED, d->ud);
}

static void on_revoked(int err, void *ud)
{
    disconnect_t *d = ud;
    if (!d->op.acc) {
        sp_free(d);
        return;
    }
    sp_acc_unlink(&d->op);
    if (err) /* best effort: the account is gone here either way */
        sp_ulog(SP_LOG_WARN, SP_ACC_MOD, d->user, "revoke at the provider failed",
                "platform=%s err=%s", d->p->name, sp_err_name(err));
    d->cb(0, d->ud);
    sp_free(d);
}

static void on_deleted(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    disconnect_t *d = ud;
    sp_accounts_t *acc = d->op.acc;
    if (!acc) {
        sp_free(d);
        return;
    }
    if (!err && json_array_size(rows) == 0)
        err = SP_ENOTFOUND;
    if (err) {
        sp_acc_unlink(&d->op);
        d->cb(err, d->ud);
        sp_free(d);
        return;
    }
    sp_acc_mark_stale(acc, d->key);
    sp_map_dels(acc->degraded, d->key, NULL);
    sp_acc_t *w = sp_map_gets(acc->cache, d->key);
    if (w) { /* holders keep their reference; their calls end, nothing new starts */
        w->a.disconnected = true;
        w->gen++;
        sp_token_set(w->a.token, NULL, NULL, 0);
        sp_acc_uncache(w);
    }
    sp_ulog(SP_LOG_INFO, SP_ACC_MOD, d->user, "platform account disconnected", "platform=%s",
            d->p->name);
    sp_acc_status(acc, d->user, d->p->name, SP_PSTATUS_STOPPED, NULL);
    if (!d->op.acc) { /* sp_accounts_free ran from the status callback: answered */
        sp_free(d);
        return;
    }
    char *access = NULL;
    json_t *row = json_array_get(rows, 0);
    if (d->p->revoke &&
        sp_acc_unseal(d->user, d->p->name, sp_json_str(row, "access_token"), &access) == 0 &&
        access) {
        d->p->revoke(acc->env, access, on_revoked, d); /* answers on a later turn */
        sp_acc_wipe_free(&access);
        return;
    }
    sp_acc_unlink(&d->op);
    sp_acc_defer_done(acc, 0, d->cb, d->ud);
    sp_free(d);
}

void sp_accounts_disconnect(sp_accounts_t *acc, const char *user_id, const char *platform,
                            sp_platform_done_cb cb, void *ud)
{
    if (!acc || !cb)
        return;
    if (acc->closing) {
        cb(SP_ECANCELED, ud);
        return;
    }
    if (!sp_acc_args_ok(user_id, platform)) {
        sp_acc_defer_done(acc, SP_EINVAL, cb, ud);
        return;
    }
    const sp_platform_t *p = sp_platform_find(platform);
    if (!p) {
        sp_acc_defer_done(acc, SP_ENOTFOUND, cb, ud);
        return;
    }
    disconnect_t *d = sp_calloc(1, sizeof(*d));
    d->cb = cb;
    d->ud = ud;
    d->p = p;
    snprintf(d->user, sizeof(d->user), "%s", user_id);
    sp_acc_key(d->key, user_id, platform);
    const char *sqls[2] = {
        "DELETE FROM destinations WHERE user_id = $1 AND platform = $2",
        "DELETE FROM streaming_account WHERE user_id = $1 AND platform = $2 "
        "RETURNING access_token",
    };
    json_t *params[2] = { json_pack("[s, s]", user_id, platform),
                          json_pack("[s, s]", user_id, platform) };
    sp_acc_link(acc, &d->op, disconnect_cancel);
    sp_store_tx(acc->store, 2, sqls, params, on_deleted, d);
}

/* ---- list ------------------------------------------------------------------------------------ */

typedef struct {
    sp_acc_op_t op;
    sp_accounts_json_cb cb;
    void *ud;
    char user[SP_UUID_STRLEN];
} list_t;

static void list_cancel(sp_acc_op_t *op)
{
    list_t *l = (list_t *)op;
    sp_acc_unlink(op);
    l->cb(SP_ECANCELED, NULL, l->ud);
}

static json_t *row_of(json_t *rows, const char *platform)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        const char *p = sp_json_str(r, "platform");
        if (p && strcmp(p, platform) == 0)
            return r;
    }
    return NULL;
}

/* One platform's entry: {platform, display_name, configured, connected, status, account,
 * scopes, expires_at}. Only names, ids and scopes: never a token. */
static json_t *entry(sp_accounts_t *acc, const char *user, const sp_platform_t *p, json_t *row)
{
    sp_platform_oauth_t od;
    memset(&od, 0, sizeof(od));
    bool configured = p->oauth && p->oauth(acc->env->cfg, &od);
    json_t *e = json_pack("{s:s, s:s, s:b, s:b}", "platform", p->name, "display_name",
                          p->display_name ? p->display_name : p->name, "configured", configured,
                          "connected", row != NULL);
    if (!row) {
        json_object_set_new(e, "status", json_null());
        json_object_set_new(e, "account", json_null());
        json_object_set_new(e, "scopes", json_array());
        json_object_set_new(e, "expires_at", json_null());
        return e;
    }
    json_t *extra = NULL;
    const char *et = sp_json_str(row, "extra_data");
    if (et)
        extra = json_loads(et, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(extra)) {
        json_decref(extra);
        extra = json_object();
    }
    char key[SP_ACC_KEY_CAP];
    sp_acc_key(key, user, p->name);
    sp_acc_t *w = sp_map_gets(acc->cache, key);
    const char *st = sp_json_str(extra, "status");
    const char *status = "ok";
    if ((st && strcmp(st, "needs_reauth") == 0) || (w && sp_token_needs_reauth(w->a.token)))
        status = "needs_reauth";
    else if (sp_map_gets(acc->degraded, key))
        status = "degraded";
    json_object_set_new(e, "status", json_string(status));
    json_t *account = json_object();
    static const char *const fields[] = { "id", "login", "display_name" };
    for (size_t i = 0; i < SP_ARRAY_LEN(fields); i++) {
        const char *v = sp_json_str(extra, fields[i]);
        json_object_set_new(account, fields[i], json_string(v ? v : ""));
    }
    json_object_set_new(e, "account", account);
    json_t *scopes = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(extra, "scopes"), i, v) {
        if (json_is_string(v))
            json_array_append(scopes, v);
    }
    json_object_set_new(e, "scopes", scopes);
    json_t *exp = json_object_get(row, "access_token_expires_at");
    json_object_set_new(e, "expires_at", json_is_integer(exp) ? json_incref(exp) : json_null());
    json_decref(extra);
    return e;
}

static void on_list_rows(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    list_t *l = ud;
    sp_accounts_t *acc = l->op.acc;
    if (!acc) {
        sp_free(l);
        return;
    }
    sp_acc_unlink(&l->op);
    if (err) {
        l->cb(err, NULL, l->ud);
        sp_free(l);
        return;
    }
    json_t *list = json_array();
    const sp_platform_t *const *all = sp_platform_all();
    for (size_t i = 0; all && all[i]; i++)
        json_array_append_new(list, entry(acc, l->user, all[i], row_of(rows, all[i]->name)));
    l->cb(0, list, l->ud);
    json_decref(list);
    sp_free(l);
}

void sp_accounts_list(sp_accounts_t *acc, const char *user_id, sp_accounts_json_cb cb, void *ud)
{
    if (!acc || !cb)
        return;
    if (acc->closing) {
        cb(SP_ECANCELED, NULL, ud);
        return;
    }
    if (!sp_acc_args_ok(user_id, "-")) {
        sp_acc_defer_json(acc, SP_EINVAL, cb, ud);
        return;
    }
    list_t *l = sp_calloc(1, sizeof(*l));
    l->cb = cb;
    l->ud = ud;
    snprintf(l->user, sizeof(l->user), "%s", user_id);
    sp_acc_link(acc, &l->op, list_cancel);
    sp_store_query(acc->store,
                   "SELECT platform, access_token_expires_at, extra_data FROM streaming_account "
                   "WHERE user_id = $1",
                   json_pack("[s]", user_id), on_list_rows, l);
}
