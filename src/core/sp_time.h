/*
 * sp_time: monotonic clocks (for timeouts, rates, durations) versus wall
 * clocks (for timestamps shown to people and stored). Never mix the two.
 */
#ifndef SP_TIME_H
#define SP_TIME_H

#include <stddef.h>
#include <stdint.h>

uint64_t sp_mono_ms(void);
uint64_t sp_mono_us(void);
int64_t sp_wall_ms(void);
/** RFC 3339 UTC with milliseconds, e.g. 2026-11-21T10:17:53.123Z. out >= 32. */
void sp_time_rfc3339(int64_t wall_ms, char *out, size_t outlen);
/**
 * Parses an RFC 3339 date-time of exactly len bytes ("2025-11-24T18:12:11.658Z", any number of
 * fraction digits up to 12 (milliseconds kept), "Z" or "+hh:mm" / "-hh:mm") into Unix ms.
 * SP_EINVAL for anything else. Years 0000-9999 only, so the result never overflows.
 */
int sp_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms);

#endif
