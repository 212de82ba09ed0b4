/* sp_static: cached static file serving. */
#include "net/sp_static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_job.h"
#include "core/sp_map.h"
#include "core/sp_time.h"

#define MAX_FILE (8u << 20)
#define MAX_CACHE_TOTAL (64u << 20)
#define REVALIDATE_MS 1000

typedef struct {
    char *body;
    size_t len;
    char etag[48];
    const char *mime;
    uint64_t checked_ms;
    int64_t mtime_ns;
} entry_t;

struct sp_static_s {
    uv_loop_t *loop;
    char root[PATH_MAX];
    sp_map_t *cache; /* rel path -> entry_t */
    size_t cache_bytes;
    int pending; /* jobs in flight */
    bool freed;
};

static void entry_free(void *p)
{
    entry_t *e = p;
    if (e) {
        sp_free(e->body);
        sp_free(e);
    }
}

sp_static_t *sp_static_new(uv_loop_t *loop, const char *root)
{
    sp_static_t *st = sp_calloc(1, sizeof(*st));
    st->loop = loop;
    if (realpath(root, st->root) == NULL)
        snprintf(st->root, sizeof(st->root), "%s", root);
    st->cache = sp_map_new(entry_free);
    return st;
}

void sp_static_free(sp_static_t *st)
{
    if (st == NULL)
        return;
    sp_map_free(st->cache);
    st->cache = NULL;
    st->freed = true;
    if (st->pending == 0)
        sp_free(st);
}

static const struct {
    const char *ext, *mime;
} mimes[] = {
    { ".html", "text/html; charset=utf-8" },       { ".css", "text/css; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },   { ".mjs", "text/javascript; charset=utf-8" },
    { ".json", "application/json" },               { ".svg", "image/svg+xml" },
    { ".png", "image/png" },                       { ".jpg", "image/jpeg" },
    { ".jpeg", "image/jpeg" },                     { ".gif", "image/gif" },
    { ".webp", "image/webp" },                     { ".ico", "image/x-icon" },
    { ".woff2", "font/woff2" },                    { ".woff", "font/woff" },
    { ".txt", "text/plain; charset=utf-8" },       { ".mp3", "audio/mpeg" },
    { ".ogg", "audio/ogg" },                       { ".wav", "audio/wav" },
    { ".webm", "video/webm" },                     { ".mp4", "video/mp4" },
    { ".map", "application/json" },               { ".webmanifest", "application/manifest+json" },
};

const char *sp_static_mime(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++)
            if (strcasecmp(dot, mimes[i].ext) == 0)
                return mimes[i].mime;
    return "application/octet-stream";
}

int sp_static_resolve(const char *url_path, size_t len, char *out, size_t cap)
{
    char dec[1024];
    size_t dl = 0;
    if (len == 0 || url_path[0] != '/')
        return SP_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char ch = url_path[i];
        if (ch == '%') {
            if (i + 2 >= len + 0 || sp_hex_digit((unsigned char)url_path[i + 1]) < 0 ||
                sp_hex_digit((unsigned char)url_path[i + 2]) < 0)
                return SP_EINVAL;
            ch = (char)(sp_hex_digit((unsigned char)url_path[i + 1]) * 16 +
                        sp_hex_digit((unsigned char)url_path[i + 2]));
            i += 2;
        }
        if (ch == '\0' || ch == '\\')
            return SP_EINVAL;
        if (dl + 1 >= sizeof(dec))
            return SP_ETOOBIG;
        dec[dl++] = ch;
    }
    dec[dl] = '\0';
    /* Check every segment. */
    size_t o = 0;
    const char *p = dec;
    while (*p) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *e = strchr(p, '/');
        size_t sl = e ? (size_t)(e - p) : strlen(p);
        if (p[0] == '.') /* ".", "..", and hidden files */
            return SP_EINVAL;
        if (o + sl + 2 >= cap)
            return SP_ETOOBIG;
        if (o)
            out[o++] = '/';
        memcpy(out + o, p, sl);
        o += sl;
        p += sl;
    }
    if (o == 0 || dec[dl - 1] == '/') {
        const char *idx = "index.html";
        if (o + 12 >= cap)
            return SP_ETOOBIG;
        if (o)
            out[o++] = '/';
        memcpy(out + o, idx, 10);
        o += 10;
    }
    out[o] = '\0';
    return 0;
}

/* ---- loading (thread pool) ------------------------------------------------------------ */

typedef struct {
    sp_static_t *st;
    sp_http_req_t *req;
    char rel[1024];
    char found_rel[1100];
    int err; /* 0, SP_ENOTFOUND, SP_ETOOBIG, SP_EIO */
    char *body;
    size_t len;
    int64_t mtime_ns;
} load_t;

