/*
 * sp_supervisor: restart intensity and backoff (see the header).
 */
#include "livestream/sp_supervisor.h"

#include <string.h>

void sp_sup_init(sp_sup_t *s, int intensity, uint64_t period_ms, uint64_t base_ms,
                 uint64_t max_ms)
{
    memset(s, 0, sizeof(*s));
    if (intensity < 0) intensity = 0;
    if (intensity > SP_SUP_MAX_INTENSITY) intensity = SP_SUP_MAX_INTENSITY;
    s->intensity = intensity;
    s->period_ms = period_ms;
    s->max_ms = max_ms;
    sp_backoff_init(&s->backoff, base_ms, max_ms);
}

sp_sup_decision_t sp_sup_failure(sp_sup_t *s, uint64_t now)
{
    sp_sup_decision_t d = { 0, false, false };
    const int cap = SP_SUP_MAX_INTENSITY + 1;
    /* forget restarts older than the period */
    while (s->n_recent > 0) {
        int oldest = (s->head - s->n_recent + cap) % cap;
        if (now - s->recent[oldest] < s->period_ms) break;
        s->n_recent--;
    }
    s->recent[s->head] = now;
    s->head = (s->head + 1) % cap;
    if (s->n_recent < cap) s->n_recent++;
    s->restarts_total++;
    if (s->n_recent > s->intensity) {
        if (!s->degraded) {
            d.became_degraded = true;
            s->degraded_total++;
        }
        s->degraded = true;
    }
    d.degraded = s->degraded;
    d.delay_ms = s->degraded ? s->max_ms : sp_backoff_next(&s->backoff);
    return d;
}

bool sp_sup_success(sp_sup_t *s)
{
    bool was = s->degraded;
    s->degraded = false;
    s->n_recent = 0;
    sp_backoff_reset(&s->backoff);
    return was;
}
