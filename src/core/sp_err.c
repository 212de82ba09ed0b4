/* sp_err: names and messages for the error table in sp_err.h. */
#include "core/sp_err.h"

#include <uv.h>

const char *sp_err_name(int err)
{
    switch (err) {
#define SP_ERR_NAME(name, code, msg)                                           \
    case code:                                                                 \
        return "SP_E" #name;
        SP_ERR_MAP(SP_ERR_NAME)
#undef SP_ERR_NAME
    case 0:
        return "OK";
    default:
        return err < 0 && err > -5000 ? uv_err_name(err) : "SP_EUNKNOWN";
    }
}

const char *sp_strerror(int err)
{
    switch (err) {
#define SP_ERR_MSG(name, code, msg)                                            \
    case code:                                                                 \
        return msg;
        SP_ERR_MAP(SP_ERR_MSG)
#undef SP_ERR_MSG
    case 0:
        return "success";
    default:
        return err < 0 && err > -5000 ? uv_strerror(err) : "unknown error";
    }
}
