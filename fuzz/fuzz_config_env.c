/*
 * libFuzzer target: the whole configuration loader and validator (sp_config_load +
 * sp_config_check) under a hostile environment. Input: lines "<b><value>\n"; b selects the
 * variable (b % number of variables, or STREAMPAI_ENV when b == 0xff), the rest of the line is
 * its value (the last line for a name wins, like a later `export`). Values of secret variables
 * are given a marker prefix: the validator's report must never contain one. Every load is
 * cleaned up (LeakSanitizer finds a field not freed).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_config.h"

#define MAX_LINES 64
#define MARK "zqxSECRETzqx"

static const char *const secret_names[] = {
    "TOKEN_SIGNING_SECRET", "SECRETS_KEY", "ADMIN_TOKEN", "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_WEBHOOK_SECRET", "TWITCH_CLIENT_SECRET", "TWITCH_WEBHOOK_SECRET",
    "GOOGLE_CLIENT_SECRET", "RELAY_API_TOKEN", NULL
};

typedef struct {
    const char *name[MAX_LINES];
    char *val[MAX_LINES];
    size_t n;
} env_t;

static bool is_secret(const char *name)
{
    for (size_t i = 0; secret_names[i]; i++)
        if (strcmp(secret_names[i], name) == 0)
            return true;
    return false;
}

/* A non-secret variable whose value contains the secret's text (the fuzzer can write the
   marker anywhere) may rightly be shown in the report: that is no leak. */
static bool in_plain_value(const env_t *e, const char *secret)
{
    for (size_t j = 0; j < e->n; j++)
        if (!is_secret(e->name[j]) && strstr(e->val[j], secret))
            return true;
    return false;
}

static const char *get(const char *name, void *ud)
{
    const env_t *e = ud;
    for (size_t i = e->n; i-- > 0;)
        if (strcmp(e->name[i], name) == 0)
            return e->val[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static size_t nvars;
    if (nvars == 0)
        while (sp_config_var_name(nvars))
            nvars++;
    env_t e = { .n = 0 };
    size_t i = 0;
    while (i < n && e.n < MAX_LINES) {
        uint8_t b = d[i++];
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        size_t l = nl ? (size_t)(nl - (d + i)) : n - i;
        const char *name = b == 0xff ? "STREAMPAI_ENV" : sp_config_var_name(b % nvars);
        bool sec = is_secret(name);
        size_t pre = sec ? strlen(MARK) : 0;
        char *v = malloc(pre + l + 1);
        memcpy(v, MARK, pre);
        memcpy(v + pre, d + i, l);
        v[pre + l] = '\0';
        e.name[e.n] = name;
        e.val[e.n++] = v;
        i += l + 1;
    }
    sp_config_t c;
    char err[256] = "";
    if (sp_config_load(&c, get, &e, err, sizeof err) == 0) {
        char *rep = NULL;
        size_t replen = 0;
        FILE *f = open_memstream(&rep, &replen);
        if (f) {
            (void)sp_config_check(&c, get, &e, f);
            fclose(f);
            for (size_t k = 0; k < e.n; k++)
                if (is_secret(e.name[k]) && strlen(e.val[k]) > strlen(MARK) &&
                    !in_plain_value(&e, e.val[k]) &&
                    memmem(rep, replen, e.val[k], strlen(e.val[k])))
                    __builtin_trap(); /* a secret value reached the report */
            free(rep);
        }
        (void)sp_config_twitch_webhook(&c);
    } else if (err[0] == '\0') {
        __builtin_trap(); /* a refusal always says why */
    }
    sp_config_cleanup(&c);
    for (size_t k = 0; k < e.n; k++)
        free(e.val[k]);
    return 0;
}
