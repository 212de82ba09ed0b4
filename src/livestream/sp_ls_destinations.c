/*
 * sp_ls_destinations: the destinations model (see the header). Layer: uses the manager
 * layer's sealing helpers only (sp_livestream_internal.h).
 */
#include "livestream/sp_ls_destinations.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "livestream/sp_livestream_internal.h"
#include "net/sp_dest_url.h"

#define NAME_MAX_LEN 100
#define KEY_MAX_LEN 512

static const char *const SQL_COLS =
    "id, platform, name, url, enabled, created_at, updated_at";

/* A connected platform's row (url "platform:<name>") has no key of its own: the key is
   fetched from the platform at each start; it is managed with /api/platforms. */
static json_t *dest_json(json_t *row)
{
    bool managed = sp_ls_is_platform_url(sp_json_str(row, "url"));
    return json_pack("{s:O, s:O, s:O, s:O, s:b, s:s?, s:b, s:O, s:O}", "id",
                     json_object_get(row, "id"), "platform", json_object_get(row, "platform"),
                     "name", json_object_get(row, "name"), "url", json_object_get(row, "url"),
                     "enabled", json_integer_value(json_object_get(row, "enabled")) != 0,
                     "stream_key", managed ? NULL : "********", "managed", managed, "created_at",
                     json_object_get(row, "created_at"), "updated_at",
                     json_object_get(row, "updated_at"));
}

/* ---- GET ------------------------------------------------------------------- */

typedef struct {
    sp_livestream_t *ls;
    sp_ls_result_cb cb;
    void *ud;
    char user[SP_UUID_STRLEN + 8];
    char id[SP_UUID_STRLEN];
} dest_ctx_t;

static dest_ctx_t *ctx_new(sp_livestream_t *ls, const char *user, const char *id,
                           sp_ls_result_cb cb, void *ud)
{
    dest_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->ls = ls;
    c->cb = cb;
    c->ud = ud;
    snprintf(c->user, sizeof(c->user), "%s", user);
    if (id) snprintf(c->id, sizeof(c->id), "%s", id);
    return c;
}

static void on_list(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    dest_ctx_t *c = ud;
    sp_ls_answer_rows(c->cb, c->ud, err, rows, "destinations", dest_json);
    sp_free(c);
}

void sp_ls_destinations_list(sp_livestream_t *ls, const char *user_id, sp_ls_result_cb cb,
                             void *ud)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM destinations WHERE user_id = $1 ORDER BY created_at, id", SQL_COLS);
    sp_store_query(ls->store, sql, json_pack("[s]", user_id), on_list,
                   ctx_new(ls, user_id, NULL, cb, ud));
}

/* ---- validation shared by POST and PATCH ------------------------------------- */

typedef struct {
    sp_livestream_t *ls;
    sp_ls_result_cb cb;
    void *ud;
    char user[SP_UUID_STRLEN + 8];
    char id[SP_UUID_STRLEN];
    bool create;
    char *name;
    char *url;
    char *key;
    int enabled; /* -1 = unchanged */
} dest_op_t;

static void op_free(dest_op_t *op)
{
    sp_free(op->name);
    sp_free(op->url);
    if (op->key) sodium_memzero(op->key, strlen(op->key));
    sp_free(op->key);
    sp_free(op);
}

static bool str_ok(json_t *v, size_t maxlen)
{
    return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= maxlen &&
           strlen(json_string_value(v)) == json_string_length(v); /* no NUL inside */
}

static void op_store(dest_op_t *op);

static void on_resolved(int err, const char *why, const struct sockaddr_storage *addrs, size_t n,
                        void *ud)
{
    (void)addrs;
    (void)n;
    dest_op_t *op = ud;
    if (err == SP_EFORBIDDEN) {
        char msg[256];
        /* say how to allow it: a local test server is what most people point at first */
        snprintf(msg, sizeof(msg),
                 "destination address refused (%s): loopback and private networks are off "
                 "limits unless the server runs with ALLOW_PRIVATE_DESTINATIONS=true",
                 why ? why : "private");
        sp_ulog(SP_LOG_WARN, "livestream", op->user, "destination refused (ssrf)", "why=%s",
                why ? why : "");
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "forbidden_destination", msg);
        op_free(op);
        return;
    }
    if (err != 0) {
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "unresolvable_host",
                   "the destination host could not be resolved");
        op_free(op);
        return;
    }
    op_store(op);
}

