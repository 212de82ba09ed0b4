/*
 * sp_recorder: a live input's recording to DATA_DIR/recordings/{user}/{uid}.flv,
 * written off the loop (see the header for the contract).
 */
#include "relay/sp_recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_job.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "relay/sp_flv.h"

enum { REC_ACTIVE = 0, REC_PAUSED, REC_ENDING, REC_ERROR };

/* the amf0 string "@setDataFrame" that prefixes the cached metadata tag */
#define SETDATAFRAME_LEN 16
#define REC_RESUME_GAP_MS 40
#define REC_IOV_TAGS 64
#define SP_REC_BATCH_BYTES (256u * 1024) /* write before the tick when this much waits */

struct sp_recording_s {
    sp_relay_t *relay;
    sp_relay_input_t *in;       /* NULL once detached */
    char uid[SP_RELAY_UID_LEN];
    char input_uid[SP_RELAY_UID_LEN];
    char file[128];             /* relative to DATA_DIR/recordings */
    char path[1200];            /* absolute .flv */
    int state;
    bool error_seen;            /* stopped writing (queue over the cap or a write error) */
    char error[256];
    int64_t started_ms, ended_ms;
    /* timestamps */
    bool have_base, need_key;
    int64_t offset;
    uint32_t last_ts, max_ts;
    bool wrote_any, wrote_meta;
    int64_t dur_off;            /* file offset of onMetaData's duration value, 0 if none */
    /* writing */
    sp_tagq_t pend;
    bool busy, opened, want_sidecar;
    int fd;
    uint64_t bytes;             /* written to the file */
    uv_timer_t *timer;          /* the reconnect timeout while paused */
};
typedef struct sp_recording_s rec_t;

static uint64_t g_started, g_errors, g_bytes;

int sp_rec_mode_parse(const char *s)
{
    if (s && strcmp(s, "off") == 0)
        return 0;
    if (s && strcmp(s, "automatic") == 0)
        return 1;
    return -1;
}

const char *sp_rec_mode_name(int mode)
{
    return mode == 1 ? "automatic" : "off";
}

const char *sp_rec_user_dir(const json_t *meta)
{
    const char *u = json_string_value(json_object_get(meta, "user_id"));
    size_t n = u ? strlen(u) : 0;
    if (n == 0 || n > 64)
        return "_";
    for (const char *p = u; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == '-'))
            return "_";
    return u;
}

void sp_rec_flv_tag_header(uint8_t h[11], uint8_t type, uint32_t size, uint32_t ts)
{
    h[0] = type;
    h[1] = (uint8_t)(size >> 16);
    h[2] = (uint8_t)(size >> 8);
    h[3] = (uint8_t)size;
    h[4] = (uint8_t)(ts >> 16);
    h[5] = (uint8_t)(ts >> 8);
    h[6] = (uint8_t)ts;
    h[7] = (uint8_t)(ts >> 24);
    h[8] = h[9] = h[10] = 0;
}

void sp_rec_counters(uint64_t *started, uint64_t *errors, uint64_t *bytes)
{
    *started = g_started;
    *errors = g_errors;
    *bytes = g_bytes;
}

/* ---- the worker side: touches only its job ---- */

typedef struct {
    rec_t *rec;
    int fd;
    bool open;            /* create the directory and the file first */
    bool close;           /* close the file after writing */
    char path[1200];
    sp_tagq_t tags;       /* owned by the loop: refs dropped in done */
    char *sidecar;        /* JSON to write to the .json next to the file, or NULL */
    int64_t dur_off;      /* with close: where onMetaData's duration (a double) is, or 0 */
    double dur_s;
    uint64_t written;
    int err;
} job_t;

static int mkdirs(char *path)
{
    for (char *c = path + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            int rc = mkdir(path, 0750);
            *c = '/';
            if (rc < 0 && errno != EEXIST)
                return -errno;
        }
    return 0;
}

