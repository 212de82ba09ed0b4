/*
 * sp_time: monotonic clocks (for timeouts, rates, durations) versus wall
 * clocks (for timestamps shown to people and stored). Never mix the two.
 */
#ifndef SP_TIME_H
#define SP_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Unix times taken from outside (webhooks, tokens, API answers) are range-checked against
 * these before any arithmetic: 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define SP_TIME_MAX_S 253402300799LL
#define SP_TIME_MAX_MS (SP_TIME_MAX_S * 1000 + 999)

/** Unix seconds from outside as ms: 0 and *out_ms when 0 <= s <= SP_TIME_MAX_S, else SP_EINVAL
 *  (*out_ms untouched). */
int sp_time_s_to_ms(int64_t s, int64_t *out_ms);

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
