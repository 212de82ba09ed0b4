/*
 * sp_relay: process entry, the live-input/output model and its persistence
 * (DATA_DIR/relay.json, written atomically off the loop).
 */
#include "relay/sp_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_job.h"
#include "core/sp_log.h"
#include "relay/sp_relay_api.h"
#include "relay/sp_relay_int.h"
#include "relay/sp_recorder.h"
#include "relay/sp_rtmp_push.h"
#include "relay/sp_slate.h"
#include "core/sp_time.h"

/* ---- ids and keys ---- */

static void hex_random(char *out, size_t bytes)
{
    uint8_t b[64];
    randombytes_buf(b, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, b, bytes);
}

static void now_rfc3339(char *out, size_t len)
{
    sp_time_rfc3339(sp_wall_ms(), out, len);
}

/* ---- model ---- */

sp_relay_input_t *sp_relay_find_input(sp_relay_t *r, const char *uid)
{
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        if (strcmp(in->uid, uid) == 0)
            return in;
    return NULL;
}

sp_relay_input_t *sp_relay_find_by_key(sp_relay_t *r, const char *key, size_t len)
{
    sp_relay_input_t *found = NULL;
    /* every input is compared (no early exit), each in constant time */
    for (sp_relay_input_t *in = r->inputs; in; in = in->next) {
        size_t kl = strlen(in->key);
        int eq = kl == len && sodium_memcmp(in->key, key, len) == 0;
        if (eq && !found)
            found = in;
    }
    return found;
}

sp_relay_input_t *sp_relay_input_create(sp_relay_t *r, json_t *meta, bool enabled)
{
    sp_relay_input_t *in = sp_calloc(1, sizeof(*in));
    in->relay = r;
    hex_random(in->uid, 16);
    char a[33], b[33];
    hex_random(a, 16);
    hex_random(b, 16);
    snprintf(in->key, sizeof(in->key), "%sk%s", a, b);
    in->meta = meta ? json_incref(meta) : json_object();
    in->enabled = enabled;
    in->protect = true; /* disconnect protection: on unless the control plane turns it off */
    now_rfc3339(in->created, sizeof(in->created));
    memcpy(in->modified, in->created, sizeof(in->modified));
    sp_tagq_init(&in->gop);
    in->next = r->inputs;
    r->inputs = in;
    r->n_inputs++;
    return in;
}

