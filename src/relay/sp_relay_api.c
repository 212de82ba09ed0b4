/* sp_relay_api: Cloudflare-compatible live input API, metrics and webhooks (see header). */
#include "relay/sp_relay_api.h"

#include <sodium.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "net/sp_curlm.h"
#include "core/sp_err.h"
#include "net/sp_http.h"
#include "core/sp_log.h"
#include "net/sp_metrics.h"
#include "net/sp_router.h"
#include "core/sp_time.h"
#include "relay/sp_slate.h"

#define BASE "/client/v4/accounts/{account}/stream/live_inputs"

typedef struct wh_s wh_t;

typedef struct {
    sp_http_server_t *http;
    sp_router_t *router;
    sp_curlm_t *curlm;
    wh_t *pending; /* webhooks in flight or waiting to be retried */
    bool closing;  /* stopped: free when pending empties */
} api_t;

#define WEBHOOK_ATTEMPTS 5 /* 1 + retries after 1, 2, 4, 8 s */

struct wh_s {
    sp_relay_t *relay;
    api_t *api;
    char *body;
    char uid[SP_RELAY_UID_LEN];
    char event[40];
    int attempt;
    bool timer_live;
    uv_timer_t timer;
    wh_t *next;
};

/* ---- envelope ---- */

static void respond_ok(sp_http_req_t *req, int status, json_t *result)
{
    json_t *env = json_object();
    json_object_set_new(env, "success", json_true());
    json_object_set_new(env, "errors", json_array());
    json_object_set_new(env, "messages", json_array());
    json_object_set_new(env, "result", result ? result : json_null());
    sp_http_respond_json(req, status, env);
}

static void respond_err(sp_http_req_t *req, int status, int code, const char *msg)
{
    json_t *env = json_object();
    json_t *errs = json_array();
    json_array_append_new(errs, json_pack("{s:i, s:s}", "code", code, "message", msg));
    json_object_set_new(env, "success", json_false());
    json_object_set_new(env, "errors", errs);
    json_object_set_new(env, "messages", json_array());
    json_object_set_new(env, "result", json_null());
    sp_http_respond_json(req, status, env);
}

static bool guard(sp_http_req_t *req, unsigned flags, void *ud)
{
    sp_relay_t *r = ud;
    const char *tok = r->cfg->relay_api_token;
    if (!(flags & SP_ROUTE_AUTH))
        return true;
    if (!tok || !tok[0]) {
        if (r->cfg->env == SP_ENV_PROD) {
            respond_err(req, 403, 10000, "Authentication error");
            return false;
        }
        return true; /* dev/test without a token */
    }
    const char *h = sp_http_req_header(req, "Authorization");
    size_t tl = strlen(tok);
    if (!h || strncmp(h, "Bearer ", 7) != 0) {
        respond_err(req, 400, 6003, "Invalid request headers");
        return false;
    }
    h += 7;
    if (strlen(h) != tl || sodium_memcmp(h, tok, tl) != 0) {
        respond_err(req, 403, 10000, "Authentication error");
        return false;
    }
    return true;
}

/* ---- JSON views ---- */

static json_t *input_status(const sp_relay_input_t *in)
{
    if (in->state == 0)
        return json_null();
    static const char *states[] = { "", "connected", "disconnected", "errored" };
    char entered[40], seen[40];
    sp_time_rfc3339(in->state_since_ms, entered, sizeof(entered));
    sp_time_rfc3339(in->state == 1 ? sp_wall_ms() : in->state_since_ms, seen, sizeof(seen));
    json_t *cur = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ingestProtocol", "rtmp", "reason",
                            in->reason, "state", states[in->state], "statusEnteredAt", entered,
                            "statusLastSeen", seen);
    json_t *st = json_object();
    json_object_set_new(st, "current", cur);
    json_object_set_new(st, "history", json_array());
    return st;
}

static json_t *input_stats(const sp_relay_input_t *in)
{
    if (!in->publisher)
        return json_null();
    const sp_input_stats_t *s = &in->st;
    return json_pack("{s:f, s:f, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I}", "bitrateKbps",
                     s->bitrate_kbps, "fps", s->fps > 0 ? s->fps : s->meta_fps, "videoCodec",
                     s->vcodec, "audioCodec", s->acodec, "width", s->width, "height", s->height,
                     "keyframeIntervalMs", (int)s->key_interval_ms, "bytesIn",
                     (json_int_t)s->bytes_in, "videoFrames", (json_int_t)s->video_frames,
                     "audioFrames", (json_int_t)s->audio_frames);
}

