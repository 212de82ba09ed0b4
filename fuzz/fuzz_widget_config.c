/*
 * libFuzzer target: the widget config validator (sp_widget_config). The input's first byte picks
 * the widget type; the rest is a JSON body (as PUT /api/widgets/{type}/config gets). Checks: a
 * refusal names a field and a reason and returns no config; an accepted config has exactly
 * the defaults' keys, validates again as a patch over the defaults (idempotent) and is equal
 * to the result; sp_wcfg_load never fails for a known type.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "livestream/sp_widget_config.h"

static void same_keys(const json_t *a, const json_t *b)
{
    if (!json_is_object(a))
        return;
    if (!json_is_object(b) || json_object_size(a) != json_object_size(b))
        abort();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) {
        json_t *w = json_object_get(b, k);
        if (w == NULL)
            abort();
        same_keys(v, w);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *type = (data[0] & 1) ? "chat" : "alertbox";
    json_t *patch = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (patch == NULL)
        return 0;
    char field[SP_WCFG_FIELD_CAP];
    const char *why = NULL;
    json_t *out = NULL, *def = sp_wcfg_defaults(type);
    int rc = sp_wcfg_apply(type, NULL, patch, &out, field, sizeof(field), &why);
    if (rc == SP_EINVAL) {
        if (out != NULL || why == NULL || strlen(field) >= sizeof(field))
            abort();
    } else if (rc == 0) {
        same_keys(def, out);
        json_t *again = NULL;
        if (sp_wcfg_apply(type, NULL, out, &again, NULL, 0, NULL) != 0 || !json_equal(again, out))
            abort();
        json_decref(again);
    } else if (rc != SP_ENOMEM) {
        abort();
    }
    json_t *loaded = sp_wcfg_load(type, patch);
    if (loaded == NULL)
        abort();
    same_keys(def, loaded);
    json_decref(loaded);
    json_decref(out);
    json_decref(def);
    json_decref(patch);
    return 0;
}
