/*
 * sp_ls_destinations: custom RTMP(S) destinations of a user.
 *   GET    /api/destinations
 *   POST   /api/destinations            {platform:"custom", name, url, stream_key, enabled?}
 *   PATCH  /api/destinations/{id}       any of name, url, stream_key, enabled
 *   DELETE /api/destinations/{id}
 *   POST   /api/destinations/{id}/reveal -> {stream_key}
 * URLs go through sp_dest_url (strict parse, then DNS + SSRF address check:
 * private/loopback/link-local refused unless ALLOW_PRIVATE_DESTINATIONS).
 * Stream keys are sealed at rest (purpose "destination_key") and masked in
 * every answer except reveal. Every query is scoped by the caller's user id.
 */
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "net/sp_dest_url.h"
#include "core/sp_err.h"
#include "livestream/sp_livestream_internal.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

#include <sodium.h>

#define NAME_MAX_LEN 100
#define KEY_MAX_LEN 512

static const char *const SQL_COLS =
    "id, platform, name, url, enabled, created_at, updated_at";

static json_t *dest_json(json_t *row)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:b, s:s, s:O, s:O}", "id", json_object_get(row, "id"),
                     "platform", json_object_get(row, "platform"), "name",
                     json_object_get(row, "name"), "url", json_object_get(row, "url"), "enabled",
                     json_integer_value(json_object_get(row, "enabled")) != 0, "stream_key",
                     "********", "created_at", json_object_get(row, "created_at"), "updated_at",
                     json_object_get(row, "updated_at"));
}

/* ---- GET ------------------------------------------------------------------- */

static void on_list(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_http_req_t *req = ud;
    if (err != 0) {
        ls_respond_err(req, err);
        return;
    }
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) json_array_append_new(arr, dest_json(row));
    sp_http_respond_json(req, 200, json_pack("{s:o}", "destinations", arr));
}

static void h_list(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM destinations WHERE user_id = $1 ORDER BY created_at, id", SQL_COLS);
    sp_store_query(ls->store, sql, json_pack("[s]", ls_req_user(req)), on_list, req);
}

/* ---- validation shared by POST and PATCH ------------------------------------- */

typedef struct {
    sp_livestream_t *ls;
    sp_http_req_t *req;
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
        char msg[160];
        snprintf(msg, sizeof(msg), "destination address refused (%s)", why ? why : "private");
        sp_ulog(SP_LOG_WARN, "livestream", op->user, "destination refused (ssrf)", "why=%s",
                why ? why : "");
        sp_http_respond_error(op->req, 422, "forbidden_destination", msg);
        op_free(op);
        return;
    }
    if (err != 0) {
        sp_http_respond_error(op->req, 422, "unresolvable_host",
                              "the destination host could not be resolved");
        op_free(op);
        return;
    }
    op_store(op);
}