static json_t *output_json(const sp_relay_output_t *o)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s*, s:I, s:I, s:I, s:I}", "uid", o->uid, "url",
                     o->url, "streamKey", o->stream_key, "enabled", o->enabled, "status",
                     sp_relay_out_state_name(o->state), "last_error",
                     o->last_error[0] ? o->last_error : NULL, "bytes", (json_int_t)o->bytes,
                     "reconnects", (json_int_t)o->reconnects, "dropped_gops",
                     (json_int_t)o->dropped_gops, "dropped_frames", (json_int_t)o->dropped_tags);
}

/* Disconnect protection (relay extension): the slate the outputs are on, or null. */
static json_t *slate_json(const sp_relay_input_t *in)
{
    if (!in->slate)
        return json_null();
    return json_pack("{s:b, s:i, s:i, s:f, s:I, s:I}", "active", 1, "width", in->slate->width,
                     "height", in->slate->height, "fps", in->slate->fps, "elapsedMs",
                     (json_int_t)(sp_mono_ms() - in->slate_since_ms), "shown",
                     (json_int_t)in->slates);
}

static json_t *input_json(sp_relay_t *r, const sp_relay_input_t *in, bool full)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:O, s:b, s:n}", "uid", in->uid, "created",
                          in->created, "modified", in->modified, "meta", in->meta, "enabled",
                          in->enabled, "deleteRecordingAfterDays");
    json_object_set_new(j, "disconnectProtection", json_boolean(in->protect));
    if (!full)
        return j;
    json_object_set_new(j, "slate", slate_json(in));
    char url[1100];
    const char *base = r->cfg->relay_public_rtmp_url ? r->cfg->relay_public_rtmp_url
                                                     : "rtmp://127.0.0.1:1935/live";
    size_t bl = strlen(base);
    snprintf(url, sizeof(url), "%s%s", base, bl && base[bl - 1] == '/' ? "" : "/");
    json_object_set_new(j, "recording",
                        json_pack("{s:s, s:i, s:b, s:n, s:b}", "mode", "off", "timeoutSeconds", 0,
                                  "requireSignedURLs", 0, "allowedOrigins", "hideLiveViewerCount",
                                  0));
    json_object_set_new(j, "rtmps", json_pack("{s:s, s:s}", "url", url, "streamKey", in->key));
    json_object_set_new(j, "status", input_status(in));
    json_object_set_new(j, "stats", input_stats(in));
    /* relay extension: the input health (docs/relay.md "Input health"); null while no
       publisher is connected. Cloudflare has no such field. */
    json_object_set_new(j, "health", sp_relay_health_json(in, sp_mono_ms()));
    return j;
}

static sp_relay_input_t *input_or_404(sp_relay_t *r, sp_http_req_t *req)
{
    const char *uid = sp_http_req_param(req, "uid");
    sp_relay_input_t *in = uid ? sp_relay_find_input(r, uid) : NULL;
    if (!in)
        respond_err(req, 404, 10003, "Live input not found");
    return in;
}

static void touch(sp_relay_input_t *in)
{
    sp_time_rfc3339(sp_wall_ms(), in->modified, sizeof(in->modified));
}

/* ---- live inputs ---- */

