/*
 * sp_routes_uploads: widget images and sounds (docs/widgets.md).
 *   POST /api/widgets/uploads   raw body; Content-Type image/png|gif|jpeg|webp or
 *                               audio/mpeg|ogg|wav, checked against the magic bytes (415), at
 *                               most UPLOAD_MAX_BYTES (413) -> {url}
 *   GET  /uploads/{user}/{file} the stored file (public, immutable: the name is its SHA-256)
 * Files live in DATA_DIR/uploads/{user_id}/{sha256}.{ext}. Both path segments are checked
 * against strict patterns (user: [A-Za-z0-9_-]{1,64}; file: 64 lowercase hex, ".", a known
 * extension) before any path is built, so no request names a file outside that tree.
 * Disk work runs on the thread pool (sp_job).
 */
#include "web/sp_widgets.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_err.h"
#include "core/sp_job.h"
#include "core/sp_log.h"
#include "web/sp_web.h"

#define MOD "widgets"

typedef struct {
    const char *mime, *ext;
} kind_t;

static const kind_t kinds[] = {
    { "image/png", "png" },  { "image/gif", "gif" },  { "image/jpeg", "jpg" },
    { "image/webp", "webp" }, { "audio/mpeg", "mp3" }, { "audio/ogg", "ogg" },
    { "audio/wav", "wav" },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Does the content start like the claimed type? */
static bool magic_ok(const char *ext, const unsigned char *p, size_t n)
{
    if (strcmp(ext, "png") == 0)
        return n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0;
    if (strcmp(ext, "gif") == 0)
        return n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0);
    if (strcmp(ext, "jpg") == 0)
        return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF;
    if (strcmp(ext, "webp") == 0)
        return n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0;
    if (strcmp(ext, "wav") == 0)
        return n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WAVE", 4) == 0;
    if (strcmp(ext, "ogg") == 0)
        return n >= 4 && memcmp(p, "OggS", 4) == 0;
    if (strcmp(ext, "mp3") == 0) /* an ID3 tag, or an MPEG audio frame sync */
        return (n >= 3 && memcmp(p, "ID3", 3) == 0) ||
               (n >= 2 && p[0] == 0xFF && (p[1] & 0xE0) == 0xE0);
    return false;
}

static const kind_t *kind_of_type(const char *ct)
{
    if (ct == NULL)
        return NULL;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < N_KINDS; i++)
        if (strlen(kinds[i].mime) == n && strncasecmp(ct, kinds[i].mime, n) == 0)
            return &kinds[i];
    return NULL;
}

static const kind_t *kind_of_ext(const char *ext)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i].ext, ext) == 0)
            return &kinds[i];
    return NULL;
}

static bool user_segment_ok(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)u[i]) && u[i] != '-' && u[i] != '_')
            return false;
    return true;
}

/* "{64 lowercase hex}.{ext}" -> the kind, else NULL */
static const kind_t *file_segment_ok(const char *f)
{
    if (f == NULL || strlen(f) < 66 || strlen(f) > 70)
        return NULL;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)f[i]) || isupper((unsigned char)f[i]))
            return NULL;
    return f[64] == '.' ? kind_of_ext(f + 65) : NULL;
}

/* ---- sending a file --------------------------------------------------------------------- */

typedef struct {
    sp_http_req_t *req;
    char path[1024];
    char ctype[64];
    char cache[64];
    size_t max;
    unsigned char *data;
    size_t len;
    int err;
} send_job_t;

static void send_work(void *arg)
{
    send_job_t *j = arg;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        j->err = SP_ENOTFOUND;
        goto out;
    }
    if ((size_t)st.st_size > j->max) {
        j->err = SP_ETOOBIG;
        goto out;
    }
    j->data = malloc((size_t)st.st_size + 1);
    if (j->data == NULL) {
        j->err = SP_ENOMEM;
        goto out;
    }
    while (j->len < (size_t)st.st_size) {
        ssize_t r = read(fd, j->data + j->len, (size_t)st.st_size - j->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        j->len += (size_t)r;
    }
    if (j->len != (size_t)st.st_size)
        j->err = SP_EIO;
out:
    if (fd >= 0)
        close(fd);
}

static void send_done(void *arg, int status)
{
    send_job_t *j = arg;
    if (status != 0 && j->err == 0)
        j->err = SP_ECANCELED;
    if (j->err == SP_ENOTFOUND) {
        sp_http_respond_error(j->req, 404, "not_found", "not found");
    } else if (j->err) {
        sp_http_respond_error(j->req, 500, "internal", sp_strerror(j->err));
    } else {
        if (j->cache[0])
            sp_http_res_header(j->req, "Cache-Control", j->cache);
        sp_http_res_header(j->req, "X-Content-Type-Options", "nosniff");
        sp_http_respond(j->req, 200, j->ctype, j->data, j->len);
    }
    free(j->data);
    free(j);
}

