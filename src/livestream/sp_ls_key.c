/*
 * sp_ls_key: "regenerate my stream key" (POST /api/stream/key/regenerate).
 * A live input's key cannot be changed in place on Cloudflare Stream, so the user gets a new
 * live input (new uid, new key) and the old one is deleted from the media service before the
 * answer: the old key is refused at once (the relay kicks a publisher still using it and
 * refuses new ones; Cloudflare forgets the input). Refused while a stream is live or ending
 * (the outputs hang off the input); while the stream is only ready (the encoder connected
 * with the old key), the input counts as disconnected afterwards.
 */
#include "livestream/sp_livestream.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "livestream/sp_livestream_internal.h"

typedef struct {
    sp_ls_manager_t *m;
    sp_ls_result_cb cb;
    void *ud;
    char *old_uid;
    bool was_ready;
} regen_t;

/* The creation is over: whoever waited for the input (sp_ls_input_ensure) goes on. */
static void creating_done(sp_ls_manager_t *m)
{
    m->input_creating = false;
    sp_ls_mgr_fn w = m->input_waiter;
    m->input_waiter = NULL;
    if (w && !m->stopped) w(m);
}

static void on_orphan_deleted(int err, const char *errmsg, void *ud)
{
    (void)err;
    (void)errmsg;
    (void)ud;
}

static void regen_free(regen_t *c)
{
    sp_ls_unref(c->m);
    sp_free(c->old_uid);
    sp_free(c);
}

static void answer(regen_t *c, bool revoked)
{
    sp_ls_manager_t *m = c->m;
    json_t *body = json_pack("{s:{s:s?, s:s?, s:s?, s:s}, s:b}", "input", "input_uid", m->input_uid,
                             "rtmp_url", m->rtmp_url, "stream_key", m->stream_key, "status",
                             sp_input_status_name(m->input_status), "old_key_revoked", revoked);
    sp_ls_ok(c->cb, c->ud, body);
    regen_free(c);
}

static void on_old_deleted(int err, const char *errmsg, void *ud)
{
    regen_t *c = ud;
    sp_ls_manager_t *m = c->m;
    /* already gone on the media service is as good as deleted */
    bool revoked = err == 0 || err == SP_ENOTFOUND;
    sp_ulog(revoked ? SP_LOG_INFO : SP_LOG_WARN, "livestream", m->user_id,
            "stream key regenerated", "old_input=%s new_input=%s old_deleted=%s msg=\"%s\"",
            c->old_uid ? c->old_uid : "", m->input_uid ? m->input_uid : "",
            revoked ? "yes" : "no", errmsg ? errmsg : "");
    creating_done(m);
    if (!m->stopped && c->was_ready) {
        /* the encoder (old key) is gone: ready -> offline */
        sp_ls_apply_input(m, SP_INPUT_DISCONNECTED, sp_wall_ms(), "key_regenerated", NULL,
                          NULL);
    } else if (!m->stopped) {
        /* "never connected" is stored too: a restart must not bring back the old status */
        sp_ls_persist(m, NULL, NULL);
        sp_ls_publish_state(m, "input_created");
    }
    answer(c, revoked);
}

static void delete_old(regen_t *c)
{
    sp_livestream_t *ls = c->m->ls;
    int rc = SP_EUNAVAIL;
    if (c->old_uid && ls->media.ops->delete_input)
        rc = ls->media.ops->delete_input(ls->media.ctx, c->old_uid, on_old_deleted, c);
    else if (c->old_uid == NULL)
        rc = SP_ENOTFOUND; /* there was no input: nothing to revoke */
    if (rc != 0) on_old_deleted(rc, sp_strerror(rc), c);
}

static void on_row(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    regen_t *c = ud;
    if (err != 0)
        sp_ulog(SP_LOG_ERROR, "livestream", c->m->user_id, "live_inputs update failed",
                "err=%s", sp_err_name(err));
    delete_old(c);
}

static void on_new_input(int err, const char *errmsg, const sp_ls_input_t *in, void *ud)
{
    regen_t *c = ud;
    sp_ls_manager_t *m = c->m;
    sp_livestream_t *ls = m->ls;
    if (err == 0 && in && in->uid && m->stopped) {
        /* the manager went away meanwhile: the old input stays, the new one goes */
        if (ls->media.ops->delete_input)
            ls->media.ops->delete_input(ls->media.ctx, in->uid, on_orphan_deleted, NULL);
        m->input_creating = false;
        sp_ls_fail(c->cb, c->ud, SP_EUNAVAIL, "unavailable", "try again");
        regen_free(c);
        return;
    }
    if (err != 0 || in == NULL || in->uid == NULL || in->stream_key == NULL) {
        creating_done(m);
        sp_ulog(SP_LOG_WARN, "livestream", m->user_id, "stream key regeneration failed",
                "err=%s msg=\"%s\"", sp_err_name(err ? err : SP_EPROTO), errmsg ? errmsg : "");
        sp_ls_fail(c->cb, c->ud, SP_EUPSTREAM, "media_error",
                   "the media service could not create a new key; the old key still works");
        regen_free(c);
        return;
    }
    c->was_ready = m->ss.state == SP_SS_READY;
    sp_ls_mgr_set_input(m, in->uid, in->rtmp_url, in->stream_key);
    m->input_status = SP_INPUT_NONE;
    m->input_known = SP_INPUT_NONE; /* the new key has never been used */
    m->input_known_at = 0;
    sp_ls_store_input(m, in, true, on_row, c);
}

void sp_ls_manager_regenerate_key(sp_ls_manager_t *m, sp_ls_result_cb cb, void *ud)
{
    sp_livestream_t *ls = m->ls;
    if (!ls->has_media) {
        sp_ls_fail(cb, ud, SP_EUNAVAIL, "no_media", "no media service is configured");
        return;
    }
    if (m->ss.state == SP_SS_STREAMING || m->ss.state == SP_SS_ENDING) {
        sp_ls_fail(cb, ud, SP_ECONFLICT, "live",
                   "stop the stream before regenerating the stream key");
        return;
    }
    if (m->input_creating || m->input_restoring) {
        sp_ls_fail(cb, ud, SP_ECONFLICT, "busy", "the live input is being set up; try again");
        return;
    }
    regen_t *c = sp_calloc(1, sizeof(*c));
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    c->old_uid = m->input_uid ? sp_strdup(m->input_uid) : NULL;
    sp_ls_ref(m);
    m->input_creating = true; /* no second creation (ensure/regenerate) meanwhile */
    int rc = ls->media.ops->create_input(ls->media.ctx, m->user_id, on_new_input, c);
    if (rc != 0) on_new_input(rc, sp_strerror(rc), NULL, c);
}
