/*
 * sp_supervisor: OTP-style restart policy for one component (pure; the
 * caller owns the timer). A failure yields the delay before the restart
 * (sp_backoff: exponential with jitter). More than `intensity` restarts within
 * `period_ms` marks the component degraded ("platform degraded" to the user):
 * it is then only probed every max_ms, never restarted in a tight loop. A
 * success after a restart clears degraded and resets the backoff.
 */
#ifndef SP_SUPERVISOR_H
#define SP_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/sp_backoff.h"

#define SP_SUP_MAX_INTENSITY 16

typedef struct {
    sp_backoff_t backoff;
    uint64_t max_ms;
    uint64_t period_ms;
    int intensity;
    uint64_t recent[SP_SUP_MAX_INTENSITY + 1]; /* ring of restart times (mono ms) */
    int n_recent;
    int head;
    bool degraded;
    uint64_t restarts_total;
    uint64_t degraded_total;
} sp_sup_t;

typedef struct {
    uint64_t delay_ms;
    bool degraded;       /* the component is (now) degraded */
    bool became_degraded; /* this failure tripped the limit */
} sp_sup_decision_t;

/** intensity 5, period 60000 like the brief; clamps intensity to SP_SUP_MAX_INTENSITY. */
void sp_sup_init(sp_sup_t *s, int intensity, uint64_t period_ms, uint64_t base_ms,
                 uint64_t max_ms);
sp_sup_decision_t sp_sup_failure(sp_sup_t *s, uint64_t now_mono_ms);
/** The component runs fine again. Returns true if it was degraded. */
bool sp_sup_success(sp_sup_t *s);

#endif