static void h_input_create(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    json_t *body = NULL;
    const sp_buf_t *raw = sp_http_req_body(req);
    if (raw && raw->len > 0) {
        body = sp_http_req_json_or_400(req);
        if (!body)
            return;
    }
    if (r->n_inputs >= (size_t)r->cfg->relay_max_inputs) {
        json_decref(body);
        respond_err(req, 429, 10011, "Live input limit reached");
        return;
    }
    /* relay extension: {uid, streamKey} restores an input the relay lost (its state file was
       gone at start), so the encoder's key keeps working; Cloudflare ignores these fields */
    json_t *juid = json_object_get(body, "uid");
    json_t *jkey = json_object_get(body, "streamKey");
    const char *ruid = json_string_value(juid);
    const char *rkey = json_string_value(jkey);
    if ((juid || jkey) && !sp_relay_restore_ids_ok(ruid, rkey)) {
        json_decref(body);
        respond_err(req, 400, 10005, "uid (32 hex) and streamKey (16-79 of A-Za-z0-9_-) "
                                     "are required together to restore a live input");
        return;
    }
    if (ruid) {
        bool clash = sp_relay_find_input(r, ruid) != NULL;
        for (sp_relay_input_t *x = r->inputs; x && !clash; x = x->next)
            if (strcmp(x->key, rkey) == 0) clash = true;
        if (clash) {
            json_decref(body);
            respond_err(req, 409, 10013, "a live input with this uid or stream key exists");
            return;
        }
    }
    json_t *meta = json_object_get(body, "meta");
    json_t *en = json_object_get(body, "enabled");
    sp_relay_input_t *in = sp_relay_input_create(r, json_is_object(meta) ? meta : NULL,
                                                 en ? json_is_true(en) : true);
    json_t *dp = json_object_get(body, "disconnectProtection");
    if (json_is_boolean(dp))
        in->protect = json_is_true(dp);
    if (ruid) {
        snprintf(in->uid, sizeof(in->uid), "%s", ruid);
        snprintf(in->key, sizeof(in->key), "%s", rkey);
    }
    json_decref(body);
    sp_info("relay", ruid ? "live input restored" : "live input created", "input=%s", in->uid);
    sp_relay_save(r);
    respond_ok(req, 200, input_json(r, in, true));
}

static void h_input_list(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    json_t *arr = json_array();
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        json_array_append_new(arr, input_json(r, in, false));
    respond_ok(req, 200, json_pack("{s:o, s:i, s:I}", "liveInputs", arr, "range", 0, "total",
                                   (json_int_t)r->n_inputs));
}

static void h_input_get(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    if (in)
        respond_ok(req, 200, input_json(r, in, true));
}

static void h_input_put(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    if (!in)
        return;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    json_t *meta = json_object_get(body, "meta");
    if (json_is_object(meta)) {
        json_decref(in->meta);
        in->meta = json_incref(meta);
    }
    json_t *en = json_object_get(body, "enabled");
    if (json_is_boolean(en)) {
        in->enabled = json_is_true(en);
        if (!in->enabled && in->publisher)
            sp_ingest_kick(in->publisher, "live input disabled");
        if (!in->enabled)
            sp_relay_input_gone(in, "disabled"); /* off the slate */
    }
    json_t *dp = json_object_get(body, "disconnectProtection");
    if (json_is_boolean(dp)) {
        in->protect = json_is_true(dp);
        if (!in->protect && !in->publisher)
            sp_relay_input_gone(in, "protection_off"); /* off the slate: outputs close */
    }
    json_decref(body);
    touch(in);
    sp_relay_save(r);
    respond_ok(req, 200, input_json(r, in, true));
}

static void h_input_delete(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    if (!in)
        return;
    sp_info("relay", "live input deleted", "input=%s", in->uid);
    sp_relay_input_delete(r, in);
    sp_relay_save(r);
    respond_ok(req, 200, NULL);
}

/* relay extension: the live input as HTTP-FLV (sp_relay_preview.c) */
static void h_input_preview(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    if (!in)
        return;
    int rc = sp_relay_preview_start(in, req);
    if (rc == SP_ENOTFOUND)
        respond_err(req, 404, 10003, "Live input not connected");
    else if (rc == SP_ELIMIT)
        respond_err(req, 429, 10011, "Too many preview viewers for this live input");
    else if (rc != 0)
        respond_err(req, 503, 10002, "Preview unavailable");
}

/* ---- outputs ---- */

static sp_relay_output_t *output_or_404(sp_relay_input_t *in, sp_http_req_t *req)
{
    const char *ouid = sp_http_req_param(req, "output");
    for (sp_relay_output_t *o = in->outputs; ouid && o; o = o->next)
        if (strcmp(o->uid, ouid) == 0)
            return o;
    respond_err(req, 404, 10003, "Output not found");
    return NULL;
}

static void h_out_list(sp_http_req_t *req, void *ud)
{
    sp_relay_input_t *in = input_or_404(ud, req);
    if (!in)
        return;
    json_t *arr = json_array();
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        json_array_append_new(arr, output_json(o));
    respond_ok(req, 200, arr);
}