static int write_all(int fd, struct iovec *iov, int n, uint64_t *written)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        *written += (uint64_t)w;
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static void write_sidecar(job_t *j)
{
    char p[1210], tmp[1220];
    size_t n = strlen(j->path);
    snprintf(p, sizeof(p), "%.*s.json", (int)(n > 4 ? n - 4 : n), j->path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    struct iovec iov = { j->sidecar, strlen(j->sidecar) };
    uint64_t w = 0;
    int rc = write_all(fd, &iov, 1, &w);
    close(fd);
    if (rc == 0 && rename(tmp, p) == 0)
        return;
    unlink(tmp); /* a full disk: the .flv stays, listed without its sidecar */
}

static void job_work(void *arg)
{
    job_t *j = arg;
    static const uint8_t flv_header[13] = { 'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0 };
    if (j->open || (j->sidecar && j->fd < 0)) {
        char dir[1200];
        snprintf(dir, sizeof(dir), "%s", j->path);
        int rc = mkdirs(dir);
        if (j->open)
            j->err = rc;
    }
    if (j->open) {
        if (j->err == 0) {
            j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
            if (j->fd < 0)
                j->err = -errno;
        }
        if (j->err == 0) {
            struct iovec iov = { (void *)flv_header, sizeof(flv_header) };
            j->err = write_all(j->fd, &iov, 1, &j->written);
        }
    }
    uint8_t hdr[REC_IOV_TAGS][11], prev[REC_IOV_TAGS][4];
    struct iovec iov[REC_IOV_TAGS * 3];
    for (size_t i = 0; j->err == 0 && i < j->tags.n;) {
        int n = 0;
        for (int k = 0; k < REC_IOV_TAGS && i < j->tags.n; k++, i++) {
            const sp_relay_tag_t *t = sp_tagq_at(&j->tags, i);
            uint32_t size = (uint32_t)t->data->len;
            sp_rec_flv_tag_header(hdr[k], t->type, size, t->ts);
            uint32_t ps = size + 11;
            prev[k][0] = (uint8_t)(ps >> 24);
            prev[k][1] = (uint8_t)(ps >> 16);
            prev[k][2] = (uint8_t)(ps >> 8);
            prev[k][3] = (uint8_t)ps;
            iov[n++] = (struct iovec){ hdr[k], 11 };
            iov[n++] = (struct iovec){ t->data->data, size };
            iov[n++] = (struct iovec){ prev[k], 4 };
        }
        j->err = write_all(j->fd, iov, n, &j->written);
    }
    if (j->close && j->fd >= 0 && j->dur_off > 0 && j->err == 0) {
        /* the real duration, big-endian, over the placeholder written at the start */
        uint64_t bits;
        memcpy(&bits, &j->dur_s, sizeof(bits));
        uint8_t be[8];
        for (int i = 0; i < 8; i++)
            be[i] = (uint8_t)(bits >> (56 - 8 * i));
        if (pwrite(j->fd, be, sizeof(be), (off_t)j->dur_off) != (ssize_t)sizeof(be))
            j->err = -errno;
    }
    if (j->close && j->fd >= 0) {
        if (close(j->fd) < 0 && j->err == 0 && errno != EINTR)
            j->err = -errno;
        j->fd = -1;
    }
    if (j->sidecar)
        write_sidecar(j);
}

/* ---- the loop side ---- */

static void pump(rec_t *rec);

static const char *state_name(const rec_t *rec)
{
    switch (rec->state) {
    case REC_ACTIVE: return "recording";
    case REC_PAUSED: return "paused";
    case REC_ENDING: return rec->error[0] ? "error" : "ended";
    default: return "error";
    }
}

static json_t *rec_json(const rec_t *rec)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s*, s:I, s:o*}", "uid", rec->uid,
                     "input_uid", rec->input_uid, "file", rec->file, "bytes",
                     (json_int_t)rec->bytes, "duration_ms", (json_int_t)rec->max_ts, "state",
                     state_name(rec), "error", rec->error[0] ? rec->error : NULL, "started_ms",
                     (json_int_t)rec->started_ms, "ended_ms",
                     rec->ended_ms ? json_integer(rec->ended_ms) : NULL);
}

static char *sidecar_text(const rec_t *rec)
{
    json_t *j = rec_json(rec);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *copy = sp_strdup(s ? s : "{}");
    free(s);
    return copy;
}

static void webhook(rec_t *rec, const char *event)
{
    sp_relay_webhook_data(rec->relay, rec->input_uid, event, "recording", rec_json(rec));
}

static void timer_closed(uv_handle_t *h)
{
    sp_free(h);
}

static void stop_timer(rec_t *rec)
{
    if (rec->timer) {
        uv_close((uv_handle_t *)rec->timer, timer_closed);
        rec->timer = NULL;
    }
}

static void remember_last(rec_t *rec)
{
    if (!rec->in)
        return;
    json_decref(rec->in->rec_last);
    rec->in->rec_last = rec_json(rec);
}