static int try_read(load_t *l, const char *rel)
{
    char full[PATH_MAX + 1100], real[PATH_MAX];
    snprintf(full, sizeof(full), "%s/%s", l->st->root, rel);
    if (realpath(full, real) == NULL)
        return SP_ENOTFOUND;
    size_t rl = strlen(l->st->root);
    if (strncmp(real, l->st->root, rl) != 0 || (real[rl] != '/' && real[rl] != '\0'))
        return SP_ENOTFOUND; /* a symlink out of the root */
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SP_ENOTFOUND;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return SP_ENOTFOUND;
    }
    if ((size_t)sb.st_size > MAX_FILE) {
        close(fd);
        return SP_ETOOBIG;
    }
    l->body = sp_malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, l->body + got, (size_t)sb.st_size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    l->len = got;
    l->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    snprintf(l->found_rel, sizeof(l->found_rel), "%s", rel);
    return 0;
}

static void load_work(void *arg)
{
    load_t *l = arg;
    l->err = try_read(l, l->rel);
    if (l->err == SP_ENOTFOUND &&
        strchr(strrchr(l->rel, '/') ? strrchr(l->rel, '/') : l->rel, '.') == NULL) {
        char alt[1100];
        snprintf(alt, sizeof(alt), "%s.html", l->rel); /* /login -> login.html */
        l->err = try_read(l, alt);
    }
}

static void serve_entry(sp_http_req_t *req, const entry_t *e)
{
    const char *inm = sp_http_req_header(req, "if-none-match");
    sp_http_res_header(req, "ETag", e->etag);
    sp_http_res_header(req, "Cache-Control", "no-cache");
    if (strncmp(e->mime, "text/html", 9) == 0) {
        sp_http_res_header(
            req, "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: https:; media-src 'self' data: blob: https:; "
            "style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors "
            "'self'");
        sp_http_res_header(req, "Referrer-Policy", "same-origin");
    }
    if (inm && (strcmp(inm, e->etag) == 0 || strcmp(inm, "*") == 0)) {
        sp_http_respond(req, 304, NULL, NULL, 0);
        return;
    }
    sp_http_respond(req, 200, e->mime, e->body, e->len);
}

static void load_done(void *arg, int status)
{
    load_t *l = arg;
    sp_static_t *st = l->st;
    st->pending--;
    if (st->freed || status < 0) {
        sp_http_respond_error(l->req, 503, "unavailable", "shutting down");
        goto out;
    }
    if (l->err == SP_ENOTFOUND) {
        sp_map_dels(st->cache, l->rel, NULL);
        sp_http_respond_error(l->req, 404, "not_found", "no such file");
        goto out;
    }
    if (l->err < 0) {
        sp_http_respond_error(l->req, 500, "file_error", "file cannot be served");
        goto out;
    }
    entry_t *e = sp_calloc(1, sizeof(*e));
    e->body = l->body;
    l->body = NULL;
    e->len = l->len;
    e->mtime_ns = l->mtime_ns;
    e->mime = sp_static_mime(l->found_rel);
    e->checked_ms = sp_mono_ms();
    snprintf(e->etag, sizeof(e->etag), "\"%zx-%llx\"", e->len, (unsigned long long)e->mtime_ns);
    serve_entry(l->req, e);
    entry_t *old = sp_map_gets(st->cache, l->rel);
    if (old)
        st->cache_bytes -= old->len;
    if (st->cache_bytes + e->len <= MAX_CACHE_TOTAL && e->len <= (1u << 20)) {
        st->cache_bytes += e->len;
        sp_map_sets(st->cache, l->rel, e);
    } else {
        sp_map_dels(st->cache, l->rel, NULL);
        entry_free(e);
    }
out:
    sp_free(l->body);
    if (st->freed && st->pending == 0)
        sp_free(st);
    sp_free(l);
}

void sp_static_handle(sp_http_req_t *req, void *ud)
{
    sp_static_t *st = ud;
    char rel[1024];
    const char *path = sp_http_req_path(req);
    if (sp_static_resolve(path, strlen(path), rel, sizeof(rel)) < 0) {
        sp_http_respond_error(req, 404, "not_found", "no such file");
        return;
    }
    entry_t *e = sp_map_gets(st->cache, rel);
    if (e && sp_mono_ms() - e->checked_ms < REVALIDATE_MS) {
        serve_entry(req, e);
        return;
    }
    load_t *l = sp_calloc(1, sizeof(*l));
    l->st = st;
    l->req = req;
    snprintf(l->rel, sizeof(l->rel), "%s", rel);
    if (sp_job_submit(st->loop, load_work, load_done, l) < 0) {
        sp_free(l);
        sp_http_respond_error(req, 503, "unavailable", "server busy");
        return;
    }
    st->pending++;
}