bool sp_relay_restore_ids_ok(const char *uid, const char *key)
{
    if (uid == NULL || key == NULL || strlen(uid) != SP_RELAY_UID_LEN - 1) return false;
    for (const char *p = uid; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    size_t n = strlen(key);
    if (n < 16 || n >= sizeof(((sp_relay_input_t *)0)->key)) return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static void output_free(sp_relay_output_t *o)
{
    sp_push_cleanup(o);
    sp_free(o->url);
    sp_free(o->stream_key);
    sp_free(o);
}

void sp_relay_input_delete(sp_relay_t *r, sp_relay_input_t *in)
{
    if (in->publisher)
        sp_ingest_kick(in->publisher, "live input deleted");
    sp_relay_input_gone(in, "deleted"); /* a publisher still attached; the slate ends */
    for (sp_relay_input_t **pp = &r->inputs; *pp; pp = &(*pp)->next)
        if (*pp == in) {
            *pp = in->next;
            break;
        }
    r->n_inputs--;
    while (in->outputs) {
        sp_relay_output_t *o = in->outputs;
        in->outputs = o->next;
        output_free(o);
    }
    sp_rec_input_detach(in);
    sp_tag_clear(&in->meta_tag);
    sp_tag_clear(&in->vseq);
    sp_tag_clear(&in->aseq);
    sp_tagq_cleanup(&in->gop);
    json_decref(in->meta);
    sodium_memzero(in->key, sizeof(in->key));
    sp_free(in);
}

sp_relay_output_t *sp_relay_output_add(sp_relay_input_t *in, const char *url, const char *key,
                                       bool enabled, const char *uid)
{
    sp_relay_output_t *o = sp_calloc(1, sizeof(*o));
    if (uid)
        snprintf(o->uid, sizeof(o->uid), "%s", uid);
    else
        hex_random(o->uid, 16);
    o->url = sp_strdup(url);
    o->stream_key = sp_strdup(key ? key : "");
    o->enabled = enabled;
    o->input = in;
    sp_backoff_init(&o->backoff, 1000, 30000);
    sp_tagq_init(&o->q);
    /* append (creation order) */
    sp_relay_output_t **pp = &in->outputs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = o;
    in->n_outputs++;
    /* stream keys are never formatted into log lines (and the log's secret table is small) */
    if (in->publisher && enabled)
        sp_push_start(o);
    return o;
}

void sp_relay_output_delete(sp_relay_output_t *o)
{
    sp_relay_input_t *in = o->input;
    for (sp_relay_output_t **pp = &in->outputs; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    in->n_outputs--;
    sp_info("relay", "output deleted", "output=%s input=%s", o->uid, in->uid);
    output_free(o);
}

void sp_relay_output_set_enabled(sp_relay_output_t *o, bool enabled)
{
    if (o->enabled == enabled)
        return;
    o->enabled = enabled;
    if (!enabled)
        sp_push_stop(o, "disabled");
    else if (o->input->publisher)
        sp_push_start(o);
}

/* ---- persistence ---- */

typedef struct {
    sp_relay_t *r;
    char *path;
    char *data;
    size_t len;
    int err;
} save_job_t;

static void save_work(void *arg)
{
    save_job_t *j = arg;
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        j->err = -errno;
        return;
    }
    size_t off = 0;
    while (off < j->len) {
        ssize_t w = write(fd, j->data + off, j->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            j->err = -errno;
            close(fd);
            unlink(tmp);
            return;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0)
        j->err = -errno;
    close(fd);
    if (!j->err && rename(tmp, j->path) < 0)
        j->err = -errno;
}

static void save_done(void *arg, int status)
{
    save_job_t *j = arg;
    sp_relay_t *r = j->r;
    if (status == 0 && j->err)
        sp_error("relay", "cannot save relay state", "path=\"%s\" err=%s", j->path,
                 uv_strerror(j->err));
    sodium_memzero(j->data, j->len);
    sp_free(j->data);
    sp_free(j->path);
    sp_free(j);
    r->store_busy = false;
    if (r->store_dirty) {
        r->store_dirty = false;
        sp_relay_save(r);
    }
}

static json_t *state_json(sp_relay_t *r)
{
    json_t *arr = json_array();
    for (sp_relay_input_t *in = r->inputs; in; in = in->next) {
        json_t *outs = json_array();
        for (sp_relay_output_t *o = in->outputs; o; o = o->next)
            json_array_append_new(outs, json_pack("{s:s, s:s, s:s, s:b}", "uid", o->uid, "url",
                                                  o->url, "streamKey", o->stream_key, "enabled",
                                                  o->enabled));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:O, s:b, s:s, s:s, s:o}", "uid",
                                             in->uid, "streamKey", in->key, "meta", in->meta,
                                             "enabled", in->enabled, "created", in->created,
                                             "modified", in->modified, "outputs", outs));
        json_object_set_new(json_array_get(arr, json_array_size(arr) - 1),
                            "disconnectProtection", json_boolean(in->protect));
        json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "recording",
                            json_pack("{s:s, s:i}", "mode", sp_rec_mode_name(in->rec_mode),
                                      "timeoutSeconds", in->rec_timeout_s));
    }
    return json_pack("{s:i, s:o}", "version", 1, "inputs", arr);
}

void sp_relay_save(sp_relay_t *r)
{
    if (!r->store_path[0])
        return;
    if (r->store_busy) {
        r->store_dirty = true;
        return;
    }
    json_t *j = state_json(r);
    save_job_t *job = sp_calloc(1, sizeof(*job));
    job->r = r;
    job->path = sp_strdup(r->store_path);
    job->data = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    /* json_dumps uses malloc; copy into our allocator's buffer */
    char *copy = sp_strdup(job->data);
    sodium_memzero(job->data, strlen(job->data));
    free(job->data);
    job->data = copy;
    job->len = strlen(copy);
    r->store_busy = true;
    if (sp_job_submit(r->loop, save_work, save_done, job) != 0) {
        save_work(job); /* no thread pool: do it inline rather than lose the state */
        save_done(job, 0);
    }
}

