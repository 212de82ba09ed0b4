/*
 * sp_authcheck: the pure input checks of the auth module (unit-tested and
 * fuzzed): email normalisation, display-name validation, the CSRF decision,
 * the Authorization header, origin extraction and rate-limit keys.
 */
#ifndef SP_AUTHCHECK_H
#define SP_AUTHCHECK_H

#include <stdbool.h>
#include <stddef.h>

#define SP_EMAIL_MAX 254
#define SP_DISPLAY_NAME_MAX 64 /* code points */
#define SP_DISPLAY_NAME_BYTES (SP_DISPLAY_NAME_MAX * 4 + 1)
#define SP_ORIGIN_MAX 256

/**
 * Trims ASCII whitespace, lower-cases, and checks a basic addr-spec:
 * local@domain, local 1..64 bytes of printable ASCII (no specials/quotes),
 * domain of dot-separated labels [a-z0-9-] (no leading/trailing '-'), with at
 * least one dot, total <= 254. out needs cap >= 255. 0 or SP_EINVAL.
 */
int sp_auth_normalize_email(const char *in, size_t len, char *out, size_t cap);

/**
 * Trims ASCII whitespace; valid UTF-8, no control characters, 1..64 code
 * points. out needs cap >= SP_DISPLAY_NAME_BYTES. 0, SP_EINVAL (empty or
 * control chars), SP_ETOOBIG, SP_EUTF8.
 */
int sp_auth_check_display_name(const char *in, size_t len, char *out, size_t cap);

/**
 * The CSRF decision for one request (0 = allowed, SP_EFORBIDDEN):
 *  - safe methods (GET, HEAD, OPTIONS) pass;
 *  - Sec-Fetch-Site: cross-site is refused;
 *  - an Origin header must be one of origins[] (then it passes), any other
 *    Origin (including "null") is refused even with a token;
 *  - without Origin, header_token must equal cookie_token and expected
 *    (constant-time; expected is the token bound to the session).
 * Any argument but method may be NULL.
 */
int sp_auth_csrf_check(const char *method, const char *origin, const char *sec_fetch_site,
                       const char *header_token, const char *cookie_token, const char *expected,
                       const char *const *origins, size_t n_origins);

/** "Bearer <tok>" (scheme case-insensitive): pointer to the token, else NULL. */
const char *sp_auth_bearer(const char *authorization);

/** "https://Host:443/path" -> "https://host" (lower-cased, default port dropped).
 *  0 or SP_EINVAL. */
int sp_auth_url_origin(const char *url, char *out, size_t cap);

/** Rate-limit key of a client address: IPv4 as is, IPv6 grouped by /64. */
void sp_auth_ip_key(const char *ip, char *out, size_t cap);

#endif
