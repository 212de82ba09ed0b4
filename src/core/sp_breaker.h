/*
 * sp_breaker: a circuit breaker. closed -> (threshold consecutive failures)
 * -> open -> half_open: one probe call is allowed; success closes, failure
 * re-opens. The open window starts short (open_ms / 16, at least 1 s or
 * open_ms if smaller) and doubles with each failed probe up to open_ms: a
 * service that restarts in a second (the built-in relay) is used again at
 * once, one that stays down is probed ever less often. A success resets it.
 * Time is passed in (monotonic ms) so tests need no clock.
 */
#ifndef SP_BREAKER_H
#define SP_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { SP_BREAKER_CLOSED, SP_BREAKER_OPEN, SP_BREAKER_HALF_OPEN } sp_breaker_state_t;

typedef struct {
    sp_breaker_state_t state;
    uint32_t failures; /* consecutive */
    uint32_t threshold;
    uint64_t open_ms;     /* longest open window */
    uint64_t cur_open_ms; /* the current one: first window, doubled per failed probe */
    uint64_t opened_at;
    bool probe_in_flight;
} sp_breaker_t;

void sp_breaker_init(sp_breaker_t *br, uint32_t threshold, uint64_t open_ms);
/** The first (shortest) open window for a longest window of open_ms. */
uint64_t sp_breaker_first_open_ms(uint64_t open_ms);
/** May a call go out now? In half-open only one probe is let through. */
bool sp_breaker_allow(sp_breaker_t *br, uint64_t now_ms);
void sp_breaker_success(sp_breaker_t *br);
void sp_breaker_failure(sp_breaker_t *br, uint64_t now_ms);
sp_breaker_state_t sp_breaker_state(sp_breaker_t *br, uint64_t now_ms);
const char *sp_breaker_state_name(sp_breaker_state_t s);

#endif
