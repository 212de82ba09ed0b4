/*
 * sp_widget_config: the OBS widgets' settings (docs/widgets.md "Config schemas"), pure: the
 * defaults of each widget type and the validation of a saved config. No I/O, no allocation
 * beyond the jansson values it returns.
 *
 * The defaults define the shape: a config is an object whose keys are exactly the defaults'
 * keys (nested objects likewise). A patch (PUT body) may hold any subset; each present leaf is
 * checked against its rule (type and range, by name) and replaces the base's value; arrays
 * replace wholesale. An unknown key, a wrong JSON type or a value out of range is SP_EINVAL
 * with the dotted path of the field ("types.follow.duration_ms") and a short reason.
 */
#ifndef SP_WIDGET_CONFIG_H
#define SP_WIDGET_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SP_WCFG_FIELD_CAP 96
#define SP_WCFG_WORDS_MAX 100
#define SP_WCFG_WORD_MAX 64
#define SP_WCFG_URL_MAX 256
#define SP_WCFG_FONT_MAX 64

/** "alertbox" or "chat". */
bool sp_wcfg_type_ok(const char *type);
/** The defaults of a widget type (new reference), NULL for an unknown type. */
json_t *sp_wcfg_defaults(const char *type);

/**
 * Validates patch (an object) and merges it over base (a full config of that type; NULL =
 * the defaults). 0 with *out a new full config, or SP_EINVAL with field (the dotted path, ""
 * for the whole body) and *why (a static string) filled; SP_ENOMEM. field may be NULL.
 */
int sp_wcfg_apply(const char *type, const json_t *base, const json_t *patch, json_t **out,
                  char *field, size_t field_cap, const char **why);

/**
 * A stored config made whole: the defaults with every valid field of stored applied (an
 * invalid stored config, e.g. from an older schema, falls back to the defaults field by field
 * where possible, else entirely). New reference; NULL only for an unknown type.
 */
json_t *sp_wcfg_load(const char *type, const json_t *stored);

/**
 * The alert box's message filter (config `filter`): copies in (len bytes) to out (cap bytes,
 * NUL-terminated, cut at a UTF-8 boundary) with every whitespace-separated word that is a link
 * (when links: "://", "www." or a dotted host name with a common TLD) or contains one of
 * words (case-insensitive, ASCII) replaced by "***". Returns the length written.
 */
size_t sp_wcfg_mask_text(const char *in, size_t len, bool links, const json_t *words, char *out,
                         size_t cap);

#endif