static void rec_free(rec_t *rec)
{
    stop_timer(rec);
    sp_tagq_cleanup(&rec->pend);
    if (rec->in && rec->in->rec == rec)
        rec->in->rec = NULL;
    sp_free(rec);
}

/* The recording stops writing: queue over the cap or a write error. Live outputs go on. */
static void rec_fail(rec_t *rec, const char *why)
{
    if (rec->error_seen)
        return;
    rec->error_seen = true;
    snprintf(rec->error, sizeof(rec->error), "recording stopped: %s", why);
    g_errors++;
    sp_error("relay", "recording failed", "input=%s recording=%s err=\"%s\"", rec->input_uid,
             rec->uid, why);
    sp_tagq_clear(&rec->pend);
    rec->state = REC_ERROR;
    remember_last(rec);
}

static void finish(rec_t *rec)
{
    /* every job is done and the file is closed */
    rec->ended_ms = sp_wall_ms();
    remember_last(rec);
    sp_info("relay", "recording ended", "input=%s recording=%s bytes=%llu duration_ms=%u%s%s",
            rec->input_uid, rec->uid, (unsigned long long)rec->bytes, rec->max_ts,
            rec->error[0] ? " err=" : "", rec->error[0] ? rec->error : "");
    webhook(rec, "live_input.recording_ended");
    rec_free(rec);
}

static void job_done(void *arg, int status)
{
    job_t *j = arg;
    rec_t *rec = j->rec;
    rec->busy = false;
    if (status != 0 && j->fd >= 0 && j->close) {
        close(j->fd); /* cancelled before it ran */
        j->fd = -1;
    }
    rec->fd = j->fd;
    if (j->open && rec->fd >= 0)
        rec->opened = true;
    rec->bytes += j->written;
    g_bytes += j->written;
    if (j->err)
        rec_fail(rec, sp_strerror(j->err));
    sp_tagq_cleanup(&j->tags);
    sp_free(j->sidecar);
    sp_free(j);
    pump(rec);
}

/* Starts the next job if there is something to do and none is running. */
static void pump(rec_t *rec)
{
    if (rec->busy)
        return;
    bool ending = rec->state == REC_ENDING;
    bool failed = rec->error_seen;
    bool need_open = !rec->opened && !failed && rec->pend.n > 0;
    bool need_close = (ending || failed) && rec->fd >= 0;
    if (!need_open && !need_close && !rec->want_sidecar && (failed || rec->pend.n == 0)) {
        if (ending)
            finish(rec);
        return;
    }
    if (ending && !need_close && !rec->want_sidecar && rec->pend.n == 0) {
        finish(rec);
        return;
    }
    job_t *j = sp_calloc(1, sizeof(*j));
    j->rec = rec;
    j->fd = rec->fd;
    j->open = need_open;
    snprintf(j->path, sizeof(j->path), "%s", rec->path);
    if (!failed) {
        j->tags = rec->pend; /* moved: the loop keeps queueing into a fresh one */
        sp_tagq_init(&rec->pend);
    }
    j->close = ending || failed;
    if (ending)
        rec->ended_ms = sp_wall_ms();
    j->dur_off = rec->dur_off;
    j->dur_s = rec->max_ts / 1000.0;
    if (rec->want_sidecar || j->close) {
        j->sidecar = sidecar_text(rec);
        rec->want_sidecar = false;
    }
    if (!rec->opened && !need_open && j->close)
        j->close = false; /* never opened: nothing to close */
    rec->busy = true;
    if (sp_job_submit(rec->relay->loop, job_work, job_done, j) != 0) {
        job_work(j); /* no thread pool: better late than lost */
        job_done(j, 0);
    }
}

static void rec_end(rec_t *rec)
{
    if (rec->state == REC_ENDING)
        return;
    stop_timer(rec);
    rec->state = REC_ENDING;
    rec->want_sidecar = true;
    pump(rec);
}

static void queue_tag(rec_t *rec, const sp_relay_tag_t *t, uint32_t ts)
{
    if (rec->error_seen)
        return;
    if (rec->pend.bytes + t->data->len > SP_REC_QUEUE_MAX_BYTES) {
        char why[128];
        snprintf(why, sizeof(why), "the disk is too slow (over %u MiB waiting to be written)",
                 SP_REC_QUEUE_MAX_BYTES / (1024 * 1024));
        rec_fail(rec, why);
        pump(rec);
        return;
    }
    sp_relay_tag_t q = *t;
    q.ts = ts;
    sp_tagq_push(&rec->pend, &q);
    if (rec->pend.bytes >= SP_REC_BATCH_BYTES)
        pump(rec);
}

