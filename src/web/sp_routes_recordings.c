/*
 * sp_routes_recordings: a user's recordings (docs/recordings.md).
 *   GET /api/stream/recording, PUT /api/stream/recording {mode: off|automatic|null}
 *   GET /api/recordings                    {recordings: [...], backend}
 *   GET /api/streams/{id}/recording         the stream's recording file (owner only, Range)
 *   GET /api/recordings/{rid}/file          one recording file by id (owner only, Range)
 * Built-in relay: files under DATA_DIR/recordings/{user} (livestream/sp_ls_recordings.h).
 * Cloudflare: the live input's videos. Files are sent from disk in chunks read on the
 * thread pool (uv_fs), on the connection taken over from the HTTP server after the headers
 * are decided; nothing is loaded in memory whole.
 */
#include "web/sp_web.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "core/sp_uuid.h"
#include "livestream/sp_ls_recordings.h"
#include "media/sp_cloudflare.h"
#include "store/sp_store.h"

#define SEND_CHUNK (256 * 1024)
#define SEND_STALL_MS 30000 /* a client that takes nothing for this long is dropped */

static sp_ls_retention_t *g_retention;

static bool is_local(const sp_app_t *app)
{
    return app->cfg->media_backend && strcmp(app->cfg->media_backend, "local") == 0;
}

/* ---- GET/PUT /api/stream/recording ---------------------------------------------------- */

typedef struct {
    sp_http_req_t *req;
    sp_app_t *app;
    char user[65];
    char mode[16]; /* "" = back to the default */
} setting_t;

static json_t *setting_json(const sp_app_t *app, const char *user_mode)
{
    const char *def = app->cfg->recording_mode ? app->cfg->recording_mode : "off";
    return json_pack("{s:s, s:s, s:s*, s:I, s:I, s:s}", "mode", user_mode ? user_mode : def,
                     "default", def, "user_mode", user_mode, "timeoutSeconds",
                     (json_int_t)app->cfg->recording_timeout_seconds, "retentionDays",
                     (json_int_t)app->cfg->recording_retention_days, "backend",
                     is_local(app) ? "relay" : "cloudflare");
}

static void on_heal(const sp_cf_result_t *r, const sp_cf_input_t *in, void *ud)
{
    (void)in;
    (void)ud;
    if (r->err != 0)
        sp_warn("recordings", "recording mode not applied", "err=%s", sp_err_name(r->err));
}

/* The media service's view: the input's recording mode and, on the built-in relay, the
 * current recording (state, bytes, error: a full disk shows here). An input that lost the
 * user's own mode (re-created since) gets it again. */
static void on_setting_input_get(const sp_cf_result_t *r, const sp_cf_input_t *in, void *ud)
{
    setting_t *s = ud;
    json_t *j = setting_json(s->app, s->mode[0] ? s->mode : NULL);
    json_t *rec = r->err == 0 ? json_object_get(r->result, "recording") : NULL;
    const char *imode = sp_json_str(rec, "mode");
    if (in && s->mode[0] && imode && strcmp(imode, s->mode) != 0 && s->app->cloudflare)
        sp_cloudflare_set_recording(s->app->cloudflare, in->uid, s->mode,
                                    s->app->cfg->recording_timeout_seconds, SP_CF_PRIO_NORMAL,
                                    on_heal, NULL);
    if (json_is_object(rec)) {
        json_object_set_new(j, "input_mode", json_string(sp_json_str(rec, "mode")
                                                             ? sp_json_str(rec, "mode")
                                                             : "off"));
        json_t *cur = json_object_get(rec, "current");
        if (json_is_object(cur))
            json_object_set(j, "current", cur);
    } else if (r->err != 0) {
        json_object_set_new(j, "media_error", json_string(r->cf_message));
    }
    sp_http_respond_json(s->req, 200, j);
    sp_free(s);
}

static void on_setting_get_input(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    setting_t *s = ud;
    const char *uid = err == 0 ? sp_json_str(json_array_get(rows, 0), "input_uid") : NULL;
    if (!uid || !s->app->cloudflare ||
        sp_cloudflare_get_input(s->app->cloudflare, uid, SP_CF_PRIO_NORMAL, on_setting_input_get,
                                s) != 0) {
        sp_http_respond_json(s->req, 200, setting_json(s->app, s->mode[0] ? s->mode : NULL));
        sp_free(s);
    }
}

