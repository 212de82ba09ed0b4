/* fake_cf: see fake_cf.h. */
#include "fake_cf.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int node_available(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char buf[4096];
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < sizeof buf - 8) {
            memcpy(buf, p, n);
            memcpy(buf + n, "/node", 6);
            if (access(buf, X_OK) == 0)
                return 1;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int start(fake_cf_t *f, int tls)
{
    char dir[] = "/tmp/sp_fake_cf_XXXXXX";
    char cert[200] = "", key[200] = "";
    memset(f, 0, sizeof *f);
    f->pid = -1;
    if (tls) {
        if (!mkdtemp(dir))
            return -1;
        snprintf(cert, sizeof cert, "%s/cert.pem", dir);
        snprintf(key, sizeof key, "%s/key.pem", dir);
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-keyout %s -out %s -days 1 -subj /CN=127.0.0.1 "
                 "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", key, cert);
        if (system(cmd) != 0) {
            unlink(key);
            unlink(cert);
            rmdir(dir);
            return -1;
        }
        snprintf(f->ca_file, sizeof f->ca_file, "%s", cert);
        snprintf(f->tmpdir, sizeof f->tmpdir, "%s", dir);
    }
    const char *script = "tests/fakes/cloudflare.mjs";
    if (!node_available() || access(script, R_OK) != 0)
        return -1;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    /* node must not inherit the test runner's IPC descriptors */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    char *argv[] = { "node", (char *)script, "--port", "0", "--token", FAKE_CF_TOKEN,
                     "--account", FAKE_CF_ACCOUNT, tls ? "--tls-cert" : NULL, cert,
                     "--tls-key", key, NULL };
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
        if (poll(&pfd, 1, 10000) <= 0)
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
        fake_cf_stop(f);
        return -1;
    }
    const char *scheme = tls ? "https" : "http";
    snprintf(f->base, sizeof f->base, "%s://127.0.0.1:%d/client/v4", scheme, f->port);
    snprintf(f->control, sizeof f->control, "%s://127.0.0.1:%d/__control", scheme, f->port);
    return 0;
}

int fake_cf_start(fake_cf_t *f)
{
    return start(f, 0);
}

int fake_cf_start_tls(fake_cf_t *f)
{
    return start(f, 1);
}

void fake_cf_stop(fake_cf_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        int st;
        while (waitpid(f->pid, &st, 0) < 0 && errno == EINTR) {
        }
        f->pid = -1;
    }
    if (f->tmpdir[0]) {
        char p[200];
        snprintf(p, sizeof p, "%s/cert.pem", f->tmpdir);
        unlink(p);
        snprintf(p, sizeof p, "%s/key.pem", f->tmpdir);
        unlink(p);
        rmdir(f->tmpdir);
        f->tmpdir[0] = '\0';
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

long fake_cf_control(fake_cf_t *f, const char *method, const char *path, const char *json,
                     char **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", f->control, path);
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    mem_t m = { NULL, 0 };
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wr);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (json)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    if (f->ca_file[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file);
    long status = -1;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (out)
        *out = m.p;
    else
        free(m.p);
    return status;
}

int fake_cf_count_calls(fake_cf_t *f, const char *needle)
{
    char *body = NULL;
    if (fake_cf_control(f, "GET", "/calls", NULL, &body) != 200 || !body) {
        free(body);
        return -1;
    }
    int n = 0;
    for (const char *p = body; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(body);
    return n;
}