static int load_state(sp_relay_t *r)
{
    json_error_t e;
    json_t *root = json_load_file(r->store_path, 0, &e);
    if (!root) {
        if (access(r->store_path, F_OK) != 0)
            return 0; /* first start */
        sp_error("relay", "cannot parse relay state", "path=\"%s\" line=%d err=\"%s\"",
                 r->store_path, e.line, e.text);
        return SP_ECORRUPT;
    }
    json_t *inputs = json_object_get(root, "inputs");
    size_t i;
    json_t *ji;
    json_array_foreach(inputs, i, ji) {
        const char *uid = json_string_value(json_object_get(ji, "uid"));
        const char *key = json_string_value(json_object_get(ji, "streamKey"));
        if (!uid || !key || strlen(uid) >= SP_RELAY_UID_LEN || strlen(key) >= 80)
            continue;
        sp_relay_input_t *in = sp_relay_input_create(r, json_object_get(ji, "meta"),
                                                     json_is_true(json_object_get(ji, "enabled")));
        snprintf(in->uid, sizeof(in->uid), "%s", uid);
        snprintf(in->key, sizeof(in->key), "%s", key);
        const char *cr = json_string_value(json_object_get(ji, "created"));
        const char *mo = json_string_value(json_object_get(ji, "modified"));
        if (cr)
            snprintf(in->created, sizeof(in->created), "%s", cr);
        if (mo)
            snprintf(in->modified, sizeof(in->modified), "%s", mo);
        json_t *rec = json_object_get(ji, "recording");
        in->rec_mode = sp_rec_mode_parse(json_string_value(json_object_get(rec, "mode"))) == 1;
        json_int_t rt = json_integer_value(json_object_get(rec, "timeoutSeconds"));
        in->rec_timeout_s = rt > 0 && rt <= 86400 ? (int)rt : 0;
        in->protect = !json_is_false(json_object_get(ji, "disconnectProtection"));
        size_t k;
        json_t *jo;
        json_array_foreach(json_object_get(ji, "outputs"), k, jo) {
            const char *ou = json_string_value(json_object_get(jo, "uid"));
            const char *url = json_string_value(json_object_get(jo, "url"));
            const char *sk = json_string_value(json_object_get(jo, "streamKey"));
            if (!ou || !url || strlen(ou) >= SP_RELAY_UID_LEN)
                continue;
            sp_relay_output_add(in, url, sk, json_is_true(json_object_get(jo, "enabled")), ou);
        }
    }
    json_decref(root);
    sp_info("relay", "state loaded", "inputs=%zu path=\"%s\"", r->n_inputs, r->store_path);
    return 0;
}

/* ---- process ---- */

typedef struct {
    sp_relay_t relay;
    uv_signal_t sig_int, sig_term;
    uv_timer_t stop_timer;
    bool stopping;
} relay_proc_t;

static void close_free_nothing(uv_handle_t *h)
{
    (void)h;
}

static void on_stop_check(uv_timer_t *t)
{
    relay_proc_t *p = t->data;
    if (sp_job_pending() == 0)
        uv_close((uv_handle_t *)t, close_free_nothing);
    (void)p;
}

static void on_signal(uv_signal_t *s, int signum)
{
    relay_proc_t *p = s->data;
    if (p->stopping)
        return;
    p->stopping = true;
    sp_info("relay", "stopping", "signal=%d", signum);
    sp_relay_t *r = &p->relay;
    r->stopping = true;
    sp_rtmp_server_stop(r); /* publishers go: their outputs stop */
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        sp_rec_input_detach(in); /* paused recordings end now */
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        for (sp_relay_output_t *o = in->outputs; o; o = o->next)
            sp_push_cleanup(o);
    sp_relay_api_stop(r);
    sp_relay_flush_stop(r);
    uv_close((uv_handle_t *)&p->sig_int, close_free_nothing);
    uv_close((uv_handle_t *)&p->sig_term, close_free_nothing);
    /* outstanding state writes finish before the loop ends */
    uv_timer_start(&p->stop_timer, on_stop_check, 0, 50);
}

