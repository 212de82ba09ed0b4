/*
 * sp_registry: the seed's Registry. Finds a user's manager and its components
 * in O(1) by key, like {:user_stream_manager, id}, {:stream_state, id},
 * {:cloudflare_input, id}, {:cloudflare_output, id},
 * {:platform_monitor, id, platform}. Keys are rendered as
 * "kind:user_id[:platform]". Values are borrowed (the registry never frees
 * them); a component registers itself when it starts and unregisters when it
 * stops. Keeps a count per kind (for the debug view and /metrics).
 */
#ifndef SP_REGISTRY_H
#define SP_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SP_REG_USER_STREAM_MANAGER = 0,
    SP_REG_STREAM_STATE,
    SP_REG_CLOUDFLARE_INPUT,
    SP_REG_CLOUDFLARE_OUTPUT,
    SP_REG_PLATFORM_MONITOR,
    SP_REG_ALERT_QUEUE,
    SP_REG_KIND_COUNT
} sp_reg_kind_t;

typedef struct sp_registry_s sp_registry_t;

sp_registry_t *sp_registry_new(void);
void sp_registry_free(sp_registry_t *r);

/** platform: NULL except for SP_REG_PLATFORM_MONITOR. SP_EEXISTS if taken, SP_EINVAL on bad key. */
int sp_registry_register(sp_registry_t *r, sp_reg_kind_t kind, const char *user_id,
                         const char *platform, void *value);
void *sp_registry_lookup(const sp_registry_t *r, sp_reg_kind_t kind, const char *user_id,
                         const char *platform);
/** Removes the entry only if it still maps to value (value NULL: whatever it maps to). */
bool sp_registry_unregister(sp_registry_t *r, sp_reg_kind_t kind, const char *user_id,
                            const char *platform, void *value);
size_t sp_registry_count(const sp_registry_t *r, sp_reg_kind_t kind);
size_t sp_registry_total(const sp_registry_t *r);
const char *sp_registry_kind_name(sp_reg_kind_t kind);

/** Renders the key; returns its length or SP_ETOOBIG / SP_EINVAL. */
int sp_registry_key(char *out, size_t cap, sp_reg_kind_t kind, const char *user_id,
                    const char *platform);

/** Iterates entries of one kind: it starts at 0. Returns false at the end. */
bool sp_registry_next(const sp_registry_t *r, sp_reg_kind_t kind, size_t *it, const char **user_id,
                      size_t *user_id_len, void **value);

#endif
