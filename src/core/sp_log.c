/* sp_log: logfmt logger with mandatory redaction. */
#include "core/sp_log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_time.h"

#define LINE_MAX_BYTES 8192
#define MAX_SECRETS 32

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = 2;
static char *log_path;
static sp_log_level_t log_level = SP_LOG_INFO;
static unsigned long log_lines;
static char *secrets[MAX_SECRETS];
static size_t n_secrets;

static const char *level_names[] = { "debug", "info", "warn", "error" };

int sp_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcasecmp(s, level_names[i]) == 0)
            return i;
    if (s && strcasecmp(s, "warning") == 0)
        return SP_LOG_WARN;
    return -1;
}

static int open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int sp_log_open(sp_log_level_t level, const char *path)
{
    pthread_mutex_lock(&log_mu);
    log_level = level;
    int rc = 0;
    if (path && *path) {
        int fd = open_path(path);
        if (fd < 0) {
            rc = fd;
        } else {
            if (log_fd > 2)
                close(log_fd);
            log_fd = fd;
            sp_free(log_path);
            log_path = sp_strdup(path);
        }
    }
    pthread_mutex_unlock(&log_mu);
    return rc;
}

int sp_log_reopen(void)
{
    pthread_mutex_lock(&log_mu);
    int rc = 0;
    if (log_path) {
        int fd = open_path(log_path);
        if (fd < 0) {
            rc = fd;
        } else {
            if (log_fd > 2)
                close(log_fd);
            log_fd = fd;
        }
    }
    pthread_mutex_unlock(&log_mu);
    return rc;
}

void sp_log_close(void)
{
    pthread_mutex_lock(&log_mu);
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
    sp_free(log_path);
    log_path = NULL;
    for (size_t i = 0; i < n_secrets; i++)
        sp_free(secrets[i]);
    n_secrets = 0;
    pthread_mutex_unlock(&log_mu);
}

void sp_log_set_level(sp_log_level_t level)
{
    log_level = level;
}

bool sp_log_enabled(sp_log_level_t level)
{
    return level >= log_level;
}

void sp_log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 6)
        return;
    pthread_mutex_lock(&log_mu);
    for (size_t i = 0; i < n_secrets; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&log_mu);
            return;
        }
    }
    if (n_secrets < MAX_SECRETS)
        secrets[n_secrets++] = sp_strdup(secret);
    pthread_mutex_unlock(&log_mu);
}

/* ---- redaction -------------------------------------------------------------------- */

static const char *sensitive_words[] = { "password", "passwd", "secret", "token", "key",
                                         "authorization", "cookie", "session", "signature",
                                         "credential", "auth", NULL };

static bool key_is_sensitive(const char *k, size_t n)
{
    char low[64];
    if (n == 0 || n >= sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    low[n] = '\0';
    /* Descriptive keys about secrets, not secrets: session_name=, key_count=, keyframe... */
    static const char *harmless_suffix[] = { "_name", "_count", "_interval", "_ms", "_len", "_bytes",
                                             "_at", "_mib", "_t", NULL };
    for (int i = 0; harmless_suffix[i]; i++) {
        size_t sl = strlen(harmless_suffix[i]);
        if (n > sl && strcmp(low + n - sl, harmless_suffix[i]) == 0)
            return false;
    }
    if (strstr(low, "keyframe"))
        return false;
    for (int i = 0; sensitive_words[i]; i++)
        if (strstr(low, sensitive_words[i]))
            return true;
    return false;
}

static bool is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++)
        o->p[o->len++] = s[i];
}

static const char REDACTED[] = "[REDACTED]";

/* Length of an unquoted value starting at s (stops at separators). */
static size_t value_len(const char *s, size_t n, bool to_eol)
{
    size_t i = 0;
    if (to_eol) {
        while (i < n && s[i] != '\n' && s[i] != '\r' && s[i] != '"')
            i++;
        return i;
    }
    while (i < n && !isspace((unsigned char)s[i]) && s[i] != '&' && s[i] != ',' && s[i] != ';' &&
           s[i] != '"' && s[i] != '}' && s[i] != ']' && s[i] != ')' && s[i] != '\'')
        i++;
    return i;
}

/* Length of a quoted value body (after the opening quote), honouring backslash escapes. */
static size_t quoted_len(const char *s, size_t n, char q)
{
    size_t i = 0;
    while (i < n && s[i] != q) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        i++;
    }
    return i;
}