static int ensure_dir(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *c = tmp + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
                return -errno;
            *c = '/';
        }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int sp_relay_main(const sp_relay_opts_t *opts)
{
    const sp_config_t *cfg = opts->cfg;
    int rc = 1, port = 0;
    relay_proc_t *p = sp_calloc(1, sizeof(*p));
    sp_relay_t *r = &p->relay;
    uv_loop_t *loop = sp_malloc(sizeof(*loop));
    uv_loop_init(loop);
    if (sodium_init() < 0)
        goto out;
    if (sp_log_open((sp_log_level_t)cfg->log_level, cfg->log_file) < 0) {
        fprintf(stderr, "streampai relay: cannot open LOG_FILE\n");
        goto out;
    }
    if (cfg->relay_api_token)
        sp_log_add_secret(cfg->relay_api_token);
    if (cfg->cloudflare_webhook_secret)
        sp_log_add_secret(cfg->cloudflare_webhook_secret);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit fails the recording's write (EFBIG) */
    r->loop = loop;
    r->cfg = cfg;
    r->allow_private = opts->allow_private_destinations;
    r->resolve = opts->resolve;
    r->out_queue_bytes = cfg->relay_output_queue_bytes > 0 ? (size_t)cfg->relay_output_queue_bytes
                                                           : 8u * 1024 * 1024;
    r->out_queue_ms = cfg->relay_output_queue_ms > 0 ? (uint32_t)cfg->relay_output_queue_ms : 5000;
    r->tick_ms = cfg->relay_tick_ms > 0 ? (uint32_t)cfg->relay_tick_ms : SP_RELAY_TICK_MS_DEFAULT;
    sp_info("relay", "starting", "version=%s env=%s pid=%d", SP_VERSION, cfg->env_name,
            (int)getpid());
    if (cfg->data_dir && cfg->data_dir[0]) {
        if (ensure_dir(cfg->data_dir) < 0) {
            sp_error("relay", "cannot create DATA_DIR", "path=\"%s\"", cfg->data_dir);
            goto out;
        }
        snprintf(r->store_path, sizeof(r->store_path), "%s/relay.json", cfg->data_dir);
        if (load_state(r) != 0)
            goto out;
    }
    r->slates = sp_slate_set_load(cfg->relay_slate_dir ? cfg->relay_slate_dir : "assets/slates");
    if (sp_push_tls_init(r) != 0)
        goto out;
    if (sp_rtmp_server_start(r, cfg->relay_rtmp_listen ? cfg->relay_rtmp_listen
                                                       : "127.0.0.1:1935", &port) != 0)
        goto out_ingest;
    if (sp_relay_api_start(r) != 0) {
        sp_rtmp_server_stop(r);
        goto out_ingest;
    }
    uv_signal_init(loop, &p->sig_int);
    uv_signal_init(loop, &p->sig_term);
    uv_timer_init(loop, &p->stop_timer);
    p->sig_int.data = p->sig_term.data = p->stop_timer.data = p;
    uv_signal_start(&p->sig_int, on_signal, SIGINT);
    uv_signal_start(&p->sig_term, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    rc = 0;
    sp_info("relay", "stopped", "bytes_in=%llu bytes_out=%llu", (unsigned long long)r->bytes_in,
            (unsigned long long)r->bytes_out);
out_ingest:
    uv_run(loop, UV_RUN_DEFAULT); /* let closes complete */
    while (r->inputs)
        sp_relay_input_delete(r, r->inputs);
    uv_run(loop, UV_RUN_DEFAULT);
    sp_push_tls_free(r);
    sp_push_batch_free();
out:
    sp_slate_set_free(r->slates);
    if (uv_loop_close(loop) != 0)
        sp_warn("relay", "loop closed with handles open", "%s", "");
    sp_free(loop);
    sp_free(p);
    return rc;
}
