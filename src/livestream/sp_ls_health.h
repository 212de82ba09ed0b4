/*
 * sp_ls_health: the input health shown in GET /api/stream as input.health
 * (docs/api.md): what the media service reported about the encoder's stream,
 * range-checked, plus warnings computed here: keyframe interval over 4 s,
 * bitrate over a destination platform's limit, audio missing. Pure.
 */
#ifndef SP_LS_HEALTH_H
#define SP_LS_HEALTH_H

#include <jansson.h>
#include <stddef.h>

#define SP_LS_MAX_KEYFRAME_INTERVAL_MS 4000

/** A platform's ingest bitrate limit in kbit/s (twitch 6000, youtube 51000, facebook 9000,
 *  kick 8000); 0 = none (custom, unknown). */
int sp_ls_platform_bitrate_limit(const char *platform);
/**
 * The health object the media service reported (the relay's "health" extension), copied
 * field by field with type and range checks; unknown fields are dropped. NULL when raw is not
 * an object or has neither video nor audio.
 */
json_t *sp_ls_health_sanitize(const json_t *raw);
/**
 * A new object: health (sanitized) plus "warnings": [{code, message, ...}] for the
 * destinations' platforms (n names, NULLs and duplicates allowed).
 */
json_t *sp_ls_health_view(const json_t *health, const char *const *platforms, size_t n);

#endif
