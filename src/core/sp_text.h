/*
 * sp_text: the small text helpers every parser needs, written once and fuzzed through their
 * callers (HTTP query/cookies, static paths, REDIS_URL, Cloudflare payloads):
 *   sp_hex_digit     one hex digit's value (either case) or -1
 *   sp_pct_decode    percent-decoding of a byte range into a bounded NUL-terminated buffer
 *   sp_id_ok         an external id: 1..64 of [A-Za-z0-9_-] (Cloudflare uids, platform ids)
 *   sp_json_strcpy   a bounded JSON string getter (no truncation, no embedded NUL)
 * For hex/base64 of binary data use libsodium (sodium_bin2hex, sodium_hex2bin).
 */
#ifndef SP_TEXT_H
#define SP_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/** The value of a hex digit ('0'-'9', 'a'-'f', 'A'-'F'), or -1. */
int sp_hex_digit(int c);

#define SP_PCT_FORM 1u   /* '+' decodes to ' ' (application/x-www-form-urlencoded) */
#define SP_PCT_NO_NUL 2u /* "%00" is an error (paths, URLs) */
/**
 * Percent-decodes [s, s+n) into out (cap bytes including the NUL). A '%' not followed by two
 * hex digits is an error. Returns the decoded length, or SP_EINVAL (bad escape, or %00 with
 * SP_PCT_NO_NUL) / SP_ETOOBIG (does not fit); out is then unspecified but NUL-terminated when
 * cap > 0.
 */
long sp_pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags);

/** 1..64 characters of [A-Za-z0-9_-]; n is the length (s need not be NUL-terminated). */
bool sp_id_ok(const char *s, size_t n);

#define SP_JSON_REQUIRED 1u /* absent or null is an error */
/**
 * Copies obj[key] into dst (cap bytes incl. NUL). Absent or null: dst = "" and true unless
 * SP_JSON_REQUIRED. Not a string, longer than cap - 1, or with an embedded NUL: false, dst "".
 * *present (may be NULL) tells whether a string was copied.
 */
bool sp_json_strcpy(const json_t *obj, const char *key, char *dst, size_t cap, unsigned flags,
                    bool *present);

/** obj[key] as a C string when it is a JSON string, else NULL (borrowed from obj). */
const char *sp_json_str(const json_t *obj, const char *key);

#endif