void sp_widgets_send_file(sp_http_req_t *req, const char *path, size_t max,
                          const char *content_type, const char *cache_control)
{
    send_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        sp_http_respond_error(req, 503, "unavailable", "out of memory");
        return;
    }
    j->req = req;
    j->max = max;
    snprintf(j->path, sizeof(j->path), "%s", path);
    snprintf(j->ctype, sizeof(j->ctype), "%s",
             content_type ? content_type : "application/octet-stream");
    snprintf(j->cache, sizeof(j->cache), "%s", cache_control ? cache_control : "");
    if (sp_job_submit(sp_http_req_loop(req), send_work, send_done, j) != 0) {
        sp_http_respond_error(req, 503, "unavailable", "cannot read the file");
        free(j);
    }
}

/* ---- upload ------------------------------------------------------------------------------ */

typedef struct {
    sp_http_req_t *req;
    char dir[1024];
    char path[1200];
    char url[256];
    unsigned char *data;
    size_t len;
    int err;
} up_job_t;

static int mkdir_p(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return SP_EIO;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? SP_EIO : 0;
}

static void up_work(void *arg)
{
    up_job_t *j = arg;
    struct stat st;
    if (stat(j->path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == j->len)
        return; /* the same content is already there (the name is its hash) */
    if ((j->err = mkdir_p(j->dir)) != 0)
        return;
    char tmp[1300];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", j->path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        j->err = SP_EIO;
        return;
    }
    size_t off = 0;
    while (off < j->len) {
        ssize_t w = write(fd, j->data + off, j->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == j->len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, j->path) != 0) {
        unlink(tmp);
        j->err = errno == ENOSPC ? SP_EDISKFULL : SP_EIO;
    }
}

static void up_done(void *arg, int status)
{
    up_job_t *j = arg;
    if (status != 0 && j->err == 0)
        j->err = SP_ECANCELED;
    if (j->err) {
        sp_warn(MOD, "upload not stored", "err=%s", sp_err_name(j->err));
        sp_http_respond_error(j->req, j->err == SP_EDISKFULL ? 507 : 500, "internal",
                              "the file could not be stored");
    } else {
        sp_http_respond_json(j->req, 200, json_pack("{s:s}", "url", j->url));
    }
    free(j->data);
    free(j);
}

static void h_upload(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *user = sp_web_user(req);
    const kind_t *k = kind_of_type(sp_http_req_header(req, "Content-Type"));
    const sp_buf_t *body = sp_http_req_body(req);
    if (k == NULL) {
        sp_http_respond_error(req, 415, "unsupported_media_type",
                              "image/png, image/gif, image/jpeg, image/webp, audio/mpeg, "
                              "audio/ogg or audio/wav");
        return;
    }
    if (body == NULL || body->len == 0 || !magic_ok(k->ext, (const unsigned char *)body->p,
                                                    body->len)) {
        sp_http_respond_error(req, 415, "unsupported_media_type",
                              "the content does not match its Content-Type");
        return;
    }
    if (body->len > (size_t)app->cfg->upload_max_bytes) {
        sp_http_respond_error(req, 413, "too_large", "over UPLOAD_MAX_BYTES");
        return;
    }
    if (!user_segment_ok(user)) {
        sp_http_respond_error(req, 403, "forbidden", "user id not usable as a folder name");
        return;
    }
    up_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->data = malloc(body->len)) == NULL) {
        free(j);
        sp_http_respond_error(req, 503, "unavailable", "out of memory");
        return;
    }
    memcpy(j->data, body->p, body->len);
    j->len = body->len;
    j->req = req;
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256(h, j->data, j->len);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(j->dir, sizeof(j->dir), "%s/uploads/%s", app->cfg->data_dir, user);
    snprintf(j->path, sizeof(j->path), "%s/%s.%s", j->dir, hex, k->ext);
    snprintf(j->url, sizeof(j->url), "/uploads/%s/%s.%s", user, hex, k->ext);
    if (sp_job_submit(app->loop, up_work, up_done, j) != 0) {
        free(j->data);
        free(j);
        sp_http_respond_error(req, 503, "unavailable", "cannot store the file");
    }
}

static void h_serve(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *user = sp_http_req_param(req, "user");
    const char *file = sp_http_req_param(req, "file");
    const kind_t *k = file_segment_ok(file);
    if (!user_segment_ok(user) || k == NULL) {
        sp_http_respond_error(req, 404, "not_found", "not found");
        return;
    }
    char path[1200];
    snprintf(path, sizeof(path), "%s/uploads/%s/%s", app->cfg->data_dir, user, file);
    sp_widgets_send_file(req, path, (size_t)app->cfg->upload_max_bytes, k->mime,
                         "public, max-age=31536000, immutable");
}

void sp_routes_uploads_register(sp_app_t *app)
{
    /* the body limit answers 413 before the handler reads anything */
    sp_route_opts_t up = { .body_limit = (size_t)app->cfg->upload_max_bytes,
                           .flags = SP_ROUTE_AUTH };
    sp_route_opts_t pub = { .body_limit = 0, .flags = SP_ROUTE_PUBLIC };
    sp_router_add(app->router, "POST", "/api/widgets/uploads", h_upload, app, &up);
    sp_router_add(app->router, "GET", "/uploads/{user}/{file}", h_serve, app, &pub);
}