static void h_out_create(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    if (!in)
        return;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    const char *url = json_string_value(json_object_get(body, "url"));
    const char *key = json_string_value(json_object_get(body, "streamKey"));
    json_t *en = json_object_get(body, "enabled");
    if (!url || (strncmp(url, "rtmp://", 7) != 0 && strncmp(url, "rtmps://", 8) != 0) ||
        strlen(url) > 1000 || !key || strlen(key) > 1000) {
        json_decref(body);
        respond_err(req, 400, 10005, "url (rtmp:// or rtmps://) and streamKey are required");
        return;
    }
    if (in->n_outputs >= SP_RELAY_MAX_OUTPUTS) {
        json_decref(body);
        respond_err(req, 400, 10006, "Too many outputs for this live input (max 128)");
        return;
    }
    sp_relay_output_t *o = sp_relay_output_add(in, url, key, en ? json_is_true(en) : true, NULL);
    json_decref(body);
    sp_info("relay", "output created", "output=%s input=%s", o->uid, in->uid);
    sp_relay_save(r);
    respond_ok(req, 200, output_json(o));
}

static void h_out_get(sp_http_req_t *req, void *ud)
{
    sp_relay_input_t *in = input_or_404(ud, req);
    sp_relay_output_t *o = in ? output_or_404(in, req) : NULL;
    if (o)
        respond_ok(req, 200, output_json(o));
}

static void h_out_put(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    sp_relay_output_t *o = in ? output_or_404(in, req) : NULL;
    if (!o)
        return;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    json_t *en = json_object_get(body, "enabled");
    if (!json_is_boolean(en)) {
        json_decref(body);
        respond_err(req, 400, 10005, "enabled (boolean) is required");
        return;
    }
    sp_relay_output_set_enabled(o, json_is_true(en));
    json_decref(body);
    sp_relay_save(r);
    respond_ok(req, 200, output_json(o));
}

static void h_out_delete(sp_http_req_t *req, void *ud)
{
    sp_relay_t *r = ud;
    sp_relay_input_t *in = input_or_404(r, req);
    sp_relay_output_t *o = in ? output_or_404(in, req) : NULL;
    if (!o)
        return;
    sp_relay_output_delete(o);
    sp_relay_save(r);
    respond_ok(req, 200, NULL);
}

/* ---- metrics ---- */

