/*
 * sp_auth_sessions: the user's own sessions (docs/auth.md "Sessions"): list the active ones,
 * revoke one, revoke all ("log out everywhere"). Declared in sp_auth.h. A revocation is one
 * UPDATE ... RETURNING (the ids revoked), then every revoked id is remembered as refused and
 * the sp_auth_on_revoke hook runs, so the sessions' open sockets close at once.
 */
#include "auth/sp_auth.h"

#include <string.h>

#include "auth/sp_auth_int.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

typedef struct {
    sp_auth_t *a;
    char user_id[SP_UUID_STRLEN];
    char sid[SP_UUID_STRLEN]; /* "" = all */
    int64_t now_ms;
    sp_auth_rows_cb rows_cb;
    sp_auth_count_cb count_cb;
    void *ud;
} sop_t;

static sop_t *sop_new(sp_auth_t *a, const char *user_id, void *ud)
{
    sop_t *o = sp_calloc(1, sizeof(*o));
    o->a = a;
    o->ud = ud;
    o->now_ms = sp_wall_ms();
    /* ids are UUIDs; anything else matches no row */
    memcpy(o->user_id, user_id && sp_uuid_valid(user_id) ? user_id : "-",
           user_id && sp_uuid_valid(user_id) ? SP_UUID_STRLEN : 2);
    return o;
}

static sp_auth_status_t store_err(int err)
{
    sp_warn("auth", "sessions: store error", "err=%s", sp_err_name(err));
    return SP_AUTH_STORE;
}

/* ---- list -------------------------------------------------------------------------------- */

static void listed(int err, json_t *rows, int64_t changes, void *ud)
{
    sop_t *o = ud;
    (void)changes;
    if (err)
        o->rows_cb(store_err(err), NULL, o->ud);
    else
        o->rows_cb(SP_AUTH_OK, rows, o->ud);
    sp_free(o);
}

void sp_auth_sessions_list(sp_auth_t *a, const char *user_id, sp_auth_rows_cb cb, void *ud)
{
    sop_t *o = sop_new(a, user_id, ud);
    o->rows_cb = cb;
    sp_store_query(sp_auth_store_(a),
                   "SELECT id, kind, user_agent, ip, created_at, last_used_at, expires_at "
                   "FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 "
                   "ORDER BY created_at DESC, id LIMIT 200",
                   json_pack("[s,I]", o->user_id, (json_int_t)o->now_ms), listed, o);
}

/* ---- revoke ------------------------------------------------------------------------------ */

static void revoked(int err, json_t *rows, int64_t changes, void *ud)
{
    sop_t *o = ud;
    (void)changes;
    if (err) {
        o->count_cb(store_err(err), 0, o->ud);
        sp_free(o);
        return;
    }
    size_t n = json_array_size(rows);
    for (size_t i = 0; i < n; i++) { /* refused from now on, without a query */
        json_t *r = json_array_get(rows, i);
        json_t *exp = json_object_get(r, "expires_at");
        sp_auth_deny_(o->a, json_string_value(json_object_get(r, "id")),
                      json_is_integer(exp) ? json_integer_value(exp) : 0);
    }
    if (n) {
        sp_info("auth", "sessions revoked", "user_id=%s n=%zu all=%s", o->user_id, n,
                o->sid[0] ? "false" : "true");
        sp_auth_notify_revoked_(o->a, o->user_id, o->sid[0] ? o->sid : NULL);
    }
    if (o->sid[0] && n == 0)
        o->count_cb(SP_AUTH_NOT_FOUND, 0, o->ud);
    else
        o->count_cb(SP_AUTH_OK, n, o->ud);
    sp_free(o);
}

void sp_auth_sessions_revoke(sp_auth_t *a, const char *user_id, const char *sid,
                             sp_auth_count_cb cb, void *ud)
{
    sop_t *o = sop_new(a, user_id, ud);
    o->count_cb = cb;
    if (sid) /* a malformed id matches nothing: 404 */
        memcpy(o->sid, sp_uuid_valid(sid) ? sid : "-", sp_uuid_valid(sid) ? SP_UUID_STRLEN : 2);
    json_t *p = sid ? json_pack("[I,s,s]", (json_int_t)o->now_ms, o->user_id, o->sid)
                    : json_pack("[I,s]", (json_int_t)o->now_ms, o->user_id);
    sp_store_query(sp_auth_store_(a),
                   sid ? "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND id = $3 "
                         "AND revoked_at IS NULL AND expires_at > $1 RETURNING id, expires_at"
                       : "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 "
                         "AND revoked_at IS NULL AND expires_at > $1 RETURNING id, expires_at",
                   p, revoked, o);
}
