/* Per-worker timers: a binary min-heap of timers embedded in the objects they
 * belong to (transactions, dialogs). Owner: one worker; no locks.
 * Arming an armed timer moves it; cancelling a disarmed timer is a no-op. */
#ifndef CTL_TIMER_H
#define CTL_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct ctl_timer;
typedef void (*ctl_timer_fn)(struct ctl_timer *t, void *ctx, uint64_t now_ms);

struct ctl_timer {
    uint64_t when;      /* absolute, ms */
    uint32_t slot;      /* 1-based heap position; 0 = not armed */
    ctl_timer_fn fn;
};

struct ctl_timers {
    struct ctl_timer **heap; /* heap[0] unused */
    uint32_t n, cap;
};

int ctl_timers_init(struct ctl_timers *ts, uint32_t initial_cap);
void ctl_timers_fini(struct ctl_timers *ts);

/* Returns 0, or -1 when the heap could not grow (timer left disarmed). */
int ctl_timer_arm(struct ctl_timers *ts, struct ctl_timer *t, uint64_t when, ctl_timer_fn fn);
void ctl_timer_cancel(struct ctl_timers *ts, struct ctl_timer *t);
static inline int ctl_timer_armed(const struct ctl_timer *t) { return t->slot != 0; }

/* Runs every timer due at `now` (each disarmed before its callback, which may
 * re-arm it). Returns ms until the next timer, or -1 when none is armed. */
int64_t ctl_timers_run(struct ctl_timers *ts, void *ctx, uint64_t now);

#endif
