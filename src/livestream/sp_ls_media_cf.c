/*
 * sp_ls_media_cf: the livestream media vtable (sp_ls_media.h) over the
 * Cloudflare Stream client (src/media/sp_cloudflare.h). Start/stop work is
 * INTERACTIVE, cleanup and reconciliation NORMAL, monitoring POLL (first to
 * be refused when the call budget runs low).
 */
#include "livestream/sp_ls_media_cf.h"
#include "core/sp_time.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "media/sp_cf_webhook.h"
#include "media/sp_cloudflare.h"
#include "core/sp_err.h"
#include "livestream/sp_ls_media.h"

typedef struct {
    void *cb;
    void *ud;
} call_t;

static call_t *call_new(void *cb, void *ud)
{
    call_t *c = sp_malloc(sizeof(*c));
    c->cb = cb;
    c->ud = ud;
    return c;
}

static void errmsg(const sp_cf_result_t *r, char *out, size_t cap)
{
    if (r->err == 0) {
        out[0] = '\0';
        return;
    }
    if (r->cf_code)
        snprintf(out, cap, "cloudflare %d: %s", r->cf_code, r->cf_message ? r->cf_message : "");
    else
        snprintf(out, cap, "%s", r->cf_message && r->cf_message[0] ? r->cf_message
                                                                    : sp_strerror(r->err));
}

static sp_input_status_t map_state(const sp_cf_input_t *in)
{
    if (!in->ever_connected) return SP_INPUT_NONE;
    if (strcmp(in->state, "connected") == 0) return SP_INPUT_CONNECTED;
    if (strcmp(in->state, "disconnected") == 0) return SP_INPUT_DISCONNECTED;
    if (strcmp(in->state, "errored") == 0) return SP_INPUT_ERRORED;
    return SP_INPUT_UNKNOWN;
}

static void on_input(const sp_cf_result_t *r, const sp_cf_input_t *in, void *ud)
{
    call_t *c = ud;
    sp_ls_input_cb cb = (sp_ls_input_cb)c->cb;
    char msg[320];
    errmsg(r, msg, sizeof(msg));
    if (r->err == 0 && in != NULL) {
        int64_t since = 0;
        if (in->status_entered_at[0] &&
            sp_time_parse_rfc3339(in->status_entered_at, strlen(in->status_entered_at),
                                     &since) != 0)
            since = 0;
        sp_ls_input_t li = { in->uid, in->rtmps_url, in->stream_key, map_state(in), since,
                             in->health, in->recording };
        cb(0, msg, &li, c->ud);
    } else {
        cb(r->err ? r->err : SP_EPROTO, msg, NULL, c->ud);
    }
    sp_free(c);
}

