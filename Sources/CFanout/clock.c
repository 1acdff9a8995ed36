/*
 * clock.c — the monotonic millisecond clock behind every deadline
 * (handshake, close, idle, stop; cfi_now_ms) and the loop's source ticks and
 * pacing periods (cfi_now_ns). Its own file so that conn.c and loop.c need
 * not reach into each other for it.
 */
#include "internal.h"

#include <time.h>

uint64_t cfi_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t cfi_now_ms(void) { return cfi_now_ns() / 1000000u; }