/* Parses the body into op; responds and returns false on invalid input. */
static bool op_parse(dest_op_t *op, json_t *body)
{
    json_t *platform = json_object_get(body, "platform");
    json_t *name = json_object_get(body, "name");
    json_t *url = json_object_get(body, "url");
    json_t *key = json_object_get(body, "stream_key");
    json_t *enabled = json_object_get(body, "enabled");
    if (op->create) {
        if (!json_is_string(platform) || strcmp(json_string_value(platform), "custom") != 0) {
            sp_ls_fail(op->cb, op->ud, SP_EINVAL, "unsupported_platform",
                       "only platform \"custom\" can be added here");
            return false;
        }
        if (!name || !url || !key) {
            sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid",
                       "name, url and stream_key are required");
            return false;
        }
    } else if (platform && !(json_is_string(platform) &&
                             strcmp(json_string_value(platform), "custom") == 0)) {
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid", "platform cannot be changed");
        return false;
    }
    if (name && !str_ok(name, NAME_MAX_LEN)) {
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid_name", "name: 1-100 characters");
        return false;
    }
    if (key && !str_ok(key, KEY_MAX_LEN)) {
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid_stream_key", "stream_key: 1-512 characters");
        return false;
    }
    if (enabled && !json_is_boolean(enabled)) {
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid", "enabled must be a boolean");
        return false;
    }
    if (url && !str_ok(url, SP_DEST_URL_MAX)) {
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid_url", "url: an rtmp:// or rtmps:// URL");
        return false;
    }
    op->name = name ? sp_strdup(json_string_value(name)) : NULL;
    op->url = url ? sp_strdup(json_string_value(url)) : NULL;
    op->key = key ? sp_strdup(json_string_value(key)) : NULL;
    op->enabled = enabled ? json_is_true(enabled) : -1;
    return true;
}

/* URL check then store (the URL parse is sync, the SSRF check async). */
static void op_validate_and_store(dest_op_t *op)
{
    if (op->url == NULL) {
        op_store(op);
        return;
    }
    sp_dest_url_t u;
    const char *why = NULL;
    if (sp_dest_url_parse(op->url, strlen(op->url), &u, &why) != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "url: an rtmp:// or rtmps:// URL with a host (%s)",
                 why ? why : "invalid");
        sp_ls_fail(op->cb, op->ud, SP_EINVAL, "invalid_url", msg);
        op_free(op);
        return;
    }
    sodium_memzero(u.key, sizeof(u.key));
    int rc = sp_dest_url_resolve(op->ls->loop, &u, op->ls->cfg->allow_private_destinations,
                                 on_resolved, op, NULL);
    if (rc != 0) on_resolved(rc, "resolver", NULL, 0, op);
}

/* ---- POST ------------------------------------------------------------------ */

static void on_created_row(int err, json_t *rows, int64_t changes, void *ud)
{
    dest_op_t *op = ud;
    if (err != 0) {
        sp_ls_fail(op->cb, op->ud, err, NULL, NULL);
    } else if (changes == 0 || json_array_size(rows) != 1) {
        sp_ls_fail(op->cb, op->ud, SP_ECONFLICT, "too_many_destinations",
                   "MAX_PLATFORMS_PER_USER destinations already exist");
    } else {
        sp_ulog(SP_LOG_INFO, "livestream", op->user, "destination added", "id=%s", op->id);
        sp_ls_ok(op->cb, op->ud, dest_json(json_array_get(rows, 0)));
    }
    op_free(op);
}