/* Parses the body into op; responds and returns false on invalid input. */
static bool op_parse(dest_op_t *op, json_t *body)
{
    sp_http_req_t *req = op->req;
    json_t *platform = json_object_get(body, "platform");
    json_t *name = json_object_get(body, "name");
    json_t *url = json_object_get(body, "url");
    json_t *key = json_object_get(body, "stream_key");
    json_t *enabled = json_object_get(body, "enabled");
    if (op->create) {
        if (!json_is_string(platform) || strcmp(json_string_value(platform), "custom") != 0) {
            sp_http_respond_error(req, 422, "unsupported_platform",
                                  "only platform \"custom\" can be added here");
            return false;
        }
        if (!name || !url || !key) {
            sp_http_respond_error(req, 422, "invalid", "name, url and stream_key are required");
            return false;
        }
    } else if (platform && !(json_is_string(platform) &&
                             strcmp(json_string_value(platform), "custom") == 0)) {
        sp_http_respond_error(req, 422, "invalid", "platform cannot be changed");
        return false;
    }
    if (name && !str_ok(name, NAME_MAX_LEN)) {
        sp_http_respond_error(req, 422, "invalid_name", "name: 1-100 characters");
        return false;
    }
    if (key && !str_ok(key, KEY_MAX_LEN)) {
        sp_http_respond_error(req, 422, "invalid_stream_key", "stream_key: 1-512 characters");
        return false;
    }
    if (enabled && !json_is_boolean(enabled)) {
        sp_http_respond_error(req, 422, "invalid", "enabled must be a boolean");
        return false;
    }
    if (url && !str_ok(url, SP_DEST_URL_MAX)) {
        sp_http_respond_error(req, 422, "invalid_url", "url: an rtmp:// or rtmps:// URL");
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
        sp_http_respond_error(op->req, 422, "invalid_url", msg);
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
        ls_respond_err(op->req, err);
    } else if (changes == 0 || json_array_size(rows) != 1) {
        sp_http_respond_error(op->req, 409, "too_many_destinations",
                              "MAX_PLATFORMS_PER_USER destinations already exist");
    } else {
        sp_ulog(SP_LOG_INFO, "livestream", op->user, "destination added", "id=%s", op->id);
        sp_http_respond_json(op->req, 201, dest_json(json_array_get(rows, 0)));
    }
    op_free(op);
}

static void on_updated_row(int err, json_t *rows, int64_t changes, void *ud)
{
    dest_op_t *op = ud;
    if (err != 0)
        ls_respond_err(op->req, err);
    else if (changes == 0 || json_array_size(rows) != 1)
        sp_http_respond_error(op->req, 404, "not_found", "no such destination");
    else
        sp_http_respond_json(op->req, 200, dest_json(json_array_get(rows, 0)));
    op_free(op);
}

static void op_store(dest_op_t *op)
{
    sp_livestream_t *ls = op->ls;
    char *sealed = op->key ? ls_seal(op->user, "destination_key", op->key) : NULL;
    if (op->key && sealed == NULL) {
        sp_http_respond_error(op->req, 503, "unavailable", "secrets are not available");
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
                 "WHERE id = $1 AND user_id = $2 RETURNING %s",
                 SQL_COLS);
        sp_store_query(ls->store, sql,
                       json_pack("[s, s, s?, s?, s?, o, I]", op->id, op->user, op->name, op->url,
                                 sealed, op->enabled < 0 ? json_null() : json_integer(op->enabled),
                                 (json_int_t)now),
                       on_updated_row, op);
    }
    sp_free(sealed);
}

static dest_op_t *op_new(sp_livestream_t *ls, sp_http_req_t *req, bool create)
{
    dest_op_t *op = sp_calloc(1, sizeof(*op));
    op->ls = ls;
    op->req = req;
    op->create = create;
    snprintf(op->user, sizeof(op->user), "%s", ls_req_user(req));
    return op;
}

static void h_create(sp_http_req_t *req, void *ud)
{
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    dest_op_t *op = op_new(ud, req, true);
    sp_uuid_v4(op->id);
    bool ok = op_parse(op, body);
    json_decref(body);
    if (!ok) {
        op_free(op);
        return;
    }
    op_validate_and_store(op);
}

/* ---- PATCH ----------------------------------------------------------------- */

static void h_patch(sp_http_req_t *req, void *ud)
{
    const char *id = sp_http_req_param(req, "id");
    if (id == NULL || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such destination");
        return;
    }
    json_t *body = sp_http_req_json_or_400(req);
    if (body == NULL) return;
    dest_op_t *op = op_new(ud, req, false);
    snprintf(op->id, sizeof(op->id), "%s", id);
    bool ok = op_parse(op, body);
    json_decref(body);
    if (!ok) {
        op_free(op);
        return;
    }
    op_validate_and_store(op);
}

/* ---- DELETE ---------------------------------------------------------------- */

typedef struct {
    sp_livestream_t *ls;
    sp_http_req_t *req;
    char id[SP_UUID_STRLEN];
} del_ctx_t;

