/*
 * sp_metrics: the process's Prometheus registry (loop thread only).
 * HTTP request counts by route and status, a latency histogram, named gauges,
 * process RSS and loop lag, plus render callbacks other modules register to
 * append their own series. Rendered by GET /metrics in text format 0.0.4.
 */
#ifndef SP_METRICS_H
#define SP_METRICS_H

#include <stdint.h>

#include "core/sp_buf.h"

typedef void (*sp_metrics_render_cb)(sp_buf_t *out, void *ud);

void sp_metrics_http_observe(const char *route, int status, uint64_t micros);
/** Adds delta to a gauge (created at 0 on first use). name must be a literal or live forever. */
void sp_metrics_gauge_add(const char *name, double delta);
void sp_metrics_gauge_set(const char *name, double value);
double sp_metrics_gauge_get(const char *name);
/** Monotonic counter with an optional label string like `code="1009"` (copied). */
void sp_metrics_counter_add(const char *name, const char *labels, double delta);
void sp_metrics_loop_lag(double ms);
void sp_metrics_register(sp_metrics_render_cb cb, void *ud);
void sp_metrics_unregister(sp_metrics_render_cb cb, void *ud);
void sp_metrics_render(sp_buf_t *out);
/** Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
uint64_t sp_metrics_rss_bytes(void);
void sp_metrics_reset(void);

#endif