static const char *const MANAGED_MSG =
    "a connected platform's destination is managed with /api/platforms/{platform}";

static void on_update_why(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    dest_op_t *op = ud;
    if (err != 0)
        sp_ls_fail(op->cb, op->ud, err, NULL, NULL);
    else if (json_array_size(rows) == 1)
        sp_ls_fail(op->cb, op->ud, SP_ECONFLICT, "platform_destination", MANAGED_MSG);
    else
        sp_ls_fail(op->cb, op->ud, SP_ENOTFOUND, "not_found", "no such destination");
    op_free(op);
}

static void on_updated_row(int err, json_t *rows, int64_t changes, void *ud)
{
    dest_op_t *op = ud;
    if (err != 0) {
        sp_ls_fail(op->cb, op->ud, err, NULL, NULL);
    } else if (changes == 0 || json_array_size(rows) != 1) {
        sp_store_query(op->ls->store,
                       "SELECT id FROM destinations WHERE id = $1 AND user_id = $2 AND "
                       "platform <> 'custom'",
                       json_pack("[s, s]", op->id, op->user), on_update_why, op);
        return;
    } else {
        sp_ls_ok(op->cb, op->ud, dest_json(json_array_get(rows, 0)));
    }
    op_free(op);
}

static void op_store(dest_op_t *op)
{
    sp_livestream_t *ls = op->ls;
    char *sealed = op->key ? sp_ls_seal(op->user, "destination_key", op->key) : NULL;
    if (op->key && sealed == NULL) {
        sp_ls_fail(op->cb, op->ud, SP_EUNAVAIL, "unavailable", "secrets are not available");
        op_free(op);
        return;
    }
    int64_t now = sp_wall_ms();
    char sql[768];
    if (op->create) {
        int64_t max = ls->cfg->max_platforms_per_user > 0 ? ls->cfg->max_platforms_per_user
                                                          : INT32_MAX;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO destinations (id, user_id, platform, name, url, stream_key_sealed, "
                 "enabled, created_at, updated_at) SELECT $1, $2, 'custom', $3, $4, $5, $6, $7, "
                 "$7 WHERE (SELECT COUNT(*) FROM destinations WHERE user_id = $2) < $8 "
                 "RETURNING %s",
                 SQL_COLS);
        sp_store_query(ls->store, sql,
                       json_pack("[s, s, s, s, s, i, I, I]", op->id, op->user, op->name, op->url,
                                 sealed, op->enabled == 0 ? 0 : 1, (json_int_t)now,
                                 (json_int_t)max),
                       on_created_row, op);
    } else {
        snprintf(sql, sizeof(sql),
                 "UPDATE destinations SET name = COALESCE($3, name), url = COALESCE($4, url), "
                 "stream_key_sealed = COALESCE($5, stream_key_sealed), "
                 "enabled = COALESCE($6, enabled), updated_at = $7 "
                 "WHERE id = $1 AND user_id = $2 AND platform = 'custom' RETURNING %s",
                 SQL_COLS);
        sp_store_query(ls->store, sql,
                       json_pack("[s, s, s?, s?, s?, o, I]", op->id, op->user, op->name, op->url,
                                 sealed, op->enabled < 0 ? json_null() : json_integer(op->enabled),
                                 (json_int_t)now),
                       on_updated_row, op);
    }
    sp_free(sealed);
}


void sp_ls_destination_save(sp_livestream_t *ls, const char *user_id, const char *id,
                            json_t *fields, sp_ls_result_cb cb, void *ud)
{
    dest_op_t *op = sp_calloc(1, sizeof(*op));
    op->ls = ls;
    op->cb = cb;
    op->ud = ud;
    op->create = id == NULL;
    snprintf(op->user, sizeof(op->user), "%s", user_id);
    if (id)
        snprintf(op->id, sizeof(op->id), "%s", id);
    else
        sp_uuid_v4(op->id);
    if (!op_parse(op, fields)) {
        op_free(op);
        return;
    }
    op_validate_and_store(op);
}

/* ---- DELETE ---------------------------------------------------------------- */