static void render_metrics(sp_buf_t *b, void *ud)
{
    sp_relay_t *r = ud;
    size_t live = 0, by_state[4] = { 0 };
    for (sp_relay_input_t *in = r->inputs; in; in = in->next) {
        if (in->publisher)
            live++;
        for (sp_relay_output_t *o = in->outputs; o; o = o->next)
            by_state[o->state]++;
    }
    sp_buf_appendf(b, "# TYPE streampai_relay_inputs gauge\nstreampai_relay_inputs %zu\n",
                   r->n_inputs);
    sp_buf_appendf(b, "# TYPE streampai_relay_inputs_live gauge\nstreampai_relay_inputs_live %zu\n",
                   live);
    sp_buf_appendf(b, "# TYPE streampai_relay_outputs gauge\n");
    for (int s = 0; s < 4; s++)
        sp_buf_appendf(b, "streampai_relay_outputs{state=\"%s\"} %zu\n",
                       sp_relay_out_state_name((sp_relay_out_state_t)s), by_state[s]);
    sp_buf_appendf(
        b,
        "# TYPE streampai_relay_bytes_in_total counter\nstreampai_relay_bytes_in_total %llu\n"
        "# TYPE streampai_relay_bytes_out_total counter\nstreampai_relay_bytes_out_total %llu\n"
        "# TYPE streampai_relay_dropped_gops_total counter\nstreampai_relay_dropped_gops_total "
        "%llu\n"
        "# TYPE streampai_relay_dropped_frames_total counter\nstreampai_relay_dropped_frames_total "
        "%llu\n"
        "# TYPE streampai_relay_reconnects_total counter\nstreampai_relay_reconnects_total %llu\n"
        "# TYPE streampai_relay_ingest_rejected_total "
        "counter\nstreampai_relay_ingest_rejected_total %llu\n",
        (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
        (unsigned long long)r->dropped_gops, (unsigned long long)r->dropped_tags,
        (unsigned long long)r->reconnects, (unsigned long long)r->ingest_rejected);
}

static void h_metrics(sp_http_req_t *req, void *ud)
{
    (void)ud;
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_metrics_render(&b);
    sp_http_respond(req, 200, "text/plain; version=0.0.4", b.p, b.len);
    sp_buf_cleanup(&b);
}

/* ---- webhooks ---- */

static void wh_unlink_free(wh_t *w)
{
    api_t *a = w->api;
    for (wh_t **pp = &a->pending; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    sp_free(w->body);
    sp_free(w);
    if (a->closing && !a->pending)
        sp_free(a);
}

static void wh_timer_closed(uv_handle_t *h)
{
    wh_unlink_free(h->data);
}

static void wh_send(wh_t *w);

static void wh_retry(uv_timer_t *t)
{
    wh_send(t->data);
}

static void on_webhook_done(const sp_curlm_response_t *res, void *ud)
{
    wh_t *w = ud;
    bool ok = res->err == 0 && res->status >= 200 && res->status < 300;
    bool retryable = !ok && res->err != SP_ECANCELED && !w->relay->stopping &&
                     (res->err != 0 || res->status >= 500 || res->status == 429) &&
                     w->attempt < WEBHOOK_ATTEMPTS;
    if (ok) {
        sp_debug("relay", "webhook delivered", "input=%s event=%s status=%ld", w->uid, w->event,
                 res->status);
    } else {
        sp_warn("relay", "webhook failed", "input=%s event=%s attempt=%d status=%ld err=\"%s\"%s",
                w->uid, w->event, w->attempt, res->status, res->errmsg,
                retryable ? " retry=1" : "");
    }
    if (retryable) {
        if (!w->timer_live) {
            uv_timer_init(w->relay->loop, &w->timer);
            w->timer.data = w;
            w->timer_live = true;
        }
        uv_timer_start(&w->timer, wh_retry, 1000ull << (w->attempt - 1), 0);
        return;
    }
    if (w->timer_live)
        uv_close((uv_handle_t *)&w->timer, wh_timer_closed);
    else
        wh_unlink_free(w);
}

static void wh_send(wh_t *w)
{
    sp_relay_t *r = w->relay;
    char auth[600] = "";
    const char *headers[3] = { "Content-Type: application/json", NULL, NULL };
    if (r->cfg->cloudflare_webhook_secret && r->cfg->cloudflare_webhook_secret[0]) {
        snprintf(auth, sizeof(auth), "cf-webhook-auth: %s", r->cfg->cloudflare_webhook_secret);
        headers[1] = auth;
    }
    sp_curlm_request_t req = { .method = "POST", .url = r->cfg->relay_webhook_url,
                               .headers = headers, .body = w->body, .body_len = strlen(w->body),
                               .timeout_ms = 5000, .max_response_bytes = 65536 };
    w->attempt++;
    int rc = sp_curlm_request(w->api->curlm, &req, on_webhook_done, w);
    sodium_memzero(auth, sizeof(auth));
    if (rc != 0) {
        sp_warn("relay", "webhook not sent", "input=%s event=%s err=%s", w->uid, w->event,
                sp_err_name(rc));
        if (w->timer_live)
            uv_close((uv_handle_t *)&w->timer, wh_timer_closed);
        else
            wh_unlink_free(w);
    }
}

json_t *sp_relay_webhook_body(const char *input_uid, const char *event, int64_t wall_ms,
                              const char *err_code, const char *err_msg, const char *vcodec,
                              const char *acodec)
{
    char ts[40];
    sp_time_rfc3339(wall_ms, ts, sizeof(ts));
    char text[512];
    snprintf(text, sizeof(text),
             "Notification type: Stream Live Input\nInput ID: %s\nEvent type: %s\nUpdated at: %s",
             input_uid, event, ts);
    json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "notification_name", "Stream Live Input",
                             "input_id", input_uid, "event_type", event, "updated_at", ts);
    if (err_code)
        json_object_set_new(data, "live_input_errored",
                            json_pack("{s:{s:s, s:s}, s:s, s:s}", "error", "code", err_code,
                                      "message", err_msg ? err_msg : "", "video_codec",
                                      vcodec ? vcodec : "", "audio_codec", acodec ? acodec : ""));
    return json_pack("{s:s, s:s, s:o, s:I}", "name", "Streampai relay", "text", text, "data", data,
                     "ts", (json_int_t)(wall_ms / 1000));
}

void sp_relay_webhook(sp_relay_t *r, sp_relay_input_t *in, const char *event, const char *err_code,
                      const char *err_msg)
{
    api_t *a = r->api;
    if (!a || !a->curlm || !r->cfg)
        return;
    const char *url = r->cfg->relay_webhook_url;
    if (!url || !url[0])
        return;
    json_t *body = sp_relay_webhook_body(in->uid, event, sp_wall_ms(), err_code, err_msg,
                                         in->st.vcodec, in->st.acodec);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    wh_t *w = sp_calloc(1, sizeof(*w));
    w->relay = r;
    w->api = a;
    w->body = sp_strdup(s);
    free(s);
    snprintf(w->uid, sizeof(w->uid), "%s", in->uid);
    snprintf(w->event, sizeof(w->event), "%s", event);
    w->next = a->pending;
    a->pending = w;
    sp_info("relay", "webhook", "input=%s event=%s", in->uid, event);
    wh_send(w);
}

/* ---- lifecycle ---- */

int sp_relay_api_start(sp_relay_t *r)
{
    api_t *a = sp_calloc(1, sizeof(*a));
    sp_route_opts_t auth = { .flags = SP_ROUTE_AUTH | SP_ROUTE_NO_CSRF };
    sp_route_opts_t pub = { .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_ACCESSLOG };
    a->router = sp_router_new();
    sp_router_set_guard(a->router, guard, r);
    sp_router_add(a->router, "POST", BASE, h_input_create, r, &auth);
    sp_router_add(a->router, "GET", BASE, h_input_list, r, &auth);
    sp_router_add(a->router, "GET", BASE "/{uid}", h_input_get, r, &auth);
    sp_router_add(a->router, "PUT", BASE "/{uid}", h_input_put, r, &auth);
    sp_router_add(a->router, "DELETE", BASE "/{uid}", h_input_delete, r, &auth);
    sp_router_add(a->router, "GET", BASE "/{uid}/preview.flv", h_input_preview, r, &auth);
    sp_router_add(a->router, "GET", BASE "/{uid}/outputs", h_out_list, r, &auth);
    sp_router_add(a->router, "POST", BASE "/{uid}/outputs", h_out_create, r, &auth);
    sp_router_add(a->router, "GET", BASE "/{uid}/outputs/{output}", h_out_get, r, &auth);
    sp_router_add(a->router, "PUT", BASE "/{uid}/outputs/{output}", h_out_put, r, &auth);
    sp_router_add(a->router, "DELETE", BASE "/{uid}/outputs/{output}", h_out_delete, r, &auth);
    sp_router_add(a->router, "GET", "/metrics", h_metrics, r, &pub);
    const sp_config_t *cfg = r->cfg;
    sp_http_opts_t ho = {
        .listen = cfg->relay_api_listen ? cfg->relay_api_listen : "127.0.0.1:8788",
        .max_connections = 256,
        .max_header_bytes = 16384,
        .default_body_limit = 65536,
        .header_timeout_ms = cfg->http_header_timeout > 0 ? (uint64_t)cfg->http_header_timeout
                                                          : 10000,
        .idle_timeout_ms = cfg->http_idle_timeout > 0 ? (uint64_t)cfg->http_idle_timeout : 60000,
        .web_dir = NULL,
        .server_name = "relay",
    };
    a->http = sp_http_server_new(r->loop, &ho, a->router);
    if (sp_http_server_listen(a->http) < 0) {
        sp_http_server_free(a->http);
        sp_router_free(a->router);
        sp_free(a);
        return SP_EIO;
    }
    a->curlm = sp_curlm_new(r->loop);
    sp_metrics_register(render_metrics, r);
    r->api = a;
    return 0;
}

void sp_relay_api_stop(sp_relay_t *r)
{
    api_t *a = r->api;
    if (!a)
        return;
    sp_metrics_unregister(render_metrics, r);
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        sp_relay_preview_close_all(in);
    sp_http_server_free(a->http);
    sp_router_free(a->router);
    /* requests in flight complete with SP_ECANCELED (and free themselves) */
    sp_curlm_t *m = a->curlm;
    sp_curlm_free(m);
    a->curlm = NULL;
    /* webhooks waiting for a retry: close their timers; memory goes in the close callbacks */
    for (wh_t *w = a->pending; w; w = w->next)
        if (w->timer_live && !uv_is_closing((uv_handle_t *)&w->timer))
            uv_close((uv_handle_t *)&w->timer, wh_timer_closed);
    r->api = NULL;
    /* a is freed once the last pending webhook is gone */
    if (!a->pending) {
        sp_free(a);
    } else {
        a->http = NULL;
        a->router = NULL;
        a->closing = true;
    }
}
