/* Unit tests: static path resolution (traversal) and MIME types. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_err.h"
#include "net/sp_static.h"

static int res(const char *p, char *out)
{
    return sp_static_resolve(p, strlen(p), out, 256);
}

Test(static_files, resolves_index_and_nested)
{
    char out[256];
    cr_assert_eq(res("/", out), 0);
    cr_assert_str_eq(out, "index.html");
    cr_assert_eq(res("/widgets/", out), 0);
    cr_assert_str_eq(out, "widgets/index.html");
    cr_assert_eq(res("/js//app.js", out), 0);
    cr_assert_str_eq(out, "js/app.js");
    cr_assert_eq(res("/a%20b.css", out), 0);
    cr_assert_str_eq(out, "a b.css");
}

Test(static_files, refuses_traversal_and_hidden)
{
    char out[256];
    const char *bad[] = { "/../etc/passwd",
                          "/js/../../x",
                          "/%2e%2e/etc/passwd",
                          "/.env",
                          "/a/.git/config",
                          "/a%00b",
                          "/a%5c..%5cb",
                          "/a\\b",
                          "/%zz",
                          "x" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(res(bad[i], out), SP_EINVAL, "accepted %s", bad[i]);
}

Test(static_files, mime_types)
{
    cr_assert_str_eq(sp_static_mime("a/b.js"), "text/javascript; charset=utf-8");
    cr_assert_str_eq(sp_static_mime("x.HTML"), "text/html; charset=utf-8");
    cr_assert_str_eq(sp_static_mime("noext"), "application/octet-stream");
}