static void on_setting_get(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    setting_t *s = ud;
    if (err != 0) {
        sp_http_respond_error(s->req, 503, "storage_unavailable", "try again");
        sp_free(s);
        return;
    }
    const char *m = sp_json_str(json_array_get(rows, 0), "mode");
    snprintf(s->mode, sizeof(s->mode), "%s", m ? m : "");
    sp_store_query(s->app->store, "SELECT input_uid FROM live_inputs WHERE user_id = $1",
                   json_pack("[s]", s->user), on_setting_get_input, s);
}

static void h_setting_get(sp_http_req_t *req, void *ud)
{
    setting_t *s = sp_calloc(1, sizeof(*s));
    s->req = req;
    s->app = ud;
    snprintf(s->user, sizeof(s->user), "%s", sp_web_user(req));
    sp_store_query(s->app->store, "SELECT mode FROM recording_settings WHERE user_id = $1",
                   json_pack("[s]", sp_web_user(req)), on_setting_get, s);
}

static void on_applied(const sp_cf_result_t *r, const sp_cf_input_t *in, void *ud)
{
    (void)in;
    setting_t *s = ud;
    json_t *j = setting_json(s->app, s->mode[0] ? s->mode : NULL);
    json_object_set_new(j, "applied", json_boolean(r->err == 0));
    if (r->err != 0)
        json_object_set_new(j, "apply_error", json_string(r->cf_message));
    sp_http_respond_json(s->req, 200, j);
    sp_free(s);
}

static void on_setting_input(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    setting_t *s = ud;
    const char *uid = err == 0 ? sp_json_str(json_array_get(rows, 0), "input_uid") : NULL;
    const char *mode = s->mode[0] ? s->mode
                                  : (s->app->cfg->recording_mode ? s->app->cfg->recording_mode
                                                                 : "off");
    int rc = uid && s->app->cloudflare
                 ? sp_cloudflare_set_recording(s->app->cloudflare, uid, mode,
                                               s->app->cfg->recording_timeout_seconds,
                                               SP_CF_PRIO_NORMAL, on_applied, s)
                 : SP_ENOTFOUND;
    if (rc != 0) {
        /* no live input yet: it gets the setting when it is created (GET /api/stream) */
        json_t *j = setting_json(s->app, s->mode[0] ? s->mode : NULL);
        json_object_set_new(j, "applied", json_boolean(uid == NULL));
        if (uid)
            json_object_set_new(j, "apply_error", json_string(sp_strerror(rc)));
        sp_http_respond_json(s->req, 200, j);
        sp_free(s);
    }
}

static void on_setting_saved(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    setting_t *s = ud;
    if (err != 0) {
        sp_http_respond_error(s->req, 503, "storage_unavailable", "try again");
        sp_free(s);
        return;
    }
    sp_store_query(s->app->store, "SELECT input_uid FROM live_inputs WHERE user_id = $1",
                   json_pack("[s]", s->user), on_setting_input, s);
}

static void h_setting_put(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    json_t *body = sp_http_req_json_or_400(req);
    if (!body)
        return;
    json_t *m = json_object_get(body, "mode");
    const char *mode = json_string_value(m);
    if (!json_is_null(m) &&
        (!mode || (strcmp(mode, "off") != 0 && strcmp(mode, "automatic") != 0))) {
        json_decref(body);
        sp_http_respond_error(req, 422, "invalid", "mode: \"off\", \"automatic\" or null "
                                                   "(the server default)");
        return;
    }
    setting_t *s = sp_calloc(1, sizeof(*s));
    s->req = req;
    s->app = app;
    snprintf(s->user, sizeof(s->user), "%s", sp_web_user(req));
    snprintf(s->mode, sizeof(s->mode), "%s", mode ? mode : "");
    json_decref(body);
    if (!s->mode[0])
        sp_store_query(app->store, "DELETE FROM recording_settings WHERE user_id = $1",
                       json_pack("[s]", s->user), on_setting_saved, s);
    else
        sp_store_query(app->store,
                       "INSERT INTO recording_settings (user_id, mode, updated_at) "
                       "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET "
                       "mode = excluded.mode, updated_at = excluded.updated_at",
                       json_pack("[s, s, I]", s->user, s->mode, (json_int_t)sp_wall_ms()),
                       on_setting_saved, s);
}

