#include <criterion/criterion.h>

#include "web/sp_debug_cli.h"
#include "core/sp_err.h"

Test(debug_cli, base_url_from_listen)
{
    char u[128];
    cr_assert_eq(sp_debug_cli_base_url("127.0.0.1:8080", u, sizeof(u)), 0);
    cr_assert_str_eq(u, "http://127.0.0.1:8080");
    cr_assert_eq(sp_debug_cli_base_url("0.0.0.0:80", u, sizeof(u)), 0);
    cr_assert_str_eq(u, "http://127.0.0.1:80");
    cr_assert_eq(sp_debug_cli_base_url("[::]:9000", u, sizeof(u)), 0);
    cr_assert_str_eq(u, "http://[::1]:9000");
    cr_assert_eq(sp_debug_cli_base_url(":7000", u, sizeof(u)), 0);
    cr_assert_str_eq(u, "http://127.0.0.1:7000");
    cr_assert_eq(sp_debug_cli_base_url("host", u, sizeof(u)), SP_EINVAL);
    cr_assert_eq(sp_debug_cli_base_url("h:x1", u, sizeof(u)), SP_EINVAL);
    cr_assert_eq(sp_debug_cli_base_url(NULL, u, sizeof(u)), SP_EINVAL);
    cr_assert_eq(sp_debug_cli_base_url("127.0.0.1:8080", u, 10), SP_ETOOBIG);
}
