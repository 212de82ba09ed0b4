/* sp_breaker: circuit breaker state machine. */
#include "core/sp_breaker.h"

uint64_t sp_breaker_first_open_ms(uint64_t open_ms)
{
    uint64_t first = open_ms / 16;
    if (first < 1000) first = open_ms < 1000 ? open_ms : 1000;
    return first;
}

void sp_breaker_init(sp_breaker_t *br, uint32_t threshold, uint64_t open_ms)
{
    br->state = SP_BREAKER_CLOSED;
    br->failures = 0;
    br->threshold = threshold ? threshold : 5;
    br->open_ms = open_ms;
    br->cur_open_ms = sp_breaker_first_open_ms(open_ms);
    br->opened_at = 0;
    br->probe_in_flight = false;
}

sp_breaker_state_t sp_breaker_state(sp_breaker_t *br, uint64_t now_ms)
{
    if (br->state == SP_BREAKER_OPEN && now_ms - br->opened_at >= br->cur_open_ms) {
        br->state = SP_BREAKER_HALF_OPEN;
        br->probe_in_flight = false;
    }
    return br->state;
}

bool sp_breaker_allow(sp_breaker_t *br, uint64_t now_ms)
{
    switch (sp_breaker_state(br, now_ms)) {
    case SP_BREAKER_CLOSED:
        return true;
    case SP_BREAKER_HALF_OPEN:
        if (br->probe_in_flight)
            return false;
        br->probe_in_flight = true;
        return true;
    default:
        return false;
    }
}

void sp_breaker_success(sp_breaker_t *br)
{
    br->state = SP_BREAKER_CLOSED;
    br->failures = 0;
    br->probe_in_flight = false;
    br->cur_open_ms = sp_breaker_first_open_ms(br->open_ms);
}

void sp_breaker_failure(sp_breaker_t *br, uint64_t now_ms)
{
    br->failures++;
    br->probe_in_flight = false;
    if (br->state == SP_BREAKER_HALF_OPEN) {
        /* the probe failed: a longer window, up to open_ms */
        br->cur_open_ms = br->cur_open_ms > br->open_ms / 2 ? br->open_ms : br->cur_open_ms * 2;
        br->state = SP_BREAKER_OPEN;
        br->opened_at = now_ms;
    } else if (br->state == SP_BREAKER_CLOSED && br->failures >= br->threshold) {
        br->state = SP_BREAKER_OPEN;
        br->opened_at = now_ms;
    }
}

const char *sp_breaker_state_name(sp_breaker_state_t s)
{
    return s == SP_BREAKER_CLOSED ? "closed" : s == SP_BREAKER_OPEN ? "open" : "half_open";
}
