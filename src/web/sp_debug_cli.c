/*
 * sp_debug_cli: the `streampai debug` command (see the header).
 */
#include "web/sp_debug_cli.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_buf.h"
#include "core/sp_err.h"

static const char *const whats[] = { "presence", "managers", "users", "counts", NULL };

int sp_debug_cli_base_url(const char *listen, char *out, size_t cap)
{
    if (listen == NULL || listen[0] == '\0') return SP_EINVAL;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon[1] == '\0') return SP_EINVAL;
    const char *port = colon + 1;
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') return SP_EINVAL;
    size_t hl = (size_t)(colon - listen);
    char host[256];
    if (hl >= sizeof(host)) return SP_EINVAL;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    const char *h = host;
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0) h = "127.0.0.1";
    else if (strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0) h = "[::1]";
    bool v6 = strchr(h, ':') != NULL && h[0] != '[';
    int n = snprintf(out, cap, v6 ? "http://[%s]:%s" : "http://%s:%s", h, port);
    return (n < 0 || (size_t)n >= cap) ? SP_ETOOBIG : 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sp_buf_t *b = ud;
    if (sp_buf_append(b, p, size * n) != 0) return 0;
    return size * n;
}

int sp_debug_cli_main(int argc, char **argv, const sp_config_t *cfg)
{
    const char *what = argc > 2 ? argv[2] : NULL;
    const char *url_arg = NULL;
    for (int i = 3; i + 1 < argc; i++)
        if (strcmp(argv[i], "--url") == 0) url_arg = argv[i + 1];
    bool ok_what = false;
    for (int i = 0; what && whats[i]; i++) ok_what |= strcmp(what, whats[i]) == 0;
    if (!ok_what) {
        fprintf(stderr, "usage: streampai debug presence|managers|users|counts [--url URL]\n");
        return 2;
    }
    if (cfg->admin_token == NULL || cfg->admin_token[0] == '\0') {
        fprintf(stderr, "streampai debug: ADMIN_TOKEN is not set (the server needs it too)\n");
        return 2;
    }
    char base[300];
    if (url_arg) {
        snprintf(base, sizeof(base), "%s", url_arg);
    } else if (sp_debug_cli_base_url(cfg->http_listen, base, sizeof(base)) != 0) {
        fprintf(stderr, "streampai debug: cannot derive a URL from HTTP_LISTEN; use --url\n");
        return 2;
    }
    char url[512], auth[512];
    snprintf(url, sizeof(url), "%s/api/admin/debug?what=%s", base, what);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->admin_token);
    CURL *c = curl_easy_init();
    if (c == NULL) return 1;
    sp_buf_t body;
    sp_buf_init(&body, 16 * 1024 * 1024);
    struct curl_slist *hdrs = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    int exit_code = 0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "streampai debug: %s: %s\n", base, curl_easy_strerror(rc));
        exit_code = 1;
    } else {
        json_t *j = json_loadb(body.p ? body.p : "", body.len, 0, NULL);
        json_t *out = j && status == 200 ? json_object_get(j, "data") : j;
        if (out) {
            char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
            if (s) puts(s);
            free(s);
        } else {
            fwrite(body.p ? body.p : "", 1, body.len, stdout);
            putchar('\n');
        }
        json_decref(j);
        if (status != 200) {
            fprintf(stderr, "streampai debug: HTTP %ld\n", status);
            exit_code = 1;
        }
    }
    sp_buf_cleanup(&body);
    return exit_code;
}
