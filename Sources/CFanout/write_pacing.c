/*
 * write_pacing.c — how long an overloaded loop holds its writes.
 *
 * On loopback and on busy hosts, nearly all of a fan-out's CPU is the
 * kernel's per-segment TCP work (send, the receiver's processing, its
 * wake-up), one segment per write. A loop that keeps up writes every turn,
 * which keeps latency at a fraction of a millisecond. A loop that cannot
 * keep up falls behind anyway; there, writing each connection at most every
 * few milliseconds lets several frames share one segment, so the same CPU
 * delivers more and the backlog stops growing. The delay starts small,
 * doubles while the loop stays saturated and halves once it has room, so it
 * is zero whenever the loop keeps up.
 */
#include "cfanout.h"

/* A loop thread that used at least 8/10 of a core over a period is
 * saturated: one burst more and it falls behind. (CPU time, not time
 * outside epoll_wait: a loop that merely waits for a busy core is not
 * helped by holding its writes, only delayed.) */
#define SATURATED_NUMERATOR 8
#define SATURATED_DENOMINATOR 10
/* At most half busy: it has room again, so the delay shrinks. Between the
 * two the delay holds, so it does not oscillate around one threshold. */
#define RELAXED_NUMERATOR 1
#define RELAXED_DENOMINATOR 2
/* The first step: long enough to gather a loop's turns, short next to the
 * latency an overloaded loop already has. Below it the delay is dropped. */
#define FIRST_DELAY_MS 10

uint32_t cf_write_delay_next(uint32_t current_ms, uint64_t busy_ns, uint64_t period_ns, uint32_t max_ms) {
    if (max_ms == 0 || period_ns == 0) return 0;
    if (busy_ns * SATURATED_DENOMINATOR >= period_ns * SATURATED_NUMERATOR) {
        uint64_t next = current_ms == 0 ? FIRST_DELAY_MS : (uint64_t)current_ms * 2;
        return next > max_ms ? max_ms : (uint32_t)next;
    }
    if (busy_ns * RELAXED_DENOMINATOR <= period_ns * RELAXED_NUMERATOR) {
        uint32_t half = current_ms / 2;
        return half < FIRST_DELAY_MS ? 0 : half;
    }
    return current_ms > max_ms ? max_ms : current_ms;
}
