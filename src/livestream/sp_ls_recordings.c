/*
 * sp_ls_recordings: listing, matching and retention of the relay's recordings
 * (see the header). The thread-pool side uses only libc; JSON is parsed on the loop.
 */
#include "livestream/sp_ls_recordings.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_job.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

#define REC_MAX_LIST 1000
#define REC_SIDECAR_MAX 16384

bool sp_ls_rec_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* ---- Range ---- */

/* digits only, no sign, no overflow; *p advanced */
static bool parse_num(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

int sp_ls_rec_range(const char *h, int64_t size, int64_t *start, int64_t *end)
{
    *start = 0;
    *end = size;
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    while (*p == ' ')
        p++;
    int64_t a = -1, b = -1;
    if (*p == '-') {
        p++;
        if (!parse_num(&p, &b))
            return 0;
        while (*p == ' ')
            p++;
        if (*p)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *start = b >= size ? 0 : size - b;
        *end = size;
        return 1;
    }
    if (!parse_num(&p, &a) || *p++ != '-')
        return 0;
    if (*p && !parse_num(&p, &b))
        return 0;
    while (*p == ' ')
        p++;
    if (*p || (b >= 0 && b < a))
        return 0;
    if (a >= size)
        return -1;
    *start = a;
    *end = b < 0 || b >= size ? size : b + 1;
    return 1;
}

/* ---- listing ---- */

typedef struct {
    char id[65];
    int64_t bytes;
    int64_t mtime_ms;
    char *sidecar; /* malloc'd (worker), or NULL */
} entry_t;

typedef struct {
    char dir[1200];
    char user[65];
    entry_t *v;
    size_t n;
    int err;
    sp_ls_rec_list_cb cb;
    void *ud;
} list_job_t;

static char *read_small(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(REC_SIDECAR_MAX + 1);
    size_t len = 0;
    while (buf && len < REC_SIDECAR_MAX) {
        ssize_t r = read(fd, buf + len, REC_SIDECAR_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf)
        buf[len] = 0;
    return buf;
}

/* the id of a "<id>.flv" name, or false */
static bool flv_id(const char *name, char *id, size_t cap)
{
    size_t n = strlen(name);
    if (n < 5 || n - 4 >= cap || strcmp(name + n - 4, ".flv") != 0)
        return false;
    memcpy(id, name, n - 4);
    id[n - 4] = 0;
    return sp_ls_rec_name_ok(id);
}

static void list_work(void *arg)
{
    list_job_t *j = arg;
    DIR *d = opendir(j->dir);
    if (!d) {
        j->err = errno == ENOENT ? 0 : -errno;
        return;
    }
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d)) != NULL && j->n < REC_MAX_LIST) {
        char id[65], path[1400];
        if (!flv_id(de->d_name, id, sizeof(id)))
            continue;
        snprintf(path, sizeof(path), "%s/%s.flv", j->dir, id);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (j->n == cap) {
            cap = cap ? cap * 2 : 16;
            entry_t *nv = realloc(j->v, cap * sizeof(*nv));
            if (!nv)
                break;
            j->v = nv;
        }
        entry_t *e = &j->v[j->n++];
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->bytes = (int64_t)st.st_size;
        e->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        snprintf(path, sizeof(path), "%s/%s.json", j->dir, id);
        e->sidecar = read_small(path);
    }
    closedir(d);
}

static int cmp_started(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "started_ms"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "started_ms"));
    return x < y ? 1 : x > y ? -1 : 0;
}

