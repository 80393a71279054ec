/* Monotonic time in milliseconds, the one clock for timers and timeouts. */
#ifndef CN_TIME_H
#define CN_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t cn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
