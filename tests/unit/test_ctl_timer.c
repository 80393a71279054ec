/* Timer heap: order, re-arming, cancelling, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ctl_timer.h"

struct rec {
    struct ctl_timer t;
    int id;
};

static int fired[4096];
static int n_fired;

static void on_fire(struct ctl_timer *t, void *ctx, uint64_t now)
{
    (void)ctx;
    (void)now;
    fired[n_fired++] = ((struct rec *)t)->id;
}

static void timers_fire_in_deadline_order(void **state)
{
    (void)state;
    struct ctl_timers ts;
    assert_int_equal(ctl_timers_init(&ts, 4), 0);
    struct rec r[1000];
    n_fired = 0;
    for (int i = 0; i < 1000; i++) {
        r[i] = (struct rec){.id = i};
        /* a permutation of 0..999 as deadlines */
        assert_int_equal(ctl_timer_arm(&ts, &r[i].t, (uint64_t)((i * 7919) % 1000), on_fire), 0);
    }
    assert_int_equal(ctl_timers_run(&ts, NULL, 499), 1);
    assert_int_equal(n_fired, 500);
    for (int i = 1; i < n_fired; i++)
        assert_true(r[fired[i - 1]].t.when <= r[fired[i]].t.when);
    assert_int_equal(ctl_timers_run(&ts, NULL, 10000), -1);
    assert_int_equal(n_fired, 1000);
    ctl_timers_fini(&ts);
}

static void cancelled_timers_never_fire_and_rearm_moves_them(void **state)
{
    (void)state;
    struct ctl_timers ts;
    assert_int_equal(ctl_timers_init(&ts, 16), 0);
    struct rec a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    n_fired = 0;
    ctl_timer_arm(&ts, &a.t, 10, on_fire);
    ctl_timer_arm(&ts, &b.t, 20, on_fire);
    ctl_timer_arm(&ts, &c.t, 30, on_fire);
    ctl_timer_cancel(&ts, &b.t);
    ctl_timer_cancel(&ts, &b.t); /* twice is harmless */
    assert_false(ctl_timer_armed(&b.t));
    ctl_timer_arm(&ts, &c.t, 5, on_fire); /* earlier than a now */
    assert_int_equal(ctl_timers_run(&ts, NULL, 100), -1);
    assert_int_equal(n_fired, 2);
    assert_int_equal(fired[0], 3);
    assert_int_equal(fired[1], 1);
    ctl_timers_fini(&ts);
}

static void run_reports_time_to_next_timer(void **state)
{
    (void)state;
    struct ctl_timers ts;
    assert_int_equal(ctl_timers_init(&ts, 16), 0);
    struct rec a = {.id = 1};
    assert_int_equal(ctl_timers_run(&ts, NULL, 0), -1);
    ctl_timer_arm(&ts, &a.t, 1500, on_fire);
    assert_int_equal(ctl_timers_run(&ts, NULL, 1000), 500);
    ctl_timers_fini(&ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_deadline_order),
        cmocka_unit_test(cancelled_timers_never_fire_and_rearm_moves_them),
        cmocka_unit_test(run_reports_time_to_next_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