/* ---- listing ------------------------------------------------------------------------- */

typedef enum { WANT_LIST, WANT_STREAM, WANT_ID } want_t;

typedef struct {
    sp_http_req_t *req;
    sp_app_t *app;
    want_t want;
    char user[65];
    char key[65];   /* stream id or recording id */
    json_t *recs;
} list_t;

static void send_file(list_t *l, const char *path, const char *name);

static void list_free(list_t *l)
{
    json_decref(l->recs);
    sp_free(l);
}

static void list_answer(list_t *l)
{
    if (l->want == WANT_LIST) {
        sp_http_respond_json(l->req, 200, json_pack("{s:O, s:s}", "recordings", l->recs,
                                                    "backend", is_local(l->app) ? "relay"
                                                                                : "cloudflare"));
        list_free(l);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(l->recs, i, r) {
        const char *match = json_string_value(json_object_get(r, l->want == WANT_STREAM
                                                                     ? "stream_id"
                                                                     : "id"));
        if (match && strcmp(match, l->key) == 0 && is_local(l->app)) {
            char path[1400], name[160];
            snprintf(path, sizeof(path), "%s/recordings/%s", l->app->cfg->data_dir,
                     json_string_value(json_object_get(r, "file")));
            snprintf(name, sizeof(name), "recording-%s.flv", json_string_value(json_object_get(
                                                                 r, "id")));
            send_file(l, path, name);
            return;
        }
    }
    sp_http_respond_error(l->req, 404, "not_found", l->want == WANT_STREAM
                                                         ? "this stream has no recording"
                                                         : "no such recording");
    list_free(l);
}

static void on_streams(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    list_t *l = ud;
    if (err != 0) {
        sp_http_respond_error(l->req, 503, "storage_unavailable", "try again");
        list_free(l);
        return;
    }
    if (l->want == WANT_STREAM && json_array_size(rows) == 0) {
        sp_http_respond_error(l->req, 404, "not_found", "no such stream");
        list_free(l);
        return;
    }
    sp_ls_recordings_match(l->recs, rows, sp_wall_ms());
    list_answer(l);
}

static void with_streams(list_t *l)
{
    if (l->want == WANT_STREAM)
        sp_store_query(l->app->store,
                       "SELECT id, started_at, ended_at FROM streams WHERE id = $1 AND "
                       "user_id = $2",
                       json_pack("[s, s]", l->key, l->user), on_streams, l);
    else
        sp_store_query(l->app->store,
                       "SELECT id, started_at, ended_at FROM streams WHERE user_id = $1 "
                       "ORDER BY started_at DESC LIMIT 500",
                       json_pack("[s]", l->user), on_streams, l);
}

static void on_disk_list(int err, json_t *list, void *ud)
{
    list_t *l = ud;
    if (err != 0) {
        sp_warn("recordings", "cannot list recordings", "err=%s", sp_err_name(err));
        sp_http_respond_error(l->req, 503, "unavailable", "recordings cannot be read now");
        list_free(l);
        return;
    }
    l->recs = list;
    with_streams(l);
}

/* Cloudflare video object -> our recording shape */
static json_t *video_to_rec(json_t *v)
{
    const char *uid = sp_json_str(v, "uid");
    if (!uid)
        return NULL;
    json_t *r = json_pack("{s:s}", "id", uid);
    json_t *size = json_object_get(v, "size");
    json_object_set_new(r, "bytes", json_integer(json_is_integer(size) ? json_integer_value(size)
                                                                       : 0));
    json_t *d = json_object_get(v, "duration");
    double dur = json_is_number(d) ? json_number_value(d) : -1;
    json_object_set_new(r, "duration_ms", json_integer(dur > 0 ? (json_int_t)(dur * 1000) : 0));
    const char *state = sp_json_str(json_object_get(v, "status"), "state");
    json_object_set_new(r, "state", json_string(state ? state : "unknown"));
    int64_t created = 0;
    const char *c = sp_json_str(v, "created");
    if (c)
        sp_time_parse_rfc3339(c, strlen(c), &created);
    json_object_set_new(r, "started_ms", json_integer(created));
    int64_t ended = 0;
    const char *m = sp_json_str(v, "modified");
    if (m && state && strcmp(state, "live-inprogress") != 0)
        sp_time_parse_rfc3339(m, strlen(m), &ended);
    json_object_set_new(r, "ended_ms", ended ? json_integer(ended) : json_null());
    json_t *pb = json_object_get(v, "playback");
    if (json_is_object(pb))
        json_object_set(r, "playback", pb);
    return r;
}

static void on_videos(const sp_cf_result_t *res, void *ud)
{
    list_t *l = ud;
    if (res->err != 0) {
        sp_http_respond_error(l->req, 502, "media_unavailable", res->cf_message);
        list_free(l);
        return;
    }
    l->recs = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(res->result, i, v) {
        json_t *r = video_to_rec(v);
        if (r)
            json_array_append_new(l->recs, r);
        if (i >= 500)
            break;
    }
    with_streams(l);
}

static void on_user_input(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    list_t *l = ud;
    const char *uid = err == 0 ? sp_json_str(json_array_get(rows, 0), "input_uid") : NULL;
    if (err != 0) {
        sp_http_respond_error(l->req, 503, "storage_unavailable", "try again");
        list_free(l);
        return;
    }
    if (!uid || !l->app->cloudflare ||
        sp_cloudflare_list_videos(l->app->cloudflare, uid, SP_CF_PRIO_NORMAL, on_videos, l) != 0) {
        l->recs = json_array();
        with_streams(l);
    }
}

static void start_list(sp_http_req_t *req, sp_app_t *app, want_t want, const char *key)
{
    list_t *l = sp_calloc(1, sizeof(*l));
    l->req = req;
    l->app = app;
    l->want = want;
    snprintf(l->user, sizeof(l->user), "%s", sp_web_user(req));
    snprintf(l->key, sizeof(l->key), "%s", key ? key : "");
    if (!is_local(app)) {
        sp_store_query(app->store, "SELECT input_uid FROM live_inputs WHERE user_id = $1",
                       json_pack("[s]", l->user), on_user_input, l);
        return;
    }
    int rc = sp_ls_recordings_list(app->loop, app->cfg->data_dir, l->user, on_disk_list, l);
    if (rc != 0) {
        l->recs = json_array();
        with_streams(l);
    }
}

static void h_list(sp_http_req_t *req, void *ud)
{
    start_list(req, ud, WANT_LIST, NULL);
}

static void h_stream_recording(sp_http_req_t *req, void *ud)
{
    const char *id = sp_http_req_param(req, "id");
    if (!id || !sp_uuid_valid(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such stream");
        return;
    }
    start_list(req, ud, WANT_STREAM, id);
}

static void h_recording_file(sp_http_req_t *req, void *ud)
{
    const char *id = sp_http_req_param(req, "rid");
    if (!id || !sp_ls_rec_name_ok(id)) {
        sp_http_respond_error(req, 404, "not_found", "no such recording");
        return;
    }
    start_list(req, ud, WANT_ID, id);
}

/* ---- sending a file ------------------------------------------------------------------ */

typedef struct {
    sp_http_req_t *req;       /* until the headers are decided */
    uv_loop_t *loop;
    uv_tcp_t *tcp;            /* after the takeover */
    sp_http_server_t *srv;
    uv_fs_t fs;
    uv_file fd;
    int64_t size, pos, end;   /* [pos, end) still to send */
    bool head;
    char name[160];
    char *buf;
    uv_write_t wr;
    uv_timer_t *stall;        /* restarted by every completed write */
    bool reading, closing, stop;
    char hdr[768];
} send_t;

static void send_read(send_t *s);

static void fd_closed(uv_fs_t *f)
{
    send_t *s = f->data;
    uv_fs_req_cleanup(f);
    sp_free(s->buf);
    sp_free(s);
}

static void send_end(send_t *s)
{
    /* the socket first (its close callback), then the file, then s */
    if (s->fd >= 0) {
        uv_fs_req_cleanup(&s->fs);
        s->fs.data = s;
        uv_file fd = s->fd;
        s->fd = -1;
        if (uv_fs_close(s->loop, &s->fs, fd, fd_closed) == 0)
            return;
    }
    sp_free(s->buf);
    sp_free(s);
}

static void tcp_closed(uv_handle_t *h)
{
    send_t *s = h->data;
    sp_http_server_upgraded_closed(s->srv);
    sp_free(h);
    send_end(s);
}

static void free_handle(uv_handle_t *h)
{
    sp_free(h);
}

static void send_close(send_t *s)
{
    if (s->closing)
        return;
    s->closing = true;
    if (s->stall) {
        uv_close((uv_handle_t *)s->stall, free_handle);
        s->stall = NULL;
    }
    /* a pending write completes with UV_ECANCELED before tcp_closed */
    uv_close((uv_handle_t *)s->tcp, tcp_closed);
}

static void on_stall(uv_timer_t *t)
{
    send_t *s = t->data;
    if (s->reading)
        s->stop = true; /* on_read closes */
    else
        send_close(s);
}

static void on_written(uv_write_t *w, int status)
{
    send_t *s = w->data;
    if (s->stall && status == 0)
        uv_timer_start(s->stall, on_stall, SEND_STALL_MS, 0);
    if (status < 0 || s->pos >= s->end || s->closing) {
        send_close(s); /* what was written is in the kernel: closing does not lose it */
        return;
    }
    send_read(s);
}

static void on_read(uv_fs_t *f)
{
    send_t *s = f->data;
    ssize_t n = f->result;
    uv_fs_req_cleanup(f);
    s->reading = false;
    if (n <= 0 || s->stop) { /* the file shrank or failed: the client sees a short body */
        send_close(s);
        return;
    }
    s->pos += n;
    uv_buf_t b = uv_buf_init(s->buf, (unsigned)n);
    s->wr.data = s;
    if (uv_write(&s->wr, (uv_stream_t *)s->tcp, &b, 1, on_written) != 0)
        send_close(s);
}

static void send_read(send_t *s)
{
    int64_t want = s->end - s->pos;
    if (want > SEND_CHUNK)
        want = SEND_CHUNK;
    uv_buf_t b = uv_buf_init(s->buf, (unsigned)want);
    s->fs.data = s;
    s->reading = true;
    if (uv_fs_read(s->loop, &s->fs, s->fd, &b, 1, s->pos, on_read) != 0) {
        s->reading = false;
        send_close(s);
    }
}

static void send_begin(send_t *s, int status, int64_t start, int64_t end)
{
    int len = snprintf(s->hdr, sizeof(s->hdr),
                       "HTTP/1.1 %d %s\r\nContent-Type: video/x-flv\r\nContent-Length: %lld\r\n"
                       "Accept-Ranges: bytes\r\nCache-Control: private, no-store\r\n"
                       "X-Content-Type-Options: nosniff\r\n"
                       "Content-Disposition: attachment; filename=\"%s\"\r\n",
                       status, status == 206 ? "Partial Content" : "OK",
                       (long long)(end - start), s->name);
    if (status == 206)
        len += snprintf(s->hdr + len, sizeof(s->hdr) - (size_t)len,
                        "Content-Range: bytes %lld-%lld/%lld\r\n", (long long)start,
                        (long long)end - 1, (long long)s->size);
    len += snprintf(s->hdr + len, sizeof(s->hdr) - (size_t)len, "Connection: close\r\n\r\n");
    sp_http_req_t *req = s->req;
    s->srv = sp_http_req_server(req);
    sp_buf_t left;
    sp_buf_init(&left, 0);
    s->tcp = sp_http_req_upgrade(req, &left);
    sp_buf_cleanup(&left);
    if (!s->tcp) {
        sp_http_respond_error(req, 503, "busy", "try again");
        send_end(s);
        return;
    }
    s->req = NULL;
    s->tcp->data = s;
    s->stall = sp_malloc(sizeof(*s->stall));
    uv_timer_init(s->loop, s->stall);
    s->stall->data = s;
    uv_timer_start(s->stall, on_stall, SEND_STALL_MS, 0);
    s->pos = start;
    s->end = s->head ? start : end;
    s->buf = sp_malloc(SEND_CHUNK > (int)sizeof(s->hdr) ? SEND_CHUNK : sizeof(s->hdr));
    memcpy(s->buf, s->hdr, (size_t)len);
    uv_buf_t b = uv_buf_init(s->buf, (unsigned)len);
    s->wr.data = s;
    if (uv_write(&s->wr, (uv_stream_t *)s->tcp, &b, 1, on_written) != 0)
        send_close(s);
}

static void on_stat(uv_fs_t *f)
{
    send_t *s = f->data;
    int rc = (int)f->result;
    s->size = rc == 0 ? (int64_t)f->statbuf.st_size : 0;
    uv_fs_req_cleanup(f);
    if (rc != 0) {
        sp_http_respond_error(s->req, 404, "not_found", "no such recording");
        send_end(s);
        return;
    }
    int64_t start = 0, end = s->size;
    int r = sp_ls_rec_range(sp_http_req_header(s->req, "Range"), s->size, &start, &end);
    if (r < 0) {
        char cr[64];
        snprintf(cr, sizeof(cr), "bytes */%lld", (long long)s->size);
        sp_http_res_header(s->req, "Content-Range", cr);
        sp_http_respond_error(s->req, 416, "range_not_satisfiable", "the file is smaller");
        send_end(s);
        return;
    }
    send_begin(s, r == 1 ? 206 : 200, start, end);
}

static void on_open(uv_fs_t *f)
{
    send_t *s = f->data;
    int rc = (int)f->result;
    uv_fs_req_cleanup(f);
    if (rc < 0) {
        sp_http_respond_error(s->req, 404, "not_found", "no such recording");
        send_end(s);
        return;
    }
    s->fd = rc;
    s->fs.data = s;
    if (uv_fs_fstat(s->loop, &s->fs, s->fd, on_stat) != 0) {
        sp_http_respond_error(s->req, 500, "internal", "cannot read the recording");
        send_end(s);
    }
}

static void send_file(list_t *l, const char *path, const char *name)
{
    send_t *s = sp_calloc(1, sizeof(*s));
    s->req = l->req;
    s->loop = l->app->loop;
    s->fd = -1;
    s->head = strcmp(sp_http_req_method(l->req), "HEAD") == 0;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->fs.data = s;
    list_free(l);
    if (uv_fs_open(s->loop, &s->fs, path, O_RDONLY | O_CLOEXEC, 0, on_open) != 0) {
        sp_http_respond_error(s->req, 404, "not_found", "no such recording");
        send_end(s);
    }
}

/* ---- wiring ---------------------------------------------------------------------------- */

void sp_routes_recordings_register(sp_app_t *app)
{
    sp_router_t *r = app->router;
    sp_route_opts_t auth = { .body_limit = 4096, .flags = SP_ROUTE_AUTH };
    sp_router_add(r, "GET", "/api/stream/recording", h_setting_get, app, &auth);
    sp_router_add(r, "PUT", "/api/stream/recording", h_setting_put, app, &auth);
    sp_router_add(r, "GET", "/api/recordings", h_list, app, &auth);
    sp_router_add(r, "GET", "/api/streams/{id}/recording", h_stream_recording, app, &auth);
    sp_router_add(r, "GET", "/api/recordings/{rid}/file", h_recording_file, app, &auth);
    if (is_local(app) && !g_retention)
        g_retention = sp_ls_retention_start(app->loop, app->cfg->data_dir,
                                            app->cfg->recording_retention_days, 3600000);
}

void sp_routes_recordings_free(sp_app_t *app)
{
    (void)app;
    sp_ls_retention_free(g_retention);
    g_retention = NULL;
}