void sp_rec_input_flush(sp_relay_input_t *in)
{
    if (in->rec && in->rec->pend.n > 0)
        pump(in->rec);
}

/* Start (or resume) at the input's current media: metadata and sequence headers first. */
static void write_headers(rec_t *rec, sp_relay_input_t *in)
{
    if (!rec->wrote_any && !rec->wrote_meta && in->meta_tag.data &&
        in->meta_tag.data->len > SETDATAFRAME_LEN) {
        rec->wrote_meta = true;
        sp_relay_tag_t m = { .type = SP_FLV_TAG_DATA };
        m.data = sp_rbuf_new(in->meta_tag.data->data + SETDATAFRAME_LEN,
                             in->meta_tag.data->len - SETDATAFRAME_LEN);
        /* The publisher's duration (ffmpeg -t writes one) is not the recording's: 0 now
         * (players then read the last timestamp), the real one written over it at the end. */
        static const uint8_t key[] = { 0, 8, 'd', 'u', 'r', 'a', 't', 'i', 'o', 'n', 0 };
        uint8_t *d = m.data->data;
        for (size_t i = 0; i + sizeof(key) + 8 <= m.data->len; i++)
            if (memcmp(d + i, key, sizeof(key)) == 0) {
                memset(d + i + sizeof(key), 0, 8);
                /* FLV header (13) + tag header (11) + where the double starts */
                rec->dur_off = rec->pend.n == 0 && rec->bytes == 0
                                   ? 13 + 11 + (int64_t)(i + sizeof(key)) : 0;
                break;
            }
        queue_tag(rec, &m, 0);
        sp_rbuf_unref(m.data);
    }
    uint32_t ts = rec->have_base ? rec->last_ts : 0;
    if (in->vseq.data)
        queue_tag(rec, &in->vseq, ts);
    if (in->aseq.data)
        queue_tag(rec, &in->aseq, ts);
    rec->need_key = true;
}

void sp_rec_input_meta(sp_relay_input_t *in)
{
    rec_t *rec = in->rec;
    /* the publisher's metadata comes after publish: it goes first in the file if nothing has */
    if (rec && rec->state == REC_ACTIVE && !rec->wrote_any && !rec->wrote_meta &&
        rec->pend.n == 0 && rec->bytes == 0)
        write_headers(rec, in);
}

static void rec_start(sp_relay_input_t *in)
{
    sp_relay_t *r = in->relay;
    if (!r->cfg || !r->cfg->data_dir || !r->cfg->data_dir[0])
        return;
    rec_t *rec = sp_calloc(1, sizeof(*rec));
    rec->relay = r;
    rec->in = in;
    rec->fd = -1;
    uint8_t b[16];
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(rec->uid, sizeof(rec->uid), b, sizeof(b));
    snprintf(rec->input_uid, sizeof(rec->input_uid), "%s", in->uid);
    snprintf(rec->file, sizeof(rec->file), "%s/%s.flv", sp_rec_user_dir(in->meta), rec->uid);
    snprintf(rec->path, sizeof(rec->path), "%s/recordings/%s", r->cfg->data_dir, rec->file);
    rec->started_ms = sp_wall_ms();
    sp_tagq_init(&rec->pend);
    in->rec = rec;
    g_started++;
    sp_info("relay", "recording started", "input=%s recording=%s file=\"%s\"", in->uid, rec->uid,
            rec->file);
    write_headers(rec, in);
    rec->want_sidecar = true;
    webhook(rec, "live_input.recording_started");
    pump(rec);
}

void sp_rec_input_live(sp_relay_input_t *in)
{
    rec_t *rec = in->rec;
    if (rec && rec->state == REC_PAUSED) {
        stop_timer(rec);
        rec->state = REC_ACTIVE;
        rec->have_base = false; /* the first frame sets the offset: on from the last one */
        rec->need_key = true;
        sp_info("relay", "recording resumed", "input=%s recording=%s", in->uid, rec->uid);
        return;
    }
    if (rec && rec->state == REC_ERROR) {
        /* a new connection after a failure: a new file (the failed one finishes alone) */
        rec->in = NULL;
        in->rec = NULL;
        rec_end(rec);
    }
    if (in->rec == NULL && in->rec_mode == 1)
        rec_start(in);
}

