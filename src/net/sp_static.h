/*
 * sp_static: static files from WEB_DIR (dashboard and widget pages).
 * GET/HEAD only, MIME types by extension, ETag + If-None-Match (304), no path
 * traversal (the decoded path is checked segment by segment, and the resolved
 * real path must stay under the root). File reads run on the thread pool; a
 * small in-memory cache (revalidated by stat at most once a second) serves
 * hot files from the loop without a thread hop.
 */
#ifndef SP_STATIC_H
#define SP_STATIC_H

#include <stddef.h>
#include <uv.h>

#include "net/sp_http.h"

typedef struct sp_static_s sp_static_t;

sp_static_t *sp_static_new(uv_loop_t *loop, const char *root);
void sp_static_free(sp_static_t *st);
/** Route handler (ud = the sp_static_t) for "GET /" and "GET /{*path}". */
void sp_static_handle(sp_http_req_t *req, void *ud);

/**
 * Pure: maps a raw URL path to a relative file path. Percent-decodes, rejects
 * NUL, backslash, "." and ".." segments and hidden files; "/" and paths ending
 * in "/" get "index.html". Returns 0 or SP_EINVAL / SP_ETOOBIG.
 */
int sp_static_resolve(const char *url_path, size_t len, char *out, size_t cap);
const char *sp_static_mime(const char *path);

#endif