static void list_done(void *arg, int status)
{
    list_job_t *j = arg;
    json_t *list = NULL;
    int err = status != 0 ? SP_EUNAVAIL : j->err;
    if (err == 0) {
        json_t **items = sp_calloc(j->n + 1, sizeof(*items));
        size_t k = 0;
        for (size_t i = 0; i < j->n; i++) {
            entry_t *e = &j->v[i];
            json_t *side = e->sidecar ? json_loads(e->sidecar, 0, NULL) : NULL;
            if (!json_is_object(side)) {
                json_decref(side);
                side = NULL;
            }
            json_t *r = json_object();
            json_object_set_new(r, "id", json_string(e->id));
            char file[200];
            snprintf(file, sizeof(file), "%s/%s.flv", j->user, e->id);
            json_object_set_new(r, "file", json_string(file));
            json_object_set_new(r, "bytes", json_integer(e->bytes));
            json_t *dur = json_object_get(side, "duration_ms");
            json_object_set_new(r, "duration_ms", json_integer(json_is_integer(dur)
                                                                   ? json_integer_value(dur)
                                                                   : 0));
            const char *state = json_string_value(json_object_get(side, "state"));
            json_object_set_new(r, "state", json_string(state ? state : "unknown"));
            const char *error = json_string_value(json_object_get(side, "error"));
            if (error)
                json_object_set_new(r, "error", json_string(error));
            json_t *st = json_object_get(side, "started_ms");
            json_object_set_new(r, "started_ms",
                                json_integer(json_is_integer(st) ? json_integer_value(st)
                                                                 : e->mtime_ms));
            json_t *en = json_object_get(side, "ended_ms");
            json_object_set_new(r, "ended_ms", json_is_integer(en) ? json_integer(
                                                                         json_integer_value(en))
                                                                   : json_null());
            const char *input = json_string_value(json_object_get(side, "input_uid"));
            if (input)
                json_object_set_new(r, "input_uid", json_string(input));
            json_decref(side);
            items[k++] = r;
        }
        qsort(items, k, sizeof(*items), cmp_started);
        list = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append_new(list, items[i]);
        sp_free(items);
    }
    for (size_t i = 0; i < j->n; i++)
        free(j->v[i].sidecar);
    free(j->v);
    sp_ls_rec_list_cb cb = j->cb;
    void *ud = j->ud;
    sp_free(j);
    cb(err, list, ud);
}

int sp_ls_recordings_list(uv_loop_t *loop, const char *data_dir, const char *user_id,
                          sp_ls_rec_list_cb cb, void *ud)
{
    if (!data_dir || !data_dir[0] || !sp_ls_rec_name_ok(user_id) || !cb)
        return SP_EINVAL;
    list_job_t *j = sp_calloc(1, sizeof(*j));
    snprintf(j->dir, sizeof(j->dir), "%s/recordings/%s", data_dir, user_id);
    snprintf(j->user, sizeof(j->user), "%s", user_id);
    j->cb = cb;
    j->ud = ud;
    int rc = sp_job_submit(loop, list_work, list_done, j);
    if (rc != 0)
        sp_free(j);
    return rc;
}

/* ---- matching ---- */

void sp_ls_recordings_match(json_t *recs, const json_t *streams, int64_t now_ms)
{
    size_t i, k;
    json_t *r, *s;
    json_array_foreach(recs, i, r) {
        int64_t a0 = json_integer_value(json_object_get(r, "started_ms"));
        json_t *e = json_object_get(r, "ended_ms");
        int64_t a1 = json_is_integer(e) ? json_integer_value(e) : now_ms;
        int64_t best = 0;
        const char *best_id = NULL;
        json_array_foreach(streams, k, s) {
            json_t *js = json_object_get(s, "started_at");
            json_t *je = json_object_get(s, "ended_at");
            const char *id = json_string_value(json_object_get(s, "id"));
            if (!id || !json_is_integer(js))
                continue;
            int64_t b0 = json_integer_value(js);
            int64_t b1 = json_is_integer(je) ? json_integer_value(je) : now_ms;
            int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
            if (hi - lo > best || (!best_id && hi - lo >= 0)) {
                best = hi - lo;
                best_id = id;
            }
        }
        if (best_id)
            json_object_set_new(r, "stream_id", json_string(best_id));
    }
}

/* ---- retention ---- */

