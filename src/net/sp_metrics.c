/* sp_metrics: counters, gauges, a latency histogram and render hooks. */
#include "net/sp_metrics.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/sp_alloc.h"
#include "core/sp_map.h"

static const double buckets_s[] = { 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,    0.25,  0.5,    1,     2.5,   5 };
#define N_BUCKETS (sizeof(buckets_s) / sizeof(buckets_s[0]))

typedef struct {
    double value;
} num_t;

typedef struct hook_s {
    sp_metrics_render_cb cb;
    void *ud;
    struct hook_s *next;
} hook_t;

static sp_map_t *http_counts; /* "route\x1fstatus" -> num_t */
static sp_map_t *gauges;      /* name -> num_t */
static sp_map_t *counters;    /* "name\x1flabels" -> num_t */
static uint64_t hist[N_BUCKETS + 1];
static double hist_sum;
static uint64_t hist_count;
static double loop_lag_ms, loop_lag_max_ms;
static hook_t *hooks;

static num_t *num_get(sp_map_t **m, const char *key, size_t kl)
{
    if (*m == NULL)
        *m = sp_map_new(sp_free);
    num_t *n = sp_map_get(*m, key, kl);
    if (n == NULL) {
        n = sp_calloc(1, sizeof(*n));
        sp_map_set(*m, key, kl, n);
    }
    return n;
}

void sp_metrics_http_observe(const char *route, int status, uint64_t micros)
{
    char key[512];
    int kl = snprintf(key, sizeof(key), "%s\x1f%d", route, status);
    if (kl < 0 || (size_t)kl >= sizeof(key))
        return;
    num_get(&http_counts, key, (size_t)kl)->value += 1;
    double s = (double)micros / 1e6;
    size_t i = 0;
    while (i < N_BUCKETS && s > buckets_s[i])
        i++;
    hist[i]++;
    hist_sum += s;
    hist_count++;
}

void sp_metrics_gauge_add(const char *name, double delta)
{
    num_get(&gauges, name, strlen(name))->value += delta;
}

void sp_metrics_loop_lag(double ms)
{
    loop_lag_ms = ms;
    if (ms > loop_lag_max_ms)
        loop_lag_max_ms = ms;
}

void sp_metrics_register(sp_metrics_render_cb cb, void *ud)
{
    hook_t *h = sp_calloc(1, sizeof(*h));
    h->cb = cb;
    h->ud = ud;
    h->next = hooks;
    hooks = h;
}

void sp_metrics_unregister(sp_metrics_render_cb cb, void *ud)
{
    for (hook_t **pp = &hooks; *pp; pp = &(*pp)->next) {
        if ((*pp)->cb == cb && (*pp)->ud == ud) {
            hook_t *h = *pp;
            *pp = h->next;
            sp_free(h);
            return;
        }
    }
}

static uint64_t sp_metrics_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Escapes a label value per the exposition format. */
static void label_value(sp_buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            sp_buf_append(out, "\\", 1);
        if (s[i] == '\n') {
            sp_buf_append(out, "\\n", 2);
            continue;
        }
        sp_buf_append(out, &s[i], 1);
    }
}

void sp_metrics_render(sp_buf_t *out)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    sp_buf_append_str(
        out, "# HELP streampai_http_requests_total HTTP requests by route pattern and status.\n"
             "# TYPE streampai_http_requests_total counter\n");
    while (http_counts && sp_map_next(http_counts, &it, &k, &kl, &v)) {
        const char *sep = memchr(k, '\x1f', kl);
        if (!sep)
            continue;
        sp_buf_append_str(out, "streampai_http_requests_total{route=\"");
        label_value(out, k, (size_t)(sep - k));
        sp_buf_appendf(out, "\",status=\"%.*s\"} %.0f\n", (int)(kl - (size_t)(sep - k) - 1),
                       sep + 1, ((num_t *)v)->value);
    }
    sp_buf_append_str(out, "# HELP streampai_http_request_duration_seconds HTTP request latency.\n"
                           "# TYPE streampai_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += hist[i];
        sp_buf_appendf(out, "streampai_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                       buckets_s[i], (unsigned long long)cum);
    }
    cum += hist[N_BUCKETS];
    sp_buf_appendf(out,
                   "streampai_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                   "streampai_http_request_duration_seconds_sum %.6f\n"
                   "streampai_http_request_duration_seconds_count %llu\n",
                   (unsigned long long)cum, hist_sum, (unsigned long long)hist_count);
    it = 0;
    while (gauges && sp_map_next(gauges, &it, &k, &kl, &v))
        sp_buf_appendf(out, "# TYPE streampai_%.*s gauge\nstreampai_%.*s %.17g\n", (int)kl, k,
                       (int)kl, k, ((num_t *)v)->value);
    it = 0;
    while (counters && sp_map_next(counters, &it, &k, &kl, &v)) {
        const char *sep = memchr(k, '\x1f', kl);
        if (!sep)
            continue;
        int nl = (int)(sep - k);
        int ll = (int)(kl - (size_t)nl - 1);
        if (ll > 0)
            sp_buf_appendf(out, "streampai_%.*s{%.*s} %.17g\n", nl, k, ll, sep + 1,
                           ((num_t *)v)->value);
        else
            sp_buf_appendf(out, "streampai_%.*s %.17g\n", nl, k, ((num_t *)v)->value);
    }
    sp_buf_appendf(out,
                   "# HELP streampai_process_resident_memory_bytes Resident set size.\n"
                   "# TYPE streampai_process_resident_memory_bytes gauge\n"
                   "streampai_process_resident_memory_bytes %llu\n"
                   "# HELP streampai_event_loop_lag_seconds Event loop lag (last sample).\n"
                   "# TYPE streampai_event_loop_lag_seconds gauge\n"
                   "streampai_event_loop_lag_seconds %.6f\n"
                   "# HELP streampai_event_loop_lag_max_seconds Event loop lag (max).\n"
                   "# TYPE streampai_event_loop_lag_max_seconds gauge\n"
                   "streampai_event_loop_lag_max_seconds %.6f\n",
                   (unsigned long long)sp_metrics_rss_bytes(), loop_lag_ms / 1000.0,
                   loop_lag_max_ms / 1000.0);
    for (hook_t *h = hooks; h; h = h->next)
        h->cb(out, h->ud);
}

void sp_metrics_reset(void)
{
    sp_map_free(http_counts);
    sp_map_free(gauges);
    sp_map_free(counters);
    http_counts = gauges = counters = NULL;
    memset(hist, 0, sizeof(hist));
    hist_sum = 0;
    hist_count = 0;
    while (hooks) {
        hook_t *h = hooks;
        hooks = h->next;
        sp_free(h);
    }
}