static void on_delete_why(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    dest_ctx_t *c = ud;
    const char *platform = sp_json_str(json_array_get(rows, 0), "platform");
    if (err != 0)
        sp_ls_fail(c->cb, c->ud, err, NULL, NULL);
    else if (platform && strcmp(platform, "custom") != 0)
        sp_ls_fail(c->cb, c->ud, SP_ECONFLICT, "platform_destination", MANAGED_MSG);
    else if (json_array_size(rows) == 1)
        sp_ls_fail(c->cb, c->ud, SP_ECONFLICT, "in_use",
                   "the destination is used by the running stream; stop it first");
    else
        sp_ls_fail(c->cb, c->ud, SP_ENOTFOUND, "not_found", "no such destination");
    sp_free(c);
}

static void on_deleted(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    dest_ctx_t *c = ud;
    if (err != 0) {
        sp_ls_fail(c->cb, c->ud, err, NULL, NULL);
    } else if (changes == 0) {
        sp_store_query(c->ls->store,
                       "SELECT id, platform FROM destinations WHERE id = $1 AND user_id = $2",
                       json_pack("[s, s]", c->id, c->user), on_delete_why, c);
        return;
    } else {
        sp_ls_ok(c->cb, c->ud, NULL);
    }
    sp_free(c);
}

void sp_ls_destination_delete(sp_livestream_t *ls, const char *user_id, const char *id,
                              sp_ls_result_cb cb, void *ud)
{
    /* a destination with an open output (running stream) cannot go away under it */
    sp_store_query(ls->store,
                   "DELETE FROM destinations WHERE id = $1 AND user_id = $2 AND "
                   "platform = 'custom' AND NOT EXISTS "
                   "(SELECT 1 FROM stream_outputs WHERE destination_id = $1 AND user_id = $2 "
                   "AND state <> 'closed')",
                   json_pack("[s, s]", id, user_id), on_deleted, ctx_new(ls, user_id, id, cb, ud));
}

/* ---- reveal ---------------------------------------------------------------- */

static void on_reveal(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    dest_ctx_t *c = ud;
    if (err != 0) {
        sp_ls_fail(c->cb, c->ud, err, NULL, NULL);
        goto out;
    }
    if (json_array_size(rows) != 1) {
        sp_ls_fail(c->cb, c->ud, SP_ENOTFOUND, "not_found", "no such destination");
        goto out;
    }
    if (sp_ls_is_platform_url(sp_json_str(json_array_get(rows, 0), "url"))) {
        sp_ls_fail(c->cb, c->ud, SP_ECONFLICT, "platform_destination",
                   "a connected platform's key is never stored; it is fetched at each start");
        goto out;
    }
    const char *sealed = sp_json_str(json_array_get(rows, 0), "stream_key_sealed");
    sp_buf_t b;
    sp_buf_init(&b, 4096);
    if (sealed == NULL || sp_ls_unseal(c->user, "destination_key", sealed, &b) != 0) {
        sp_buf_cleanup(&b);
        sp_ls_fail(c->cb, c->ud, SP_ECRYPTO, "sealed_key_unreadable",
                   "the stream key cannot be read");
        goto out;
    }
    sp_ulog(SP_LOG_INFO, "livestream", c->user, "destination key revealed", "");
    sp_ls_ok(c->cb, c->ud, json_pack("{s:s}", "stream_key", b.p ? b.p : ""));
    if (b.p) sodium_memzero(b.p, b.len);
    sp_buf_cleanup(&b);
out:
    sp_free(c);
}

void sp_ls_destination_reveal(sp_livestream_t *ls, const char *user_id, const char *id,
                              sp_ls_result_cb cb, void *ud)
{
    sp_store_query(ls->store,
                   "SELECT url, stream_key_sealed FROM destinations WHERE id = $1 AND "
                   "user_id = $2",
                   json_pack("[s, s]", id, user_id), on_reveal, ctx_new(ls, user_id, id, cb, ud));
}
