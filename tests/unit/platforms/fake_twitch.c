/* fake_twitch: see fake_twitch.h. */
#include "fake_twitch.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int fake_tw_start(fake_tw_t *f)
{
    memset(f, 0, sizeof *f);
    f->pid = -1;
    const char *script = "tests/fakes/twitch.mjs";
    if (access(script, R_OK) != 0)
        return -1;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* not the runner's IPC descriptors */
    char *argv[] = { "node", (char *)script, "--port", "0", "--client-id", FAKE_TW_CLIENT_ID,
                     "--client-secret", FAKE_TW_CLIENT_SECRET, NULL };
    pid_t pid;
    int rc = posix_spawnp(&pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    f->pid = pid;
    char line[512];
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
        if (poll(&pfd, 1, 15000) <= 0)
            break;
        ssize_t n = read(fds[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
        char *m = strstr(line, "port=");
        if (m && strchr(m, '\n')) {
            f->port = (int)strtol(m + 5, NULL, 10);
            break;
        }
        if (len >= sizeof line - 1)
            break;
    }
    close(fds[0]);
    if (f->port <= 0) {
        fake_tw_stop(f);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    snprintf(f->auth, sizeof f->auth, "http://127.0.0.1:%d/oauth2", f->port);
    snprintf(f->api, sizeof f->api, "http://127.0.0.1:%d/helix", f->port);
    snprintf(f->ws, sizeof f->ws, "ws://127.0.0.1:%d/ws", f->port);
    snprintf(f->control, sizeof f->control, "http://127.0.0.1:%d/_control", f->port);
    return 0;
}

void fake_tw_stop(fake_tw_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        int st;
        while (waitpid(f->pid, &st, 0) < 0 && errno == EINTR) {
        }
        f->pid = -1;
    }
}

typedef struct {
    char *p;
    size_t len;
} mem_t;

static size_t wr(char *p, size_t s, size_t n, void *ud)
{
    mem_t *m = ud;
    size_t l = s * n;
    char *np = realloc(m->p, m->len + l + 1);
    if (!np)
        return 0;
    m->p = np;
    memcpy(m->p + m->len, p, l);
    m->len += l;
    m->p[m->len] = '\0';
    return l;
}

static long req(fake_tw_t *f, const char *method, const char *name, const char *body, char **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s/%s", f->control, name);
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    mem_t m = { NULL, 0 };
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wr);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    long status = -1;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (out)
        *out = m.p;
    else
        free(m.p);
    return status;
}

long fake_tw_call(fake_tw_t *f, const char *name, const char *args_json, char **out)
{
    char body[8192];
    snprintf(body, sizeof body, "{\"args\":%s}", args_json ? args_json : "[]");
    return req(f, "POST", name, body, out);
}

long fake_tw_get(fake_tw_t *f, const char *name, char **out)
{
    return req(f, "GET", name, NULL, out);
}

int fake_tw_count(fake_tw_t *f, const char *name, const char *needle)
{
    char *body = NULL;
    if (fake_tw_get(f, name, &body) != 200 || !body) {
        free(body);
        return -1;
    }
    int n = 0;
    for (const char *p = body; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(body);
    return n;
}

int fake_tw_token(fake_tw_t *f, int ttl_s, char *access, size_t acap, char *refresh,
                  size_t rcap)
{
    char args[1024];
    snprintf(args, sizeof args,
             "[{\"userId\":\"%s\",\"ttl\":%d,\"scopes\":[\"user:read:email\",\"user:read:chat\","
             "\"user:write:chat\",\"user:bot\",\"channel:read:subscriptions\",\"bits:read\","
             "\"moderator:read:followers\",\"channel:manage:broadcast\","
             "\"channel:read:stream_key\"]}]",
             FAKE_TW_USER, ttl_s);
    char *out = NULL;
    long st = fake_tw_call(f, "issueToken", args, &out);
    json_t *root = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    json_t *res = json_object_get(root, "result");
    const char *a = json_string_value(json_object_get(res, "access_token"));
    const char *r = json_string_value(json_object_get(res, "refresh_token"));
    int rc = -1;
    if (st == 200 && a && r) {
        snprintf(access, acap, "%s", a);
        snprintf(refresh, rcap, "%s", r);
        rc = 0;
    }
    json_decref(root);
    return rc;
}
