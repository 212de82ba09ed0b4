/*
 * sp_registry: keyed lookup of per-user components over sp_map.
 */
#include "core/sp_registry.h"

#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_map.h"

#define KEY_MAX 256

struct sp_registry_s {
    sp_map_t *map;
    size_t counts[SP_REG_KIND_COUNT];
};

static const char *const kind_names[SP_REG_KIND_COUNT] = {
    "user_stream_manager", "stream_state",     "cloudflare_input",
    "cloudflare_output",   "platform_monitor", "alert_queue",
};

const char *sp_registry_kind_name(sp_reg_kind_t kind)
{
    if ((unsigned)kind >= SP_REG_KIND_COUNT) return "unknown";
    return kind_names[kind];
}

static bool part_ok(const char *s)
{
    if (s == NULL || s[0] == '\0') return false;
    for (const char *p = s; *p; p++)
        if (*p == ':') return false;
    return true;
}

int sp_registry_key(char *out, size_t cap, sp_reg_kind_t kind, const char *user_id,
                    const char *platform)
{
    if ((unsigned)kind >= SP_REG_KIND_COUNT || !part_ok(user_id)) return SP_EINVAL;
    bool want_platform = kind == SP_REG_PLATFORM_MONITOR;
    if (want_platform != (platform != NULL)) return SP_EINVAL;
    if (platform != NULL && !part_ok(platform)) return SP_EINVAL;
    int n = platform ? snprintf(out, cap, "%s:%s:%s", kind_names[kind], user_id, platform)
                     : snprintf(out, cap, "%s:%s", kind_names[kind], user_id);
    if (n < 0 || (size_t)n >= cap) return SP_ETOOBIG;
    return n;
}

sp_registry_t *sp_registry_new(void)
{
    sp_registry_t *r = sp_calloc(1, sizeof(*r));
    r->map = sp_map_new(NULL);
    return r;
}

void sp_registry_free(sp_registry_t *r)
{
    if (r == NULL) return;
    sp_map_free(r->map);
    sp_free(r);
}

int sp_registry_register(sp_registry_t *r, sp_reg_kind_t kind, const char *user_id,
                         const char *platform, void *value)
{
    char key[KEY_MAX];
    int n = sp_registry_key(key, sizeof(key), kind, user_id, platform);
    if (n < 0) return n;
    if (value == NULL) return SP_EINVAL;
    if (sp_map_get(r->map, key, (size_t)n) != NULL) return SP_EEXISTS;
    sp_map_set(r->map, key, (size_t)n, value);
    r->counts[kind]++;
    return 0;
}

void *sp_registry_lookup(const sp_registry_t *r, sp_reg_kind_t kind, const char *user_id,
                         const char *platform)
{
    char key[KEY_MAX];
    int n = sp_registry_key(key, sizeof(key), kind, user_id, platform);
    if (n < 0) return NULL;
    return sp_map_get(r->map, key, (size_t)n);
}

bool sp_registry_unregister(sp_registry_t *r, sp_reg_kind_t kind, const char *user_id,
                            const char *platform, void *value)
{
    char key[KEY_MAX];
    int n = sp_registry_key(key, sizeof(key), kind, user_id, platform);
    if (n < 0) return false;
    void *cur = sp_map_get(r->map, key, (size_t)n);
    if (cur == NULL || (value != NULL && cur != value)) return false;
    sp_map_del(r->map, key, (size_t)n, &cur);
    r->counts[kind]--;
    return true;
}

size_t sp_registry_count(const sp_registry_t *r, sp_reg_kind_t kind)
{
    if ((unsigned)kind >= SP_REG_KIND_COUNT) return 0;
    return r->counts[kind];
}

size_t sp_registry_total(const sp_registry_t *r)
{
    return sp_map_count(r->map);
}

bool sp_registry_next(const sp_registry_t *r, sp_reg_kind_t kind, size_t *it, const char **user_id,
                      size_t *user_id_len, void **value)
{
    if ((unsigned)kind >= SP_REG_KIND_COUNT) return false;
    size_t plen = strlen(kind_names[kind]);
    const char *k;
    size_t kl;
    void *v;
    while (sp_map_next(r->map, it, &k, &kl, &v)) {
        if (kl <= plen + 1 || memcmp(k, kind_names[kind], plen) != 0 || k[plen] != ':') continue;
        const char *u = k + plen + 1;
        size_t ul = kl - plen - 1;
        const char *colon = memchr(u, ':', ul);
        if (colon) ul = (size_t)(colon - u);
        if (user_id) *user_id = u;
        if (user_id_len) *user_id_len = ul;
        if (value) *value = v;
        return true;
    }
    return false;
}