void sp_rec_input_tag(sp_relay_input_t *in, const sp_relay_tag_t *t)
{
    rec_t *rec = in->rec;
    if (!rec || rec->state != REC_ACTIVE || rec->error_seen)
        return;
    if (t->type != SP_FLV_TAG_AUDIO && t->type != SP_FLV_TAG_VIDEO)
        return;
    if (rec->need_key && t->type == SP_FLV_TAG_VIDEO && (t->flags & SP_TAG_FRAME) &&
        !(t->flags & SP_TAG_KEY))
        return; /* video starts on a keyframe */
    if (rec->need_key && (t->flags & SP_TAG_KEY) && (t->flags & SP_TAG_FRAME))
        rec->need_key = false;
    if (!(t->flags & SP_TAG_SEQ) && !(t->flags & SP_TAG_FRAME))
        return;
    if (!(t->flags & SP_TAG_SEQ) && rec->need_key && in->has_video)
        return; /* nor audio ahead of the first video keyframe */
    int64_t ts;
    if (t->flags & SP_TAG_SEQ) {
        ts = rec->wrote_any ? rec->last_ts : 0;
    } else {
        if (!rec->have_base) {
            /* first frame of the recording, or of a reconnect: follow on from the last one */
            int64_t base = rec->wrote_any ? (int64_t)rec->last_ts + REC_RESUME_GAP_MS : 0;
            rec->offset = base - (int64_t)t->ts;
            rec->have_base = true;
        }
        ts = (int64_t)t->ts + rec->offset;
        if (ts < 0)
            ts = 0;
        if (ts > UINT32_MAX)
            ts = UINT32_MAX;
        rec->wrote_any = true;
        rec->last_ts = (uint32_t)ts;
        if ((uint32_t)ts > rec->max_ts)
            rec->max_ts = (uint32_t)ts;
    }
    queue_tag(rec, t, (uint32_t)ts);
}

static void on_timeout(uv_timer_t *t)
{
    rec_t *rec = t->data;
    sp_info("relay", "recording timeout", "input=%s recording=%s", rec->input_uid, rec->uid);
    rec_end(rec);
}

void sp_rec_input_gone(sp_relay_input_t *in)
{
    rec_t *rec = in->rec;
    if (!rec)
        return;
    if (rec->state == REC_ERROR) {
        rec_end(rec);
        return;
    }
    if (rec->state != REC_ACTIVE)
        return;
    int64_t tmo = in->rec_timeout_s > 0 ? in->rec_timeout_s
                                          : (in->relay->cfg ? in->relay->cfg
                                                                  ->recording_timeout_seconds
                                                            : 0);
    if (tmo <= 0 || in->relay->stopping || !in->relay->loop) {
        rec_end(rec);
        return;
    }
    rec->state = REC_PAUSED;
    rec->have_base = false;
    rec->want_sidecar = true;
    pump(rec); /* flush what is queued now, not at the end of the timeout */
    rec->timer = sp_malloc(sizeof(*rec->timer));
    uv_timer_init(in->relay->loop, rec->timer);
    rec->timer->data = rec;
    uv_timer_start(rec->timer, on_timeout, (uint64_t)tmo * 1000, 0);
}

void sp_rec_input_detach(sp_relay_input_t *in)
{
    rec_t *rec = in->rec;
    if (rec) {
        /* the input goes away: the recording finishes on its own, without it */
        rec->in = NULL;
        in->rec = NULL;
        rec_end(rec);
    }
    json_decref(in->rec_last);
    in->rec_last = NULL;
}

void sp_rec_input_mode_changed(sp_relay_input_t *in)
{
    if (in->rec_mode == 0 && in->rec) {
        rec_t *rec = in->rec;
        rec_end(rec);
    } else if (in->rec_mode == 1 && !in->rec && in->publisher) {
        rec_start(in);
    }
}

json_t *sp_rec_input_json(const sp_relay_input_t *in)
{
    json_t *j = json_pack("{s:s, s:i, s:b, s:n, s:b}", "mode", sp_rec_mode_name(in->rec_mode),
                          "timeoutSeconds", in->rec_timeout_s, "requireSignedURLs", 0,
                          "allowedOrigins", "hideLiveViewerCount", 0);
    const rec_t *rec = in->rec;
    json_t *cur = rec ? rec_json(rec) : in->rec_last ? json_incref(in->rec_last) : NULL;
    if (cur) {
        json_object_set_new(cur, "bytes", json_integer(rec ? (json_int_t)(rec->bytes +
                                                                          rec->pend.bytes)
                                                           : json_integer_value(json_object_get(
                                                                 cur, "bytes"))));
        json_object_set_new(j, "current", cur);
    }
    return j;
}
