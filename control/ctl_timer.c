#include "ctl_timer.h"

#include <stdlib.h>

static void place(struct ctl_timers *ts, struct ctl_timer *t, uint32_t i)
{
    ts->heap[i] = t;
    t->slot = i;
}

static void sift_up(struct ctl_timers *ts, uint32_t i)
{
    struct ctl_timer *t = ts->heap[i];
    while (i > 1 && ts->heap[i / 2]->when > t->when) {
        place(ts, ts->heap[i / 2], i);
        i /= 2;
    }
    place(ts, t, i);
}

static void sift_down(struct ctl_timers *ts, uint32_t i)
{
    struct ctl_timer *t = ts->heap[i];
    for (;;) {
        uint32_t c = 2 * i;
        if (c > ts->n)
            break;
        if (c + 1 <= ts->n && ts->heap[c + 1]->when < ts->heap[c]->when)
            c++;
        if (ts->heap[c]->when >= t->when)
            break;
        place(ts, ts->heap[c], i);
        i = c;
    }
    place(ts, t, i);
}

int ctl_timers_init(struct ctl_timers *ts, uint32_t cap)
{
    ts->n = 0;
    ts->cap = cap < 16 ? 16 : cap;
    ts->heap = calloc(ts->cap + 1, sizeof *ts->heap);
    return ts->heap ? 0 : -1;
}

void ctl_timers_fini(struct ctl_timers *ts)
{
    for (uint32_t i = 1; i <= ts->n; i++)
        ts->heap[i]->slot = 0;
    free(ts->heap);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
}

void ctl_timer_cancel(struct ctl_timers *ts, struct ctl_timer *t)
{
    uint32_t i = t->slot;
    if (i == 0)
        return;
    t->slot = 0;
    struct ctl_timer *last = ts->heap[ts->n--];
    if (i > ts->n)
        return; /* it was the last one */
    place(ts, last, i);
    sift_down(ts, i);
    sift_up(ts, last->slot);
}

int ctl_timer_arm(struct ctl_timers *ts, struct ctl_timer *t, uint64_t when, ctl_timer_fn fn)
{
    t->fn = fn;
    if (t->slot) {
        uint64_t old = t->when;
        t->when = when;
        if (when < old)
            sift_up(ts, t->slot);
        else
            sift_down(ts, t->slot);
        return 0;
    }
    if (ts->n == ts->cap) {
        struct ctl_timer **nh = realloc(ts->heap, (2 * (size_t)ts->cap + 1) * sizeof *nh);
        if (!nh)
            return -1;
        ts->heap = nh;
        ts->cap *= 2;
    }
    t->when = when;
    ts->heap[++ts->n] = t;
    t->slot = ts->n;
    sift_up(ts, ts->n);
    return 0;
}

int64_t ctl_timers_run(struct ctl_timers *ts, void *ctx, uint64_t now)
{
    while (ts->n > 0 && ts->heap[1]->when <= now) {
        struct ctl_timer *t = ts->heap[1];
        ctl_timer_cancel(ts, t);
        t->fn(t, ctx, now);
    }
    return ts->n > 0 ? (int64_t)(ts->heap[1]->when - now) : -1;
}