size_t sp_redact(const char *in, size_t len, char *out, size_t cap)
{
    out_t o = { out, 0, cap };
    if (cap == 0)
        return 0;
    size_t i = 0;
    while (i < len) {
        /* Registered secrets, longest-first not needed: any hit is replaced. */
        bool hit = false;
        for (size_t s = 0; s < n_secrets; s++) {
            size_t sl = strlen(secrets[s]);
            if (sl <= len - i && memcmp(in + i, secrets[s], sl) == 0) {
                put(&o, REDACTED, sizeof(REDACTED) - 1);
                i += sl;
                hit = true;
                break;
            }
        }
        if (hit)
            continue;
        /* Bearer / Basic credentials. */
        if ((len - i >= 7 && strncasecmp(in + i, "bearer ", 7) == 0) ||
            (len - i >= 6 && strncasecmp(in + i, "basic ", 6) == 0)) {
            size_t kw = tolower((unsigned char)in[i]) == 'b' && tolower((unsigned char)in[i + 1]) == 'e' ? 7 : 6;
            put(&o, in + i, kw);
            i += kw;
            size_t vl = value_len(in + i, len - i, false);
            if (vl) {
                put(&o, REDACTED, sizeof(REDACTED) - 1);
                i += vl;
            }
            continue;
        }
        /* rtmp(s)://host[:port]/app/KEY -> keep scheme, host and app, hide the rest. */
        if (len - i >= 7 && (strncasecmp(in + i, "rtmp://", 7) == 0 ||
                             (len - i >= 8 && strncasecmp(in + i, "rtmps://", 8) == 0))) {
            size_t ul = value_len(in + i, len - i, false);
            const char *u = in + i;
            size_t slashes = 0, cut = ul;
            for (size_t j = 0; j < ul; j++) {
                if (u[j] == '/' && ++slashes == 4) {
                    cut = j + 1;
                    break;
                }
            }
            put(&o, u, cut);
            if (cut < ul)
                put(&o, REDACTED, sizeof(REDACTED) - 1);
            i += ul;
            continue;
        }
        /* key separator value, at a key start. */
        if (is_key_char(in[i]) && (i == 0 || !is_key_char(in[i - 1]))) {
            size_t ks = i, ke = i;
            while (ke < len && is_key_char(in[ke]))
                ke++;
            size_t j = ke;
            bool json = ks > 0 && in[ks - 1] == '"' && j < len && in[j] == '"';
            if (json)
                j++;
            if (j < len && (in[j] == '=' || in[j] == ':') && key_is_sensitive(in + ks, ke - ks)) {
                bool colon = in[j] == ':';
                j++;
                bool header_style = colon && !json;
                while (j < len && in[j] == ' ' && colon)
                    j++;
                put(&o, in + ks, j - ks);
                if (j < len && (in[j] == '"' || in[j] == '\'')) {
                    char q = in[j];
                    size_t ql = quoted_len(in + j + 1, len - j - 1, q);
                    put(&o, &q, 1);
                    put(&o, REDACTED, sizeof(REDACTED) - 1);
                    j += 1 + ql;
                    if (j < len) {
                        put(&o, &q, 1);
                        j++;
                    }
                } else {
                    size_t vl = value_len(in + j, len - j, header_style);
                    if (vl)
                        put(&o, REDACTED, sizeof(REDACTED) - 1);
                    j += vl;
                }
                i = j;
                continue;
            }
            put(&o, in + ks, ke - ks);
            i = ke;
            continue;
        }
        put(&o, in + i, 1);
        i++;
    }
    o.p[o.len] = '\0';
    return o.len;
}

/* ---- writing --------------------------------------------------------------------- */

static void escape_into(char *dst, size_t *dl, size_t cap, const char *src, size_t n, bool quote)
{
    for (size_t i = 0; i < n && *dl + 5 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\n') {
            dst[(*dl)++] = '\\';
            dst[(*dl)++] = 'n';
        } else if (c == '\r') {
            dst[(*dl)++] = '\\';
            dst[(*dl)++] = 'r';
        } else if (quote && (c == '"' || c == '\\')) {
            dst[(*dl)++] = '\\';
            dst[(*dl)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *dl += (size_t)snprintf(dst + *dl, cap - *dl, "\\x%02x", c);
        } else {
            dst[(*dl)++] = (char)c;
        }
    }
}

void sp_log_write(sp_log_level_t level, const char *module, const char *user, const char *msg,
                  const char *fields, ...)
{
    if (level < log_level)
        return;
    char raw[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 64], ts[40];
    size_t rl = 0;
    sp_time_rfc3339(sp_wall_ms(), ts, sizeof(ts));
    rl += (size_t)snprintf(raw + rl, sizeof(raw) - rl, "time=%s level=%s module=%s", ts,
                           level_names[level & 3], module ? module : "main");
    if (user && *user) {
        rl += (size_t)snprintf(raw + rl, sizeof(raw) - rl, " user=");
        escape_into(raw, &rl, sizeof(raw), user, strlen(user), false);
    }
    rl += (size_t)snprintf(raw + rl, sizeof(raw) - rl, " msg=\"");
    escape_into(raw, &rl, sizeof(raw), msg ? msg : "", msg ? strlen(msg) : 0, true);
    if (rl < sizeof(raw) - 1)
        raw[rl++] = '"';
    if (fields && *fields && rl < sizeof(raw) - 2) {
        char fb[LINE_MAX_BYTES];
        va_list ap;
        va_start(ap, fields);
        int n = vsnprintf(fb, sizeof(fb), fields, ap);
        va_end(ap);
        if (n > 0) {
            raw[rl++] = ' ';
            escape_into(raw, &rl, sizeof(raw), fb, (size_t)n < sizeof(fb) ? (size_t)n : sizeof(fb) - 1, false);
        }
    }
    raw[rl < sizeof(raw) ? rl : sizeof(raw) - 1] = '\0';
    pthread_mutex_lock(&log_mu);
    size_t ll = sp_redact(raw, rl, line, sizeof(line) - 1);
    line[ll++] = '\n';
    ssize_t w = write(log_fd, line, ll);
    (void)w;
    log_lines++;
    pthread_mutex_unlock(&log_mu);
}