int sp_ls_recordings_sweep(const char *data_dir, int64_t cutoff_ms)
{
    char root[1200];
    snprintf(root, sizeof(root), "%s/recordings", data_dir);
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int deleted = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!sp_ls_rec_name_ok(de->d_name))
            continue;
        char udir[1300];
        snprintf(udir, sizeof(udir), "%s/%.64s", root, de->d_name); /* checked: <= 64 */
        DIR *u = opendir(udir);
        if (!u)
            continue;
        struct dirent *fe;
        while ((fe = readdir(u)) != NULL) {
            char id[65], path[1400];
            if (!flv_id(fe->d_name, id, sizeof(id)))
                continue;
            snprintf(path, sizeof(path), "%s/%s.flv", udir, id);
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
            if (mt >= cutoff_ms)
                continue;
            if (unlink(path) == 0)
                deleted++;
            snprintf(path, sizeof(path), "%s/%s.json", udir, id);
            unlink(path);
        }
        closedir(u);
    }
    closedir(d);
    return deleted;
}

struct sp_ls_retention_s {
    uv_loop_t *loop;
    char *data_dir;
    int64_t days;
    uint64_t interval_ms;
    uv_timer_t *timer;
    bool busy, freed;
    uint64_t deleted;
};

typedef struct {
    sp_ls_retention_t *rt;
    char dir[1100];
    int64_t cutoff_ms;
    int deleted;
} sweep_job_t;

static void sweep_work(void *arg)
{
    sweep_job_t *j = arg;
    j->deleted = sp_ls_recordings_sweep(j->dir, j->cutoff_ms);
}

static void rt_destroy(sp_ls_retention_t *rt)
{
    sp_free(rt->data_dir);
    sp_free(rt);
}

static void sweep_done(void *arg, int status)
{
    sweep_job_t *j = arg;
    sp_ls_retention_t *rt = j->rt;
    rt->busy = false;
    if (status == 0 && j->deleted > 0) {
        rt->deleted += (uint64_t)j->deleted;
        sp_info("recordings", "retention deleted recordings", "count=%d days=%lld", j->deleted,
                (long long)rt->days);
    }
    sp_free(j);
    if (rt->freed)
        rt_destroy(rt);
}

static void on_sweep_timer(uv_timer_t *t)
{
    sp_ls_retention_t *rt = t->data;
    if (rt->busy)
        return;
    sweep_job_t *j = sp_calloc(1, sizeof(*j));
    j->rt = rt;
    snprintf(j->dir, sizeof(j->dir), "%s", rt->data_dir);
    j->cutoff_ms = sp_wall_ms() - rt->days * 86400000LL;
    rt->busy = true;
    if (sp_job_submit(rt->loop, sweep_work, sweep_done, j) != 0) {
        rt->busy = false;
        sp_free(j);
    }
}

sp_ls_retention_t *sp_ls_retention_start(uv_loop_t *loop, const char *data_dir, int64_t days,
                                         uint64_t interval_ms)
{
    if (days <= 0 || !data_dir || !data_dir[0])
        return NULL;
    sp_ls_retention_t *rt = sp_calloc(1, sizeof(*rt));
    rt->loop = loop;
    rt->data_dir = sp_strdup(data_dir);
    rt->days = days;
    rt->interval_ms = interval_ms ? interval_ms : 3600000;
    rt->timer = sp_malloc(sizeof(*rt->timer));
    uv_timer_init(loop, rt->timer);
    rt->timer->data = rt;
    uv_unref((uv_handle_t *)rt->timer);
    uv_timer_start(rt->timer, on_sweep_timer, 1000, rt->interval_ms);
    return rt;
}

static void timer_closed(uv_handle_t *h)
{
    sp_free(h);
}

void sp_ls_retention_free(sp_ls_retention_t *rt)
{
    if (!rt)
        return;
    uv_close((uv_handle_t *)rt->timer, timer_closed);
    rt->timer = NULL;
    if (rt->busy)
        rt->freed = true;
    else
        rt_destroy(rt);
}