static void on_delete_why(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    del_ctx_t *c = ud;
    if (err != 0)
        ls_respond_err(c->req, err);
    else if (json_array_size(rows) == 1)
        sp_http_respond_error(c->req, 409, "in_use",
                              "the destination is used by the running stream; stop it first");
    else
        sp_http_respond_error(c->req, 404, "not_found", "no such destination");
    sp_free(c);
}

static void on_deleted(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    del_ctx_t *c = ud;
    if (err != 0) {
        ls_respond_err(c->req, err);
    } else if (changes == 0) {
        sp_store_query(c->ls->store, "SELECT id FROM destinations WHERE id = $1 AND user_id = $2",
                       json_pack("[s, s]", c->id, ls_req_user(c->req)), on_delete_why, c);
        return;
    } else {
        sp_http_respond(c->req, 204, NULL, NULL, 0);
    }
    sp_free(c);
}

static void h_delete(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    const char *id = sp_http_req_param(req, "id");
    if (id == NULL || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such destination");
        return;
    }
    del_ctx_t *c = sp_calloc(1, sizeof(*c));
    c->ls = ls;
    c->req = req;
    snprintf(c->id, sizeof(c->id), "%s", id);
    /* a destination with an open output (running stream) cannot go away under it */
    sp_store_query(ls->store,
                   "DELETE FROM destinations WHERE id = $1 AND user_id = $2 AND NOT EXISTS "
                   "(SELECT 1 FROM stream_outputs WHERE destination_id = $1 AND user_id = $2 "
                   "AND state <> 'closed')",
                   json_pack("[s, s]", id, ls_req_user(req)), on_deleted, c);
}

/* ---- reveal ---------------------------------------------------------------- */

static void on_reveal(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_http_req_t *req = ud;
    if (err != 0) {
        ls_respond_err(req, err);
        return;
    }
    if (json_array_size(rows) != 1) {
        sp_http_respond_error(req, 404, "not_found", "no such destination");
        return;
    }
    const char *sealed = jstr_or_null(json_array_get(rows, 0), "stream_key_sealed");
    sp_buf_t b;
    sp_buf_init(&b, 4096);
    if (sealed == NULL || ls_unseal(ls_req_user(req), "destination_key", sealed, &b) != 0) {
        sp_buf_cleanup(&b);
        sp_http_respond_error(req, 500, "sealed_key_unreadable", "the stream key cannot be read");
        return;
    }
    sp_ulog(SP_LOG_INFO, "livestream", ls_req_user(req), "destination key revealed", "");
    sp_http_res_header(req, "Cache-Control", "no-store");
    sp_http_respond_json(req, 200, json_pack("{s:s}", "stream_key", b.p ? b.p : ""));
    if (b.p) sodium_memzero(b.p, b.len);
    sp_buf_cleanup(&b);
}

static void h_reveal(sp_http_req_t *req, void *ud)
{
    sp_livestream_t *ls = ud;
    const char *id = sp_http_req_param(req, "id");
    if (id == NULL || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such destination");
        return;
    }
    sp_store_query(ls->store,
                   "SELECT stream_key_sealed FROM destinations WHERE id = $1 AND user_id = $2",
                   json_pack("[s, s]", id, ls_req_user(req)), on_reveal, req);
}

void ls_destinations_register(sp_livestream_t *ls, sp_router_t *r)
{
    sp_route_opts_t auth = { .body_limit = 16384, .flags = SP_ROUTE_AUTH };
    sp_router_add(r, "GET", "/api/destinations", h_list, ls, &auth);
    sp_router_add(r, "POST", "/api/destinations", h_create, ls, &auth);
    sp_router_add(r, "PATCH", "/api/destinations/{id}", h_patch, ls, &auth);
    sp_router_add(r, "DELETE", "/api/destinations/{id}", h_delete, ls, &auth);
    sp_router_add(r, "POST", "/api/destinations/{id}/reveal", h_reveal, ls, &auth);
}