/* Creates the user's input, or re-creates it with its known uid and key (uid != NULL). */
static int post_input(void *ctx, const char *user_id, const char *uid, const char *key,
                      sp_ls_input_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    char name[96];
    snprintf(name, sizeof(name), "streampai:%s", user_id);
    int rc = uid ? sp_cloudflare_restore_input(ctx, name, user_id, uid, key, SP_CF_PRIO_NORMAL,
                                               on_input, c)
                 : sp_cloudflare_create_input(ctx, name, user_id, SP_CF_PRIO_NORMAL, on_input, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static int create_input(void *ctx, const char *user_id, sp_ls_input_cb cb, void *ud)
{
    return post_input(ctx, user_id, NULL, NULL, cb, ud);
}

static int restore_input(void *ctx, const char *user_id, const char *uid, const char *key,
                         sp_ls_input_cb cb, void *ud)
{
    return post_input(ctx, user_id, uid, key, cb, ud);
}

static int get_input(void *ctx, const char *uid, sp_ls_input_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_get_input(ctx, uid, SP_CF_PRIO_POLL, on_input, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static void on_output(const sp_cf_result_t *r, const sp_cf_output_t *out, void *ud)
{
    call_t *c = ud;
    sp_ls_output_cb cb = (sp_ls_output_cb)c->cb;
    char msg[320];
    errmsg(r, msg, sizeof(msg));
    if (r->err == 0 && out != NULL) {
        sp_ls_output_t o = { out->uid, out->url, out->stream_key, NULL, NULL, -1, -1 };
        cb(0, msg, &o, c->ud);
    } else {
        cb(r->err ? r->err : SP_EPROTO, msg, NULL, c->ud);
    }
    sp_free(c);
}

static int create_output(void *ctx, const char *input_uid, const char *url, const char *key,
                         sp_ls_output_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_create_output(ctx, input_uid, url, key, true, SP_CF_PRIO_INTERACTIVE,
                                         on_output, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static void on_list(const sp_cf_result_t *r, const sp_cf_output_t *outs, size_t n, void *ud)
{
    call_t *c = ud;
    sp_ls_list_cb cb = (sp_ls_list_cb)c->cb;
    char msg[320];
    errmsg(r, msg, sizeof(msg));
    if (r->err != 0) {
        cb(r->err, msg, NULL, 0, c->ud);
    } else {
        sp_ls_output_t *v = sp_calloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++)
            v[i] = (sp_ls_output_t){
                outs[i].uid, outs[i].url, outs[i].stream_key,
                outs[i].has_health ? outs[i].status : NULL,
                outs[i].has_health && outs[i].last_error[0] ? outs[i].last_error : NULL,
                outs[i].bytes, outs[i].reconnects,
            };
        cb(0, msg, v, n, c->ud);
        sp_free(v);
    }
    sp_free(c);
}

static int list_outputs(void *ctx, const char *input_uid, sp_ls_list_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_list_outputs(ctx, input_uid, SP_CF_PRIO_NORMAL, on_list, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static int list_outputs_poll(void *ctx, const char *input_uid, sp_ls_list_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_list_outputs(ctx, input_uid, SP_CF_PRIO_POLL, on_list, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static void on_done(const sp_cf_result_t *r, void *ud)
{
    call_t *c = ud;
    sp_ls_done_cb cb = (sp_ls_done_cb)c->cb;
    char msg[320];
    errmsg(r, msg, sizeof(msg));
    cb(r->err, msg, c->ud);
    sp_free(c);
}

static int delete_output(void *ctx, const char *input_uid, const char *output_uid,
                         sp_ls_done_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_delete_output(ctx, input_uid, output_uid, SP_CF_PRIO_NORMAL, on_done,
                                         c);
    if (rc != 0) sp_free(c);
    return rc;
}

static int delete_input(void *ctx, const char *input_uid, sp_ls_done_cb cb, void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_delete_input(ctx, input_uid, SP_CF_PRIO_INTERACTIVE, on_done, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static int set_input_protection(void *ctx, const char *input_uid, bool on, sp_ls_done_cb cb,
                                void *ud)
{
    call_t *c = call_new((void *)cb, ud);
    int rc = sp_cloudflare_set_input_protection(ctx, input_uid, on, on_done, c);
    if (rc != 0) sp_free(c);
    return rc;
}

static bool poll_allowed(void *ctx)
{
    (void)ctx;
    return true; /* the client refuses POLL calls itself (SP_ERATELIMIT) */
}

static bool degraded(void *ctx)
{
    return strcmp(sp_cloudflare_breaker_state(ctx), "open") == 0;
}

static const sp_ls_media_ops_t cf_ops = {
    .provider = "cloudflare",
    .create_input = create_input,
    .get_input = get_input,
    .create_output = create_output,
    .list_outputs = list_outputs,
    .list_outputs_poll = list_outputs_poll,
    .delete_output = delete_output,
    .delete_input = delete_input,
    .poll_allowed = poll_allowed,
    .degraded = degraded,
};

/* the same client against the built-in relay (MEDIA_BACKEND=local): lost inputs restorable */
static const sp_ls_media_ops_t relay_ops = {
    .provider = "cloudflare",
    .create_input = create_input,
    .restore_input = restore_input,
    .set_input_protection = set_input_protection,
    .get_input = get_input,
    .create_output = create_output,
    .list_outputs = list_outputs,
    .list_outputs_poll = list_outputs_poll,
    .delete_output = delete_output,
    .delete_input = delete_input,
    .poll_allowed = poll_allowed,
    .degraded = degraded,
};

void sp_ls_media_cloudflare(sp_cloudflare_t *cf, sp_ls_media_t *out)
{
    out->ops = &cf_ops;
    out->ctx = cf;
}

void sp_ls_media_relay(sp_cloudflare_t *cf, sp_ls_media_t *out)
{
    out->ops = &relay_ops;
    out->ctx = cf;
}
