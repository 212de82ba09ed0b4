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
void sp_metrics_loop_lag(double ms);
void sp_metrics_register(sp_metrics_render_cb cb, void *ud);
void sp_metrics_unregister(sp_metrics_render_cb cb, void *ud);
void sp_metrics_render(sp_buf_t *out);
void sp_metrics_reset(void);

#endif
